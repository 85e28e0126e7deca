"""The status server: /status, /metrics, plot data, server-sent events and `livereduce status`, read over real
HTTP from a daemon running in-process (a thread worker) on a fake listener with a known, finite output.

Expected numbers come from what the listener was made to produce (5 extracts of 100 events, then nothing) and
from the workspaces the post_proc script builds from literal values, not from the daemon's own output.
"""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest
from inprocess import DaemonOnThread, Notifier
from prometheus_client.parser import text_string_to_metric_families

from livereduce.config import parse_config, resolve
from livereduce.daemon import Daemon, Parts
from livereduce.listeners.fake import FakeEventListener
from livereduce.status.server import StatusServer
from livereduce.worker import ThreadWorker

REPO = Path(__file__).resolve().parents[1]
EXTRACTS, PER_EXTRACT = 5, 100  # the listener's whole output: 500 events, all in run 1


class FiniteListener(FakeEventListener):
    """100 events per extract for the first 5 extracts, then empty chunks: totals that stop changing."""

    def extract(self):
        if self._extracts >= EXTRACTS:
            self.events_per_extract = 0
        return super().extract()


class Running(DaemonOnThread):
    def __init__(self, tmp_path: Path, scripts: dict[str, str], *, port: int = 0, **config):
        self.dir = tmp_path / "scripts"
        self.dir.mkdir()
        for kind, text in scripts.items():
            (self.dir / f"reduce_FAKE_live_{kind}.py").write_text(text)
        raw = {
            "instrument": "FAKE",
            "listener": "fake_event",
            "script_dir": str(self.dir),
            "update_every": 0.05,
            "system_mem_limit_perc": 0,
            "state_dir": str(tmp_path / "state"),
            "status": {"port": port},
            **config,
        }
        cfg, _ = parse_config(raw)
        self.listener = FiniteListener(events_per_extract=PER_EXTRACT, seed=3)
        self.notifier = Notifier()
        self.launch(
            Daemon(
                cfg,
                resolve(cfg),
                Parts(
                    make_listener=lambda: self.listener,
                    notifier=self.notifier,
                    worker=ThreadWorker,
                    status_server=lambda model: StatusServer(model, cfg.status_host, cfg.status_port),
                    watchdog_every=None,
                ),
            )
        )

    @property
    def url(self) -> str:
        assert self.daemon.server is not None, "the status server did not start"
        return self.daemon.server.url  # type: ignore[attr-defined]

    def get(self, path: str) -> tuple[int, str, bytes]:
        with urllib.request.urlopen(self.url + path.lstrip("/"), timeout=10) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()

    def status(self) -> dict:
        return json.loads(self.get("status")[2])


def wait_for(condition, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"{what} not reached within {timeout} s (last: {last!r})")


@pytest.fixture
def running(tmp_path):
    made: list[Running] = []

    def make(scripts, **kw):
        made.append(Running(tmp_path, scripts, **kw))
        return made[-1]

    yield make
    for r in made:
        if r.thread.is_alive():
            r.stop()


# post_proc builds literal workspaces: 2 spectra × 3 bins, and 20 spectra × 1 bin whose counts are 1..20
TWO_SPECTRA = """
CreateWorkspace(DataX=[0.0, 1.0, 2.0, 3.0], DataY=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], NSpec=2, UnitX="TOF",
                OutputWorkspace=output)
"""
TWENTY_SPECTRA = """
CreateWorkspace(DataX=[0.0, 1.0] * 20, DataY=[float(s) for s in range(1, 21)], NSpec=20, UnitX="TOF",
                OutputWorkspace=output)
"""


def settled(r: Running):
    """The status once all 500 events are in and a few empty cycles have followed."""

    def done():
        s = r.status()
        return s if s["events"]["received_total"] == EXTRACTS * PER_EXTRACT and s["cycle"] >= 8 else None

    return wait_for(done, what="all events received")


def test_status_json_reports_the_sessions_known_totals(running):
    r = running({"post_proc": TWO_SPECTRA})
    s = settled(r)
    assert r.listener.produced_total == 500  # what the listener made: the figure the status must show
    assert (s["instrument"], s["engine"]) == ("FAKE", "embedded")
    assert s["listener"]["kind"] == "fake_event" and s["listener"]["connected"] is True
    wait_for(
        lambda: r.status()["listener"]["counters"].get("produced_total") == 500, what="listener counters"
    )
    assert s["run"] == {"number": 1, "state": "RUNNING"}
    assert s["events"]["run"] == 500 and s["events"]["accumulated"] == 500
    assert s["events"]["last_chunk"] == 0 and s["events"]["dropped_total"] == 0
    assert s["timing_ms"]["post_proc"] is not None and s["timing_ms"]["proc"] is None  # no proc script
    post = r.dir / "reduce_FAKE_live_post_proc.py"
    assert s["scripts"] == [
        {
            "kind": "post_proc",
            "path": str(post),
            "md5": hashlib.md5(post.read_bytes()).hexdigest(),
            "loaded_at": s["scripts"][0]["loaded_at"],
        }
    ]
    assert abs(s["scripts"][0]["loaded_at"] - time.time()) < 60
    assert s["last_error"] is None and s["failing"] == []
    assert s["restarts_total"] == 0 and s["uptime_s"] > 0
    assert s["memory"]["rss_mb"] > 10 and s["memory"]["hard_limit_mb"] is None  # system_mem_limit_perc 0
    from livereduce import __version__

    assert s["version"] == __version__


