"""Plus, Minus, Multiply, Divide, NormaliseByCurrent, and `binary_op` behind `ws1 + ws2`, `ws * 2.0`.

Uncertainties propagate as Mantid and scipp do: σ² adds for ±; relative errors add in quadrature for × and ÷
(σ²(ab) = σa²b² + σb²a², σ²(a/b) = σa²/b² + σb²a²/b⁴); a plain number carries no error. Events: events ± events
concatenate (the subtracted events get weight −1), events × or ÷ a number become weighted events; any other
mix with events histograms them first (with the other operand's edges when it is a histogram). Shapes must
match, except that the right-hand side may be one spectrum or one bin (broadcast, as Mantid allows).
"""

from __future__ import annotations

import os
import sys
import types

import numpy as np

from livereduce.algorithms.registry import IN, OUT, Prop, algorithm, lhs_names
from livereduce.errors import AlgorithmError
from livereduce.workspace import base as workspace_base
from livereduce.workspace.ads import mtd
from livereduce.workspace.events import EventColumns, EventWorkspace
from livereduce.workspace.group import WorkspaceGroup
from livereduce.workspace.histogram import HistogramWorkspace

OPS = ("Plus", "Minus", "Multiply", "Divide")
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _is_number(x) -> bool:
    return isinstance(x, (int, float, np.number)) and not isinstance(x, bool)


def binary_op(op: str, lhs, rhs, inplace: bool = False):
    """`lhs op rhs` for workspaces, groups and numbers. The result is a new workspace (or `lhs` itself,
    changed, when `inplace`). Called from a user's `w3 = w1 + w2`, it is also registered in `mtd` as `w3`."""
    result = compute(op, lhs, rhs, inplace)
    if not inplace:
        frame: types.FrameType | None = sys._getframe(1)
        while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
            frame = frame.f_back  # skip our own frames (base.__add__ → _arith → here)
        names = lhs_names(frame) if frame is not None else ()
        if names:
            mtd.addOrReplace(names[0], result)
    return result


workspace_base.ARITHMETIC = binary_op  # `ws1 + ws2` in scripts


def compute(op: str, lhs, rhs, inplace: bool = False):
    if op not in OPS:
        raise AlgorithmError(f"unknown binary operation '{op}'; expected one of {', '.join(OPS)}")
    if isinstance(lhs, WorkspaceGroup) or isinstance(rhs, WorkspaceGroup):
        return _group_op(op, lhs, rhs, inplace)
    if _is_number(lhs) and _is_number(rhs):
        raise AlgorithmError(f"{op}: at least one operand must be a workspace")
    if isinstance(lhs, EventWorkspace) or isinstance(rhs, EventWorkspace):
        out = _event_op(op, lhs, rhs, inplace)
        if out is not None:
            return out
        lhs, rhs = _histogrammed(lhs, rhs)
    return _hist_op(op, lhs, rhs, inplace)


def _group_op(op, lhs, rhs, inplace):
    lg, rg = isinstance(lhs, WorkspaceGroup), isinstance(rhs, WorkspaceGroup)
    if lg and rg and len(lhs) != len(rhs):
        raise AlgorithmError(f"{op}: workspace groups differ in size ({len(lhs)} and {len(rhs)})")
    n = len(lhs) if lg else len(rhs)
    members = [compute(op, lhs[i] if lg else lhs, rhs[i] if rg else rhs, inplace and lg) for i in range(n)]
    if inplace and lg:
        return lhs
    return WorkspaceGroup(members)


def _event_op(op, lhs, rhs, inplace):
    """Operations that keep events; None when the operands must be histogrammed first."""
    if isinstance(lhs, EventWorkspace) and isinstance(rhs, EventWorkspace) and op in ("Plus", "Minus"):
        if lhs.getNumberHistograms() != rhs.getNumberHistograms():
            raise AlgorithmError(
                f"{op}: event workspaces have {lhs.getNumberHistograms()} and "
                f"{rhs.getNumberHistograms()} spectra; they must match"
            )
        if lhs.x_unit != rhs.x_unit:
            raise AlgorithmError(f"{op}: x units differ ({lhs.x_unit.unit_id} and {rhs.x_unit.unit_id})")
        add = rhs.events
        if op == "Minus":
            w = np.ones(len(add)) if add.weights is None else add.weights
            e2 = np.ones(len(add)) if add.err2 is None else add.err2
            add = add.replaced(weights=-w, err2=e2)
        target = lhs if inplace else lhs.with_events(lhs.events.copy())
        if target.events.weights is None and add.weights is not None:
            target.events = _weighted(target.events)  # both sides weighted before appending
        elif target.events.weights is not None and add.weights is None:
            add = _weighted(add)
        target.events.append(add)
        target._order = None
        target.edges = _widen(lhs.edges, rhs.edges)
        if op == "Plus":
            target.run_info.merge(rhs.run_info)
        return target
    if (op in ("Multiply", "Divide") and isinstance(lhs, EventWorkspace) and _is_number(rhs)) or (
        op == "Multiply" and _is_number(lhs) and isinstance(rhs, EventWorkspace)
    ):
        ws, s = (lhs, float(rhs)) if isinstance(lhs, EventWorkspace) else (rhs, float(lhs))
        f = s if op == "Multiply" else 1.0 / s
        ev = ws.events
        w = np.ones(len(ev)) if ev.weights is None else ev.weights
        e2 = np.ones(len(ev)) if ev.err2 is None else ev.err2
        scaled = ev.replaced(weights=w * f, err2=e2 * f * f)
        if inplace and ws is lhs:
            lhs.events = scaled
            lhs._order = None
            return lhs
        return ws.with_events(scaled)
    return None


