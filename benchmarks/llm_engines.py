"""Which engine runs a GGUF language model fastest on this CPU, and does it score reviews the same?

The same seeded, label-stratified IMDB test reviews go through the prompted classifier (zero-shot,
bias 0) on each engine: llama.cpp on the file's own quantized weights (when ``llama-cpp-python`` is
installed), and PyTorch fp32 and bf16 on the weights transformers reads from it. Reported per engine:
reviews per second (tokenization included, after a short warm-up), accuracy, and agreement with
PyTorch fp32 (the same predicted label; the correlation of the label log-odds), with the machine's
CPU flags and load: on a shared machine, timings mean little without them.

    python benchmarks/llm_engines.py --model ~/.cache/imdb-sentiment/models/smollm2-135m-instruct \\
        --samples 40
"""

from __future__ import annotations

import argparse
import gc
import time
from typing import Any

import numpy as np
from common import load_average, machine_facts, prediction_parser, test_reviews, write_result

ENGINES = ("llama.cpp gguf", "torch fp32", "torch bf16")
REFERENCE = "torch fp32"
WARM_UP_REVIEWS = 2


def parse_args() -> argparse.Namespace:
    parser = prediction_parser(__doc__, "llm_engines", samples=40,
                               model_help="A GGUF model: a .gguf file, or a folder holding one.")
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES),
                        help="Engines to measure (PyTorch fp32 is the reference and always runs).")
    return parser.parse_args()


def load_engine(model: str, engine: str) -> Any:
    """The prompted classifier as ``predict --backend B --precision P`` loads it (llama.cpp: the file's
    own weights, so precision ``auto``)."""
    from imdb_sentiment.llm import LLMClassifier

    backend, precision = engine.split()
    if backend != "torch":
        precision = "auto"
    return LLMClassifier.load(model, device="cpu", backend=backend, precision=precision)


def measured(classifier: Any, texts: list[str]) -> tuple[np.ndarray, float]:
    classifier.label_log_odds(texts[:WARM_UP_REVIEWS])
    started = time.perf_counter()
    log_odds = classifier.label_log_odds(texts)
    return log_odds, time.perf_counter() - started


def main() -> None:
    args = parse_args()
    texts, labels = test_reviews(args.data, args.samples, args.seed)
    facts = machine_facts()
    names = [REFERENCE, *[name for name in ENGINES if name in args.engines and name != REFERENCE]]
    rows: dict[str, dict[str, Any]] = {}
    reference: np.ndarray | None = None
    info: dict[str, Any] = {}
    for name in names:
        started = time.perf_counter()
        classifier = load_engine(args.model, name)
        load_seconds = time.perf_counter() - started
        log_odds, seconds = measured(classifier, texts)
        info = info or classifier.info()
        engine = classifier.info().get("engine", name)
        del classifier
        gc.collect()
        predicted = (log_odds > 0).astype(int)
        reference = log_odds if reference is None else reference
        rows[name] = {
            "reviews_per_second": round(len(texts) / seconds, 2), "seconds": round(seconds, 2),
            "load_seconds": round(load_seconds, 2),
            "accuracy": round(float((predicted == labels).mean()), 4),
            "agreement_with_fp32": round(float((predicted == (reference > 0)).mean()), 4),
            "log_odds_correlation": round(float(np.corrcoef(log_odds, reference)[0, 1]), 4),
            "log_odds_max_difference": round(float(np.abs(log_odds - reference).max()), 3),
            "engine": engine,
        }
    llm = info["llm"]
    result = {"benchmark": "llm_engines", "model": args.model, "samples": len(texts), "seed": args.seed,
              "max_review_tokens": info["max_length"], "llm": llm, "rows": rows,
              "load_average_after": load_average()}
    print(f"{args.model}: {len(texts)} test reviews, prompts of {llm['prompt_tokens']} tokens plus up to "
          f"{info['max_length']} review tokens")
    print(f"{'engine':<16} {'reviews/s':>10} {'load s':>7} {'accuracy':>9} {'agrees':>7} {'r':>7}")
    for name, row in rows.items():
        print(f"{name:<16} {row['reviews_per_second']:>10.2f} {row['load_seconds']:>7.1f} "
              f"{row['accuracy']:>9.3f} {row['agreement_with_fp32']:>7.3f} "
              f"{row['log_odds_correlation']:>7.3f}")
    print(f"CPU: {facts['cpu']} ({facts['usable_cores']} usable cores, load {facts['load_average']} before, "
          f"{result['load_average_after']} after)  "
          f"flags: {' '.join(facts['cpu_flags']) or 'none listed'}")
    print(f"wrote {write_result(args.output, result, facts)}")


if __name__ == "__main__":
    main()
