"""Events → histogram, in place, into preallocated arrays (the per-event hot path).

Rules from shared/reference/performance.md: histogram into the accumulator in place (never build a full-size
histogram per chunk and add it); keep scipp off this path; no runtime integer division per event. Bin search
is a multiply (linear or logarithmic edges) corrected against the true edges, or for linear edges a float
division where a once-per-edges check proves it exact, so an event exactly on an edge lands where Mantid puts
it: bin i holds edges[i] <= x < edges[i+1].
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from livereduce.workspace.jit import njit

LINEAR, LOG, GENERAL = 0, 1, 2


def edge_kind(edges: np.ndarray) -> tuple[int, float, float]:
    """(kind, origin, inverse step) for a 1-D edge array: linear and log edges get an O(1) bin lookup."""
    if edges.size < 2:
        return GENERAL, 0.0, 0.0
    d = np.diff(edges)
    if np.allclose(d, d[0], rtol=1e-9, atol=0.0) and d[0] > 0:
        return LINEAR, float(edges[0]), 1.0 / float(d[0])
    if edges[0] > 0:
        r = edges[1:] / edges[:-1]
        if np.allclose(r, r[0], rtol=1e-9, atol=0.0) and r[0] > 1:
            return LOG, float(edges[0]), 1.0 / float(np.log(r[0]))
    return GENERAL, 0.0, 0.0


@njit(nogil=True, inline="always")
def _exact_bin(v, edges, nb):
    """Bin of v by binary search on the true edges (edges[i] <= v < edges[i+1]); -1 outside or NaN."""
    if not (v >= edges[0] and v < edges[nb]):
        return -1
    lo, hi = 0, nb
    while hi - lo > 1:
        mid = (lo + hi) >> 1
        if edges[mid] <= v:
            lo = mid
        else:
            hi = mid
    return lo


@njit(nogil=True, inline="always")
def _bin_of(x, edges, kind, origin, inv):
    """Bin of x: one multiply for linear or log edges; the true edges decide only near an edge."""
    nb = edges.size - 1
    if kind == GENERAL:
        return _exact_bin(x, edges, nb)
    if not (x >= edges[0]) or not (x < edges[nb]):  # also rejects NaN
        return -1
    t = (x - origin) * inv if kind == LINEAR else np.log(x / origin) * inv
    b = int(t)
    f = t - b
    # the multiply can be one off only next to an edge; look at the true edges just there, so the common
    # case does not wait on a table read before its store
    if f < 1e-6 or f > 1.0 - 1e-6 or b >= nb:
        return _exact_bin(x, edges, nb)
    return b


@njit(nogil=True)
def _histogram(index, x, weights, err2, edges, kind, origin, inv, values, variances):
    nspec = values.shape[0]
    weighted = weights.size > 0
    with_var = variances.size > 0
    missed = 0
    for i in range(index.size):
        s = index[i]
        b = _bin_of(x[i], edges, kind, origin, inv)
        if b < 0 or s >= nspec:
            missed += 1
            continue
        if weighted:
            values[s, b] += weights[i]
            if with_var:
                variances[s, b] += err2[i]
        else:
            values[s, b] += 1.0
            if with_var:
                variances[s, b] += 1.0
    return missed


@njit(nogil=True)
def _histogram_ragged(index, x, weights, err2, edges2d, values, variances):
    weighted = weights.size > 0
    with_var = variances.size > 0
    missed = 0
    for i in range(index.size):
        s = index[i]
        b = _bin_of(x[i], edges2d[s], 2, 0.0, 0.0)
        if b < 0:
            missed += 1
            continue
        w = weights[i] if weighted else 1.0
        values[s, b] += w
        if with_var:
            variances[s, b] += err2[i] if weighted else 1.0
    return missed


_BLOCK = 2048  # events whose table offsets are found before they are added: small enough to stay in L1


@njit(nogil=True)
def _count_linear(index, x, x0, step, inv, edges, exact, counts, variances, lo, hi):
    """Unweighted events of spectra lo <= s < hi into counts[spectrum, bin] (and variances, when not empty)
    for linear edges, in place; returns the events of those spectra missed (hi past the last spectrum: also
    the events of spectra that do not exist).

    Two phases per block of events: first each event's offset in the table (a streaming pass), then the
    additions alone. The second loop is a few instructions per event, so the CPU keeps many more cache
    misses in flight than when bin arithmetic sits between them: 1.9x a one-loop kernel, 1.45x np.add.at
    with its index precomputed (benchmarks/bench_rebin.py). When `exact` (division_is_exact: checked once per
    edge array) the bin is int((x - x0) / step), which then puts every value where edges[i] <= x < edges[i+1]
    says; otherwise it is one multiply by `inv`, and a value within 1e-6 of a bin width of an edge consults
    the true edges.
    """
    nspec, nb = counts.shape
    flat = counts.ravel()
    vflat = variances.ravel()
    with_var = variances.size > 0
    x_end = edges[nb]
    missed = 0
    offsets = np.empty(_BLOCK, np.int64)
    n = index.size
    for start in range(0, n, _BLOCK):
        m = min(_BLOCK, n - start)
        for j in range(m):
            s = index[start + j]
            v = x[start + j]
            k = -1
            if s >= lo and s < hi:
                if v >= x0 and v < x_end and s < nspec:  # also rejects NaN
                    if exact:
                        b = int((v - x0) / step)
                    else:
                        t = (v - x0) * inv
                        b = int(t)
                        f = t - b
                        if f < 1e-6 or f > 1.0 - 1e-6 or b >= nb:
                            b = _exact_bin(v, edges, nb)
                    k = s * nb + b
                else:
                    missed += 1
            offsets[j] = k
        for j in range(m):
            k = offsets[j]
            if k >= 0:
                flat[k] += 1.0
                if with_var:
                    vflat[k] += 1.0
    return missed


def division_is_exact(edges: np.ndarray) -> bool:
    """Whether int((x - edges[0]) / step) is the bin edges[i] <= x < edges[i+1] for every x in range.
    Rounding is monotone, so it suffices that each inner edge maps to its own index and the float just below
    each edge to the one before (true of integer steps on integer origins; not of e.g. 0.1 steps)."""
    nb = edges.size - 1
    step = edges[1] - edges[0]
    k = np.arange(1, nb + 1, dtype=np.float64)
    at = np.floor((edges[1:nb] - edges[0]) / step)
    below = np.floor((np.nextafter(edges[1:], -np.inf) - edges[0]) / step)
    return bool(np.array_equal(at, k[:-1]) and np.array_equal(below, k - 1))


# Two threads, each owning a block of spectra (no two write one row: no atomics, no reduction), pay only
# from this many events on. One thread is the default: on the 2-core target the other core receives, and
# two threads measured slower than one there (benchmarks/bench_rebin.py, docs/performance.md).
PARALLEL_MIN_EVENTS = 1 << 20
THREADS = 1
_pool: ThreadPoolExecutor | None = None


def _count_linear_split(index, x, x0, inv, edges, counts, variances, threads: int) -> int:
    global _pool
    nspec = counts.shape[0]
    exact, step = division_is_exact(edges), edges[1] - edges[0]
    if threads < 2 or index.size < PARALLEL_MIN_EVENTS or nspec < threads:
        return int(_count_linear(index, x, x0, step, inv, edges, exact, counts, variances, 0, _NO_LIMIT))
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=threads - 1, thread_name_prefix="histogram")
    cuts = [nspec * k // threads for k in range(threads)] + [_NO_LIMIT]
    futures = [
        _pool.submit(
            _count_linear, index, x, x0, step, inv, edges, exact, counts, variances, cuts[k], cuts[k + 1]
        )
        for k in range(1, threads)
    ]
    missed = int(_count_linear(index, x, x0, step, inv, edges, exact, counts, variances, cuts[0], cuts[1]))
    return missed + sum(int(f.result()) for f in futures)


_NO_LIMIT = 1 << 40  # past every uint32 workspace index
_EMPTY = np.empty(0, np.float64)


def histogram_into(
    values: np.ndarray,
    variances: np.ndarray | None,
    index: np.ndarray,
    x: np.ndarray,
    edges: np.ndarray,
    weights: np.ndarray | None = None,
    err2: np.ndarray | None = None,
    threads: int = THREADS,
) -> int:
    """Add events (workspace index, x) into values[spectrum, bin] (and variances) in place.

    `edges` is 1-D (shared) or 2-D (one row per spectrum). Unweighted events count 1 with variance 1.
    Returns the number of events outside the edges (not counted, as in Mantid). Unweighted events on linear
    edges use up to `threads` threads (from PARALLEL_MIN_EVENTS events), each owning a block of spectra.
    """
    if index.size == 0:
        return 0
    w = _EMPTY if weights is None else np.ascontiguousarray(weights, np.float64)
    e2 = (w if err2 is None else np.ascontiguousarray(err2, np.float64)) if weights is not None else _EMPTY
    var = _EMPTY.reshape(0, 0) if variances is None else variances
    edges = np.ascontiguousarray(edges, np.float64)
    if edges.ndim == 2:
        return int(_histogram_ragged(index, x, w, e2, edges, values, var))
    kind, origin, inv = edge_kind(edges)
    contiguous = values.flags.c_contiguous and var.flags.c_contiguous  # the kernel writes flat views
    if kind == LINEAR and weights is None and contiguous:  # the common Rebin and accumulation case, fastest
        return _count_linear_split(index, x, origin, inv, edges, values, var, threads)
    return int(_histogram(index, x, w, e2, edges, kind, origin, inv, values, var))
