"""The Mantid engine (livereduce/engines/mantid.py) against the Mantid stand-in (test/mantid_standin, written from
Mantid's documentation; it is not Mantid): the exact StartLiveData arguments, the restart and swap sequences,
a stop with a slow asynchronous algorithm, Mantid's log in Python logging, the `engine: auto` rule, and the
daemon's scenarios run against both engines.

The stand-in is put on sys.path only by the `standin` fixture (and given to Mantid workers and subprocesses
explicitly), so the rest of the suite never sees a `mantid` package.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from inprocess import DaemonOnThread, FiringGuard, Notifier, Running, wait_until

from livereduce import cli
from livereduce.config import parse_config, resolve
from livereduce.daemon import Daemon, Parts
from livereduce.engines import mantid as engine_mod
from livereduce.engines.mantid import MantidEngine, mantid_importable, route_mantid_log, start_live_data_args
from livereduce.records import RecordKind
from livereduce.watch import Watcher
from livereduce.worker import ProcessWorker

REPO = Path(__file__).resolve().parents[1]
STANDIN = str(REPO / "test" / "mantid_standin")
POST_CLONE = "CloneWorkspace(InputWorkspace=input, OutputWorkspace=output)\n"


def _forget_mantid() -> None:
    for name in [n for n in sys.modules if n == "mantid" or n.startswith("mantid.")]:
        del sys.modules[name]


@pytest.fixture
def standin():
    """The stand-in `mantid` package, fresh (its singletons new) and on sys.path for this test only."""
    _forget_mantid()
    sys.path.insert(0, STANDIN)
    import mantid

    yield mantid
    try:
        mantid.AlgorithmManager.cancelAll()
        mantid._standin.cancel_delay = 0.0
        wait_until(
            lambda: not mantid.AlgorithmManager.runningInstances(), 10, "the stand-in's algorithms to end"
        )
    finally:
        logging.getLogger("Mantid").handlers.clear()
        sys.path.remove(STANDIN)
        _forget_mantid()


def _config(**raw):
    cfg, _ = parse_config(raw)
    return cfg, resolve(cfg)


# -- the StartLiveData arguments ---------------------------------------------------------------------------------

BASE = dict(RunTransitionBehavior="Restart", OutputWorkspace="result", PreserveEvents=True)
CASES = {
    "SNS defaults": (
        {"instrument": "POWGEN"},
        dict(
            Instrument="POWGEN",
            UpdateEvery=30.0,
            AccumulationMethod="Add",
            FromNow=False,
            FromStartOfRun=True,
            **BASE,
        ),
    ),
    "SNS, periods are not the SNS listener's": (
        {"instrument": "PG3", "periods": [1], "spectra": [3], "update_every": 10},
        dict(
            Instrument="POWGEN",
            UpdateEvery=10.0,
            AccumulationMethod="Add",
            FromNow=False,
            FromStartOfRun=True,
            **BASE,
        ),
    ),
    "ISIS histogram with periods and spectra, listener and address overrides": (
        {
            "instrument": "ISIS_Histogram",
            "listener": "isis_histogram",
            "address": "127.0.0.1:56789",
            "accum_method": "Replace",
            "periods": [1, 3],
            "spectra": [2, 4, 6],
            "preserve_events": False,
            "update_every": 5,
        },
        dict(
            Instrument="ISIS_Histogram",
            UpdateEvery=5.0,
            PreserveEvents=False,
            AccumulationMethod="Replace",
            OutputWorkspace="result",
            RunTransitionBehavior="Restart",
            FromNow=False,
            FromStartOfRun=True,
            Listener="ISISHistoDataListener",
            Address="127.0.0.1:56789",
            PeriodList=[1, 3],
            SpectraList=[2, 4, 6],
        ),
    ),
    "fake events from now, Stop at the run's end, another output": (
        {
            "instrument": "ADARA_FakeEvent",
            "listener": "fake_event",
            "start_from": "now",
            "run_transition": "Stop",
            "output_name": "live",
            "update_every": 1,
        },
        dict(
            Instrument="ADARA_FakeEvent",
            UpdateEvery=1.0,
            PreserveEvents=True,
            AccumulationMethod="Add",
            OutputWorkspace="live",
            RunTransitionBehavior="Stop",
            FromNow=True,
            FromStartOfRun=False,
            Listener="FakeEventDataListener",
        ),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_start_live_data_arguments(case, standin, tmp_path):
    raw, expected = CASES[case]
    cfg, runtime = _config(**raw)
    assert start_live_data_args(cfg, runtime) == expected
    assert "spectra" not in start_live_data_args(cfg, runtime)  # the anchor's wrong key
    # with scripts: the processing and post-processing files, and an accumulation apart from the output
    proc, post = tmp_path / "p.py", tmp_path / "pp.py"
    proc.write_text("x = 1\n")
    post.write_text(POST_CLONE)
    args = start_live_data_args(cfg, runtime, {"proc": str(proc), "post_proc": str(post)})
    assert args == {
        **expected,
        "ProcessingScriptFilename": str(proc),
        "PostProcessingScriptFilename": str(post),
        "AccumulationWorkspace": "accumulation",
    }
    # Mantid (the stand-in) takes every one of them, as StartLiveData's simple API sets them
    standin.ConfigService.setFacility(
        standin.ConfigService.getInstrument(args["Instrument"]).facility().name()
    )
    alg = standin.AlgorithmManager.createUnmanaged("StartLiveData")
    alg.initialize()
    for key in ["Instrument", *[k for k in args if k != "Instrument"]]:
        alg.setProperty(key, args[key])
    assert alg.validateInputs() == {}


def test_the_anchors_spectra_key_is_refused_by_mantid(standin):
    """The anchor passed spectra as `spectra=`: not a StartLiveData property, so Mantid raises."""
    standin.ConfigService.setFacility("TEST_LIVE")
    with pytest.raises(RuntimeError, match="Unknown property search object spectra"):
        standin.simpleapi.StartLiveData(Instrument="ISIS_Histogram", OutputWorkspace="r", spectra=[1, 2])
    # and a listener's own properties exist only for the listener that has them
    with pytest.raises(RuntimeError, match="Unknown property search object PeriodList"):
        standin.simpleapi.StartLiveData(Instrument="ADARA_FakeEvent", OutputWorkspace="r", PeriodList=[1])


@pytest.mark.parametrize(
    ("key", "value", "error"),
    [
        ("AccumulationMethod", "Sum", ValueError),
        ("RunTransitionBehavior", "Pause", ValueError),
        ("Listener", "NoSuchListener", ValueError),
        ("EndRunBehavior", "Stop", RuntimeError),  # Mantid has RunTransitionBehavior only
    ],
)
def test_stand_in_validates_as_mantid_documents(standin, key, value, error):
    standin.ConfigService.setFacility("TEST_LIVE")
    alg = standin.AlgorithmManager.createUnmanaged("StartLiveData")
    alg.initialize()
    with pytest.raises(error):
        alg.setProperty(key, value)


def test_stand_in_refuses_add_for_histograms_and_two_start_modes(standin):
    standin.ConfigService.setFacility("TEST_LIVE")
    alg = standin.AlgorithmManager.createUnmanaged("StartLiveData")
    alg.initialize()
    alg.setProperty("Instrument", "ISIS_Histogram")
    alg.setProperty("OutputWorkspace", "r")
    assert "Add is not a sensible accumulation method" in alg.validateInputs()["AccumulationMethod"]
    with pytest.raises(RuntimeError, match="exactly one of FromNow, FromStartOfRun, FromTime"):
        standin.simpleapi.StartLiveData(
            Instrument="ADARA_FakeEvent", OutputWorkspace="r", FromNow=True, FromStartOfRun=True
        )


# -- the engine in this process -----------------------------------------------------------------------------------


class Engine:
    """A MantidEngine on the stand-in, polled on a thread; its records collected."""

    def __init__(self, tmp_path: Path, *, post: str | None = POST_CLONE, stop_wait=2.0, **raw):
        raw = {
            "instrument": "ADARA_FakeEvent",
            "listener": "fake_event",
            "update_every": 0.1,
            "start_from": "now",
            "script_dir": str(tmp_path),
            **raw,
        }
        cfg, runtime = _config(**raw)
        self.args = start_live_data_args(cfg, runtime)
        self.post_path = str(tmp_path / "reduce_ADARA_FakeEvent_live_post_proc.py")
        scripts = {"post_proc": (self.post_path, post.encode())} if post else {}
        self.records: list = []
        self.engine = MantidEngine(
            self.args,
            scripts,
            lambda record, state: self.records.append(record),
            workdir=str(tmp_path / "work"),
            stop_wait=stop_wait,
        )
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self):
        while not self._stop.is_set():
            with self._lock:
                self.engine.poll()
            time.sleep(0.02)

    def start(self):
        self.engine.start()
        self.thread.start()
        return self

    def call(self, fn, *args):
        with self._lock:
            return fn(*args)

    def of(self, kind):
        return [r for r in list(self.records) if r.kind is kind]

    def cycles(self, n, timeout=15.0):
        start = len(self.of(RecordKind.CYCLE))
        wait_until(lambda: len(self.of(RecordKind.CYCLE)) >= start + n, timeout, f"{n} more cycles")
        return self.of(RecordKind.CYCLE)[-1]

    def close(self):
        self._stop.set()
        self.thread.join(5)
        self.engine.stop()
        self.engine.close()


@pytest.fixture
def engine(standin, tmp_path):
    made = []

    def make(**kw):
        made.append(Engine(tmp_path, **kw).start())
        return made[-1]

    yield make
    for e in made:
        e.close()


def test_start_records_and_the_exact_call(engine, standin, tmp_path):
    e = engine()
    last = e.cycles(4)
    started = e.of(RecordKind.STARTED)[0].data
    assert (started.accumulation, started.output) == ("accumulation", "result")
    assert e.of(RecordKind.LISTENER)[0].data.connected
    assert last.data.run_number == 1 and last.data.run_status == "RUNNING"
    assert last.data.events_accumulated > 0 and last.data.accumulation_bytes > 0
    assert last.data.cycle_seconds is not None and 0.05 < last.data.cycle_seconds < 2
    accumulated = [r.data.events_accumulated for r in e.of(RecordKind.CYCLE)]
    assert accumulated == sorted(accumulated)  # Add: it only grows
    copy = str(tmp_path / "work" / "post_proc" / "reduce_ADARA_FakeEvent_live_post_proc.py")
    assert standin._standin.calls[0] == (
        "StartLiveData",
        {
            "Instrument": "ADARA_FakeEvent",
            "UpdateEvery": 0.1,
            "PreserveEvents": True,
            "AccumulationMethod": "Add",
            "OutputWorkspace": "result",
            "RunTransitionBehavior": "Restart",
            "FromNow": True,
            "FromStartOfRun": False,
            "Listener": "FakeEventDataListener",
            "PostProcessingScriptFilename": copy,  # the accepted text, copied where Mantid reads it
            "AccumulationWorkspace": "accumulation",
        },
    )
    assert Path(copy).read_text() == POST_CLONE


def test_restart_is_stop_clear_start(engine, standin):
    e = engine()
    before = e.cycles(3).data.events_accumulated
    n = len(standin._standin.calls)
    e.call(e.engine.request, "clear", "memory 9000 MB")
    e.cycles(2)
    sequence = [
        name for name, _ in standin._standin.calls[n:] if name in ("cancelAll", "ADS.clear", "StartLiveData")
    ]
    assert sequence == ["cancelAll", "ADS.clear", "StartLiveData"]
    first_after = next(
        r for r in e.of(RecordKind.CYCLE) if r.cycle > 3 and r.data.events_accumulated < before
    )
    assert first_after is not None  # a new accumulation


def test_post_proc_swap_keeps_the_accumulation(engine, standin):
    e = engine()
    before = e.cycles(3).data.events_accumulated
    n = len(standin._standin.calls)
    swapped = "CloneWorkspace(InputWorkspace=input, OutputWorkspace='swapped')\n" + POST_CLONE
    e.call(e.engine.request, "swap_post_proc", (e.post_path, swapped.encode()))
    wait_until(lambda: standin.mtd.doesExist("swapped"), 10, "the new post_proc to run")
    after = e.cycles(2).data.events_accumulated
    assert after > before  # the same accumulation, still growing
    assert not {"cancelAll", "StartLiveData", "ADS.clear"} & {name for name, _ in standin._standin.calls[n:]}


def test_stop_with_a_slow_asynchronous_algorithm(engine, standin, caplog):
    e = engine(stop_wait=0.3)
    e.cycles(2)
    standin._standin.cancel_delay = 2.0  # MonitorLiveData notices the cancel 2 s late
    t = time.monotonic()
    assert e.call(e.engine.stop) is False
    assert time.monotonic() - t < 1.5  # the wait is bounded
    assert "still running 0.3 s after cancelAll" in caplog.text
    assert standin.AlgorithmManager.runningInstancesOf("MonitorLiveData")
    wait_until(lambda: not standin.AlgorithmManager.runningInstances(), 10, "MonitorLiveData to end at last")


def test_a_script_error_is_a_record_with_the_users_file_and_line(engine):
    e = engine(post="x = 1\nraise ValueError('no such bank')\n")
    wait_until(lambda: e.of(RecordKind.SCRIPT_ERROR), 15, "a script error")
    d = e.of(RecordKind.SCRIPT_ERROR)[0].data
    assert (d.script, d.file, d.line) == ("post_proc", e.post_path, 2)
    assert d.message == "ValueError: no such bank"
    assert e.post_path in d.traceback  # the user's path, not our copy's
    # until Mantid's live data starts again, the engine waits (the daemon's watchdog is fed), it is not stuck
    wait_until(
        lambda: any(r.data.reason.startswith("Mantid stopped live data") for r in e.of(RecordKind.WAITING)),
        10,
        "WAITING for the next start",
    )


def test_a_script_error_whose_traceback_names_no_file_is_still_a_script_error(engine, standin):
    standin._standin.script_filename = "<string>"
    e = engine(post="raise KeyError('bank99')\n")
    wait_until(lambda: e.of(RecordKind.SCRIPT_ERROR), 15, "a script error")
    d = e.of(RecordKind.SCRIPT_ERROR)[0].data
    assert (d.script, d.file, d.line, d.message) == ("post_proc", e.post_path, None, "KeyError: 'bank99'")


def test_compress_runs_compress_events_on_the_accumulation(engine, standin):
    e = engine()
    e.cycles(2)
    e.call(e.engine.request, "compress", "memory 500 MB")
    wait_until(lambda: "CompressEvents" in standin._standin.names(), 10, "CompressEvents")
    call = next(p for name, p in standin._standin.calls if name == "CompressEvents")
    assert call["InputWorkspace"] == call["OutputWorkspace"] == "accumulation"


def test_run_transitions_restart_and_stop(engine, standin):
    standin.ConfigService["fakeeventdatalistener.endrunevery"] = "0.5"  # the fake DAS ends a run every 0.5 s
    e = engine(run_transition="Restart")
    wait_until(lambda: e.of(RecordKind.RUN_TRANSITION), 15, "a run transition")
    assert e.of(RecordKind.RUN_TRANSITION)[0].data.run_number == 1
    wait_until(lambda: e.of(RecordKind.CYCLE)[-1].data.run_number == 2, 15, "run 2's cycles")
    e.close()
    stop = engine(run_transition="Stop")
    wait_until(lambda: stop.engine.ended, 15, "MonitorLiveData to end at the run's end")
    assert stop.of(RecordKind.CYCLE)[-1].data.run_status == "END_RUN"


def test_update_every_0_is_one_chunk(engine):
    e = engine(update_every=0)
    wait_until(lambda: e.engine.ended, 15, "the single chunk")
    assert len(e.of(RecordKind.CYCLE)) == 1


def test_a_das_that_is_down_is_waiting_and_retried(engine, standin):
    standin._standin.fail_connect = "Connection refused"
    e = engine()
    wait_until(lambda: e.of(RecordKind.LISTENER), 10, "the listener's state")
    listener = e.of(RecordKind.LISTENER)[0].data
    assert any("StartLiveData failed: Unable to connect" in r.data.reason for r in e.of(RecordKind.WAITING))
    assert not listener.connected and "Connection refused" in listener.last_error
    standin._standin.fail_connect = None
    e.cycles(2, timeout=20)  # retried after 1 s, then running


# -- Mantid's log ------------------------------------------------------------------------------------------------


def test_mantid_log_arrives_in_python_logging_with_its_level(standin, caplog):
    caplog.set_level(logging.DEBUG)
    route_mantid_log(logging.INFO)
    standin.kernel.logger.warning("the disk is nearly full")
    standin.kernel.logger.notice("Loading live data chunk 3")
    standin.kernel.logger.error("cannot open bank 12")
    standin.kernel.logger.debug("not shown at INFO")
    got = [(r.name, r.levelno, r.getMessage()) for r in caplog.records if r.name == "Mantid"]
    assert got == [
        ("Mantid", logging.WARNING, "the disk is nearly full"),
        ("Mantid", logging.INFO, "Loading live data chunk 3"),
        ("Mantid", logging.ERROR, "cannot open bank 12"),
    ]


# -- engine: auto -----------------------------------------------------------------------------------------------


def _scripts(tmp_path, post: str) -> Path:
    d = tmp_path / "scripts"
    d.mkdir(exist_ok=True)
    (d / "reduce_ADARA_FakeEvent_live_post_proc.py").write_text(post)
    return d


NEEDS_MANTID = "LoadEventAndCompress(Filename='x', OutputWorkspace='y')\n"


def test_auto_picks_mantid_for_scripts_the_embedded_engine_cannot_run(standin, tmp_path):
    cfg, runtime = _config(
        instrument="ADARA_FakeEvent", listener="fake_event", script_dir=str(_scripts(tmp_path, NEEDS_MANTID))
    )
    engine, why = cli._engine(cfg, runtime)
    assert engine == "mantid"
    assert "LoadEventAndCompress (reduce_ADARA_FakeEvent_live_post_proc.py:1)" in why


def test_auto_keeps_the_embedded_engine_when_it_runs_everything(standin, tmp_path):
    cfg, runtime = _config(
        instrument="ADARA_FakeEvent", listener="fake_event", script_dir=str(_scripts(tmp_path, POST_CLONE))
    )
    assert cli._engine(cfg, runtime)[0] == "embedded"
    cfg, runtime = _config(
        instrument="ADARA_FakeEvent",
        listener="fake_event",
        engine="mantid",
        script_dir=str(tmp_path / "scripts"),
    )
    assert cli._engine(cfg, runtime)[0] == "mantid"  # the config says so


def test_auto_without_mantid_runs_embedded_and_warns(tmp_path, caplog):
    assert not mantid_importable()[0]
    cfg, runtime = _config(
        instrument="ADARA_FakeEvent", listener="fake_event", script_dir=str(_scripts(tmp_path, NEEDS_MANTID))
    )
    engine, why = cli._engine(cfg, runtime)
    assert engine == "embedded" and "cannot be imported" in why
    assert "the scripts call what the embedded engine lacks (LoadEventAndCompress" in caplog.text


def test_our_own_mantid_aliases_are_not_mantid():
    from livereduce.mantidapi import script_imports

    with script_imports():
        assert not mantid_importable()[0]


def test_engine_mantid_without_mantid_is_exit_2_naming_the_environment(tmp_path):
    config = {
        "instrument": "ADARA_FakeEvent",
        "listener": "fake_event",
        "engine": "mantid",
        "CONDA_ENV": "mantid-dev",
        "script_dir": str(_scripts(tmp_path, POST_CLONE)),
        "state_dir": str(tmp_path / "state"),
        "log_file": str(tmp_path / "log"),
        "status": {"port": 0},
    }
    path = tmp_path / "livereduce.conf"
    path.write_text(json.dumps(config))
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "livereduce.py"), str(path)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    text = (tmp_path / "log").read_text()
    assert (
        "cannot run engine 'mantid': this Python" in text
        and "CONDA_ENV='mantid-dev'" in text
        and "PIXI_ENV" in text
    )


# -- the daemon, against both engines ----------------------------------------------------------------------------


class MantidRunning(DaemonOnThread):
    stop_timeout = 20.0  # a worker process running the stand-in's live algorithms

    """The daemon in-process as `inprocess.Running`, with the Mantid engine's worker processes (the stand-in
    on their path) in place of the embedded session."""

    def __init__(self, tmp_path: Path, scripts: dict[str, str], **config):
        self.dir = tmp_path / "scripts"
        self.dir.mkdir()
        for kind, text in scripts.items():
            self.write(kind, text)
        self.config_path = tmp_path / "livereduce.conf"
        raw = {
            "instrument": "ADARA_FakeEvent",
            "listener": "fake_event",
            "script_dir": str(self.dir),
            "update_every": 0.1,
            "start_from": "now",
            "system_mem_limit_perc": 0,
            "state_dir": str(tmp_path / "state"),
            **config,
        }
        self.config_path.write_text(json.dumps(raw))
        cfg, _ = parse_config(raw)
        runtime = resolve(cfg)
        self.notifier = Notifier()
        self.guards: list[FiringGuard] = []

        def guard(on_soft, on_hard):
            self.guards.append(FiringGuard(on_soft, on_hard))
            return self.guards[-1]

        self.launch(
            Daemon(
                cfg,
                runtime,
                Parts(
                    make_listener=None,
                    watch=Watcher,
                    memory_guard=guard,
                    notifier=self.notifier,
                    worker=functools.partial(
                        ProcessWorker, target=functools.partial(engine_mod.worker_main, python_path=[STANDIN])
                    ),
                    engine="mantid",
                    engine_options=start_live_data_args(cfg, runtime),
                    watchdog_every=0.05,
                ),
                config_path=str(self.config_path),
            )
        )

    def write(self, kind: str, text: str):
        path = self.dir / f"reduce_ADARA_FakeEvent_live_{kind}.py"
        temp = path.with_suffix(".tmp")
        temp.write_text(text)
        temp.replace(path)


@pytest.fixture(params=["embedded", "mantid"])
def daemon_on(request, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    started = []

    def start(scripts):
        if request.param == "embedded":
            started.append(Running(tmp_path, scripts, update_every=0.1))
        else:
            started.append(MantidRunning(tmp_path, scripts))
        return started[-1]

    start.engine = request.param  # type: ignore[attr-defined]
    yield start
    for r in started:
        if r.thread.is_alive():
            r.stop()


def test_daemon_scenario_on_both_engines(daemon_on):
    r = daemon_on({"post_proc": POST_CLONE})
    status = r.daemon.status
    assert status.snapshot(memory=False)["engine"] == daemon_on.engine
    wait_until(lambda: status.snapshot(memory=False)["cycle"] >= 3, 30, "three cycles on the status page")
    snap = status.snapshot(memory=False)
    assert snap["phase"] == "running" and snap["events"]["accumulated"] > 0
    wait_until(lambda: "READY=1" in r.notifier.sent, 10, "READY")
    wait_until(
        lambda: any(m.startswith("STATUS=running: run") for m in r.notifier.sent), 10, "STATUS running"
    )
    assert "WATCHDOG=1" in r.notifier.sent
    # a post_proc edit is picked up without a restart: its error reaches the status page
    restarts = snap["restarts_total"]
    r.write("post_proc", "raise ValueError('edited post_proc runs')\n")

    def edited_runs():
        return (
            (status.snapshot(memory=False)["last_error"] or {}).get("message", "").endswith("post_proc runs")
        )

    wait_until(edited_runs, 30, "the edited post_proc to run")
    last = status.snapshot(memory=False)["last_error"]
    assert last["script"] == "post_proc" and last["line"] == 1
    assert status.snapshot(memory=False)["restarts_total"] == restarts
    # fixed again: cycles go on (under Mantid after its own restart of live data)
    r.write("post_proc", POST_CLONE)
    wait_until(lambda: not status.snapshot(memory=False)["failing"], 30, "post_proc to run cleanly again")
    cycle = status.snapshot(memory=False)["cycle"]
    wait_until(lambda: status.snapshot(memory=False)["cycle"] >= cycle + 2, 30, "more cycles")
    # a new proc script: the daemon restarts the session (a new worker; for Mantid a new StartLiveData)
    r.write("proc", "x = 1\n")
    wait_until(lambda: status.snapshot(memory=False)["restarts_total"] == restarts + 1, 30, "the restart")
    cycle = status.snapshot(memory=False)["cycle"]
    wait_until(lambda: status.snapshot(memory=False)["cycle"] >= cycle + 2, 30, "cycles after the restart")
    assert r.stop() == 0


def test_daemon_memory_limit_on_the_mantid_engine_compresses_then_restarts(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    r = MantidRunning(tmp_path, {"post_proc": POST_CLONE})
    try:
        wait_until(lambda: r.daemon.status.snapshot(memory=False)["cycle"] >= 2, 30, "cycles")
        r.guards[0].on_soft(900.0, 800.0, 1000.0)
        wait_until(lambda: "accumulation accumulation compressed" in caplog.text, 15, "the compression")
        r.guards[0].on_hard(1100.0, 800.0, 1000.0)
        wait_until(lambda: r.daemon.status.snapshot(memory=False)["restarts_total"] == 1, 15, "a restart")
        wait_until(lambda: caplog.text.count("starting Mantid StartLiveData") >= 2, 15, "a new StartLiveData")
    finally:
        assert r.stop() == 0


def test_service_auto_picks_mantid_and_sigterm_exits_0(tmp_path):
    """The real command line, with the stand-in on PYTHONPATH: engine auto takes Mantid for a script the
    embedded engine cannot run, the worker runs StartLiveData, SIGTERM ends it with exit 0 — although Mantid's
    MonitorLiveData takes 30 s to notice the cancel: the wait for it is bounded."""
    scripts = _scripts(tmp_path, POST_CLONE + "if False:\n    " + NEEDS_MANTID)
    log_path = tmp_path / "livereduce.log"
    config = {
        "instrument": "ADARA_FakeEvent",
        "listener": "fake_event",
        "update_every": 0.2,
        "start_from": "now",
        "script_dir": str(scripts),
        "state_dir": str(tmp_path / "state"),
        "log_file": str(log_path),
        "system_mem_limit_perc": 0,
        "status": {"port": 0},
    }
    path = tmp_path / "livereduce.conf"
    path.write_text(json.dumps(config))
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "livereduce.py"), str(path)],
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(REPO), STANDIN]),
            "MANTID_STANDIN_CANCEL_DELAY": "30",
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(
            lambda: log_path.exists() and "Loading live data chunk 3" in log_path.read_text(), 60, "cycles"
        )
        text = log_path.read_text()
        assert (
            "engine mantid: auto: the scripts call what the embedded engine lacks (LoadEventAndCompress"
            in text
        )
        t = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        assert time.monotonic() - t < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    text = log_path.read_text()
    assert "stopping Mantid live data" in text
    assert "Mantid's MonitorLiveData still running 2.0 s after cancelAll" in text
