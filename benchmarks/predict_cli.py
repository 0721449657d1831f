"""Whole-process wall time: ``imdb-sentiment predict --input`` against a plain pipeline script.

Both read the same CSV of seeded, label-stratified IMDB test reviews and write a CSV with a
label and a score per review; each is timed from process start to exit (imports, model load,
prediction, writing). The plain script is what one would write with transformers alone:
``pipeline(...)(texts, truncation=True, max_length=512)``. Runs alternate, so a noisy spell on
a shared machine hits both; the median of ``--repeats`` runs is reported.

    python benchmarks/predict_cli.py --model /tmp/minilm-ft

``imdb-sentiment predict`` runs its default back end, which on a CPU without bf16 units is an
int8 ONNX Runtime copy of the model, exported on first use and cached: the first run (export
included) and later runs are reported separately, and so is ``--backend torch``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine_facts, prediction_parser, write_result

PIPELINE_SCRIPT = '''
import sys
import pandas as pd
from transformers import pipeline

frame = pd.read_csv(sys.argv[2])
classify = pipeline("text-classification", model=sys.argv[1], device="cpu")
results = classify(frame["text"].tolist(), truncation=True, max_length=512)
frame["label"] = [r["label"] for r in results]
frame["score"] = [r["score"] for r in results]
frame.to_csv(sys.argv[3], index=False)
'''


def parse_args() -> argparse.Namespace:
    parser = prediction_parser(__doc__, "predict_cli", samples=600)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=512,
                        help="Our token budget: the pipeline's 512 by default, for a like-for-like run.")
    return parser.parse_args()


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True,
                          env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:3])} failed: {done.stderr.strip()[-800:]}")
    return seconds


def main() -> None:
    args = parse_args()
    import pandas as pd

    from imdb_sentiment.data import subsample

    cli = str(Path(sys.executable).with_name("imdb-sentiment"))
    with tempfile.TemporaryDirectory(prefix="predict-cli-") as work:
        folder = Path(work)
        os.environ["IMDB_SENTIMENT_CACHE"] = str(folder / "cache")  # starts cold: the first run exports
        source = folder / "reviews.csv"
        frame = subsample(pd.read_parquet(args.data), args.samples, args.seed)
        frame[["id", "text"]].to_csv(source, index=False)
        script = folder / "pipeline_script.py"
        script.write_text(PIPELINE_SCRIPT, encoding="utf-8")
        ours = [cli, "predict", "--model", args.model, "--max-length", str(args.max_length),
                "--input", str(source), "--output", str(folder / "ours.csv"), "--overwrite", "--no-progress"]
        first = {"imdb-sentiment predict, first use (exports + caches int8)": ours}
        commands = {
            "pipeline script": [sys.executable, str(script), args.model, str(source), str(folder / "p.csv")],
            "imdb-sentiment predict (cached int8 ONNX)": ours,
            "imdb-sentiment predict --backend torch": [*ours[:-4], "--output", str(folder / "torch.csv"),
                                                       "--overwrite", "--no-progress", "--backend", "torch"],
            "start-up + 1 review (cached)": [cli, "predict", "--model", args.model, "A fine film."],
            "start-up + 1 review (--backend torch)": [cli, "predict", "--model", args.model, "--backend",
                                                      "torch", "A fine film."],
        }
        times: dict[str, list[float]] = {name: [] for name in (*first, *commands)}
        for name, command in first.items():
            times[name].append(timed(command))
        for _ in range(args.repeats):
            for name, command in commands.items():
                times[name].append(timed(command))
                print(f"{name}: {times[name][-1]:.1f} s", file=sys.stderr)
        agreement = _agreement(folder / "p.csv", folder / "ours.csv")
    base = statistics.median(times["pipeline script"])
    rows = [{"command": name, "wall_seconds": round(statistics.median(values), 2),
             "runs": [round(v, 2) for v in values],
             "speed_ratio_to_pipeline_script": round(base / statistics.median(values), 2)}
            for name, values in times.items()]
    print(f"{'command':<58} {'wall s':>8} {'x faster':>9}")
    for row in rows:
        ratio = row["speed_ratio_to_pipeline_script"]
        print(f"{row['command']:<58} {row['wall_seconds']:>8.1f} {ratio:>9.2f}")
    facts = machine_facts()
    write_result(args.output, {"benchmark": "predict_cli", "model": args.model, "reviews": args.samples,
                               "seed": args.seed, "cores": facts["cpu_count"], "repeats": args.repeats,
                               "max_length": args.max_length,
                               "label_agreement_pipeline_vs_ours": agreement, "results": rows}, facts)
    print(f"-> {args.output}", file=sys.stderr)


def _agreement(pipeline_csv: Path, ours_csv: Path) -> float:
    import pandas as pd

    theirs = pd.read_csv(pipeline_csv)["label"].str.upper()
    ours = pd.read_csv(ours_csv)["label"].str.upper()
    return round(float((theirs == ours).mean()), 4)


if __name__ == "__main__":
    main()
