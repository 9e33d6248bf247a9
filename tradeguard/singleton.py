"""The process-wide guard of the seed's integration: ``get_kill_switch()``."""

from __future__ import annotations

import os
import threading

from tradeguard.config import Config, load_config
from tradeguard.guard import Guard

_singleton: Guard | None = None
_singleton_lock = threading.Lock()


def get_kill_switch() -> Guard:
    """The process-wide guard (the seed's entry point): built on first use from the file named
    by ``TRADEGUARD_CONFIG``, or from the defaults, and the same object afterwards."""
    global _singleton
    with _singleton_lock:
        if _singleton is None:
            path = os.environ.get("TRADEGUARD_CONFIG")
            _singleton = Guard(load_config(path) if path else Config())
        return _singleton
