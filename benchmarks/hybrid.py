"""The hybrid classifier on IMDB: accuracy, transformer share and speed of each mode, next to its parts.

    python benchmarks/hybrid.py --baseline outputs/nbsvm-random42 --cache outputs/hybrid-cache

The transformer (``../shared/models/minilm-imdb-fast``) was fine-tuned with validation carved at
random (seed 42, 10 %), so those 2,5xx validation reviews are the only labelled ones neither part
saw: every choice is made there, the test split only measures. ``--baseline`` must be an NB-SVM
trained on the same train part (``imdb-sentiment baseline --data ../shared/data/imdb``).

The transformer's probabilities come from ``--cache`` (filled by ``benchmarks/score_cache.py``;
reviews missing from it are scored now and added), so the full-test rows cost a long CPU run once.
Rows are reported for the seeded, label-balanced ``--samples`` test subset and, when the cache
holds all of it, the full test split. The blend and threshold are chosen two ways:

* ``naive``: on the screen's own validation scores (it was trained on other reviews of the same
  movies, so it looks better there than on test);
* ``refit by movie``: on scores from copies of the screen refit without the validation movies
  (``imdb-sentiment hybrid --refit-by movie``), as on test where every movie is new.

Speed: reviews/s of each mode over ``--speed-samples`` test reviews in this process (model loaded,
after a warm-up), the transformer alone and a ``transformers.pipeline`` measured in the same run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from common import SHARED, machine_facts, result_path, write_result
from score_cache import cached_positive, read_cache


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transformer", default=str(SHARED / "models" / "minilm-imdb-fast"))
    parser.add_argument("--baseline", required=True,
                        help="NB-SVM folder trained on the seed-42 random carve.")
    parser.add_argument("--data", default=str(SHARED / "data" / "imdb"))
    parser.add_argument("--cache", required=True, help="Folder of cached transformer probabilities.")
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0, help="Seed of the test subset.")
    parser.add_argument("--refit-folds", type=int, default=5)
    parser.add_argument("--cached-only", action="store_true",
                        help="Score nothing now: keep only the validation and test-subset reviews already "
                             "in the cache (their counts are reported).")
    parser.add_argument("--refit-only", action="store_true",
                        help="Only compute and cache the screen's refit-by-movie validation scores.")
    parser.add_argument("--thresholds", default="0.3,0.4,0.48",
                        help="User-set cascade thresholds also reported on test (with the refit-by-movie "
                             "blend), to show what trading transformer work for accuracy gives; no choice "
                             "is made from them.")
    parser.add_argument("--speed-samples", type=int, default=200)
    parser.add_argument("--output", default=str(result_path("hybrid")))
    parser.add_argument("--save", help="Also write the hybrid folder chosen with the refit by movie here "
                        "(what `imdb-sentiment hybrid --refit-by movie` writes), e.g. for predict_hybrid.py.")
    return parser.parse_args()


def refit_scores(screen: object, frames: dict, cache: Path, folds: int) -> np.ndarray:
    """The screen's group-out-of-fold validation scores (see ``group_out_of_fold``), cached."""
    from imdb_sentiment.hybrid import group_out_of_fold

    validation = frames["validation"]
    file = cache / f"screen-refit-movie-{folds}.npz"
    if file.is_file():
        saved = np.load(file)
        if saved["ids"].tolist() == validation["id"].tolist():
            return saved["positive"]
    print(f"refitting the screen {folds} times without the validation movies ...", file=sys.stderr)
    positive = group_out_of_fold(screen, frames["train"], validation, "movie", folds)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(file, ids=validation["id"].to_numpy(dtype=str), positive=positive)
    return positive


