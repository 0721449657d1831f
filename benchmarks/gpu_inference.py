"""Scoring the test split from text on a GPU: our ``evaluate`` path against the stock HF
``pipeline``, same model, same reviews, same GPU, in the same run.

* ``hf pipeline``  ``transformers.pipeline("text-classification")`` in bf16 at ``--pipeline-batch``
  (64, its usual setting), inputs cut to the first 512 tokens: the reference;
* ``ours, cold``  ``evaluate``'s path (``SentimentClassifier`` + ``score_frame``): parallel
  tokenization, head-tail windows, length-sorted batches by tokens, prefetch thread, pinned
  memory; token cache empty;
* ``ours, cached tokens``  the same again with the reviews' tokens in the token cache.

Prints reviews/s, accuracy and the ratio to the pipeline; writes JSON (``--output``).

    python benchmarks/gpu_inference.py --model ../shared/models/minilm-imdb-fast
    python benchmarks/gpu_inference.py --model DIR --smoke      # CPU, 64 reviews: checks the script

A smoke run writes its JSON to the temporary folder unless ``--output`` is given, so it never
replaces a measured result.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import machine_facts, prediction_parser, test_reviews, write_result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = prediction_parser(__doc__, "gpu_inference", samples=25_000,
                               model_help="Fine-tuned classifier, e.g. ../shared/models/minilm-imdb-fast.")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--pipeline-batch", type=int, default=64)
    parser.add_argument("--smoke", action="store_true", help="CPU, 64 reviews, fp32: checks the script runs.")
    args = parser.parse_args(argv)
    if args.smoke:
        args.device, args.samples = "cpu", min(args.samples, 64)
        if args.output == parser.get_default("output"):
            args.output = str(Path(tempfile.gettempdir()) / "gpu_inference-smoke.json")
    return args


def timed(run: Any, count: int) -> tuple[Any, float]:
    started = time.perf_counter()
    result = run()
    return result, count / (time.perf_counter() - started)


def hf_pipeline(args: argparse.Namespace, texts: list[str], labels: np.ndarray) -> dict[str, Any]:
    import torch
    from transformers import pipeline

    dtype = torch.bfloat16 if args.device.startswith("cuda") else torch.float32
    classify = pipeline("text-classification", model=args.model, device=args.device, dtype=dtype)
    classify(texts[:8], batch_size=8, truncation=True, max_length=512)  # warm-up
    out, speed = timed(lambda: classify(texts, batch_size=args.pipeline_batch, truncation=True,
                                        max_length=512), len(texts))
    positive = np.array([str(item["label"]).upper() in ("POSITIVE", "LABEL_1") for item in out])
    return {"path": "hf pipeline", "reviews_per_s": round(speed, 1),
            "accuracy": round(float((positive == labels).mean()), 4), "batch": args.pipeline_batch}


def ours(args: argparse.Namespace, texts: list[str], labels: np.ndarray) -> list[dict[str, Any]]:
    import pandas as pd

    from imdb_sentiment.evaluation import score_frame
    from imdb_sentiment.inference import SentimentClassifier

    precision = "fp32" if args.smoke else "auto"
    classifier = SentimentClassifier.load(args.model, device=args.device, precision=precision,
                                          backend="torch")
    classifier.predict_proba(texts[:8])  # warm-up (CUDA context, kernels)
    frame = pd.DataFrame({"text": texts, "label": labels})
    rows = []
    for name in ("ours, cold", "ours, cached tokens"):
        metrics, _ = score_frame(classifier, frame)
        rows.append({"path": name, "reviews_per_s": metrics["reviews_per_second"],
                     "accuracy": round(metrics["accuracy"], 4), "batch": classifier.batch_size,
                     "max_batch_tokens": classifier.max_batch_tokens, "precision": classifier.precision,
                     "truncation": classifier.truncation})
    return rows


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ["IMDB_SENTIMENT_CACHE"] = tempfile.mkdtemp(prefix="gpu-inference-cache-")  # starts cold
    texts, labels = test_reviews(args.data, args.samples, args.seed)
    rows = [hf_pipeline(args, texts, labels), *ours(args, texts, labels)]
    facts = machine_facts()  # torch is loaded now: its version and the GPU are among them
    device_name = facts.get("gpu") if args.device.startswith("cuda") else facts["cpu"]
    reference = rows[0]["reviews_per_s"]
    print(f"{len(texts):,} reviews on {device_name}")
    print(f"{'path':<22}{'reviews/s':>12}{'vs pipeline':>13}{'accuracy':>10}")
    for row in rows:
        row["vs_pipeline"] = round(row["reviews_per_s"] / reference, 2)
        print(f"{row['path']:<22}{row['reviews_per_s']:>12,.0f}{row['vs_pipeline']:>12.2f}x"
              f"{row['accuracy']:>10.4f}")
    document = {"benchmark": "gpu_inference", "device": device_name, "model": args.model,
                "samples": len(texts), "smoke": args.smoke, "torch": facts["torch"], "rows": rows}
    write_result(args.output, document, facts)
    print(f"-> {args.output}")


if __name__ == "__main__":
    main()