def _weighted(ev: EventColumns) -> EventColumns:
    ones = np.ones(len(ev))
    return ev.replaced(weights=ones, err2=ones)


def _widen(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The default single bin widens to hold both operands' events; any other binning is the LHS's."""
    if a.ndim == 1 and b.ndim == 1 and a.size == 2 and b.size == 2:
        return np.array([min(a[0], b[0]), max(a[1], b[1])])
    return a


def _histogrammed(lhs, rhs):
    if isinstance(lhs, EventWorkspace):
        lhs = lhs.histogram(rhs.edges if isinstance(rhs, HistogramWorkspace) else None)
    if isinstance(rhs, EventWorkspace):
        rhs = rhs.histogram(lhs.edges if isinstance(lhs, HistogramWorkspace) else None)
    return lhs, rhs


def _arrays(x):
    if _is_number(x):
        return np.float64(x), np.float64(0.0)
    return x.values, x.variances


def _hist_op(op, lhs, rhs, inplace):
    ws = lhs if isinstance(lhs, HistogramWorkspace) else rhs
    if isinstance(lhs, HistogramWorkspace) and isinstance(rhs, HistogramWorkspace):
        _check_compatible(op, lhs, rhs)
    a, va = _arrays(lhs)
    b, vb = _arrays(rhs)
    with np.errstate(divide="ignore", invalid="ignore"):
        if op == "Plus":
            y, v = a + b, va + vb
        elif op == "Minus":
            y, v = a - b, va + vb
        elif op == "Multiply":
            y, v = a * b, va * b * b + vb * a * a
        else:
            y, v = a / b, va / (b * b) + vb * a * a / (b * b * b * b)
    y, v = np.broadcast_to(y, ws.values.shape), np.broadcast_to(v, ws.values.shape)
    if inplace and ws is lhs:
        lhs.values[...] = y
        lhs.variances[...] = v
        out = lhs
    else:
        out = ws.with_data(np.array(y), np.array(v), ws.edges.copy())
    if op == "Plus" and isinstance(rhs, HistogramWorkspace) and rhs is not ws:
        _merge_runs(out, rhs)
    return out


def _merge_runs(out, rhs) -> None:
    run = out.run_info
    charge = None
    if run.hasProperty("gd_prtn_chrg") and rhs.run_info.hasProperty("gd_prtn_chrg"):
        charge = float(run["gd_prtn_chrg"].value) + float(rhs.run_info["gd_prtn_chrg"].value)
    run.merge(rhs.run_info)
    if charge is not None:
        run.set("gd_prtn_chrg", charge, run["gd_prtn_chrg"].unit)


def _check_compatible(op, a: HistogramWorkspace, b: HistogramWorkspace) -> None:
    (na, ba), (nb, bb) = a.values.shape, b.values.shape
    if nb not in (1, na) or bb not in (1, ba):
        raise AlgorithmError(
            f"{op}: shapes differ: '{a.name()}' has {na} spectra × {ba} bins, '{b.name()}' "
            f"{nb} × {bb}; the right-hand side must match or be one spectrum / one bin"
        )
    if a.x_unit != b.x_unit:
        raise AlgorithmError(f"{op}: x units differ ({a.x_unit.unit_id} and {b.x_unit.unit_id})")
    if bb == ba and ba > 1:
        ea, eb = a.edges_2d(), b.edges_2d()
        if not np.allclose(ea, np.broadcast_to(eb, ea.shape) if nb == 1 else eb, rtol=1e-9, atol=0):
            raise AlgorithmError(
                f"{op}: bin edges of '{a.name()}' and '{b.name()}' differ; Rebin both with the "
                f"same Params first"
            )


_PROPS = [
    Prop("LHSWorkspace", kind=IN),
    Prop("RHSWorkspace", kind=IN),
    Prop("OutputWorkspace", kind=OUT),
    Prop("AllowDifferentNumberSpectra", False),
    Prop("ClearRHSWorkspace", False),
]


def _make(op: str):
    def impl(LHSWorkspace, RHSWorkspace, OutputWorkspace, AllowDifferentNumberSpectra, ClearRHSWorkspace):
        inplace = (
            not _is_number(LHSWorkspace) and bool(OutputWorkspace) and LHSWorkspace.name() == OutputWorkspace
        )
        return compute(op, LHSWorkspace, RHSWorkspace, inplace)

    impl.__doc__ = f"LHSWorkspace {op} RHSWorkspace (workspaces of matching shape, or a number)."
    algorithm(op, list(_PROPS), per_member=False)(impl)


for _op in OPS:
    _make(_op)


def normalise_by_current(ws):
    charge = ws.getRun().getProtonCharge()
    if not charge:
        raise AlgorithmError(
            f"NormaliseByCurrent: the proton charge of '{ws.name()}' is 0 (no gd_prtn_chrg "
            f"property and no proton_charge log); cannot normalise"
        )
    out = compute("Divide", ws, float(charge))
    out.run_info.set("NormalizationFactor", float(charge))
    return out


@algorithm(
    "NormaliseByCurrent",
    [Prop("InputWorkspace", kind=IN), Prop("OutputWorkspace", kind=OUT), Prop("RecalculatePCharge", False)],
)
def _normalise_alg(InputWorkspace, OutputWorkspace, RecalculatePCharge):
    """Divide by the run's integrated proton charge (µA·h); an error when it is 0."""
    return normalise_by_current(InputWorkspace)
