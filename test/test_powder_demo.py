"""The powder demo: the fake SMS plays POWGEN (its real IDF) with a silicon sample, and AlignAndFocusPowder puts
the peaks back at silicon's d-spacings, with every event accounted for.

Expected numbers come from physics, worked here, not from the code under test:
- silicon has the diamond structure, a = 5.431020511 Å (CODATA 2018); (h k l) is allowed when all odd, or all
  even with h + k + l = 4n, so N = h² + k² + l² ∈ {3, 8, 11, 16, 19, 24, 27, 32, 35, 40, 43, 48, 51, …} and
  d = a / √N: 3.1356, 1.9202, 1.6375, 1.3578, 1.2460, 1.1086, 1.0452, 0.9601, 0.9180, 0.8587, 0.8282, 0.7839,
  0.7605 Å;
- each event's own d is TOF / DIFC of its pixel, DIFC = 2 m_n (L1 + |r|) sinθ / h with 2θ the angle between
  the pixel's position r (sample at the origin) and the beam (+z), L1 = 60 m (POWGEN's moderator);
- the resolution the fake SMS draws with is σ_d/d = 0.0025 (its documented choice).
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import REPO, shared_path
from stream_helpers import one_run

from livereduce.algorithms import call
from livereduce.chunks import workspace_from_chunk
from livereduce.instrument import read_idf

POWGEN = "instruments/idf/POWGEN_Definition_2018-05-05.xml"
GROUPING = str(REPO / "demo" / "powder_grouping.xml")
A_SI = 5.431020511
ALLOWED_N = [3, 8, 11, 16, 19, 24, 27, 32, 35, 40, 43, 48, 51]
D_SI = [A_SI / math.sqrt(n) for n in ALLOWED_N]  # down to 0.7605 Å, inside the demo's d range [0.75, 3.3)
SIGMA = 0.0025
H, M_N = 6.62607015e-34, 1.67492750056e-27


def stream(idf: str, seconds: float, rate: float, seed: int):
    """Every chunk of one fake-SMS run, and the events it says it sent."""
    chunks, sms, _ = one_run(timeout=60, idf=idf, powder="silicon", run_seconds=seconds, rate=rate, seed=seed)
    return chunks, sms.sent_events_per_run[1]


def hand_d(ws, g) -> np.ndarray:
    """Each event's d from its TOF and its pixel's position, by the formula in the module docstring."""
    pos = g.positions[g.index_of(ws.spectra.det_ids)]
    r = np.linalg.norm(pos, axis=1)
    two_theta = np.arccos(pos[:, 2] / r)
    difc = 2 * M_N * (60.0 + r) * np.sin(two_theta / 2) / H * 1e-4  # µs/Å
    ev = ws.events
    return ev.x / difc[ev.index]


def located_peaks(x: np.ndarray, y: np.ndarray) -> list[tuple[float, float]]:
    """(centroid, counts) of each peak: local maxima of the counts smoothed over ±σ, above 5 % of the largest,
    refined as the centroid of the raw counts within ±2σ."""
    step = math.log(x[1] / x[0])
    half = max(1, round(math.log1p(SIGMA) / step))
    kernel = np.exp(-0.5 * (np.arange(-3 * half, 3 * half + 1) / half) ** 2)
    s = np.convolve(y, kernel / kernel.sum(), mode="same")
    top = s.max()
    found = []
    for j in np.flatnonzero((s[1:-1] > s[:-2]) & (s[1:-1] >= s[2:]) & (s[1:-1] > 0.05 * top)) + 1:
        window = np.abs(np.log(x / x[j])) <= 2 * SIGMA
        found.append((float(np.sum(x[window] * y[window]) / np.sum(y[window])), float(y[window].sum())))
    return found


def test_focused_silicon_peaks_and_event_bookkeeping():
    path = shared_path(POWGEN)
    g = read_idf(path)
    chunks, sent = stream(str(path), seconds=2.0, rate=300_000, seed=7)
    ws = workspace_from_chunk(chunks[0])
    for c in chunks[1:]:
        ws = call("Plus", ws, workspace_from_chunk(c), StoreInADS=False)
    assert ws.getNumberEvents() == sent > 100_000
    d_each = hand_d(ws, g)

    focused = call(
        "AlignAndFocusPowder",
        ws,
        GroupFilename=GROUPING,
        Params="-0.0005",
        DMin=0.75,
        DMax=3.3,
        StoreInADS=False,
    )
    pattern = call("ConvertUnits", focused, Target="dSpacing", StoreInADS=False)
    pattern = call("Rebin", pattern, Params="0.75,-0.0005,3.3", PreserveEvents=False, StoreInADS=False)
    x = pattern.readX(0)
    lo, hi = x[0], x[-1]  # the log binning's last edge is the last 0.75·1.0005^k ≤ 3.3
    outside = int(np.count_nonzero((d_each < lo) | (d_each >= hi)))
    assert outside > 0  # silicon's 642 (0.7258 Å) and beyond are generated, below the range
    assert pattern.values.sum() == sent - outside  # every other event is in the focused pattern, once
    per_group = pattern.values.sum(axis=1)
    assert pattern.getNumberHistograms() == 4 and np.all(per_group > 0.05 * per_group.sum())  # all banks

    centres = 0.5 * (x[1:] + x[:-1])
    for i in range(4):
        peaks = located_peaks(centres, pattern.readY(i))
        assert len(peaks) >= 3, (i, peaks)
        for centre, counts in peaks:  # every peak found is a silicon peak, within a fifth of the resolution
            nearest = min(D_SI, key=lambda d: abs(math.log(centre / d)))
            assert abs(centre / nearest - 1) < SIGMA / 5, (i, centre, nearest, counts)
        strongest = max(peaks, key=lambda p: p[1])[0]
        assert min(abs(strongest / d - 1) for d in D_SI) < SIGMA / 20, (i, strongest)


def test_the_demo_config_and_scripts_focus_a_live_run(tmp_path):
    """The demo's own config and post-processing script in the daemon (a subprocess), against the fake SMS: the
    last product holds every event of the run and its peaks at silicon's d."""
    from livereduce.servers.adara import FakeSMS

    path = shared_path(POWGEN)
    sms = FakeSMS(port=0, idf=str(path), powder="silicon", runs=1, run_seconds=3.0, rate=100_000, seed=3)
    port = sms.start()
    conf = json.loads((REPO / "demo" / "powder.conf").read_text())
    conf.update(
        address=f"127.0.0.1:{port}",
        script_dir=str(REPO / "demo" / "powder_scripts"),
        log_file=str(tmp_path / "livereduce.log"),
        update_every=1,
        state_dir=str(tmp_path / "state"),
    )
    (tmp_path / "powder.conf").write_text(json.dumps(conf))
    env = {**os.environ, "LIVEREDUCE_DEMO_OUTPUT": str(tmp_path / "out"), "PYTHONUNBUFFERED": "1"}
    out_path = tmp_path / "daemon.out"
    with out_path.open("w") as out:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "livereduce", "run", str(tmp_path / "powder.conf")],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    product = tmp_path / "out" / "PG3_1_focused.nxs"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert daemon.poll() is None, out_path.read_text()[-3000:]
            assert time.monotonic() < deadline, (tmp_path / "livereduce.log").read_text()[-3000:]
            done = sms.done.is_set() and 1 in sms.sent_events_per_run
            try:  # the product's `events` log: how many events it was focused from
                got = (
                    call("LoadNexusProcessed", Filename=str(product), StoreInADS=False)
                    if product.exists()
                    else None
                )
            except Exception:  # being written
                got = None
            if done and got and int(got.getRun().getProperty("events").value) == sms.sent_events_per_run[1]:
                break
            time.sleep(0.2)
    finally:
        daemon.send_signal(signal.SIGINT)
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()
        sms.stop()
    assert got.getNumberHistograms() == 4 and all(got.readY(i).sum() > 0 for i in range(4))  # every bank
    rows = np.array(
        [
            [float(v) for v in line.split()[:2]]
            for line in (tmp_path / "out" / "PG3_1_focused.xye").read_text().splitlines()
            if line.split() and line.split()[0][0].isdigit()  # data rows; headers are '#' and XYDATA lines
        ]
    )
    peaks = located_peaks(rows[:, 0], rows[:, 1])  # the four groups' blocks, one after the other
    assert peaks
    for centre, _ in peaks:
        assert min(abs(centre / d - 1) for d in D_SI) < SIGMA / 5, centre


