"""Is the Hugging Face hub usable? Answered in seconds, so offline machines fail fast and clearly."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse


def hub_offline() -> bool:
    """True when the user asked the hub libraries to stay offline (HF_HUB_OFFLINE and friends). Taught in 00 §4."""
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes") for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def hub_reachable(timeout: float = 3.0) -> bool:
    """True when the hub's host answers a TCP connection (a failed download retries for ~25 s). Taught in 00 §4."""
    if hub_offline():
        return False
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False
