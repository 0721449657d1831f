"""Several training processes (``torchrun``, ``accelerate launch``): who is who, and waiting for each other.

The launcher sets ``WORLD_SIZE``/``RANK``; one process per GPU (or CPU process group with gloo)
trains on its shard of each batch through ``Trainer``'s DDP. Only the main process (rank 0)
touches the shared output and work folders, the run record and the test score; the others wait
at a barrier where it matters. Without a launcher every function is a cheap no-op.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


def world_size() -> int:
    """Number of cooperating processes (1 without a launcher)."""
    return max(1, int(os.environ.get("WORLD_SIZE", "1") or 1))


def rank() -> int:
    return int(os.environ.get("RANK", "0") or 0)


def is_main() -> bool:
    """True in the process that writes outputs (always true without a launcher)."""
    return rank() == 0


def start(device: str) -> None:
    """Join the process group before any collective (nccl on GPUs, gloo on CPUs).

    ``Trainer`` (through accelerate) reuses this group instead of creating its own.
    """
    if world_size() == 1:
        return
    import torch.distributed as dist

    if not dist.is_initialized():
        cuda = device.startswith("cuda")
        if cuda:
            import torch

            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend="nccl" if cuda else "gloo")


def barrier() -> None:
    """Wait until every process gets here (no-op in a single process)."""
    if world_size() == 1:
        return
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()


@contextlib.contextmanager
def main_first() -> Iterator[bool]:
    """Run the block in the main process first, then in the others; yields ``is_main()``.

    For one-time work on shared files (preparing the work folder) that the others then reuse.
    """
    if not is_main():
        barrier()
    try:
        yield is_main()
    finally:
        if is_main():
            barrier()
