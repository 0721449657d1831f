"""Prediction speed of fine-tuned encoders of different sizes on this CPU: the same reviews, the same
run, rounds interleaved so a slow spell of a shared machine hits every model alike.

    python benchmarks/encoder_speed.py --model ../shared/models/minilm-imdb-fast --model /tmp/mpnet-ft \\
        --samples 200 --rounds 4 --max-length 512

Each model runs as ``predict`` runs it (``--backend auto``: the engine measured fastest for it on
this CPU, cached) and, with ``--torch``, also on PyTorch at its default precision. Reported:
reviews/s, the ratio to the first model, and the engine each ran on.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import machine_facts, prediction_parser, test_reviews, write_result


def parse_args() -> argparse.Namespace:
    parser = prediction_parser(__doc__, "encoder_speed", samples=200, model_help="A fine-tuned model.",
                               many_models=True)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=512,
                        help="Tokens per review for every model (the same work for each).")
    parser.add_argument("--torch", action="store_true", help="Also time each model on PyTorch.")
    return parser.parse_args()


def main() -> None:
    from imdb_sentiment.config import InferenceConfig
    from imdb_sentiment.hybrid import load_model

    args = parse_args()
    texts, _ = test_reviews(args.data, args.samples, args.seed)
    runs: dict[str, Any] = {}
    for model in args.model:
        backends = ("auto", "torch") if args.torch else ("auto",)
        for backend in backends:
            began = time.monotonic()
            classifier = load_model(model, InferenceConfig(backend=backend, max_length=args.max_length))
            info = classifier.info()
            classifier.predict_proba(texts[:8])  # warm-up
            runs[f"{Path(model).name} ({backend})"] = {
                "classifier": classifier, "seconds": 0.0, "load_seconds": time.monotonic() - began,
                "engine": f"{info['backend']} {info['precision']}", "max_length": info["max_length"]}
    rounds = np.array_split(np.arange(len(texts)), args.rounds)
    for part in rounds:
        chunk = [texts[i] for i in part]
        for run in runs.values():
            began = time.monotonic()
            run["classifier"].predict_proba(chunk)
            run["seconds"] += time.monotonic() - began
    first = next(iter(runs.values()))
    rows = []
    print(f"\n{'model':40} {'engine':14} {'tokens':>6} {'reviews/s':>9} {'vs first':>8}")
    for name, run in runs.items():
        rate = len(texts) / run["seconds"]
        ratio = rate / (len(texts) / first["seconds"])
        rows.append({"model": name, "engine": run["engine"], "max_length": run["max_length"],
                     "reviews_per_second": rate, "ratio_to_first": ratio,
                     "load_seconds": run["load_seconds"]})
        print(f"{name:40} {run['engine']:14} {run['max_length']:6} {rate:9.2f} {ratio:8.2f}")
    write_result(args.output, {"samples": len(texts), "rounds": args.rounds, "rows": rows,
                               "machine": machine_facts()})


if __name__ == "__main__":
    main()
