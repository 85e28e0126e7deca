"""A fake ESS-style Kafka producer: the fake SMS's synthetic runs (or a replay) as FlatBuffers on Kafka topics.

The source is the fake SMS's own (`adara_synthetic.SyntheticRuns`, or `adara_replay.replay_packets` for a `.adara`
capture or a NeXus event file); each ADARA packet becomes the message the ESS streaming schemas carry: NEW_RUN →
`pl72` run start (run name = the run number, start time, instrument name, a detector-spectrum map from the
geometry: spectrum i+1 ← detector id i; with `nexus_geometry`, the geometry as NeXus JSON too), END_RUN → `6s4t`
run stop, a banked event packet → one `ev44` message per pulse (error banks left out; TOF in ns), beam monitor
events → `ev44` on the monitors topic (one source per monitor, pixel ids = the monitor id), a numeric process
variable → `f144`. Strings, annotations and heartbeats have no topic here and are not sent.

Topics: `<instrument>_events`, `<instrument>_sampleEnv`, `<instrument>_runInfo` (the Kafka listener's
defaults) and `<instrument>_monitors` (read when the listener's `topics` names it), created with one
partition if missing; messages go to partition 0 explicitly, so a broker that re-creates a topic with more
partitions (auto-creation after losing its storage) changes nothing.

Tests read `sent_events_per_run` (events in messages the broker acknowledged), `produced_events_per_run`
(handed to the producer), `events_by_message` (ev44 message id → (run, events)) and `sent_logs`. Every
finished run logs "run N: sent M events", as the fake SMS does.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from livereduce.listeners.adara import packets as P
from livereduce.listeners.adara.geometry import Geometry, parse_geometry
from livereduce.listeners.adara.pvs import describe
from livereduce.listeners.kafka import EXTRA_HINT, default_topics
from livereduce.servers.adara_replay import replay_packets
from livereduce.servers.adara_synthetic import SyntheticRuns, add_run_options
from livereduce.servers.base import HelpFormatter, serve_forever

log = logging.getLogger("livereduce.fake_kafka")
MAX_GAP_NS = 10 * 1_000_000_000  # replays at original speed shorten longer silences to this
MAX_NEXUS_JSON = 800_000  # a run start's NeXus JSON longer than this is not sent (Kafka's messages: 1 MB)


def _libraries():
    try:
        import confluent_kafka
        import confluent_kafka.admin
        import streaming_data_types
    except ImportError as exc:
        raise SystemExit(f"fake-kafka needs the Kafka libraries: {EXTRA_HINT} ({exc})") from None
    return confluent_kafka, streaming_data_types


class FakeKafka:
    """Produces runs into a broker from a thread; `start()`, `stop()`, `done` as the fake servers have."""

    def __init__(
        self,
        broker: str,
        *,
        instrument: str = "FAKE",
        pixels: int = 1024,
        banks: int = 4,
        rate: float = 10_000.0,
        run_seconds: float | list[float] = 10.0,
        runs: int = 0,
        first_run: int = 1,
        gap_seconds: float = 1.0,
        speed: str = "original",
        replay: str | Path | None = None,
        seed: int | None = None,
        producer_settings: dict | None = None,
        nexus_geometry: bool = False,
    ):
        if speed not in ("original", "unlimited"):
            raise ValueError(f"speed must be original or unlimited, not {speed!r}")
        self.ck, self.sdt = _libraries()
        self.broker, self.instrument = broker, instrument
        self.topics = {**default_topics(instrument), "monitors": f"{instrument}_monitors"}
        self.pixels, self.banks, self.rate = int(pixels), max(1, int(banks)), rate
        self.run_seconds, self.runs, self.first_run = run_seconds, int(runs), int(first_run)
        self.gap_seconds, self.speed = gap_seconds, speed
        self.replay = Path(replay) if replay else None
        self._rng = np.random.default_rng(seed)
        self.producer_settings = dict(producer_settings or {})
        self.nexus_geometry = bool(nexus_geometry)
        self._geometry: Geometry | None = (
            None  # the run's geometry (its GEOMETRY packet), for nexus_structure
        )
        self.port = 0  # serve_forever's banner has none to show
        self.sent_events_per_run: dict[int, int] = {}
        self.produced_events_per_run: dict[int, int] = {}
        self.events_by_message: dict[int, tuple[int, int]] = {}
        self.sent_monitor_events_per_run: dict[int, dict[int, int]] = {}  # run → monitor id → events
        self._monitor_message_id: dict[int, int] = {}
        self.sent_logs: dict[int, list[tuple[str, int, float]]] = {}
        self.failed_messages = 0
        self.runs_finished: list[int] = []
        self.done = threading.Event()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._producer: Any = None
        self._run = 0
        self._pending_start: tuple[int, int] | None = None  # (run, start ns) of a NEW_RUN not sent yet
        self._message_id = 0
        self._pvs: dict[tuple[int, int], str] = {}

    # ---- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> None:
        self.create_topics()
        self._producer = self.ck.Producer(
            {
                "bootstrap.servers": self.broker,
                "linger.ms": 1,
                "batch.num.messages": 1,  # Tansu: with batches its high watermark is off (see docs/kafka.md)
                "logger": logging.getLogger("livereduce.fake_kafka.librdkafka"),
                **self.producer_settings,
            }
        )
        log.info(
            "fake Kafka producer writing to %s (topics %s)", self.broker, ", ".join(self.topics.values())
        )
        self._thread = threading.Thread(target=self._produce, name="fake-kafka", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(15)
        if self._producer is not None:
            self._producer.flush(5)

    def create_topics(self) -> None:
        """The three topics, one partition each, unless they exist (start() does this too)."""
        AdminClient, NewTopic = self.ck.admin.AdminClient, self.ck.admin.NewTopic
        settings: dict[str, Any] = {"bootstrap.servers": self.broker, "logger": log}
        admin = AdminClient(settings)
        futures = admin.create_topics([NewTopic(t, 1, 1) for t in self.topics.values()], operation_timeout=10)
        for topic, future in futures.items():
            try:
                future.result(timeout=15)
            except Exception as exc:
                error = exc.args[0] if exc.args else None
                if getattr(error, "code", lambda: None)() != self.ck.KafkaError.TOPIC_ALREADY_EXISTS:
                    log.warning("could not create topic %s (%s); producing anyway", topic, exc)

    # ---- producing -----------------------------------------------------------------------------------------
    def _source(self) -> Iterable[tuple[int, bytes]]:
        if self.replay:
            return replay_packets(self.replay)
        return SyntheticRuns(
            rng=self._rng,
            pixels=self.pixels,
            banks=self.banks,
            rate=self.rate,
            run_seconds=self.run_seconds,
            runs=self.runs,
            first_run=self.first_run,
            gap_seconds=self.gap_seconds,
            instrument=self.instrument,
        )

    def _produce(self) -> None:
        wall0, stream0 = 0, None
        try:
            for time_ns, data in self._source():
                if self._stop.is_set():
                    return
                if self.speed == "original" and time_ns:
                    if stream0 is None or time_ns - stream0 > (time.time_ns() - wall0) + MAX_GAP_NS:
                        wall0, stream0 = time.time_ns(), time_ns
                    delay = (time_ns - stream0) - (time.time_ns() - wall0)
                    if delay > 0 and self._stop.wait(delay / 1e9):
                        return
                self._translate(bytes(data), time_ns)
                self._producer.poll(0)
            self._producer.flush(30)
        except Exception:
            log.exception("fake Kafka producer failed")
        finally:
            self.done.set()

    def _send(self, role: str, value: bytes, callback=None) -> None:
        while not self._stop.is_set():
            try:
                self._producer.produce(self.topics[role], value, partition=0, on_delivery=callback)
                return
            except BufferError:  # its queue is full (broker away): wait for room
                self._producer.poll(0.1)

    def _translate(self, data: bytes, time_ns: int) -> None:
        n, fmt, _, _ = P.HEADER.unpack_from(data)
        ptype, version, payload = fmt >> 8, fmt & 0xFF, data[16 : 16 + n]
        if ptype == P.Type.RUN_STATUS:
            rs = P.RunStatusPkt.decode(payload, version)
            if rs.status == P.RunStatusCode.NEW_RUN:
                self._pending_start = (rs.run_number, time_ns)
                with self._lock:
                    self.sent_events_per_run.setdefault(rs.run_number, 0)
                    self.produced_events_per_run.setdefault(rs.run_number, 0)
                    self.sent_logs.setdefault(rs.run_number, [])
                    self.sent_monitor_events_per_run.setdefault(rs.run_number, {})
            elif rs.status == P.RunStatusCode.END_RUN and self._run:
                self._start_run(None)
                self._end_run(time_ns)
            return
        if ptype == P.Type.GEOMETRY and self._pending_start:
            try:
                self._geometry = parse_geometry(P.GeometryPkt.decode(payload, version).xml)
                det = self._geometry.det_ids
            except ValueError:
                self._geometry, det = None, None
            self._start_run(det)
            return
        if ptype in (P.Type.BEAMLINE_INFO, P.Type.RUN_INFO, P.Type.HEARTBEAT):
            return
        self._start_run(None)
        if ptype == P.Type.BANKED_EVENT and self._run:
            tof_us, pixel = P.event_arrays(payload)
            self._events(time_ns, tof_us, pixel)
        elif ptype == P.Type.BEAM_MONITOR_EVENT and self._run:
            for section in P.BeamMonitorPkt.decode(payload, version).sections:
                self._monitor(time_ns, section.monitor_id, section.tof)
        elif ptype == P.Type.DEVICE_DESC:
            for pv in describe(P.DeviceDescriptorPkt.decode(payload, version)):
                if pv.kind in ("float", "int"):
                    self._pvs[pv.key] = pv.name
        elif ptype in (P.Type.VAR_VALUE_DOUBLE, P.Type.VAR_VALUE_U32):
            pkt = P.CLASSES[ptype].decode(payload, version)
            name = self._pvs.get((pkt.device_id, pkt.variable_id))
            if name is not None:
                value = float(pkt.value) if ptype == P.Type.VAR_VALUE_DOUBLE else int(pkt.value)
                self._send("logs", self.sdt.serialise_f144(name, value, time_ns))
                if self._run:
                    with self._lock:
                        self.sent_logs[self._run].append((name, time_ns, value))

    def _start_run(self, det_ids) -> None:
        """Send the pending run start, with a detector-spectrum map from `det_ids` (or 0..pixels-1)."""
        if self._pending_start is None:
            return
        run, t = self._pending_start
        self._pending_start = None
        det = np.arange(self.pixels) if det_ids is None or not len(det_ids) else np.asarray(det_ids)
        dsm = self.sdt.run_start_pl72.DetectorSpectrumMap(
            np.arange(1, det.size + 1, dtype=np.int32), det.astype(np.int32), det.size
        )
        self._send(
            "run_control",
            self.sdt.serialise_pl72(
                job_id=f"{self.instrument}-{run}",
                filename=f"{self.instrument}_{run}.nxs",
                start_time=t // 1_000_000,
                run_name=str(run),
                instrument_name=self.instrument,
                detector_spectrum_map=dsm,
                nexus_structure=self._nexus_structure() if self.nexus_geometry else "{}",
            ),
        )
        self._run = run
        log.info("run %d started", run)

    def _nexus_structure(self) -> str:
        """The run's geometry as the file-writer's NeXus JSON: the source L1 upstream along z, the sample at the
        origin, one NXdetector with each pixel's offset from the sample (L2, 2θ, φ as a point). "{}" without a
        geometry, or when the JSON would not fit a Kafka message (about 11,000 pixels at most)."""
        g = self._geometry
        if g is None or not g.det_ids.size:
            return "{}"
        s = np.sin(g.two_theta)
        pos = g.l2[:, None] * np.stack(
            [s * np.cos(g.azimuthal), s * np.sin(g.azimuthal), np.cos(g.two_theta)], axis=1
        )

        def dataset(name, values, **attrs):
            attributes = [{"name": k, "values": v} for k, v in attrs.items()]
            return {"module": "dataset", "config": {"name": name, "values": values}, "attributes": attributes}

        def group(name, nx_class, *children):
            return {
                "name": name,
                "type": "group",
                "attributes": [{"name": "NX_class", "values": nx_class}],
                "children": list(children),
            }

        detector = group(
            "detector",
            "NXdetector",
            dataset("detector_number", g.det_ids.astype(int).tolist()),
            *(
                dataset(f"{a}_pixel_offset", pos[:, k].round(6).tolist(), units="m")
                for k, a in enumerate("xyz")
            ),
        )
        children = [detector]
        if np.isfinite(g.l1):
            children.append(
                group(
                    "source",
                    "NXsource",
                    dataset("depends_on", "transformations/position"),
                    group(
                        "transformations",
                        "NXtransformations",
                        dataset(
                            "position",
                            -float(g.l1),
                            transformation_type="translation",
                            vector=[0, 0, 1],
                            units="m",
                            depends_on=".",
                        ),
                    ),
                )
            )
        instrument = group(
            "instrument", "NXinstrument", dataset("name", g.name or self.instrument), *children
        )
        text = json.dumps({"children": [group("entry", "NXentry", instrument, group("sample", "NXsample"))]})
        if len(text) > MAX_NEXUS_JSON:
            log.info(
                "run geometry of %d pixels is too large for a run start message: sent without it",
                g.det_ids.size,
            )
            return "{}"
        return text

    def _end_run(self, time_ns: int) -> None:
        run = self._run
        self._send(
            "run_control",
            self.sdt.serialise_6s4t(
                job_id=f"{self.instrument}-{run}", run_name=str(run), stop_time=-(-time_ns // 1_000_000)
            ),
        )
        self._run = 0
        left = self._producer.flush(10)
        with self._lock:
            sent = self.sent_events_per_run.get(run, 0)
            self.runs_finished.append(run)
        if left:
            log.warning("run %d: %d messages not yet acknowledged by the broker", run, left)
        log.info("run %d: sent %d events", run, sent)

    def _monitor(self, time_ns: int, monitor: int, tof_100ns: np.ndarray) -> None:
        """One pulse of a monitor: ev44 from source `<instrument>_monitor_<id>`, pixel ids = the monitor id."""
        run, n = self._run, int(tof_100ns.size)
        mid = self._monitor_message_id[monitor] = self._monitor_message_id.get(monitor, 0) + 1
        value = self.sdt.serialise_ev44(
            f"{self.instrument}_monitor_{monitor}",
            mid,
            [time_ns],
            [0],
            tof_100ns.astype(np.int32) * 100,
            np.full(n, monitor, np.int32),
        )

        def delivered(error, _msg, run=run, n=n):
            if error is None:
                with self._lock:
                    counts = self.sent_monitor_events_per_run[run]
                    counts[monitor] = counts.get(monitor, 0) + n

        self._send("monitors", value, delivered)

    def _events(self, time_ns: int, tof_us: np.ndarray, pixel: np.ndarray) -> None:
        run, self._message_id = self._run, self._message_id + 1
        n = int(pixel.size)
        value = self.sdt.serialise_ev44(
            f"{self.instrument}_detector",
            self._message_id,
            [time_ns],
            [0],
            np.rint(tof_us.astype(np.float64) * 1000).astype(np.int32),
            pixel.astype(np.int32),
        )
        with self._lock:
            self.produced_events_per_run[run] += n
            self.events_by_message[self._message_id] = (run, n)

        def delivered(error, _msg, run=run, n=n):
            with self._lock:
                if error is None:
                    self.sent_events_per_run[run] += n
                else:
                    self.failed_messages += 1
            if error is not None:
                log.warning("run %d: a message of %d events was not delivered (%s)", run, n, error)

        self._send("events", value, delivered)


def main(argv: list[str] | None = None, prog: str = "livereduce fake-kafka") -> int:
    p = argparse.ArgumentParser(
        prog=prog, description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter
    )
    p.add_argument("--broker", default="127.0.0.1:9092", help="Kafka bootstrap servers, HOST:PORT")
    p.add_argument("--instrument", default="FAKE", help="instrument name (the topics' prefix)")
    add_run_options(p)
    p.add_argument(
        "--nexus-geometry",
        action="store_true",
        help="put the geometry in each run start's nexus_structure (up to about 11,000 pixels)",
    )
    a = p.parse_args(argv)
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    producer = FakeKafka(
        a.broker,
        instrument=a.instrument,
        pixels=a.pixels,
        banks=a.banks,
        rate=a.rate,
        run_seconds=a.run_seconds,
        runs=a.runs,
        first_run=a.first_run,
        gap_seconds=a.gap_seconds,
        speed=a.speed,
        replay=a.replay,
        seed=a.seed,
        nexus_geometry=a.nexus_geometry,
    )
    return serve_forever(
        producer,
        None,
        prog,
        until=producer.done if a.exit_when_done else None,
        stopped="fake Kafka producer stopped",
        say=log.info,
    )


if __name__ == "__main__":
    sys.exit(main())
