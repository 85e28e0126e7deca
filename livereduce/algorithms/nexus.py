"""SaveNexus / SaveNexusProcessed and LoadNexus / LoadNexusProcessed / Load, with h5py.

Layout (one NXentry `mantid_workspace_<k>` per workspace; a group saves one entry per member):
  entry@NX_class=NXentry, @workspace_type, @unit_id, @distribution; workspace_name, title, definition
  entry/workspace  NXdata  @signal="values" @axes=["spectrum", <dim>] @<dim>_indices @spectrum_indices
      values [spectrum, bin] @units="counts";  values_errors (E = √variance) @units="counts"
      <dim>  bin edges, [bin+1] shared or [spectrum, bin+1] @units (scipp unit) @unit_id (Mantid unit)
      spectrum [spectrum] spectrum numbers
  entry/instrument NXinstrument: name, l1 @units=m, detector_ids + detector_offsets (CSR), l2 @m,
      two_theta @rad, azimuthal @rad, extra_json
  entry/logs NXcollection: one NXlog per time series: time (int64 ns since 1970) @units=ns @start, value
  entry/properties NXcollection: one NXlog per single-valued property: value @python_type @units
  entry/event_workspace NXcollection (event workspaces): the event columns as stored (index, x, pulse,
      pulse_times, weights, err2) and the workspace's own edges; workspace/ then holds their histogram
  entry/monitor_workspace: the attached monitor workspace, same layout.
The round trip is exact for values, errors, edges, unit, spectra, geometry, logs, properties and events;
variances come back as E², which is the saved variance to within one rounding (E itself is exact).
"""

from __future__ import annotations

import json
import os

import h5py
import numpy as np

from livereduce.algorithms._util import index_range, int_list
from livereduce.algorithms.product_file import product_file
from livereduce.algorithms.registry import IN, OUT, Prop, algorithm
from livereduce.algorithms.spectra_ops import extract
from livereduce.errors import AlgorithmError
from livereduce.workspace.events import EventColumns, EventWorkspace
from livereduce.workspace.group import WorkspaceGroup
from livereduce.workspace.histogram import HistogramWorkspace
from livereduce.workspace.run import Property, Run, TimeSeries
from livereduce.workspace.spectra import Spectra

ENTRY = "mantid_workspace_"
DEFINITION = "livereduce processed workspace"
_STR = h5py.string_dtype()


def _attrs(node, **kw):
    for k, v in kw.items():
        node.attrs[k] = v
    return node


def _key(name: str) -> str:
    return name.replace("%", "%25").replace("/", "%2F") or "%00"


# -- writing ------------------------------------------------------------------------------------------


def save(ws, filename: str, title: str = "", preserve_events: bool = True) -> None:
    folder = os.path.dirname(os.path.abspath(filename))
    if not os.path.isdir(folder):
        raise AlgorithmError(f"SaveNexus: directory '{folder}' does not exist")
    members = list(ws) if isinstance(ws, WorkspaceGroup) else [ws]
    with product_file(filename) as temp, h5py.File(temp, "w") as f:
        _attrs(
            f, creator="livereduce", NX_class="NXroot", livereduce_group=int(isinstance(ws, WorkspaceGroup))
        )
        for k, m in enumerate(members, 1):
            entry = _attrs(f.create_group(f"{ENTRY}{k}"), NX_class="NXentry")
            _write_workspace(entry, m, title, preserve_events)


