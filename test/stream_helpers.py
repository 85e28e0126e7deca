"""One run of a fake SMS read by the real ADARA listener, over a real socket: for tests of what a stream gives."""

from __future__ import annotations

import time

from livereduce.errors import NotYet
from livereduce.listeners.adara.client import AdaraListener
from livereduce.listeners.base import Chunk, RunStatus, StartFrom
from livereduce.servers.adara import FakeSMS


def one_run(*, timeout: float = 30.0, **sms_options) -> tuple[list[Chunk], FakeSMS, dict]:
    """Every chunk of one run a FakeSMS plays (port 0, unlimited speed, waiting for its client, plus
    `sms_options`), extracted until the run's END_RUN; with the server (its sent counts) and the listener's
    last state. Both are stopped before returning."""
    sms = FakeSMS(port=0, runs=1, speed="unlimited", wait_for_client=True, **sms_options)
    listener = AdaraListener(f"127.0.0.1:{sms.start()}")
    try:
        listener.start(StartFrom("start_of_run"))
        chunks: list[Chunk] = []
        deadline = time.monotonic() + timeout
        while not chunks or listener.run_status() != RunStatus.END_RUN:
            assert time.monotonic() < deadline, "the run did not end"
            try:
                chunks.append(listener.extract())
            except NotYet:
                time.sleep(0.02)
        state = listener.state()
    finally:
        listener.close()
        sms.stop()
    return chunks, sms, state
