"""The example scripts of the user guide, docs/processing-scripts.md, run unchanged on the embedded engine.

The guide carries the seed's example scripts (the user's shared/spec/processing-scripts.md; a test checks that
every one of them is in the guide, when ../shared is present). Each script is run the way the daemon runs it:
compiled by `livereduce.scripts.compile_script` and run by `livereduce.scripts.run_script` (Mantid's contract:
function scope, `input` and `output`, plus `accumulation` for post_proc), on a synthetic event chunk whose
events we know. Expected numbers are computed independently with plain numpy on those events.
"""

from __future__ import annotations

import gc
import logging
import re
import sys
import warnings

import numpy as np
import pytest
from conftest import REPO, shared_path

from livereduce.chunks import workspace_from_chunk
from livereduce.listeners.base import Chunk, ChunkEvents, Histograms
from livereduce.mantidapi import script_imports
from livereduce.scripts import compile_script, run_script
from livereduce.workspace.events import EventWorkspace
from livereduce.workspace.histogram import HistogramWorkspace
from livereduce.workspace.run import Run
from livereduce.workspace.spectra import Spectra

GUIDE = REPO / "docs" / "processing-scripts.md"
SHARED_SPEC = "spec/processing-scripts.md"  # the user's document, under ../shared
H, M_N = 6.62607015e-34, 1.67492750056e-27  # CODATA 2022 (scipy.constants), written out
OUT = "__livereduce_input_result"  # the name the session gives the chunk (output_name "result")
POST_OUT = "result"  # the post_proc script's `output` (output_name)
NSPEC = 8
L1, L2 = 10.0, np.linspace(2.0, 3.0, NSPEC)


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.DOTALL)


def guide_blocks() -> list[str]:
    return python_blocks(GUIDE.read_text())


def block(containing: str) -> str:
    hits = [b for b in guide_blocks() if containing in b]
    assert len(hits) == 1, f"expected one script containing {containing!r}, found {len(hits)}"
    return hits[0]


def event_chunk(n=50_000, seed=7):
    rng = np.random.default_rng(seed)
    index = rng.integers(0, NSPEC, n, dtype=np.uint32)
    tof = rng.uniform(100.0, 21_000.0, n).astype(np.float32)
    spectra = Spectra.one_to_one(
        np.arange(101, 101 + NSPEC),
        l1=L1,
        l2=L2,
        two_theta=np.deg2rad(np.linspace(30, 150, NSPEC)),
        instrument="TEST",
    )
    run = Run()
    run.set("run_number", "4321")
    run.set("experiment_identifier", "IPTS-12345")
    run.set("run_start", "2026-01-01T00:00:00Z")
    run.series("proton_charge", "picoCoulomb").append([1, 2], [1.0e6, 1.0e6])
    events = ChunkEvents(index, tof, np.array([1_700_000_000_000_000_000]), np.array([0]))
    return workspace_from_chunk(Chunk(spectra, run, events)), index, tof.astype(np.float64)


KEEP_LOCALS = "\noutput = dict(locals())\n"  # appended: the script's variables come back as its `output`


def no_mantid_modules_left() -> None:
    assert not [m for m in sys.modules if m == "mantid" or m.startswith("mantid.")]


def run_proc(text: str, input_ws):
    """The session's proc step: the chunk registered under the hidden input name, the script compiled and run
    by livereduce.scripts with `input` = the chunk and `output` = that name; `output` afterwards names (or
    holds) the result."""
    from livereduce.workspace.ads import mtd

    mtd.addOrReplace(OUT, input_ws)
    out = run_script(compile_script("reduce_TEST_live_proc.py", "proc", text.encode()), input_ws, OUT)
    no_mantid_modules_left()
    return mtd[out] if isinstance(out, str) else out


def run_post_proc(text: str, acc):
    """The session's post_proc step: `input` = the accumulation, `output` = the output name, and the
    accumulation also as the variable and the workspace name `accumulation`. Returns what `output` holds."""
    from livereduce.workspace.ads import mtd

    mtd.addOrReplace("accumulation", acc)
    script = compile_script("reduce_TEST_live_post_proc.py", "post_proc", text.encode())
    out = run_script(script, acc, POST_OUT, extra={"accumulation": acc})
    no_mantid_modules_left()
    return out


