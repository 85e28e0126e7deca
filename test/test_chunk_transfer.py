"""A chunk crosses the worker's pipe out of band (livereduce.worker.send_out_of_band): a real pipe between two
processes; what arrives equals what was sent, array for array, and the arrays can be written (scripts and
algorithms change them in place)."""

from __future__ import annotations

import multiprocessing

import numpy as np

from livereduce.listeners.base import Chunk, ChunkEvents, Histograms, RunStatus
from livereduce.listeners.fake import fake_spectra
from livereduce.session import Taken
from livereduce.worker import receive_out_of_band, send_out_of_band
from livereduce.workspace.run import Run


def echo(conn) -> None:
    """The worker's side: receive out of band, check the arrays can be written, send the result back."""
    message = conn.recv()
    taken = receive_out_of_band(conn, message[1])
    taken.chunk.events.tof[0] += 0  # raises if the array is read-only
    conn.send(taken)


def test_a_taken_chunk_crosses_the_pipe_whole_and_writable():
    rng = np.random.default_rng(4)
    n = 300_000
    run = Run()
    run.set("run_number", "42")
    events = ChunkEvents(
        rng.integers(0, 16, n, dtype=np.uint32),
        rng.uniform(1000, 20000, n).astype(np.float32),
        np.array([10, 20, 30], np.int64),
        np.array([0, 1000, 200_000], np.int64),
    )
    values = rng.random((2, 16, 50))
    chunk = Chunk(spectra=fake_spectra(16, "FAKE"), run=run, events=events)
    chunk.histograms = Histograms(edges=np.linspace(0, 1, 51), counts=values, periods=(1, 2))
    taken = Taken(False, chunk, RunStatus.RUNNING, 42)
    ctx = multiprocessing.get_context("forkserver")
    parent, child_end = ctx.Pipe()
    proc = ctx.Process(target=echo, args=(child_end,))
    proc.start()
    try:
        send_out_of_band(parent, "taken_oob", taken)
        back = parent.recv()
    finally:
        proc.join(30)
    assert back.listener_run_number == 42 and back.status == RunStatus.RUNNING
    assert back.chunk.run.getRunNumber() == 42
    for name in ("index", "tof", "pulse_time", "pulse_start"):
        sent, got = getattr(events, name), getattr(back.chunk.events, name)
        assert got.dtype == sent.dtype and np.array_equal(got, sent), name
    assert np.array_equal(back.chunk.histograms.counts, values)
    assert back.chunk.histograms.periods == (1, 2)
