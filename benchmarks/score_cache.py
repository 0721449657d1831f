"""Transformer probabilities cached per review id, so slow CPU scoring is done once and resumes.

``python benchmarks/score_cache.py --model DIR --cache DIR`` fills the cache in the order the hybrid
benchmark needs it: the random-carve validation split (seed 42, 10 %: the reviews the shared
fine-tuned model never saw), the 2,000- and 600-review test subsets, then the whole test split.
An interrupted run loses at most one chunk.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from common import SHARED

if TYPE_CHECKING:
    import pandas as pd

CHUNK = 100


def read_cache(cache: Path) -> dict[str, float]:
    """Every cached ``id -> P(positive)``."""
    found: dict[str, float] = {}
    for file in sorted(cache.glob("part-*.npz")):
        saved = np.load(file)
        found.update(zip(saved["ids"].tolist(), saved["positive"].tolist(), strict=True))
    return found


def cached_positive(classifier, frame: pd.DataFrame, cache: Path, log: bool = True) -> np.ndarray:
    """P(positive) per row of ``frame`` (columns ``id``, ``text``); unseen ids are scored and saved."""
    cache.mkdir(parents=True, exist_ok=True)
    known = read_cache(cache)
    ids = frame["id"].astype(str).tolist()
    todo = [i for i, key in enumerate(ids) if key not in known]
    texts = frame["text"].tolist()
    for start in range(0, len(todo), CHUNK):
        rows = todo[start : start + CHUNK]
        began = time.perf_counter()
        positive = classifier.predict_proba([texts[i] for i in rows])[:, 1]
        name = f"part-{time.time_ns()}"
        np.savez(cache / f"{name}.tmp.npz", ids=np.array([ids[i] for i in rows]), positive=positive)
        (cache / f"{name}.tmp.npz").replace(cache / f"{name}.npz")
        known.update(zip([ids[i] for i in rows], positive.tolist(), strict=True))
        if log:
            print(f"{start + len(rows)}/{len(todo)} scored, "
                  f"{len(rows) / (time.perf_counter() - began):.1f} reviews/s", flush=True)
    return np.array([known[key] for key in ids], dtype=np.float32)


def balanced_order(frame: pd.DataFrame, cache: Path, limit: int | None, seed: int = 0) -> pd.DataFrame:
    """``frame`` shuffled so that labels stay balanced among the cached reviews at every point,
    cut where ``limit`` reviews (cached ones included) are reached: a stopped run leaves a
    usable, nearly balanced part."""
    import pandas as pd

    known = read_cache(cache)
    shuffled = frame.sample(frac=1.0, random_state=seed)
    cached = shuffled["id"].isin(set(known))
    todo = shuffled[~cached]
    done = todo["label"].map(shuffled[cached]["label"].value_counts()).fillna(0)
    rank = todo.groupby("label").cumcount() + done
    keep = todo.iloc[np.argsort(rank.to_numpy(), kind="stable")]
    keep = keep.head(max(0, (limit or len(frame)) - int(cached.sum())))
    return pd.concat([shuffled[cached], keep])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", default=str(SHARED / "data" / "imdb"))
    parser.add_argument("--cache", required=True)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--validation-max", type=int, default=None,
                        help="Stop validation at this many reviews (label-balanced), then go on to test.")
    parser.add_argument("--threads", type=int, default=0,
                        help="ONNX Runtime threads, without spin-waiting (0: its default). One thread "
                             "wastes nothing on a crowded machine.")
    args = parser.parse_args()
    from imdb_sentiment.data import load_splits, subsample
    from imdb_sentiment.inference import SentimentClassifier

    classifier = SentimentClassifier.load(args.model, device="cpu", backend=args.backend)
    if args.threads and classifier.backend.name == "onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = args.threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        path = classifier.backend.session._model_path
        classifier.backend.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    print(classifier.info(), flush=True)
    frames = load_splits(args.data, seed=42, validation_size=0.1, require=("train", "validation", "test"))
    validation = balanced_order(frames["validation"], Path(args.cache), args.validation_max)
    for name, frame in (("validation", validation),
                        ("test 2,000", subsample(frames["test"], 2000, 0)),
                        ("test 600", subsample(frames["test"], 600, 0)),
                        ("test", frames["test"])):
        print(f"--- {name}", flush=True)
        cached_positive(classifier, frame, Path(args.cache))


if __name__ == "__main__":
    main()
