"""Does ``predict`` pick the fastest CPU engine? Whole processes, every engine, the same reviews.

Runs ``imdb-sentiment predict --input`` over seeded, label-stratified IMDB test reviews with its
default engine choice and with each engine forced (ONNX Runtime int8, PyTorch fp32, PyTorch bf16),
timed from process start to exit. The default is measured after its one-time engine probe and ONNX
export are cached (a first, uncached run is reported separately). Runs alternate, so a noisy spell on
a shared machine hits every engine; the best of ``--repeats`` runs is reported.

    python benchmarks/cpu_engines.py --model ../shared/models/minilm-imdb-fast

Target: the default is never more than 10 % slower than the fastest engine on this CPU.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine_facts, prediction_parser, write_result

ENGINES = {
    "onnx int8": ["--backend", "onnx", "--precision", "int8"],
    "torch fp32": ["--backend", "torch", "--precision", "fp32"],
    "torch bf16": ["--backend", "torch", "--precision", "bf16"],
}


def timed(command: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:3])} failed: {done.stderr.strip()[-800:]}")
    return seconds, done.stderr


def main() -> None:
    parser = prediction_parser(__doc__, "cpu_engines", samples=600)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    import pandas as pd

    from imdb_sentiment.data import subsample

    cli = str(Path(sys.executable).with_name("imdb-sentiment"))
    with tempfile.TemporaryDirectory(prefix="cpu-engines-") as work:
        folder = Path(work)
        os.environ["IMDB_SENTIMENT_CACHE"] = str(folder / "cache")  # cold: the first default run probes
        source = folder / "reviews.csv"
        reviews = subsample(pd.read_parquet(args.data), args.samples, args.seed)
        reviews[["id", "text"]].to_csv(source, index=False)

        def command(name: str, extra: list[str]) -> list[str]:
            return [cli, "predict", "--model", args.model, "--input", str(source), "--output",
                    str(folder / f"{name.replace(' ', '-')}.csv"), "--overwrite", "--no-progress", *extra]

        first_seconds, first_err = timed(command("default", ["--explain-engine"]))
        explained = next((line for line in first_err.splitlines() if line.startswith("engine: ")), "")
        commands = {"predict default": command("default", []),
                    **{name: command(name, extra) for name, extra in ENGINES.items()}}
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.repeats):
            for name, argv in commands.items():
                times[name].append(timed(argv)[0])
                print(f"{name}: {times[name][-1]:.1f} s", file=sys.stderr)
    best = {name: min(values) for name, values in times.items()}
    fastest = min((name for name in best if name != "predict default"), key=best.get)
    rows = [{"engine": name, "wall_seconds": round(best[name], 2), "runs": [round(v, 2) for v in times[name]],
             "reviews_per_second": round(args.samples / best[name], 2),
             "slowdown_vs_fastest_engine": round(best[name] / best[fastest] - 1, 3)} for name in best]
    facts = machine_facts()
    print(f"CPU: {facts['cpu']}  flags: {' '.join(facts['cpu_flags'])}")
    print(f"{explained}\n{'engine':<18} {'wall s':>8} {'reviews/s':>10} {'vs fastest':>11}")
    for row in rows:
        print(f"{row['engine']:<18} {row['wall_seconds']:>8.1f} {row['reviews_per_second']:>10.1f} "
              f"{row['slowdown_vs_fastest_engine']:>+10.1%}")
    print(f"first default run (probe + export, uncached): {first_seconds:.1f} s")
    write_result(args.output, {
        "benchmark": "cpu_engines", "model": args.model, "reviews": args.samples, "seed": args.seed,
        "cpu": facts["cpu"], "cpu_flags": facts["cpu_flags"], "cores": facts["cpu_count"],
        "repeats": args.repeats, "default_choice": explained,
        "first_default_run_seconds": round(first_seconds, 2), "fastest_engine": fastest,
        "default_within_10_percent": rows[0]["slowdown_vs_fastest_engine"] <= 0.10, "results": rows},
        facts)
    print(f"-> {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
