"""Mantid's geometry read API over a workspace's Spectra: V3D, getInstrument(), getDetector(i),
spectrumInfo() and detectorInfo().

Mantid's frame: the beam along +z, y up, x horizontal, the sample at the origin, the source at (0, 0, -L1).
A spectrum's position is its L2, 2θ and azimuth φ in that frame: L2·(sin2θ cosφ, sin2θ sinφ, cos2θ). When the
instrument's full geometry is known (Spectra.geometry), detectors have their own positions and a spectrum's
is the mean of its detectors' (as Mantid's DetectorGroup), the source and sample are the file's, and
getNumberParameter / getStringParameter read the definition's <parameter>s (an empty list when absent).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from livereduce.workspace.spectra import Spectra


class V3D:
    """Mantid's 3-vector: X(), Y(), Z(), distance, norm, angle, arithmetic, indexing."""

    def __init__(self, x: float = 0.0, y: float = 0.0, z: float = 0.0):
        self._v = np.array([x, y, z], dtype=float)

    @classmethod
    def of(cls, v) -> V3D:
        return cls(*np.asarray(v, dtype=float)[:3])

    def X(self) -> float:
        return float(self._v[0])

    def Y(self) -> float:
        return float(self._v[1])

    def Z(self) -> float:
        return float(self._v[2])

    def norm(self) -> float:
        return float(np.linalg.norm(self._v))

    def norm2(self) -> float:
        return float(self._v @ self._v)

    def distance(self, other: V3D) -> float:
        return float(np.linalg.norm(self._v - np.asarray(other)))

    def scalar_prod(self, other: V3D) -> float:
        return float(self._v @ np.asarray(other))

    def cross_prod(self, other: V3D) -> V3D:
        return V3D.of(np.cross(self._v, np.asarray(other)))

    def angle(self, other: V3D) -> float:
        """The angle to `other`, in radians."""
        other_v = np.asarray(other)
        cos = self._v @ other_v / (np.linalg.norm(self._v) * np.linalg.norm(other_v))
        return float(math.acos(max(-1.0, min(1.0, cos))))

    def __array__(self, dtype=None, copy=None):
        return self._v.astype(dtype) if dtype is not None else self._v.copy()

    def __getitem__(self, i: int) -> float:
        return float(self._v[i])

    def __len__(self) -> int:
        return 3

    def __sub__(self, other) -> V3D:
        return V3D.of(self._v - np.asarray(other))

    def __add__(self, other) -> V3D:
        return V3D.of(self._v + np.asarray(other))

    def __mul__(self, k: float) -> V3D:
        return V3D.of(self._v * k)

    def __eq__(self, other) -> bool:
        return isinstance(other, V3D) and bool(np.allclose(self._v, other._v))

    def __repr__(self) -> str:
        return f"[{self.X():g},{self.Y():g},{self.Z():g}]"


def _from_angles(l2, two_theta, phi) -> np.ndarray:
    s = np.sin(two_theta)
    return np.stack([l2 * s * np.cos(phi), l2 * s * np.sin(phi), l2 * np.cos(two_theta)], axis=-1)


class Geometry:
    """Positions of a workspace's spectra and detectors, computed once per view."""

    def __init__(self, spectra: Spectra):
        self.s = spectra
        self.g = spectra.geometry

    @property
    def sample(self) -> np.ndarray:
        return np.asarray(self.g.sample, float) if self.g is not None else np.zeros(3)

    @property
    def source(self) -> np.ndarray:
        if self.g is not None and np.all(np.isfinite(self.g.source)):
            return np.asarray(self.g.source, float)
        if not math.isfinite(self.s.l1):
            raise RuntimeError(f"instrument '{self.s.instrument}' has no source: its L1 is unknown")
        return np.array([0.0, 0.0, -self.s.l1])

    def owners(self, ids) -> np.ndarray:
        """The workspace index holding each detector id (ValueError naming an id no spectrum holds)."""
        s = self.s
        owner = np.repeat(np.arange(len(s)), np.diff(s.det_offsets))
        order = np.argsort(s.det_ids, kind="stable")
        want = np.asarray(ids, dtype=np.int64).ravel()
        pos = np.searchsorted(s.det_ids[order], want)
        ok = pos < order.size
        ok[ok] = s.det_ids[order][pos[ok]] == want[ok]
        if not ok.all():
            raise ValueError(f"no detector with id {int(want[~ok][0])} in the workspace's spectra")
        return owner[order[pos]]

    def spectrum_of(self, detector_id: int) -> int:
        return int(self.owners([detector_id])[0])

    def detector_positions(self, ids) -> np.ndarray:
        """(k, 3) absolute positions of these detector ids."""
        if self.g is not None:
            try:
                return np.asarray(self.g.positions)[self.g.index_of(ids)] + self.sample
            except KeyError:
                pass
        return self.spectrum_positions()[self.owners(ids)]

    def spectrum_positions(self) -> np.ndarray:
        """(n, 3) absolute position of each spectrum: its detectors' mean when they are known, else its
        L2, 2θ, φ."""
        s = self.s
        pos = _from_angles(s.l2, s.two_theta, s.azimuthal) + self.sample
        counts = np.diff(s.det_offsets)
        if self.g is not None and s.det_ids.size:
            try:
                where = np.asarray(self.g.positions)[self.g.index_of(s.det_ids)]
            except KeyError:
                return pos
            has = counts > 0
            sums = np.add.reduceat(where, s.det_offsets[:-1][has], axis=0)
            pos[has] = sums / counts[has, None] + self.sample
        return pos