def _write_workspace(g, ws, title: str, preserve_events: bool) -> None:
    events = isinstance(ws, EventWorkspace) and preserve_events
    h = ws.histogram() if isinstance(ws, EventWorkspace) else ws
    u = ws.x_unit
    _attrs(
        g,
        workspace_type=ws.id() if events else "Workspace2D",
        unit_id=u.unit_id,
        distribution=bool(getattr(h, "distribution", False)),
    )
    g.create_dataset("workspace_name", data=ws.name(), dtype=_STR)
    g.create_dataset("title", data=title or ws.getTitle(), dtype=_STR)
    g.create_dataset("definition", data=DEFINITION, dtype=_STR)
    d = _attrs(
        g.create_group("workspace"),
        NX_class="NXdata",
        signal="values",
        axes=["spectrum", u.dim],
        spectrum_indices=0,
    )
    d.attrs[f"{u.dim}_indices"] = [0, 1] if h.edges.ndim == 2 else 1
    _attrs(d.create_dataset("values", data=h.values), units="counts")
    _attrs(d.create_dataset("values_errors", data=np.sqrt(h.variances)), units="counts")
    _attrs(d.create_dataset(u.dim, data=h.edges), units=u.scipp_unit, unit_id=u.unit_id)
    d.create_dataset("spectrum", data=ws.spectra.numbers)
    _write_spectra(g, ws.spectra)
    _write_run(g, ws.run_info)
    if events:
        ev = ws.events
        e = _attrs(g.create_group("event_workspace"), NX_class="NXcollection")
        for name in ("index", "x", "pulse", "pulse_times", "weights", "err2"):
            col = getattr(ev, name)
            if col is not None:
                e.create_dataset(name, data=col)
        _attrs(e.create_dataset("edges", data=ws.edges), units=u.scipp_unit)
    if ws.monitors is not None:
        _write_workspace(
            _attrs(g.create_group("monitor_workspace"), NX_class="NXcollection"),
            ws.monitors,
            "",
            preserve_events,
        )


def _write_spectra(g, s: Spectra) -> None:
    i = _attrs(g.create_group("instrument"), NX_class="NXinstrument")
    i.create_dataset("name", data=s.instrument, dtype=_STR)
    _attrs(i.create_dataset("l1", data=s.l1), units="m")
    i.create_dataset("detector_ids", data=s.det_ids)
    i.create_dataset("detector_offsets", data=s.det_offsets)
    _attrs(i.create_dataset("l2", data=s.l2), units="m")
    _attrs(i.create_dataset("two_theta", data=s.two_theta), units="rad")
    _attrs(i.create_dataset("azimuthal", data=s.azimuthal), units="rad")
    try:
        i.create_dataset("extra_json", data=json.dumps(s.extra), dtype=_STR)
    except (TypeError, ValueError):
        pass  # listener-specific objects that are not JSON are not saved


def _write_run(g, run: Run) -> None:
    logs = _attrs(g.create_group("logs"), NX_class="NXcollection")
    props = _attrs(g.create_group("properties"), NX_class="NXcollection")
    for pos, entry in enumerate(run.getProperties()):
        if isinstance(entry, TimeSeries):
            lg = _attrs(logs.create_group(_key(entry.name)), NX_class="NXlog", name=entry.name, order=pos)
            _attrs(
                lg.create_dataset("time", data=entry.times.astype(np.int64)),
                units="ns",
                start="1970-01-01T00:00:00Z",
            )
            vals, dtype = entry.values, entry.values.dtype.str
            if vals.dtype.kind == "O":  # strings, or one array per time (waveform PVs): stored as text
                if all(isinstance(v, str | bytes) for v in vals):
                    vals = np.array([_text(v) for v in vals], object)  # read back as object strings
                else:
                    vals = np.array([json.dumps(np.asarray(v).tolist(), default=_text) for v in vals], object)
                    dtype = "json"
            text = vals.dtype.kind in "USO"
            ds = lg.create_dataset(
                "value", data=vals.astype(object) if text else vals, dtype=_STR if text else None
            )
            _attrs(ds, units=entry.unit, numpy_dtype=dtype)
        else:
            pg = _attrs(props.create_group(_key(entry.name)), NX_class="NXlog", name=entry.name, order=pos)
            kind, data = _encode(entry.value)
            ds = pg.create_dataset("value", data=data, dtype=_STR if isinstance(data, str) else None)
            _attrs(ds, units=entry.unit, python_type=kind)


def _text(v) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def _encode(v):
    if isinstance(v, bool):
        return "bool", np.bool_(v)
    if isinstance(v, int):
        return "int", np.int64(v)
    if isinstance(v, float):
        return "float", np.float64(v)
    if isinstance(v, str):
        return "str", v
    if v is None:
        return "none", np.int8(0)
    if isinstance(v, np.ndarray) and v.dtype.kind not in "OUS":
        return "ndarray", v
    if isinstance(v, np.generic):
        return f"numpy:{v.dtype.str}", v
    try:
        return ("tuple" if isinstance(v, tuple) else "json"), json.dumps(
            v if not isinstance(v, tuple) else list(v)
        )
    except (TypeError, ValueError):
        return "str", str(v)


