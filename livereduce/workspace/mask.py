"""MaskWorkspace: Mantid's per-detector mask as a workspace (one spectrum per detector, one bin, Y = 1 masked).

It is a Workspace2D (HistogramWorkspace) as in Mantid, so `isinstance(mask, Workspace2D)` holds too.
"""

from __future__ import annotations

import numpy as np

from livereduce.workspace.histogram import HistogramWorkspace
from livereduce.workspace.spectra import Spectra


class MaskWorkspace(HistogramWorkspace):
    @classmethod
    def from_detectors(cls, detector_ids, masked, *, instrument: str = "") -> MaskWorkspace:
        """One spectrum per detector id; `masked` (bools, same length) says which are masked."""
        y = np.asarray(masked, dtype=float).reshape(-1, 1)
        spectra = Spectra.one_to_one(detector_ids, instrument=instrument)
        return cls(y, np.zeros_like(y), np.array([0.0, 1.0]), spectra, unit_id="Empty")

    def id(self) -> str:
        return "MaskWorkspace"

    def isMasked(self, detector_id) -> bool:
        """Whether detector `detector_id` (or every one of a list of ids) is masked."""
        ids = np.atleast_1d(np.asarray(detector_id))
        hits = np.isin(self.spectra.det_ids, ids)
        owner = np.repeat(np.arange(len(self.spectra)), np.diff(self.spectra.det_offsets))
        found = set(self.spectra.det_ids[hits].tolist())
        if found != set(ids.tolist()):
            raise ValueError(f"detector(s) {sorted(set(ids.tolist()) - found)} not in mask '{self.name()}'")
        return bool(np.all(self.values[owner[hits], 0] != 0))

    def getNumberMasked(self) -> int:
        return int(np.count_nonzero(self.values[:, 0]))

    def clone(self) -> MaskWorkspace:
        out = MaskWorkspace(self.values.copy(), self.variances.copy(), self.edges.copy(), self.spectra.copy())
        out.run_info = self.run_info.copy()
        return out
