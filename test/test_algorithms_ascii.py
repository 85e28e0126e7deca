"""LoadAscii: Mantid's documented file example, and the round trip with SaveAscii."""

from __future__ import annotations

import numpy as np
import pytest

from livereduce.algorithms import registry
from livereduce.errors import AlgorithmError
from livereduce.workspace.histogram import HistogramWorkspace
from livereduce.workspace.spectra import Spectra


def test_mantids_example_file(ads, tmp_path):
    """The docs' example: 4 spectra of 2 points; X 2 and 4 → edges 1, 3, 5."""
    path = tmp_path / "four.txt"
    path.write_text(
        "#. X , Y , E\n\n1\n2.00000000,2.00000000,1.00000000\n4.00000000,1.00000000,1.00000000\n"
        "2\n2.00000000,5.00000000,2.00000000\n4.00000000,4.00000000,2.00000000\n"
        "3\n2.00000000,3.00000000,1.00000000\n4.00000000,0.00000000,0.00000000\n"
        "4\n2.00000000,0.00000000,0.00000000\n4.00000000,0.00000000,0.00000000\n"
    )
    ws = registry.call("LoadAscii", str(path), OutputWorkspace="four")
    assert ws.getSpectrumNumbers() == [1, 2, 3, 4] and ws.x_unit.unit_id == "Energy"  # the default Unit
    np.testing.assert_array_equal(ws.values, [[2, 1], [5, 4], [3, 0], [0, 0]])
    np.testing.assert_array_equal(ws.extractE(), [[1, 1], [2, 2], [1, 0], [0, 0]])
    np.testing.assert_array_equal(ws.edges, [1.0, 3.0, 5.0])


def test_round_trip_with_save_ascii(ads, tmp_path):
    y = np.array([[1.5, 2.25, 3.0], [4.0, 0.0, 6.5]])
    ws = HistogramWorkspace(
        y,
        y * 0.5,
        np.array([10.0, 20.0, 30.0, 40.0]),
        Spectra.one_to_one([5, 6], numbers=[7, 9]),
        unit_id="TOF",
    )
    for sep in ("CSV", "Tab", "Space", "SemiColon"):
        path = str(tmp_path / f"rt_{sep}.txt")
        registry.call("SaveAscii", ws, Filename=path, Separator=sep, Precision=12)
        back = registry.call("LoadAscii", path, Unit="TOF", OutputWorkspace="back")
        assert back.getSpectrumNumbers() == [7, 9]
        np.testing.assert_array_equal(back.values, y)
        np.testing.assert_allclose(back.extractE(), np.sqrt(y * 0.5), rtol=1e-11)
        np.testing.assert_allclose(back.edges, ws.edges)  # uniform bins: the edges come back


def test_two_columns_blank_line_spectra_and_errors(ads, tmp_path):
    path = tmp_path / "two.dat"
    path.write_text("header to skip\n1 10\n2 20\n\n1 30\n2 40\n")
    ws = registry.call("LoadAscii", str(path), SkipNumLines=1, Unit="Wavelength", OutputWorkspace="t")
    np.testing.assert_array_equal(ws.values, [[10, 20], [30, 40]])
    assert not ws.extractE().any() and ws.x_unit.unit_id == "Wavelength"
    one = tmp_path / "one.dat"
    one.write_text("5,1,1\n")
    assert registry.call("LoadAscii", str(one), OutputWorkspace="o").edges.tolist() == [4.5, 5.5]
    bad = tmp_path / "bad.dat"
    bad.write_text("1,2,3\n1,2\n")
    with pytest.raises(AlgorithmError, match="same number"):
        registry.call("LoadAscii", str(bad), OutputWorkspace="x")
    with pytest.raises(AlgorithmError, match="does not exist"):
        registry.call("LoadAscii", str(tmp_path / "none"), OutputWorkspace="x")


def test_load_dispatches_text_files(ads, tmp_path):
    path = tmp_path / "plain.txt"
    path.write_text("# X , Y , E\n1\n1.0,2.0,0.5\n")
    ws = registry.call("Load", str(path), OutputWorkspace="p")
    assert ws.values.tolist() == [[2.0]] and ws.x_unit.unit_id == "Energy"
