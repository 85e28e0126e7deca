"""`livereduce check` in process: gaps reported with file:line, and a dry run on the instrument's real detectors."""

from __future__ import annotations

import io
import json

from daemon_helpers import fake_event_config

from livereduce.check import run_check

IDF = (
    '<?xml version="1.0"?><instrument xmlns="http://www.mantidproject.org/IDF/1.0" name="FAKE">'
    '<component type="src"><location z="-10"/></component><type name="src" is="Source"/>'
    '<component type="smp"><location/></component><type name="smp" is="SamplePos"/>'
    '<component type="p" idstart="1000"><location z="2"/></component><type name="p" is="RectangularDetector" '
    'type="pixel" xpixels="10" xstart="-0.05" xstep="0.01" ypixels="12" ystart="-0.06" ystep="0.01"/>'
    '<type name="pixel" is="detector"/></instrument>'
)


def setup(tmp_path, proc: str, idf: bool = True) -> str:
    config = fake_event_config(tmp_path)
    scripts = tmp_path / "scripts"
    (scripts / "reduce_FAKE_live_proc.py").write_text(proc)
    if idf:
        (scripts / "FAKE_Definition_2020-01-01.xml").write_text(IDF)
    path = tmp_path / "livereduce.conf"
    path.write_text(json.dumps(config))
    return str(path)


def check(path: str) -> tuple[int, str]:
    out = io.StringIO()
    return run_check(path, out), out.getvalue()


def test_dry_run_uses_the_instruments_detector_count(tmp_path):
    proc = (
        "assert input.getNumberHistograms() == 120, input.getNumberHistograms()\n"  # 10 × 12 pixels
        "assert input.getSpectrum(0).getDetectorIDs() == [1000]\n"
        "assert abs(input.spectrumInfo().l2(0) - 2.0) < 0.01\n"
        "output = input\n"
    )
    code, text = check(setup(tmp_path, proc))
    assert code == 0, text
    assert "events over the 120 detectors of" in text and "FAKE_Definition_2020-01-01.xml" in text


def test_without_a_definition_the_dry_run_has_16_spectra(tmp_path):
    code, text = check(setup(tmp_path, "assert input.getNumberHistograms() == 16\n", idf=False))
    assert code == 0, text
    assert "events over 16 synthetic spectra" in text


def test_gaps_are_reported_with_file_and_line_only_where_code_runs(tmp_path):
    proc = (
        "from mantid.kernel import V3D\n"  # 1
        "def unused():\n"  # 2
        "    FitPeaks(input)\n"  # 3: never called: not reported
        "def used(ws):\n"  # 4
        "    return FindPeaks(ws)\n"  # 5
        "output = input\n"  # 6
        "if False:\n"  # 7
        "    used(input)\n"  # 8
    )
    code, text = check(setup(tmp_path, proc))
    assert code == 1
    errors = [ln for ln in text.splitlines() if ln.startswith("ERROR") and "not provided" in ln]
    assert [e.split(": ", 2)[0] + ": " + e.split(": ", 2)[1].split(" ")[0] for e in errors] == [
        f"ERROR {tmp_path}/scripts/reduce_FAKE_live_proc.py:1: mantid.kernel.V3D",
        f"ERROR {tmp_path}/scripts/reduce_FAKE_live_proc.py:5: FindPeaks",
    ]
