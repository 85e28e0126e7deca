"""Kafka listener: the ESS/ISIS streaming path (FlatBuffers on Kafka topics), with `confluent-kafka`.

Topics (listener_options `topics`, defaults from the instrument name): `events` (ev44, or ev42 from older
producers: detector events), `logs` (f144 sample-environment values → time-series logs), `run_control` (pl72 run
start, 6s4t run stop), `monitors` (optional: ev44 monitor events, or hs01 monitor histograms, cumulative:
chunks hand their growth). `address` is the bootstrap servers. Partitions are assigned explicitly (`assign()`, no
group rebalancing: one daemon reads every partition of its instrument's topics); partitions that appear later
are picked up from their start (`partitions` limits a role to some partitions: one daemon per group of
detector banks). The group id (`group_id`) only names where offsets are committed for
monitoring; where reading starts is decided here, never by committed offsets (see docs/kafka.md).

Where reading starts (`start_from`, the daemon's start unless the option says otherwise): the run-control topic's
last `lookback` messages say whether a run is on. `start_of_run`: events and logs from the run's start time
(offsets_for_times, and pulses older than the run start are dropped whatever offset the broker returns, since
some brokers answer 0); `now`: from the end; a time (ISO 8601 or Unix seconds): from that time.
`resume_run` (the daemon's checkpoint run, when it had not ended): with start_of_run, that run is read again from
its pl72 if it has ended since (a daemon down at its end), then the runs after it; its first chunk waits until
the pulses up to the checkpoint's last one are read again, so the session skips them all in that chunk.

Runs are decided by time, not by message order across topics (Kafka orders only within a partition): a pulse
belongs to the run whose [start, stop) holds its reference time. A run ends (END_RUN) once its stop is known and
every event partition has passed the stop time, or has had nothing new for `stop_grace` s after the stop time
(the producer is done). After a run ends the receive thread waits for the next extract, so the END_RUN chunk
holds the run's tail and nothing of the next run (as the ADARA listener does). A pulse that arrives while no run
is on waits (its partitions paused) until the run-control topic is read to its end, then goes to the run that
started before it, or is dropped (`events_outside_run`).

Faults never stop the receive thread: an empty message, an unknown schema id, a FlatBuffer that does not
decode, a run stop with no start are counted in `state()` and logged at most once a minute per kind. Events are
checked per source (topic, partition, source name) by ev44/ev42 message id: a gap is counted and logged as lost
messages (`messages_lost`), a repeated id of an older pulse is skipped (`duplicates_skipped`). A broker that comes
back without its log (the high watermark fell below our position) is noticed and the partition is read again
from its start (`log_resets`). The consumer itself is restarted after an unexpected error (`consumer_restarts`).

Back-pressure: with more than `max_buffered_events` buffered, the event partitions are paused until the next
extract (Kafka keeps the data). Lag is in `state()`: `lag_messages` (high watermarks minus positions) and
`lag_seconds` (now minus the latest pulse taken in, while behind).

Security and other librdkafka settings: listener_options `kafka` (a dict passed through as is, e.g.
`security.protocol`, `sasl.mechanism`, `sasl.username`, `sasl.password`, `ssl.ca.location`). Its values are
never logged nor shown in `state()`.
"""

from __future__ import annotations

import collections
import datetime
import logging
import re
import socket
import threading
import time
from dataclasses import dataclass

import numpy as np

from livereduce.errors import ConfigError, NotYet
from livereduce.instrument.attach import attach_geometry
from livereduce.instrument.model import InstrumentGeometry
from livereduce.listeners.adara.geometry import DetectorMap, map_events
from livereduce.listeners.base import Chunk, EventBuffer, Histograms, RunStateMixin, RunTracker, StartFrom
from livereduce.listeners.nexus_json import GeometryError
from livereduce.listeners.nexus_json import parse as parse_nexus_geometry
from livereduce.listeners.stream import RateLimited, positive_seconds
from livereduce.workspace.run import Run, iso_from_ns
from livereduce.workspace.spectra import Spectra

try:  # the optional extra
    import confluent_kafka as ck
    from streaming_data_types import (
        deserialise_6s4t,
        deserialise_ev42,
        deserialise_ev44,
        deserialise_f144,
        deserialise_hs01,
        deserialise_pl72,
    )
except ImportError as _exc:  # pragma: no cover - exercised by the missing-extra test in a subprocess
    ck = None  # type: ignore[assignment]
    _MISSING = str(_exc)
else:
    _MISSING = ""

log = logging.getLogger("livereduce.listener.kafka")
EXTRA_HINT = "pip install livereduce[kafka]"
PER_RUN = (
    "run_number",
    "run_start",
    "run_end",
    "run_title",
    "instrument_name",
    "filename",
    "job_id",
    "nexus_structure",
    "nexus_structure_bytes",
)
FALLBACK_MAX_PIXELS = 1 << 22
MAX_NEXUS_STRUCTURE = 1 << 20  # a run start's NeXus JSON longer than this is not copied into every chunk
TOPIC_ROLES = ("events", "logs", "run_control", "monitors")  # monitors: read only when a topic is given
BATCH = 256  # messages taken from the consumer per call
_ROLE_ALIASES = {
    "run_info": "run_control",
    "runinfo": "run_control",
    "sample_env": "logs",
    "sampleenv": "logs",
}
COUNTERS = (
    "messages",
    "events_received",
    "events_outside_run",
    "empty_messages",
    "unknown_schema",
    "bad_messages",
    "handler_errors",
    "messages_lost",
    "duplicates_skipped",
    "log_resets",
    "run_stops_without_start",
    "unsupported_log_values",
    "unmapped_events_dropped",
    "backpressure_pauses",
    "monitor_events_outside_run",
    "consumer_restarts",
    "broker_errors",
    "bad_geometry",
    "histograms_received",
    "histograms_outside_run",
    "unsupported_histograms",
    "histogram_resets",
)
TOF_US = {
    "": 1e-3,
    "ns": 1e-3,
    "us": 1.0,
    "µs": 1.0,
    "microseconds": 1.0,
    "ms": 1e3,
    "s": 1e6,
}  # hs01 axis units


def require_extra() -> None:
    """ConfigError naming the extra when confluent-kafka or ess-streaming-data-types is missing."""
    if ck is None:
        raise ConfigError(
            "listener",
            f"the Kafka libraries ({EXTRA_HINT}; {_MISSING})",
            "kafka",
        )


def default_topics(instrument: str) -> dict[str, str]:
    """`<instrument>_events`, `<instrument>_sampleEnv`, `<instrument>_runInfo` (as the fake producer writes)."""
    return {
        "events": f"{instrument}_events",
        "logs": f"{instrument}_sampleEnv",
        "run_control": f"{instrument}_runInfo",
    }


