"""Event columns in shared memory, so a chunk reaches the worker without being copied (issue #12).

Through a pipe, every event was copied four times on its way to the worker (into the listener's buffer, a
trimming copy at extract, into the pipe, out of it into fresh pages): on 2 cores that, not the histogram,
held end-to-end throughput at a quarter of what the kernel sustains. Here the listener's event buffer writes
straight into a memfd segment, the supervisor sends the worker the segment's file descriptor once and then
only (segment, offset, length) per array, and the worker maps those bytes.

Ownership, so a segment is rewritten only when nobody can read it any more:
- in the supervisor, the buffer's columns are views of one root array per lease, and a finalizer on that root
  says when the last view (the listener's buffer, the chunk, the chunks kept for a successor worker) is gone;
- the worker maps each chunk's bytes privately (copy-on-write: a script that changes its input in place
  changes its own copy, never what a successor would be handed again) and reports the segment back when the
  last array over that mapping is gone; a worker that dies returns all it held.
A segment that is still held is not reused: the buffer takes another, and with `max_segments` in use it falls
back to private memory, which travels through the pipe as before. Nothing here can lose or corrupt events;
the worst case is the old speed.

memfd segments have no name: they leave nothing behind in /dev/shm when the daemon is killed, and are not
limited by its size. Pages are made once, on the first write, and reused by every later chunk.
"""

from __future__ import annotations

import collections
import logging
import mmap
import os
import queue
import threading
import weakref
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger("livereduce.shared_events")

ALIGN = 1 << 21  # segment sizes: whole huge pages
PAGE = mmap.ALLOCATIONGRANULARITY


@dataclass(eq=False)
class _Segment:
    ident: int
    fd: int
    size: int
    mapping: mmap.mmap
    address: int
    rows: int = 0  # the columns' capacity: index in [0, 4·rows), TOF in [4·rows, 8·rows)
    lent: dict[int, int] = field(default_factory=dict)  # worker id → leases it holds
    root: weakref.ref | None = None  # the supervisor's current lease root, while alive

    def free(self) -> bool:
        return not any(self.lent.values()) and (self.root is None or self.root() is None)


_POOLS: weakref.WeakSet[SharedEventPool] = weakref.WeakSet()


def resident_bytes() -> int:
    """Memory all pools of this process take, counted once (livereduce.memory adds it to the RSS it sums)."""
    return sum(pool.resident_bytes() for pool in list(_POOLS))


