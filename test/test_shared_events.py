"""Events in shared memory (livereduce.shared_events): a segment is rewritten only when nobody can read it, the
worker's copy-on-write mapping keeps the supervisor's chunk as it was sent, anything outside a segment still
travels through the pipe, and a daemon whose chunks cross this way accumulates exactly what the DAS sent."""

from __future__ import annotations

import gc
import json
import logging
import multiprocessing
import os
import re
import threading
import time
import urllib.request
from types import SimpleNamespace

import numpy as np
import psutil
import pytest
from daemon_helpers import DaemonProcess

from livereduce.listeners.base import ChunkEvents, EventBuffer
from livereduce.memory import rss_mb
from livereduce.records import RecordKind
from livereduce.servers.adara import FakeSMS
from livereduce.shared_events import SharedEventMaps, SharedEventPool
from livereduce.worker import (
    Checkpointer,
    SharedSender,
    WorkerSpec,
    receive_out_of_band,
    send_out_of_band,
    worker_main,
)


def _address(a: np.ndarray) -> int:
    return a.ctypes.data


def test_a_segment_is_reused_only_once_every_view_of_it_is_gone():
    pool = SharedEventPool(max_segments=2)
    index, tof = pool.columns(1000)
    first = _address(index)
    assert pool.locate(first, 4000) is not None and pool.locate(_address(tof), 4000) is not None
    chunk = index[:10]  # what a swap hands on: a view
    del index, tof
    second, _ = pool.columns(1000)
    assert _address(second) != first  # the chunk still reads the first segment
    del second, _
    assert pool.columns(1000) is not None  # the second segment again
    gc.collect()
    del chunk
    third, _ = pool.columns(1000)
    assert _address(third) == first  # no view left: the first segment is reused


def test_a_segment_lent_to_a_worker_waits_for_its_return_or_its_end():
    pool = SharedEventPool(max_segments=1)
    index, _tof = pool.columns(100)
    ident, _ = pool.locate(_address(index), 400)
    pool.lend(ident, worker=7)
    del index, _tof
    assert pool.columns(100) is None and pool.fallbacks == 1  # lent: private memory instead
    pool.returned([ident], worker=8)  # another worker's return does not count
    assert pool.columns(100) is None
    pool.worker_gone(7)  # its process ended: its mappings went with it
    assert pool.columns(100) is not None


def test_free_segments_over_budget_give_their_pages_back():
    pool = SharedEventPool(max_segments=3, budget_bytes=1 << 20)
    first, first_tof = pool.columns(2_000_000)  # 16 MB
    first[:] = 1
    first_tof[:] = 2.0
    second, second_tof = pool.columns(1_000_000)  # another segment: the first is still held
    second[:] = 1
    second_tof[:] = 2.0
    held = pool.resident_bytes()
    assert held >= 24_000_000 and pool.trimmed == 0
    del first, first_tof, second, second_tof
    again, _ = pool.columns(1_000_000)  # reuses the one with most pages; the other is idle, over budget
    assert pool.trimmed == 1 and held - 9_000_000 < pool.resident_bytes() < held - 7_000_000
    assert again.ctypes.data == pool._segments[1].address  # the first, with 16 MB made, is reused
    third, _ = pool.columns(1_000_000)  # the trimmed one: its pages come back zeroed, never old events
    assert not third.any()


def test_pages_past_a_chunk_that_an_older_bigger_one_left_are_given_back():
    """A slow cycle's big chunk must not leave its segment at that size for good: at the next swap of that
    segment, pages past the recent median chunk (at least 2 MB's worth of rows) go back."""
    pool = SharedEventPool(max_segments=1)
    index, tof = pool.columns(4_000_000)
    index[:] = 7  # a big chunk: 32 MB made
    tof[:] = 1.0
    pool.filled(index, 4_000_000)
    assert pool.resident_bytes() >= 32_000_000  # it is the recent chunk: nothing given back
    for _ in range(5):
        pool.filled(index, 100_000)  # small chunks in the same segment
    keep = 524_288  # max(100,000 events, the median, 2 MB of rows)
    assert 8 * keep <= pool.resident_bytes() <= 8 * keep + 2 * 4096
    assert (index[:keep] == 7).all() and (tof[:keep] == 1.0).all()  # what a chunk may still read: kept
    # the rest given back (zeros), but for the page each half shares with what follows it
    assert not index[keep + 1024 : -1024].any() and not tof[keep + 1024 : -1024].any()
    assert pool.state()["segments"] == 1


