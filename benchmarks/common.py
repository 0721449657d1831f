"""What the prediction benchmarks share: where things are, their common options, the test reviews.

The scripts run as ``python benchmarks/NAME.py``, which puts this folder on the import path.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("IMDB_SHARED", ROOT.parent / "shared"))
RESULTS_DIR = ROOT / "benchmarks" / "results"


def prediction_parser(doc: str | None, results_name: str, *, samples: int | None = None,
                      model_help: str = "Fine-tuned classifier folder.") -> argparse.ArgumentParser:
    """``--model``, ``--data`` (the IMDB test split), ``--seed``, ``--output`` (``results/NAME.json``)
    and, when given a default, ``--samples``; each script adds its own options."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help=model_help)
    parser.add_argument("--data", default=str(SHARED / "data" / "imdb" / "test.parquet"))
    if samples is not None:
        parser.add_argument("--samples", type=int, default=samples)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=str(RESULTS_DIR / f"{results_name}.json"))
    return parser


def test_reviews(path: str, samples: int, seed: int) -> tuple[list[str], np.ndarray]:
    """A seeded, label-stratified subset, cleaned once (``<br />`` → space) for every path alike."""
    import pandas as pd

    from imdb_sentiment.data import clean_text, subsample

    frame = subsample(pd.read_parquet(path), samples, seed)
    return [clean_text(text) for text in frame["text"]], frame["label"].to_numpy()
