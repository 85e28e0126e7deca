"""STAND-IN for `mantid.utils.logging` (livereduce's tests only; not Mantid).

`log_to_python(level)`: as documented for Mantid, sends Mantid's log to Python's `logging` (the console channel
becomes `PythonLoggingChannel`, logger name "Mantid") at the given Mantid level.
"""

from __future__ import annotations

from mantid.kernel import ConfigService


def log_to_python(level: str = "information") -> None:
    ConfigService["logging.channels.consoleChannel.class"] = "PythonLoggingChannel"
    ConfigService.setLogLevel(level, quiet=True)
