"""STAND-IN, not Mantid: what tests read and set on the stand-in `mantid` package.

`calls` records every algorithm this stand-in executed and every manager/ADS operation that the live-data
tests pin (("StartLiveData", {properties as given}), ("cancelAll", {}), ("ADS.clear", {}), ...), in order.
`cancel_delay` makes the live algorithms slow to notice a cancel request (a "slow asynchronous algorithm"):
after cancel() they keep running this many seconds before they exit (initially $MANTID_STANDIN_CANCEL_DELAY, so
that a daemon's worker processes can be given it).
"""

from __future__ import annotations

import os
import threading

_lock = threading.Lock()
calls: list[tuple[str, dict]] = []
cancel_delay: float = float(os.environ.get("MANTID_STANDIN_CANCEL_DELAY", "0"))  # for worker processes
fail_connect: str | None = None  # a text: every listener's connect() fails with it (a DAS that is down)
# the file name scripts are compiled under: None, the script's path; a text, that name (Mantid's documentation does
# not say what file name its RunPythonScript's tracebacks show)
script_filename: str | None = None


def record(name: str, properties: dict | None = None) -> None:
    with _lock:
        calls.append((name, dict(properties or {})))


def names() -> list[str]:
    with _lock:
        return [name for name, _ in calls]


def reset() -> None:
    global cancel_delay, fail_connect, script_filename
    with _lock:
        calls.clear()
    cancel_delay = 0.0
    fail_connect = script_filename = None
