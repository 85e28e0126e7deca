"""What histogram and event workspaces share: spectra, run, x unit, monitors, and Mantid's read API."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from livereduce.workspace.dates import DateAndTime
from livereduce.workspace.instrument_view import Component, DetectorInfo, Instrument, SpectrumInfo
from livereduce.workspace.run import Run
from livereduce.workspace.spectra import Spectra


@dataclass(frozen=True)
class XUnit:
    unit_id: str  # Mantid's unit ID
    dim: str  # scipp dimension name
    scipp_unit: str  # scipp unit string
    caption: str


UNITS = {
    u.unit_id: u
    for u in (
        XUnit("TOF", "tof", "us", "Time-of-flight"),
        XUnit("Wavelength", "wavelength", "angstrom", "Wavelength"),
        XUnit("dSpacing", "dspacing", "angstrom", "d-Spacing"),
        XUnit("Energy", "energy", "meV", "Energy"),
        XUnit("MomentumTransfer", "Q", "1/angstrom", "q"),
        XUnit("Empty", "x", "dimensionless", ""),
    )
}


def x_unit(unit_id: str) -> XUnit:
    try:
        return UNITS[unit_id]
    except KeyError:
        raise ValueError(f"unknown unit '{unit_id}'; known: {', '.join(UNITS)}") from None


class _Unit:
    def __init__(self, u: XUnit):
        self._u = u

    def unitID(self) -> str:
        return self._u.unit_id

    def caption(self) -> str:
        return self._u.caption

    def symbol(self) -> str:
        return self._u.scipp_unit


class _Axis:
    def __init__(self, ws: MatrixWorkspace, i: int):
        self._ws, self._i = ws, i

    def getUnit(self) -> _Unit:
        if self._i == 0:
            return _Unit(self._ws.x_unit)
        return _Unit(XUnit("Label", "spectrum", "dimensionless", "Spectrum"))

    def isSpectra(self) -> bool:
        return self._i == 1

    def getValue(self, index: int):
        return float(self._ws.readX(0)[index]) if self._i == 0 else int(self._ws.spectra.numbers[index])

    def length(self) -> int:
        return self._ws.blocksize() + 1 if self._i == 0 else self._ws.getNumberHistograms()


class SpectrumView:
    """`ws.getSpectrum(i)`: one spectrum's number, detectors and (for events) its events."""

    def __init__(self, ws: MatrixWorkspace, index: int):
        self._ws, self._i = ws, index

    def getSpectrumNo(self) -> int:
        return int(self._ws.spectra.numbers[self._i])

    def getDetectorIDs(self) -> list[int]:
        return [int(d) for d in self._ws.spectra.detector_ids(self._i)]

    def getNumberEvents(self) -> int:
        return self._ws._spectrum_events(self._i)[0].size

    def getTofs(self) -> np.ndarray:
        return self._ws._spectrum_events(self._i)[0]

    def getPulseTimes(self) -> np.ndarray:
        return self._ws._spectrum_events(self._i)[1]

    def getWeights(self) -> np.ndarray:
        return self._ws._spectrum_events(self._i)[2]


# `ws1 + ws2` runs Mantid's Plus/Minus/Multiply/Divide, which live in livereduce.algorithms, above this
# package: livereduce.algorithms.arithmetic installs its binary_op(op, lhs, rhs) here when imported.
ARITHMETIC: Callable[[str, Any, Any], Any] | None = None


