"""Bounded loopback load test of ``imdb-sentiment serve``.

Starts the server as a subprocess on 127.0.0.1 (a free port), sends a fixed number of
``POST /predict`` requests (one real IMDB test review each) from concurrent clients with
keep-alive connections, then stops the server. Reports throughput, latency percentiles,
errors, the server's micro-batching and the answers' accuracy.

    python benchmarks/serve_load.py --model /tmp/minilm-ft --requests 2000 --concurrency 16

``--mixed`` runs the bad-input load instead: rounds of concurrent requests, each round once with
good requests only (the reference) and once with one poisoned request (a lone surrogate, which
breaks the tokenizer) among them; then one chunked body far over the limit. It reports failed
good requests, the poisoned requests' status codes, good-request latency against the clean
rounds, and the server's memory (RSS) before and after.

    python benchmarks/serve_load.py --model /tmp/minilm-ft --mixed --rounds 20 --concurrency 8
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from common import machine_facts, prediction_parser, write_result

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
    parser.add_argument("--mixed", action="store_true",
                        help="Run the bad-input load (results/serve_mixed.json) instead of the plain one.")
    parser.add_argument("--rounds", type=int, default=20, help="With --mixed: rounds of concurrent requests.")
    parser.add_argument("--oversized-mb", type=float, default=50, help="With --mixed: chunked body size.")
    args = parser.parse_args()
    if args.mixed and args.output == parser.get_default("output"):
        args.output = str(Path(args.output).with_name("serve_mixed.json"))
    return args


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def start_server(args: argparse.Namespace, port: int) -> subprocess.Popen:
    command = [str(Path(sys.executable).with_name("imdb-sentiment")), "serve", "--model", args.model,
               "--host", HOST, "--port", str(port), "--log-level", "warning",
               "--max-wait-ms", str(args.max_wait_ms), "--max-batch", str(args.max_batch),
               "--max-length", str(args.max_length), "--backend", args.backend]
    # The server's log goes to a file: an undrained pipe would stall a server that logs a lot.
    log = tempfile.NamedTemporaryFile(prefix="serve-load-", suffix=".log", delete=False)  # noqa: SIM115
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
    server.log_path = log.name  # type: ignore[attr-defined]
    log.close()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"server exited early: {Path(log.name).read_text(errors='replace')}")
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


POISON = '{"texts": ["great \\ud83d movie"]}'  # a lone surrogate: valid JSON, no valid text


def rss_mib(pid: int) -> dict[str, float]:
    """The process's resident memory now and at its peak (VmHWM), in MiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                  if ":" in line)
    return {name: round(int(fields[key].split()[0]) / 1024, 1) for name, key in (("rss", "VmRSS"),
                                                                               ("peak", "VmHWM"))}