def per_spectrum_hist(index, tof, edges):
    return np.array([np.histogram(tof[index == s], bins=edges)[0] for s in range(NSPEC)], float)


def test_simple_rebinning_script(ads):
    ws, index, tof = event_chunk()
    out = run_proc(block("# Rebin to common TOF range"), ws)
    edges = np.arange(1000.0, 20000.0 + 1, 100.0)
    expected = per_spectrum_hist(index, tof, edges)
    assert isinstance(out, HistogramWorkspace)
    np.testing.assert_array_equal(out.readX(0), edges)
    np.testing.assert_array_equal(out.values, expected)
    np.testing.assert_array_equal(out.extractE(), np.sqrt(expected))


def test_spectrum_summation_script(ads):
    ws, _index, tof = event_chunk()
    out = run_proc(block("# Sum all spectra for quick visualization"), ws)
    assert isinstance(out, EventWorkspace) and out.getNumberHistograms() == 1
    assert out.getNumberEvents() == tof.size
    assert out.getSpectrum(0).getSpectrumNo() == 1  # the first summed spectrum's
    assert sorted(out.getSpectrum(0).getDetectorIDs()) == list(range(101, 101 + NSPEC))
    np.testing.assert_array_equal(np.sort(out.getSpectrum(0).getTofs()), np.sort(tof))


@pytest.mark.parametrize("preserve", [True, False])
def test_memory_section_scripts(ads, preserve):
    """The Memory section's block holds two alternative calls; each runs as its own script, and the block
    as a whole too (its second call decides the result)."""
    whole = block("grows unbounded")
    part = [p for p in whole.split("\n\n") if f"PreserveEvents={preserve}" in p]
    assert len(part) == 1
    edges = np.arange(1000.0, 20000.0 + 1, 100.0)
    for text, events_kept in ((part[0], preserve), (whole, False)):
        ws, index, tof = event_chunk()
        out = run_proc(text, ws)
        assert isinstance(out, EventWorkspace) is events_kept
        if events_kept:
            assert out.getNumberEvents() == tof.size  # events kept, only the binning changed
        got = np.array([out.readY(i) for i in range(NSPEC)])
        np.testing.assert_array_equal(got, per_spectrum_hist(index, tof, edges))


def test_ref_m_wavelength_script(ads):
    ws, index, tof = event_chunk()
    out = run_proc(block("# Convert to wavelength"), ws)
    lam = H * tof * 1e-6 / (M_N * (L1 + L2[index])) * 1e10  # Å
    edges = 2.5 + 0.1 * np.arange(126)
    edges[-1] = 15.0
    expected = per_spectrum_hist(index, lam, edges)
    assert out.x_unit.unit_id == "Wavelength"
    np.testing.assert_allclose(out.readX(0), edges, rtol=1e-12)
    # events near an edge may fall either side of it through rounding; compare with a 1-count allowance
    assert np.abs(out.values - expected).max() <= 1
    assert abs(out.values.sum() - expected.sum()) <= 2
    np.testing.assert_allclose(out.variances, out.values)


def test_anchor_histogram_script_on_events(ads):
    """The anchor daemon's fake histogram script: SumSpectra then Rebin to 300,20,17000."""
    text = (
        "from mantid.simpleapi import Rebin, SumSpectra\n"
        "SumSpectra(InputWorkspace=input, OutputWorkspace=output)\n"
        'Rebin(InputWorkspace=output, OutputWorkspace=output, Params="300,20,17000")\n'
    )
    ws, _index, tof = event_chunk()
    out = run_proc(text, ws)
    edges = 300.0 + 20.0 * np.arange(836)
    counts = np.histogram(tof, bins=edges)[0].astype(float)
    assert out.getNumberHistograms() == 1 and out.blocksize() == 835
    np.testing.assert_array_equal(out.readX(0), edges)
    np.testing.assert_array_equal(out.readY(0), counts)
    np.testing.assert_array_equal(out.readE(0), np.sqrt(counts))


