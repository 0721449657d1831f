"""Fine-tune on the full IMDB train split and score the full test split, per preset, on a GPU.

Prints accuracy, training seconds and evaluation speed next to the stock-Trainer reference
numbers from ``../shared/README.md`` and writes everything to ``OUTPUT_DIR/results.json``.

    python benchmarks/gpu_finetune.py --presets fast,seed --output-dir /tmp/gpu-finetune

Without an installed package it falls back to ``src/`` (``pip install --no-deps -e .`` also works).
For a CPU smoke run add e.g. ``--max-train-samples 64 --max-test-samples 64 --max-length 64``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
try:
    import imdb_sentiment  # noqa: F401
except ImportError:  # a bare checkout on the GPU machine: use the sources
    sys.path.insert(0, str(ROOT / "src"))

from imdb_sentiment.config import PRESETS, preset  # noqa: E402
from imdb_sentiment.errors import UserError  # noqa: E402
from imdb_sentiment.training import TrainResult, train  # noqa: E402

# Stock Trainer, full IMDB, one H100, shared MiniLM (../shared/README.md): accuracy, train seconds.
REFERENCE = {"seed": (0.9127, 50), "seed-tuned": (0.9155, 131), "fast": (0.9325, 44)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT.parent / "shared" / "models" / "all-MiniLM-L6-v2"))
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "imdb"))
    parser.add_argument("--presets", default="fast", help="comma-separated: " + ", ".join(PRESETS))
    parser.add_argument("--output-dir", type=Path, default=ROOT / "outputs" / "gpu-finetune")
    parser.add_argument("--max-train-samples", type=int, default=None, help="smoke runs only")
    parser.add_argument("--max-eval-samples", type=int, default=None, help="smoke runs only")
    parser.add_argument("--max-test-samples", type=int, default=None, help="smoke runs only")
    parser.add_argument("--max-length", type=int, default=None, help="override the presets' 512 tokens")
    parser.add_argument("--epochs", type=float, default=None, help="override the presets' epochs")
    return parser.parse_args(argv)


def environment() -> dict[str, Any]:
    import torch
    import transformers

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"gpu": gpu, "torch": torch.__version__, "transformers": transformers.__version__,
            "python": platform.python_version(), "host": platform.node()}


def run_preset(name: str, args: argparse.Namespace) -> dict[str, Any]:
    config = preset(name).replace(max_train_samples=args.max_train_samples,
                                  max_eval_samples=args.max_eval_samples,
                                  max_length=args.max_length, epochs=args.epochs)
    started = time.perf_counter()
    result: TrainResult = train(args.model, args.data, args.output_dir / name, config, overwrite=True,
                                max_test_samples=args.max_test_samples, preset=name)
    test = result.test_metrics or {}
    return {
        "preset": name, "accuracy": test.get("accuracy"), "f1": test.get("f1"), "n_test": test.get("n_test"),
        "validation_accuracy": result.validation_metrics.get("accuracy"),
        "train_seconds": round(result.train_seconds, 1),
        "eval_reviews_per_second": test.get("reviews_per_second"),
        "total_seconds": round(time.perf_counter() - started, 1),
        "dtype": result.extra.get("dtype"), "history": result.history, "config": config.to_dict(),
        "model_dir": str(result.output_dir),
    }


def table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'preset':<12}{'accuracy':>10}{'train s':>10}{'eval rev/s':>12}{'dtype':>7}"
             f"{'ref acc':>10}{'ref s':>8}"]
    for row in rows:
        ref_acc, ref_s = REFERENCE.get(row["preset"], (None, None))
        accuracy = f"{row['accuracy']:.4f}" if row["accuracy"] is not None else "-"
        lines.append(f"{row['preset']:<12}{accuracy:>10}{row['train_seconds']:>10.1f}"
                     f"{row['eval_reviews_per_second'] or 0:>12.0f}{row['dtype']:>7}"
                     f"{ref_acc or '-':>10}{ref_s or '-':>8}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = [name.strip() for name in args.presets.split(",") if name.strip()]
    env = environment()
    print(f"device: {env['gpu'] or 'CPU (no GPU found)'}; torch {env['torch']}, "
          f"transformers {env['transformers']}", flush=True)
    try:
        rows = [run_preset(name, args) for name in names]
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    args.output_dir.mkdir(parents=True, exist_ok=True)
    results = {"environment": env, "model": args.model, "data": args.data, "runs": rows}
    (args.output_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(table(rows))
    print(f"results: {args.output_dir / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