class Component:
    """A named point of the instrument (source, sample, a detector or a group of them)."""

    def __init__(self, name: str, pos, ids=(), masked: bool = False):
        self._name, self._pos, self._ids, self._masked = name, V3D.of(pos), [int(i) for i in ids], masked

    def getName(self) -> str:
        return self._name

    def getPos(self) -> V3D:
        return self._pos

    def getDistance(self, other: Component) -> float:
        return self._pos.distance(other.getPos())

    def getID(self) -> int:
        return self._ids[0] if self._ids else -1

    def getDetectorIDs(self) -> list[int]:
        return list(self._ids)

    def isMasked(self) -> bool:
        return self._masked

    def isMonitor(self) -> bool:
        return False

    def getTwoTheta(self, observer: V3D, axis: V3D) -> float:
        """The angle at `observer` (the sample) between `axis` (the beam direction) and this detector."""
        return (self._pos - observer).angle(axis)

    def getPhi(self) -> float:
        """The azimuth about the beam (z), from +x towards +y."""
        return math.atan2(self._pos.Y(), self._pos.X())


class Instrument(Component):
    """`ws.getInstrument()`: name, source, sample, detectors by id, and the definition's parameters."""

    def __init__(self, spectra: Spectra):
        super().__init__(spectra.instrument, (0.0, 0.0, 0.0))
        self._geo = Geometry(spectra)

    def getL1(self) -> float:
        return self._geo.s.l1

    def getSource(self) -> Component:
        return Component("source", self._geo.source)

    def getSample(self) -> Component:
        return Component("sample-position", self._geo.sample)

    def getDetector(self, detector_id: int) -> Component:
        i = self._geo.spectrum_of(int(detector_id))
        pos = self._geo.detector_positions([int(detector_id)])[0]
        return Component("", pos, [detector_id], bool(self._geo.s.is_masked()[i]))

    def getNumberDetectors(self, skipMonitors: bool = False) -> int:
        g = self._geo.g
        return int(g.det_ids.size) if g is not None else int(self._geo.s.det_ids.size)

    def _parameter(self, kind: str, name: str) -> list[Any]:
        g = self._geo.g
        return [] if g is None else list(getattr(g, f"{kind}_parameter")(name))

    def getNumberParameter(self, name: str, recursive: bool = True) -> list[float]:
        return self._parameter("number", name)

    def getStringParameter(self, name: str, recursive: bool = True) -> list[str]:
        return self._parameter("string", name)

    def getIntParameter(self, name: str, recursive: bool = True) -> list[int]:
        return [int(v) for v in self.getNumberParameter(name) if float(v).is_integer()]

    def getBoolParameter(self, name: str, recursive: bool = True) -> list[bool]:
        g = self._geo.g
        v = None if g is None else g.parameter(name)
        return [v] if isinstance(v, bool) else []

    def hasParameter(self, name: str, recursive: bool = True) -> bool:
        g = self._geo.g
        return g is not None and g.parameter(name) is not None


class SpectrumInfo:
    """`ws.spectrumInfo()`: per workspace index position, L2, 2θ, masking; L1, source and sample."""

    def __init__(self, spectra: Spectra):
        self._geo = Geometry(spectra)
        self._pos = self._geo.spectrum_positions()

    def size(self) -> int:
        return len(self._geo.s)

    def __len__(self) -> int:
        return self.size()

    def position(self, i: int) -> V3D:
        return V3D.of(self._pos[i])

    def l1(self) -> float:
        return float(np.linalg.norm(self._geo.sample - self._geo.source))

    def l2(self, i: int) -> float:
        return float(np.linalg.norm(self._pos[i] - self._geo.sample))

    def twoTheta(self, i: int) -> float:
        beam = self._geo.sample - self._geo.source if math.isfinite(self._geo.s.l1) else np.array([0, 0, 1.0])
        return V3D.of(self._pos[i] - self._geo.sample).angle(V3D.of(beam))

    def azimuthal(self, i: int) -> float:
        rel = self._pos[i] - self._geo.sample
        return math.atan2(rel[1], rel[0])

    def isMasked(self, i: int) -> bool:
        return bool(self._geo.s.is_masked()[i])

    def isMonitor(self, i: int) -> bool:
        return False

    def hasDetectors(self, i: int) -> bool:
        return self._geo.s.detector_ids(i).size > 0

    def hasUniqueDetector(self, i: int) -> bool:
        return self._geo.s.detector_ids(i).size == 1

    def sourcePosition(self) -> V3D:
        return V3D.of(self._geo.source)

    def samplePosition(self) -> V3D:
        return V3D.of(self._geo.sample)


class DetectorInfo(SpectrumInfo):
    """`ws.detectorInfo()`: the same questions per detector index (detectors in increasing id order)."""

    def __init__(self, spectra: Spectra):
        geo = Geometry(spectra)
        ids = np.asarray(geo.g.det_ids if geo.g is not None else np.unique(spectra.det_ids), dtype=np.int64)
        self._geo, self._ids = geo, ids
        self._pos = geo.detector_positions(ids)
        held = np.isin(ids, spectra.det_ids)  # detectors no spectrum holds are not masked by a spectrum
        self._masked = np.zeros(ids.size, bool)
        self._masked[held] = spectra.is_masked()[geo.owners(ids[held])]

    def size(self) -> int:
        return int(self._ids.size)

    def indexOf(self, detector_id: int) -> int:
        hits = np.flatnonzero(self._ids == detector_id)
        if not hits.size:
            raise IndexError(f"no detector with id {detector_id}")
        return int(hits[0])

    def detectorIDs(self) -> np.ndarray:
        return self._ids.copy()

    def isMasked(self, i: int) -> bool:
        return bool(self._masked[i])

    def hasDetectors(self, i: int) -> bool:
        return True

    def hasUniqueDetector(self, i: int) -> bool:
        return True
