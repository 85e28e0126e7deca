"""STAND-IN for `mantid.simpleapi` (livereduce's tests only; not Mantid): one function per algorithm the
stand-in has, called with keyword properties as Mantid's simple API is. StartLiveData sets Instrument,
Connection and Listener first, as Mantid's does, so that the listener's own properties exist when the others
are set."""

from __future__ import annotations

from mantid._livedata import run_algorithm
from mantid.api import AlgorithmManager, AnalysisDataService, mtd


def StartLiveData(**kwargs):
    return run_algorithm("StartLiveData", kwargs, first=("Instrument", "Connection", "Listener"))


def CloneWorkspace(**kwargs):
    return run_algorithm("CloneWorkspace", kwargs)


def CompressEvents(**kwargs):
    return run_algorithm("CompressEvents", kwargs)


__all__ = [
    "AlgorithmManager",
    "AnalysisDataService",
    "CloneWorkspace",
    "CompressEvents",
    "StartLiveData",
    "mtd",
]
