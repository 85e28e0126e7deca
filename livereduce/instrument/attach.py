"""An instrument definition given in the config (`instrument_definition`), for listeners whose stream sends no
geometry (ISIS, Kafka, the fake listeners): each chunk's spectra get the file's L1 and each detector's L2, 2θ
and φ, and the full definition as `Spectra.geometry` (getInstrument(), spectrumInfo(), parameters).

A listener that already gives geometry (ADARA with a real IDF in its GEOMETRY packet) keeps its own: the
stream describes the instrument as it is now; the file is a fallback.
"""

from __future__ import annotations

import logging

import numpy as np

from livereduce.instrument.load import read_idf
from livereduce.instrument.model import InstrumentGeometry
from livereduce.workspace.spectra import Spectra

log = logging.getLogger(__name__)


def attach_geometry(spectra: Spectra, g: InstrumentGeometry) -> Spectra:
    """`spectra` (changed in place and returned) with the geometry of `g` where it had none.

    A spectrum's L2, 2θ and φ are its first detector's (one detector per spectrum is the SNS and ISIS event
    case; grouped ISIS spectra take their first detector's, as a script would see in Mantid only after
    grouping). Detector ids the definition lacks keep NaN, so ConvertUnits names them."""
    if spectra.geometry is not None:
        return spectra
    spectra.geometry = g
    if not np.isfinite(spectra.l1):
        spectra.l1 = g.l1
    if not spectra.instrument:
        spectra.instrument = g.name
    counts = np.diff(spectra.det_offsets)
    has = np.flatnonzero(counts > 0)
    if not has.size:
        return spectra
    first = spectra.det_ids[spectra.det_offsets[has]].astype(np.int64)
    pos = np.searchsorted(g.det_ids, first)
    pos = np.minimum(pos, max(g.det_ids.size - 1, 0))
    known = (g.det_ids[pos] == first) if g.det_ids.size else np.zeros(first.size, bool)
    rows, at = has[known], pos[known]
    unset = ~np.isfinite(spectra.l2[rows]) | ~np.isfinite(
        spectra.two_theta[rows]
    )  # what the listener knew stays
    rows, at = rows[unset], at[unset]
    spectra.l2[rows], spectra.two_theta[rows], spectra.azimuthal[rows] = (
        g.l2[at],
        g.two_theta[at],
        g.azimuthal[at],
    )
    return spectra


class WithInstrument:
    """A listener whose chunks (and monitor chunks) carry the geometry of an IDF file. Everything else is the
    wrapped listener's."""

    def __init__(self, listener, idf_path: str):
        self._listener = listener
        self.geometry = read_idf(idf_path)  # read once at start: a bad path fails the daemon's start, loudly
        log.info(
            "instrument definition %s: %s, L1 %.3f m, %d pixels",
            idf_path,
            self.geometry.name,
            self.geometry.l1,
            self.geometry.n_pixels,
        )

    def extract(self):
        chunk = self._listener.extract()
        attach_geometry(chunk.spectra, self.geometry)
        if chunk.monitors is not None:  # monitor ids are not detector ids: only L1 and the definition
            attach_geometry(chunk.monitors.spectra, self.geometry)
        return chunk

    def __getattr__(self, name):
        return getattr(self._listener, name)


def with_instrument(listener, idf_path: str | None):
    """`listener` itself without a path, else wrapped so that its chunks carry the file's geometry."""
    return listener if not idf_path else WithInstrument(listener, idf_path)
