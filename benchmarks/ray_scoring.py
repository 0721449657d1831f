"""Rows per second: single-process ``predict --input`` against ``predict --engine ray`` on the same rows.

The seeded, label-stratified test reviews are split into ``--files`` parquet files. Both paths
are timed from files to written output with the model load included: the single process loads
the classifier once and runs :func:`scoring.predict_file` per file (the ``predict --input``
path); the Ray path runs :func:`ray_scoring.score_files` on a local Ray instance started
beforehand (its start-up is reported apart: a cluster is started once for many jobs). Both use
the same classifier options (the CLI's defaults unless given). Runs alternate, so a noisy spell
on a shared machine hits both; the median of ``--repeats`` runs is reported.

    python benchmarks/ray_scoring.py --model ../shared/models/minilm-imdb-fast
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from common import machine_facts, prediction_parser, test_reviews, write_result


def single_process(model: str, files: list[Path], out: Path, options: dict) -> float:
    from imdb_sentiment.inference import SentimentClassifier
    from imdb_sentiment.scoring import FileOptions, predict_file

    started = time.perf_counter()
    classifier = SentimentClassifier.load(model, **options)
    for path in files:
        predict_file(classifier, FileOptions(path, out / f"{path.stem}.parquet", overwrite=True))
    return time.perf_counter() - started


def on_ray(model: str, folder: Path, out: Path, options: dict, actors: int | None) -> float:
    from imdb_sentiment.config import InferenceConfig
    from imdb_sentiment.ray_scoring import RayScoring, score_files

    started = time.perf_counter()
    score_files(RayScoring(model=model, inputs=str(folder), output=out, actors=actors, overwrite=True,
                           config=InferenceConfig(**options)))
    return time.perf_counter() - started


def main() -> None:
    parser = prediction_parser(__doc__, "ray_scoring", samples=2000)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--actors", type=int, default=None, help="Default: one per CPU.")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    import pandas as pd
    import ray

    cpus = machine_facts()["cpu_count"]
    texts, _ = test_reviews(args.data, args.samples, args.seed)
    options = {"max_length": args.max_length, "backend": args.backend}
    with tempfile.TemporaryDirectory(prefix="ray-scoring-bench-") as tmp:
        root = Path(tmp)
        inputs = root / "inputs"
        inputs.mkdir()
        frame = pd.DataFrame({"id": range(len(texts)), "text": texts})
        step = -(-len(frame) // args.files)
        files = []
        for index in range(args.files):
            path = inputs / f"part-{index}.parquet"
            frame.iloc[index * step:(index + 1) * step].to_parquet(path, index=False)
            files.append(path)
        (root / "single").mkdir()
        # First use may export the ONNX copy: warm it up outside the timings.
        single_process(args.model, files[:1], root / "single", options)
        started = time.perf_counter()
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        ray_start = time.perf_counter() - started
        single_times, ray_times = [], []
        try:
            for _ in range(args.repeats):
                single_times.append(single_process(args.model, files, root / "single", options))
                ray_times.append(on_ray(args.model, inputs, root / "ray", options, args.actors))
        finally:
            ray.shutdown()
    rows = len(texts)
    single_s, ray_s = statistics.median(single_times), statistics.median(ray_times)
    facts = machine_facts()
    result = {
        "rows": rows, "files": args.files, "max_length": args.max_length, "backend": args.backend,
        "model": Path(args.model).name, "cpus": facts["cpu_count"], "cpu_flags": facts["cpu_flags"],
        "actors": args.actors or facts["cpu_count"], "repeats": args.repeats,
        "single_process": {"seconds": round(single_s, 2), "rows_per_s": round(rows / single_s, 1),
                           "runs": [round(t, 2) for t in single_times]},
        "ray": {"seconds": round(ray_s, 2), "rows_per_s": round(rows / ray_s, 1),
                "runs": [round(t, 2) for t in ray_times], "cluster_start_s": round(ray_start, 2)},
        "ray_time_over_single": round(ray_s / single_s, 3),
        "note": "shared, loaded machine; model load included in both, Ray cluster start reported apart",
    }
    print(f"{'path':<16}{'seconds':>10}{'rows/s':>10}")
    print(f"{'single process':<16}{single_s:>10.1f}{rows / single_s:>10.1f}")
    print(f"{'ray':<16}{ray_s:>10.1f}{rows / ray_s:>10.1f}")
    print(f"ray time / single-process time: {ray_s / single_s:.2f} (cluster start {ray_start:.1f} s apart); "
          f"cpu flags: {' '.join(result['cpu_flags'])}")
    write_result(args.output, result, facts)


if __name__ == "__main__":
    main()