def rows_for(name: str, screen: np.ndarray, transformer: np.ndarray, labels: np.ndarray,
             choices: dict[str, object], thresholds: tuple[float, ...] = ()) -> list[dict[str, object]]:
    """Accuracy and transformer share of each part and each mode under each choice, then the
    cascade at each user-set threshold with the refit-by-movie blend."""
    from imdb_sentiment.hybrid import combine

    def accuracy(positive: np.ndarray) -> float:
        return round(float(np.mean((positive > 0.5) == labels)), 4)

    rows = [{"split": name, "model": "transformer alone", "accuracy": accuracy(transformer),
             "transformer_share": 1.0},
            {"split": name, "model": "NB-SVM alone", "accuracy": accuracy(screen), "transformer_share": 0.0}]
    for how, choice in choices.items():
        for mode in ("ensemble", "cascade"):
            positive, decided = combine(screen, transformer, mode, choice.threshold, choice.fallback,
                                        choice.stacker)
            rows.append({"split": name, "model": f"hybrid {mode} ({how})", "accuracy": accuracy(positive),
                         "transformer_share": round(float(np.mean(decided != "screen")), 4),
                         "screen_weight": round(choice.stacker.weight, 3),
                         "threshold": choice.threshold if mode == "cascade" else None})
    chosen = choices["refit by movie"]
    for threshold in thresholds:
        positive, decided = combine(screen, transformer, "cascade", threshold, chosen.fallback,
                                    chosen.stacker)
        rows.append({"split": name, "model": f"hybrid cascade, user-set threshold {threshold}",
                     "accuracy": accuracy(positive),
                     "transformer_share": round(float(np.mean(decided != "screen")), 4),
                     "screen_weight": round(chosen.stacker.weight, 3), "threshold": threshold})
    return rows


def speed(args: argparse.Namespace, hybrid_settings: object, texts: list[str]) -> list[dict[str, object]]:
    """Reviews/s in this process: transformer alone, hybrid modes, transformers.pipeline."""
    from imdb_sentiment.baselines import load_baseline
    from imdb_sentiment.hybrid import HybridClassifier, baseline_model_dir
    from imdb_sentiment.inference import SentimentClassifier

    transformer = SentimentClassifier.load(args.transformer, device="cpu", backend="auto")
    screen = load_baseline(baseline_model_dir(args.baseline))
    hybrid = HybridClassifier(screen, transformer, hybrid_settings)  # type: ignore[arg-type]
    runs = {"transformer alone (predict default: onnx int8)": transformer.predict_proba,
            "hybrid cascade": hybrid.override(mode="cascade").predict_proba}
    from transformers import pipeline

    classify = pipeline("text-classification", model=args.transformer, device=-1)
    runs["hybrid ensemble"] = lambda batch: hybrid.override(mode="ensemble").predict_proba(batch)
    runs["transformers.pipeline (fp32, batch 1)"] = lambda batch: classify(batch, truncation=True,
                                                                           max_length=512)
    out = []
    for name, run in runs.items():
        run(texts[:8])  # warm-up
        started = time.perf_counter()
        run(texts)
        seconds = time.perf_counter() - started
        out.append({"model": name, "reviews_per_second": round(len(texts) / seconds, 2)})
    return out


