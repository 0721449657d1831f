"""Host work of scoring, without the model: is the CPU side fast enough to keep a GPU fed?

Per thread count (each in its own process, pinned to that many cores before any library loads)
it times, alternately and ``--repeats`` times, over the same reviews:

* ``tokenizer``  the raw fast tokenizer, ``AutoTokenizer(model)(texts)`` with its own thread pool
  (``TOKENIZERS_PARALLELISM`` left on): the reference;
* ``host``  our whole scoring path, ``SentimentClassifier.predict_proba`` with the model call
  replaced by a no-op: cleaning, parallel tokenization, head-tail windows at 512, length-sorted
  GPU-sized batches padded from the token arrays in the prefetch thread, softmax, input order;
* ``host, cached tokens``  the same with the reviews' tokens read from the token cache (what a
  second ``evaluate``, ``train`` or tuning trial on the same reviews pays).

It prints reviews/s per path (best of the repeats; the machine may be shared) and the ratio
host / tokenizer, and writes JSON with ``tokenizer_reviews_per_s`` and ``host_reviews_per_s`` per
thread count.

    nice -n 10 python benchmarks/host_pipeline.py --model ../shared/models/all-MiniLM-L6-v2
    python benchmarks/host_pipeline.py --model ../shared/models/all-MiniLM-L6-v2 \
        --samples 300 --threads 1 --repeats 1   # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import load_average, machine_facts, prediction_parser, write_result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = prediction_parser(__doc__, "host_pipeline", samples=25_000,
                               model_help="Model folder whose tokenizer is used (no weights are run).")
    parser.add_argument("--threads", default="1,2", help="Comma-separated thread (core) counts.")
    parser.add_argument("--repeats", type=int, default=2, help="Timed passes per path and thread count.")
    parser.add_argument("--device-layout", default="cuda", choices=("cuda", "cpu"),
                        help="Batch sizes of this device (cuda: up to 1,024 rows, 64 Ki tokens).")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


class NoModel:
    """Stands in for the network: zero logits, nothing else."""

    name = "none"
    precision = "fp32"

    def __init__(self, device: str) -> None:
        self.device = device
        self.input_names = ["input_ids", "attention_mask", "token_type_ids"]

    def __call__(self, batch: dict[str, Any]) -> Any:
        import numpy as np

        return np.zeros((len(batch["input_ids"]), 2), dtype=np.float32)


def child(args: argparse.Namespace) -> dict[str, Any]:
    """Runs pinned to ``args.child`` cores; libraries are imported only now, after pinning."""
    import tempfile
    from types import SimpleNamespace

    import pandas as pd
    from transformers import AutoTokenizer

    from imdb_sentiment.data import subsample
    from imdb_sentiment.encoding import TextEncoder
    from imdb_sentiment.inference import InputSettings, SentimentClassifier

    frame = subsample(pd.read_parquet(args.data, columns=["text", "label"]), args.samples, args.seed)
    texts = frame["text"].tolist()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    tokenizer.deprecation_warnings["sequence-length-is-longer-than-the-specified-maximum"] = True
    config = SimpleNamespace(id2label={0: "NEGATIVE", 1: "POSITIVE"}, max_position_embeddings=512)
    classifier = SentimentClassifier(NoModel(args.device_layout), TextEncoder.from_folder(Path(args.model)),
                                     config, InputSettings(truncation="head-tail", max_length=512))
    os.environ["IMDB_SENTIMENT_CACHE"] = tempfile.mkdtemp(prefix="host-pipeline-cache-")

    def timed(run) -> float:
        started = time.perf_counter()
        run()
        return len(texts) / (time.perf_counter() - started)

    paths = {
        "tokenizer": lambda: tokenizer(texts),
        "host": lambda: classifier.predict_proba(texts),
        "host_cached": lambda: classifier.predict_details(texts, cache=True),
    }
    classifier.predict_details(texts, cache=True)  # fills the cache (and warms up)
    speeds: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(args.repeats):  # alternate, so a busy moment hits every path alike
        for name, run in paths.items():
            speeds[name].append(timed(run))
    best = {name: max(values) for name, values in speeds.items()}
    return {
        "threads": args.child, "reviews": len(texts),
        "tokenizer_reviews_per_s": round(best["tokenizer"], 1),
        "host_reviews_per_s": round(best["host"], 1),
        "host_cached_reviews_per_s": round(best["host_cached"], 1),
        "host_vs_tokenizer": round(best["host"] / best["tokenizer"], 3),
        "tokenizer_reviews_per_s_per_core": round(best["tokenizer"] / args.child, 1),
        "host_reviews_per_s_per_core": round(best["host"] / args.child, 1),
        "all_passes": {name: [round(v, 1) for v in values] for name, values in speeds.items()},
        "batches": {"layout": args.device_layout, "batch_size": classifier.batch_size,
                    "max_batch_tokens": classifier.max_batch_tokens},
    }


def run_child(threads: int, argv: list[str]) -> dict[str, Any]:
    cores = sorted(os.sched_getaffinity(0))
    if threads > len(cores):
        raise SystemExit(f"--threads {threads}: only {len(cores)} cores available")
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    env.pop("TOKENIZERS_PARALLELISM", None)  # the reference uses its thread pool
    command = ["taskset", "-c", ",".join(map(str, cores[:threads])), sys.executable, __file__, *argv,
               "--child", str(threads)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"child with {threads} threads failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.child is not None:
        print(json.dumps(child(args)))
        return
    before = machine_facts()
    rows = [run_child(int(count), argv) for count in args.threads.split(",")]
    print(f"{'threads':>7}  {'tokenizer rev/s':>15}  {'host rev/s':>10}  {'host/tok':>8}  "
          f"{'host rev/s/core':>15}  {'cached rev/s':>12}")
    for row in rows:
        print(f"{row['threads']:>7}  {row['tokenizer_reviews_per_s']:>15,.0f}  "
              f"{row['host_reviews_per_s']:>10,.0f}  {row['host_vs_tokenizer']:>8.2f}  "
              f"{row['host_reviews_per_s_per_core']:>15,.0f}  "
              f"{row['host_cached_reviews_per_s']:>12,.0f}")
    facts = {"cpu": before["cpu"], "flags": before["cpu_flags"], "cores": before["usable_cores"],
             "load_average": before["load_average"], "load_average_after": load_average()}
    print(f"{facts['cpu']} ({', '.join(facts['flags']) or 'no listed flags'}); load average "
          f"{facts['load_average'][0]:.1f} before, {facts['load_average_after'][0]:.1f} after")
    document = {"benchmark": "host_pipeline", "model": args.model, "data": args.data, "samples": args.samples,
                "repeats": args.repeats, "machine": facts, "python": before["python"],
                "threads": {str(row["threads"]): row for row in rows}}
    print(f"-> {write_result(args.output, document, before)}")


if __name__ == "__main__":
    main()

