"""`livereduce try`: the scripts over a recorded run, offline, through the real replay server, listener and
session (issue #18, part 3). Expected numbers come from the recorded file itself (h5py), never from our output."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from daemon_helpers import REPO, DaemonProcess

from livereduce.cli import main
from livereduce.listeners.adara import packets as P
from livereduce.servers.adara import FakeSMS

h5py = pytest.importorskip("h5py")

BINS = np.arange(0.0, 20_001.0, 100.0)  # the scripts' Rebin Params "0,100,20000"
SUMMARY = re.compile(r"^tried (\d+) cycles: (\d+) events accumulated, (\d+) script errors$")
PROC = """from mantid.simpleapi import Rebin
Rebin(InputWorkspace=input, OutputWorkspace=output, Params="0,100,20000", PreserveEvents=False)
"""


@pytest.fixture(autouse=True)
def scratch_in_tmp_path(tmp_path, monkeypatch):
    """`try` without --products makes a scratch directory (kept for the user): here, under tmp_path."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


def recorded_run(path: Path, *, pulses: int = 120, pixels: int = 32, seed: int = 5, run: int = 7) -> tuple:
    """A NeXus event file: two banks, Poisson events per 60 Hz pulse. Returns (detector ids, TOFs µs) as written.
    TOFs are whole µs + 0.5, so ADARA's 0.1 µs resolution never moves an event across a 100 µs bin edge."""
    rng = np.random.default_rng(seed)
    all_ids, all_tofs = [], []
    with h5py.File(path, "w") as f:
        entry = f.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        entry["run_number"], entry["title"], entry["experiment_identifier"] = str(run), "trial", "IPTS-18"
        entry.create_group("instrument")["name"] = "TRY"
        for bank, first in ((1, 0), (2, pixels // 2)):
            counts = rng.poisson(30, pulses)
            ids = rng.integers(first, first + pixels // 2, counts.sum()).astype(np.uint32)
            ids[0] = first + pixels // 2 - 1  # the highest id is present: it sizes the geometry
            tofs = (rng.integers(500, 19_000, counts.sum()) + 0.5).astype(np.float32)
            g = entry.create_group(f"bank{bank}_events")
            g.attrs["NX_class"] = "NXevent_data"
            g["event_id"], g["event_time_offset"] = ids, tofs
            g["event_time_offset"].attrs["units"] = "microsecond"
            g["event_index"] = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.uint64)
            g["event_time_zero"] = np.arange(pulses) / 60.0
            g["event_time_zero"].attrs.update(units="second", offset="2024-05-01T12:00:00+00:00")
            all_ids.append(ids)
            all_tofs.append(tofs)
    return np.concatenate(all_ids), np.concatenate(all_tofs).astype(np.float64)


def scripts_dir(
    tmp_path: Path, *, proc: str | None = PROC, post_proc: str | None = None, name="scripts"
) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    if proc is not None:
        (folder / "reduce_TRY_live_proc.py").write_text(proc)
    if post_proc is not None:
        (folder / "reduce_TRY_live_post_proc.py").write_text(post_proc)
    return folder


def config(tmp_path: Path, scripts: Path, **extra) -> dict:
    return {
        "instrument": "TRY",
        "listener": "adara",
        "address": "127.0.0.1:31415",  # the daemon's DAS; `try` replays on a port of its own
        "script_dir": str(scripts),
        "update_every": 0.5,
        "accum_method": "Add",
        "preserve_events": True,
        "system_mem_limit_perc": 0,
        **extra,
    }


def write_config(tmp_path: Path, cfg: dict) -> str:
    path = tmp_path / "try.conf"
    path.write_text(json.dumps(cfg))
    return str(path)


def try_(capsys, *args: str) -> tuple[int, list[str]]:
    code = main(["try", *args])
    lines = capsys.readouterr().out.splitlines()
    return code, lines


def summary(lines: list[str]) -> tuple[int, int, int]:
    match = SUMMARY.match(lines[-1])
    assert match, f"the last line is not the summary: {lines[-5:]}"
    return int(match[1]), int(match[2]), int(match[3])


def histogram_values(path: Path) -> np.ndarray:
    with h5py.File(path, "r") as f:
        return f["mantid_workspace_1/workspace/values"][()]


def expected_histogram(ids: np.ndarray, tofs: np.ndarray, pixels: int = 32) -> np.ndarray:
    """Counts per pixel and 100 µs bin, straight from the file's events."""
    return np.stack([np.histogram(tofs[ids == p], BINS)[0] for p in range(pixels)]).astype(float)


def test_try_reproduces_the_live_daemons_products(tmp_path, capsys):
    recording = tmp_path / "TRY_7.nxs.h5"
    ids, tofs = recorded_run(recording)
    live_out = tmp_path / "live"
    live_out.mkdir()
    product = live_out / "TRY_7_live.nxs"
    post_proc = f"from mantid.simpleapi import SaveNexus\nSaveNexus(InputWorkspace=input, Filename={str(product)!r})\n"
    cfg = config(tmp_path, scripts_dir(tmp_path, post_proc=post_proc))

    tried = tmp_path / "tried"
    code, lines = try_(
        capsys, write_config(tmp_path, cfg), "--replay", str(recording), "--products", str(tried)
    )
    assert code == 0, "\n".join(lines)
    cycles, events, errors = summary(lines)
    assert cycles >= 1 and errors == 0
    assert events == ids.size  # every event of the file, histogrammed by the proc and Added
    assert not product.exists()  # the trial wrote into --products, not where the script says
    assert any(f"products in {tried}" in line for line in lines)

    sms = FakeSMS(port=0, replay=recording, speed="unlimited", wait_for_client=True)
    daemon = DaemonProcess(tmp_path, {**cfg, "address": f"127.0.0.1:{sms.start()}"})
    try:
        assert sms.done.wait(60), "the fake SMS did not finish the replay"
        daemon.wait_for("ended (", timeout=60)  # its END_RUN cycle's post_proc wrote the product last
        live = histogram_values(product)
    finally:
        daemon.stop()
        sms.stop()
    trial = histogram_values(tried / product.name)
    expected = expected_histogram(ids, tofs)
    np.testing.assert_array_equal(live, expected)
    np.testing.assert_array_equal(trial, expected)
    assert live.sum() == trial.sum() == ids.size


def captured_run(run: int, counts: np.ndarray, start_s: int, *, ended: bool = True) -> list[bytes]:
    """One run of an .adara capture: NEW_RUN, a 32-pixel geometry, a BankedEvent per 60 Hz pulse, END_RUN."""
    geometry = '<instrument name="TRY"><detectors first_id="0" count="32"/></instrument>'
    packets = [
        P.encode(P.RunStatusPkt(run, start_s, P.RunStatusCode.NEW_RUN), start_s, 0),
        P.encode(P.GeometryPkt(geometry), start_s, 0),
    ]
    for k, n in enumerate(counts.tolist()):
        bank = P.EventBank(1, np.full(n, 10_000 + k, np.uint32), np.arange(n, dtype=np.uint32) % 32)
        pulse = P.BankedEventPkt(10, 0, k, 0, 0, [P.EventSource(0, 0, 0, True, [bank])])
        packets.append(P.encode(pulse, start_s + k * 16_666_667 // 10**9, k * 16_666_667 % 10**9))
    if ended:
        packets.append(P.encode(P.RunStatusPkt(run, start_s, P.RunStatusCode.END_RUN), start_s + 2, 0))
    return packets


def test_an_adara_capture_of_runs_back_to_back_the_last_left_open(tmp_path, capsys):
    rng = np.random.default_rng(11)
    counts = [rng.poisson(20, 90) for _ in range(3)]
    start = 1_000_000_000  # EPICS seconds
    capture = tmp_path / "TRY.adara"
    capture.write_bytes(
        b"".join(
            captured_run(11, counts[0], start)
            + captured_run(12, counts[1], start + 5)
            + captured_run(13, counts[2], start + 10, ended=False)  # the recording stops mid-run
        )
    )
    cfg = write_config(tmp_path, config(tmp_path, scripts_dir(tmp_path)))
    code, lines = try_(capsys, cfg, "--replay", str(capture))
    assert code == 0, "\n".join(lines)
    assert f"run 11 ended ({counts[0].sum()} events accumulated)" in lines
    assert f"run 12 ended ({counts[1].sum()} events accumulated)" in lines
    assert summary(lines)[1] == sum(c.sum() for c in counts)  # the open run's events too


def test_a_failing_proc_exits_1_naming_its_file_and_line(tmp_path, capsys):
    recording = tmp_path / "TRY_7.nxs.h5"
    recorded_run(recording, pulses=30)
    scripts = scripts_dir(tmp_path, proc='x = 1\nraise ValueError("calibration file missing")\n')
    code, lines = try_(capsys, write_config(tmp_path, config(tmp_path, scripts)), "--replay", str(recording))
    assert code == 1
    text = "\n".join(lines)
    assert f"{scripts / 'reduce_TRY_live_proc.py'}:2: ValueError: calibration file missing" in text
    cycles, events, errors = summary(lines)
    assert events == 0 and errors == cycles >= 1  # every cycle's proc failed; nothing was accumulated


def test_a_proc_that_does_not_compile_exits_1_naming_its_line(tmp_path, capsys):
    recording = tmp_path / "TRY_7.nxs.h5"
    recorded_run(recording, pulses=10)
    scripts = scripts_dir(tmp_path, proc="a = 1\nb = 2\nc = (\n")
    code, lines = try_(capsys, write_config(tmp_path, config(tmp_path, scripts)), "--replay", str(recording))
    assert code == 1
    assert f"{scripts / 'reduce_TRY_live_proc.py'}:3" in "\n".join(lines)
    assert summary(lines) == (0, 0, 1)


def test_a_missing_or_unreadable_replay_file_exits_2(tmp_path, capsys):
    cfg = write_config(tmp_path, config(tmp_path, scripts_dir(tmp_path)))
    missing = tmp_path / "nowhere" / "TRY_1.nxs.h5"
    code, lines = try_(capsys, cfg, "--replay", str(missing))
    assert code == 2
    assert f"ERROR: cannot replay {missing}: No such file or directory" in lines
    not_nexus = tmp_path / "TRY_2.nxs"
    not_nexus.write_text("not HDF5")
    code, lines = try_(capsys, cfg, "--replay", str(not_nexus))
    assert code == 2
    assert f"ERROR: cannot replay {not_nexus}: not an HDF5 (NeXus) file" in lines
    broken = tmp_path / "TRY_3.nxs.h5"  # HDF5, but its event group lacks event_time_offset
    with h5py.File(broken, "w") as f:
        f.create_group("entry").create_group("bank1_events").attrs["NX_class"] = "NXevent_data"
    code, lines = try_(capsys, cfg, "--replay", str(broken))
    assert code == 2
    assert any(
        line.startswith(f"ERROR: cannot try the scripts: cannot replay {broken}: ") for line in lines
    ), lines


def test_no_scripts_exits_2(tmp_path, capsys):
    recording = tmp_path / "TRY_7.nxs.h5"
    recorded_run(recording, pulses=5)
    cfg = write_config(tmp_path, config(tmp_path, scripts_dir(tmp_path, proc=None)))
    code, lines = try_(capsys, cfg, "--replay", str(recording))
    assert code == 2
    assert any(line.startswith("ERROR: ") and "reduce_TRY_live_proc.py" in line for line in lines), lines


def test_products_go_to_a_scratch_directory_not_to_the_scripts_paths(tmp_path, capsys):
    recording = tmp_path / "TRY_7.nxs.h5"
    ids, tofs = recorded_run(recording, pulses=60)
    deployed = tmp_path / "SNS" / "TRY" / "shared"  # exists: a save there would succeed if not redirected
    deployed.mkdir(parents=True)
    post_proc = (
        "from mantid.simpleapi import SaveAscii, SaveNexus\n"
        f"SaveNexus(InputWorkspace=input, Filename={str(deployed / 'TRY_live.nxs')!r})\n"
        f"SaveAscii(InputWorkspace=input, Filename={str(deployed / 'TRY_live.csv')!r})\n"
    )
    cfg = write_config(tmp_path, config(tmp_path, scripts_dir(tmp_path, post_proc=post_proc)))
    code, lines = try_(capsys, cfg, "--replay", str(recording))
    assert code == 0, "\n".join(lines)
    scratch = Path(re.search(r"Save\* products go to (\S+) ", lines[0])[1])
    assert scratch.parent == tmp_path and scratch.name.startswith("livereduce-try-")
    try:
        assert sorted(os.listdir(deployed)) == []
        assert sorted(p.name for p in scratch.iterdir()) == ["TRY_live.csv", "TRY_live.nxs"]
        np.testing.assert_array_equal(
            histogram_values(scratch / "TRY_live.nxs"), expected_histogram(ids, tofs)
        )
        assert f"products in {scratch}:" in lines
        # a candidate script directory against the same config, into the same directory: the files there
        # from the first trial are not reported as this one's
        candidate = scripts_dir(tmp_path, name="candidate")
        code, lines = try_(
            capsys, cfg, "--replay", str(recording), "--scripts", str(candidate), "--products", str(scratch)
        )
        assert code == 0, "\n".join(lines)
        assert f"trying the scripts in {candidate} " in lines[0]
        assert f"no products were written to {scratch}" in lines
    finally:
        shutil.rmtree(scratch)


def test_cycles_stops_after_k_cycles(tmp_path, capsys):
    recording = tmp_path / "TRY_7.nxs.h5"
    recorded_run(recording, pulses=600)  # 10 s of stream time, replayed in real time: far from over
    cfg = write_config(tmp_path, config(tmp_path, scripts_dir(tmp_path)))
    t0 = time.monotonic()
    code, lines = try_(capsys, cfg, "--replay", str(recording), "--cycles", "2", "--speed", "1")
    assert code == 0, "\n".join(lines)
    assert summary(lines)[0] == 2
    assert sum(line.startswith("cycle ") for line in lines) == 2
    assert time.monotonic() - t0 < 8  # it did not wait for the run to end


def test_watch_tries_again_when_a_script_is_saved(tmp_path):
    recording = tmp_path / "TRY_7.nxs.h5"
    ids, _ = recorded_run(recording, pulses=30)
    scripts = scripts_dir(tmp_path, post_proc="print('first version')\n")
    cfg = write_config(tmp_path, config(tmp_path, scripts))
    proc = subprocess.Popen(
        [sys.executable, "-m", "livereduce", "try", cfg, "--replay", str(recording), "--watch"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", "TMPDIR": str(tmp_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.extend(proc.stdout), daemon=True)
    reader.start()

    def wait_for(text: str, count: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while sum(text in line for line in out) < count:
            assert proc.poll() is None and time.monotonic() < deadline, (
                f"no {text!r} ×{count}:\n{''.join(out)}"
            )
            time.sleep(0.05)

    try:
        wait_for("saving a script tries again", 1)
        (scripts / "reduce_TRY_live_post_proc.py").write_text("print('second version')\n")
        wait_for("saving a script tries again", 2)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        reader.join(5)
        proc.stdout.close()
    text = "".join(out)
    runs = [SUMMARY.match(line.strip()) for line in out if SUMMARY.match(line.strip())]
    assert len(runs) == 2 and all(int(m[2]) == ids.size and int(m[3]) == 0 for m in runs), text
    assert (
        text.index("first version")
        < text.index("a script changed: trying again")
        < text.index("second version")
    )
    assert text.rstrip().endswith("stopped watching")


ROW_IDF = """<?xml version="1.0" encoding="UTF-8"?>
<instrument name="TRY">
  <defaults><length unit="meter"/><angle unit="degree"/></defaults>
  <component type="moderator"><location z="-20.0"/></component>
  <type name="moderator" is="Source"/>
  <component type="sample-position"><location/></component>
  <type name="sample-position" is="SamplePos"/>
  <component type="pixel" idlist="row"><locations n-elements="32" x="1.0" x-end="2.55"/></component>
  <type name="pixel" is="detector"/>
  <idlist idname="row"><id start="0" end="31"/></idlist>
</instrument>
"""


def test_instrument_definition_gives_the_replay_its_geometry(tmp_path, capsys):
    """The daemon's rule in `try` too: the config's instrument_definition where the stream sends none."""
    recording = tmp_path / "TRY_7.nxs.h5"
    recorded_run(recording, pulses=20)
    idf = tmp_path / "TRY_Definition.xml"
    idf.write_text(ROW_IDF)
    out = tmp_path / "geometry.json"
    post = (
        "import json\n"
        "info = accumulation.spectrumInfo()\n"
        f"with open({str(out)!r}, 'w') as f:\n"
        "    json.dump({'l1': info.l1(), 'l2': [info.l2(i) for i in (0, 31)]}, f)\n"
    )
    scripts = scripts_dir(tmp_path, proc=None, post_proc=post)
    cfg = config(tmp_path, scripts, instrument_definition=str(idf))
    code, lines = try_(capsys, write_config(tmp_path, cfg), "--replay", str(recording))
    assert code == 0, lines[-5:]
    geometry = json.loads(out.read_text())
    # by hand: source at z = -20 m; pixel 0 at x = 1.0 m, pixel 31 at 1.0 + 31 * 0.05 = 2.55 m
    assert geometry["l1"] == pytest.approx(20.0)
    assert geometry["l2"] == pytest.approx([1.0, 2.55])
    bad = config(tmp_path, scripts, instrument_definition=str(tmp_path / "missing.xml"))
    code, lines = try_(capsys, write_config(tmp_path, bad), "--replay", str(recording))
    assert code == 2 and any("instrument_definition" in line and "missing.xml" in line for line in lines)
