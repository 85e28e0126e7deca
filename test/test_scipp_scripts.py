"""scipp-native scripts (#18 part 2): a script that defines `proc(chunk, params)` or `post_proc(accumulation,
params)` gets scipp objects and returns them; the accumulation rules are the same as for Mantid-style scripts.

The fake listener's events are recorded as it hands them out, so the expected histogram is computed from them
with np.histogram, independently of both engines' paths.
"""

from __future__ import annotations

import numpy as np
import pytest
from inprocess import wait_until

from livereduce.listeners.fake import FakeEventListener
from livereduce.scripts import compile_script
from livereduce.session import Session
from livereduce.workspace.ads import AnalysisDataService

EDGES = np.linspace(40_000.0, 60_000.0, 41)  # the fake listener's TOFs are uniform in 40,000–60,000 µs

MANTID_PROC = (
    "Rebin(InputWorkspace=input, OutputWorkspace=output, Params='40000,500,60000', PreserveEvents=False)\n"
)
MANTID_POST = "SumSpectra(InputWorkspace=accumulation, OutputWorkspace=output)\n"
SCIPP_PROC = """import scipp as sc

def proc(chunk, params):
    edges = sc.linspace("tof", params["tmin"], params["tmax"], params["bins"] + 1, unit="us")
    return chunk.hist(tof=edges)
"""
SCIPP_POST = """
def post_proc(accumulation, params):
    return accumulation.sum("spectrum")
"""
PARAMETERS = {"tmin": 40_000.0, "tmax": 60_000.0, "bins": 40}


class Recording(FakeEventListener):
    """The fake listener, keeping a copy of every TOF it hands out."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.tofs: list[np.ndarray] = []

    def extract(self):
        chunk = super().extract()
        self.tofs.append(chunk.events.tof.astype(np.float64).copy())
        return chunk


def run_session(tmp_path, name, proc, post, cycles=4):
    scripts = {}
    for kind, text in (("proc", proc), ("post_proc", post)):
        if text is not None:
            path = tmp_path / f"{name}_{kind}.py"
            path.write_text(text)
            scripts[kind] = compile_script(path, kind)
    listener = Recording(events_per_extract=2000, nspectra=6, seed=21)
    session = Session(
        listener=listener,
        proc=scripts.get("proc"),
        post_proc=scripts.get("post_proc"),
        ads=AnalysisDataService(),
        update_every=0.01,
        parameters=PARAMETERS,
    )
    for _ in range(cycles):
        session.step()
    return session, listener


def test_a_scipp_pair_gives_the_same_numbers_as_the_mantid_pair(tmp_path):
    mantid, listener_a = run_session(tmp_path, "mantid", MANTID_PROC, MANTID_POST)
    scipp_, listener_b = run_session(tmp_path, "scipp", SCIPP_PROC, SCIPP_POST)
    assert [s.style for s in (scipp_.proc, scipp_.post_proc)] == ["scipp", "scipp"]
    assert [s.style for s in (mantid.proc, mantid.post_proc)] == ["mantid", "mantid"]
    expected, _ = np.histogram(np.concatenate(listener_a.tofs), bins=EDGES)  # independent of both paths
    assert np.array_equal(np.concatenate(listener_a.tofs), np.concatenate(listener_b.tofs))  # same stream
    a, b = mantid.ads["result"], scipp_.ads["result"]
    assert a.getNumberHistograms() == b.getNumberHistograms() == 1
    assert np.array_equal(a.readY(0), expected) and np.array_equal(b.readY(0), expected)
    assert np.allclose(b.readE(0), np.sqrt(expected))  # Poisson errors carried through the sum
    assert b.readX(0).tolist() == EDGES.tolist() and b.getAxis(0).getUnit().unitID() == "TOF"
    assert scipp_.state.events_accumulated == mantid.state.events_accumulated == 4 * 2000


def test_mixing_a_mantid_proc_with_a_scipp_post_proc(tmp_path):
    session, listener = run_session(tmp_path, "mixed", MANTID_PROC, SCIPP_POST)
    expected, _ = np.histogram(np.concatenate(listener.tofs), bins=EDGES)
    assert np.array_equal(session.ads["result"].readY(0), expected)


def test_a_scipp_proc_may_keep_events_and_filter_them(tmp_path):
    proc = """import scipp as sc

