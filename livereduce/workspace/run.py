"""Run metadata: single-valued properties and time-series logs, with Mantid's `Run` API.

Times are int64 nanoseconds since the Unix epoch throughout livereduce (listeners convert from their wire
epochs, e.g. ADARA's EPICS epoch 1990-01-01).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from livereduce.workspace.dates import DateAndTime

EPICS_EPOCH_OFFSET_S = 631_152_000  # seconds from 1970-01-01 to 1990-01-01 (EPICS / ADARA / Mantid epoch)


def iso_from_ns(ns: int) -> str:
    """ISO8601 UTC text for a time in ns since the Unix epoch (second resolution, 'Z' suffix)."""
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _room(buffer: np.ndarray, used: int, need: int, dtype=None) -> np.ndarray:
    """`buffer` if it holds `need` rows of `dtype`, else a copy of its first `used` rows in one at least twice
    as large: appends then cost amortised O(rows appended), never O(rows held)."""
    dtype = buffer.dtype if dtype is None else np.dtype(dtype)
    if need <= buffer.size and dtype == buffer.dtype:
        return buffer
    new = np.empty(max(need, 2 * buffer.size, 16), dtype)
    new[:used] = buffer[:used]
    return new


class RunTime(str, DateAndTime):
    """Run.startTime()/endTime(): Mantid's DateAndTime (totalNanoseconds, arithmetic, ordering) that stays
    its ISO8601 text for code that keeps it as a string (equality, JSON); "" when the run has none."""

    def __new__(cls, text: str) -> RunTime:
        return str.__new__(cls, text)

    def __init__(self, text: str):
        self.unix_ns = 0
        if text:
            try:
                DateAndTime.__init__(self, text)
            except ValueError:  # not ISO8601: still the text, but no time to compute with
                pass

    __str__ = str.__str__
    __hash__ = str.__hash__

    def __eq__(self, other) -> bool:
        if isinstance(other, DateAndTime) and not isinstance(other, str):
            return bool(self) and self.unix_ns == other.unix_ns
        return str.__eq__(self, other)

    def __ne__(self, other) -> bool:
        return not self == other

    __add__ = DateAndTime.__add__
    __lt__, __le__ = DateAndTime.__lt__, DateAndTime.__le__
    __gt__, __ge__ = DateAndTime.__gt__, DateAndTime.__ge__


class TimeSeries:
    """A log: values at times (ns since Unix epoch). Appending is amortised O(1): both columns live in buffers
    whose capacity doubles, and `times` / `values` are views of their filled part, so a reader's view keeps
    its length and contents while later appends go past its end. For the same reason a copy is O(1): it
    borrows the buffers (nothing in them up to its length ever changes) and takes its own at its first append,
    so algorithms that copy a workspace's run each call do not pay for the run's length."""

    def __init__(self, name: str, unit: str = "", times=None, values=None):
        self.name, self.unit = name, unit
        self._times = np.empty(0, np.int64) if times is None else np.atleast_1d(np.asarray(times, np.int64))
        self._values = np.empty(0) if values is None else np.atleast_1d(np.asarray(values))
        self._n = self._times.size
        self._borrowed = False  # the buffers are another log's too: take own ones before appending

    @property
    def times(self) -> np.ndarray:
        return self._times[: self._n]

    @property
    def values(self) -> np.ndarray:
        return self._values[: self._n]

    def __reduce__(self):
        """Pickled (worker pipe, checkpoints) as its entries only, not the buffers' spare or borrowed room."""
        return (TimeSeries, (self.name, self.unit, self.times, self.values))

    def __repr__(self) -> str:
        return f"TimeSeries({self.name!r}, {self.unit!r}, {self.times!r}, {self.values!r})"

    def append(self, time_ns: int | np.ndarray, value) -> None:
        t = np.atleast_1d(np.asarray(time_ns, dtype=np.int64))
        v = np.atleast_1d(np.asarray(value))
        if t.size != v.size:  # one time for many values or the reverse: the single one applies to all
            t, v = np.broadcast_arrays(t, v)
        n, m = self._n, t.size
        if self._borrowed:
            self._times, self._values, self._borrowed = self._times[:n].copy(), self._values[:n].copy(), False
        # the first values set the dtype; later ones promote as concatenate would (a longer string widens
        # the dtype instead of being truncated), at the cost of one copy when that happens
        dtype = v.dtype if n == 0 else np.concatenate([self._values[:0], v[:0]]).dtype
        self._times = _room(self._times, n, n + m)
        self._values = _room(self._values, n, n + m, dtype)
        self._times[n : n + m] = t
        self._values[n : n + m] = v
        self._n = n + m

    def extend(self, other: TimeSeries) -> None:
        if other.times.size:
            self.append(other.times, other.values)

    def last_only(self) -> TimeSeries:
        """A copy holding only the most recent value: what a new chunk inherits (Mantid carries it over)."""
        return TimeSeries(self.name, self.unit, self.times[-1:].copy(), self.values[-1:].copy())

    def copy(self) -> TimeSeries:
        out = TimeSeries(self.name, self.unit)
        out._times, out._values, out._n, out._borrowed = self._times, self._values, self._n, True
        return out

    # Mantid TimeSeriesProperty API used by scripts
    @property
    def value(self):
        return self.values

    def firstValue(self):
        return self.values[0].item()

    def lastValue(self):
        return self.values[-1].item()

    def timeAverageValue(self) -> float:
        return float(np.mean(self.values)) if self.values.size else float("nan")

    def size(self) -> int:
        return int(self.values.size)

    def units(self) -> str:
        return self.unit


