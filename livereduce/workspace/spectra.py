"""Spectra of a workspace: spectrum numbers, the detectors behind each, and the geometry unit conversion needs.

Detector ids are stored flat with offsets (CSR), so 10^5 spectra cost a few arrays, not 10^5 Python objects.
Geometry is per spectrum: L2 (m), 2θ and azimuth (rad); L1 (m) is one number per instrument. Unknown
geometry is NaN, and algorithms that need it say so. Optional: `geometry`, the instrument's full description
when known (livereduce.instrument's InstrumentGeometry: per-detector positions, source, sample, <parameter>s;
read by duck typing, as this package imports nothing above itself), and `masked`, a per-spectrum mask flag
(MaskDetectors; None when nothing is masked).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(eq=False)
class Spectra:
    numbers: np.ndarray  # int32 [n] spectrum numbers
    det_ids: np.ndarray  # int32 [m] detector ids of all spectra, flat
    det_offsets: np.ndarray  # int64 [n+1] spectrum i owns det_ids[off[i]:off[i+1]]
    l2: np.ndarray  # float64 [n], m
    two_theta: np.ndarray  # float64 [n], rad
    azimuthal: np.ndarray  # float64 [n], rad
    l1: float = float("nan")  # m, source to sample
    instrument: str = ""
    extra: dict = field(default_factory=dict)  # listener-specific facts (e.g. IDF XML)
    geometry: Any = None  # InstrumentGeometry when the instrument definition is known
    masked: np.ndarray | None = None  # bool [n]: spectrum i's detectors are masked

    def is_masked(self) -> np.ndarray:
        """bool [n]: which spectra are masked."""
        return np.zeros(len(self), bool) if self.masked is None else self.masked

    @classmethod
    def one_to_one(
        cls,
        detector_ids,
        *,
        numbers=None,
        l1=float("nan"),
        l2=None,
        two_theta=None,
        azimuthal=None,
        instrument: str = "",
    ) -> Spectra:
        """One spectrum per detector (SNS event data): spectrum i holds detector_ids[i]."""
        det = np.asarray(detector_ids, dtype=np.int32)
        n = det.size
        nan = np.full(n, np.nan)
        return cls(
            numbers=np.arange(1, n + 1, dtype=np.int32) if numbers is None else np.asarray(numbers, np.int32),
            det_ids=det.copy(),
            det_offsets=np.arange(n + 1, dtype=np.int64),
            l2=nan.copy() if l2 is None else np.broadcast_to(np.asarray(l2, float), (n,)).copy(),
            two_theta=nan.copy()
            if two_theta is None
            else np.broadcast_to(np.asarray(two_theta, float), (n,)).copy(),
            azimuthal=np.zeros(n)
            if azimuthal is None
            else np.broadcast_to(np.asarray(azimuthal, float), (n,)).copy(),
            l1=float(l1),
            instrument=instrument,
        )

    def __len__(self) -> int:
        return int(self.numbers.size)

    def detector_ids(self, index: int) -> np.ndarray:
        return self.det_ids[self.det_offsets[index] : self.det_offsets[index + 1]]

    def take(self, indices) -> Spectra:
        """The spectra at the given workspace indices, in that order."""
        idx = np.asarray(indices, dtype=np.int64)
        starts, stops = self.det_offsets[idx], self.det_offsets[idx + 1]
        counts = stops - starts
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        # gather every selected spectrum's detector ids at once: position k of spectrum j → starts[j] + k
        within = np.arange(offsets[-1], dtype=np.int64) - np.repeat(offsets[:-1], counts)
        det = self.det_ids[np.repeat(starts, counts) + within]
        return Spectra(
            self.numbers[idx].copy(),
            det.astype(np.int32),
            offsets,
            self.l2[idx].copy(),
            self.two_theta[idx].copy(),
            self.azimuthal[idx].copy(),
            self.l1,
            self.instrument,
            dict(self.extra),
            self.geometry,
            None if self.masked is None else self.masked[idx].copy(),
        )

    def concat(self, other: Spectra) -> Spectra:
        """These spectra followed by `other`'s (Append accumulation; Mantid AppendSpectra)."""
        return Spectra(
            np.concatenate([self.numbers, other.numbers]),
            np.concatenate([self.det_ids, other.det_ids]),
            np.concatenate([self.det_offsets, other.det_offsets[1:] + self.det_offsets[-1]]),
            np.concatenate([self.l2, other.l2]),
            np.concatenate([self.two_theta, other.two_theta]),
            np.concatenate([self.azimuthal, other.azimuthal]),
            self.l1,
            self.instrument,
            dict(self.extra),
            self.geometry,
            None
            if self.masked is None and other.masked is None
            else np.concatenate([self.is_masked(), other.is_masked()]),
        )

    def copy(self) -> Spectra:
        return Spectra(
            self.numbers.copy(),
            self.det_ids.copy(),
            self.det_offsets.copy(),
            self.l2.copy(),
            self.two_theta.copy(),
            self.azimuthal.copy(),
            self.l1,
            self.instrument,
            dict(self.extra),
            self.geometry,
            None if self.masked is None else self.masked.copy(),
        )

    def has_geometry(self) -> bool:
        return bool(
            np.isfinite(self.l1) and np.all(np.isfinite(self.l2)) and np.all(np.isfinite(self.two_theta))
        )

    def same_layout(self, other: Spectra) -> bool:
        return (
            len(self) == len(other)
            and np.array_equal(self.numbers, other.numbers)
            and np.array_equal(self.det_ids, other.det_ids)
        )