def test_anchor_histogram_script_on_histograms(ads):
    """Same script on a histogram chunk (ISIS-like): Sum then true rebinning of 10 µs bins into 20 µs."""
    text = (
        "from mantid.simpleapi import Rebin, SumSpectra\n"
        "SumSpectra(InputWorkspace=input, OutputWorkspace=output)\n"
        'Rebin(InputWorkspace=output, OutputWorkspace=output, Params="300,20,17000")\n'
    )
    rng = np.random.default_rng(3)
    counts = rng.poisson(5.0, (1, 4, 2000)).astype(float)
    edges = np.arange(0.0, 20001.0, 10.0)
    spectra = Spectra.one_to_one(np.arange(1, 5))
    ws = workspace_from_chunk(Chunk(spectra, Run(), histograms=Histograms(edges, counts)))
    out = run_proc(text, ws)
    total = counts[0].sum(axis=0)  # sum over spectra
    expected = total[30:1700].reshape(-1, 2).sum(axis=1)  # bins 300..17000 pairwise
    np.testing.assert_array_equal(out.readY(0), expected)
    np.testing.assert_allclose(out.readE(0), np.sqrt(expected), rtol=1e-12)


def test_run_information_and_conditional_scripts(ads, caplog):
    """post_proc scripts; `print` goes to the daemon's log (logger livereduce.script), as in the daemon."""
    ws, _index, _tof = event_chunk()
    ns = run_post_proc(block("# Get run number\nrun = accumulation.getRun()") + KEEP_LOCALS, ws)
    assert (ns["run_number"], ns["ipts"], ns["start_time"]) == ("4321", "IPTS-12345", "2026-01-01T00:00:00Z")
    caplog.set_level(logging.INFO, logger="livereduce.script")
    run_post_proc(block("# Only process if enough counts"), ws)
    printed = [r.getMessage() for r in caplog.records if r.name == "livereduce.script"]
    assert ns["run"].getProperty("run_number").value == "4321"
    # 50 000 events < 10^6
    assert printed == ["[reduce_TEST_live_post_proc.py] Not enough counts yet, skipping analysis"]


def test_post_processing_template(ads, tmp_path):
    """The post-processing template; only its site directory is pointed at a temporary one."""
    from livereduce.algorithms.nexus import load

    ws, index, tof = event_chunk()
    ads.addOrReplace("accumulation", ws)
    text = block("# File: reduce_POWGEN_live_post_proc.py").replace(
        "/SNS/POWGEN/shared/livereduce", str(tmp_path)
    )
    assert run_post_proc(text, ws) == POST_OUT  # a post_proc script need not create the output
    assert not ads.doesExist("integrated")  # the script deleted its temporary workspace
    loaded = load(str(tmp_path / "POWGEN_4321_live.nxs"))
    assert loaded.getNumberEvents() == tof.size
    np.testing.assert_array_equal(loaded.events.x, ws.events.x)
    lines = (tmp_path / "POWGEN_4321_integrated.txt").read_text().splitlines()
    assert lines[0] == "# X , Y , E"
    ys = [float(lines[2 + 2 * s].split(",")[1]) for s in range(NSPEC)]  # one X,Y,E row per spectrum
    assert ys == np.bincount(index, minlength=NSPEC).tolist()


def test_file_output_post_processing(ads, tmp_path):
    ws, _index, tof = event_chunk()
    ads.addOrReplace("accumulation", ws)
    text = block("# Save NeXus file").replace("/SNS/INSTR/shared/livereduce", str(tmp_path))
    run_post_proc(text, ws)
    assert (tmp_path / "live_data.nxs").stat().st_size > 0
    rows = [
        r for r in (tmp_path / "live_data.txt").read_text().splitlines() if "," in r and not r.startswith("#")
    ]
    assert len(rows) == NSPEC * ws.blocksize()
    assert sum(float(r.split(",")[1]) for r in rows) == tof.size


