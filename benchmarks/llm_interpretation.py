"""Interpretations by instruction LLMs on seeded test reviews: does the answer parse, are its quotes in
the review, does its sentiment agree with the gold label, how far is its rating from the IMDB stars,
and what does it cost (seconds per review in batches; the first-token latency of a streamed answer).

    M=~/.cache/imdb-sentiment/models
    python benchmarks/llm_interpretation.py --model $M/qwen2.5-coder-0.5b-instruct \\
        --model $M/qwen2.5-coder-1.5b-instruct --samples 200

Beside them, on the same reviews: the fine-tuned classifier's accuracy (``--classifier``) and a
star-rating model's MAE (``--rating-model``, e.g. ``baseline --model ridge-rating``). Answers are
saved per review as they come (``--cache``), so a stopped run continues where it stopped.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import SHARED, machine_facts, prediction_parser, write_result

CACHE = Path.home() / ".cache" / "imdb-sentiment" / "bench"


def parse_args() -> argparse.Namespace:
    parser = prediction_parser(__doc__, "llm_interpretation", samples=200, model_help="An instruction LLM.",
                               many_models=True)
    parser.add_argument("--config", default=None,
                        help="Interpretation settings (default: the packaged ones).")
    parser.add_argument("--classifier", default=str(SHARED / "models" / "minilm-imdb-fast"))
    parser.add_argument("--rating-model", default=None,
                        help="A star-rating model folder to compare MAE with.")
    parser.add_argument("--stream-samples", type=int, default=5, help="Reviews streamed for the latency.")
    parser.add_argument("--timing-samples", type=int, default=16,
                        help="Reviews interpreted again, uncached, for seconds per review on a quiet machine "
                             "(the cached run's own time is kept too).")
    parser.add_argument("--cache", default=str(CACHE))
    return parser.parse_args()


def seeded_reviews(path: str, samples: int, seed: int) -> Any:
    import pandas as pd

    from imdb_sentiment.data import subsample

    return subsample(pd.read_parquet(path), samples, seed).reset_index(drop=True)


class AnswerCache:
    """Answers of one model and settings for one list of reviews, written after every batch."""

    def __init__(self, folder: Path, key: dict[str, Any], texts: list[str]) -> None:
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()
                                + "\n".join(texts).encode()).hexdigest()[:16]
        self.path = folder / f"interpret-{digest}.json"
        self.answers: list[dict[str, Any]] = []
        self.seconds = 0.0
        if self.path.is_file():
            saved = json.loads(self.path.read_text())
            self.answers, self.seconds = saved["answers"][:len(texts)], saved["seconds"]

    def save(self) -> None:
        from imdb_sentiment.artifacts import atomic_write_text

        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, json.dumps({"answers": self.answers, "seconds": self.seconds}))


def figures(answers: list[dict[str, Any]], frame: Any) -> dict[str, Any]:
    rows = len(answers)
    good = [i for i, answer in enumerate(answers) if not answer.get("error")]
    aspects = [item for i in good for item in answers[i]["aspects"]]
    labels = frame["label"].to_numpy()[:rows]
    stars = frame["rating"].to_numpy()[:rows]
    said = np.array([1 if answers[i]["sentiment"] == "positive" else 0 for i in good])
    rated = np.array([answers[i]["rating"] for i in good])
    return {
        "reviews": rows,
        "json_valid": len(good) / rows if rows else None,
        "errors": sorted({answer["error"] for answer in answers if answer.get("error")}),
        "aspects_per_review": len(aspects) / len(good) if good else None,
        "quotes": len(aspects),
        "quotes_verbatim": (sum(item["verbatim"] for item in aspects) / len(aspects)) if aspects else None,
        "sentiment_accuracy": float((said == labels[good]).mean()) if good else None,
        "rating_mae": float(np.abs(rated - stars[good]).mean()) if good else None,
        "rating_within_one": float((np.abs(rated - stars[good]) <= 1).mean()) if good else None,
        "truncated": sum(bool(answers[i]["truncated"]) for i in good),
    }


def run_model(model: str, frame: Any, args: argparse.Namespace) -> dict[str, Any]:
    from imdb_sentiment.interpretation import Interpreter, InterpretSettings

    settings = InterpretSettings.from_file(args.config) if args.config else InterpretSettings.from_file()
    started = time.monotonic()
    interpreter = Interpreter.load(model, settings=settings)
    load_seconds = time.monotonic() - started
    texts = frame["text"].tolist()
    key = {"model": str(Path(model).expanduser().resolve()),
           "settings": json.dumps(settings.__dict__, sort_keys=True),
           "engine": interpreter.info()["engine"], "batch": interpreter.batch_size}
    cache = AnswerCache(Path(args.cache), key, texts)
    while len(cache.answers) < len(texts):
        part = texts[len(cache.answers):len(cache.answers) + interpreter.batch_size * 2]
        began = time.monotonic()
        cache.answers += interpreter.interpret(part)
        cache.seconds += time.monotonic() - began
        cache.save()
        print(f"  {Path(model).name}: {len(cache.answers)}/{len(texts)} "
              f"({cache.seconds / len(cache.answers):.2f} s/review)", flush=True)
    began = time.monotonic()
    interpreter.interpret(texts[:args.timing_samples])
    timed = (time.monotonic() - began) / max(1, min(args.timing_samples, len(texts)))
    latencies, totals = [], []
    for text in texts[:args.stream_samples]:
        began, first = time.monotonic(), None
        for events, event in enumerate(interpreter.stream(text), start=1):
            if first is None and "delta" in event and events >= 2:  # the first delta is the forced '{"...'
                first = time.monotonic() - began
        latencies.append(first)
        totals.append(time.monotonic() - began)
    result = {"model": Path(model).name, "engine": interpreter.info()["engine"], "load_seconds": load_seconds,
              "batch_size": interpreter.batch_size, "seconds_per_review": timed,
              "timing_samples": min(args.timing_samples, len(texts)),
              "seconds_per_review_whole_run": cache.seconds / len(texts),
              "stream_first_token_seconds": float(np.median([x for x in latencies if x is not None])),
              "stream_answer_seconds": float(np.median(totals)), **figures(cache.answers, frame)}
    example = next((answer for answer in cache.answers if not answer.get("error")), None)
    result["example"] = ({"text": texts[cache.answers.index(example)][:600], "answer": example}
                         if example else None)
    return result


def classifier_row(path: str, frame: Any) -> dict[str, Any]:
    from imdb_sentiment.baselines import evaluate_baseline, load_baseline
    from imdb_sentiment.hybrid import load_model

    if any(Path(path).glob("*.skops")):  # a bag-of-words model: a classifier or a star-rating regression
        began = time.monotonic()
        metrics = evaluate_baseline(load_baseline(path), frame)
        row = {"model": f"{Path(path).name} (baseline)", "sentiment_accuracy": metrics["accuracy"],
               "seconds_per_review": (time.monotonic() - began) / len(frame)}
        if "mae" in metrics:
            row["rating_mae"] = metrics["mae"]
        return row
    classifier = load_model(path)
    began = time.monotonic()
    details = classifier.predict_details(frame["text"].tolist())
    seconds = time.monotonic() - began
    said = details.probabilities[:, 1] >= 0.5
    row = {"model": Path(path).name, "sentiment_accuracy": float((said == frame["label"].to_numpy()).mean()),
           "seconds_per_review": seconds / len(frame)}
    if details.stars is not None:
        row["rating_mae"] = float(np.abs(details.stars - frame["rating"].to_numpy()).mean())
    return row


def main() -> None:
    args = parse_args()
    frame = seeded_reviews(args.data, args.samples, args.seed)
    rows = []
    for model in args.model:
        print(f"interpreting {len(frame)} reviews with {model}", flush=True)
        rows.append(run_model(model, frame, args))
    comparisons = [classifier_row(path, frame) for path in (args.classifier, args.rating_model) if path]
    print(f"\n{'model':32} {'engine':11} {'json':>5} {'verbatim':>8} {'acc':>6} {'MAE':>5} {'s/review':>8} "
          f"{'1st token s':>11}")
    for row in rows:
        print(f"{row['model']:32} {row['engine']:11} {row['json_valid']:5.0%} "
              f"{row['quotes_verbatim'] or 0:8.1%} "
              f"{row['sentiment_accuracy']:6.3f} {row['rating_mae']:5.2f} {row['seconds_per_review']:8.2f} "
              f"{row['stream_first_token_seconds']:11.2f}")
    for row in comparisons:
        mae = f"{row['rating_mae']:5.2f}" if "rating_mae" in row else "    -"
        print(f"{row['model']:32} {'':11} {'':>5} {'':>8} {row['sentiment_accuracy']:6.3f} {mae} "
              f"{row['seconds_per_review']:8.3f}")
    write_result(args.output, {"samples": len(frame), "seed": args.seed, "machine": machine_facts(),
                               "interpreters": rows, "comparisons": comparisons})


if __name__ == "__main__":
    main()
