"""CPU prediction speed and accuracy: the transformers pipeline against our paths, one run.

Same fine-tuned model, same seeded, label-stratified IMDB test reviews for every path:

* ``pipeline``  transformers ``pipeline("text-classification")``, one review per call, fp32,
  truncation at 512 tokens (the common way);
* ``torch fp32``  ``SentimentClassifier.load(model, max_length=512)``: PyTorch, length-sorted
  batches, head-tail 512 (the Python API's default back end);
* ``default``  ``backend="auto"``, what ``imdb-sentiment predict`` and ``serve`` run: on a CPU
  without bf16 units, ONNX Runtime int8 on a cached one-time export (its load time includes
  the export when the cache is cold);
* ``as trained``  the same with every setting left to the tool, including the token length
  the model was trained with;
* ``torch int8``  dynamic int8 quantization of the Linear layers;
* ``onnx fp32`` / ``onnx int8``  ``imdb-sentiment export`` folders on ONNX Runtime.

Machines are shared and noisy, so the reviews are split into rounds and every path runs each
round in turn: a slow spell hits all paths alike. Reported: reviews/s, ratio to the pipeline,
accuracy, and agreement with / accuracy delta from our fp32 path on the same reviews.

    python benchmarks/cpu_inference.py --model /tmp/minilm-ft
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from common import machine_facts, prediction_parser, test_reviews, write_result

Predict = Callable[[list[str]], np.ndarray]
"""Texts in, predicted labels (0 negative, 1 positive) out."""


def parse_args() -> argparse.Namespace:
    parser = prediction_parser(__doc__, "cpu_inference", samples=1000)
    parser.add_argument("--rounds", type=int, default=10, help="Interleaved rounds (noise control).")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--skip", nargs="*", default=[], help="Paths to leave out, e.g. 'torch int8'.")
    parser.add_argument("--warm", type=int, default=200,
                        help="Then re-run this many already-seen reviews per path (warm shape caches).")
    return parser.parse_args()


def pipeline_path(model: str) -> Predict:
    from transformers import pipeline

    classify = pipeline("text-classification", model=model, device="cpu", dtype="float32")
    positive = {name for name in classify.model.config.id2label.values() if name.upper().startswith("POS")}

    def predict(texts: list[str]) -> np.ndarray:
        return np.array([int(classify(text, truncation=True, max_length=512)[0]["label"] in positive)
                         for text in texts])

    return predict


def classifier_path(model: str | Path, batch_size: int, **options: object) -> tuple[Predict, dict]:
    from imdb_sentiment.inference import SentimentClassifier

    classifier = SentimentClassifier.load(model, batch_size=batch_size, **options)
    return (lambda texts: classifier.predict_proba(texts).argmax(axis=1)), classifier.info()


def build_paths(args: argparse.Namespace, workdir: Path) -> dict[str, tuple[Predict, dict, float]]:
    """Every path, loaded (and exported where needed), with its load time in seconds."""
    from imdb_sentiment.exporters.onnx import export_onnx

    makers: dict[str, Callable[[], tuple[Predict, dict]]] = {
        "pipeline": lambda: (pipeline_path(args.model), {"batch_size": 1, "precision": "fp32",
                                                         "truncation": "head", "max_length": 512}),
        "torch fp32": lambda: classifier_path(args.model, args.batch_size, precision="fp32",
                                              max_length=512, device="cpu"),
        # What `imdb-sentiment predict` / `serve` run by default (backend auto), at 512 tokens.
        "default": lambda: classifier_path(args.model, args.batch_size, backend="auto", max_length=512),
        # Every setting left to the tool, including the length the model was trained with.
        "as trained": lambda: classifier_path(args.model, args.batch_size, backend="auto"),
        "torch int8": lambda: classifier_path(args.model, args.batch_size, precision="int8",
                                              max_length=512, device="cpu"),
    }
    for quantize in (None, "int8"):
        name = f"onnx {quantize or 'fp32'}"
        if name in args.skip:
            continue
        folder = workdir / name.replace(" ", "-")
        started = time.perf_counter()
        export_onnx(args.model, folder, quantize=quantize)
        print(f"exported {name} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        makers[name] = lambda folder=folder: classifier_path(folder, args.batch_size, max_length=512)
    paths = {}
    for name, make in makers.items():
        if name in args.skip:
            continue
        started = time.perf_counter()
        predict, info = make()
        paths[name] = (predict, info, time.perf_counter() - started)
    return paths


def run_rounds(paths: dict[str, tuple[Predict, dict, float]], texts: list[str], rounds: int
               ) -> tuple[dict[str, np.ndarray], dict[str, float], dict[str, float]]:
    """Predictions, wall seconds and CPU seconds (all threads) per path."""
    predictions = {name: np.empty(len(texts), dtype=np.int64) for name in paths}
    seconds = dict.fromkeys(paths, 0.0)
    cpu_seconds = dict.fromkeys(paths, 0.0)
    for predict, _, _ in paths.values():
        predict(texts[:4])  # warm-up: first-call allocations and lazy initialisation
    for part in np.array_split(np.arange(len(texts)), rounds):
        batch = [texts[i] for i in part]
        for name, (predict, _, _) in paths.items():
            started, cpu_started = time.perf_counter(), time.process_time()
            predictions[name][part] = predict(batch)
            seconds[name] += time.perf_counter() - started
            cpu_seconds[name] += time.process_time() - cpu_started
        print("round done: " + ", ".join(f"{n} {seconds[n]:.0f}s" for n in paths), file=sys.stderr)
    return predictions, seconds, cpu_seconds


def warm_rates(paths: dict[str, tuple[Predict, dict, float]], texts: list[str]) -> dict[str, float]:
    """Reviews/s on reviews each path has already seen: kernels for every input shape are ready.

    PyTorch's CPU kernels are prepared per input shape; one-by-one prediction meets a new
    shape for almost every review, batches of sorted lengths meet few. This separates that
    effect from raw compute speed.
    """
    rates = {}
    for name, (predict, _, _) in paths.items():
        started = time.perf_counter()
        predict(texts)
        rates[name] = round(len(texts) / (time.perf_counter() - started), 2)
    return rates


def report(paths: dict, predictions: dict, seconds: dict, cpu_seconds: dict, labels: np.ndarray
           ) -> list[dict]:
    rows = []
    base_rate = len(labels) / seconds["pipeline"] if "pipeline" in seconds else None
    reference = predictions.get("torch fp32")
    for name, (_, info, load_seconds) in paths.items():
        rate = len(labels) / seconds[name]
        accuracy = float((predictions[name] == labels).mean())
        row = {
            "path": name, "reviews_per_second": round(rate, 2),
            "ratio_to_pipeline": round(rate / base_rate, 2) if base_rate else None,
            "accuracy": round(accuracy, 4), "seconds": round(seconds[name], 2),
            # CPU time is less disturbed by other programs on a shared machine than wall time.
            "cpu_seconds": round(cpu_seconds[name], 2),
            "reviews_per_cpu_second": round(len(labels) / cpu_seconds[name], 2),
            "load_seconds": round(load_seconds, 2),
            "backend": info.get("backend", "transformers pipeline"), "precision": info.get("precision"),
            "truncation": info.get("truncation"), "max_length": info.get("max_length"),
            "batch_size": info.get("batch_size"), "max_batch_tokens": info.get("max_batch_tokens"),
        }
        if reference is not None:
            row["agreement_with_torch_fp32"] = round(float((predictions[name] == reference).mean()), 4)
            row["accuracy_delta_vs_torch_fp32_points"] = round(
                100 * (accuracy - float((reference == labels).mean())), 2)
        rows.append(row)
    return rows


def print_table(rows: list[dict]) -> None:
    print(f"{'path':<12} {'reviews/s':>10} {'x pipeline':>10} {'per cpu-s':>9} {'warm r/s':>9} "
          f"{'warm x':>7} {'accuracy':>9} {'Δ acc pts':>10} {'agree':>7}  settings")
    for row in rows:
        cells = [
            _fmt(row["reviews_per_second"], ">10.1f"), _fmt(row["ratio_to_pipeline"], ">10.2f"),
            _fmt(row["reviews_per_cpu_second"], ">9.1f"),
            _fmt(row.get("warm_reviews_per_second"), ">9.1f"),
            _fmt(row.get("warm_ratio_to_pipeline"), ">7.2f"),
            _fmt(row["accuracy"], ">9.4f"), _fmt(row.get("accuracy_delta_vs_torch_fp32_points"), ">+10.2f"),
            _fmt(row.get("agreement_with_torch_fp32"), ">7.3f"),
        ]
        print(f"{row['path']:<12} {' '.join(cells)}  {row['backend']} {row['precision']} "
              f"{row['truncation']} {row['max_length']} batch {row['batch_size']}")


def _fmt(value: float | None, spec: str) -> str:
    width = int("".join(ch for ch in spec.split(".")[0] if ch.isdigit()))
    return " " * width if value is None else format(value, spec)


def main() -> None:
    args = parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import torch

    texts, labels = test_reviews(args.data, args.samples, args.seed)
    with tempfile.TemporaryDirectory(prefix="cpu-bench-") as workdir:
        os.environ["IMDB_SENTIMENT_CACHE"] = str(Path(workdir) / "cache")  # a cold cache: export timed
        paths = build_paths(args, Path(workdir))
        predictions, seconds, cpu_seconds = run_rounds(paths, texts, args.rounds)
        warm = warm_rates(paths, texts[: args.warm]) if args.warm else {}
    rows = report(paths, predictions, seconds, cpu_seconds, labels)
    for row in rows:
        row["warm_reviews_per_second"] = warm.get(row["path"])
        if warm.get("pipeline") and warm.get(row["path"]):
            row["warm_ratio_to_pipeline"] = round(warm[row["path"]] / warm["pipeline"], 2)
    print_table(rows)
    import onnxruntime

    facts = machine_facts()  # with torch loaded: its version is among them
    write_result(args.output, {
        "benchmark": "cpu_inference",
        "model": args.model, "data": args.data, "reviews": len(texts), "seed": args.seed,
        "rounds": args.rounds,
        "machine": {"cores": facts["cpu_count"], "torch_threads": torch.get_num_threads(),
                    "onnxruntime": onnxruntime.__version__},
        "note": "texts cleaned once (<br /> to space) for every path; same reviews, interleaved rounds",
        "results": rows,
    }, facts)
    print(f"-> {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
