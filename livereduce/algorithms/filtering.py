"""FilterByTime and FilterByLogValue: keep the events whose pulse time lies in the wanted time intervals.

As Mantid documents: FilterByTime keeps pulse times in [start, stop) given in seconds since the run start or
as absolute ISO8601 times, filters the time-series logs to the same window and recomputes the integrated
proton charge from the proton_charge log. FilterByLogValue keeps the times where a log is within
[MinimumValue, MaximumValue] (LogBoundary Left: a value holds until the next entry; Centre: good entries
t_i..t_j keep [t_i - tol, t_j + tol]); the log is constant before its first and after its last entry;
PulseFilter instead cuts out [t - tol, t + tol] around every entry.
"""

from __future__ import annotations

import numpy as np

from livereduce.algorithms.registry import IN, OUT, Prop, algorithm
from livereduce.errors import AlgorithmError
from livereduce.workspace.dates import DateAndTime
from livereduce.workspace.events import EventWorkspace
from livereduce.workspace.run import Run, TimeSeries

_NS = 1_000_000_000
_PC_TO_UAH = 1e-12 / 3.6e-3  # picocoulomb → µA·h


def run_start_ns(ws) -> int:
    """The run's start (ns since 1970): run_start / start_time, else the first proton_charge entry, else the
    first pulse."""
    run = ws.getRun()
    for name in ("run_start", "start_time"):
        if run.hasProperty(name) and str(run[name].value).strip():
            return DateAndTime(str(run[name].value)).unix_ns
    pc = run["proton_charge"] if run.hasProperty("proton_charge") else None
    if isinstance(pc, TimeSeries) and pc.times.size:
        return int(pc.times[0])
    if len(ws.events):
        return int(ws.events.pulse_times[ws.events.used_pulses()].min())
    raise AlgorithmError("FilterByTime: the run has no start time (run_start) and no events")


def keep_intervals(ws: EventWorkspace, starts: np.ndarray, stops: np.ndarray) -> EventWorkspace:
    """The events whose pulse time t satisfies start_k <= t < stop_k for some interval k (sorted, disjoint)."""
    t = ws.events.pulse_times  # decided pulse by pulse, then spelled out per event
    k = np.searchsorted(starts, t, side="right") - 1
    inside = (k >= 0) & (t < stops[np.clip(k, 0, None)]) if starts.size else np.zeros(t.size, bool)
    inside = ws.events.pulse_values(inside)
    ws.edges  # noqa: B018  # the default binning, fixed from all events before filtering
    return ws.with_events(ws.events.take(inside), edges=ws.edges.copy())


def _merge(starts, stops):
    order = np.argsort(starts, kind="stable")
    s, e = list(starts[order]), list(stops[order])
    out_s, out_e = [], []
    for a, b in zip(s, e, strict=True):
        if out_s and a <= out_e[-1]:
            out_e[-1] = max(out_e[-1], b)
        else:
            out_s.append(a)
            out_e.append(b)
    return np.array(out_s, np.int64), np.array(out_e, np.int64)


def filter_logs(run: Run, start: int, stop: int) -> Run:
    """Time series cut to [start, stop) (the last value before start kept, moved to start); the integrated
    proton charge recomputed from the proton_charge log when there is one."""
    out = run.copy()
    for entry in out.getProperties():
        if not isinstance(entry, TimeSeries) or not entry.times.size:
            continue
        t, v = entry.times, entry.values
        inside = (t >= start) & (t < stop)
        before = np.flatnonzero(t < start)
        keep_t, keep_v = t[inside], v[inside]
        if before.size and entry.name != "proton_charge":  # a charge per pulse is not carried over
            keep_t = np.concatenate([[start], keep_t])
            keep_v = np.concatenate([v[before[-1:]], keep_v])
        out._entries[entry.name] = TimeSeries(entry.name, entry.unit, keep_t, keep_v)
    pc = out._entries.get("proton_charge")
    if isinstance(pc, TimeSeries) and pc.values.dtype.kind in "iuf":
        out.set("gd_prtn_chrg", float(np.sum(pc.values)) * _PC_TO_UAH, "uAh")
    return out


def _events(ws, alg: str) -> EventWorkspace:
    if not isinstance(ws, EventWorkspace):
        raise AlgorithmError(f"{alg}: InputWorkspace must be an EventWorkspace, not {ws.id()}")
    return ws


@algorithm(
    "FilterByTime",
    [
        Prop("InputWorkspace", kind=IN),
        Prop("OutputWorkspace", kind=OUT),
        Prop("StartTime", 0.0),
        Prop("StopTime", 0.0),
        Prop("AbsoluteStartTime", ""),
        Prop("AbsoluteStopTime", ""),
    ],
)
def _filter_by_time(
    InputWorkspace, OutputWorkspace, StartTime, StopTime, AbsoluteStartTime, AbsoluteStopTime
):
    """Keep events with pulse times in [StartTime, StopTime) seconds after the run start (StopTime 0: to the
    end), or between AbsoluteStartTime and AbsoluteStopTime (ISO8601)."""
    ws = _events(InputWorkspace, "FilterByTime")
    absolute = bool(str(AbsoluteStartTime).strip() or str(AbsoluteStopTime).strip())
    if absolute and (StartTime or StopTime):
        raise AlgorithmError(
            "FilterByTime: give StartTime/StopTime or AbsoluteStartTime/AbsoluteStopTime, not both"
        )
    big = np.iinfo(np.int64).max
    if absolute:
        start = DateAndTime(str(AbsoluteStartTime)).unix_ns if str(AbsoluteStartTime).strip() else -big
        stop = DateAndTime(str(AbsoluteStopTime)).unix_ns if str(AbsoluteStopTime).strip() else big
    else:
        zero = run_start_ns(ws)
        start = zero + round(float(StartTime) * _NS)
        stop = zero + round(float(StopTime) * _NS) if float(StopTime) > 0 else big
    if stop <= start:
        raise AlgorithmError("FilterByTime: the stop time must be after the start time")
    out = keep_intervals(ws, np.array([start], np.int64), np.array([stop], np.int64))
    out.run_info = filter_logs(ws.run_info, start, stop)
    return out