@dataclass
class Property:
    """A single-valued property (run_number, run_title, ...), with Mantid's `.value` accessor."""

    name: str
    value: Any
    unit: str = ""
    additive: bool = False  # a count over its chunk (e.g. monitor1_counts): Add accumulation sums it

    def units(self) -> str:
        return self.unit

    def copy(self) -> Property:
        return Property(self.name, self.value, self.unit, self.additive)


class Run:
    """Properties and logs of a workspace (Mantid's `Run`, as returned by `ws.getRun()`)."""

    def __init__(self, entries: Iterable[Property | TimeSeries] = ()):
        self._entries: dict[str, Any] = {e.name: e for e in entries}  # Property | TimeSeries

    # -- building -------------------------------------------------------------------------------
    def set(self, name: str, value, unit: str = "", *, additive: bool = False) -> None:
        self._entries[name] = Property(name, value, unit, additive)

    def series(self, name: str, unit: str = "") -> TimeSeries:
        """The time series called `name`, created empty if absent."""
        entry = self._entries.get(name)
        if not isinstance(entry, TimeSeries):
            entry = TimeSeries(name, unit)
            self._entries[name] = entry
        return entry

    def remove(self, name: str) -> None:
        self._entries.pop(name, None)

    def copy(self) -> Run:
        return Run(e.copy() for e in self._entries.values())

    def merge(self, newer: Run) -> None:
        """Fold a later chunk's metadata in: properties are replaced, additive ones (counts over a chunk) summed,
        time series extended."""
        for name, entry in newer._entries.items():
            mine = self._entries.get(name)
            if (
                isinstance(entry, Property)
                and entry.additive
                and isinstance(mine, Property)
                and mine.additive
            ):
                mine.value = mine.value + entry.value
            elif isinstance(entry, TimeSeries) and isinstance(mine, TimeSeries):
                new_times = entry.times > (mine.times[-1] if mine.times.size else np.iinfo(np.int64).min)
                if new_times.any():
                    mine.append(entry.times[new_times], entry.values[new_times])
            else:
                self._entries[name] = entry.copy()

    def carry_over(self) -> Run:
        """What the next chunk starts from: properties kept, each series reduced to its last value."""
        return Run(
            e.last_only() if isinstance(e, TimeSeries) and e.times.size else e.copy()
            for e in self._entries.values()
        )

    # -- Mantid API -----------------------------------------------------------------------------
    def hasProperty(self, name: str) -> bool:
        return name in self._entries

    def getProperty(self, name: str) -> Property | TimeSeries:
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(f"Run has no property '{name}'; it has: {sorted(self._entries)}") from None

    __getitem__ = getProperty
    __contains__ = hasProperty

    def keys(self) -> list[str]:
        return list(self._entries)

    def getProperties(self) -> list[Property | TimeSeries]:
        return list(self._entries.values())

    def addProperty(self, name: str, value, replace: bool = True) -> None:
        if replace or name not in self._entries:
            self.set(name, value)

    def getProtonCharge(self) -> float:
        """Integrated proton charge in µA·h: the `gd_prtn_chrg` property, else the `proton_charge` log summed
        (as integrateProtonCharge, without storing it: the log still grows), else 0."""
        if "gd_prtn_chrg" in self._entries:
            return float(self._entries["gd_prtn_chrg"].value)
        total = self._charge("proton_charge")
        return 0.0 if total is None else total

    def integrateProtonCharge(self, logname: str = "proton_charge") -> None:
        """Mantid's: sum the log (pC → µA·h when its unit is picoCoulomb) into `gd_prtn_chrg` (uA.hour)."""
        total = self._charge(logname)
        if total is not None:
            self.set("gd_prtn_chrg", total, "uA.hour")

    def _charge(self, logname: str) -> float | None:
        log = self._entries.get(logname)
        if not isinstance(log, TimeSeries):
            return None
        total = float(np.sum(log.values))
        # Mantid converts picoCoulomb and keeps uAh; a log without a unit is taken as picoCoulomb here
        # (the unit SNS proton_charge logs carry)
        return total * 1e-6 / 3600 if "picoCoulomb" in log.unit or not log.unit else total

    def getRunNumber(self) -> int:
        entry = self._entries.get("run_number")
        try:
            return int(entry.value) if entry is not None else 0
        except (TypeError, ValueError):
            return 0

    def startTime(self) -> RunTime:
        """The run's start (`start_time`, else `run_start`): a DateAndTime that is also its ISO8601 text;
        "" when neither is set (Mantid raises instead)."""
        return self._time("start_time", "run_start")

    def endTime(self) -> RunTime:
        """The run's end (`end_time`, else `run_end`), as startTime."""
        return self._time("end_time", "run_end")

    def _time(self, *names: str) -> RunTime:
        for name in names:
            entry = self._entries.get(name)
            if entry is not None and str(getattr(entry, "value", "")).strip():
                return RunTime(str(entry.value).strip())
        return RunTime("")
