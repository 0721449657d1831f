"""Fine-tune on the full IMDB train split and score the full test split, per preset, on a GPU,
next to the stock ``transformers.Trainer`` run with the same recipe on the same GPU in the same run.

Per preset it runs ``imdb-sentiment train`` (validation each epoch, best epoch kept, test scored)
and then the reference: a plain ``Trainer`` with the preset's learning rate, epochs, batch size,
warm-up, weight decay and precision on all 25,000 training reviews, the tokenizer cutting at the
first 512 tokens, no validation and no checkpoints, scored with ``Trainer.predict``. It prints
accuracy, training seconds, whole-command seconds and the ratios, and writes everything to
``OUTPUT_DIR/results.json``.

    python benchmarks/gpu_finetune.py --presets fast,seed --output-dir /tmp/gpu-finetune

Without an installed package it falls back to ``src/`` (``pip install --no-deps -e .`` also works).
For a CPU smoke run add e.g. ``--max-train-samples 64 --max-test-samples 64 --max-length 64 --epochs 1``
(with ``--model`` a small encoder); ``--no-reference`` skips the stock run.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from typing import Any

from common import ROOT, SHARED, machine_facts, write_result

from imdb_sentiment.config import PRESETS, TrainRun, preset
from imdb_sentiment.errors import UserError
from imdb_sentiment.training import TrainResult, train


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(SHARED / "models" / "all-MiniLM-L6-v2"))
    parser.add_argument("--data", default=str(SHARED / "data" / "imdb"))
    parser.add_argument("--presets", default="fast", help="comma-separated: " + ", ".join(PRESETS))
    parser.add_argument("--output-dir", type=Path, default=ROOT / "outputs" / "gpu-finetune")
    parser.add_argument("--max-train-samples", type=int, default=None, help="smoke runs only")
    parser.add_argument("--max-eval-samples", type=int, default=None, help="smoke runs only")
    parser.add_argument("--max-test-samples", type=int, default=None, help="smoke runs only")
    parser.add_argument("--max-length", type=int, default=None, help="override the presets' 512 tokens")
    parser.add_argument("--epochs", type=float, default=None, help="override the presets' epochs")
    parser.add_argument("--no-reference", dest="reference", action="store_false",
                        help="skip the stock Trainer run")
    return parser.parse_args(argv)


def environment() -> dict[str, Any]:
    import torch  # noqa: F401  (loaded first, so the machine facts name torch and the GPU)
    import transformers

    facts = machine_facts()
    return {"gpu": facts.get("gpu"), "torch": facts["torch"], "transformers": transformers.__version__,
            "python": facts["python"], "host": platform.node()}


def run_preset(name: str, args: argparse.Namespace) -> dict[str, Any]:
    config = preset(name).replace(max_train_samples=args.max_train_samples,
                                  max_eval_samples=args.max_eval_samples,
                                  max_length=args.max_length, epochs=args.epochs)
    started = time.perf_counter()
    settings = TrainRun(max_test_samples=args.max_test_samples, preset=name)
    result: TrainResult = train(args.model, args.data, args.output_dir / name, config, settings,
                                overwrite=True)
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


def stock_trainer(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """The reference: a plain ``Trainer`` with the preset's recipe, from the same text."""
    import numpy as np
    import pandas as pd
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    from imdb_sentiment.data import clean_text, subsample

    config = preset(name).replace(max_length=args.max_length, epochs=args.epochs)
    started = time.perf_counter()
    data = Path(args.data)
    train_frame = subsample(pd.read_parquet(data / "train.parquet"), args.max_train_samples, config.seed)
    test_frame = subsample(pd.read_parquet(data / "test.parquet"), args.max_test_samples, config.seed)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    set_seed(config.seed)
    model = AutoModelForSequenceClassification.from_pretrained(args.model, num_labels=2)

    def tokenized(frame: Any) -> list[dict[str, Any]]:
        encoded = tokenizer([clean_text(text) for text in frame["text"]], truncation=True,
                            max_length=config.max_length)
        return [{**{key: values[i] for key, values in encoded.items()}, "labels": int(label)}
                for i, label in enumerate(frame["label"])]

    tokenize_started = time.perf_counter()
    train_set, test_set = tokenized(train_frame), tokenized(test_frame)
    tokenize_seconds = time.perf_counter() - tokenize_started
    cuda = torch.cuda.is_available()
    training_args = TrainingArguments(
        output_dir=str(args.output_dir / f"stock-{name}"), learning_rate=config.learning_rate,
        num_train_epochs=config.epochs, per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=256, warmup_steps=config.warmup, weight_decay=config.weight_decay,
        bf16=cuda and config.precision != "fp32", save_strategy="no", eval_strategy="no",
        logging_strategy="no", report_to="none", seed=config.seed, use_cpu=not cuda, disable_tqdm=True)
    trainer = Trainer(model=model, args=training_args, train_dataset=train_set,
                      data_collator=DataCollatorWithPadding(tokenizer))
    train_started = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - train_started
    predict_started = time.perf_counter()
    logits = trainer.predict(test_set).predictions
    predict_seconds = time.perf_counter() - predict_started
    accuracy = float((np.asarray(logits).argmax(axis=-1) == test_frame["label"].to_numpy()).mean())
    return {"accuracy": round(accuracy, 4), "train_seconds": round(train_seconds, 1),
            "tokenize_seconds": round(tokenize_seconds, 1),
            "eval_reviews_per_second": round(len(test_set) / predict_seconds, 1),
            "total_seconds": round(time.perf_counter() - started, 1), "n_train": len(train_set)}


def table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'preset':<12}{'run':<8}{'accuracy':>10}{'train s':>10}{'total s':>10}{'total/train':>13}"
             f"{'eval rev/s':>12}{'train s vs stock':>18}"]
    for row in rows:
        runs = [("ours", row), ("stock", row.get("reference"))]
        for label, run in runs:
            if not run:
                continue
            accuracy = f"{run['accuracy']:.4f}" if run.get("accuracy") is not None else "-"
            ratio = (f"{row['train_seconds'] / row['reference']['train_seconds']:.2f}x"
                     if label == "ours" and row.get("reference") else "")
            lines.append(f"{row['preset']:<12}{label:<8}{accuracy:>10}{run['train_seconds']:>10.1f}"
                         f"{run['total_seconds']:>10.1f}{run['total_seconds'] / run['train_seconds']:>13.2f}"
                         f"{run.get('eval_reviews_per_second') or 0:>12.0f}{ratio:>18}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = [name.strip() for name in args.presets.split(",") if name.strip()]
    env = environment()
    print(f"device: {env['gpu'] or 'CPU (no GPU found)'}; torch {env['torch']}, "
          f"transformers {env['transformers']}", flush=True)
    try:
        rows = []
        for name in names:
            row = run_preset(name, args)
            if args.reference:
                row["reference"] = stock_trainer(name, args)
            rows.append(row)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    results = {"environment": env, "model": args.model, "data": args.data, "runs": rows}
    write_result(args.output_dir / "results.json", results)
    print(table(rows))
    print(f"results: {args.output_dir / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
