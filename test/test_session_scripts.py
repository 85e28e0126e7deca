"""The session running real script files over many cycles of the fake listeners.

Expected totals come from the listener's fixed events_per_extract; the products are read back from disk
with h5py and numpy, not through livereduce.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from livereduce.listeners.fake import FakeEventListener, FakeHistogramListener
from livereduce.scripts import compile_script
from livereduce.session import Session
from livereduce.workspace.histogram import HistogramWorkspace


def script(tmp_path, kind, text, name="FAKE"):
    path = tmp_path / f"reduce_{name}_live_{kind}.py"
    path.write_text(text)
    return compile_script(path, kind)


def session(ads, listener, **kw):
    kw.setdefault("update_every", 0.01)
    return Session(listener=listener, ads=ads, **kw)


def test_noop_proc_passes_chunks_through(tmp_path, ads):
    listener = FakeEventListener(events_per_extract=300, seed=1)
    s = session(ads, listener, proc=script(tmp_path, "proc", "print('got', input.getNumberEvents())\n"))
    for _ in range(5):
        s.step()
    assert ads["result"].getNumberEvents() == 1500 == listener.produced_total
    assert not ads.doesExist("__livereduce_input_result")


def test_proc_failing_every_third_chunk_loses_no_event(tmp_path, ads):
    text = (
        "global calls\n"
        "calls = globals().get('calls', 0) + 1\n"
        "if calls % 3 == 0:\n"
        "    raise RuntimeError('every third chunk')\n"
        "CloneWorkspace(InputWorkspace=input, OutputWorkspace=output)\n"
    )
    listener = FakeEventListener(events_per_extract=100, seed=2)
    s = session(ads, listener, proc=script(tmp_path, "proc", text))
    for _ in range(10):  # calls 3, 6, 9 fail; their chunks are carried into calls 4, 7, 10
        assert s.step()
    assert s.state.proc_errors == 3
    assert s.state.cycles == 10
    assert ads["result"].getNumberEvents() == 1000 == listener.produced_total
    assert s.state.last_error.endswith("RuntimeError: every third chunk")
    assert "reduce_FAKE_live_proc.py:4" in s.state.last_error


def test_add_after_rebin_without_preserving_events(tmp_path, ads):
    text = "Rebin(InputWorkspace=input, OutputWorkspace=output, Params='40000,1000,60000', PreserveEvents=False)\n"
    listener = FakeEventListener(events_per_extract=250, seed=3)
    s = session(ads, listener, proc=script(tmp_path, "proc", text), preserve_events=False)
    for _ in range(4):
        s.step()
    acc = ads["result"]
    assert isinstance(acc, HistogramWorkspace) and acc.blocksize() == 20
    assert acc.values.sum() == 1000


def test_post_proc_only_sees_the_accumulation_by_name(tmp_path, ads):
    out = tmp_path / "out"
    text = (
        "import os\n"
        f"os.makedirs({str(out)!r}, exist_ok=True)\n"
        "n = accumulation.getNumberEvents()\n"
        "assert input is accumulation and mtd['accumulation'] is accumulation\n"
        f"with open(os.path.join({str(out)!r}, 'count.txt'), 'w') as f:\n"
        "    f.write(str(n))\n"
        "RenameWorkspace(InputWorkspace='accumulation', OutputWorkspace=output)\n"
    )
    listener = FakeEventListener(events_per_extract=50, seed=4)
    s = session(ads, listener, post_proc=script(tmp_path, "post_proc", text))
    for _ in range(6):
        s.step()
    assert s.state.post_proc_errors == 0
    assert (out / "count.txt").read_text() == "300"  # renaming did not reset the accumulation
    assert ads["result"].getNumberEvents() == 300


def test_post_proc_error_keeps_the_accumulation(tmp_path, ads):
    listener = FakeEventListener(events_per_extract=10, seed=5)
    s = session(ads, listener, post_proc=script(tmp_path, "post_proc", "x = undefined_name\n"))
    for _ in range(3):
        s.step()
    assert s.state.post_proc_errors == 3
    assert ads["accumulation"].getNumberEvents() == 30
    assert "NameError" in s.state.last_error


def test_histogram_source_with_sum_and_rebin(tmp_path, ads):
    # the anchor's test script: SumSpectra then Rebin(300, 20, 17000) on ISIS-like cumulative histograms
    text = (
        "SumSpectra(InputWorkspace=input, OutputWorkspace=output)\n"
        "Rebin(InputWorkspace=output, OutputWorkspace=output, Params='300,20,17000')\n"
    )
    listener = FakeHistogramListener(
        nspectra=10, nbins=100, nperiods=5, periods=[1, 3], edges=(10_000.0, 20_000.0)
    )
    s = session(ads, listener, proc=script(tmp_path, "proc", text, "ISIS_Histogram"), accum_method="Replace")
    for _ in range(2):
        s.step()
    group = ads["result"]
    assert s.state.proc_errors == 0
    # after 2 extracts, the summed spectrum of period p holds 2·Σ_s(p·1000 + s) per input bin of 100 µs;
    # rebinning to 20 µs splits each input bin's counts evenly over 5 output bins
    for member, p in zip(group, (1, 3), strict=True):
        per_input_bin = 2 * sum(p * 1000 + s for s in range(1, 11))
        inside = (member.readX(0)[:-1] >= 10_000) & (member.readX(0)[1:] <= 20_000)
        assert np.allclose(member.readY(0)[inside], per_input_bin / 5)
        # the output range ends at 17000 µs: only the 70 input bins of 10000–17000 µs remain
        assert member.readY(0).sum() == pytest.approx(per_input_bin * 70)


def test_seed_templates_for_ten_cycles(tmp_path, ads):
    """The guide's proc and post_proc templates, adapted only in paths and site files."""
    outdir = tmp_path / "shared" / "livereduce"
    proc = (
        "from mantid.simpleapi import Rebin, SumSpectra, ConvertUnits\n"
        "ConvertUnits(InputWorkspace=input, OutputWorkspace=output, Target='dSpacing')\n"
        "Rebin(InputWorkspace=output, OutputWorkspace=output, Params='0.5,-0.001,2.5')\n"
    )
    post = (
        "import os\n"
        "from mantid.simpleapi import SaveNexus, SaveAscii, Integration, DeleteWorkspace\n"
        "run = accumulation.getRun()\n"
        "run_number = run.getProperty('run_number').value\n"
        f"output_dir = {str(outdir)!r}\n"
        "os.makedirs(output_dir, exist_ok=True)\n"
        "SaveNexus(InputWorkspace='accumulation', Filename=f'{output_dir}/POWGEN_{run_number}_live.nxs')\n"
        "integrated = Integration(InputWorkspace='accumulation')\n"
        "SaveAscii(InputWorkspace=integrated, Filename=f'{output_dir}/POWGEN_{run_number}_integrated.txt')\n"
        "DeleteWorkspace(integrated)\n"
    )
    listener = FakeEventListener(events_per_extract=2000, nspectra=8, seed=6, tof_range=(5000.0, 15000.0))
    s = session(
        ads,
        listener,
        proc=script(tmp_path, "proc", proc, "POWGEN"),
        post_proc=script(tmp_path, "post_proc", post, "POWGEN"),
        preserve_events=False,
    )
    for _ in range(10):
        s.step()
    assert s.state.proc_errors == s.state.post_proc_errors == 0
    # every event's d = λ/(2 sin θ) with λ = h t / (m_n L); with L1 = 10 m, L2 = 2 m, 2θ ≥ 30°,
    # t in 5–15 ms the d range is ~0.6–3.8 Å, so only events with d in [0.5, 2.5) are counted
    h, m_n = 6.62607015e-34, 1.67492750056e-27
    acc = ads["accumulation"]
    assert not ads.doesExist("integrated")
    with h5py.File(outdir / "POWGEN_1_live.nxs", "r") as f:
        entry = next(iter(f.values()))
        data = next(
            v
            for v in entry.values()
            if isinstance(v, h5py.Group) and v.attrs.get("NX_class") in (b"NXdata", "NXdata")
        )
        signal = data[data.attrs["signal"]][()]
    assert signal.sum() == pytest.approx(acc.values.sum())
    # independent count: replay the same seeded listener and apply the physics to every event
    twin = FakeEventListener(events_per_extract=2000, nspectra=8, seed=6, tof_range=(5000.0, 15000.0))
    twin.start(None)
    expected = 0
    for _ in range(10):
        chunk = twin.extract()
        sp = chunk.spectra
        t = chunk.events.tof.astype(np.float64) * 1e-6
        i = chunk.events.index
        wavelength = h * t / (m_n * (sp.l1 + sp.l2[i])) * 1e10  # Å
        d = wavelength / (2 * np.sin(sp.two_theta[i] / 2))
        expected += int(np.count_nonzero((d >= 0.5) & (d < 2.5)))
    assert acc.values.sum() == expected
    assert 0 < expected < listener.produced_total  # the range really cuts some events
    # the ASCII product: one integrated value per spectrum, summing to the same total
    rows = [
        line.split(",")
        for line in (outdir / "POWGEN_1_integrated.txt").read_text().splitlines()
        if line and line[0] not in "#XS" and "," in line
    ]
    y = [float(r[1]) for r in rows]
    assert sum(y) == pytest.approx(expected)


def test_each_session_has_its_own_registry_even_on_other_threads(tmp_path):
    import threading

    from livereduce.workspace.ads import mtd

    text = "mtd['seen_by_' + str(input.getNumberEvents())] = input\nCloneWorkspace(input, OutputWorkspace=output)\n"
    first = Session(
        listener=FakeEventListener(events_per_extract=10, seed=1),
        update_every=0.01,
        proc=script(tmp_path, "proc", text),
    )
    second = Session(
        listener=FakeEventListener(events_per_extract=20, seed=2),
        update_every=0.01,
        proc=script(tmp_path, "proc", text),
    )
    worker = threading.Thread(target=first.step)  # as the daemon runs a session: on its own thread
    worker.start()
    worker.join(30)
    second.step()
    assert first.ads.getObjectNames() == ["result", "seen_by_10"]
    assert second.ads.getObjectNames() == ["result", "seen_by_20"]
    assert "seen_by_10" not in mtd and "seen_by_20" not in mtd  # nothing leaked to the process default
