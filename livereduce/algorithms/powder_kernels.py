"""CompressEvents for the powder path in compiled kernels: the same result as binning.compress_events (events of a
spectrum in the same tolerance-wide cell merged into one weighted event at their weighted mean x, with the summed
weight and variance and the earliest pulse; output ordered by spectrum, then cell), in O(n) passes and small
per-spectrum sorts instead of a lexsort over all events (AlignAndFocusPowder compresses twice per call: at 5·10^6
events the lexsort cost seconds).
"""

from __future__ import annotations

import numpy as np

from livereduce.workspace.events import EventColumns, EventWorkspace, group_by_spectrum
from livereduce.workspace.jit import njit


@njit(nogil=True)
def _merge(
    order, start, cell, x, w, e2, pulse, out_index, out_x, out_w, out_e2, out_pulse
):  # pragma: no cover
    """Per spectrum, sort its events by cell and merge equal cells; returns the number of merged events."""
    m = 0
    for k in range(start.size - 1):
        a, b = start[k], start[k + 1]
        if a == b:
            continue
        rows = order[a:b]
        rows = rows[np.argsort(cell[rows])]  # equal cells merge whatever their order
        j = 0
        while j < rows.size:
            c = cell[rows[j]]
            sw, se2, sx, plain, n = 0.0, 0.0, 0.0, 0.0, 0
            p = pulse[rows[j]]
            while j < rows.size and cell[rows[j]] == c:
                r = rows[j]
                sw += w[r]
                se2 += e2[r]
                sx += x[r] * w[r]
                plain += x[r]
                n += 1
                if pulse[r] < p:
                    p = pulse[r]
                j += 1
            out_index[m] = k
            out_x[m] = sx / sw if sw != 0 else plain / n
            out_w[m], out_e2[m], out_pulse[m] = sw, se2, p
            m += 1
    return m


def compress(ws: EventWorkspace, tolerance: float) -> EventWorkspace:
    """binning.compress_events(ws, tolerance) for tolerance > 0 with finite x, computed in kernels."""
    ev = ws.events
    n = len(ev)
    if n == 0:
        return ws.with_events(ev)
    x = ev.x
    cell = np.floor((x - x.min()) / tolerance).astype(np.int64)
    order, start = group_by_spectrum(ev.index, ws.getNumberHistograms())
    w = np.ones(n) if ev.weights is None else ev.weights
    e2 = np.ones(n) if ev.err2 is None else ev.err2
    out = (np.empty(n, np.uint32), np.empty(n), np.empty(n), np.empty(n), np.empty(n, np.uint32))
    m = _merge(order, start, cell, x, w, e2, ev.pulse, *out)
    idx, mx, mw, me2, mp = (a[:m] for a in out)
    return ws.with_events(EventColumns(idx, mx, mp, ev.pulse_times, mw, me2))
