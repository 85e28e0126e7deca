"""SaveNexus / SaveNexusProcessed and LoadNexus / LoadNexusProcessed / Load: Mantid's processed-NeXus files.

The layout (see processed_nexus.py) is Mantid's, so Mantid Workbench opens live products, and files Mantid
wrote load here. Append adds an entry after the file's last, as Mantid's SaveNexusProcessed does.
"""

from __future__ import annotations

import os

import h5py
import numpy as np

from livereduce.algorithms._util import index_range, int_list
from livereduce.algorithms.ascii import load_ascii
from livereduce.algorithms.event_nexus import bin_events, load_event_nexus
from livereduce.algorithms.processed_nexus import next_entry, read_file, text, write_entry
from livereduce.algorithms.product_file import product_file
from livereduce.algorithms.registry import IN, OUT, Prop, algorithm
from livereduce.algorithms.spectra_ops import extract
from livereduce.errors import AlgorithmError
from livereduce.workspace.group import WorkspaceGroup


def save(ws, filename: str, title: str = "", preserve_events: bool = True, append: bool = False) -> None:
    folder = os.path.dirname(os.path.abspath(filename))
    if not os.path.isdir(folder):
        raise AlgorithmError(f"SaveNexus: directory '{folder}' does not exist")
    members = list(ws) if isinstance(ws, WorkspaceGroup) else [ws]
    append = append and os.path.isfile(filename)
    with product_file(filename, append=append) as temp, h5py.File(temp, "a" if append else "w") as f:
        if not append:
            f.attrs["NX_class"] = np.bytes_(b"NXroot")
            f.attrs["creator"] = np.bytes_(b"livereduce")
            f.attrs["livereduce_group"] = int(isinstance(ws, WorkspaceGroup))
        first = next_entry(f)
        for k, m in enumerate(members):
            write_entry(f, first + k, m, title, preserve_events)


def load(filename: str, entry_number: int = 0):
    if not os.path.isfile(filename):
        raise AlgorithmError(f"LoadNexus: file '{filename}' does not exist")
    try:
        f = h5py.File(filename, "r")
    except OSError as exc:
        raise AlgorithmError(f"LoadNexus: '{filename}' is not an HDF5/NeXus file ({exc})") from None
    with f:
        return read_file(f, filename, entry_number)


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
    """Write the workspace (or group) as Mantid's processed NeXus; Append adds entries to an existing file."""
    ws = InputWorkspace
    if WorkspaceIndexMin or WorkspaceIndexMax is not None or WorkspaceIndexList:
        ws = extract(
            ws, index_range(ws, WorkspaceIndexMin, WorkspaceIndexMax, WorkspaceIndexList, "SaveNexus")
        )
        ws._name = InputWorkspace.name()
    save(ws, str(Filename), Title, bool(PreserveEvents), bool(Append))


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
    """Read a processed NeXus file (a group when it holds several entries and EntryNumber is 0)."""
    return _select(load(str(Filename), int(EntryNumber or 0)), SpectrumMin, SpectrumMax, SpectrumList)


@algorithm(
    "LoadNexusProcessed", [*_LOAD, Prop("LoadHistory", True), Prop("FastMultiPeriod", True)], per_member=False
)
def _load_processed(LoadHistory, FastMultiPeriod, **kw):
    """Read a processed NeXus file, Mantid's or ours (a group when it holds several entries, EntryNumber 0)."""
    return _load_nexus(**kw)


@algorithm(
    "Load",
    [Prop("Filename"), Prop("OutputWorkspace", kind=OUT), Prop("LoaderName", ""), Prop("LoaderVersion", -1)],
    per_member=False,
)
def _load_any(Filename, OutputWorkspace, LoaderName, LoaderVersion):
    """Load a file: processed NeXus (.nxs / .h5) as Mantid or livereduce wrote it, raw event NeXus (as
    LoadEventNexus), or columns of text (.txt / .dat / .csv, as LoadAscii)."""
    name = str(Filename)
    if name.lower().endswith((".txt", ".dat", ".csv")):
        return load_ascii(name, "Automatic", "", "#", "Energy", 0, False)
    if not name.lower().endswith((".nxs", ".h5", ".hdf5", ".nx5", ".hdf")):
        raise AlgorithmError(
            f"Load: the embedded engine loads processed NeXus (.nxs) and text (.txt, .dat, .csv) files, not "
            f"'{name}'; run with engine 'mantid' where Mantid is installed for other formats"
        )
    if _is_event_file(name):
        return bin_events(load_event_nexus(name, "", [], True))
    return load(name)


def _is_event_file(name: str) -> bool:
    """A raw event NeXus file (NXevent_data banks, no processed entry): Load hands it to LoadEventNexus."""
    try:
        with h5py.File(name, "r") as f:
            if any(k.startswith("mantid_workspace_") for k in f):
                return False
            return any(
                isinstance(e, h5py.Group)
                and any(
                    isinstance(g, h5py.Group) and text(g.attrs.get("NX_class", "")) == "NXevent_data"
                    for g in e.values()
                )
                for e in f.values()
            )
    except OSError:
        return False
