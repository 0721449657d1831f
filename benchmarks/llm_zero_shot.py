"""A prompted causal LM as a zero-shot sentiment classifier, then with its label bias calibrated.

The model (a GGUF file or folder, or a causal LM folder) reads each review in its prompt once;
P(positive) is the softmax over the next-token logits of the two label words. Reported on the same
seeded, label-stratified IMDB test reviews: accuracy and the share predicted positive zero-shot
(bias 0) and after :meth:`LLMClassifier.fit_bias` on reviews from the TRAIN split (never test),
with the scoring speed and the machine (CPU flags included).

    python benchmarks/llm_zero_shot.py --model ~/.cache/imdb-sentiment/models/smollm2-135m-instruct \\
        --samples 200 --validation-samples 100
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import SHARED, machine_facts, prediction_parser, test_reviews, write_result


def parse_args() -> argparse.Namespace:
    parser = prediction_parser(__doc__, "llm_zero_shot", samples=200,
                               model_help="Causal LM: a GGUF file or folder, or a causal LM model folder.")
    parser.add_argument("--train", default=str(SHARED / "data" / "imdb" / "train.parquet"),
                        help="Where the validation reviews for the bias come from (never the test split).")
    parser.add_argument("--validation-samples", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=8)
    return parser.parse_args()


def scored(log_odds: np.ndarray, bias: float, labels: np.ndarray) -> dict[str, float]:
    predicted = (log_odds + bias > 0).astype(int)
    return {"accuracy": round(float((predicted == labels).mean()), 4),
            "predicted_positive": round(float(predicted.mean()), 4)}


def main() -> None:
    args = parse_args()
    from imdb_sentiment.llm import LLMClassifier

    texts, labels = test_reviews(args.data, args.samples, args.seed)
    validation_texts, validation_labels = test_reviews(args.train, args.validation_samples, args.seed)
    facts = machine_facts()
    start = time.perf_counter()
    classifier = LLMClassifier.load(args.model, batch_size=args.batch_size)
    load_seconds = time.perf_counter() - start

    start = time.perf_counter()
    log_odds = classifier.label_log_odds(texts)
    test_seconds = time.perf_counter() - start
    start = time.perf_counter()
    bias = classifier.fit_bias(validation_texts, validation_labels)
    validation_seconds = time.perf_counter() - start

    rows = {"zero-shot": {"bias": 0.0, **scored(log_odds, 0.0, labels)},
            "calibrated": {"bias": round(bias, 4), **scored(log_odds, bias, labels)}}
    info = classifier.info()
    result = {
        "model": args.model, "precision": info["precision"], "device": info["device"],
        "llm": info["llm"], "max_review_tokens": info["max_length"],
        "samples": len(texts), "validation_samples": len(validation_texts), "seed": args.seed,
        "rows": rows, "load_seconds": round(load_seconds, 2),
        "reviews_per_second": round(len(texts) / test_seconds, 2),
        "validation_reviews_per_second": round(len(validation_texts) / validation_seconds, 2),
    }
    print(f"{args.model}: {len(texts)} test reviews, bias fitted on {len(validation_texts)} train reviews "
          f"({info['precision']} on {info['device']}, loaded in {load_seconds:.1f} s)")
    print(f"{'':<12} {'bias':>8} {'accuracy':>9} {'pred. pos.':>11}")
    for name, row in rows.items():
        print(f"{name:<12} {row['bias']:>8.3f} {row['accuracy']:>9.3f} {row['predicted_positive']:>11.3f}")
    print(f"speed: {result['reviews_per_second']} reviews/s (test), "
          f"{result['validation_reviews_per_second']} reviews/s (validation)")
    print(f"CPU: {facts['cpu']} ({facts['usable_cores']} usable cores)  "
          f"flags: {' '.join(facts['cpu_flags']) or 'none listed'}")
    print(f"wrote {write_result(args.output, result, facts)}")


if __name__ == "__main__":
    main()