def parse_start(value) -> StartFrom | None:
    """listener_options `start_from`: now, start_of_run, an ISO 8601 time or Unix seconds; None: not given."""
    if value is None:
        return None
    if isinstance(value, str) and value.lower() in ("now", "latest"):
        return StartFrom("now")
    if isinstance(value, str) and value.lower() in ("start_of_run", "run"):
        return StartFrom("start_of_run")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return StartFrom("time", int(float(value) * 1e9))
    try:
        when = datetime.datetime.fromisoformat(str(value))
    except ValueError:
        raise ValueError(
            f"start_from must be now, start_of_run, an ISO 8601 time or Unix seconds, not {value!r}"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return StartFrom("time", int(when.timestamp() * 1e9))


def run_number_of(name: str) -> int | None:
    """A run name's number: the name itself, or its trailing digits ('run_123' → 123)."""
    match = re.search(r"(\d+)\s*$", name or "")
    return int(match.group(1)) if match else None


def parse_resume(value) -> tuple[int, str, int] | None:
    """listener_options `resume_run` (the daemon passes its checkpoint's run when that run had not ended):
    {"run_number": N, "run_start": ISO 8601 text as the run's `run_start` property states it ("" or absent:
    any start), "last_pulse_ns": the latest pulse the checkpoint holds (0 or absent: unknown)}.
    (number, start, last pulse), or None."""
    if not value:
        return None
    if not isinstance(value, dict) or "run_number" not in value:
        raise ConfigError("listener_options.resume_run", '{"run_number": N, "run_start": "ISO 8601"}', value)
    try:
        number, last = int(value["run_number"]), int(value.get("last_pulse_ns") or 0)
    except (TypeError, ValueError):
        raise ConfigError(
            "listener_options.resume_run", "an integer run_number and last_pulse_ns", value
        ) from None
    return number, str(value.get("run_start") or ""), last


class SpectrumMap:
    """Detector id → workspace index through a detector-spectrum map (several detectors may share a spectrum);
    the interface `map_events` wants (`size`, call)."""

    UNMAPPED = DetectorMap.UNMAPPED

    def __init__(self, det_ids: np.ndarray, owner: np.ndarray, size: int):
        self._map = DetectorMap(det_ids)
        self._owner = np.append(np.asarray(owner, np.uint32), self.UNMAPPED)
        self.size = size

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        pos = self._map(ids)
        return self._owner[np.minimum(pos, self._owner.size - 1)]


def spectra_from_map(spectrum_numbers, detector_ids, instrument: str) -> tuple[Spectra, SpectrumMap]:
    """Spectra grouped by spectrum number from a pl72 detector-spectrum map, and the map for events."""
    spec = np.asarray(spectrum_numbers, np.int64)
    det = np.asarray(detector_ids, np.int64)
    n = min(spec.size, det.size)
    spec, det = spec[:n], det[:n]
    numbers, owner = np.unique(spec, return_inverse=True)
    order = np.argsort(owner, kind="stable")
    offsets = np.concatenate([[0], np.cumsum(np.bincount(owner, minlength=numbers.size))]).astype(np.int64)
    k = numbers.size
    spectra = Spectra(
        numbers=numbers.astype(np.int32),
        det_ids=det[order].astype(np.int32),
        det_offsets=offsets,
        l2=np.full(k, np.nan),
        two_theta=np.full(k, np.nan),
        azimuthal=np.zeros(k),
        instrument=instrument,
    )
    return spectra, SpectrumMap(det, owner, k)


@dataclass
class RunInfo:
    """A run as the run-control topic tells it."""

    number: int
    start_ns: int
    name: str = ""
    job_id: str = ""
    instrument: str = ""
    filename: str = ""
    nexus_structure: str = ""
    dsm: tuple[np.ndarray, np.ndarray] | None = None  # (spectrum numbers, detector ids)
    stop_ns: int | None = None
    stop_seen: float = 0.0  # monotonic time its stop was read
    geometry: InstrumentGeometry | None = None  # from nexus_structure (read when the run begins here)

    def same(self, other: RunInfo) -> bool:
        return (self.number, self.start_ns) == (other.number, other.start_ns)


@dataclass
class _Histogram:
    """A monitor's hs01 histogram in the current run: the latest counts (cumulative) and those handed out."""

    edges: np.ndarray  # µs
    counts: np.ndarray
    handed: np.ndarray


@dataclass
class _Partition:
    """What the receive thread knows of one assigned partition."""

    topic: str
    partition: int
    role: str
    position: int = -1  # next offset to read (-1: not yet known)
    high: int = -1  # high watermark, last asked
    last_time_ns: int = 0  # latest pulse / value time read from it
    eof_since: float | None = None  # monotonic time it was last found at its end (None: data since)
    paused: bool = False

    @property
    def key(self) -> tuple[str, int]:
        return (self.topic, self.partition)


class KafkaListener(RunStateMixin):
    buffers_events = True

    def __init__(
        self,
        address: str = "",
        *,
        instrument: str = "",
        topics: dict | None = None,
        start_from=None,
        group_id: str | None = None,
        pixels: int | None = None,
        monitor_ids=tuple(range(6)),
        partitions: dict | None = None,
        kafka: dict | None = None,
        stop_grace: float = 2.0,
        lookback: int = 1000,
        max_buffered_events: int = 1 << 25,
        timeout: float = 10.0,
        silence_timeout: float | None = 120.0,
        init_wait: float = 1.0,
        backoff: tuple[float, float] = (0.5, 10.0),
        resume_run: dict | None = None,
        **options,
    ):
        require_extra()
        if options:
            log.debug("kafka listener ignores options %s", sorted(options))
        if not address:
            raise ConfigError("address", "the Kafka bootstrap servers (host:port[,host:port])", address)
        self.address = str(address)
        self.instrument = instrument or "livereduce"
        self.topics = default_topics(self.instrument)
        for role, topic in (topics or {}).items():
            role = _ROLE_ALIASES.get(str(role).lower().replace("-", "_"), str(role).lower())
            if role not in TOPIC_ROLES:
                raise ConfigError("listener_options.topics", f"keys among {', '.join(TOPIC_ROLES)}", role)
            self.topics[role] = str(topic)
        self._start_option = parse_start(start_from)
        self.resume_run = parse_resume(resume_run)
        self.group_id = group_id or f"livereduce-{self.instrument}-{socket.gethostname()}"
        self.pixels = None if pixels is None else int(pixels)
        self.monitor_ids = tuple(int(m) for m in monitor_ids)
        if len(set(self.topics.values())) != len(self.topics):
            raise ConfigError("listener_options.topics", "a different topic for each role", self.topics)
        self.partitions: dict[str, set[int]] = {}  # role → the only partitions to read (split an instrument)
        for role, numbers in (partitions or {}).items():
            role = _ROLE_ALIASES.get(str(role).lower().replace("-", "_"), str(role).lower())
            if role not in TOPIC_ROLES or not isinstance(numbers, list | tuple):
                raise ConfigError(
                    "listener_options.partitions",
                    '{"events": [partition numbers]} (roles as in topics)',
                    partitions,
                )
            self.partitions[role] = {int(n) for n in numbers}
        self._kafka_settings = dict(kafka or {})  # security settings: never logged
        self.stop_grace = float(stop_grace)
        self.lookback = max(1, int(lookback))
        self.max_buffered_events = int(max_buffered_events)
        self.timeout = positive_seconds("timeout", timeout)
        self.silence_timeout = (
            None if silence_timeout is None else positive_seconds("silence_timeout", silence_timeout)
        )
        self.init_wait = float(init_wait)
        self.backoff = (positive_seconds("backoff", backoff[0]), positive_seconds("backoff", backoff[1]))

        self._lock = threading.Lock()
        self._events = EventBuffer(1 << 20)
        self._monitor_events = EventBuffer(1024)
        self._monitor_counts: dict[int, int] = {}
        self._histograms: dict[int, _Histogram] = {}  # monitor id → its hs01 histogram in the current run
        self._tracker = RunTracker()
        self._run = Run()
        self._reset = False
        self._counts = dict.fromkeys(COUNTERS, 0)
        self._limited = RateLimited(log)
        self._start = StartFrom()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._initialised = threading.Event()
        self._released = threading.Event()
        self._released.set()
        self._hold = False  # after END_RUN: the receiver waits for an extract
        # receive thread state
        self._parts: dict[tuple[str, int], _Partition] = {}
        self._current: RunInfo | None = None  # the run being buffered (None: between runs)
        self._upcoming: collections.deque[RunInfo] = collections.deque()  # started after the current one
        self._last_run: RunInfo | None = None  # the run that ended last (a replayed start of it is ignored)
        self._held: dict[tuple[str, int], collections.deque] = {}  # per partition: pulse lists waiting
        self._held_logs: list[tuple[str, int, object]] = []  # values past the current run's stop
        self._sources: dict[tuple, tuple[int, int]] = {}  # (topic, partition, source) → (message id, time)
        self._layout: tuple[Spectra, object] | None = None
        self._max_pixel = -1
        self._commit: list | None = None  # offsets to commit (the previous extract's), by the receiver
        self._handed: list = []  # offsets the last extract's chunk reaches
        self._begin_pending = False  # a BEGIN_RUN that no extract has reported yet
        self._next_check = 0.0  # when to ask the broker for watermarks and partitions (not cached ones)
        self._handed_max_ns = 0  # the latest pulse handed out by an extract in the current run
        self._replay_until = 0  # resuming a run: no chunk until every pulse up to this one is read again
        self._empty_poll = (0, 0.0)  # (wall ns, monotonic s) when a poll last found nothing to read
        self._last_message = time.monotonic()
        self._last_pulse_ns = 0
        self._silent_logged = False
        self.connected = False
        self.last_error = ""

    # ---- the contract --------------------------------------------------------------------------------------
    def start(self, start: StartFrom | None = None) -> None:
        if self._thread is not None:
            return
        self._start = self._start_option or start or StartFrom()
        self._thread = threading.Thread(target=self._supervise, name=f"kafka-{self.instrument}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._released.set()
        if self._thread is not None:
            self._thread.join(max(5.0, self.timeout))

    def share_events(self, pool) -> None:
        """Buffer events in `pool`'s shared memory (livereduce.shared_events: a worker process reads them there)."""
        self._events.share(pool)

    def state(self) -> dict:
        with self._lock:
            out: dict = {
                "connected": self.connected,
                "address": self.address,
                "topics": dict(self.topics),
                "group_id": self.group_id,
                "run_number": self.run_number,
                "last_error": self.last_error,
                **self._counts,
            }
            parts = list(self._parts.values())
        behind = sum(max(0, p.high - p.position) for p in parts if p.high >= 0 and p.position >= 0)
        out["lag_messages"] = behind
        out["lag_seconds"] = (
            max(0.0, (time.time_ns() - self._last_pulse_ns) / 1e9) if behind and self._last_pulse_ns else 0.0
        )
        out["partitions"] = {
            f"{p.topic}[{p.partition}]": {"position": p.position, "high": p.high} for p in parts
        }
        return out

    def extract(self) -> Chunk:
        if not self._initialised.wait(self.init_wait):
            raise NotYet(
                f"Kafka topics {', '.join(self.topics.values())} at {self.address} not assigned yet "
                f"(connected={self.connected}, last error: {self.last_error or 'none'})"
            )
        if self._replay_until and not self._replayed():
            raise NotYet(
                f"reading run {self.run_number} again up to its checkpoint's last pulse "
                f"({iso_from_ns(self._replay_until)}; {self.state()['lag_messages']} messages behind)"
            )
        with self._lock:
            layout = self._layout or self._make_layout()
            if layout is None:
                if not self._hold:
                    raise NotYet(
                        "no detector-spectrum map in the run start, no `pixels` option and no events yet"
                    )
                empty = Spectra.one_to_one([], instrument=self.instrument)
                layout = (empty, DetectorMap(np.empty(0)))
            events = self._events.swap()
            monitor_events, monitor_counts = self._monitor_events.swap(), self._monitor_counts
            self._monitor_counts = {}
            if events.pulse_time.size:
                self._handed_max_ns = max(self._handed_max_ns, int(events.pulse_time.max()))
            run, self._run = self._run, self._run.carry_over()
            histograms = self._histogram_increments()
            if histograms is not None:
                for monitor, counts in zip(histograms[0], histograms[2], strict=True):
                    monitor_counts[int(monitor)] = monitor_counts.get(int(monitor), 0) + round(
                        float(counts.sum())
                    )
            for monitor, count in monitor_counts.items():
                run.set(f"monitor{monitor}_counts", count, additive=True)  # this chunk's; Add sums them
            self._tracker.latch()
            self._begin_pending = False
            if self._hold:  # the END_RUN chunk is out: the gap after it starts afresh
                self._hold = False
                self._histograms = {}
                self._run = self._fresh_run(self._run)
                self._layout, self._max_pixel = None, -1
            self._commit, self._handed = self._handed, self._positions()
            self._released.set()
        spectra, mapping = layout
        events, dropped = map_events(events, mapping)  # type: ignore[arg-type]
        if dropped:
            with self._lock:
                self._counts["unmapped_events_dropped"] += dropped
        return Chunk(
            spectra=spectra.copy(),
            run=run,
            events=events,
            monitors=self._monitor_chunk(run, monitor_events, histograms),
        )

    def _replayed(self) -> bool:
        """Whether every event partition has been read again past the checkpoint's last pulse (or to its end, or
        the buffer is full): so the session, which skips the pulses its checkpoint holds in the first chunk of
        the run it resumes, finds all of them in that chunk. Once true, it stays true."""
        parts = [p for p in list(self._parts.values()) if p.role in ("events", "monitors")]
        done = len(self._events) >= self.max_buffered_events or all(
            p.last_time_ns > self._replay_until or p.eof_since is not None for p in parts
        )
        if done:
            self._replay_until = 0
        return done

    def _histogram_increments(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(monitor ids, edges µs, counts [monitors, bins]) added to the monitors' hs01 histograms since the
        last extract, or None when none came in this run (lock held). hs01 histograms are cumulative (each
        message the source's counts so far, as just-bin-it publishes them): a chunk hands the difference, so
        the session's Add sums them back to the latest message. A histogram that went down was restarted by
        its producer: its new counts are handed whole."""
        if not self._histograms:
            return None
        ids = np.array(sorted(self._histograms), np.int64)
        edges = self._histograms[int(ids[0])].edges
        rows = []
        for monitor in ids:
            h = self._histograms[int(monitor)]
            rows.append(h.counts - h.handed)
            h.handed = h.counts
        return ids, edges.copy(), np.array(rows)

    def _monitor_chunk(self, run: Run, events, histograms=None) -> Chunk | None:
        """The monitors' chunk (spectra: -monitor id, as the ADARA listener names them), when a monitors topic
        is read: their events, or the increments of their hs01 histograms when the run has those."""
        if "monitors" not in self.topics:
            return None
        if histograms is not None:
            ids, edges, counts = histograms
            if len(events):
                self._bad(
                    "unsupported_histograms",
                    "monitor events and hs01 monitor histograms in the same run: the histograms are kept, %d "
                    "monitor events are not",
                    len(events),
                )
            monitor_run = Run()
            if run.hasProperty("run_number"):
                monitor_run.set("run_number", run["run_number"].value)
            return Chunk(
                spectra=Spectra.one_to_one(-ids, instrument=self.instrument),
                run=monitor_run,
                histograms=Histograms(edges, counts[np.newaxis]),
            )
        ids = np.asarray(self.monitor_ids)
        spectra = Spectra.one_to_one(-ids, instrument=self.instrument)
        mapped, dropped = map_events(events, DetectorMap(ids))
        if dropped:
            with self._lock:
                self._counts["unmapped_events_dropped"] += dropped
        monitor_run = Run()
        if run.hasProperty("run_number"):
            monitor_run.set("run_number", run["run_number"].value)
        return Chunk(spectra=spectra, run=monitor_run, events=mapped)

    # ---- layout --------------------------------------------------------------------------------------------
    def _make_layout(self):
        """Spectra for the run and the detector-id map (lock held), or None when nothing sizes them yet."""
        run = self._current or self._last_run
        name = (run.instrument if run else "") or self.instrument
        geometry = run.geometry if run is not None else None
        if run is not None and run.dsm is not None and run.dsm[0].size:
            self._layout = spectra_from_map(*run.dsm, name)
        elif geometry is not None:  # one spectrum per detector the run start places, in id order
            spectra = Spectra.one_to_one(geometry.det_ids, instrument=name)
            self._layout = (spectra, DetectorMap(spectra.det_ids))
        elif self.pixels is not None or self._max_pixel >= 0:
            n = self.pixels if self.pixels is not None else self._max_pixel + 1
            spectra = Spectra.one_to_one(np.arange(n), instrument=name)
            self._layout = (spectra, DetectorMap(spectra.det_ids))
        else:
            return None
        if geometry is not None:
            attach_geometry(self._layout[0], geometry)
        return self._layout

    def _fresh_run(self, run: Run) -> Run:
        """What a new run (or the gap after one) starts from: last log values, none of the old run's own."""
        fresh = run.carry_over()
        for name in PER_RUN:
            fresh.remove(name)
        return fresh

    def _positions(self) -> list:
        return [
            ck.TopicPartition(p.topic, p.partition, p.position)
            for p in self._parts.values()
            if p.position >= 0
        ]

    # ---- receive thread: consumer lifecycle ----------------------------------------------------------------
    def _supervise(self) -> None:
        """The receive thread: run the consumer; after an unexpected error, report it and start another."""
        delay = self.backoff[0]
        while not self._stop.is_set():
            consumer = None
            try:
                consumer = self._consumer()
                self._setup(consumer)
                delay = self.backoff[0]
                self._consume(consumer)
            except Exception as exc:
                with self._lock:
                    self._counts["consumer_restarts"] += 1
                    self.last_error = f"unexpected: {exc!r}"
                if self._stop.is_set():
                    break
                log.exception(
                    "the Kafka consumer for %s failed; starting another in %.1f s", self.address, delay
                )
                self._stop.wait(delay)
                delay = min(delay * 2, self.backoff[1])
            finally:
                self.connected = False
                if consumer is not None:
                    try:
                        consumer.close()
                    except Exception:  # closing a broken consumer: nothing more to do
                        log.debug("closing the Kafka consumer failed", exc_info=True)

    def _consumer(self):
        settings = {
            **self._kafka_settings,
            "bootstrap.servers": self.address,
            "group.id": self.group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 100,  # a fetch holds the connection this long: other questions wait behind it
            **{k: v for k, v in self._kafka_settings.items() if k == "fetch.wait.max.ms"},
            "error_cb": self._on_error,
            "logger": logging.getLogger("livereduce.listener.kafka.librdkafka"),
        }
        return ck.Consumer(settings)

    def _on_error(self, error) -> None:
        with self._lock:
            self._counts["broker_errors"] += 1
            self.last_error = f"broker: {error.str()}"
        if error.code() in (ck.KafkaError._ALL_BROKERS_DOWN, ck.KafkaError._TRANSPORT):
            self.connected = False  # and ask soon whether the broker came back without its logs
            self._next_check = min(self._next_check, time.monotonic() + 1.0)
        self._limited.warning(f"broker{error.code()}", "Kafka at %s: %s", self.address, error.str())

    def _metadata(self, consumer) -> dict[str, list[int]]:
        """Partitions of our topics ({} for a topic not there yet)."""
        topics = consumer.list_topics(timeout=self.timeout).topics
        self.connected = True
        found = {}
        for role, t in self.topics.items():
            there = sorted(topics[t].partitions) if t in topics and not topics[t].error else []
            only = self.partitions.get(role)
            found[t] = [p for p in there if only is None or p in only]
        return found

    def _setup(self, consumer) -> None:
        """Find the partitions, decide where each starts, assign them."""
        while not self._stop.is_set():
            try:
                found = self._metadata(consumer)
            except ck.KafkaException as exc:
                self.last_error = f"metadata: {exc}"
                self._limited.warning("metadata", "cannot read topic metadata from %s: %s", self.address, exc)
                self._stop.wait(self.backoff[0])
                continue
            missing = [t for t, parts in found.items() if not parts]
            if missing:
                self.last_error = f"topics not there yet: {', '.join(sorted(missing))}"
                self._limited.warning(
                    "missing", "waiting for Kafka topics %s at %s", ", ".join(sorted(missing)), self.address
                )
                self._stop.wait(self.backoff[0])
                continue
            break
        else:
            return
        resume = bool(self._parts)  # a consumer restarted after an error: go on where the last one was
        assignment = []
        starts = None if resume else self._find_start(consumer, found)
        for role, topic in self.topics.items():
            for partition in found[topic]:
                key = (topic, partition)
                part = self._parts.get(key)
                if part is None:
                    part = _Partition(topic, partition, role)
                    with self._lock:
                        self._parts[key] = part
                if part.position < 0:
                    part.position = starts.get(key, ck.OFFSET_BEGINNING) if starts else ck.OFFSET_BEGINNING
                assignment.append(ck.TopicPartition(topic, partition, part.position))
        consumer.assign(assignment)
        log.info(
            "reading %s from %s (%s; group %s)",
            ", ".join(f"{t}[{p}]" for t, p in self._parts),
            self.address,
            "resuming where the last consumer stopped" if resume else self._start_text(),
            self.group_id,
        )
        self._initialised.set()

    def _start_text(self) -> str:
        s = self._start
        return {"now": "from now", "start_of_run": "from the start of the current run"}.get(
            s.mode, f"from {iso_from_ns(s.time_ns)}"
        )

    def _find_start(self, consumer, found: dict[str, list[int]]) -> dict:
        """Offsets to start each partition from (start_from), and the run in progress, if any."""
        ends = {  # each partition's end before the scan: what is produced from now on is read, all of it
            (topic, partition): self._end_of(consumer, topic, partition)
            for role, topic in self.topics.items()
            if role != "run_control"
            for partition in found[topic]
        }
        control = self.topics["run_control"]
        run, resumed, times = self._scan_run_control(consumer, control, found[control], ends)
        mode = self._start.mode
        resuming: int | None = (
            None  # the start (ns) of a run that ended while the daemon was down, read again
        )
        if mode == "start_of_run" and self.resume_run is not None:
            number, start, last_pulse = self.resume_run
            if resumed is None:
                log.info(
                    "the checkpoint's run %d (started %s) is not among the last %d run-control messages: "
                    "starting from the current run",
                    number,
                    start or "?",
                    self.lookback,
                )
            elif run is None or not resumed[0].same(run[0]):
                log.info(
                    "reading run %d again from its start (%s): the checkpoint says it had not ended, and it "
                    "ended while the daemon was down",
                    number,
                    iso_from_ns(resumed[0].start_ns),
                )
                run, resuming = resumed, resumed[0].start_ns
            if resumed is not None and last_pulse and run is not None and resumed[0].same(run[0]):
                self._replay_until = last_pulse  # the first chunk holds every pulse the checkpoint has
        starts: dict = {}
        since_ns: int | None = None  # events and logs from this time (None: from the end)
        if mode == "time":
            since_ns = self._start.time_ns
        elif mode == "start_of_run" and run is not None:
            since_ns = run[0].start_ns
        for role, topic in self.topics.items():
            if role == "run_control":
                continue
            for partition in found[topic]:
                starts[(topic, partition)] = (
                    ends[(topic, partition)]
                    if since_ns is None
                    else self._offset_at(consumer, topic, partition, since_ns)
                )
        for partition in found[control]:
            starts[(control, partition)] = ends[(control, partition)]
            if (
                resuming is not None
            ):  # what came after the resumed run's start is read live: its stop, next runs
                later = [o for o, t in times.get(partition, []) if t >= resuming]
                starts[(control, partition)] = later[0] if later else ends[(control, partition)]
        if run is not None:
            info, partition, offset = run
            starts[(control, partition)] = offset + 1  # the run's stop (if any) comes after its start
            self._read_geometry(info)
            with self._lock:
                self._current = info
                if mode == "now":
                    self._tracker.running(info.number)  # joined a run in progress: no edge
                else:
                    self._tracker.begin_run(info.number)
                    self._begin_pending = True
                self._details(info)
            self._floor_ns = max(info.start_ns, since_ns or 0) if mode != "now" else 0
            log.info(
                "run %d is %s (started %s)",
                info.number,
                "on" if resuming is None else "read again",
                iso_from_ns(info.start_ns),
            )
        else:
            self._floor_ns = since_ns or 0
        return starts

    _floor_ns = 0  # pulses older than this are not taken (a broker's offsets_for_times may start too early)

    def _end_of(self, consumer, topic: str, partition: int) -> int:
        """The partition's high watermark (OFFSET_END when the broker does not say)."""
        try:
            high = consumer.get_watermark_offsets(ck.TopicPartition(topic, partition), timeout=self.timeout)[
                1
            ]
        except ck.KafkaException:
            return ck.OFFSET_END
        return high if high >= 0 else ck.OFFSET_END

    def _scan_run_control(self, consumer, topic: str, partitions: list[int], ends: dict):
        """What the run-control partitions' last `lookback` messages say: (open, resumed, times). `open`: the
        last run start not followed by its stop; `resumed`: the last start of the run `resume_run` names; both
        (RunInfo, partition, offset) or None. `times`: per partition, (offset, time ns) of each start and stop
        read (a start's time, a stop's time). Each partition's end as scanned goes into `ends` (reading goes
        on from there)."""
        latest = resumed = None
        times: dict[int, list[tuple[int, int]]] = {}
        for partition in partitions:
            tp = ck.TopicPartition(topic, partition)
            low, high = consumer.get_watermark_offsets(tp, timeout=self.timeout)
            ends[(topic, partition)] = high
            first = max(low, high - self.lookback)
            if high <= first:
                continue
            consumer.assign([ck.TopicPartition(topic, partition, first)])
            deadline = time.monotonic() + self.timeout
            position = first
            while position < high and time.monotonic() < deadline and not self._stop.is_set():
                msg = consumer.poll(0.2)
                if msg is None:
                    continue
                if msg.error():
                    if msg.error().code() == ck.KafkaError._PARTITION_EOF:
                        break
                    continue
                position = msg.offset() + 1
                value = msg.value() or b""
                schema = bytes(value[4:8])
                try:
                    if schema == b"pl72":
                        info = self._run_info(deserialise_pl72(value))
                        if info is None:
                            continue
                        times.setdefault(partition, []).append((msg.offset(), info.start_ns))
                        if latest is None or info.start_ns >= latest[0].start_ns:
                            latest = (info, partition, msg.offset())
                        if self._is_resumed(info) and (
                            resumed is None or info.start_ns >= resumed[0].start_ns
                        ):
                            resumed = (info, partition, msg.offset())
                    elif schema == b"6s4t":
                        stop = deserialise_6s4t(value)
                        stop_ns = (
                            int(stop.stop_time) * 1_000_000
                            if stop.stop_time
                            else msg.timestamp()[1] * 1_000_000
                        )
                        times.setdefault(partition, []).append((msg.offset(), stop_ns))
                        if latest is not None and self._stop_matches(latest[0], stop):
                            latest = None
                except Exception as exc:  # counted when read again live; a scan only looks
                    log.debug("run-control message at offset %d unreadable: %s", msg.offset(), exc)
            consumer.unassign()
        return latest, resumed, times

    def _is_resumed(self, info: RunInfo) -> bool:
        """Whether a run start is of the run `resume_run` names (its number, and its start when given)."""
        if self.resume_run is None:
            return False
        number, start, _ = self.resume_run
        return info.number == number and (not start or iso_from_ns(info.start_ns) == start)

    def _offset_at(self, consumer, topic: str, partition: int, time_ns: int) -> int:
        """The first offset at or after `time_ns` (the broker's answer; the low watermark when it has none)."""
        try:
            found = consumer.offsets_for_times(
                [ck.TopicPartition(topic, partition, time_ns // 1_000_000)], timeout=self.timeout
            )[0]
            if found.error is None and found.offset >= 0:
                return found.offset
        except ck.KafkaException as exc:
            log.warning(
                "offsets_for_times on %s[%d] failed (%s); reading it from its start", topic, partition, exc
            )
        return ck.OFFSET_BEGINNING

    # ---- receive thread: the loop --------------------------------------------------------------------------
    def _consume(self, consumer) -> None:
        self._next_check = time.monotonic() + 5.0  # the assignment has just asked the broker
        while not self._stop.is_set():
            if self._hold:
                self._released.wait(0.1)
                continue
            now = time.monotonic()
            if self._commit:
                offsets, self._commit = self._commit, None
                try:
                    consumer.commit(offsets=offsets, asynchronous=True)
                except ck.KafkaException as exc:
                    log.debug("committing offsets failed: %s", exc)
            full = now >= self._next_check
            if full:
                self._next_check = now + 5.0
            self._check_partitions(consumer, full)
            if self._current is None and self._upcoming:
                self._begin(self._upcoming.popleft())
            self._flow(consumer)
            if self._held and self._process_held():
                continue
            if self._try_end_run():
                continue
            asked = (time.time_ns(), time.monotonic())
            batch = consumer.consume(BATCH, 0.05)
            if len(batch) < BATCH:  # it waited and the queue ran dry: everything fetched by `asked` is read
                self._empty_poll = asked
            if not batch:
                self._check_silence()
            for msg in batch:
                self._receive(msg)

    def _receive(self, msg) -> None:
        error = msg.error()
        if error is not None:
            if error.code() == ck.KafkaError._PARTITION_EOF:
                part = self._parts.get((msg.topic(), msg.partition()))
                if part is not None:
                    if part.eof_since is None:
                        part.eof_since = time.monotonic()
                    part.position = max(part.position, msg.offset())
            else:
                self._on_error(error)
            return
        self.connected = True
        self._last_message, self._silent_logged = time.monotonic(), False
        try:
            self._on_message(msg)
        except Exception as exc:  # a handler bug loses this message, never the consumer
            with self._lock:
                self._counts["handler_errors"] += 1
                self.last_error = f"handler: {exc!r}"
            log.exception(
                "dropped a message from %s[%d] at offset %d", msg.topic(), msg.partition(), msg.offset()
            )

    def _check_silence(self) -> None:
        quiet = time.monotonic() - self._last_message
        if self.silence_timeout is not None and quiet >= self.silence_timeout and not self._silent_logged:
            self._silent_logged = True
            log.warning(
                "nothing from Kafka at %s for %.0f s; is the producer still sending?", self.address, quiet
            )

    def _flow(self, consumer) -> None:
        """Pause an event partition while its pulses wait for a decision or the buffer is full; resume after."""
        full = len(self._events) >= self.max_buffered_events
        changed = [
            p
            for p in self._parts.values()
            if p.role in ("events", "monitors") and p.paused != (full or p.key in self._held)
        ]
        if not changed:
            return
        pause = [ck.TopicPartition(p.topic, p.partition) for p in changed if not p.paused]
        resume = [ck.TopicPartition(p.topic, p.partition) for p in changed if p.paused]
        if pause:
            consumer.pause(pause)
        if resume:
            consumer.resume(resume)
        for p in changed:
            p.paused = not p.paused
        if full and pause:
            with self._lock:
                self._counts["backpressure_pauses"] += 1
            log.info(
                "%d events buffered (max_buffered_events): pausing the event topic until the next extract",
                len(self._events),
            )

    def _check_partitions(self, consumer, full: bool) -> None:
        """High watermarks (lag; cached from the fetches, asked of the broker when `full`), a broker that lost
        its log (the high watermark fell below our position), and, when `full`, partitions added to our topics.

        A broker answers one request per connection at a time, so an uncached question waits behind the
        consumer's fetch (up to fetch.wait.max.ms): hence cached values every loop, asked ones every few s."""
        for part in list(self._parts.values()):
            try:
                low, high = consumer.get_watermark_offsets(
                    ck.TopicPartition(part.topic, part.partition),
                    timeout=min(1.0, self.timeout),
                    cached=not full,
                )
            except ck.KafkaException:
                continue
            if high < 0:
                continue
            part.high = high
            if part.position > high:
                self._log_lost(consumer, part, max(low, 0), high)
                if not full:  # a broker that lost one log lost them all: ask about every partition now
                    self._check_partitions(consumer, True)
                    return
        if not full:
            return
        try:
            found = self._metadata(consumer)
        except ck.KafkaException:
            return
        new = [
            (topic, partition, role)
            for role, topic in self.topics.items()
            for partition in found.get(topic, [])
            if (topic, partition) not in self._parts
        ]
        if new:
            with self._lock:
                for topic, partition, role in new:
                    self._parts[(topic, partition)] = _Partition(topic, partition, role, position=0)
            consumer.incremental_assign([ck.TopicPartition(t, p, ck.OFFSET_BEGINNING) for t, p, _ in new])
            log.info(
                "new partitions %s: reading them from their start", ", ".join(f"{t}[{p}]" for t, p, _ in new)
            )

    def _log_lost(self, consumer, part: _Partition, low: int, high: int) -> None:
        """The broker's log of `part` ends before our position: it lost it. Read the partition again."""
        try:
            consumer.seek(ck.TopicPartition(part.topic, part.partition, low))
        except ck.KafkaException as exc:  # not fetching yet: tried again next time
            log.debug("seek on %s[%d] failed: %s", part.topic, part.partition, exc)
            return
        with self._lock:
            self._counts["log_resets"] += 1
        log.warning(
            "Kafka's log of %s[%d] ends at offset %d, before our position %d: the broker lost it "
            "(restarted without its storage?); reading the partition again from offset %d",
            part.topic,
            part.partition,
            high,
            part.position,
            low,
        )
        part.position, part.eof_since = low, None

    # ---- messages ------------------------------------------------------------------------------------------
    def _on_message(self, msg) -> None:
        key = (msg.topic(), msg.partition())
        part = self._parts.get(key)
        if part is None:
            return
        part.position, part.eof_since = msg.offset() + 1, None
        value = msg.value()
        with self._lock:
            self._counts["messages"] += 1
        if not value:
            self._bad("empty_messages", "empty message on %s[%d] at offset %d", *key, msg.offset())
            return
        schema = bytes(value[4:8]) if len(value) >= 8 else b""
        handler = _HANDLERS.get(schema)
        if handler is None:
            self._bad(
                "unknown_schema",
                "message with schema id %r on %s[%d] at offset %d: not one this listener reads; skipped",
                schema.decode("ascii", "replace"),
                *key,
                msg.offset(),
            )
            return
        try:
            decoded = _DECODERS[schema](value)
        except Exception as exc:
            self._bad(
                "bad_messages",
                "a %s message on %s[%d] at offset %d does not decode (%s); skipped",
                schema.decode(),
                *key,
                msg.offset(),
                exc,
            )
            return
        handler(self, part, decoded, msg)

    def _bad(self, counter: str, message: str, *args) -> None:
        with self._lock:
            self._counts[counter] += 1
            self.last_error = message % args
        self._limited.warning(counter, message + " (%d so far)", *args, self._counts[counter])

    def _on_ev44(self, part: _Partition, ev, msg) -> None:
        times = np.asarray(ev.reference_time, np.int64)
        index = np.asarray(ev.reference_time_index, np.int64)
        tof = np.divide(ev.time_of_flight, 1000.0, dtype=np.float32)  # ns → µs
        pixel = np.asarray(ev.pixel_id)
        if part.role == "monitors" and not pixel.size:  # a monitor's events: its id from the source name
            pixel = np.full(tof.size, run_number_of(ev.source_name) or 0, np.int32)
        if tof.size != pixel.size or index.size != times.size:
            raise_bad = f"{tof.size} times of flight for {pixel.size} pixels, {times.size} reference times"
            self._bad(
                "bad_messages",
                "an ev44 message on %s[%d] is inconsistent (%s); skipped",
                part.topic,
                part.partition,
                raise_bad,
            )
            return
        if times.size == 0:
            if not tof.size:
                return
            times, index = np.asarray([msg.timestamp()[1] * 1_000_000], np.int64), np.zeros(1, np.int64)
        if index.size and (index[0] != 0 or np.any(np.diff(index) < 0) or index[-1] > tof.size):
            self._bad(
                "bad_messages",
                "an ev44 message on %s[%d] has bad pulse indices; skipped",
                part.topic,
                part.partition,
            )
            return
        if not self._sequence(part, ev.source_name, int(ev.message_id), int(times[-1])):
            return
        bounds = np.append(index, tof.size)
        pulses = [
            (int(times[i]), pixel[bounds[i] : bounds[i + 1]], tof[bounds[i] : bounds[i + 1]])
            for i in range(times.size)
        ]
        self._pulses(part, pulses)

    def _on_ev42(self, part: _Partition, ev, msg) -> None:
        tof = np.divide(ev.time_of_flight, 1000.0, dtype=np.float32)  # ns → µs
        pixel = np.asarray(ev.detector_id)
        if tof.size != pixel.size:
            self._bad(
                "bad_messages",
                "an ev42 message on %s[%d] is inconsistent; skipped",
                part.topic,
                part.partition,
            )
            return
        t = int(ev.pulse_time)
        if not self._sequence(part, ev.source_name, int(ev.message_id), t):
            return
        self._pulses(part, [(t, pixel, tof)])
        charge = (ev.specific_data or {}).get("proton_charge")
        if charge is not None and self._in_current(t):
            with self._lock:
                self._run.series("proton_charge", "uAh").append(t, float(charge))

    def _sequence(self, part: _Partition, source: str, message_id: int, time_ns: int) -> bool:
        """Whether to take this message, by its source's message ids: a gap is counted as lost messages, an
        id at or below the last one taken with an older pulse is a duplicate; a later pulse with a lower id is
        a producer that restarted its count."""
        key = (part.topic, part.partition, source)
        last = self._sources.get(key)
        self._sources[key] = (message_id, time_ns)
        if last is None:
            return True
        last_id, last_time = last
        if message_id > last_id + 1:
            lost = message_id - last_id - 1
            with self._lock:
                self._counts["messages_lost"] += lost
            log.warning(
                "lost %d messages of source %s on %s[%d] (message ids %d..%d were never received)",
                lost,
                source,
                part.topic,
                part.partition,
                last_id + 1,
                message_id - 1,
            )
        elif message_id <= last_id:
            if time_ns <= last_time:
                self._sources[key] = last
                with self._lock:
                    self._counts["duplicates_skipped"] += 1
                return False
            log.info(
                "source %s on %s[%d] restarted its message ids (%d after %d)",
                source,
                part.topic,
                part.partition,
                message_id,
                last_id,
            )
        return True

    def _in_current(self, t: int) -> bool:
        run = self._current
        return run is not None and run.start_ns <= t and (run.stop_ns is None or t < run.stop_ns)

    def _pulses(self, part: _Partition, pulses: list) -> None:
        """Buffer the pulses of the current run; hold the rest (from the first undecided one on)."""
        held = self._held.get(part.key)
        if held:
            held.append(pulses)
            return
        rest = self._take(part, pulses)
        if rest:
            self._held.setdefault(part.key, collections.deque()).append(rest)

    def _take(self, part: _Partition, pulses: list) -> list:
        """Buffer what can be decided now; returns the pulses (in order) that must wait."""
        for i, (t, pixel, tof) in enumerate(pulses):
            part.last_time_ns = max(part.last_time_ns, t)
            run = self._current
            if run is not None and run.stop_ns is not None and t >= run.stop_ns:
                return pulses[i:]  # after this run: waits for its END_RUN to go out
            if run is not None and t >= max(run.start_ns, self._floor_ns):
                self._add(t, pixel, tof, part.role == "monitors")
                continue
            if run is None and not self._control_caught_up(t):
                return pulses[i:]  # the run-control topic may still say which run this is
            with self._lock:
                outside = "monitor_events_outside_run" if part.role == "monitors" else "events_outside_run"
                self._counts[outside] += int(pixel.size)
            log.debug(
                "pulse at %s (%d events) is outside a run (current %s)",
                iso_from_ns(t),
                pixel.size,
                run and (run.number, run.start_ns, run.stop_ns),
            )
        return []

    def _control_caught_up(self, t: int) -> bool:
        """Whether every run start and stop produced by pulse time `t` has been read: the run-control partitions
        have been at their end since, and a poll found nothing more `stop_grace` after `t` (the producer's
        latency). A poll, not the clock: a consumer thread that was busy has not seen what arrived meanwhile."""
        if self._empty_poll[0] < t + int(self.stop_grace * 1e9):
            return False
        return all(p.eof_since is not None for p in self._parts.values() if p.role == "run_control")

    def _add(self, t: int, pixel: np.ndarray, us: np.ndarray, monitors: bool = False) -> None:
        # int32 ids (ev44) as uint32 without a copy: a negative id becomes a huge one, unmapped at extract
        ids = pixel.view(np.uint32) if pixel.dtype == np.int32 else pixel.astype(np.uint32, copy=False)
        if monitors:
            with self._lock:
                self._monitor_events.add_pulse(t, ids, us)
                for m, n in zip(*np.unique(ids, return_counts=True), strict=True):
                    self._monitor_counts[int(m)] = self._monitor_counts.get(int(m), 0) + int(n)
            return
        with self._lock:
            self._events.add_pulse(t, ids, us)
            self._counts["events_received"] += int(ids.size)
            if self._layout is None and self.pixels is None and ids.size:
                sane = ids[ids < FALLBACK_MAX_PIXELS]
                if sane.size:
                    self._max_pixel = max(self._max_pixel, int(sane.max()))
        self._last_pulse_ns = max(self._last_pulse_ns, t)

    def _process_held(self) -> bool:
        """Decide the held pulses that can be decided now; True when some were."""
        progressed = False
        for key, held in list(self._held.items()):
            part = self._parts.get(key) or _Partition("(taken back at a run stop)", -1, "taken_back")
            while held and not self._hold:
                pulses = held[0]
                rest = self._take(part, pulses)
                if rest:
                    progressed = progressed or len(rest) < len(pulses)
                    held[0] = rest
                    break
                held.popleft()
                progressed = True
            if not held:
                del self._held[key]
        return progressed

    # ---- logs and run control ------------------------------------------------------------------------------
    def _on_f144(self, part: _Partition, value, msg) -> None:
        t = int(value.timestamp_unix_ns)
        v = value.value
        if isinstance(v, np.ndarray) and v.ndim > 0:
            if v.size != 1:
                self._bad(
                    "unsupported_log_values", "f144 %s: array values are not kept as logs", value.source_name
                )
                return
            v = v.reshape(())
        v = v.item() if hasattr(v, "item") else v
        run = self._current
        if run is not None and run.stop_ns is not None and t >= run.stop_ns:
            self._held_logs.append((value.source_name, t, v))
            return
        with self._lock:
            self._run.series(value.source_name).append(t, v)

    def _on_hs01(self, part: _Partition, h: dict, msg) -> None:
        """A monitor's histogram (hs01 on the monitors topic; the monitor id from the source name's trailing
        digits): cumulative, so the latest message of the current run is kept and extracts hand its growth."""
        source = h.get("source", "")
        dims, data = h["dim_metadata"], np.asarray(h["data"], np.float64)
        if part.role != "monitors" or len(dims) != 1 or data.ndim != 1:
            self._bad(
                "unsupported_histograms",
                "an hs01 histogram (source %r, %d dimensions) on %s[%d]: only one-dimensional monitor histograms "
                "on the monitors topic are read; skipped",
                source,
                len(dims),
                part.topic,
                part.partition,
            )
            return
        unit = str(dims[0].get("unit", "")).strip()
        edges = np.asarray(dims[0]["bin_boundaries"], np.float64)
        if (
            unit not in TOF_US
            or edges.size != data.size + 1
            or data.size != int(dims[0]["length"])
            or not np.all(np.diff(edges) > 0)
            or not np.all(np.isfinite(data))
        ):
            self._bad(
                "unsupported_histograms",
                "an hs01 histogram (source %r) on %s[%d] is a slice, or has %d counts for %d bin edges, edges "
                "not increasing, or units %r (a time of flight in ns, us, ms or s is read); skipped",
                source,
                part.topic,
                part.partition,
                data.size,
                edges.size,
                unit,
            )
            return
        edges = edges * TOF_US[unit]
        t = int(h.get("timestamp") or 0) or msg.timestamp()[1] * 1_000_000
        run = self._current
        if run is None or t < run.start_ns:
            with self._lock:
                self._counts["histograms_outside_run"] += 1
            return
        monitor = run_number_of(source) or 0
        restarted = False
        with self._lock:
            self._counts["histograms_received"] += 1
            known = self._histograms.get(monitor)
            reference = known or next(iter(self._histograms.values()), None)
            if reference is not None and not np.array_equal(reference.edges, edges):
                if len(self._histograms) > (
                    known is not None
                ):  # one chunk holds one binning for all monitors
                    self._counts["unsupported_histograms"] += 1
                    return
                known = None  # the only monitor binned anew: it starts again with the new binning
            if known is None:
                self._histograms[monitor] = _Histogram(edges, data, np.zeros_like(data))
                return
            # counting started again (just-bin-it's reset_counts, a restart): data counts from then on, so
            # counts - handed becomes data plus what had not been handed out before
            restarted = bool(np.any(data < known.counts))
            if restarted:
                self._counts["histogram_resets"] += 1
                known.handed = known.handed - known.counts
            known.counts = data
        if restarted:
            log.info("monitor %d's hs01 histogram (source %s) started counting again", monitor, source)

    def _on_pl72(self, part: _Partition, start, msg) -> None:
        info = self._run_info(start)
        if info is None:
            self._bad(
                "bad_messages",
                "a run start on %s[%d] has no usable run number (%r); skipped",
                part.topic,
                part.partition,
                start.run_name,
            )
            return
        known = [r for r in (self._current, self._last_run, *self._upcoming) if r is not None]
        if any(info.same(r) for r in known):
            return  # read again (a replay): already applied
        current = self._current
        if current is not None and current.stop_ns is None:
            log.warning(
                "run %d starts while run %d has no stop: ending run %d at run %d's start",
                info.number,
                current.number,
                current.number,
                info.number,
            )
            current.stop_ns, current.stop_seen = info.start_ns, time.monotonic()
        if self._current is None and not self._upcoming:
            self._begin(info)
        else:
            self._upcoming.append(info)

    def _on_6s4t(self, part: _Partition, stop, msg) -> None:
        stop_ns = int(stop.stop_time) * 1_000_000 if stop.stop_time else msg.timestamp()[1] * 1_000_000
        for run in (self._current, *self._upcoming):
            if run is not None and self._stop_matches(run, stop):
                if run.stop_ns is None:
                    run.stop_ns, run.stop_seen = max(stop_ns, run.start_ns), time.monotonic()
                    log.info("run %d stops at %s", run.number, iso_from_ns(run.stop_ns))
                    if run is self._current:
                        self._take_back(run)
                return  # else the same stop read again, or a later one for a run a newer start already ended
        if self._last_run is not None and self._stop_matches(self._last_run, stop):
            return  # read again: that run already ended here
        self._bad(
            "run_stops_without_start",
            "a run stop (run %r, job %r) on %s[%d] with no run started; ignored",
            stop.run_name,
            stop.job_id,
            part.topic,
            part.partition,
        )

    def _take_back(self, run: RunInfo) -> None:
        """A stop read after pulses past it (run control behind the events): the buffered pulses at or after
        the stop go back to wait for the next run. Pulses already handed out by an extract cannot: warned."""
        stop = run.stop_ns or 0
        with self._lock:
            events = self._events.swap()
            late = events.pulse_time >= stop
            self._put_back(events, ~late)
            ends = np.append(events.pulse_start[1:], len(events))
            back = [
                (int(events.pulse_time[i]), events.index[a:b].copy(), events.tof[a:b].copy())
                for i, a, b in zip(np.flatnonzero(late), events.pulse_start[late], ends[late], strict=True)
            ]
            self._counts["events_received"] -= sum(ids.size for _, ids, _ in back)
            handed = self._handed_max_ns
        if back:
            self._held.setdefault(_TAKEN_BACK, collections.deque()).appendleft(back)
            log.info(
                "run %d's stop came after %d of its pulses past it: they wait for the next run",
                run.number,
                len(back),
            )
        if handed >= stop:
            self._limited.warning(
                "late_stop",
                "run %d's stop (%s) came after pulses past it were handed out in its chunks: run control is "
                "behind the events by more than an update",
                run.number,
                iso_from_ns(stop),
            )

    def _put_back(self, events, keep: np.ndarray) -> None:
        """Re-buffer the pulses of `events` (a swapped-out buffer) that `keep` says (lock held)."""
        ends = np.append(events.pulse_start[1:], len(events))
        for i in np.flatnonzero(keep):
            a, b = events.pulse_start[i], ends[i]
            self._events.add_pulse(int(events.pulse_time[i]), events.index[a:b], events.tof[a:b])

    @staticmethod
    def _stop_matches(run: RunInfo, stop) -> bool:
        if stop.job_id and run.job_id:
            return stop.job_id == run.job_id
        if stop.run_name and run.name:
            return stop.run_name == run.name
        return True

    def _run_info(self, start) -> RunInfo | None:
        number = run_number_of(start.run_name)
        if number is None:
            return None
        dsm = None
        if start.detector_spectrum_map is not None:
            m = start.detector_spectrum_map
            dsm = (np.asarray(m.spectrum_numbers), np.asarray(m.detector_ids))
        return RunInfo(
            number,
            int(start.start_time) * 1_000_000,
            name=start.run_name,
            job_id=start.job_id,
            instrument=start.instrument_name,
            filename=start.filename,
            nexus_structure=start.nexus_structure,
            dsm=dsm,
            stop_ns=int(start.stop_time) * 1_000_000 if start.stop_time else None,
        )

    def _details(self, info: RunInfo) -> None:
        """The run's own properties (lock held)."""
        self._run.set("run_number", str(info.number))
        self._run.set("run_start", iso_from_ns(info.start_ns))
        if info.name and info.name != str(info.number):
            self._run.set("run_title", info.name)
        for name, value in (
            ("instrument_name", info.instrument),
            ("filename", info.filename),
            ("job_id", info.job_id),
        ):
            if value:
                self._run.set(name, value)
        if info.nexus_structure and info.nexus_structure != "{}":  # the geometry JSON: kept unless huge
            if len(info.nexus_structure) <= MAX_NEXUS_STRUCTURE:
                self._run.set("nexus_structure", info.nexus_structure)
            else:
                self._run.set("nexus_structure_bytes", len(info.nexus_structure))

    def _read_geometry(self, info: RunInfo) -> None:
        """The instrument in the run start's NeXus JSON, if it has one (receive thread, before the run begins)."""
        if not info.nexus_structure or info.nexus_structure == "{}":
            return
        try:
            info.geometry = parse_nexus_geometry(info.nexus_structure, info.instrument or self.instrument)
        except GeometryError as exc:
            self._bad(
                "bad_geometry",
                "run %d's start has a NeXus structure whose instrument cannot be read (%s); its spectra have no "
                "geometry",
                info.number,
                exc,
            )
            return
        if info.geometry is not None:
            log.info(
                "run %d's start places %d detectors (L1 %.3f m)",
                info.number,
                info.geometry.n_pixels,
                info.geometry.l1,
            )

    def _begin(self, info: RunInfo) -> None:
        self._read_geometry(info)
        with self._lock:
            self._current = info
            self._tracker.begin_run(info.number)
            self._begin_pending = True
            self._run = self._fresh_run(self._run)
            self._details(info)
            self._layout, self._max_pixel = None, -1
            self._handed_max_ns = 0
            self._histograms = {}
        self._floor_ns = info.start_ns
        log.info("run %d started (%s)", info.number, iso_from_ns(info.start_ns))

    def _try_end_run(self) -> bool:
        """End the current run when every event partition is past its stop or done; True when it ended."""
        run = self._current
        if run is None or run.stop_ns is None or self._begin_pending:
            return False  # (a BEGIN_RUN not yet extracted goes out first, or the session would never see it)
        polled_ns, polled = self._empty_poll  # the last time the consumer's queue was found empty
        for part in self._parts.values():
            if (
                part.role not in ("events", "monitors") or part.last_time_ns >= run.stop_ns
            ):  # it delivered a pulse past the stop
                continue
            quiet = (
                part.eof_since is not None and polled - max(part.eof_since, run.stop_seen) >= self.stop_grace
            )
            if not (quiet and polled_ns >= run.stop_ns):
                return False
        with self._lock:
            self._run.set("run_end", iso_from_ns(run.stop_ns))
            self._tracker.end_run()
            self._current, self._last_run = None, run
            self._hold = True
            self._released.clear()
            for name, t, v in self._held_logs:
                self._run.series(name).append(t, v)  # the gap's values: in the END_RUN chunk's last values
            self._held_logs = []
        log.info("run %d ended (%s)", run.number, iso_from_ns(run.stop_ns))
        return True


_TAKEN_BACK = ("", -1)  # the held pulses taken back from the buffer at a late run stop

_HANDLERS = {
    b"ev44": KafkaListener._on_ev44,
    b"ev42": KafkaListener._on_ev42,
    b"f144": KafkaListener._on_f144,
    b"pl72": KafkaListener._on_pl72,
    b"6s4t": KafkaListener._on_6s4t,
    b"hs01": KafkaListener._on_hs01,
}
_DECODERS = (
    {
        b"ev44": deserialise_ev44,
        b"ev42": deserialise_ev42,
        b"f144": deserialise_f144,
        b"pl72": deserialise_pl72,
        b"6s4t": deserialise_6s4t,
        b"hs01": deserialise_hs01,
    }
    if ck is not None
    else {}
)