def test_memory_counts_shared_pages_once():
    pool = SharedEventPool()
    index, tof = pool.columns(25_000_000)
    before = rss_mb(psutil.Process())
    index[:] = 3
    tof[:] = 1.0  # 200 MB of shared pages, mapped once here
    grown = rss_mb(psutil.Process()) - before
    assert 180 < grown < 260, grown  # counted once (the process's RssShmem is taken out, the pool's put in)


def _chunk_through(pool: SharedEventPool, chunk) -> tuple[object, SharedEventMaps]:
    """Send `chunk` as the supervisor does and receive it as the worker does, over a real socket pair with the
    segment fds passed over it (to this process)."""
    ours, theirs = multiprocessing.Pipe()
    maps = SharedEventMaps()
    sender = SharedSender(pool, worker=1, pid=os.getpid())
    out: dict = {}

    def receive():
        from multiprocessing import reduction

        while True:
            message = theirs.recv()
            if message[0] == "shm_fd":
                maps.add(message[1], reduction.recv_handle(theirs), message[2])
            else:
                out["chunk"] = receive_out_of_band(theirs, message[1], maps)
                out["places"] = message[1]
                return

    thread = threading.Thread(target=receive)
    thread.start()
    send_out_of_band(ours, "taken_oob", chunk, sender)
    thread.join(10)
    return out, maps


def test_a_chunk_crosses_without_its_events_and_the_worker_writes_only_its_own_copy():
    buffer = EventBuffer(capacity=16, max_events=1000)
    pool = SharedEventPool(max_segments=2)
    buffer.share(pool)
    rng = np.random.default_rng(5)
    ids, tofs = rng.integers(0, 50, 300, dtype=np.uint32), rng.uniform(0, 1e4, 300).astype(np.float32)
    buffer.add_pulse(1_000, ids[:100], tofs[:100])
    buffer.add_pulse(2_000, ids[100:], tofs[100:])
    sent = buffer.swap()
    out, maps = _chunk_through(pool, sent)
    got: ChunkEvents = out["chunk"]
    shared = [p for p in out["places"] if isinstance(p, tuple)]
    assert len(shared) == 2  # index and TOF by place; the pulse lists (private memory) by pipe
    assert any(isinstance(p, int) for p in out["places"])
    assert np.array_equal(got.index, ids) and np.array_equal(got.tof, tofs)
    assert got.pulse_time.tolist() == [1_000, 2_000] and got.pulse_start.tolist() == [0, 100]
    got.index[:] = 0  # a script changing its input in place
    assert np.array_equal(sent.index, ids)  # what a successor worker would be handed is untouched
    ident = shared[0][0]
    assert maps.take_returned() == []
    del got, out
    gc.collect()
    assert maps.take_returned() == [ident]  # the worker's last view gone: reported with its next take


def test_arrays_outside_the_segments_still_travel_through_the_pipe():
    pool = SharedEventPool(max_segments=1)
    chunk = ChunkEvents(
        np.arange(5, dtype=np.uint32), np.ones(5, np.float32), np.zeros(1, np.int64), np.zeros(1, np.int64)
    )
    out, _ = _chunk_through(pool, chunk)
    assert all(isinstance(p, int) for p in out["places"])
    assert out["chunk"].index.tolist() == [0, 1, 2, 3, 4]