def main() -> None:
    args = parse_args()
    from imdb_sentiment.baselines import load_baseline
    from imdb_sentiment.data import load_splits, subsample
    from imdb_sentiment.hybrid import (
        HybridConfig,
        HybridSettings,
        baseline_model_dir,
        choose,
        save_hybrid,
    )
    from imdb_sentiment.inference import SentimentClassifier

    frames = load_splits(args.data, seed=42, validation_size=0.1, require=("train", "validation", "test"))
    validation, test = frames["validation"], frames["test"]
    screen = load_baseline(baseline_model_dir(args.baseline))
    cache = Path(args.cache)
    if args.refit_only:
        refit_scores(screen, frames, cache, args.refit_folds)
        return
    val_refit = refit_scores(screen, frames, cache, args.refit_folds)
    if args.cached_only:  # the validation reviews scored so far (score_cache.py keeps them balanced)
        scored = validation["id"].isin(set(read_cache(cache))).to_numpy()
        validation, val_refit = validation[scored], val_refit[scored]
    transformer = None
    if not set(validation["id"]) <= set(read_cache(cache)):
        transformer = SentimentClassifier.load(args.transformer, device="cpu", backend="auto")
    val_t = cached_positive(transformer, validation, cache)
    val_labels = validation["label"].to_numpy()
    print(f"validation: {len(validation):,} reviews, {int(val_labels.sum()):,} positive", file=sys.stderr)
    val_screen = screen.predict_proba(validation["text"].tolist())[:, 1]
    choices = {"naive": choose(val_screen, val_t, val_labels),
               "refit by movie": choose(val_refit, val_t, val_labels)}
    rows = rows_for("validation (own scores)", val_screen, val_t, val_labels, choices)
    rows += rows_for("validation (refit by movie)", val_refit, val_t, val_labels, choices)

    thresholds = tuple(float(value) for value in args.thresholds.split(",") if value.strip())
    known = read_cache(cache)
    subset = subsample(test, args.samples, args.seed)
    if args.cached_only:
        subset = subset[subset["id"].isin(set(known))]
    sets = {f"test subset {len(subset):,} of {args.samples:,} (seed {args.seed})": subset}
    if set(test["id"]) <= set(known):
        sets["test (all 25,000)"] = test
    else:
        print(f"the cache holds {sum(i in known for i in test['id'])} of {len(test)} test reviews: "
              "full-test rows skipped", file=sys.stderr)
    for name, frame in sets.items():
        if frame.empty:
            continue
        if transformer is None and not set(frame["id"]) <= set(known):
            transformer = SentimentClassifier.load(args.transformer, device="cpu", backend="auto")
        positive = cached_positive(transformer, frame, cache)
        rows += rows_for(name, screen.predict_proba(frame["text"].tolist())[:, 1], positive,
                         frame["label"].to_numpy(), choices, thresholds)

    chosen = choices["refit by movie"]
    settings = HybridSettings(mode="cascade", threshold=chosen.threshold, fallback=chosen.fallback,
                              stacker=chosen.stacker)
    if args.save:
        transformer_dir = Path(args.transformer)
        save_hybrid(args.save, HybridSettings(transformer_labels=[0, 1]), chosen,
                    baseline_model_dir(args.baseline), transformer_dir,
                    HybridConfig(refit_by="movie", refit_folds=args.refit_folds),
                    {"n_validation": len(validation), "data": args.data,
                     "transformer_scores": "int8 ONNX Runtime (cached)"}, overwrite=True)
    speeds = []
    if args.speed_samples:
        speeds = speed(args, settings, subsample(test, args.speed_samples, args.seed + 1)["text"].tolist())

    print("| split | model | accuracy | transformer share | screen weight | threshold |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        threshold = "" if row.get("threshold") is None else row["threshold"]
        print(f"| {row['split']} | {row['model']} | {row['accuracy']:.4f} | {row['transformer_share']:.1%} | "
              f"{row.get('screen_weight', '')} | {threshold} |")
    print(f"\n| model | reviews/s ({args.speed_samples} test reviews, this process) |\n|---|---|")
    for row in speeds:
        print(f"| {row['model']} | {row['reviews_per_second']} |")
    facts = machine_facts()
    summary = {
        "choices": {how: {"screen_weight": round(c.stacker.weight, 4), "stacker": vars(c.stacker),
                          "threshold": c.threshold, "fallback": c.fallback, "validation_accuracy": c.accuracy,
                          "validation_transformer_share": c.transformer_share}
                    for how, c in choices.items()},
        "rows": rows, "speed": speeds, "cpu": facts["cpu"], "cpu_flags": facts["cpu_flags"],
        "cpus": facts["cpu_count"], "load_average_1min_at_end": facts["load_average"][0],
        "note": "transformer scores from the int8 ONNX Runtime engine (predict's default on this CPU)",
    }
    write_result(args.output, summary, facts)
    print(f"\nwritten to {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