class SharedEventPool:
    """Shared-memory segments for the listener's event columns (the supervisor's side)."""

    def __init__(self, max_segments: int = 13, budget_bytes: int = 4 << 30):
        """`max_segments`: chunks that may be held at once (the supervisor keeps each chunk until the worker's
        next checkpoint, for a successor; so checkpoint_every + a few). `budget_bytes`: pages the free segments
        may keep for reuse; past it, free segments give theirs back (a burst of big chunks must not leave
        every segment at its high-water mark for good)."""
        _POOLS.add(self)
        self.max_segments = int(max_segments)
        self.budget_bytes = int(budget_bytes)
        self._lock = threading.Lock()
        self._segments: dict[int, _Segment] = {}
        self._next = 1
        self.fallbacks = 0  # columns given in private memory because every segment was held
        self.trimmed = 0  # times a free segment gave its pages back (over budget)
        self._recent: collections.deque[int] = collections.deque(maxlen=32)  # the last chunks' events
        self.unavailable = ""  # why shared memory cannot be used here ("" while it can)

    # -- the listener's side ----------------------------------------------------------------------------
    def columns(self, capacity: int) -> tuple[np.ndarray, np.ndarray] | None:
        """(index uint32, tof float32) of `capacity` rows in a free segment, or None: use private memory."""
        need = 8 * int(capacity)
        if need <= 0 or self.unavailable:
            return None
        with self._lock:
            free = [s for s in self._segments.values() if s.size >= need and s.free()]
            # the one with the most pages already made: a chunk written there costs the fewest page faults
            segment = max(free, key=lambda s: _resident(s.fd), default=None)
            self._trim(keep=segment)
            if segment is None:
                if len(self._segments) >= self.max_segments:
                    self.fallbacks += 1
                    return None
                try:
                    segment = self._create(need)
                except OSError as exc:  # no memfd here (old kernel, a sandbox): the pipe as before
                    self.unavailable = f"memfd: {exc}"
                    log.warning(
                        "shared memory for events is not available (%s); chunks go through the pipe", exc
                    )
                    return None
            root = np.frombuffer(segment.mapping, np.uint8, need)
            segment.root = weakref.ref(root)
            segment.rows = int(capacity)
        cap = int(capacity)
        return root[: 4 * cap].view(np.uint32), root[4 * cap : 8 * cap].view(np.float32)

    def filled(self, index: np.ndarray, rows: int) -> None:
        """The buffer swapped out `rows` events written from `index` (its index column): pages past them that
        an older, bigger chunk left in the segment are given back, down to the recent median chunk, so a few
        slow cycles' big chunks do not leave every segment at their high-water mark (memory flat)."""
        found = self.locate(index.ctypes.data, 4) if index.size else None
        if found is None:
            return
        with self._lock:
            s = self._segments[found[0]]
            self._recent.append(int(rows))
            keep = max(int(rows), int(np.median(self._recent)), ALIGN // 4)
            # index, then TOF: whole pages inside each column only (madvise rounds a length up to a page, and
            # must never reach into the next column)
            for half in (0, 4 * s.rows):
                start = _round_up(half + 4 * keep, PAGE)
                end = (half + 4 * s.rows) // PAGE * PAGE
                if end > start:
                    s.mapping.madvise(mmap.MADV_REMOVE, start, end - start)

    def _trim(self, keep: _Segment | None) -> None:
        """Free segments (but `keep`, about to be written) holding more pages than the budget give theirs back,
        the largest first; they are made again, zeroed, when next written. Held segments are never touched."""
        idle = {s.ident: (s, _resident(s.fd)) for s in self._segments.values() if s is not keep and s.free()}
        total = sum(r for _, r in idle.values())
        for s, resident in sorted(idle.values(), key=lambda item: -item[1]):
            if total <= self.budget_bytes:
                return
            if resident:
                s.mapping.madvise(mmap.MADV_REMOVE)
                total -= resident
                self.trimmed += 1

    def _create(self, need: int) -> _Segment:
        size = _round_up(need, ALIGN)
        fd = os.memfd_create("livereduce-events", os.MFD_CLOEXEC)
        try:
            os.ftruncate(fd, size)
            mapping = mmap.mmap(fd, size, flags=mmap.MAP_SHARED)
        except OSError:
            os.close(fd)
            raise
        address = np.frombuffer(mapping, np.uint8, 1).ctypes.data
        segment = _Segment(self._next, fd, size, mapping, address)
        self._segments[segment.ident] = segment
        self._next += 1
        return segment

    # -- the worker pipe's side -----------------------------------------------------------------------
    def locate(self, address: int, nbytes: int) -> tuple[int, int] | None:
        """(segment, offset) of `nbytes` at `address` when they lie in one segment; else None."""
        with self._lock:
            for s in self._segments.values():
                if s.address <= address and address + nbytes <= s.address + s.size:
                    return s.ident, address - s.address
        return None

    def descriptor(self, ident: int) -> tuple[int, int]:
        """(fd, size) of a segment, for sending its fd to a worker."""
        s = self._segments[ident]
        return s.fd, s.size

    def lend(self, ident: int, worker: int) -> None:
        with self._lock:
            s = self._segments[ident]
            s.lent[worker] = s.lent.get(worker, 0) + 1

    def returned(self, idents, worker: int) -> None:
        with self._lock:
            for ident in idents:
                s = self._segments.get(ident)
                if s is not None and s.lent.get(worker, 0) > 0:
                    s.lent[worker] -= 1

    def worker_gone(self, worker: int) -> None:
        """A worker process ended: its mappings, and so its leases, went with it."""
        with self._lock:
            for s in self._segments.values():
                s.lent.pop(worker, None)

    # -- status -------------------------------------------------------------------------------------
    def resident_bytes(self) -> int:
        """Memory the segments' pages take (counted once, though both processes map them)."""
        with self._lock:
            return sum(_resident(s.fd) for s in self._segments.values())

    def state(self) -> dict:
        with self._lock:
            return {
                "segments": len(self._segments),
                "segments_free": sum(s.free() for s in self._segments.values()),
                "fallbacks": self.fallbacks,
                "trimmed": self.trimmed,
            }


def _round_up(n: int, step: int) -> int:
    return -(-n // step) * step


def _resident(fd: int) -> int:
    return os.fstat(fd).st_blocks * 512


class SharedEventMaps:
    """The worker's side: segment fds from the supervisor, and a private mapping per chunk whose end is
    reported back (`take_returned`, sent with the next take)."""

    def __init__(self) -> None:
        self._fds: dict[int, tuple[int, int]] = {}
        self._returned: queue.SimpleQueue[int] = queue.SimpleQueue()  # put() is safe inside a finalizer

    def add(self, ident: int, fd: int, size: int) -> None:
        old = self._fds.get(ident)
        if old is not None:
            os.close(old[0])
        self._fds[ident] = (fd, size)

    def buffers(self, spans: list[tuple[int, int, int]]) -> list[np.ndarray]:
        """uint8 arrays over each (segment, offset, nbytes) span, one private mapping per segment."""
        roots: dict[int, tuple[np.ndarray, int]] = {}
        by_segment: dict[int, list[tuple[int, int]]] = {}
        for ident, offset, nbytes in spans:
            by_segment.setdefault(ident, []).append((offset, nbytes))
        for ident, pieces in by_segment.items():
            fd, size = self._fds[ident]
            start = min(o for o, _ in pieces) // PAGE * PAGE
            end = max(o + n for o, n in pieces)
            if end > size:
                raise ValueError(f"span to byte {end} of shared segment {ident}, which has {size}")
            mapping = mmap.mmap(fd, end - start, flags=mmap.MAP_PRIVATE, offset=start)
            root = np.frombuffer(mapping, np.uint8)
            weakref.finalize(root, self._return, ident)
            roots[ident] = (root, start)
        out = []
        for ident, offset, nbytes in spans:
            root, start = roots[ident]
            out.append(root[offset - start : offset - start + nbytes])
        return out

    def _return(self, ident: int) -> None:  # a finalizer: runs in any thread, at any allocation
        self._returned.put(ident)

    def take_returned(self) -> list[int]:
        out = []
        while True:
            try:
                out.append(self._returned.get_nowait())
            except queue.Empty:
                return out
