"""What the benchmarks share: the import path, where things are, their common options, the test
reviews, the facts about the machine and the result files.

The scripts run as ``python benchmarks/NAME.py``, which puts this folder on the import path; importing
this module first also makes the package importable from a bare checkout (``src/``, not installed).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("IMDB_SHARED", ROOT.parent / "shared"))
RESULTS_DIR = ROOT / "benchmarks" / "results"

try:
    import imdb_sentiment  # noqa: F401
except ImportError:  # a bare checkout (e.g. copied to a GPU machine): use the sources
    sys.path.insert(0, str(ROOT / "src"))


def prediction_parser(doc: str | None, results_name: str, *, samples: int | None = None,
                      model_help: str = "Fine-tuned classifier folder.", many_models: bool = False
                      ) -> argparse.ArgumentParser:
    """``--model`` (repeatable, a list, with ``many_models``), ``--data`` (the IMDB test split),
    ``--seed``, ``--output`` (``results/NAME.json``) and, when given a default, ``--samples``; each
    script adds its own options."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, action="append" if many_models else "store",
                        help=model_help + (" (repeatable)" if many_models else ""))
    parser.add_argument("--data", default=str(SHARED / "data" / "imdb" / "test.parquet"))
    if samples is not None:
        parser.add_argument("--samples", type=int, default=samples)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=str(result_path(results_name)))
    return parser


def test_reviews(path: str, samples: int, seed: int) -> tuple[list[str], np.ndarray]:
    """A seeded, label-stratified subset, cleaned once (``<br />`` → space) for every path alike."""
    import pandas as pd

    from imdb_sentiment.data import clean_text, subsample

    frame = subsample(pd.read_parquet(path), samples, seed)
    return [clean_text(text) for text in frame["text"]], frame["label"].to_numpy()


def machine_facts() -> dict[str, Any]:
    """Where a benchmark ran, now: what runs record (``tracking.hardware_tags``: CPU, cores, platform,
    Python, and torch with its GPU when the caller has loaded torch), the CPU flags that decide the
    engine, the cores this process may use and the load average (1, 5, 15 minutes): timings on a
    shared machine mean little without it."""
    from imdb_sentiment.engines import cpu_flags
    from imdb_sentiment.tracking import hardware_tags

    facts: dict[str, Any] = {}
    for key, value in hardware_tags().items():
        facts[key.partition(".")[2] or key] = value
    facts["cpu_count"] = int(facts["cpu_count"])
    if "gpu_count" in facts:
        facts["gpu_count"] = int(facts["gpu_count"])
    affinity = getattr(os, "sched_getaffinity", None)  # Linux only, like the load average
    facts["usable_cores"] = len(affinity(0)) if affinity else facts["cpu_count"]
    facts["cpu_flags"] = cpu_flags()
    facts["load_average"] = load_average()
    return facts


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (empty where the system has none)."""
    return [round(value, 2) for value in os.getloadavg()] if hasattr(os, "getloadavg") else []


def result_path(name_or_path: str | os.PathLike[str]) -> Path:
    """``results/NAME.json`` for a bare name, else the path as given."""
    path = Path(name_or_path)
    return path if path.name != str(name_or_path) or path.suffix == ".json" else RESULTS_DIR / f"{path}.json"


def write_result(name_or_path: str | os.PathLike[str], payload: dict[str, Any],
                 facts: dict[str, Any] | None = None) -> Path:
    """Write a benchmark's result JSON atomically, with the date (UTC) and the machine facts added
    (``facts``: those the script already took and reported, else taken now).

    Keys the payload already has win: a script's own ``date`` stays, and its own ``machine`` entries
    are kept on top of the facts."""
    from imdb_sentiment.artifacts import write_json

    facts = machine_facts() if facts is None else facts
    document = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), **payload,
                "machine": {**facts, **payload.get("machine", {})}}
    return write_json(result_path(name_or_path), document)
