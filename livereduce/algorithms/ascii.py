"""SaveAscii (Mantid's version 2 layout): a header line, then per spectrum its number and X, Y, E rows.

X is the bin centre for histogram data (as Mantid writes); columns are joined by the Separator (default CSV
","); numbers use 6 significant digits unless Precision is given, as a C++ stream does by default.
WriteXError adds a DX column, which is 0 here (livereduce workspaces carry no x resolution).
"""

from __future__ import annotations

import os

import numpy as np

from livereduce.algorithms._util import index_range, int_list
from livereduce.algorithms.product_file import product_file
from livereduce.algorithms.registry import IN, Prop, algorithm
from livereduce.errors import AlgorithmError
from livereduce.workspace.events import EventWorkspace

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
            x = 0.5 * (e2[i, :-1] + e2[i, 1:])
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
