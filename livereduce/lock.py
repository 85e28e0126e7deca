"""Single instance: an exclusive, non-blocking flock on `<state_dir>/livereduce.lock`, held while the daemon runs.

Two daemons on one configuration would share one listener address, one set of products and one state
directory, and overwrite each other's files. The second one to start finds the lock taken and stops with a
message naming the lock file and the PID written in it. The kernel drops the lock when the holder exits, however
it exits (even SIGKILL), so a stale lock file needs no cleaning up; the file itself is left in place (removing
it would let a third daemon lock a new file while the second still holds the old one).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from livereduce.errors import LiveReduceError

LOCK_NAME = "livereduce.lock"


class LockError(LiveReduceError):
    """The lock cannot be taken: the state directory or lock file cannot be made or opened."""


class AlreadyRunning(LockError):
    """Another process holds the lock."""

    def __init__(self, path: Path, pid: str):
        self.path, self.pid = path, pid
        super().__init__(
            f"another livereduce (PID {pid}) holds {path}; stop it first, or give this one its own state_dir"
        )


class InstanceLock:
    """`with InstanceLock(state_dir):` holds the lock for the block (and, if the process dies, until it does)."""

    def __init__(self, state_dir: str | os.PathLike):
        self.dir = Path(state_dir)
        self.path = self.dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise LockError(f"cannot create the state directory {self.dir}: {exc.strerror or exc}") from None
        try:
            # O_NOFOLLOW: a symlink planted at the lock's path must not make us create or truncate its target
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise LockError(f"cannot open the lock file {self.path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise AlreadyRunning(self.path, pid) from None
        except OSError as exc:  # e.g. ENOLCK on a file system without locks
            os.close(fd)
            raise LockError(f"cannot lock {self.path}: {exc.strerror or exc}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor drops the flock
            self._fd = None

    def __enter__(self) -> InstanceLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _read_pid(fd: int) -> str:
    """The holder's PID as it wrote it, or 'unknown' (it may not have written it yet)."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return "unknown"
    return text if text.isdigit() else "unknown"
