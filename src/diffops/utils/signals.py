"""SIGTERM (and optionally SIGINT) as a KeyboardInterrupt, so runs and outputs end truthfully."""
from __future__ import annotations

import contextlib
import signal
import threading


class Interrupted(KeyboardInterrupt):
    """Raised from the signal handler; a KeyboardInterrupt, so Ctrl-C and SIGTERM take one path."""


@contextlib.contextmanager
def interrupts_raise(*signals: signal.Signals):
    """Within the block, the given signals (default SIGTERM) raise Interrupted. No-op off the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Interrupted(f"received {signal.Signals(signum).name}")
    old = {s: signal.signal(s, handler) for s in (signals or (signal.SIGTERM,))}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
