"""RebinToWorkspace, ConvertTo/FromDistribution, ExtractSingleSpectrum, DeleteWorkspaces, SortEvents."""

from __future__ import annotations

import numpy as np
import pytest

from livereduce.algorithms import registry
from livereduce.errors import AlgorithmError
from livereduce.workspace.events import EventColumns, EventWorkspace
from livereduce.workspace.histogram import HistogramWorkspace
from livereduce.workspace.spectra import Spectra


def h(y, edges):
    y = np.asarray(y, float)
    return HistogramWorkspace(
        y, y.copy(), np.asarray(edges, float), Spectra.one_to_one(np.arange(1, y.shape[0] + 1))
    )


def test_rebin_to_workspace(ads):
    ws = h([[4.0, 8.0]], [0.0, 2.0, 4.0])
    match = h([[0.0, 0.0, 0.0]], [0.0, 1.0, 3.0, 4.0])
    out = registry.call("RebinToWorkspace", ws, match, OutputWorkspace="r")
    # [0,1): half of bin 0 → 2; [1,3): half of 4 + half of 8 → 6; [3,4): half of 8 → 4 (variances alike)
    np.testing.assert_allclose(out.values, [[2.0, 6.0, 4.0]])
    np.testing.assert_allclose(out.variances, [[2.0, 6.0, 4.0]])
    ev = EventWorkspace(
        Spectra.one_to_one([1]), EventColumns(np.zeros(3, np.uint32), [0.5, 1.5, 3.5]), [0.0, 4.0]
    )
    kept = registry.call("RebinToWorkspace", ev, match, OutputWorkspace="e")
    assert isinstance(kept, EventWorkspace) and kept.readY(0).tolist() == [1.0, 1.0, 1.0]
    hist = registry.call("RebinToWorkspace", ev, match, PreserveEvents=False, OutputWorkspace="h")
    assert isinstance(hist, HistogramWorkspace) and hist.values.tolist() == [[1.0, 1.0, 1.0]]


def test_distribution_round_trip(ads):
    ws = h([[4.0, 8.0]], [0.0, 2.0, 6.0])
    registry.call("ConvertToDistribution", ws)
    assert ws.isDistribution() and ws.values.tolist() == [[2.0, 2.0]]  # divided by the widths 2 and 4
    np.testing.assert_allclose(ws.extractE(), [[1.0, np.sqrt(8.0) / 4]])
    with pytest.raises(AlgorithmError, match="already is"):
        registry.call("ConvertToDistribution", ws)
    registry.call("ConvertFromDistribution", ws)
    assert not ws.isDistribution() and ws.values.tolist() == [[4.0, 8.0]]


def test_extract_single_delete_many_sort(ads):
    ws = h([[1.0], [2.0], [3.0]], [0.0, 1.0])
    one = registry.call("ExtractSingleSpectrum", ws, WorkspaceIndex=2, OutputWorkspace="one")
    assert (
        one.getNumberHistograms() == 1 and one.readY(0).tolist() == [3.0] and one.getSpectrumNumbers() == [3]
    )
    with pytest.raises(AlgorithmError, match="outside"):
        registry.call("ExtractSingleSpectrum", ws, WorkspaceIndex=3, OutputWorkspace="x")
    ads.addOrReplace("a", h([[1.0]], [0.0, 1.0]))
    ads.addOrReplace("b", h([[1.0]], [0.0, 1.0]))
    registry.call("DeleteWorkspaces", "a, b")
    assert not ads.doesExist("a") and not ads.doesExist("b")
    registry.call("SortEvents", EventWorkspace(Spectra.one_to_one([1]), EventColumns.empty(), [0.0, 1.0]))
