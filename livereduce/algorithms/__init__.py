"""The Mantid-compatible algorithm subset of the embedded engine.

`registry` maps Mantid names to callables (`get(name)`, `call(name, ...)`, `SUPPORTED`); each family module
also offers plain functions on workspace objects (no registry, no naming) for livereduce's own code, e.g.
`binning.rebin(ws, params)`, `binning.compress_events(ws, tolerance)`, `arithmetic.binary_op(op, a, b)`.
"""

from livereduce.algorithms.registry import SUPPORTED, call, get, spec

__all__ = ["SUPPORTED", "call", "get", "spec"]