# -- reading ------------------------------------------------------------------------------------------


def load(filename: str, entry_number: int = 0):
    if not os.path.isfile(filename):
        raise AlgorithmError(f"LoadNexus: file '{filename}' does not exist")
    try:
        f = h5py.File(filename, "r")
    except OSError as exc:
        raise AlgorithmError(f"LoadNexus: '{filename}' is not an HDF5/NeXus file ({exc})") from None
    with f:
        names = sorted((k for k in f if k.startswith(ENTRY)), key=lambda k: int(k[len(ENTRY) :]))
        if not names or "workspace" not in f[names[0]]:
            raise AlgorithmError(
                f"LoadNexus: '{filename}' is not a processed workspace file written by "
                f"livereduce; loading raw NeXus is not supported by the embedded engine "
                f"(run with engine 'mantid' where Mantid is installed)"
            )
        if entry_number:
            if not 1 <= entry_number <= len(names):
                raise AlgorithmError(f"LoadNexus: EntryNumber {entry_number} not in 1..{len(names)}")
            return _read_workspace(f[names[entry_number - 1]])
        members = [_read_workspace(f[n]) for n in names]
        if len(members) == 1 and not f.attrs.get("livereduce_group", 0):
            return members[0]
        return WorkspaceGroup(members)


def _read_workspace(g):
    unit_id = str(g.attrs["unit_id"])
    d = g["workspace"]
    dim = next(a for a in d.attrs["axes"] if a != "spectrum")
    spectra = _read_spectra(g["instrument"], d["spectrum"][()])
    run = _read_run(g)
    mon = _read_workspace(g["monitor_workspace"]) if "monitor_workspace" in g else None
    if "event_workspace" in g:
        e = g["event_workspace"]
        col = {k: e[k][()] for k in ("index", "x", "pulse", "pulse_times", "weights", "err2") if k in e}
        ev = EventColumns(
            col["index"], col["x"], col["pulse"], col["pulse_times"], col.get("weights"), col.get("err2")
        )
        ws = EventWorkspace(spectra, ev, e["edges"][()], run, unit_id, mon)
    else:
        err = d["values_errors"][()]
        ws = HistogramWorkspace(
            d["values"][()],
            err * err,
            d[dim][()],
            spectra,
            run,
            unit_id,
            mon,
            bool(g.attrs.get("distribution", False)),
        )
    return ws


def _read_spectra(i, numbers) -> Spectra:
    extra = json.loads(i["extra_json"].asstr()[()]) if "extra_json" in i else {}
    return Spectra(
        numbers.astype(np.int32),
        i["detector_ids"][()],
        i["detector_offsets"][()],
        i["l2"][()],
        i["two_theta"][()],
        i["azimuthal"][()],
        float(i["l1"][()]),
        i["name"].asstr()[()],
        extra,
    )


def _read_run(g) -> Run:
    entries: list[tuple[int, Property | TimeSeries]] = []
    for lg in g["logs"].values():
        v = lg["value"]
        if v.attrs["numpy_dtype"] == "json":  # one array per time
            vals = np.empty(len(v), object)
            vals[:] = [np.asarray(json.loads(s)) for s in v.asstr()[()]]
        else:
            dt = np.dtype(v.attrs["numpy_dtype"])
            vals = np.array(v.asstr()[()], dtype=dt) if dt.kind in "USO" else v[()].astype(dt)
        entries.append(
            (
                int(lg.attrs["order"]),
                TimeSeries(str(lg.attrs["name"]), str(v.attrs["units"]), lg["time"][()], vals),
            )
        )
    for pg in g["properties"].values():
        v = pg["value"]
        entries.append(
            (
                int(pg.attrs["order"]),
                Property(
                    str(pg.attrs["name"]), _decode(v, str(v.attrs["python_type"])), str(v.attrs["units"])
                ),
            )
        )
    return Run(e for _, e in sorted(entries, key=lambda p: p[0]))


