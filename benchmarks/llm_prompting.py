"""A prompted LLM as a classifier: zero- and k-shot, each with and without the bias fitted on
validation, on the same seeded IMDB test reviews; and the speed of our scoring against a naive loop.

Accuracy: demonstrations are drawn from the training part of train (seeded, balanced, at most
``--shot-max-tokens`` tokens), the bias is fitted on a label-balanced validation sample carved by
movie from train, and the variant to use is chosen on validation accuracy, never on test. The label
log-odds of every review are kept in ``--cache-dir`` as they are computed, so a stopped run goes on
where it stopped (the machine it resumes on is recorded too).

Speed (``--speed-samples``): the naive loop (each whole prompt through the model at once, one review
at a time, all logits) against our scoring (the fixed prefix computed once, next-token logits only),
on the same reviews in the same run, torch fp32, and our chosen engine.

    python benchmarks/llm_prompting.py --model ~/.cache/imdb-sentiment/models/qwen2.5-coder-0.5b-instruct \\
        --shots 0,4 --samples 1000 --validation-samples 200
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import SHARED, machine_facts, prediction_parser, test_reviews, write_result

CHUNK = 25
"""Reviews scored between two saves of the cache."""


def parse_args() -> argparse.Namespace:
    parser = prediction_parser(__doc__, "llm_prompting", samples=1000,
                               model_help="Causal LM: a GGUF file or folder, or a causal LM model folder.")
    parser.add_argument("--train", default=str(SHARED / "data" / "imdb" / "train.parquet"),
                        help="Demonstrations and validation come from here (never the test split).")
    parser.add_argument("--shots", default="0,4", help="Comma-separated demonstration counts.")
    parser.add_argument("--shot-max-tokens", type=int, default=160)
    parser.add_argument("--validation-samples", type=int, default=200)
    parser.add_argument("--max-review-tokens", type=int, default=None, help="Default: the prompt settings'.")
    parser.add_argument("--backend", default="auto", help="auto (measured), torch or llama.cpp.")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--speed-samples", type=int, default=0,
                        help="Also time the naive loop against ours on this many test reviews (4-shot).")
    parser.add_argument("--compare", action="append", default=[],
                        help="Also score this model (fine-tuned folder, hybrid folder, ...) on the same test "
                             "reviews, for accuracy and reviews/s beside the prompted LLM; repeatable.")
    parser.add_argument("--stop-after", type=float, default=None,
                        help="Stop (resumably) after this many minutes; the table shows what is done.")
    parser.add_argument("--cache-dir", default=str(Path.home() / ".cache" / "imdb-sentiment" / "bench"))
    return parser.parse_args()


def carve(train_path: str, seed: int, validation_samples: int) -> tuple[Any, list[str], np.ndarray]:
    """The training part (demonstrations come from it) and a balanced validation sample, carved by movie."""
    from imdb_sentiment.config import DataSpec
    from imdb_sentiment.prompt_fitting import balanced_sample

    splits = DataSpec(train_path, validation_size=0.1, group_column="movie", seed=seed).load(
        ("train", "validation"))
    validation = splits["validation"]
    rows = balanced_sample(validation["label"].to_numpy(), validation_samples, seed)
    return splits["train"], validation["text"].iloc[rows].tolist(), validation["label"].to_numpy()[rows]


class LogOddsCache:
    """Label log-odds of a list of reviews under one prompt, saved as they come in. The file also
    holds a digest of the reviews, so other reviews under the same key (another ``--data``) are
    scored afresh instead of being read back."""

    def __init__(self, folder: Path, key: dict[str, Any], texts: list[str]) -> None:
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        self.path = folder / f"llm-{digest}.json"
        self.key = key
        self.texts = hashlib.sha256("\n".join(texts).encode()).hexdigest()
        self.values: list[float] = []
        if self.path.is_file():
            saved = json.loads(self.path.read_text())
            if saved.get("key") == key and saved.get("texts", self.texts) == self.texts:
                self.values = list(saved["log_odds"])[:len(texts)]

    def save(self) -> None:
        from imdb_sentiment.artifacts import atomic_write_text

        atomic_write_text(self.path, json.dumps({"key": self.key, "texts": self.texts,
                                                 "log_odds": self.values}))


def score(classifier: Any, texts: list[str], cache: LogOddsCache, deadline: float | None
          ) -> tuple[int, float]:
    """Fill the cache up to ``len(texts)``; returns the reviews scored now and the seconds they took."""
    done_before, seconds = len(cache.values), 0.0
    while len(cache.values) < len(texts):
        if deadline is not None and time.monotonic() > deadline:
            break
        part = texts[len(cache.values):len(cache.values) + CHUNK]
        started = time.perf_counter()
        cache.values += [float(value) for value in classifier.label_log_odds(part)]
        seconds += time.perf_counter() - started
        cache.save()
    return len(cache.values) - done_before, seconds


def accuracy(log_odds: np.ndarray, labels: np.ndarray, bias: float) -> float:
    return round(float(((log_odds + bias > 0).astype(int) == labels[:len(log_odds)]).mean()), 4)


def naive_seconds(classifier: Any, texts: list[str]) -> tuple[float, np.ndarray]:
    """A plain loop: each review's whole prompt (chat template rendered as text, then tokenized) through
    a transformers model in one call, batch 1, logits at every position."""
    import torch

    from imdb_sentiment.llm import REVIEW_SLOT

    model = classifier.runner.model
    tokenizer, settings = classifier.tokenizer, classifier.settings
    turns = [{"role": "system", "content": settings.system}]
    for item in settings.demonstrations:
        turns += [{"role": "user", "content": settings.user.replace(REVIEW_SLOT, item["review"])},
                  {"role": "assistant", "content": settings.verbalizers[item["label"]]}]
    label_ids = list(classifier.prompt.label_ids)
    started = time.perf_counter()
    out = []
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"][:classifier.max_length]
        review = tokenizer.decode(ids)
        messages = [*turns, {"role": "user", "content": settings.user.replace(REVIEW_SLOT, review)}]
        prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        with torch.inference_mode():
            logits = model(**inputs).logits[0, -1, label_ids].float()
        out.append(float(logits[1] - logits[0]))
    return time.perf_counter() - started, np.asarray(out)


def main() -> None:
    args = parse_args()
    from dataclasses import replace

    from imdb_sentiment.llm import LLMClassifier, best_bias
    from imdb_sentiment.prompt_fitting import draw_demonstrations

    deadline = None if args.stop_after is None else time.monotonic() + 60 * args.stop_after
    texts, labels = test_reviews(args.data, args.samples, args.seed)
    train, validation_texts, validation_labels = carve(args.train, args.seed, args.validation_samples)
    facts = machine_facts()
    options: dict[str, Any] = {"backend": args.backend, "batch_size": args.batch_size}
    if args.max_review_tokens is not None:
        options["max_length"] = args.max_review_tokens
    started = time.perf_counter()
    classifier = LLMClassifier.load(args.model, **options)
    load_seconds = time.perf_counter() - started
    base = classifier.settings
    cache_dir = Path(args.cache_dir).expanduser()
    rows: dict[str, dict[str, Any]] = {}
    prompts: dict[str, Any] = {}
    for shots in [int(item) for item in args.shots.split(",")]:
        demonstrations = draw_demonstrations(train["text"].tolist(), train["label"].tolist(), shots,
                                             seed=args.seed, max_tokens=args.shot_max_tokens,
                                             tokenizer=classifier.tokenizer)
        prompts[f"{shots}-shot"] = replace(base, demonstrations=demonstrations, bias=0.0)
        rows[f"{shots}-shot"] = {"shots": shots}
    # Validation first for every variant, then test, best variant on validation first: a run stopped
    # early has scored the reviews that decide the choice, and the chosen variant's test reviews.
    for split in ("validation", "test"):
        order = sorted(rows, key=lambda name: -rows[name].get("validation_accuracy_calibrated", 0.0))
        for name in order:
            found = rows[name]
            classifier.use_settings(prompts[name])
            key = {"model": str(Path(args.model).expanduser().resolve()),
                   "settings": classifier.settings.to_toml(), "max_length": classifier.max_length,
                   "seed": args.seed}
            found["prompt_tokens"] = len(classifier.prompt.prefix) + len(classifier.prompt.suffix)
            split_texts, split_labels = (validation_texts, validation_labels) if split == "validation" \
                else (texts, labels)
            cache = LogOddsCache(cache_dir, {**key, "split": split, "n": len(split_texts)}, split_texts)
            count, seconds = score(classifier, split_texts, cache, deadline)
            values = np.asarray(cache.values)
            found[f"{split}_reviews"] = len(values)
            if count:
                found[f"{split}_reviews_per_second_now"] = round(count / seconds, 3)
            if split == "validation" and len(values) == len(split_texts):
                bias = best_bias(values, split_labels.astype(int))
                found["bias"] = bias
                found["validation_accuracy"] = accuracy(values, split_labels, 0.0)
                found["validation_accuracy_calibrated"] = accuracy(values, split_labels, bias)
            if split == "test" and len(values) and "bias" in found:
                bias = found["bias"]
                found["test_accuracy"] = accuracy(values, labels, 0.0)
                found["test_accuracy_calibrated"] = accuracy(values, labels, bias)
                found["test_positive_share"] = round(float((values > 0).mean()), 4)
                found["test_positive_share_calibrated"] = round(float((values + bias > 0).mean()), 4)
    complete = {name: row for name, row in rows.items() if row.get("test_reviews") == len(texts)
                and "bias" in row}
    chosen = None
    if complete:  # the variant with the best validation accuracy (calibrated or not), ties to fewer shots
        options_seen = [(row["validation_accuracy_calibrated"], -row["shots"], 1, name) for name, row in
                        complete.items()] + [(row["validation_accuracy"], -row["shots"], 0, name)
                                             for name, row in complete.items()]
        best = max(options_seen)
        row = complete[best[3]]
        chosen = {"variant": best[3], "calibrated": bool(best[2]),
                  "test_accuracy": row["test_accuracy_calibrated" if best[2] else "test_accuracy"]}
    compared = {path: compare(path, texts, labels) for path in args.compare}
    speed = None
    if args.speed_samples:
        speed = speed_rows(classifier, base, train, texts[:args.speed_samples], args, draw_demonstrations)
    info = classifier.info()
    result = {"model": args.model, "engine": info.get("engine"), "engine_reason": info.get("engine_reason"),
              "max_review_tokens": classifier.max_length, "samples": len(texts),
              "validation_samples": len(validation_texts), "seed": args.seed,
              "shot_max_tokens": args.shot_max_tokens, "load_seconds": round(load_seconds, 2),
              "rows": rows, "chosen_on_validation": chosen, "speed": speed, "compared": compared}
    print(f"{args.model} on {info.get('engine')}: {len(texts)} test reviews, {len(validation_texts)} "
          f"validation reviews (carved by movie from train), review tokens <= {classifier.max_length}")
    print(f"{'variant':<8} {'val':>6} {'val cal':>8} {'bias':>7} {'test':>6} {'test cal':>9} {'pos':>5} "
          f"{'pos cal':>8} {'done':>9}")
    for name, row in rows.items():
        def cell(key: str, width: int, row: dict[str, Any] = row) -> str:
            value = row.get(key)
            return f"{value:>{width}.3f}" if isinstance(value, float) else f"{'-':>{width}}"
        print(f"{name:<8} {cell('validation_accuracy', 6)} {cell('validation_accuracy_calibrated', 8)} "
              f"{cell('bias', 7)} {cell('test_accuracy', 6)} {cell('test_accuracy_calibrated', 9)} "
              f"{cell('test_positive_share', 5)} {cell('test_positive_share_calibrated', 8)} "
              f"{row['test_reviews']:>4}/{len(texts)}")
    if chosen:
        print(f"chosen on validation: {chosen['variant']}{' calibrated' if chosen['calibrated'] else ''}"
              f" -> test accuracy {chosen['test_accuracy']:.4f}")
    if speed:
        print(f"speed, {speed['reviews']} reviews, {speed['shots']}-shot: naive loop "
              f"{speed['naive_reviews_per_second']} reviews/s, ours torch "
              f"{speed['ours_torch_reviews_per_second']} reviews/s ({speed['torch_speedup']}x), "
              f"ours on {info.get('engine')} "
              f"{speed['ours_reviews_per_second']} reviews/s ({speed['speedup']}x)")
    for path, row in compared.items():
        print(f"beside it, {path}: accuracy {row['test_accuracy']:.4f} at {row['reviews_per_second']} "
              f"reviews/s ({row['engine']})")
    print(f"CPU: {facts['cpu']} ({facts['usable_cores']} usable cores)  "
          f"flags: {' '.join(facts['cpu_flags']) or 'none listed'}  load {facts.get('load_average')}")
    print(f"wrote {write_result(args.output, result, facts)}")


def compare(path: str, texts: list[str], labels: np.ndarray) -> dict[str, Any]:
    """Another model on the same test reviews, on the engine ``predict`` would choose: accuracy and
    reviews/s (after one warm-up batch)."""
    from imdb_sentiment.config import InferenceConfig
    from imdb_sentiment.hybrid import load_model

    classifier = load_model(path, InferenceConfig(backend="auto"))
    classifier.predict_proba(texts[:8])
    started = time.perf_counter()
    probabilities = classifier.predict_proba(texts)
    seconds = time.perf_counter() - started
    info = classifier.info()
    return {"test_accuracy": round(float(((probabilities[:, 1] > 0.5).astype(int) == labels).mean()), 4),
            "reviews_per_second": round(len(texts) / seconds, 2),
            "engine": info.get("engine") or f"{info.get('backend')} {info.get('precision')}"}


def speed_rows(classifier: Any, base: Any, train: Any, texts: list[str], args: argparse.Namespace,
               draw: Any) -> dict[str, Any]:
    """Naive loop against ours, 4-shot, same reviews, same run: torch fp32 for both, then our engine."""
    from dataclasses import replace

    from imdb_sentiment.llm import LLMClassifier

    shots = 4
    demonstrations = draw(train["text"].tolist(), train["label"].tolist(), shots, seed=args.seed,
                          max_tokens=args.shot_max_tokens, tokenizer=classifier.tokenizer)
    settings = replace(base, demonstrations=demonstrations, bias=0.0)
    torch_classifier = LLMClassifier.load(args.model, backend="torch", precision="fp32",
                                          max_length=classifier.max_length, settings=settings)
    naive, naive_odds = naive_seconds(torch_classifier, texts)
    started = time.perf_counter()
    ours_odds = torch_classifier.label_log_odds(texts)
    ours_torch = time.perf_counter() - started
    classifier.use_settings(settings)
    started = time.perf_counter()
    classifier.label_log_odds(texts)
    ours = time.perf_counter() - started
    agree = float(np.mean((naive_odds > 0) == (ours_odds > 0)))
    return {"reviews": len(texts), "shots": shots,
            "naive_reviews_per_second": round(len(texts) / naive, 3),
            "ours_torch_reviews_per_second": round(len(texts) / ours_torch, 3),
            "ours_reviews_per_second": round(len(texts) / ours, 3),
            "torch_speedup": round(naive / ours_torch, 2), "speedup": round(naive / ours, 2),
            "naive_and_ours_agree": round(agree, 4)}


if __name__ == "__main__":
    main()