def test_metrics_are_prometheus_text_with_the_same_totals(running):
    r = running({"post_proc": TWO_SPECTRA})
    settled(r)
    status, content_type, body = r.get("metrics")
    assert status == 200 and content_type.startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }
    inst = (("instrument", "FAKE"),)
    assert samples[("livereduce_events_received_total", inst)] == 500
    assert samples[("livereduce_events_accumulated", inst)] == 500
    assert samples[("livereduce_connected", inst)] == 1
    assert samples[("livereduce_run_number", inst)] == 1
    assert samples[("livereduce_events_dropped_total", inst)] == 0
    assert samples[("livereduce_script_errors_total", (*inst, ("script", "post_proc")))] == 0
    assert samples[("livereduce_memory_rss_bytes", inst)] > 1e7
    wait_for(
        lambda: (
            "livereduce_listener_total" in r.get("metrics")[2].decode()
            and 'counter="produced_total"' in r.get("metrics")[2].decode()
        ),
        what="the listener's counters in /metrics",
    )


def test_plot_json_holds_the_output_workspaces_values(running):
    r = running({"post_proc": TWO_SPECTRA})
    settled(r)
    status, _, body = r.get("plot/result.json")
    plot = json.loads(body)
    assert status == 200 and plot["workspace"] == "result" and plot["run_number"] == 1
    assert plot["x_label"] == "Time-of-flight (us)" and plot["n_spectra"] == 2
    # bin centres of edges 0, 1, 2, 3; the values as CreateWorkspace was given them, spectrum by spectrum
    assert [c["label"] for c in plot["curves"]] == ["spectrum 1", "spectrum 2"]
    assert [c["x"] for c in plot["curves"]] == [[0.5, 1.5, 2.5]] * 2
    assert [c["y"] for c in plot["curves"]] == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    assert plot["image"] is None  # two spectra: no detector image
    with pytest.raises(urllib.error.HTTPError) as missing:
        r.get("plot/nothing.json")
    assert missing.value.code == 404
    missing.value.close()


def test_many_spectra_are_drawn_as_an_image_of_counts_per_spectrum(running):
    r = running({"post_proc": TWENTY_SPECTRA})
    settled(r)
    plot = json.loads(r.get("plot/result.json")[2])
    # 20 spectra: ceil(sqrt(20)) = 5 columns, 4 rows; spectrum s holds s counts in its one bin
    assert plot["image_shape"] == [4, 5]
    assert plot["image"] == [float(s) for s in range(1, 21)]
    assert len(plot["curves"]) == 8  # the first eight spectra as lines


def test_a_failing_script_is_the_last_error_with_its_file_line_and_repeat_count(running):
    proc = "x = 1\nraise ValueError('calibration file missing')\n"
    r = running({"proc": proc})
    s = wait_for(
        lambda: (st := r.status())["last_error"] and st["last_error"]["repeat"] >= 3 and st, what="3 repeats"
    )
    error = s["last_error"]
    assert error["script"] == "proc" and error["line"] == 2
    assert error["file"] == str(r.dir / "reduce_FAKE_live_proc.py")
    assert "calibration file missing" in error["message"]
    assert abs(error["time"] - time.time()) < 60
    assert s["failing"] == ["proc"] and s["errors_total"]["proc"] >= 3
    metrics = r.get("metrics")[2].decode()
    assert 'livereduce_script_errors_total{instrument="FAKE",script="proc"}' in metrics


def test_server_sent_events_push_the_status(running):
    r = running({"post_proc": TWO_SPECTRA})
    request = urllib.request.urlopen(r.url + "events", timeout=10)
    assert request.headers["Content-Type"] == "text/event-stream"
    seen: list[dict] = []
    deadline = time.monotonic() + 20
    event = ""
    while time.monotonic() < deadline and len(seen) < 3:
        line = request.readline().decode()
        if line.startswith("event: "):
            event = line[7:].strip()
        elif line.startswith("data: ") and event == "status":
            seen.append(json.loads(line[6:]))
    request.close()
    assert len(seen) == 3, seen
    assert seen[-1]["cycle"] > seen[0]["cycle"]  # pushed as the cycles went on, not one snapshot repeated


