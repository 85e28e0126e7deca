"""`mantid.simpleapi` for scripts: every supported algorithm, plus mtd and logger.

Unknown capitalised names resolve to a stub that raises UnsupportedAlgorithm when *called*, so
`from mantid.simpleapi import FitPeak` imports and the script fails on its own line with a clear message.
"""

from __future__ import annotations

from livereduce.algorithms import registry as _registry
from livereduce.mantidapi.kernel import config
from livereduce.mantidapi.logger import Logger, logger
from livereduce.workspace.ads import mtd

AnalysisDataService = mtd  # as mantid.api's: the registry instance
_ALGS = {name: _registry.get(name) for name in _registry.SUPPORTED}
globals().update(_ALGS)
_STUBS: dict = {}

__all__ = [*sorted(_ALGS), "AnalysisDataService", "Logger", "config", "logger", "mtd"]


def publish(name: str, function) -> None:
    """Make an algorithm added at run time (AlgorithmFactory.subscribe) importable from here."""
    globals()[name] = function
    _ALGS[name] = function
    if name not in __all__:
        __all__.append(name)


def __getattr__(name: str):
    if name[:1].isupper():
        if name in _registry.supported():  # subscribed since this module was imported
            publish(name, _registry.get(name))
            return _ALGS[name]
        if name not in _STUBS:
            _STUBS[name] = _registry.unsupported_stub(name)
        return _STUBS[name]
    raise AttributeError(
        f"mantid.simpleapi in livereduce's embedded engine has no attribute '{name}'; it "
        f"provides the algorithms {', '.join(sorted(_ALGS))} and mtd, logger, config"
    )


def __dir__():
    return list(__all__)
