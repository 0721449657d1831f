"""Train and score the three bag-of-words baselines on the full IMDB splits (CPU only).

Each model trains on the train split (less the carved validation split), reports validation
accuracy and is evaluated on all 25,000 test reviews. Prints a table and writes
``benchmarks/results/baselines.json``. The targets checked:
NB-SVM >= 0.91 in under two minutes, logistic regression >= 0.90, Random Forest 0.83-0.87
(the reference study reported 0.85).

    python benchmarks/baselines.py [--data ../shared/data/imdb] [--models nbsvm,logreg]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import SHARED, machine_facts, result_path, write_result

# Test accuracy range and time limit (seconds, whole run) each baseline must meet.
TARGETS: dict[str, dict[str, float]] = {
    "nbsvm": {"min_accuracy": 0.91, "max_seconds": 120},
    "logreg": {"min_accuracy": 0.90},
    "random-forest": {"min_accuracy": 0.83, "max_accuracy": 0.87},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(SHARED / "data" / "imdb"))
    parser.add_argument("--models", default="nbsvm,logreg,random-forest",
                        help="comma-separated baselines (with targets: " + ", ".join(TARGETS) + ")")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--results", type=Path, default=result_path("baselines"))
    parser.add_argument("--models-dir", type=Path, default=None,
                        help="keep the trained models here (default: a temporary folder)")
    return parser.parse_args(argv)


def check(name: str, metrics: dict[str, Any]) -> list[str]:
    """The targets ``metrics`` misses (empty when all are met)."""
    target, misses = TARGETS.get(name, {}), []
    if metrics["accuracy"] < target.get("min_accuracy", 0.0):
        misses.append(f"accuracy below {target['min_accuracy']}")
    if metrics["accuracy"] > target.get("max_accuracy", 1.0):
        misses.append(f"accuracy above {target['max_accuracy']}")
    if metrics["seconds"] > target.get("max_seconds", float("inf")):
        misses.append(f"slower than {target['max_seconds']:.0f} s")
    return misses


def sklearn_version() -> str:
    import sklearn

    return sklearn.__version__


def table(results: list[dict[str, Any]]) -> str:
    lines = [f"{'model':<15}{'val acc':>9}{'test acc':>10}{'f1':>8}{'train s':>9}{'total s':>9}  targets",
             "-" * 72]
    for row in results:
        lines.append(f"{row['model']:<15}{row['validation_accuracy']:>9.4f}{row['accuracy']:>10.4f}"
                     f"{row['f1']:>8.4f}{row['train_seconds']:>9.1f}{row['seconds']:>9.1f}  "
                     + ("met" if not row["misses"] else "; ".join(row["misses"])))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Loaded after the options are read: scikit-learn takes seconds to import, --help none.
    from imdb_sentiment.baselines import BaselineConfig, run_baseline
    from imdb_sentiment.config import DataSpec
    from imdb_sentiment.errors import UserError

    names = [name.strip() for name in args.models.split(",") if name.strip()]
    results = []
    with tempfile.TemporaryDirectory(prefix="baselines-") as scratch:
        models_dir = args.models_dir or Path(scratch)
        for name in names:
            print(f"== {name}", file=sys.stderr)
            try:
                metrics = run_baseline(DataSpec(str(args.data), seed=args.seed), BaselineConfig(name),
                                       models_dir / name, overwrite=True,
                                       progress=lambda line: print(f"   {line}", file=sys.stderr))
            except UserError as error:
                print(f"error: {error}", file=sys.stderr)
                return 2
            results.append({**metrics, "misses": check(name, metrics)})
    print(table(results))
    facts = machine_facts()
    write_result(args.results, {
        "data": args.data,
        "machine": {"cpus": facts["cpu_count"], "processor": facts["cpu"], "python": facts["python"],
                    "scikit-learn": sklearn_version()},
        "targets": TARGETS,
        "results": [{key: value for key, value in row.items() if key != "data"} for row in results],
    }, facts)
    print(f"wrote {args.results}", file=sys.stderr)
    return 1 if any(row["misses"] for row in results) else 0


if __name__ == "__main__":
    sys.exit(main())
