"""Shared fixtures: a fresh workspace registry per test, and free TCP ports."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def shared_path(relative: str) -> Path:
    """`../shared/<relative>` (the user's shared directory, beside the clone), or skip the calling test naming
    the missing path: a clone without `../shared` must still pass."""
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared is not part of this clone)")
    return path


@pytest.fixture
def ads():
    """A fresh workspace registry, active for the test's thread: what `mtd` means in the test's code."""
    from livereduce.workspace.ads import AnalysisDataService, using

    with using(AnalysisDataService()) as registry:
        yield registry


@pytest.fixture
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def running(tmp_path, caplog):
    """Start a daemon in-process (test/inprocess.py: `running(scripts, **config)`); stopped after the test."""
    import logging

    from inprocess import Running

    caplog.set_level(logging.INFO)
    started = []

    def start(scripts, **config):
        started.append(Running(tmp_path, scripts, **config))
        return started[-1]

    yield start
    for r in started:
        if r.thread.is_alive():
            r.stop()
