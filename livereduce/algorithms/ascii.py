"""SaveAscii and LoadAscii (Mantid's version 2 layout): a header line, then per spectrum its number and X, Y, E rows.

X is the bin centre for histogram data (as Mantid writes); columns are joined by the Separator (default CSV
","); numbers use 6 significant digits unless Precision is given, as a C++ stream does by default.
WriteXError adds a DX column, which is 0 here (livereduce workspaces carry no x resolution).
LoadAscii reads that layout back; its X are points, which become bin edges by ConvertToHistogram's rule
(exactly the saved edges when the bins were uniform), as livereduce workspaces hold bin edges.
"""

from __future__ import annotations

import os

import numpy as np

from livereduce.algorithms._util import index_range, int_list
from livereduce.algorithms.product_file import product_file
from livereduce.algorithms.registry import IN, OUT, Prop, algorithm
from livereduce.errors import AlgorithmError
from livereduce.workspace.base import UNITS
from livereduce.workspace.events import EventWorkspace
from livereduce.workspace.histogram import HistogramWorkspace
from livereduce.workspace.spectra import Spectra

SEPARATORS = {"CSV": ",", "Tab": "\t", "Space": " ", "Colon": ":", "SemiColon": ";"}


def save_ascii(
    ws,
    filename: str,
    separator: str = "CSV",
    custom: str = "",
    comment: str = "#",
    write_x_error: bool = False,
    write_spectrum_id: bool = True,
    precision=None,
    scientific: bool = False,
    column_header: bool = True,
    indices=None,
    append: bool = False,
) -> None:
    sep = custom if separator == "UserDefined" else SEPARATORS.get(separator)
    if sep is None or sep == "":
        raise AlgorithmError(
            f"SaveAscii: unknown Separator {separator!r}; use one of "
            f"{', '.join([*SEPARATORS, 'UserDefined'])}"
        )
    folder = os.path.dirname(os.path.abspath(filename))
    if not os.path.isdir(folder):
        raise AlgorithmError(f"SaveAscii: directory '{folder}' does not exist")
    h = ws.histogram() if isinstance(ws, EventWorkspace) else ws
    idx = np.arange(h.getNumberHistograms()) if indices is None else indices
    digits = 6 if precision is None else int(precision)
    fmt = f"%.{digits}{'e' if scientific else 'g'}"
    e2 = h.edges_2d()
    cols = ["X", "Y", "E"] + (["DX"] if write_x_error else [])
    with product_file(filename, append=append) as temp, open(temp, "a", encoding="utf-8") as fh:
        if column_header:
            fh.write(f"{comment} " + f" {sep} ".join(cols) + "\n")
        for i in idx:
            if write_spectrum_id:
                fh.write(f"{int(h.spectra.numbers[i])}\n")
            x = (
                h.readX(i) if not h.isHistogramData() else 0.5 * (e2[i, :-1] + e2[i, 1:])
            )  # points as they are
            block = [x, h.values[i], np.sqrt(h.variances[i])]
            if write_x_error:
                block.append(np.zeros_like(x))
            np.savetxt(fh, np.column_stack(block), fmt=fmt, delimiter=sep)


@algorithm(
    "SaveAscii",
    [
        Prop("InputWorkspace", kind=IN),
        Prop("Filename"),
        Prop("WorkspaceIndexMin", 0),
        Prop("WorkspaceIndexMax", None),
        Prop("SpectrumList", None),
        Prop("Precision", None),
        Prop("ScientificFormat", False),
        Prop("WriteXError", False),
        Prop("WriteSpectrumID", True),
        Prop("CommentIndicator", "#"),
        Prop("Separator", "CSV"),
        Prop("CustomSeparator", ""),
        Prop("ColumnHeader", True),
        Prop("AppendToFile", False),
    ],
    per_member=False,
)
def _save_ascii_alg(
    InputWorkspace,
    Filename,
    WorkspaceIndexMin,
    WorkspaceIndexMax,
    SpectrumList,
    Precision,
    ScientificFormat,
    WriteXError,
    WriteSpectrumID,
    CommentIndicator,
    Separator,
    CustomSeparator,
    ColumnHeader,
    AppendToFile,
):
    """Write X, Y, E columns, one block per spectrum, to a text file."""
    ws = InputWorkspace
    if hasattr(ws, "members"):
        raise AlgorithmError("SaveAscii: cannot save a workspace group; save its members one by one")
    idx = None
    if SpectrumList:
        wanted = set(int_list(SpectrumList, "SpectrumList"))
        idx = np.array([i for i, n in enumerate(ws.spectra.numbers) if int(n) in wanted], np.int64)
    elif WorkspaceIndexMin or WorkspaceIndexMax is not None:
        idx = index_range(ws, WorkspaceIndexMin, WorkspaceIndexMax, None, "SaveAscii")
    save_ascii(
        ws,
        str(Filename),
        Separator,
        CustomSeparator,
        CommentIndicator,
        bool(WriteXError),
        bool(WriteSpectrumID),
        Precision,
        bool(ScientificFormat),
        bool(ColumnHeader),
        idx,
        bool(AppendToFile),
    )


