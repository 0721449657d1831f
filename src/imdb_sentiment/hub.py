"""Whether the Hugging Face Hub can be used now: offline mode, and a quick connection probe.

Without the probe the Hub clients retry for half a minute before an unreachable Hub is reported.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

_TRUE = {"1", "ON", "YES", "TRUE"}


def hub_offline() -> bool:
    """True when offline mode is set (only cached copies may be used)."""
    names = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    return any(os.environ.get(name, "").strip().upper() in _TRUE for name in names)


def hub_accepts_connections(timeout: float = 3.0, *, honour_offline_mode: bool = False) -> bool:
    """A quick TCP probe of the Hub endpoint (skipped behind a proxy, which decides itself).

    With ``honour_offline_mode`` the answer is False whenever offline mode is set, without a probe.
    """
    if honour_offline_mode and hub_offline():
        return False
    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
    try:
        with socket.create_connection((endpoint.hostname or "huggingface.co", port), timeout=timeout):
            return True
    except OSError:
        return False
