"""LoadEventNexus and LoadNexusMonitors: SNS event NeXus files (NXevent_data banks, DASlogs, NXmonitor), h5py.

Layout facts (the NeXus NXevent_data / NXsnsevent definitions, Mantid's documentation): the NXentry is `entry`
(or `raw_data_1`, else the first NXentry, or NXentryName); each NXevent_data group `<bank>_events` holds
event_id (detector ids), event_time_offset (TOF, µs), event_time_zero (pulse times: float seconds, or uint64
ns, after its @offset ISO8601 time) and event_index (first event of each pulse). The instrument's definition
is embedded as instrument/instrument_xml/data; a bank's pixel ids may be listed in instrument/<bank>/pixel_id.
DASlogs holds NXlogs (time in seconds after @start or @offset, value @units). Monitors are NXmonitor groups
`monitor<k>`: a histogram (data over time_of_flight edges) or events like a bank.

As Mantid: one spectrum per pixel of the instrument (its definition when embedded; else the banks' pixel ids,
else the ids that have events), spectrum numbers from 1 in detector-id order, events from pixels outside it
dropped; the default binning is one bin over all events; events recorded while the `pause` log is non-zero
are filtered out; FilterByTime* count seconds from the run's start_time.
"""

from __future__ import annotations

import os

import h5py
import numpy as np

from livereduce.algorithms.filtering import keep_intervals
from livereduce.algorithms.processed_nexus import text
from livereduce.algorithms.registry import OUT, Prop, algorithm
from livereduce.errors import AlgorithmError
from livereduce.workspace.ads import mtd
from livereduce.workspace.dates import DateAndTime
from livereduce.workspace.events import EventColumns, EventWorkspace
from livereduce.workspace.histogram import HistogramWorkspace
from livereduce.workspace.run import Run, TimeSeries
from livereduce.workspace.spectra import Spectra

_NS = 1_000_000_000


def _nx_class(node) -> str:
    return text(node.attrs.get("NX_class", ""))


def _entry(f: h5py.File, name: str):
    if name:
        if name not in f:
            raise AlgorithmError(f"no NXentry '{name}' in the file; it has {sorted(f)}")
        return f[name]
    for candidate in ("entry", "raw_data_1"):
        if candidate in f and _nx_class(f[candidate]) == "NXentry":
            return f[candidate]
    entries = [k for k in f if _nx_class(f[k]) == "NXentry"]
    if not entries:
        raise AlgorithmError("the file holds no NXentry: not a NeXus event file")
    return f[entries[0]]


def _iso_ns(iso: str) -> int:
    return DateAndTime(iso).unix_ns


def _pulse_times_ns(zero) -> np.ndarray:
    """event_time_zero as ns since 1970: float seconds (or uint64 ns) after its @offset."""
    offset = _iso_ns(text(zero.attrs.get("offset", "1990-01-01T00:00:00")))
    raw = zero[()]
    units = text(zero.attrs.get("units", "second"))
    if raw.dtype.kind in "iu" and units in ("ns", "nanosecond", "nanoseconds"):
        return offset + raw.astype(np.int64)
    return offset + np.round(raw.astype(np.float64) * _NS).astype(np.int64)


def _tof_us(offsets) -> np.ndarray:
    tof = offsets[()].astype(np.float64)
    units = text(offsets.attrs.get("units", "microsecond"))
    return tof / 1000.0 if units in ("ns", "nanosecond", "nanoseconds") else tof


