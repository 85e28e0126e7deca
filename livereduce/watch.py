"""File watcher: reports changed scripts and config files. It decides nothing; the daemon does.

watchfiles (inotify) sees editors that save by writing a temporary file and renaming it over the original,
which plain IN_MODIFY on the file would miss, because it watches the directory.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import watchfiles

log = logging.getLogger("livereduce.watch")
# watchfiles logs every batch it sees at INFO; when the log file sits beside a watched file, that logging
# would itself be a change, for ever
logging.getLogger("watchfiles").setLevel(logging.WARNING)


class Watcher:
    """Calls on_change(path) for every changed, created or deleted file under the given directories and files."""

    def __init__(self, paths, on_change, debounce_ms: int = 200):
        self.paths = [Path(p).resolve() for p in paths]
        self.on_change = on_change
        self.debounce_ms = debounce_ms
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="watcher", daemon=True)
        files = {p for p in self.paths if not p.is_dir()}
        self._files = files
        self._dirs = sorted({p if p.is_dir() else p.parent for p in self.paths})

    def start(self, timeout: float = 5.0) -> None:
        """Start watching; returns once the watches are in place, so no edit after this call is missed."""
        self._ready = threading.Event()
        self._thread.start()
        if not self._ready.wait(timeout):
            log.warning("file watcher not ready after %.0f s", timeout)
        log.info("watching %s for changes", ", ".join(str(d) for d in self._dirs))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _wanted(self, path: Path) -> bool:
        return path in self._files or any(path.parent == d for d in self.paths if d.is_dir())

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                # yield_on_timeout: the first (empty) batch says the watches are established
                for changes in watchfiles.watch(
                    *self._dirs,
                    stop_event=self._stop,
                    debounce=self.debounce_ms,
                    step=50,
                    rust_timeout=100,
                    yield_on_timeout=True,
                    raise_interrupt=False,
                    ignore_permission_denied=True,
                ):
                    self._ready.set()
                    for path in sorted({Path(p) for _, p in changes}):
                        if self._wanted(path.resolve() if path.exists() else path):
                            self.on_change(str(path))
            except Exception:
                log.exception("file watcher failed; restarting it")
                self._stop.wait(1.0)