def proc(chunk, params):
    return chunk.bins["tof", sc.scalar(40000.0, unit="us") : sc.scalar(50000.0, unit="us")]
"""
    session, listener = run_session(tmp_path, "events", proc, None, cycles=3)
    tofs = np.concatenate(listener.tofs)
    acc = session.ads["result"]
    assert acc.id() == "EventWorkspace"  # events stay events: Add concatenates them
    assert acc.getNumberEvents() == int(np.count_nonzero(tofs < 50_000.0))
    assert acc.events.x.max() < 50_000.0


def test_a_failing_scipp_script_names_its_file_and_line(tmp_path):
    proc = "def proc(chunk, params):\n    x = 1\n    raise ValueError('bad calibration')\n"
    session, _ = run_session(tmp_path, "bad", proc, None, cycles=2)
    assert session.state.proc_errors == 2
    assert "bad_proc.py" in session.state.last_error and ":3:" in session.state.last_error
    assert "bad calibration" in session.state.last_error
    none = "def proc(chunk, params):\n    return None\n"
    session, _ = run_session(tmp_path, "none", none, None, cycles=1)
    assert "proc() returned None: return the processed chunk" in session.state.last_error


def test_a_module_level_proc_name_that_is_not_a_function_is_a_mantid_style_script(tmp_path):
    path = tmp_path / "p.py"
    path.write_text(
        "proc = 3\nRebin(InputWorkspace=input, OutputWorkspace=output, Params='40000,500,60000')\n"
    )
    assert compile_script(path, "proc").style == "mantid"


def test_a_scipp_post_proc_in_the_running_daemon(running):
    post = "def post_proc(accumulation, params):\n    return accumulation.hist(tof=10)\n"
    r = running({"post_proc": post})
    found = []

    def result():  # read once, on the test's thread: the session replaces `result` every cycle
        try:
            found[:] = [r.session().ads["result"]]
        except (KeyError, AttributeError):
            return False
        return True

    wait_until(result, what="a result")
    assert found[0].id() == "Workspace2D" and found[0].blocksize() == 10


@pytest.mark.parametrize("bad", ["return 3", "return accumulation.sum()"])
def test_what_a_post_proc_cannot_return_is_a_clear_error(tmp_path, bad):
    post = f"def post_proc(accumulation, params):\n    {bad}\n"
    session, _ = run_session(tmp_path, "badpost", None, post, cycles=1)
    assert session.state.post_proc_errors == 1
    assert (
        "badpost_post_proc.py:1: post_proc() returned what cannot be a workspace" in session.state.last_error
    )


def test_the_guides_scipp_examples_run(tmp_path):
    """The scipp-native examples in docs/processing-scripts.md run as written, each in a session."""
    import re
    from pathlib import Path

    guide = (Path(__file__).resolve().parents[1] / "docs" / "processing-scripts.md").read_text()
    section = guide[guide.index("## scipp-native scripts") : guide.index("## Memory")]
    blocks = [
        b for b in re.findall(r"```python\n(.*?)```", section, re.S) if "scipp-native" in b.splitlines()[0]
    ]
    assert len(blocks) == 3
    for i, block in enumerate(blocks):
        kind = "post_proc" if "def post_proc" in block else "proc"
        path = tmp_path / f"example{i}_{kind}.py"
        path.write_text(block)
        script = compile_script(path, kind)
        assert script.style == "scipp"
        session = Session(
            listener=FakeEventListener(events_per_extract=500, seed=i),
            **{kind: script},
            ads=AnalysisDataService(),
            update_every=0.01,
            parameters={"product_file": str(tmp_path / f"product{i}.h5")},
        )
        for _ in range(2):
            session.step()
        assert session.state.proc_errors == session.state.post_proc_errors == 0, session.state.last_error
    assert (tmp_path / "product2.h5").exists()