def test_the_sample_model_is_the_diamond_structure():
    """Multiplicity × |F|² by hand: {111} 8 × 32, {220} 12 × 64, {311} 24 × 32, {400} 6 × 64, {331} 24 × 32,
    {422} 24 × 64, {333} + {511} (8 + 24) × 32; diamond's first peak d(111) = 3.56679/√3 = 2.05929 Å."""
    from livereduce.servers.powder_sample import PowderSample

    si = PowderSample("silicon")
    assert si.n[:7].tolist() == [3, 8, 11, 16, 19, 24, 27]
    assert si.weights[:7].tolist() == [256, 768, 768, 384, 768, 1536, 1024]
    assert si.d[:13] == pytest.approx(D_SI)
    assert PowderSample("diamond").d[0] == pytest.approx(2.05929, abs=1e-5)
    # a pixel at 2θ = 90° sees λ = 2 d sin45° in [0.536, 1.596] Å: d from 0.379 to 1.1286 Å, so 422 (1.1086) but
    # not 331 (1.2460); every drawn d lies within 6σ of a visible peak
    seen = si.visible(np.array([math.sin(math.pi / 4)]))[0]
    assert seen[5] and not seen[4]
    d = si.draw_d(np.random.default_rng(0), np.full(10_000, math.sin(math.pi / 4)))
    assert np.all(np.min(np.abs(d[:, None] / si.d[seen][None, :] - 1), axis=1) < 6 * SIGMA)
