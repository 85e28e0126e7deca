"""STAND-IN for the `mantid` package, for livereduce's tests of its Mantid engine. THIS IS NOT MANTID.

Mantid cannot be installed on livereduce's build machines. This small package behaves as Mantid's
documentation says its live-data algorithms, algorithm manager, workspace registry (ADS), ConfigService and
logging behave, so that livereduce's Mantid engine (livereduce/engines/mantid.py) can be tested; nothing here
was run against or copied from Mantid. Tests put its directory (test/mantid_standin) first on sys.path or
PYTHONPATH, only for the Mantid-engine tests.
"""

from mantid import (
    _livedata,  # noqa: F401 - registers the algorithms
    api,
    kernel,
    simpleapi,
)
from mantid.api import AlgorithmManager, AnalysisDataService, mtd
from mantid.kernel import ConfigService, config, logger

__version__ = "0.0.0+livereduce-standin"
STANDIN = True  # real Mantid has no such attribute

__all__ = [
    "AlgorithmManager",
    "AnalysisDataService",
    "ConfigService",
    "api",
    "config",
    "kernel",
    "logger",
    "mtd",
    "simpleapi",
]
