"""Mantid's processed-NeXus layout (what SaveNexusProcessed writes and LoadNexusProcessed reads), with h5py.

Layout facts from Mantid's documentation and its NexusFileIO / LoadNexusProcessed / PropertyNexus sources
(own code). One NXentry `mantid_workspace_<k>` per workspace (k from 1; a group saves one entry per member):
  title, workspace_name, definition = "Mantid Processed Workspace" (@URL, @Version), definition_local
  workspace  NXdata (histograms):
      values [spectrum, bin] @signal=1 (int32) @axes="axis2,axis1" @units=YUnit @unit_label
      errors [spectrum, bin]
      axis1  bin edges, [bin+1] shared or [spectrum, bin+1] @units=<unit ID, e.g. TOF> @distribution="0"/"1"
      axis2  [spectrum] spectrum numbers (float64) @units="spectraNumber"
  event_workspace NXdata (event workspaces, instead of `workspace`): events grouped by spectrum:
      indices int64 [spectrum+1] (offsets) @units @unit_label, tof float64, pulsetime int64 (ns since
      1990-01-01), weight + error_squared float32 (weighted events only), axis1, axis2 as above
  instrument NXinstrument: name; detector NXdetector: spectra, detector_index, detector_count, detector_list
      (the spectrum → detector map, int32)
  sample NXsample: name
  logs NXcollection: one NXlog per run property: value @units; time series also time (float64 seconds
      since @start, ISO8601). Strings: fixed-length text; booleans: uint8 values with @boolean on the NXlog.
Every text is fixed-length ASCII/UTF-8, as NeXus' NX_CHAR, which Mantid's reader expects.

livereduce adds, where Mantid's loader ignores them: instrument/livereduce_geometry (L1, per-spectrum L2,
2θ, azimuth, mask flags, listener facts as JSON), @livereduce_* attributes that restore Python types exactly,
event_workspace/livereduce_arrival (events are grouped by spectrum in the file; this restores their arrival
order), float64 copies of event weights when float32 (Mantid's type) would round them, and monitor_workspace
(the attached monitors, same layout). Times in logs come back to the nanosecond while a log spans less than
~26 days.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import h5py
import numpy as np

from livereduce.algorithms.point_data import PointDataWorkspace
from livereduce.errors import AlgorithmError
from livereduce.workspace.base import UNITS
from livereduce.workspace.events import EventColumns, EventWorkspace, group_by_spectrum
from livereduce.workspace.group import WorkspaceGroup
from livereduce.workspace.histogram import HistogramWorkspace, row_blocks
from livereduce.workspace.run import Property, Run, TimeSeries
from livereduce.workspace.spectra import Spectra

ENTRY = "mantid_workspace_"
DEFINITION = "Mantid Processed Workspace"
EPOCH_1990_NS = 631_152_000 * 1_000_000_000  # Mantid's DateAndTime counts ns from 1990-01-01


def text(v) -> str:
    """An attribute or scalar dataset value as str (fixed-length text comes back as bytes)."""
    if isinstance(v, h5py.Dataset):
        v = v[()]
    if isinstance(v, np.ndarray):
        v = v.reshape(-1)[0] if v.size else b""
    return v.decode("utf-8", "replace") if isinstance(v, bytes | np.bytes_) else str(v)


def _fixed(s: str) -> np.bytes_:
    return np.bytes_(s.encode("utf-8"))


def _attrs(node, **kw):
    for k, v in kw.items():
        node.attrs[k] = _fixed(v) if isinstance(v, str) else v
    return node


def _string(g, name: str, value: str, **attrs):
    return _attrs(g.create_dataset(name, data=_fixed(value)), **attrs)


def _key(name: str) -> str:
    return name.replace("%", "%25").replace("/", "%2F") or "%00"


# -- writing ------------------------------------------------------------------------------------------


def next_entry(f: h5py.File) -> int:
    """The number of the next mantid_workspace_<k> entry in an open file (Append adds after the last)."""
    return 1 + sum(1 for k in f if k.startswith(ENTRY))


def write_entry(f: h5py.File, k: int, ws, title: str, preserve_events: bool) -> None:
    entry = _attrs(f.create_group(f"{ENTRY}{k}"), NX_class="NXentry")
    write_workspace(entry, ws, title, preserve_events)


def write_workspace(g, ws, title: str, preserve_events: bool) -> None:
    _string(g, "title", title or ws.getTitle())
    _string(g, "workspace_name", ws.name())
    _string(g, "definition", DEFINITION, URL="http://www.nexusformat.org/instruments/xml/NXprocessed.xml")
    g["definition"].attrs["Version"] = _fixed("1.0")
    _string(g, "definition_local", DEFINITION, URL="http://www.isis.rl.ac.uk/xml/IXmantid.xml")
    g["definition_local"].attrs["Version"] = _fixed("1.0")
    if isinstance(ws, EventWorkspace) and preserve_events:
        _write_events(g, ws)
    else:
        _write_histogram(g, ws.histogram() if isinstance(ws, EventWorkspace) else ws)
    _write_instrument(g, ws.spectra)
    _string(_attrs(g.create_group("sample"), NX_class="NXsample"), "name", "")
    _write_logs(g, ws.run_info)
    if ws.monitors is not None:
        mon = _attrs(g.create_group("monitor_workspace"), NX_class="NXcollection")
        write_workspace(mon, ws.monitors, "", preserve_events)


def _axes(d, ws, edges: np.ndarray) -> None:
    _attrs(
        d.create_dataset("axis1", data=edges),
        units=ws.x_unit.unit_id,
        distribution="1" if getattr(ws, "distribution", False) else "0",
    )
    _attrs(d.create_dataset("axis2", data=ws.spectra.numbers.astype(np.float64)), units="spectraNumber")


def _write_histogram(g, h: HistogramWorkspace) -> None:
    d = _attrs(g.create_group("workspace"), NX_class="NXdata", signal="values")  # @signal: NeXus 2014
    v = d.create_dataset("values", data=h.values)
    v.attrs["signal"] = np.int32(1)
    _attrs(v, axes="axis2,axis1", units=h.YUnit(), unit_label=h.YUnitLabel())
    _write_errors(d, h.variances)
    _axes(d, h, h.points if isinstance(h, PointDataWorkspace) else h.edges)  # point data: X per point


def _write_errors(d, var: np.ndarray) -> None:
    """errors = sqrt(variances), a block of rows (row_blocks) at a time into one reused buffer, each block
    written straight from it (write_direct): no table-sized temporary, and no new block allocated per block."""
    err = d.create_dataset("errors", shape=var.shape, dtype=np.float64)
    buf: np.ndarray | None = None
    for rows in row_blocks(np.arange(var.shape[0]), var.shape[1] * 8):
        block = var[rows]
        if buf is None:
            buf = np.empty(block.shape, np.float64)  # the first block is the largest
        out = buf[: block.shape[0]]
        np.sqrt(block, out=out)
        err.write_direct(out, dest_sel=np.s_[rows])  # rows: a slice (row_blocks of consecutive indices)


def _write_events(g, ws: EventWorkspace) -> None:
    d = _attrs(g.create_group("event_workspace"), NX_class="NXdata")
    ev = ws.events
    order, indices = _group_order(ev.index, ws.getNumberHistograms())
    _attrs(d.create_dataset("indices", data=indices), units=ws.YUnit(), unit_label=ws.YUnitLabel())
    d.create_dataset("tof", data=ev.x_native[order].astype(np.float64))  # storage stays as it is
    d.create_dataset("pulsetime", data=ev.pulse_time()[order] - EPOCH_1990_NS)
    if ev.weights is not None and ev.err2 is not None:
        for name, col in (("weight", ev.weights[order]), ("error_squared", ev.err2[order])):
            single = col.astype(np.float32)
            d.create_dataset(name, data=single)
            if not np.array_equal(single, col, equal_nan=True):  # exact values for our own reader
                d.create_dataset(f"livereduce_{name}", data=col)
    if len(ev) and np.any(order[1:] < order[:-1]):
        d.create_dataset("livereduce_arrival", data=order)  # restores arrival order (drop_oldest needs it)
    _axes(d, ws, ws.edges)


def _group_order(index: np.ndarray, nspec: int) -> tuple[np.ndarray, np.ndarray]:
    """group_by_spectrum, after checking every index names one of the spectra."""
    if index.size and int(index.max()) >= nspec:
        raise AlgorithmError(f"event index {int(index.max())} outside the {nspec} spectra")
    return group_by_spectrum(index, nspec)


def _write_instrument(g, s: Spectra) -> None:
    i = _attrs(g.create_group("instrument"), NX_class="NXinstrument")
    _string(i, "name", s.instrument)
    det = _attrs(i.create_group("detector"), NX_class="NXdetector")
    det.create_dataset("spectra", data=s.numbers.astype(np.int32))
    det.create_dataset("detector_index", data=s.det_offsets[:-1].astype(np.int32))
    det.create_dataset("detector_count", data=np.diff(s.det_offsets).astype(np.int32))
    det.create_dataset("detector_list", data=s.det_ids.astype(np.int32))
    masked = s.is_masked()
    if masked.any():  # Mantid keeps detector masks in the parameter map: "detID:<id>;bool;masked;true|..."
        ids = np.concatenate([s.detector_ids(int(k)) for k in np.flatnonzero(masked)])
        note = _attrs(i.create_group("instrument_parameter_map"), NX_class="NXnote")
        _string(note, "data", "|".join(f"detID:{d};bool;masked;true" for d in ids))
        _string(note, "type", "text/plain")
    geo = _attrs(i.create_group("livereduce_geometry"), NX_class="NXcollection")
    _attrs(geo.create_dataset("l1", data=s.l1), units="m")
    _attrs(geo.create_dataset("l2", data=s.l2), units="m")
    _attrs(geo.create_dataset("two_theta", data=s.two_theta), units="rad")
    _attrs(geo.create_dataset("azimuthal", data=s.azimuthal), units="rad")
    if s.masked is not None:
        geo.create_dataset("masked", data=s.masked.astype(np.uint8))
    try:
        _string(geo, "extra_json", json.dumps(s.extra))
    except (TypeError, ValueError):
        pass  # listener-specific objects that are not JSON are not saved


def _write_logs(g, run: Run) -> None:
    logs = _attrs(g.create_group("logs"), NX_class="NXcollection")
    for pos, entry in enumerate(run.getProperties()):
        lg = _attrs(logs.create_group(_key(entry.name)), NX_class="NXlog")
        lg.attrs["livereduce_name"] = _fixed(entry.name)
        lg.attrs["livereduce_order"] = pos
        if isinstance(entry, TimeSeries):
            _write_series(lg, entry)
        else:
            _write_single(lg, entry)


def _write_series(lg, entry: TimeSeries) -> None:
    times = entry.times.astype(np.int64)
    start = (int(times.min()) // 1_000_000_000) * 1_000_000_000 if times.size else 0  # a whole second
    _attrs(
        lg.create_dataset("time", data=(times - start) / 1e9),
        units="second",
        start=datetime.fromtimestamp(start // 1_000_000_000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S"),
    )
    vals, dtype = entry.values, entry.values.dtype.str
    if vals.dtype.kind == "O" and not all(isinstance(v, str | bytes) for v in vals):
        # one array per time (waveform PVs): stored as JSON text
        vals = np.array([json.dumps(np.asarray(v).tolist(), default=_str) for v in vals], object)
        dtype = "json"
    if vals.dtype.kind in "USO":
        data = np.array([_str(v).encode("utf-8") for v in vals], dtype=bytes)
        ds = lg.create_dataset("value", data=data if data.size else np.zeros(0, "S1"))
    elif vals.dtype.kind == "b":
        ds = lg.create_dataset("value", data=vals.astype(np.uint8))
        lg.attrs["boolean"] = _fixed("1")
    else:
        ds = lg.create_dataset("value", data=vals)
    _attrs(ds, units=entry.unit, livereduce_dtype=dtype)


def _write_single(lg, entry: Property) -> None:
    kind, data = _encode(entry.value)
    if isinstance(data, str):
        ds = _string(lg, "value", data)
    elif kind == "bool":
        ds = lg.create_dataset("value", data=np.atleast_1d(np.uint8(data)))
        lg.attrs["boolean"] = _fixed("1")
    else:
        ds = lg.create_dataset("value", data=np.atleast_1d(data))
    _attrs(ds, units=entry.unit, livereduce_type=kind)


def _str(v) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def _encode(v):
    if isinstance(v, bool | np.bool_):
        return "bool", bool(v)
    if isinstance(v, int):
        return "int", np.int64(v)
    if isinstance(v, float):
        return "float", np.float64(v)
    if isinstance(v, str):
        return "str", v
    if v is None:
        return "none", ""
    if isinstance(v, np.ndarray) and v.dtype.kind not in "OUS":
        return ("ndarray0" if v.ndim == 0 else "ndarray"), v
    if isinstance(v, np.generic):
        return f"numpy:{v.dtype.str}", v
    try:
        return ("tuple" if isinstance(v, tuple) else "json"), json.dumps(
            list(v) if isinstance(v, tuple) else v
        )
    except (TypeError, ValueError):
        return "str", str(v)


# -- reading ------------------------------------------------------------------------------------------


def entries(f: h5py.File) -> list[str]:
    names = [k for k in f if k.startswith(ENTRY) and k[len(ENTRY) :].isdigit()]
    return sorted(names, key=lambda k: int(k[len(ENTRY) :]))


def read_workspace(g):
    if "event_workspace" in g:
        d = g["event_workspace"]
    elif "workspace" in g:
        d = g["workspace"]
    else:
        kinds = [k for k in g if k.endswith("_workspace")]
        raise AlgorithmError(
            f"LoadNexusProcessed: entry {g.name} holds a {kinds[0] if kinds else 'non-matrix'} workspace; "
            f"the embedded engine loads matrix (histogram and event) workspaces only"
        )
    x = d["axis1"]
    unit_id = text(x.attrs.get("units", "Empty"))
    if unit_id not in UNITS:
        raise AlgorithmError(
            f"LoadNexusProcessed: x unit '{unit_id}' is not supported by the embedded engine "
            f"(known: {', '.join(UNITS)})"
        )
    edges = x[()].astype(np.float64)
    run = _read_logs(g["logs"]) if "logs" in g else Run()
    title = text(g["title"]) if "title" in g else ""
    if title and not run.hasProperty("run_title"):
        run.set("run_title", title)
    mon = read_workspace(g["monitor_workspace"]) if "monitor_workspace" in g else None
    if d.name.endswith("event_workspace"):
        offsets = d["indices"][()].astype(np.int64)
        spectra = _read_spectra(g, d, offsets.size - 1)
        events = _read_events(d, offsets)
        ws: EventWorkspace | HistogramWorkspace = EventWorkspace(spectra, events, edges, run, unit_id, mon)
        y_attrs = d["indices"].attrs
    else:
        values = d["values"][()].astype(np.float64)
        if values.ndim == 1:
            values = values[None, :]
        err = d["errors"][()].astype(np.float64).reshape(values.shape)
        spectra = _read_spectra(g, d, values.shape[0])
        cls = PointDataWorkspace if edges.shape[-1] == values.shape[1] else HistogramWorkspace  # X per point
        ws = cls(
            values,
            err * err,
            edges,
            spectra,
            run,
            unit_id,
            mon,
            text(x.attrs.get("distribution", "0")) == "1",
        )
        y_attrs = d["values"].attrs
    ws.y_unit = text(y_attrs.get("units", "Counts")) or "Counts"
    label = text(y_attrs.get("unit_label", ""))
    ws.y_unit_label = "" if label == ws.y_unit else label
    return ws


def _read_events(d, offsets: np.ndarray) -> EventColumns:
    n = int(offsets[-1])
    index = np.repeat(np.arange(offsets.size - 1, dtype=np.uint32), np.diff(offsets))
    tof = d["tof"][()][:n] if "tof" in d else np.zeros(n)
    if "pulsetime" in d:
        unix = d["pulsetime"][()][:n].astype(np.int64) + EPOCH_1990_NS
        table, pulse = np.unique(unix, return_inverse=True)
    else:  # WEIGHTED_NOTIME events
        table, pulse = np.zeros(1, np.int64), np.zeros(n, np.int64)
    w = _column(d, "weight", n)
    e2 = _column(d, "error_squared", n) if w is not None else None
    if "livereduce_arrival" in d:  # our own file: back to arrival order
        back = np.empty(n, np.int64)
        back[d["livereduce_arrival"][()]] = np.arange(n)
        index, tof, pulse = index[back], tof[back], pulse[back]
        w, e2 = (None if c is None else c[back] for c in (w, e2))
    return EventColumns(index, tof, pulse.astype(np.uint32), table, w, e2)


def _column(d, name: str, n: int) -> np.ndarray | None:
    exact = f"livereduce_{name}"
    if exact in d:
        return d[exact][()][:n]
    return d[name][()][:n].astype(np.float64) if name in d else None


def _read_spectra(g, d, n: int) -> Spectra:
    """The spectra: numbers and detectors from instrument/detector (Mantid's map), else axis2; geometry
    from livereduce_geometry when we wrote the file, else unknown (NaN)."""
    inst = g.get("instrument")
    det = inst.get("detector") if inst is not None else None
    numbers = None
    if det is not None and "spectra" in det:
        numbers = det["spectra"][()].astype(np.int32)
    elif text(d["axis2"].attrs.get("units", "")) == "spectraNumber" and d["axis2"].shape == (n,):
        numbers = d["axis2"][()].astype(np.int32)
    if numbers is None or numbers.size != n:
        numbers = np.arange(1, n + 1, dtype=np.int32)
    if det is not None and "detector_list" in det:
        start = det["detector_index"][()].astype(np.int64)
        count = det["detector_count"][()].astype(np.int64)
        ids = det["detector_list"][()].astype(np.int32)
        offsets = np.concatenate([[0], np.cumsum(count)]).astype(np.int64)
        within = np.arange(offsets[-1], dtype=np.int64) - np.repeat(offsets[:-1], count)
        det_ids = ids[np.repeat(start, count) + within]
    else:  # no map: no detectors known
        offsets, det_ids = np.zeros(n + 1, np.int64), np.zeros(0, np.int32)
    nan = np.full(n, np.nan)
    s = Spectra(numbers, det_ids, offsets, nan.copy(), nan.copy(), np.zeros(n))
    if inst is not None:
        s.instrument = text(inst["name"]).strip() if "name" in inst else ""
        geo = inst.get("livereduce_geometry")
        if geo is not None:
            s.l1 = float(geo["l1"][()])
            s.l2, s.two_theta, s.azimuthal = (geo[k][()] for k in ("l2", "two_theta", "azimuthal"))
            if "masked" in geo:
                s.masked = geo["masked"][()].astype(bool)
            if "extra_json" in geo:
                s.extra = json.loads(text(geo["extra_json"]))
        elif "instrument_xml" in inst and "data" in inst["instrument_xml"]:
            _embedded_geometry(s, text(inst["instrument_xml/data"]))
    return s


def _embedded_geometry(s: Spectra, idf: str) -> None:
    """Geometry from the instrument definition Mantid embeds (instrument_xml): each spectrum's L2, 2θ and
    azimuth are its detectors' means (NaN without a detector the definition knows); an IDF the reader refuses
    leaves the geometry unknown."""
    from livereduce.instrument import parse_idf

    try:
        g = parse_idf(idf)
    except ValueError:
        return
    ids = s.det_ids.astype(np.int64)
    if g.det_ids.size == 0 or ids.size == 0:
        return
    pos = np.minimum(np.searchsorted(g.det_ids, ids), g.det_ids.size - 1)
    known = (g.det_ids[pos] == ids).astype(float)
    owner = np.repeat(np.arange(len(s)), np.diff(s.det_offsets))
    counts = np.bincount(owner, weights=known, minlength=len(s))
    with np.errstate(invalid="ignore", divide="ignore"):
        for name in ("l2", "two_theta", "azimuthal"):
            sums = np.bincount(owner, weights=known * getattr(g, name)[pos], minlength=len(s))
            setattr(s, name, np.where(counts > 0, sums / counts, np.nan))
    s.l1, s.geometry = g.l1, g


def _read_logs(logs) -> Run:
    found: list[tuple[int, Property | TimeSeries]] = []
    for key, lg in logs.items():
        if not isinstance(lg, h5py.Group) or "value" not in lg:
            continue  # e.g. Mantid's goniometer group
        name = text(lg.attrs["livereduce_name"]) if "livereduce_name" in lg.attrs else key
        order = int(lg.attrs.get("livereduce_order", 1 << 30))
        v = lg["value"]
        unit = text(v.attrs.get("units", ""))
        boolean = "boolean" in lg.attrs
        if "time" in lg:
            found.append((order, TimeSeries(name, unit, _times(lg["time"]), _series_values(v, boolean))))
        else:
            found.append((order, Property(name, _single_value(v, boolean), unit)))
    found.sort(key=lambda p: p[0])  # stable: Mantid's own logs keep the file's (alphabetical) order
    return Run(e for _, e in found)


def _times(t) -> np.ndarray:
    start = text(t.attrs.get("start", "2000-01-01T00:00:00"))  # Mantid's default start
    start_ns = int(np.datetime64(start.strip().rstrip("Z").replace(" ", "T"), "ns").astype(np.int64))
    seconds = t[()].astype(np.float64)
    return start_ns + np.round(seconds * 1e9).astype(np.int64)


def _series_values(v, boolean: bool) -> np.ndarray:
    dtype = text(v.attrs.get("livereduce_dtype", ""))
    raw = v[()]
    if dtype == "json":
        out = np.empty(len(raw), object)
        out[:] = [np.asarray(json.loads(_str(s))) for s in raw]
        return out
    if raw.dtype.kind == "S" or raw.dtype.kind == "O":
        strings = [_str(s).rstrip("\x00") for s in raw]
        return np.array(strings, dtype=np.dtype(dtype) if dtype and np.dtype(dtype).kind in "UO" else object)
    if boolean:
        return raw.astype(bool)
    return raw.astype(np.dtype(dtype)) if dtype else raw


def _single_value(v, boolean: bool):
    kind = text(v.attrs.get("livereduce_type", ""))
    raw = v[()]
    if raw.dtype.kind in "SO":
        s = text(raw)
        if kind == "none":
            return None
        if kind in ("json", "tuple"):
            return tuple(json.loads(s)) if kind == "tuple" else json.loads(s)
        return s
    if boolean or kind == "bool":
        return bool(np.ravel(raw)[0])
    if kind == "ndarray":
        return raw
    if kind == "ndarray0":
        return raw.reshape(())
    flat = np.ravel(raw)
    if kind.startswith("numpy:"):
        return np.dtype(kind[6:]).type(flat[0])
    if kind == "int" or (not kind and flat.size == 1 and flat.dtype.kind in "iu"):
        return int(flat[0])
    if kind == "float" or (not kind and flat.size == 1):
        return float(flat[0])
    return raw  # Mantid's array property


def read_file(f: h5py.File, filename: str, entry_number: int = 0):
    """The workspace of entry `entry_number` (1-based), or with 0 every entry (a group when several, or when
    livereduce saved a group)."""
    names = entries(f)
    if not names:
        raise AlgorithmError(
            f"'{filename}' is not a processed NeXus file (no mantid_workspace_1 entry); loading raw NeXus "
            f"is not supported here (run with engine 'mantid' where Mantid is installed)"
        )
    if entry_number:
        if not 1 <= entry_number <= len(names):
            raise AlgorithmError(f"Invalid entry number {entry_number}: the file holds {len(names)} entries")
        return read_workspace(f[names[entry_number - 1]])
    members = [read_workspace(f[n]) for n in names]  # members are named <OutputWorkspace>_<k>
    if len(members) == 1 and not f.attrs.get("livereduce_group", 0):
        return members[0]
    return WorkspaceGroup(members)