def round_of_requests(port: int, texts: list[str], poisoned: bool) -> list[tuple[bool, int, float]]:
    """All requests at once; (poisoned, status, seconds) each. Status 0: no HTTP answer."""
    bodies = [(False, json.dumps({"texts": [text]}).encode("utf-8")) for text in texts]
    if poisoned:
        bodies.insert(len(bodies) // 2, (True, POISON.encode("utf-8")))
    results: list[tuple[bool, int, float]] = [(False, 0, 0.0)] * len(bodies)
    gate = threading.Barrier(len(bodies))

    def send(index: int) -> None:
        bad, body = bodies[index]
        connection = http.client.HTTPConnection(HOST, port, timeout=120)
        gate.wait()
        started = time.perf_counter()
        try:
            connection.request("POST", "/predict", body=body, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            status = 0
        finally:
            connection.close()
        results[index] = (bad, status, time.perf_counter() - started)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def oversized_chunked(port: int, megabytes: float) -> dict[str, object]:
    """One chunked POST (no Content-Length) of ``megabytes``; what came back and how much was sent."""
    sent = 0
    total = int(megabytes * 2**20)
    chunk = b'{"texts": ["' + b"x" * (2**16 - 12)

    def body():
        nonlocal sent
        while sent < total:
            sent += len(chunk)
            yield chunk

    connection = http.client.HTTPConnection(HOST, port, timeout=120)
    started = time.perf_counter()
    status: int | str
    try:
        connection.request("POST", "/predict", body=body(), encode_chunked=True,
                           headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
        status = connection.getresponse().status
    except (OSError, http.client.HTTPException) as error:
        status = f"connection closed by the server ({type(error).__name__})"
    finally:
        connection.close()
    return {"status": status, "mib_offered": round(total / 2**20, 1), "mib_sent_before_answer":
            round(sent / 2**20, 1), "seconds": round(time.perf_counter() - started, 2)}


def mixed(args: argparse.Namespace, texts: list[str], port: int, server: subprocess.Popen) -> dict:
    per_round = args.concurrency - 1  # good requests in each round, with or without the poisoned one
    memory_before = rss_mib(server.pid)
    clean: list[tuple[bool, int, float]] = []
    dirty: list[tuple[bool, int, float]] = []
    for number in range(args.rounds):
        chosen = [texts[(number * per_round + i) % len(texts)] for i in range(per_round)]
        clean += round_of_requests(port, chosen, poisoned=False)
        dirty += round_of_requests(port, chosen, poisoned=True)
    memory_after_rounds = rss_mib(server.pid)
    oversized = oversized_chunked(port, args.oversized_mb)
    memory_after_oversized = rss_mib(server.pid)
    still_up = request(port, "GET", "/health")[0] == 200
    good_clean = [seconds for _, status, seconds in clean if status == 200]
    good_dirty = [seconds for bad, status, seconds in dirty if not bad and status == 200]
    p50_clean = round(float(np.percentile(good_clean, 50)) * 1000, 1) if good_clean else None
    p50_dirty = round(float(np.percentile(good_dirty, 50)) * 1000, 1) if good_dirty else None
    poisoned = [status for bad, status, _ in dirty if bad]
    return {
        "rounds": args.rounds, "requests_per_round": args.concurrency,
        "good_requests": len(clean) + sum(1 for bad, _, _ in dirty if not bad),
        "good_failed_clean_rounds": sum(1 for _, status, _ in clean if status != 200),
        "good_failed_poisoned_rounds": sum(1 for bad, status, _ in dirty if not bad and status != 200),
        "poisoned_statuses": {str(code): poisoned.count(code) for code in sorted(set(poisoned))},
        "good_p50_ms": {"clean_rounds": p50_clean, "poisoned_rounds": p50_dirty,
                        "ratio": round(p50_dirty / p50_clean, 2) if p50_clean and p50_dirty else None},
        "oversized_chunked_body": oversized,
        "server_memory_mib": {"before": memory_before, "after_rounds": memory_after_rounds,
                              "after_oversized_body": memory_after_oversized},
        "server_up_afterwards": still_up,
        "server_log_tracebacks": Path(server.log_path).read_text(errors="replace").count("Traceback"),
    }


def main() -> None:
    args = parse_args()
    import pandas as pd

    from imdb_sentiment.data import subsample

    frame = subsample(pd.read_parquet(args.data), args.requests, args.seed)
    texts, truth = frame["text"].tolist(), frame["label"].to_numpy()
    port = free_port()
    server = start_server(args, port)
    try:
        info = request(port, "GET", "/info")[1]
        request(port, "POST", "/predict", {"texts": texts[:2]})  # warm-up
        if args.mixed:
            facts = machine_facts()
            result = {"benchmark": "serve_mixed", "model": args.model, **mixed(args, texts, port, server),
                      "server": {key: info.get(key) for key in ("backend", "precision", "max_length",
                                                                "limits")},
                      "cores": facts["cpu_count"]}
            print(json.dumps(result, indent=2))
            write_result(args.output, result, facts)
            failed = result["good_failed_clean_rounds"] + result["good_failed_poisoned_rounds"]
            if failed:
                raise SystemExit(f"{failed} good request(s) failed")
            return
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
        Path(server.log_path).unlink(missing_ok=True)
    done = [i for i, label in enumerate(labels) if label is not None]
    answered = np.array([int(labels[i] == "POSITIVE") for i in done])
    measured = latencies[~np.isnan(latencies)] * 1000
    facts = machine_facts()
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
        "cores": facts["cpu_count"],
    }
    print(json.dumps(result, indent=2))
    write_result(args.output, result, facts)
    if errors:
        raise SystemExit(f"{errors} request(s) failed")


if __name__ == "__main__":
    main()
