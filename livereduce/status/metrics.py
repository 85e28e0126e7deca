"""Prometheus metrics, read from the status model at scrape time (one source of truth, no second bookkeeping).

Names carry their units (`_bytes`, `_seconds`, `_total` for counters) and every series the `instrument`
label, so one Prometheus can scrape the daemons of several beamlines.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from livereduce.status.model import StatusModel

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class StatusCollector:
    def __init__(self, model: StatusModel):
        self.model = model

    def collect(self) -> Iterator[Metric]:
        s = self.model.snapshot()
        labels = ["instrument"]
        inst = [s["instrument"]]

        def gauge(name: str, text: str, value) -> GaugeMetricFamily:
            g = GaugeMetricFamily(f"livereduce_{name}", text, labels=labels)
            g.add_metric(inst, float(value or 0))
            return g

        def counter(name: str, text: str, value) -> CounterMetricFamily:
            c = CounterMetricFamily(f"livereduce_{name}", text, labels=labels)
            c.add_metric(inst, float(value or 0))
            return c

        ev, timing = s["events"], s["timing_ms"]
        yield gauge("up", "1 while the daemon runs", 1)
        yield gauge("connected", "1 when the listener is connected to the DAS", s["listener"]["connected"])
        yield gauge("run_number", "the run being reduced (0: none)", s["run"]["number"])
        yield counter("cycles", "cycles completed by the current session", s["cycle"])
        yield counter("events_received", "events received from the DAS", ev["received_total"])
        yield counter("events_dropped", "events lost for good (counted and logged)", ev["dropped_total"])
        yield gauge("events_in_run", "events received in the current run", ev["run"])
        yield gauge("events_accumulated", "events in the accumulation", ev["accumulated"])
        yield gauge("events_outside_bins", "events outside the histogram's bins this run", ev["outside_bins"])
        yield gauge("event_rate_per_second", "events per second over the last cycle", ev["rate_per_s"])
        yield gauge("accumulation_bytes", "size of the accumulation workspace", s["accumulation_bytes"])
        yield gauge(
            "memory_rss_bytes", "resident memory of the daemon and its worker", 1e6 * s["memory"]["rss_mb"]
        )
        for script in ("proc", "post_proc"):
            ms = timing[script]
            yield gauge(f"{script}_seconds", f"duration of the last {script} script run", (ms or 0) / 1e3)
        errors = CounterMetricFamily(
            "livereduce_script_errors", "script errors by script", labels=[*labels, "script"]
        )
        for script, n in s["errors_total"].items():
            errors.add_metric([*inst, script], float(n))
        yield errors
        yield counter(
            "session_restarts", "worker restarts (hung, died, memory, script edits)", s["restarts_total"]
        )
        yield counter("runs_ended", "runs that ended while the daemon ran", s["runs_ended"])
        yield gauge("uptime_seconds", "seconds since the daemon started", s["uptime_s"])
        listener = CounterMetricFamily(
            "livereduce_listener",
            "the listener's own counters (bytes, packets, reconnects, …)",
            labels=[*labels, "counter"],
        )
        for key, value in sorted(s["listener"]["counters"].items()):
            if isinstance(value, int | float) and not isinstance(value, bool):
                listener.add_metric([*inst, key], float(value))
        yield listener


def registry_for(model: StatusModel) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatusCollector(model))
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
