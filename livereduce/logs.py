"""Logging set-up: one file (time - logger - level - message) and a console showing livereduce's own loggers.

The file is /var/log/SNS_applications/livereduce.log when running as `snsdata` (the anchor's place), else
./livereduce.log, unless `log_file` says otherwise. Scripts' print() and mantid.logger land in the
`livereduce.script` logger. WatchedFileHandler reopens the file after logrotate moves it; SIGUSR1 forces it.
"""

from __future__ import annotations

import getpass
import logging
import logging.handlers
import os
import sys

FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"
SNS_LOG = "/var/log/SNS_applications/livereduce.log"
_handlers: list[logging.Handler] = []


def default_log_file() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = ""
    return SNS_LOG if user == "snsdata" else os.path.abspath("livereduce.log")


def setup_logging(log_file: str | None, level: str = "INFO") -> str:
    """Configure the root logger once (idempotent); returns the log file's path."""
    root = logging.getLogger()
    for handler in _handlers:
        root.removeHandler(handler)
        handler.close()
    _handlers.clear()
    path = log_file or default_log_file()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    file_handler = logging.handlers.WatchedFileHandler(path)
    file_handler.setFormatter(logging.Formatter(FORMAT))
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter(FORMAT))
    console.addFilter(logging.Filter("livereduce"))  # the console shows livereduce and script messages only
    for handler in (file_handler, console):
        root.addHandler(handler)
        _handlers.append(handler)
    root.setLevel(getattr(logging, str(level).upper(), logging.INFO))
    logging.getLogger("livereduce").setLevel(root.level)
    return path


def reopen() -> None:
    """Reopen the log file (SIGUSR1, after logrotate)."""
    for handler in _handlers:
        if isinstance(handler, logging.FileHandler):
            handler.acquire()
            try:
                if handler.stream:
                    handler.stream.close()
                handler.stream = handler._open()
            finally:
                handler.release()