def test_the_server_binds_loopback_by_default_and_only_serves_reads(running):
    config, _ = parse_config({"instrument": "FAKE", "listener": "fake_event"})
    assert (config.status_enabled, config.status_host, config.status_port) == (True, "127.0.0.1", 8140)
    r = running({"post_proc": TWO_SPECTRA})
    assert r.url.startswith("http://127.0.0.1:")
    port = int(r.url.rsplit(":", 1)[1].strip("/"))
    others = [
        a.address
        for addrs in psutil.net_if_addrs().values()
        for a in addrs
        if a.family == socket.AF_INET and not a.address.startswith("127.")
    ]
    for address in others:  # the machine's other addresses do not reach it
        with pytest.raises(OSError), socket.create_connection((address, port), timeout=2):
            pass
    request = urllib.request.Request(r.url + "status", method="POST", data=b"{}")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 405
    refused.value.close()


def test_status_false_serves_nothing(tmp_path):
    config, _ = parse_config({"instrument": "FAKE", "listener": "fake_event", "status": False})
    assert config.status_enabled is False
    from livereduce.daemon import build_daemon

    assert build_daemon(config, resolve(config)).parts.status_server is None


def test_a_taken_port_is_an_error_and_the_reduction_goes_on(running, caplog):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        r = running({"post_proc": TWO_SPECTRA}, port=port)
        wait_for(lambda: r.daemon.session and r.daemon.session.state.cycles >= 3, what="cycles")
        assert r.daemon.server is None
        assert f"status page not started: cannot listen on 127.0.0.1:{port}" in caplog.text
        assert r.stop() == 0
    finally:
        holder.close()


def test_livereduce_status_prints_the_state_for_a_terminal(running):
    r = running({"proc": "raise ValueError('no vanadium')\n"})
    wait_for(lambda: r.status()["last_error"], what="a script error")
    out = subprocess.run(
        [sys.executable, "-m", "livereduce", "status", "--url", r.url],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert text.startswith("FAKE  engine embedded")
    assert "listener   fake_event in-process  connected" in text
    assert "run        1 (RUNNING)" in text
    assert "last error proc at " in text and ":1 " in text and "FAILING" in text and "no vanadium" in text
    as_json = subprocess.run(
        [sys.executable, "-m", "livereduce", "status", "--url", r.url, "--json"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
    )
    assert json.loads(as_json.stdout)["instrument"] == "FAKE"


def test_livereduce_status_says_when_no_daemon_answers(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    out = subprocess.run(
        [sys.executable, "-m", "livereduce", "status", "--url", f"http://127.0.0.1:{port}/"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
    )
    assert out.returncode == 1
    assert f"no livereduce status server at http://127.0.0.1:{port}/" in out.stderr
    config = tmp_path / "c.conf"
    config.write_text(json.dumps({"instrument": "FAKE", "listener": "fake_event", "status": {"port": 0}}))
    out = subprocess.run(
        [sys.executable, "-m", "livereduce", "status", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
    )
    assert out.returncode == 2 and "status.port" in out.stderr


def test_the_page_and_its_assets_are_served_from_the_package(running):
    r = running({"post_proc": TWO_SPECTRA})
    status, content_type, body = r.get("")
    assert status == 200 and content_type.startswith("text/html")
    page = body.decode()
    assert '<script src="/static/plotly.min.js">' in page and "https://" not in page  # no CDN
    status, content_type, js = r.get("static/plotly.min.js")
    assert status == 200 and "javascript" in content_type and len(js) > 1_000_000
    assert r.get("static/app.js")[0] == 200
    with pytest.raises(urllib.error.HTTPError) as escape:
        r.get("static/..%2F..%2Fconfig.py")
    assert escape.value.code == 404
    escape.value.close()


def test_counts_per_spectrum_are_summed_block_by_block_with_nan_as_zero(monkeypatch):
    import numpy as np

    from livereduce.status import plot
    from livereduce.workspace import histogram

    monkeypatch.setattr(histogram, "BLOCK_BYTES", 2 * 3 * 8)  # row_blocks: two rows of three float64 a block
    values = np.arange(15, dtype=np.float64).reshape(5, 3)
    values[1, 1] = np.nan
    # by hand: rows 0..4 sum to 3, 8 (3 + 5: the NaN counts as 0), 21, 30, 39
    assert plot._row_sums(values).tolist() == [3.0, 8.0, 21.0, 30.0, 39.0]
