"""The `mantid` import surface for user scripts when real Mantid is not installed.

`with script_imports():` makes `import mantid`, `from mantid.simpleapi import Rebin`, `from mantid.kernel
import logger`, `from mantid.api import mtd` ... resolve to livereduce's modules, by placing aliases in
`sys.modules` on entry and removing every `mantid*` entry on exit (nesting and threads are reference-counted).
If a real Mantid is importable it is never shadowed: the context manager then does nothing.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import sys
import threading
import types

from livereduce.mantidapi import api, dataobjects, kernel, simpleapi
from livereduce.mantidapi.static import unsupported_calls

__all__ = ["real_mantid_available", "script_imports", "unsupported_calls"]

_SUBMODULES = ("simpleapi", "kernel", "api", "dataobjects")
_lock = threading.Lock()
_depth = 0
_active = False


def real_mantid_available() -> bool:
    """True when `import mantid` would load a real Mantid (not our aliases)."""
    if _active:
        return False
    try:
        return importlib.util.find_spec("mantid") is not None
    except (ImportError, ValueError):
        return False


class _UnknownSubmodule(importlib.abc.MetaPathFinder):
    """`import mantid.plots` and the like: say what the embedded engine provides instead of a bare error."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname.startswith("mantid.") and fullname not in sys.modules:
            raise ModuleNotFoundError(
                f"No module named '{fullname}': livereduce's embedded engine provides only "
                f"{', '.join('mantid.' + s for s in _SUBMODULES)}; run with engine 'mantid' where Mantid is "
                f"installed",
                name=fullname,
            )


_FINDER = _UnknownSubmodule()


def _root_module() -> types.ModuleType:
    root = types.ModuleType("mantid", "livereduce's stand-in for the mantid package (embedded engine)")
    root.__path__ = []  # a package, so unknown submodules go through the finders

    def __getattr__(name):
        raise AttributeError(
            f"module 'mantid' in livereduce's embedded engine has no attribute '{name}'; it "
            f"provides simpleapi, kernel, api, dataobjects, logger, config, mtd, PropertyManagerDataService"
        )

    vars(root).update(
        __version__="0.0.0+livereduce",
        simpleapi=simpleapi,
        kernel=kernel,
        api=api,
        dataobjects=dataobjects,
        logger=kernel.logger,
        config=kernel.config,
        mtd=api.mtd,
        AnalysisDataService=api.AnalysisDataService,
        PropertyManagerDataService=api.PropertyManagerDataService,  # SNS powder scripts use mantid.<this>
        __getattr__=__getattr__,
    )
    return root


def _install() -> None:
    global _active
    sys.modules["mantid"] = _root_module()
    sys.modules["mantid.simpleapi"] = simpleapi
    sys.modules["mantid.kernel"] = kernel
    sys.modules["mantid.api"] = api
    sys.modules["mantid.dataobjects"] = dataobjects
    sys.meta_path.insert(0, _FINDER)
    _active = True


def _uninstall() -> None:
    global _active
    for name in [n for n in list(sys.modules) if n == "mantid" or n.startswith("mantid.")]:
        del sys.modules[name]
    with contextlib.suppress(ValueError):
        sys.meta_path.remove(_FINDER)
    _active = False


@contextlib.contextmanager
def script_imports():
    """Within the block, `mantid` imports resolve to livereduce (unless a real Mantid is installed)."""
    global _depth
    with _lock:
        if _depth == 0:
            if real_mantid_available():
                entered = False
            else:
                _install()
                entered = True
        else:
            entered = _active
        if entered:
            _depth += 1
    try:
        yield
    finally:
        if entered:
            with _lock:
                _depth -= 1
                if _depth == 0:
                    _uninstall()