@algorithm(
    "FilterByLogValue",
    [
        Prop("InputWorkspace", kind=IN),
        Prop("OutputWorkspace", kind=OUT),
        Prop("LogName"),
        Prop("MinimumValue", None),
        Prop("MaximumValue", None),
        Prop("TimeTolerance", 0.0),
        Prop("LogBoundary", "Centre"),
        Prop("PulseFilter", False),
    ],
)
def _filter_by_log_value(
    InputWorkspace,
    OutputWorkspace,
    LogName,
    MinimumValue,
    MaximumValue,
    TimeTolerance,
    LogBoundary,
    PulseFilter,
):
    """Keep events whose pulse time falls where the log LogName is within [MinimumValue, MaximumValue]
    (unset: unbounded), or, with PulseFilter, cut out ±TimeTolerance around each log entry."""
    ws = _events(InputWorkspace, "FilterByLogValue")
    return filter_by_log(
        ws, LogName, MinimumValue, MaximumValue, TimeTolerance, LogBoundary, bool(PulseFilter)
    )


def filter_by_log(
    ws: EventWorkspace, name: str, minimum, maximum, tolerance, boundary: str, pulse_filter: bool
):
    run = ws.getRun()
    log = run[name] if run.hasProperty(name) else None
    if not isinstance(log, TimeSeries):
        raise AlgorithmError(f"FilterByLogValue: the run has no time-series log '{name}'")
    if boundary not in ("Centre", "Left"):
        raise AlgorithmError(f"FilterByLogValue: LogBoundary must be Centre or Left, not {boundary!r}")
    t = log.times.astype(np.int64)  # integer ns throughout: interval ends are exact
    tol = round(float(tolerance) * _NS)
    inf = np.iinfo(np.int64).max
    if pulse_filter:  # keep the complement of the notches
        cut_s, cut_e = _merge(t - tol, t + tol)
        starts = np.concatenate([[-inf], cut_e]).astype(np.int64)
        stops = np.concatenate([cut_s, [inf]]).astype(np.int64)
        return keep_intervals(ws, starts, stops)
    if t.size == 0:
        raise AlgorithmError(f"FilterByLogValue: log '{name}' has no entries")
    v = log.values.astype(np.float64)
    lo = -np.inf if minimum is None else float(minimum)
    hi = np.inf if maximum is None else float(maximum)
    good = (v >= lo) & (v <= hi)
    edges = np.diff(np.concatenate([[0], good.astype(np.int8), [0]]))
    first, last = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1  # runs of good entries
    if boundary == "Left":  # a value holds until the next entry
        starts = t[first]
        stops = np.where(last + 1 < t.size, t[np.minimum(last + 1, t.size - 1)], inf)
    else:  # t_i - tol to t_j + tol, both ends kept (with tolerance 0, a good pulse keeps its own events)
        starts, stops = t[first] - tol, t[last] + tol + 1
        stops = np.where(last == t.size - 1, inf, stops)
    starts = np.where(first == 0, -inf, starts)  # constant before the first entry
    return keep_intervals(ws, *_merge(starts.astype(np.int64), stops.astype(np.int64)))


@algorithm(
    "FilterBadPulses",
    [Prop("InputWorkspace", kind=IN), Prop("OutputWorkspace", kind=OUT), Prop("LowerCutoff", 95.0)],
)
def _filter_bad_pulses(InputWorkspace, OutputWorkspace, LowerCutoff):
    """Drop events of pulses whose proton charge is below LowerCutoff % of the mean (or above 1.1 × the
    largest), as FilterByLogValue on proton_charge."""
    ws = _events(InputWorkspace, "FilterBadPulses")
    cutoff = float(LowerCutoff)
    if not 0.0 <= cutoff <= 100.0:
        raise AlgorithmError(f"FilterBadPulses: LowerCutoff must be within 0..100, not {cutoff}")
    run = ws.getRun()
    if run.hasProperty("gd_prtn_chrg") and float(run["gd_prtn_chrg"].value) <= 0:
        raise AlgorithmError("FilterBadPulses: Found no integrated charge value in gd_prtn_chrg")
    if not run.hasProperty("proton_charge") or not isinstance(run["proton_charge"], TimeSeries):
        raise AlgorithmError('FilterBadPulses: Failed to find "proton_charge" in sample logs')
    charge = run["proton_charge"].values.astype(np.float64)
    if charge.size == 0 or charge.max() <= 0:
        raise AlgorithmError(
            "FilterBadPulses: Maximum value of charge is not greater than zero (proton_charge)"
        )
    low, high = charge.mean() * cutoff * 0.01, charge.max() * 1.1
    if low >= high:
        raise AlgorithmError("FilterBadPulses: proton_charge window filters out all of the data")
    return filter_by_log(ws, "proton_charge", low, high, 0.0, "Centre", False)