class MatrixWorkspace:
    """Base of HistogramWorkspace and EventWorkspace: spectra × x-bins with a Run."""

    def __init__(self, spectra: Spectra, run: Run | None, unit_id: str, monitors: MatrixWorkspace | None):
        self.spectra = spectra
        self.run_info = run if run is not None else Run()
        self.x_unit = x_unit(unit_id)
        self.monitors = monitors
        self._name = ""
        self.events_outside_bins = 0  # events histogrammed into this workspace that fell outside its bins
        self.y_unit = "Counts"  # Mantid's YUnit of raw data (LoadEventNexus and the live listeners set it)
        self.y_unit_label = ""
        self.comment = ""

    # -- identity ---------------------------------------------------------------------------
    def name(self) -> str:
        return self._name

    def getName(self) -> str:
        return self._name

    def __str__(self) -> str:
        """The workspace's name, as in Mantid: scripts write mtd[str(ws)] and OutputWorkspace=str(ws)."""
        return self._name

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}('{self._name}', spectra={self.getNumberHistograms()}, "
            f"bins={self.blocksize()}, unit={self.x_unit.unit_id})"
        )

    # -- run / geometry ---------------------------------------------------------------------
    def getRun(self) -> Run:
        return self.run_info

    def run(self) -> Run:
        return self.run_info

    def getRunNumber(self) -> int:
        return self.run_info.getRunNumber()

    def getNumberHistograms(self) -> int:
        return len(self.spectra)

    def getSpectrum(self, index: int) -> SpectrumView:
        self._check_index(index)
        return SpectrumView(self, index)

    def getSpectrumNumbers(self) -> list[int]:
        return [int(s) for s in self.spectra.numbers]

    def getIndexFromSpectrumNumber(self, number: int) -> int:
        hits = np.flatnonzero(self.spectra.numbers == number)
        if not hits.size:
            raise ValueError(f"spectrum number {number} not in workspace '{self._name}'")
        return int(hits[0])

    def getAxis(self, i: int) -> _Axis:
        return _Axis(self, i)

    def getMonitorWorkspace(self) -> MatrixWorkspace:
        if self.monitors is None:
            raise RuntimeError(f"workspace '{self._name}' has no monitor workspace")
        return self.monitors

    def getInstrument(self) -> Instrument:
        return Instrument(self.spectra)

    def getDetector(self, index: int) -> Component:
        """The detector(s) of the spectrum at workspace index `index` (a group's position is their mean)."""
        self._check_index(index)
        info = SpectrumInfo(self.spectra)
        ids = self.spectra.detector_ids(index)
        return Component("", info.position(index), ids, info.isMasked(index))

    def spectrumInfo(self) -> SpectrumInfo:
        return SpectrumInfo(self.spectra)

    def detectorInfo(self) -> DetectorInfo:
        return DetectorInfo(self.spectra)

    def getTitle(self) -> str:
        return str(self.run_info["run_title"].value) if self.run_info.hasProperty("run_title") else ""

    def setTitle(self, title: str) -> None:
        """As Mantid: the title is also the run's `run_title` property."""
        self.run_info.set("run_title", str(title))

    def getComment(self) -> str:
        return self.comment

    def setComment(self, comment: str) -> None:
        self.comment = str(comment)

    def YUnit(self) -> str:
        return self.y_unit

    def setYUnit(self, unit: str) -> None:
        self.y_unit = str(unit)

    def YUnitLabel(self, useLatex: bool = False, plotAsDistribution: bool = False) -> str:
        """The label set by setYUnitLabel, else the YUnit (Mantid's default label)."""
        return self.y_unit_label or self.y_unit

    def setYUnitLabel(self, label: str) -> None:
        self.y_unit_label = str(label)

    def isHistogramData(self) -> bool:
        return True

    def hasMaskedBins(self, index: int) -> bool:
        """Bins masked by MaskBins: the embedded engine has no bin masking, so never."""
        self._check_index(index)
        return False

    def hasDx(self, index: int) -> bool:
        return False

    def readDx(self, index: int) -> np.ndarray:
        """X errors: none are kept, so zeros, one per point (bin) as Mantid's Dx."""
        self._check_index(index)
        return np.zeros(self.blocksize())

    def getPulseTimeMin(self) -> DateAndTime:
        """The earliest pulse time of any event (Mantid: DateAndTime's maximum when there are none)."""
        times = self._pulse_times()
        return DateAndTime.from_unix_ns(int(times.min())) if times.size else DateAndTime.maximum()

    def getPulseTimeMax(self) -> DateAndTime:
        """The latest pulse time of any event (Mantid: DateAndTime's minimum when there are none)."""
        times = self._pulse_times()
        return DateAndTime.from_unix_ns(int(times.max())) if times.size else DateAndTime.minimum()

    def _pulse_times(self) -> np.ndarray:
        events = getattr(self, "events", None)
        if events is None:
            raise RuntimeError(
                f"'{self._name}' is a histogram workspace: it has no events, so no pulse times"
            )
        return events.pulse_times[events.used_pulses()]  # from the runs: no per-event pulse column

    def _check_index(self, index: int) -> None:
        if not 0 <= index < self.getNumberHistograms():
            raise IndexError(
                f"workspace index {index} out of range 0..{self.getNumberHistograms() - 1} in '{self._name}'"
            )

    # -- arithmetic: scripts write ws1 + ws2, ws * 2.0 --------------------------------------------
    def _arith(self, op: str, other, reverse: bool = False):
        if ARITHMETIC is None:
            raise TypeError(
                "workspace arithmetic needs livereduce.algorithms (Plus, Minus, Multiply, Divide)"
            )
        return ARITHMETIC(op, other, self) if reverse else ARITHMETIC(op, self, other)

    def __add__(self, o):
        return self._arith("Plus", o)

    def __radd__(self, o):
        return self._arith("Plus", o, True)

    def __sub__(self, o):
        return self._arith("Minus", o)

    def __rsub__(self, o):
        return self._arith("Minus", o, True)

    def __mul__(self, o):
        return self._arith("Multiply", o)

    def __rmul__(self, o):
        return self._arith("Multiply", o, True)

    def __truediv__(self, o):
        return self._arith("Divide", o)

    def __rtruediv__(self, o):
        return self._arith("Divide", o, True)

    # -- subclass hooks ---------------------------------------------------------------------
    def blocksize(self) -> int:
        raise NotImplementedError

    def readX(self, i: int) -> np.ndarray:
        raise NotImplementedError

    def _spectrum_events(self, i: int):
        raise RuntimeError(f"'{self._name}' is a histogram workspace: it holds no events")

    def clone(self) -> MatrixWorkspace:
        raise NotImplementedError

    def nbytes(self) -> int:
        raise NotImplementedError