def _events_of(group) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids, tof µs, pulse time ns) of an NXevent_data-like group."""
    ids = group["event_id"][()].astype(np.int64) if "event_id" in group else None
    tof = _tof_us(group["event_time_offset"])
    pulses = _pulse_times_ns(group["event_time_zero"])
    index = group["event_index"][()].astype(np.int64)
    counts = np.diff(np.concatenate([index, [tof.size]]))
    pulse_of_event = np.repeat(pulses, np.clip(counts, 0, None))[: tof.size]
    if ids is None:
        ids = np.zeros(tof.size, np.int64)
    return ids, tof, pulse_of_event


def _banks(entry) -> dict[str, h5py.Group]:
    """NXevent_data groups by bank name (`bank1_events` → `bank1`)."""
    out = {}
    for key, node in entry.items():
        if isinstance(node, h5py.Group) and _nx_class(node) == "NXevent_data":
            out[key[: -len("_events")] if key.endswith("_events") else key] = node
    return dict(sorted(out.items(), key=lambda kv: _natural(kv[0])))


def _natural(name: str):
    digits = "".join(c for c in name if c.isdigit())
    return (name.rstrip("0123456789"), int(digits) if digits else -1, name)


def _pixels(entry, banks: dict, use_xml: bool, only: list[str]):
    """(sorted detector ids, geometry or None): the embedded IDF's, else the banks' pixel_id lists, else the ids
    with events."""
    inst = entry.get("instrument")
    if (
        not only
        and use_xml
        and inst is not None
        and "instrument_xml" in inst
        and "data" in inst["instrument_xml"]
    ):
        from livereduce.instrument import parse_idf

        try:
            g = parse_idf(text(inst["instrument_xml/data"]))
            if g.n_pixels:
                return np.asarray(g.det_ids, np.int64), g
        except ValueError:
            pass  # an IDF the reader refuses: the ids below, without geometry
    names = only or list(banks)
    listed = [
        inst[b]["pixel_id"][()].ravel()
        for b in names
        if inst is not None and b in inst and "pixel_id" in inst[b]
    ]
    if listed:
        return np.unique(np.concatenate(listed).astype(np.int64)), None
    seen = [banks[b]["event_id"][()] for b in names if b in banks and "event_id" in banks[b]]
    return (np.unique(np.concatenate(seen).astype(np.int64)) if seen else np.empty(0, np.int64)), None


def _logs(entry, run: Run) -> None:
    das = entry.get("DASlogs")
    if das is None:
        return
    for key, lg in das.items():
        if not isinstance(lg, h5py.Group) or "value" not in lg or "time" not in lg:
            continue
        t = lg["time"]
        start = text(t.attrs.get("start", t.attrs.get("offset", "1990-01-01T00:00:00")))
        times = _iso_ns(start) + np.round(t[()].astype(np.float64) * _NS).astype(np.int64)
        v = lg["value"]
        values = v[()]
        if values.dtype.kind in "SO":
            values = np.array(
                [x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x) for x in values]
            )
        n = min(times.size, len(values))
        run.series(key, text(v.attrs.get("units", ""))).append(times[:n], values[:n])


def _run_info(entry, filename: str, load_logs: bool) -> Run:
    run = Run()
    for field, prop in (
        ("run_number", "run_number"),
        ("title", "run_title"),
        ("start_time", "run_start"),
        ("end_time", "run_end"),
        ("experiment_identifier", "experiment_identifier"),
    ):
        if field in entry:
            run.set(prop, text(entry[field]).strip())
    if "start_time" in entry:
        run.set("start_time", text(entry["start_time"]).strip())
    if "end_time" in entry:
        run.set("end_time", text(entry["end_time"]).strip())
    if "duration" in entry:
        run.set("duration", float(np.ravel(entry["duration"][()])[0]), "second")
    if load_logs:
        _logs(entry, run)
    run.integrateProtonCharge()  # gd_prtn_chrg from the proton_charge log, when there is one
    run.set("Filename", filename)
    return run


def _run_start_ns(run: Run, pulses: np.ndarray) -> int:
    start = run.startTime()
    if start and start.unix_ns:
        return start.unix_ns
    return int(pulses.min()) if pulses.size else 0


def _filter(ws: EventWorkspace, run: Run, tmin, tmax, start, stop) -> EventWorkspace:
    ev = ws.events
    keep = np.ones(len(ev), bool)
    if tmin is not None:
        keep &= ev.x >= float(tmin)
    if tmax is not None:
        keep &= ev.x <= float(tmax)
    if not keep.all():
        ws = ws.with_events(ev.take(keep))
    if start is not None or stop is not None:
        zero = _run_start_ns(run, ws.events.pulse_times)
        lo = zero + round(float(start) * _NS) if start is not None else np.iinfo(np.int64).min
        hi = zero + round(float(stop) * _NS) if stop is not None else np.iinfo(np.int64).max
        ws = keep_intervals(ws, np.array([lo]), np.array([hi]))
    return ws


def _without_pauses(ws: EventWorkspace, run: Run) -> EventWorkspace:
    """Mantid drops events recorded while the run was paused (`pause` log non-zero) when the log changes."""
    if not run.hasProperty("pause") or not isinstance(run["pause"], TimeSeries) or run["pause"].size() <= 1:
        return ws
    log = run["pause"]
    t, paused = log.times, log.values.astype(float) != 0
    big = np.iinfo(np.int64).max
    starts = np.where(np.arange(t.size) == 0, -big, t)[~paused]  # a value holds from its time to the next
    stops = np.append(t[1:], big)[~paused]
    return keep_intervals(ws, starts.astype(np.int64), stops.astype(np.int64))


def load_event_nexus(
    filename: str,
    entry_name: str,
    banks_wanted: list[str],
    single_bank_pixels: bool,
    *,
    tof=(None, None),
    times=(None, None),
    load_logs=True,
    use_xml=True,
    metadata_only=False,
):
    if not os.path.isfile(filename):
        raise AlgorithmError(f"file '{filename}' does not exist")
    try:
        f = h5py.File(filename, "r")
    except OSError as exc:
        raise AlgorithmError(f"'{filename}' is not an HDF5/NeXus file ({exc})") from None
    with f:
        entry = _entry(f, entry_name)
        banks = _banks(entry)
        unknown = [b for b in banks_wanted if b not in banks]
        if unknown:
            raise AlgorithmError(
                f"no bank {unknown[0]!r} in the file; it has {', '.join(banks) or 'no event banks'}"
            )
        chosen = banks_wanted or list(banks)
        run = _run_info(entry, filename, load_logs)
        ids, geometry = _pixels(entry, banks, use_xml, banks_wanted if single_bank_pixels else [])
        parts = [] if metadata_only else [_events_of(banks[b]) for b in chosen]
        instrument = text(entry["instrument/name"]).strip() if "instrument/name" in entry else ""
    if geometry is not None:
        spectra = Spectra.one_to_one(
            ids,
            l1=geometry.l1,
            l2=geometry.l2,
            two_theta=geometry.two_theta,
            azimuthal=geometry.azimuthal,
            instrument=geometry.name or instrument,
        )
        spectra.geometry = geometry
    else:
        spectra = Spectra.one_to_one(ids, instrument=instrument)
    det = np.concatenate([p[0] for p in parts]) if parts else np.empty(0, np.int64)
    tof_all = np.concatenate([p[1] for p in parts]) if parts else np.empty(0)
    pulse_ns = np.concatenate([p[2] for p in parts]) if parts else np.empty(0, np.int64)
    pos = np.searchsorted(ids, det)
    known = (
        (pos < ids.size) & (ids[np.minimum(pos, ids.size - 1)] == det)
        if ids.size
        else np.zeros(det.size, bool)
    )
    table, pulse = np.unique(pulse_ns[known], return_inverse=True)
    events = EventColumns(
        pos[known].astype(np.uint32),
        tof_all[known],
        pulse.astype(np.uint32),
        table if table.size else np.zeros(1, np.int64),
    )
    ws = EventWorkspace(spectra, events, None, run, "TOF")
    ws = _without_pauses(ws, run)
    return _filter(ws, run, tof[0], tof[1], times[0], times[1])


def bin_events(ws: EventWorkspace, nbins: int = 500) -> EventWorkspace:
    """LoadEventNexus' NumberOfBins: linear bins from the shortest to the longest TOF (one bin without
    events)."""
    if nbins < 1:
        raise AlgorithmError("LoadEventNexus: NumberOfBins must be at least 1")
    if ws.getNumberEvents():
        lo, hi = ws.getTofMin(), ws.getTofMax()
        top = float(np.nextafter(hi, np.inf)) if hi > lo else lo + 1.0  # the longest TOF is counted
        ws.edges = np.linspace(lo, top, nbins + 1)
    return ws


def load_monitors(filename: str, entry_name: str, load_only: str = "", tof=(None, None), times=(None, None)):
    """The NXmonitor groups as one workspace: histograms (data over time_of_flight) or, when the monitors
    hold events (or LoadOnly is Events), an event workspace; detector ids -k for monitor<k>."""
    if not os.path.isfile(filename):
        raise AlgorithmError(f"file '{filename}' does not exist")
    with h5py.File(filename, "r") as f:
        entry = _entry(f, entry_name)
        mons = sorted(
            ((k, g) for k, g in entry.items() if isinstance(g, h5py.Group) and _nx_class(g) == "NXmonitor"),
            key=lambda kv: _natural(kv[0]),
        )
        if not mons:
            raise AlgorithmError("the file holds no NXmonitor groups")
        numbers = [int("".join(c for c in k if c.isdigit()) or i + 1) for i, (k, _) in enumerate(mons)]
        has_events = all("event_time_offset" in g for _, g in mons)
        has_hist = all("data" in g for _, g in mons)
        # LoadOnly "" loads what is there, the histograms when both are
        events = load_only == "Events" or (load_only == "" and has_events and not has_hist)
        if events and not has_events:
            raise AlgorithmError("LoadOnly='Events' but the monitors hold no events")
        if not events and not has_hist:
            raise AlgorithmError("the monitors hold no histogram data")
        spectra = Spectra.one_to_one([-n for n in numbers], numbers=np.arange(1, len(mons) + 1))
        run = _run_info(entry, filename, load_logs=False)
        if events:
            parts = [_events_of(g) for _, g in mons]
        else:
            y = np.vstack([np.asarray(g["data"][()], float).reshape(-1) for _, g in mons])
            edges = [np.asarray(g["time_of_flight"][()], float).reshape(-1) for _, g in mons]
    if not events:
        e = np.vstack(edges)
        if e.shape[1] == y.shape[1]:  # points: edges around them
            from livereduce.algorithms.ascii import points_to_edges

            e = np.vstack([points_to_edges(row) for row in e])
        e = e[0] if np.all(e == e[0]) else e
        return HistogramWorkspace(y, y.copy(), e, spectra, run, "TOF")
    index = np.concatenate([np.full(p[1].size, k, np.uint32) for k, p in enumerate(parts)])
    pulse_ns = np.concatenate([p[2] for p in parts])
    table, pulse = np.unique(pulse_ns, return_inverse=True)
    ev = EventColumns(
        index,
        np.concatenate([p[1] for p in parts]),
        pulse.astype(np.uint32),
        table if table.size else np.zeros(1, np.int64),
    )
    return _filter(EventWorkspace(spectra, ev, None, run, "TOF"), run, tof[0], tof[1], times[0], times[1])


def _names(v) -> list[str]:
    if v is None:
        return []
    items = v.split(",") if isinstance(v, str) else list(v)
    return [str(i).strip() for i in items if str(i).strip()]


@algorithm(
    "LoadEventNexus",
    [
        Prop("Filename"),
        Prop("OutputWorkspace", kind=OUT),
        Prop("NXentryName", ""),
        Prop("FilterByTofMin", None),
        Prop("FilterByTofMax", None),
        Prop("FilterByTimeStart", None),
        Prop("FilterByTimeStop", None),
        Prop("BankName", None),
        Prop("SingleBankPixelsOnly", True),
        Prop("Precount", True),
        Prop("CompressTolerance", -1.0),
        Prop("ChunkNumber", None),
        Prop("TotalChunks", None),
        Prop("LoadMonitors", False),
        Prop("MonitorsLoadOnly", ""),
        Prop("FilterMonByTofMin", None),
        Prop("FilterMonByTofMax", None),
        Prop("FilterMonByTimeStart", None),
        Prop("FilterMonByTimeStop", None),
        Prop("SpectrumMin", None),
        Prop("SpectrumMax", None),
        Prop("SpectrumList", None),
        Prop("MetaDataOnly", False),
        Prop("LoadLogs", True),
        Prop("LoadType", "Default"),
        Prop("LoadNexusInstrumentXML", True),
        Prop("NumberOfBins", 500),
    ],
    per_member=False,
)
def _load_event_nexus(
    Filename, OutputWorkspace, NXentryName, FilterByTofMin, FilterByTofMax, FilterByTimeStart, FilterByTimeStop,
    BankName, SingleBankPixelsOnly, Precount, CompressTolerance, ChunkNumber, TotalChunks, LoadMonitors,
    MonitorsLoadOnly, FilterMonByTofMin, FilterMonByTofMax, FilterMonByTimeStart, FilterMonByTimeStop,
    SpectrumMin, SpectrumMax, SpectrumList, MetaDataOnly, LoadLogs, LoadType, LoadNexusInstrumentXML, NumberOfBins,
):  # fmt: skip
    """An SNS event NeXus file as an EventWorkspace: every bank (or BankName's), filtered by TOF (µs) and by
    time (s after the run start); LoadMonitors attaches the monitors (also stored as <name>_monitors)."""
    if ChunkNumber is not None or TotalChunks is not None:
        raise AlgorithmError(
            "LoadEventNexus: ChunkNumber/TotalChunks are not supported by the embedded engine"
        )
    if SpectrumMin is not None or SpectrumMax is not None or SpectrumList:
        raise AlgorithmError(
            "LoadEventNexus: SpectrumMin/Max/List are not supported; use ExtractSpectra after"
        )
    ws = load_event_nexus(
        str(Filename), str(NXentryName or ""), _names(BankName), bool(SingleBankPixelsOnly),
        tof=(FilterByTofMin, FilterByTofMax), times=(FilterByTimeStart, FilterByTimeStop),
        load_logs=bool(LoadLogs), use_xml=bool(LoadNexusInstrumentXML), metadata_only=bool(MetaDataOnly),
    )  # fmt: skip
    bin_events(ws, int(NumberOfBins))
    if CompressTolerance is not None and float(CompressTolerance) >= 0:
        from livereduce.algorithms.binning import compress_events

        ws = compress_events(ws, float(CompressTolerance))
    if LoadMonitors:
        mon = load_monitors(
            str(Filename), str(NXentryName or ""), str(MonitorsLoadOnly or ""),
            (FilterMonByTofMin, FilterMonByTofMax), (FilterMonByTimeStart, FilterMonByTimeStop),
        )  # fmt: skip
        ws.monitors = mon
        mtd.addOrReplace(f"{OutputWorkspace}_monitors", mon)
    return ws


@algorithm(
    "LoadNexusMonitors",
    [
        Prop("Filename"),
        Prop("OutputWorkspace", kind=OUT),
        Prop("NXentryName", ""),
        Prop("LoadOnly", ""),
        Prop("LoadEventMonitors", True),
        Prop("LoadHistoMonitors", True),
    ],
    per_member=False,
)
def _load_nexus_monitors(
    Filename, OutputWorkspace, NXentryName, LoadOnly, LoadEventMonitors, LoadHistoMonitors
):
    """The NXmonitor groups of a NeXus file: histograms, or events when the monitors hold them."""
    only = str(LoadOnly or "")
    if not LoadEventMonitors and LoadHistoMonitors:
        only = "Histogram"
    elif LoadEventMonitors and not LoadHistoMonitors:
        only = "Events"
    return load_monitors(str(Filename), str(NXentryName or ""), only)
