"""Logging set-up: one file (time - logger - level - message) and a console showing livereduce's own loggers.

The file is `log_file`, else $LOGS_DIRECTORY/livereduce.log under systemd, else
/var/log/SNS_applications/livereduce.log when running as `snsdata` (the anchor's place), else
./livereduce.log. Scripts' print() and mantid.logger land in the `livereduce.script` logger.
WatchedFileHandler reopens the file after logrotate moves it; SIGUSR1 forces it. A log file that cannot be
opened or written is never fatal: the daemon logs to stderr and says why.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import pwd
import sys

FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"
SNS_LOG = "/var/log/SNS_applications/livereduce.log"
_handlers: list[logging.Handler] = []
log = logging.getLogger("livereduce.logs")


def default_log_file() -> str:
    """Where the log goes when `log_file` is not set: systemd's $LOGS_DIRECTORY (the unit's LogsDirectory=),
    else the anchor's place when the real user is snsdata, else ./livereduce.log."""
    logs_directory = os.environ.get("LOGS_DIRECTORY", "").split(":")[0]
    if logs_directory:
        return os.path.join(logs_directory, "livereduce.log")
    try:
        user = pwd.getpwuid(os.getuid()).pw_name  # the real user, not $USER, which a caller can set
    except KeyError:
        user = ""
    return SNS_LOG if user == "snsdata" else os.path.abspath("livereduce.log")


class _LogFile(logging.handlers.WatchedFileHandler):
    """The log file. Failing to open, reopen or write it never reaches the code that logs (a full disk or a
    removed log directory must not stop live reduction): the handler says why on stderr, where the console
    handler keeps showing livereduce's messages, and stays quiet until `reopen()` succeeds."""

    def __init__(self, path: str):
        super().__init__(path, delay=True)
        self.failed: str | None = None  # why the file is not being written, or None

    def open_now(self) -> bool:
        """(Re)open the file; on failure fall back to stderr, saying why. True when the file is open."""
        self.acquire()
        try:
            self._close_stream()
            try:
                self.stream = self._open()
                self._statstream()
            except OSError as exc:
                self._fall_back(exc)
                return False
            self.failed = None
            return True
        finally:
            self.release()

    def emit(self, record: logging.LogRecord) -> None:
        if self.failed is not None:
            return
        try:
            self.reopenIfNeeded()  # logrotate moved the file: follow it; the directory is gone: OSError
            if self.stream is None:
                self.stream = self._open()
                self._statstream()
        except OSError as exc:
            self._fall_back(exc)
            return
        logging.StreamHandler.emit(self, record)

    def handleError(self, record: logging.LogRecord) -> None:
        """A write that fails (a full disk, an I/O error) falls back to stderr once, not a traceback per message."""
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            self._fall_back(exc)
        else:
            super().handleError(record)

    def _close_stream(self) -> None:
        if self.stream is not None:
            with contextlib.suppress(OSError):  # flushing to a full disk fails too
                self.stream.close()
            self.stream = None

    def _fall_back(self, exc: OSError) -> None:
        why = exc.strerror or str(exc)
        already, self.failed = self.failed == why, why
        self._close_stream()
        if already:  # a retry that failed the same way: said already
            return
        # the lock is re-entrant: this record reaches emit() again, which returns at once
        log.warning("cannot write the log file %s (%s); logging to stderr only", self.baseFilename, why)


def setup_logging(log_file: str | None, level: str = "INFO") -> str:
    """Configure the root logger once (idempotent); returns the log file's path.

    A log file that cannot be created or opened is not fatal: messages go to stderr (one warning says why),
    and `reopen()` (SIGUSR1) tries the file again.
    """
    root = logging.getLogger()
    for handler in _handlers:
        root.removeHandler(handler)
        handler.close()
    _handlers.clear()
    path = os.path.abspath(log_file or default_log_file())
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter(FORMAT))
    console.addFilter(logging.Filter("livereduce"))  # the console shows livereduce and script messages only
    file_handler = _LogFile(path)
    file_handler.setFormatter(logging.Formatter(FORMAT))
    for handler in (file_handler, console):
        root.addHandler(handler)
        _handlers.append(handler)
    root.setLevel(getattr(logging, str(level).upper(), logging.INFO))
    logging.getLogger("livereduce").setLevel(root.level)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    except OSError as exc:
        file_handler._fall_back(exc)
    else:
        file_handler.open_now()
    return path


def reopen() -> bool:
    """Reopen the log file (SIGUSR1, after logrotate). When it cannot be reopened, logging goes on to stderr
    and a warning says why. True when the log file is open afterwards."""
    ok = True
    for handler in _handlers:
        if isinstance(handler, _LogFile):
            ok = handler.open_now() and ok
    return ok


def failing() -> str | None:
    """Why the log file is not being written (logging goes to stderr), or None when it is."""
    for handler in _handlers:
        if isinstance(handler, _LogFile) and handler.failed is not None:
            return f"{handler.baseFilename}: {handler.failed}"
    return None