# -- LoadAscii (version 2) ----------------------------------------------------------------------------


def _split(line: str, sep: str | None) -> list[str]:
    return [p for p in (line.split() if sep is None else line.split(sep)) if p.strip()]


def _guess_separator(lines: list[str]) -> str | None:
    """Automatic: the first of , tab ; : that a data line holds, else whitespace."""
    for line in lines:
        for sep in (",", "\t", ";", ":"):
            if sep in line:
                return sep
    return None


def points_to_edges(x: np.ndarray) -> np.ndarray:
    """Bin edges around points (ConvertToHistogram's rule): midpoints between neighbours, the ends half a step
    out; one point gets the bin [x - 0.5, x + 0.5]."""
    if x.size == 1:
        return np.array([x[0] - 0.5, x[0] + 0.5])
    mid = 0.5 * (x[1:] + x[:-1])
    return np.concatenate([[2 * x[0] - mid[0]], mid, [2 * x[-1] - mid[-1]]])


def load_ascii(
    filename: str, separator: str, custom: str, comment: str, unit: str, skip: int, distribution: bool
):
    if not os.path.isfile(filename):
        raise AlgorithmError(f"LoadAscii: file '{filename}' does not exist")
    with open(filename, encoding="utf-8", errors="replace") as fh:
        lines = [ln.rstrip("\n") for ln in fh][int(skip or 0) :]
    lines = [ln for ln in lines if not (comment and ln.lstrip().startswith(comment))]
    if separator == "Automatic":
        sep = _guess_separator([ln for ln in lines if ln.strip()])
    elif separator == "UserDefined":
        sep = custom or None
    elif separator in SEPARATORS:
        sep = None if separator == "Space" else SEPARATORS[separator]
    else:
        raise AlgorithmError(f"LoadAscii: unknown Separator {separator!r}")
    numbers: list[int] = []
    blocks: list[list[list[float]]] = []
    for n, line in enumerate(lines, 1 + int(skip or 0)):
        cells = _split(line, sep)
        if not cells:  # a blank line starts a new spectrum
            if blocks and blocks[-1]:
                blocks.append([])
                numbers.append(len(numbers) + 1)
            continue
        try:
            values = [float(c) for c in cells]
        except ValueError:
            raise AlgorithmError(f"LoadAscii: line {n} of '{filename}' is not numbers: {line!r}") from None
        if len(values) == 1:  # a spectrum number
            if blocks and not blocks[-1]:
                numbers[-1] = int(values[0])
            else:
                blocks.append([])
                numbers.append(int(values[0]))
            continue
        if not 2 <= len(values) <= 4:
            raise AlgorithmError(f"LoadAscii: line {n} has {len(values)} columns; expected X, Y[, E[, DX]]")
        if not blocks:
            blocks.append([])
            numbers.append(1)
        blocks[-1].append(values)
    while blocks and not blocks[-1]:
        blocks.pop()
        numbers.pop()
    if not blocks:
        raise AlgorithmError(f"LoadAscii: no data in '{filename}'")
    sizes = {len(b) for b in blocks}
    widths = {len(r) for b in blocks for r in b}
    if len(sizes) != 1 or len(widths) != 1:
        raise AlgorithmError("LoadAscii: every spectrum must have the same number of rows and columns")
    data = np.array(blocks, float)  # [spectrum, row, column]
    x, y = data[:, :, 0], data[:, :, 1]
    e = data[:, :, 2] if data.shape[2] > 2 else np.zeros_like(y)
    edges = np.array([points_to_edges(row) for row in x])
    if np.all(edges == edges[0]):
        edges = edges[0]
    unit_id = unit if unit in UNITS else "Empty"
    spectra = Spectra.one_to_one(np.arange(1, len(numbers) + 1), numbers=numbers)
    return HistogramWorkspace(y, e * e, edges, spectra, None, unit_id, distribution=distribution)


@algorithm(
    "LoadAscii",
    [
        Prop("Filename"),
        Prop("OutputWorkspace", kind=OUT),
        Prop("Separator", "Automatic"),
        Prop("CustomSeparator", ""),
        Prop("CommentIndicator", "#"),
        Prop("Unit", "Energy"),
        Prop("SkipNumLines", 0),
        Prop("ForceDistributionTrue", False),
    ],
    per_member=False,
)
def _load_ascii_alg(
    Filename,
    OutputWorkspace,
    Separator,
    CustomSeparator,
    CommentIndicator,
    Unit,
    SkipNumLines,
    ForceDistributionTrue,
):
    """Read X, Y[, E[, DX]] columns, one block per spectrum (a line with one integer, or a blank line, starts
    the next), as SaveAscii writes them."""
    return load_ascii(
        str(Filename),
        str(Separator),
        str(CustomSeparator),
        str(CommentIndicator),
        str(Unit),
        int(SkipNumLines or 0),
        bool(ForceDistributionTrue),
    )
