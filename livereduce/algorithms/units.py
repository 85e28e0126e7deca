"""ConvertUnits (elastic): TOF ↔ Wavelength, dSpacing, Energy, MomentumTransfer.

Every unit is x = a·t^p of the time of flight t (µs) with a per-spectrum factor a from the geometry
(L = L1 + L2, θ = 2θ/2):  λ = h t/(m_n L);  d = λ/(2 sin θ);  E = ½ m_n (L/t)²;  Q = 4π sin θ/λ.
Events are converted one by one; histogram edges are converted per spectrum (2-D), with the bins reversed
where the conversion decreases (E, Q), so edges always increase.
"""

from __future__ import annotations

import numpy as np

from livereduce.algorithms._util import require_matrix
from livereduce.algorithms.binning import rebin
from livereduce.algorithms.registry import IN, OUT, Prop, algorithm
from livereduce.errors import AlgorithmError
from livereduce.workspace.base import UNITS
from livereduce.workspace.events import EventWorkspace

# CODATA 2022
PLANCK = 6.62607015e-34  # J s
NEUTRON_MASS = 1.67492750056e-27  # kg
ELECTRON_VOLT = 1.602176634e-19  # J

K_LAMBDA = PLANCK / NEUTRON_MASS * 1e4  # λ[Å] = K_LAMBDA · t[µs] / L[m]
K_ENERGY = 0.5 * NEUTRON_MASS * 1e12 / (ELECTRON_VOLT * 1e-3)  # E[meV] = K_ENERGY · L[m]² / t[µs]²

_POWER = {"TOF": 1, "Wavelength": 1, "dSpacing": 1, "Energy": -2, "MomentumTransfer": -1}
_NEEDS_ANGLE = {"dSpacing", "MomentumTransfer"}


def canonical_unit(name: str) -> str:
    for u in _POWER:
        if u.lower() == str(name).lower():
            return u
    raise AlgorithmError(f"ConvertUnits: unit '{name}' is not supported; supported: {', '.join(_POWER)}")


def factors(spectra, unit: str, ws_name: str = "") -> np.ndarray:
    """Per-spectrum a in x = a · t^p for `unit` (NaN-free, or AlgorithmError naming the missing geometry)."""
    if unit == "TOF":
        return np.ones(len(spectra))
    missing = []
    if not np.isfinite(spectra.l1):
        missing.append("L1 (source-sample distance)")
    bad_l2 = np.flatnonzero(~np.isfinite(spectra.l2))
    if bad_l2.size:
        missing.append(f"L2 for {bad_l2.size} spectra (e.g. spectrum {spectra.numbers[bad_l2[0]]})")
    if unit in _NEEDS_ANGLE:
        bad_tt = np.flatnonzero(~np.isfinite(spectra.two_theta))
        if bad_tt.size:
            missing.append(
                f"two_theta for {bad_tt.size} spectra (e.g. spectrum {spectra.numbers[bad_tt[0]]})"
            )
    if missing:
        need = "L1, L2 and two_theta" if unit in _NEEDS_ANGLE else "L1 and L2"
        raise AlgorithmError(
            f"ConvertUnits: converting to {unit} needs {need} of every spectrum; workspace "
            f"'{ws_name}' lacks {'; '.join(missing)} (the instrument geometry is not known)"
        )
    L = spectra.l1 + spectra.l2
    sin_t = np.sin(spectra.two_theta / 2) if unit in _NEEDS_ANGLE else np.nan
    if unit == "Wavelength":
        return K_LAMBDA / L
    if unit == "dSpacing":
        return K_LAMBDA / (L * 2 * sin_t)
    if unit == "Energy":
        return K_ENERGY * L * L
    return 4 * np.pi * sin_t * L / K_LAMBDA  # MomentumTransfer


def _convert(x: np.ndarray, a_from, p_from: int, a_to, p_to: int) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        t = x / a_from if p_from == 1 else (x / a_from) ** (1.0 / p_from)
        return a_to * t if p_to == 1 else a_to * t ** float(p_to)


def convert_units(ws, target: str, emode: str = "Elastic"):
    """`ws` with its x converted to `target` (a new workspace; the input is unchanged)."""
    require_matrix(ws, "ConvertUnits")
    if str(emode).lower() != "elastic":
        raise AlgorithmError(
            f"ConvertUnits: EMode '{emode}' (inelastic, needs EFixed) is not supported by the "
            f"embedded engine; only Elastic"
        )
    src, dst = canonical_unit(ws.x_unit.unit_id), canonical_unit(target)
    if src == dst:
        return ws.clone()
    a_from, a_to = factors(ws.spectra, src, ws.name()), factors(ws.spectra, dst, ws.name())
    p_from, p_to = _POWER[src], _POWER[dst]
    decreasing = (p_from > 0) != (p_to > 0)
    e2 = (
        ws.edges
        if ws.edges.ndim == 2
        else np.broadcast_to(ws.edges, (ws.getNumberHistograms(), ws.edges.size))
    )
    edges = _convert(e2, a_from[:, None], p_from, a_to[:, None], p_to)
    if decreasing:
        edges = edges[:, ::-1]
    edges = np.ascontiguousarray(edges)
    if isinstance(ws, EventWorkspace):
        ev = ws.events
        idx = ev.index.astype(np.intp)
        x = _convert(ev.x, a_from[idx], p_from, a_to[idx], p_to)
        out = ev.replaced(x=x)
        if decreasing:  # the old (inclusive) lower edge is now the exclusive upper one: keep its events in
            edges[:, -1] = np.nextafter(edges[:, -1], np.inf)
        return ws.with_events(out, edges=edges, unit_id=dst)
    y, v = ws.values, ws.variances
    if decreasing:
        y, v = y[:, ::-1], v[:, ::-1]
    return ws.with_data(np.ascontiguousarray(y), np.ascontiguousarray(v), edges, unit_id=dst)


@algorithm(
    "ConvertUnits",
    [
        Prop("InputWorkspace", kind=IN),
        Prop("OutputWorkspace", kind=OUT),
        Prop("Target"),
        Prop("EMode", "Elastic"),
        Prop("EFixed", None),
        Prop("AlignBins", False),
        Prop("ConvertFromPointData", True),
    ],
)
def _convert_units_alg(
    InputWorkspace, OutputWorkspace, Target, EMode, EFixed, AlignBins, ConvertFromPointData
):
    """Convert the x unit (elastic): TOF, Wavelength, dSpacing, Energy, MomentumTransfer."""
    out = convert_units(InputWorkspace, Target, EMode)
    if AlignBins and out.edges.ndim == 2:
        e = out.edges
        lo, hi = float(np.min(e[:, 0])), float(np.max(e[:, -1]))
        out = rebin(out, [lo, (hi - lo) / out.blocksize(), hi])
    return out


if not set(_POWER) <= set(UNITS):
    raise ImportError("units: a power law names a unit that UNITS does not define")
