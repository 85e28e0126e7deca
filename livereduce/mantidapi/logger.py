"""Mantid's Logger API on Python logging: scripts' `logger.information(...)` goes to `livereduce.script`."""

from __future__ import annotations

import logging

SCRIPT_LOGGER = "livereduce.script"


class Logger:
    """`mantid.kernel.Logger(name)`: fatal/error/warning/notice/information/debug → Python levels."""

    def __init__(self, name: str = "Python"):
        self._name = name
        self._log = logging.getLogger(SCRIPT_LOGGER)

    def _emit(self, level: int, msg) -> None:
        self._log.log(level, "%s", msg if self._name == "Python" else f"[{self._name}] {msg}")

    def fatal(self, msg) -> None:
        self._emit(logging.CRITICAL, msg)

    def error(self, msg) -> None:
        self._emit(logging.ERROR, msg)

    def warning(self, msg) -> None:
        self._emit(logging.WARNING, msg)

    def notice(self, msg) -> None:
        self._emit(logging.INFO, msg)

    def information(self, msg) -> None:
        self._emit(logging.INFO, msg)

    def debug(self, msg) -> None:
        self._emit(logging.DEBUG, msg)

    critical = fatal

    def __repr__(self) -> str:
        return f"Logger({self._name!r} → {SCRIPT_LOGGER})"


logger = Logger()
