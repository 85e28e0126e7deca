"""Exceptions shared across livereduce; each carries enough context to act on."""

from __future__ import annotations


class LiveReduceError(Exception):
    """Base class for livereduce's own errors."""


class ConfigError(LiveReduceError):
    """A configuration value is wrong: names the key, what was expected and what was found."""

    def __init__(self, key: str, expected: str, found: object, source: str | None = None):
        self.key, self.expected, self.found, self.source = key, expected, found, source
        where = f" in {source}" if source else ""
        super().__init__(f"config key '{key}'{where}: expected {expected}, found {found!r}")


class NotYet(LiveReduceError):
    """The listener has no data to give yet (not connected, stream not initialised). Retry later."""


class ProtocolError(LiveReduceError):
    """Bytes from the DAS do not follow the protocol; the connection must be dropped and re-made."""


class ScriptError(LiveReduceError):
    """A user script failed; carries the script's own file and line."""

    def __init__(self, filename: str, lineno: int | None, message: str, traceback_text: str = ""):
        self.filename, self.lineno, self.traceback_text = filename, lineno, traceback_text
        where = f"{filename}:{lineno}" if lineno else filename
        super().__init__(f"{where}: {message}")


class AlgorithmError(LiveReduceError, RuntimeError):
    """An algorithm was called wrongly or failed; the message names the algorithm. A RuntimeError, as
    Mantid's algorithm failures are, so a script's `except RuntimeError:` catches it."""


class UnsupportedAlgorithm(AlgorithmError, AttributeError):
    """A script asked for a Mantid algorithm the embedded engine does not provide."""
