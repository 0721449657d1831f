"""Bounded loopback load test of ``imdb-sentiment serve``.

Starts the server as a subprocess on 127.0.0.1 (a free port), sends a fixed number of
``POST /predict`` requests (one real IMDB test review each) from concurrent clients with
keep-alive connections, then stops the server. Reports throughput, latency percentiles,
errors, the server's micro-batching and the answers' accuracy.

    python benchmarks/serve_load.py --model /tmp/minilm-ft --requests 2000 --concurrency 16
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from common import prediction_parser

HOST = "127.0.0.1"  # loopback only, always


def parse_args() -> argparse.Namespace:
    parser = prediction_parser(__doc__, "serve_load", model_help="Model folder (PyTorch or ONNX export).")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--max-batch", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=1200, help="Give up after this many seconds.")
    parser.add_argument("--max-length", type=int, default=512, help="`serve --max-length`.")
    parser.add_argument("--backend", default="auto", help="`serve --backend`: auto, torch or onnx.")
    return parser.parse_args()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def start_server(args: argparse.Namespace, port: int) -> subprocess.Popen:
    command = [str(Path(sys.executable).with_name("imdb-sentiment")), "serve", "--model", args.model,
               "--host", HOST, "--port", str(port), "--log-level", "warning",
               "--max-wait-ms", str(args.max_wait_ms), "--max-batch", str(args.max_batch),
               "--max-length", str(args.max_length), "--backend", args.backend]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"server exited early: {server.stderr.read() if server.stderr else ''}")
        try:
            if request(port, "GET", "/health")[0] == 200:
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("server did not come up within 300 s")


def request(port: int, method: str, path: str, body: object = None,
            connection: http.client.HTTPConnection | None = None) -> tuple[int, dict]:
    own = connection is None
    connection = connection or http.client.HTTPConnection(HOST, port, timeout=120)
    try:
        payload = None if body is None else json.dumps(body).encode("utf-8")
        connection.request(method, path, body=payload, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        if own:
            connection.close()


def load(port: int, texts: list[str], concurrency: int, deadline: float
         ) -> tuple[np.ndarray, list[str | None], int]:
    """Send every text once; latency (s) and predicted label per request, and the error count."""
    latencies = np.full(len(texts), np.nan)
    labels: list[str | None] = [None] * len(texts)
    errors = 0
    lock = threading.Lock()
    cursor = iter(range(len(texts)))

    def client() -> None:
        nonlocal errors
        connection = http.client.HTTPConnection(HOST, port, timeout=120)
        while time.monotonic() < deadline:
            with lock:
                index = next(cursor, None)
            if index is None:
                break
            started = time.perf_counter()
            try:
                status, body = request(port, "POST", "/predict", {"texts": [texts[index]]}, connection)
                ok = status == 200
            except (OSError, http.client.HTTPException, ValueError):
                ok = False
                connection.close()
                connection = http.client.HTTPConnection(HOST, port, timeout=120)
            latencies[index] = time.perf_counter() - started
            if ok:
                labels[index] = body["predictions"][0]["label"]
            else:
                with lock:
                    errors += 1
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, labels, errors


def main() -> None:
    args = parse_args()
    import pandas as pd

    from imdb_sentiment.artifacts import write_json
    from imdb_sentiment.data import subsample

    frame = subsample(pd.read_parquet(args.data), args.requests, args.seed)
    texts, truth = frame["text"].tolist(), frame["label"].to_numpy()
    port = free_port()
    server = start_server(args, port)
    try:
        info = request(port, "GET", "/info")[1]
        request(port, "POST", "/predict", {"texts": texts[:2]})  # warm-up
        started = time.perf_counter()
        latencies, labels, errors = load(port, texts, args.concurrency, time.monotonic() + args.timeout)
        seconds = time.perf_counter() - started
        batching = request(port, "GET", "/info")[1].get("batching", {})
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    done = [i for i, label in enumerate(labels) if label is not None]
    answered = np.array([int(labels[i] == "POSITIVE") for i in done])
    measured = latencies[~np.isnan(latencies)] * 1000
    result = {
        "benchmark": "serve_load",
        "model": args.model, "requests": len(texts), "completed": len(done), "errors": errors,
        "unsent": int(np.isnan(latencies).sum()), "concurrency": args.concurrency,
        "texts_per_request": 1, "seconds": round(seconds, 2),
        "requests_per_second": round(len(done) / seconds, 2),
        "latency_ms": {q: round(float(np.percentile(measured, p)), 1)
                       for q, p in (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100))},
        "accuracy": round(float((answered == truth[done]).mean()), 4) if done else None,
        "server": {key: info.get(key) for key in ("backend", "precision", "max_length", "truncation",
                                                  "limits")},
        "micro_batching": {**batching, "mean_texts_per_model_call": round(
            batching["texts"] / batching["model_calls"], 2) if batching.get("model_calls") else None},
        "cores": os.cpu_count(),
    }
    print(json.dumps(result, indent=2))
    write_json(args.output, result)
    if errors:
        raise SystemExit(f"{errors} request(s) failed")


if __name__ == "__main__":
    main()
