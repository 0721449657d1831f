"""Whole-process wall time: ``imdb-sentiment predict --input`` with a hybrid folder against a plain
``transformers.pipeline`` script over the same reviews (the script of ``predict_cli.py``).

    python benchmarks/predict_hybrid.py --model outputs/hybrid-minilm

Each run is timed from process start to exit (imports, model load, prediction, writing). Runs
alternate so a noisy spell on a shared machine hits both; the best of ``--repeats`` is reported,
with each side's accuracy on those reviews. One untimed ``predict`` call first fills the caches
(the ONNX copy and the engine choice), as on any machine after its first use.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from common import SHARED, prediction_parser, test_reviews, write_result
from predict_cli import PIPELINE_SCRIPT, timed


def main() -> None:
    parser = prediction_parser(__doc__, "predict_hybrid", samples=600, model_help="Hybrid folder.")
    parser.add_argument("--transformer", default=str(SHARED / "models" / "minilm-imdb-fast"))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--mode", default="cascade")
    args = parser.parse_args()
    import pandas as pd

    texts, labels = test_reviews(args.data, args.samples, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        pd.DataFrame({"text": texts}).to_csv(folder / "in.csv", index=False)
        (folder / "pipeline.py").write_text(PIPELINE_SCRIPT)
        commands = {
            "transformers.pipeline script": [sys.executable, str(folder / "pipeline.py"), args.transformer,
                                             str(folder / "in.csv"), str(folder / "pipeline.csv")],
            f"imdb-sentiment predict (hybrid {args.mode})": [
                str(Path(sys.executable).with_name("imdb-sentiment")), "predict", "-m", args.model,
                "--mode", args.mode, "-i", str(folder / "in.csv"), "-o", str(folder / "hybrid.csv"),
                "--overwrite", "--no-progress"],
        }
        outputs = dict(zip(commands, ("pipeline.csv", "hybrid.csv"), strict=True))
        cli = str(Path(sys.executable).with_name("imdb-sentiment"))
        timed([cli, "predict", "-m", args.model, "A fine film."])  # not timed: fills the engine caches
        seconds: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.repeats):
            for name, command in commands.items():
                seconds[name].append(timed(command))
        accuracy = {}
        for name, file in outputs.items():
            predicted = pd.read_csv(folder / file)["label"].str.upper().eq("POSITIVE").astype(int)
            accuracy[name] = float((predicted.to_numpy() == labels).mean())
        decided = pd.read_csv(folder / "hybrid.csv")["decided_by"].value_counts(normalize=True).to_dict()
    best = {name: min(values) for name, values in seconds.items()}
    reference = best["transformers.pipeline script"]
    print(f"| command ({args.samples} test reviews, whole process) | best of {args.repeats} (s) | "
          "speed-up | accuracy |\n|---|---|---|---|")
    for name in commands:
        print(f"| {name} | {best[name]:.1f} | {reference / best[name]:.2f}x | {accuracy[name]:.4f} |")
    print(f"hybrid: decided_by shares {decided}")
    result = {"samples": args.samples, "seed": args.seed, "seconds": seconds, "best": best,
              "speedup": {name: reference / best[name] for name in commands}, "accuracy": accuracy,
              "decided_by": decided}
    write_result(args.output, result)


if __name__ == "__main__":
    main()