def _decode(ds, kind: str):
    if kind == "str":
        return ds.asstr()[()]
    raw = ds[()]
    if kind == "bool":
        return bool(raw)
    if kind == "int":
        return int(raw)
    if kind == "float":
        return float(raw)
    if kind == "none":
        return None
    if kind == "ndarray":
        return raw
    if kind.startswith("numpy:"):
        return np.dtype(kind[6:]).type(raw)
    text = ds.asstr()[()]
    return tuple(json.loads(text)) if kind == "tuple" else json.loads(text)


def _select(ws, spec_min, spec_max, spec_list):
    """LoadNexus' SpectrumMin/Max/List: keep those spectrum numbers."""
    if isinstance(ws, WorkspaceGroup):
        return WorkspaceGroup([_select(m, spec_min, spec_max, spec_list) for m in ws])
    wanted = set(int_list(spec_list, "SpectrumList"))
    if spec_min is not None or spec_max is not None:
        nums = ws.spectra.numbers
        lo = nums.min() if spec_min is None else int(spec_min)
        hi = nums.max() if spec_max is None else int(spec_max)
        wanted.update(int(n) for n in nums if lo <= n <= hi)
    if not wanted:
        return ws
    idx = np.array([i for i, n in enumerate(ws.spectra.numbers) if int(n) in wanted], np.int64)
    if idx.size == 0:
        raise AlgorithmError(
            f"LoadNexus: none of the requested spectra {sorted(wanted)[:10]} are in the file"
        )
    return extract(ws, idx)


_SAVE = [
    Prop("InputWorkspace", kind=IN),
    Prop("Filename"),
    Prop("Title", ""),
    Prop("WorkspaceIndexMin", 0),
    Prop("WorkspaceIndexMax", None),
    Prop("WorkspaceIndexList", None),
    Prop("Append", False),
]


def _save_alg(
    InputWorkspace,
    Filename,
    Title,
    WorkspaceIndexMin,
    WorkspaceIndexMax,
    WorkspaceIndexList,
    Append,
    PreserveEvents=True,
    CompressNexus=False,
):
    """Write the workspace (or group) to a NeXus/HDF5 file."""
    if Append:
        raise AlgorithmError("SaveNexus: Append is not supported by the embedded engine")
    ws = InputWorkspace
    if WorkspaceIndexMin or WorkspaceIndexMax is not None or WorkspaceIndexList:
        ws = extract(
            ws, index_range(ws, WorkspaceIndexMin, WorkspaceIndexMax, WorkspaceIndexList, "SaveNexus")
        )
        ws._name = InputWorkspace.name()
    save(ws, str(Filename), Title, bool(PreserveEvents))


algorithm("SaveNexus", list(_SAVE), per_member=False)(_save_alg)
algorithm(
    "SaveNexusProcessed",
    [*_SAVE, Prop("PreserveEvents", True), Prop("CompressNexus", False)],
    per_member=False,
)(_save_alg)

_LOAD = [
    Prop("Filename"),
    Prop("OutputWorkspace", kind=OUT),
    Prop("SpectrumMin", None),
    Prop("SpectrumMax", None),
    Prop("SpectrumList", None),
    Prop("EntryNumber", 0),
]


@algorithm("LoadNexus", list(_LOAD), per_member=False)
def _load_nexus(Filename, OutputWorkspace, SpectrumMin, SpectrumMax, SpectrumList, EntryNumber):
    """Read a workspace saved by SaveNexus (a group when the file holds several)."""
    return _select(load(str(Filename), int(EntryNumber or 0)), SpectrumMin, SpectrumMax, SpectrumList)


algorithm("LoadNexusProcessed", [*_LOAD, Prop("LoadHistory", True)], per_member=False)(
    lambda LoadHistory=True, **kw: _load_nexus(**kw)
)


@algorithm(
    "Load",
    [Prop("Filename"), Prop("OutputWorkspace", kind=OUT), Prop("LoaderName", ""), Prop("LoaderVersion", -1)],
    per_member=False,
)
def _load_any(Filename, OutputWorkspace, LoaderName, LoaderVersion):
    """Load a file: livereduce's processed NeXus (.nxs / .h5) files."""
    name = str(Filename)
    if not name.lower().endswith((".nxs", ".h5", ".hdf5", ".nx5", ".hdf")):
        raise AlgorithmError(
            f"Load: the embedded engine loads only processed NeXus files (.nxs), not '{name}'; "
            f"run with engine 'mantid' where Mantid is installed for other formats"
        )
    return load(name)
