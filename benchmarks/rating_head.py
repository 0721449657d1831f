"""Regression or ordinal classes for the star rating? Measured on bag-of-words features (CPU).

The same TF-IDF word 1-2-gram features feed three ways of predicting the 1-10 star rating:

* ``regression``: ridge regression on the rating, clipped to [1, 10];
* ``classes``: multinomial logistic regression over the eight ratings present (1-4, 7-10),
  predicting the median (and, separately, the mean) of the class distribution;
* ``ordinal``: one binary logistic regression per threshold "rating >= r" (cumulative link),
  predicting the median (the highest r with P >= 0.5) and the mean of the implied distribution.

Settings are chosen and scores reported on a validation split carved from IMDB train by movie
(no movie on both sides), so the choice never sees test. Prints a table and writes
``benchmarks/results/rating_head.json``.

    python benchmarks/rating_head.py [--data ../shared/data/imdb] [--max-train 25000]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import SHARED, result_path, write_result


def _scores(true: np.ndarray, stars: np.ndarray) -> dict[str, float]:
    return {"mae": round(float(np.abs(stars - true).mean()), 4),
            "within_one_star": round(float((np.abs(stars - true) <= 1).mean()), 4),
            "accuracy": round(float(((stars > 5.5) == (true > 5.5)).mean()), 4)}


def _carve_by_movie(frame: Any, fraction: float, seed: int) -> tuple[Any, Any]:
    movies = frame["movie"].unique()
    rng = np.random.default_rng(seed)
    held = set(rng.permutation(movies)[: round(len(movies) * fraction)])
    mask = frame["movie"].isin(held).to_numpy()
    return frame[~mask], frame[mask]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(SHARED / "data" / "imdb"))
    parser.add_argument("--max-train", type=int, default=25000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--output", default=str(result_path("rating_head")))
    parser.add_argument("--alphas", default="0.3,1,3", help="Ridge regression penalties to try.")
    parser.add_argument("--cs", default="3", help="Logistic-regression C values to try (classes, ordinal).")
    args = parser.parse_args()
    import pandas as pd
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression, Ridge

    from imdb_sentiment.data import clean_text

    frame = pd.read_parquet(Path(args.data) / "train.parquet")
    frame = frame.assign(text=[clean_text(text) for text in frame["text"]])
    train, validation = _carve_by_movie(frame, 0.1, args.seed)
    train = train.sample(n=min(args.max_train, len(train)), random_state=args.seed)
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_df=0.9, sublinear_tf=True)
    x_train = vectorizer.fit_transform(train["text"])
    x_valid = vectorizer.transform(validation["text"])
    y_train, y_valid = train["rating"].to_numpy(), validation["rating"].to_numpy()
    classes = np.unique(y_train)
    rows: list[dict[str, Any]] = []

    def record(method: str, setting: str, stars: np.ndarray, seconds: float) -> None:
        rows.append({"method": method, "setting": setting, **_scores(y_valid, stars),
                     "fit_seconds": round(seconds, 1)})
        print(f"{method:<20} {setting:<10} " + "  ".join(f"{k} {v}" for k, v in rows[-1].items()
                                                      if k not in ("method", "setting")), flush=True)

    alphas = [float(value) for value in args.alphas.split(",")]
    cs = [float(value) for value in args.cs.split(",")]
    for alpha in alphas:
        started = time.perf_counter()
        ridge = Ridge(alpha=alpha, solver="sparse_cg").fit(x_train, y_train)
        record("regression", f"alpha={alpha:g}", np.clip(ridge.predict(x_valid), 1, 10),
               time.perf_counter() - started)
    for c in cs:
        started = time.perf_counter()
        multi = LogisticRegression(C=c, max_iter=300).fit(x_train, y_train)
        probabilities = multi.predict_proba(x_valid)
        seconds = time.perf_counter() - started
        cumulative = probabilities.cumsum(axis=1)
        record("classes-median", f"C={c:g}", multi.classes_[(cumulative >= 0.5).argmax(axis=1)], seconds)
        record("classes-mean", f"C={c:g}", probabilities @ multi.classes_, seconds)
    for c in cs:
        started = time.perf_counter()
        above = np.column_stack([
            LogisticRegression(C=c, solver="liblinear").fit(x_train, y_train >= r)
            .predict_proba(x_valid)[:, 1] for r in classes[1:]])
        seconds = time.perf_counter() - started
        above = np.minimum.accumulate(above, axis=1)  # P(rating >= r) may not rise with r
        gaps = np.diff(classes)
        record("ordinal-mean", f"C={c:g}", classes[0] + above @ gaps, seconds)
        median = np.array([classes[0] if not (row >= 0.5).any() else classes[1:][row >= 0.5].max()
                           for row in above])
        record("ordinal-median", f"C={c:g}", median, seconds)
    best = min(rows, key=lambda row: row["mae"])
    print(f"lowest validation MAE: {best['method']} {best['setting']} ({best['mae']})")
    write_result(args.output, {"n_train": len(train), "n_validation": len(validation),
                             "validation": "carved from train by movie, 10 %", "rows": rows, "best": best})


if __name__ == "__main__":
    main()