REBIN = "Rebin(InputWorkspace=input, OutputWorkspace=output, Params='1000,15,16000', PreserveEvents=False)\n"
POST_PROC = """import json, os
run = accumulation.getRun()
if run.hasProperty("run_number"):
    n = int(run.getProperty("run_number").value)
    path = os.path.join({out!r}, "run_%d.json" % n)
    with open(path + ".tmp", "w") as f:
        json.dump({{"counts": float(accumulation.extractY().sum())}}, f)
    os.replace(path + ".tmp", path)
"""


def _rebin_daemon(tmp_path, rate: float, seconds: float, **config) -> tuple[FakeSMS, DaemonProcess]:
    """A fake SMS sending one run of 1000 pixels at `rate` events/s for `seconds` (TOFs within the bins) to a
    daemon subprocess whose proc script Rebins into an Add accumulation (scripts in tmp_path/scripts)."""
    scripts = tmp_path / "scripts"
    scripts.mkdir(exist_ok=True)
    (scripts / "reduce_FAKE_live_proc.py").write_text(REBIN)
    sms = FakeSMS(
        port=0, pixels=1000, banks=4, rate=rate, run_seconds=seconds, runs=1, gap_seconds=0.0, instrument="FAKE",
        error_events=0.0, monitor_rate=0.0, seed=4, wait_for_client=True,
    )  # fmt: skip
    config = {
        "instrument": "FAKE",
        "listener": "adara",
        "address": f"127.0.0.1:{sms.start()}",
        "script_dir": str(scripts),
        "accum_method": "Add",
        "preserve_events": False,
        "system_mem_limit_perc": 0,
        **config,
    }
    return sms, DaemonProcess(tmp_path, config)


@pytest.mark.parametrize("kill_worker", [False, True])
def test_a_daemon_accumulates_every_event_sent_through_shared_memory(tmp_path, kill_worker):
    """Every event the SMS sent within the bins is counted once, though the chunks crossed in shared memory;
    with the worker killed mid-run, its successor is handed the chunks since the checkpoint from the same
    segments, and the count is still exact."""
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "reduce_FAKE_live_post_proc.py").write_text(POST_PROC.format(out=str(out)))
    sms, daemon = _rebin_daemon(tmp_path, 2e6, 6, update_every=0.3, checkpoint_every=3)
    try:
        log = daemon.wait_for("status page at ", timeout=30)
        url = re.search(r"status page at (http://\S+/) ", log).group(1)
        if kill_worker:  # mid-run, after a checkpoint and with chunks taken since: they are in flight
            deadline = time.monotonic() + 30
            while _status(url)["cycle"] < 5:
                assert time.monotonic() < deadline, "the daemon did not reach its fifth cycle"
                time.sleep(0.05)
            servers = [
                p for p in psutil.Process(daemon.proc.pid).children() if "forkserver" in " ".join(p.cmdline())
            ]
            workers = [w for server in servers for w in server.children()]  # workers fork from the server
            assert workers, "no worker process"
            for w in workers:
                w.kill()
            daemon.wait_for("session started", timeout=30, count=2)
        assert sms.done.wait(60), "the fake SMS did not finish its run"
        daemon.wait_for("run 1 ended (", timeout=60)
        deadline = time.monotonic() + 30
        while not (out / "run_1.json").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        counts = json.loads((out / "run_1.json").read_text())["counts"]
        tof_in_bins = sms.sent_events_per_run[1]  # the fake SMS's TOFs lie within 1000–16000 µs
        assert counts == tof_in_bins
        assert _status(url)["listener"]["counters"]["shared_events_segments"] >= 1
    finally:
        daemon.stop()
        sms.stop()


def _status(url: str) -> dict:
    with urllib.request.urlopen(url + "status", timeout=10) as response:
        return json.load(response)