def test_powgen_template_with_a_cal_file(ads, tmp_path):
    """The POWGEN template needs a site .cal file: give it one (2 groups) at a temporary path."""
    cal = tmp_path / "cal.cal"
    cal.write_text(
        "# number udet offset select group\n"
        + "".join(f"{i} {101 + i} 0.0 1 {1 if i < 4 else 2}\n" for i in range(NSPEC))
    )
    ws, index, tof = event_chunk()
    text = block("# File: reduce_POWGEN_live_proc.py").replace("/SNS/POWGEN/shared/cal_2024_01.cal", str(cal))
    out = run_proc(text, ws)
    assert out.getSpectrumNumbers() == [1, 2] and out.x_unit.unit_id == "dSpacing"
    theta = np.deg2rad(np.linspace(30, 150, NSPEC))[index] / 2
    d = H * tof * 1e-6 / (M_N * (L1 + L2[index])) * 1e10 / (2 * np.sin(theta))
    group = np.where(index < 4, 0, 1)
    edges = out.readX(0)
    for g in (0, 1):
        expected = np.histogram(d[group == g], bins=edges)[0]
        assert np.abs(out.readY(g) - expected).max() <= 1
        assert abs(out.readY(g).sum() - expected.sum()) <= 2


def test_troubleshooting_recipe_loads_and_runs_a_script(ads, tmp_path, monkeypatch):
    """The guide's recipe for running a proc script by hand: Load('test_data.nxs'), then exec the script file;
    as written for a Mantid installation, and its embedded-engine form (the same lines in
    script_imports())."""
    from livereduce.algorithms.nexus import save

    ws, _index, tof = event_chunk()
    save(ws, str(tmp_path / "test_data.nxs"))
    (tmp_path / "reduce_INSTR_live_proc.py").write_text(block("# Sum all spectra for quick visualization"))
    text = (
        "from mantid.simpleapi import *\ninput = Load('test_data.nxs')\noutput = 'test_output'\n"
        "exec(open('reduce_INSTR_live_proc.py').read())\n"
    )
    spec_text = GUIDE.read_text()
    assert text.replace("\n", "") in spec_text.replace("\n", "").replace('python3 -c "', "")
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    with script_imports(), warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # the recipe's own open(...).read()
        exec(compile(text, "recipe", "exec"), ns)
        gc.collect()
    assert ads["test_output"].getNumberEvents() == tof.size
    ads.remove("test_output")
    embedded = [
        b
        for b in re.findall(r'```bash\npython3 -c "\n(.*?)"\n```', spec_text, flags=re.DOTALL)
        if "from livereduce.mantidapi import script_imports" in b
    ]
    assert len(embedded) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        exec(compile(embedded[0], "recipe-embedded", "exec"), {})
        gc.collect()
    assert ads["test_output"].getNumberEvents() == tof.size
    no_mantid_modules_left()


def test_lead_runner_runs_scripts_in_function_scope(ads, tmp_path):
    """The same scripts through livereduce.scripts (function scope): names from assignments still work."""
    ws, _index, tof = event_chunk()
    ads.addOrReplace(OUT, ws)
    path = tmp_path / "reduce_TEST_live_proc.py"
    path.write_text(
        "from mantid.simpleapi import Rebin, SumSpectra\n"
        "summed = SumSpectra(InputWorkspace=input)\n"
        "Rebin(InputWorkspace=summed, OutputWorkspace=output, Params='300,20,17000')\n"
    )
    out = run_script(compile_script(path, "proc"), ws, OUT)
    assert out == OUT and ads.doesExist("summed")
    np.testing.assert_array_equal(ads[OUT].readY(0), np.histogram(tof, bins=300.0 + 20.0 * np.arange(836))[0])


def normalised(text: str) -> str:
    return " ".join(text.split())


def test_every_script_of_the_shared_spec_is_in_the_guide():
    """The user's document (../shared/spec/processing-scripts.md) and the guide carry the same scripts."""
    spec = shared_path(SHARED_SPEC)
    ours = {normalised(b) for b in guide_blocks()}
    missing = [b for b in python_blocks(spec.read_text()) if normalised(b) not in ours]
    assert python_blocks(spec.read_text()), f"no python blocks found in {spec}"
    assert not missing, f"{len(missing)} script(s) of {spec} not in {GUIDE}:\n" + "\n---\n".join(missing)


def test_every_script_of_the_guide_compiles_as_the_daemon_compiles_it():
    blocks = guide_blocks()
    assert len(blocks) >= 13  # the seed's 13 scripts at least
    for i, text in enumerate(blocks):
        compile_script(f"guide-block-{i}.py", "proc", text.encode())  # ScriptError (file, line) if not
