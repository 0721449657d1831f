"""Batches for the model: length-sorted buckets, per-device sizes, and the next batches prepared
in a background thread while the model runs the current one."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import numpy as np

from .errors import UserError

T = TypeVar("T")

DEFAULT_BATCH_SIZE = 32
"""Rows per batch on CPUs (the token budget below usually binds first)."""
DEFAULT_CPU_BATCH_TOKENS = 1024
"""Padded tokens per batch on CPUs: e.g. 2 inputs of 512 tokens or 8 of 128."""
GPU_BATCH_SIZE = 1024
"""Rows per batch on GPUs: high, so that the token budget decides."""
GPU_BATCH_TOKENS = 64 * 1024
"""Padded tokens per batch on GPUs: 128 inputs of 512 tokens, 512 of 128. Chosen for throughput
(a GPU needs many rows in flight), small enough for a 16 GB card with a MiniLM/BERT-base model."""
PREFETCH_DEPTH = 2


def default_batch_size(device: str) -> int:
    return DEFAULT_BATCH_SIZE if device == "cpu" else GPU_BATCH_SIZE


def default_batch_tokens(value: int | str | None, device: str) -> int | None:
    """``auto``: the token budget for ``device``; an explicit positive value; ``None``: rows only."""
    if value == "auto":
        return DEFAULT_CPU_BATCH_TOKENS if device == "cpu" else GPU_BATCH_TOKENS
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        raise UserError(f"max batch tokens must be positive, got {value}")
    return value


def batch_slices(sorted_lengths: np.ndarray, batch_size: int, max_tokens: int | None) -> list[slice]:
    """Consecutive batches over lengths sorted longest first: at most ``batch_size`` rows and,
    with ``max_tokens``, at most that many padded tokens (a long input may still go alone).

    On CPUs a few long inputs per batch run faster than many: the attention scores of a big
    batch of 512-token inputs no longer fit in the caches.
    """
    slices = []
    start, count = 0, len(sorted_lengths)
    while start < count:
        width = max(int(sorted_lengths[start]), 1)
        rows = batch_size if max_tokens is None else max(1, min(batch_size, max_tokens // width))
        slices.append(slice(start, min(start + rows, count)))
        start += rows
    return slices


def prefetch(items: Iterable[Any], prepare: Callable[[Any], T] | None = None,
             depth: int = PREFETCH_DEPTH) -> Iterator[T]:
    """Yield ``items`` (each passed through ``prepare``) made up to ``depth`` ahead in a thread.

    Batch assembly (NumPy, pinned-memory copies) mostly releases the GIL, so it overlaps with the
    model call in the consuming thread. An error in the producer is raised in the consumer; a
    consumer that stops early stops the producer.
    """
    slots: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                slots.put(("item", prepare(item) if prepare else item))
            slots.put(("end", None))
        except BaseException as error:  # handed to the consumer, which re-raises it
            slots.put(("error", error))

    worker = threading.Thread(target=produce, name="prefetch", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = slots.get()
            if kind == "end":
                return
            if kind == "error":
                raise value  # type: ignore[misc]
            yield value  # type: ignore[misc]
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                slots.get_nowait()
            except queue.Empty:
                worker.join(timeout=0.01)