def test_chunks_kept_for_a_successor_are_bounded_by_an_early_checkpoint(tmp_path):
    """checkpoint_every is far away, but the chunks the supervisor keeps since the last checkpoint (for a worker
    that would replace a dead one) pass 4 × max_buffered_events: a checkpoint is written mid-run, so they go."""
    state = tmp_path / "state"
    sms, daemon = _rebin_daemon(  # 4 × max_buffered_events in about a second
        tmp_path,
        400_000,
        30,
        update_every=0.2,
        checkpoint_every=100_000,
        max_buffered_events=100_000,  # a quarter of a second of this stream; four of them held: a second
        state_dir=str(state),
    )
    try:
        deadline = time.monotonic() + 30
        while not list(state.glob("accumulation-*.nxs")):
            assert time.monotonic() < deadline, "no checkpoint was written early"
            assert not sms.done.is_set(), "the run ended before any checkpoint: none was written early"
            time.sleep(0.1)
    finally:
        daemon.stop()
        sms.stop()


def test_a_worker_whose_receive_thread_fails_says_so_and_ends_without_a_checkpoint(tmp_path):
    """A message the worker cannot read (here: a place in a segment it was never given) loses where it is in
    the pipe's stream: it says why in the log and ends without a clean-stop checkpoint, so the daemon keeps
    every chunk taken since the last one for the worker that replaces it."""
    context = multiprocessing.get_context("forkserver")
    ours, theirs = context.Pipe()
    spec = WorkerSpec(
        scripts={"proc": (str(tmp_path / "reduce_X_live_proc.py"), b"pass\n")},
        session={"update_every": 0.1},
        cumulative=False,
        state_dir=str(tmp_path / "state"),
    )
    process = context.Process(target=worker_main, args=(theirs, spec, logging.INFO), daemon=True)
    process.start()
    theirs.close()
    try:
        assert ours.poll(30) and ours.recv()[0] == "ready"
        ours.send(("taken_oob", [(99, 0, 8)]))  # segment 99 was never sent
        ours.send_bytes(b"")
        said: list[str] = []
        deadline = time.monotonic() + 30
        while process.is_alive() or ours.poll(0):
            assert time.monotonic() < deadline, "the worker did not end"
            if ours.poll(0.1):
                try:
                    message = ours.recv()
                except EOFError:
                    break
                if message[0] == "log":
                    said.append(message[3])
                assert message[0] not in ("checkpointed", "exiting"), message
        assert any(
            "the worker's receive thread failed" in line and "KeyError: 99" in line for line in said
        ), said
        assert not list((tmp_path / "state").glob("accumulation-*"))
    finally:
        process.kill()
        process.join(10)


def test_regular_checkpoints_take_at_most_a_tenth_of_the_time_but_a_run_end_is_never_deferred(
    tmp_path, monkeypatch
):
    """On a disk where a checkpoint takes 0.2 s, one every cycle would be most of the session's time: regular
    ones wait 1.8 s after each; the run's end and the supervisor's request are written at once."""
    written: list[tuple[int, float]] = []

    def slow_write(state_dir, checkpoint, accumulation):
        time.sleep(0.2)

    monkeypatch.setattr("livereduce.worker.checkpoints.write", slow_write)
    session = SimpleNamespace(checkpoint=lambda: (SimpleNamespace(run_number=7), None))
    spec = WorkerSpec(scripts={}, session={}, cumulative=False, state_dir=str(tmp_path), checkpoint_every=1)
    checkpointer = Checkpointer(session, spec, lambda cycle: written.append((cycle, time.monotonic())))

    def cycle(n: int, status: str = "RUNNING") -> None:
        checkpointer(
            SimpleNamespace(
                kind=RecordKind.CYCLE, cycle=n, data=SimpleNamespace(run_number=7, run_status=status)
            )
        )

    start = time.monotonic()
    n = 0
    while time.monotonic() - start < 3.0:  # cycles as fast as they come for 3 s
        n += 1
        cycle(n)
    regular = [t for _, t in written]
    assert len(regular) == 2, written  # at 0 s and after 0.2 + 1.8 s; a third would need 4 s
    assert regular[1] - regular[0] >= 1.95
    cycle(n + 1, "END_RUN")
    assert written[-1][0] == n + 1  # the run's end: written at once
    checkpointer.due = True
    cycle(n + 2)
    assert written[-1][0] == n + 2  # the supervisor's request: at once
