"""`livereduce try [CONFIG] --replay FILE`: the scripts over a recorded run, offline, before they go live.

The real path in one process: a fake SMS (livereduce.servers.adara) replays the file on a free loopback port,
the real ADARA listener reads it, and a session built as the daemon's workers build theirs (same scripts,
parameters, accum_method, preserve_events, run_transition, output_name) is stepped back to back: `--speed`
paces the server, never the session. Progress lines and script errors are the daemon's (ProgressLog). The last
line is `tried N cycles: M events accumulated, K script errors`; exit 0 when clean, 1 on any script error, 2 on
a bad config, no scripts, or a replay file that cannot be read.

Cycle boundaries: a cycle takes what the listener holds when it starts, as a live cycle does; it starts once
new data has arrived (or after DATA_WAIT_S). Runs are cut exactly at the stream's NEW_RUN / END_RUN (the
listener's back-pressure), so per-run results of Add over events, or over histograms of them, do not depend on
timing. Replace, Append and what a post_proc makes of a partial accumulation do depend on where chunks fall,
here as live. The trial ends once the file has been sent and received whole and every run in it has ended and
been processed; after --cycles K; or when run_transition Stop ends the session.

Products: Save* algorithms write into a scratch directory (or --products DIR), by file name: the redirect
`livereduce check` uses (algorithms.registry.SAVE_SANDBOX), applied before an algorithm checks its directory,
so a deployed product path need not exist here. Files a script writes itself with open() are not redirected.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import math
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from livereduce.algorithms.registry import SAVE_SANDBOX
from livereduce.config import Config, Runtime, load_config, resolve, resolve_config_path
from livereduce.errors import ConfigError, ScriptError
from livereduce.instrument.attach import with_instrument
from livereduce.instruments import ListenerKind
from livereduce.listeners.adara.client import AdaraListener
from livereduce.listeners.base import StartFrom
from livereduce.progress import ProgressLog
from livereduce.records import Record, RecordKind
from livereduce.scripts import find_scripts, read_script, script_kind
from livereduce.servers.adara import MAX_GAP_NS, FakeSMS
from livereduce.servers.adara_replay import NEXUS_SUFFIXES
from livereduce.servers.adara_synthetic import packet_parts
from livereduce.worker import WorkerSpec, build_session, session_options

EXIT_SCRIPT_ERROR, EXIT_SETUP, EXIT_INTERRUPTED = 1, 2, 130
DATA_WAIT_S = 0.1  # a cycle starts when new data has arrived, or after this long (a held or quiet stream)
STALL_S = 30.0  # no new bytes for this long (beyond the replay's own pauses): the replay is stuck
QUIET = ("livereduce.sms", "livereduce.listener.adara", "livereduce.stream")  # their INFO is noise here
log = logging.getLogger("livereduce.try")


class SetupError(Exception):
    """Nothing can be tried: no scripts, bad parameters, a replay that cannot be read (exit 2)."""


@dataclasses.dataclass
class Outcome:
    cycles: int = 0
    events: int = 0  # in the accumulation at the end of each run, summed over runs
    script_errors: int = 0

    def summary(self) -> str:
        return f"tried {self.cycles} cycles: {self.events} events accumulated, {self.script_errors} script errors"


class ReplaySMS(FakeSMS):
    """The fake SMS replaying the file to one client. It counts the bytes it queued, so the trial knows when
    all have arrived; for --speed N it runs the recording's clock N times faster; a file it cannot read ends
    the replay with `failure` set instead of a traceback."""

    def __init__(self, path: Path, speed: float | None):
        super().__init__(
            port=0, replay=path, speed="original" if speed else "unlimited", wait_for_client=True
        )
        self.factor = speed
        self.bytes_queued = 0
        self.failure: Exception | None = None

    def _source(self):
        first = None
        try:
            for time_ns, data in super()._source():
                if self.factor and time_ns:
                    first = time_ns if first is None else first
                    time_ns = first + int((time_ns - first) / self.factor)
                yield time_ns, data
        except Exception as exc:
            self.failure = exc

    def _backlog(self, start: int):
        backlog = super()._backlog(start)
        self.bytes_queued += sum(len(part) for data in backlog for part in packet_parts(data))
        return backlog

    def _publish(self, data, time_ns: int) -> None:
        super()._publish(data, time_ns)
        self.bytes_queued += sum(len(part) for part in packet_parts(data))


class ProductScan:
    """Which files in the products directory each cycle wrote (by modification time; a product rewritten
    every cycle is reported once, with its last cycle). Files there from an earlier trial are not ours."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.written: dict[str, int] = {}  # name → the last cycle that wrote it
        self._mtimes = self._stat()

    def _stat(self) -> dict[str, int]:
        # hidden names are product_file's temporary files
        files = (p for p in self.directory.iterdir() if not p.name.startswith(".") and p.is_file())
        return {p.name: p.stat().st_mtime_ns for p in files}

    def scan(self, cycle: int) -> None:
        now = self._stat()
        for name, mtime in now.items():
            if self._mtimes.get(name) != mtime:
                self.written[name] = cycle
        self._mtimes = now

    def report(self) -> None:
        if not self.written:
            log.info("no products were written to %s", self.directory)
            return
        log.info("products in %s:", self.directory)
        for name, cycle in sorted(self.written.items()):
            path = self.directory / name
            size = path.stat().st_size if path.exists() else 0
            log.info("  %s (%s bytes, last written in cycle %d)", name, f"{size:,}", cycle)


@dataclasses.dataclass
class Trial:
    """What one `livereduce try` tries: the config, the (possibly candidate) script directory, the file."""

    config: Config
    runtime: Runtime
    replay: Path
    products: Path
    speed: float | None = None
    max_cycles: int | None = None
    stop: threading.Event = dataclasses.field(default_factory=threading.Event)

    def spec(self) -> WorkerSpec:
        """The worker spec the daemon would build (no state directory: nothing to checkpoint or restore)."""
        # imported where used: every command's parser is built from this module (cli), and none needs it
        from livereduce.script_parameters import ParameterError, load_parameters

        cfg, where = self.config, self.runtime.script_dir
        try:
            found = find_scripts(where, self.runtime.script_names)
            scripts = {
                kind: (path, read_script(path))
                for kind, path in (("proc", found.proc), ("post_proc", found.post_proc))
                if path
            }
            parameters = load_parameters(cfg.parameters, where)
        except (ScriptError, ParameterError) as exc:
            raise SetupError(str(exc)) from None
        session = session_options(cfg, parameters.values, StartFrom("start_of_run"))  # the whole recording
        return WorkerSpec(scripts=scripts, session=session, cumulative=False, state_dir=None, restore=False)

    def run(self) -> Outcome:
        """One trial over the whole file; SetupError when nothing can be tried."""
        outcome = Outcome()
        spec = self.spec()
        sms = ReplaySMS(self.replay, self.speed)
        listener: AdaraListener | None = None
        options = self.config.listener_options if self.runtime.listener is ListenerKind.ADARA else {}
        try:
            listener = AdaraListener(f"127.0.0.1:{sms.start()}", **options)
            try:  # the daemon's rule: the config's instrument_definition where the stream sends no geometry
                source = with_instrument(listener, self.config.instrument_definition)
            except (OSError, ValueError) as exc:
                raise SetupError(
                    f"instrument_definition {self.config.instrument_definition}: {exc}"
                ) from None
            session = build_session(spec, source)
            with _sandbox(self.products):
                self._cycles(session, listener, sms, outcome)
        except ScriptError as exc:  # a script that does not compile: its file and line
            log.error("script error before the first cycle: %s\n%s", exc, exc.traceback_text.rstrip())
            outcome.script_errors += 1
        except ConfigError as exc:
            raise SetupError(f"configuration error: {exc}") from None
        finally:
            if listener is not None:
                listener.close()
            sms.stop()
        if sms.failure is not None:
            raise SetupError(f"cannot replay {self.replay}: {sms.failure}")
        return outcome

    def _cycles(self, session, listener: AdaraListener, sms: ReplaySMS, outcome: Outcome) -> None:
        ended, at_end = 0, {}  # runs whose END_RUN was processed; run → events accumulated at its last cycle
        products = ProductScan(self.products)

        def note(record: Record) -> None:
            nonlocal ended
            if record.kind is RecordKind.CYCLE:
                at_end[record.data.run_number] = record.data.events_accumulated
                products.scan(record.cycle)
            elif record.kind is RecordKind.SCRIPT_ERROR:
                outcome.script_errors += 1
            elif record.kind is RecordKind.RUN_TRANSITION:
                ended += 1

        # one progress line per cycle: its clock counts cycles; the replay's own pauses are not "quiet"
        progress = ProgressLog(
            logging.getLogger("livereduce.progress"),
            update_every=1.0,
            quiet_after=math.inf,
            clock=lambda: float(session.state.cycles),
        )
        session.records.subscribe(progress)
        session.records.subscribe(note)
        stall_s = STALL_S + (MAX_GAP_NS / 1e9 / self.speed if self.speed else 0.0)
        listener.start(session.start_from)  # connect now: the first cycle already finds data
        seen, moved = 0, time.monotonic()
        try:
            while not self.stop.is_set():
                if self.max_cycles is not None and session.state.cycles >= self.max_cycles:
                    break
                idle = session.state.cycles > 0 and session.state.events_last_chunk == 0
                received = _wait_for_data(listener, sms, seen, idle, self.stop)
                complete = sms.done.is_set() and received >= sms.bytes_queued
                if received > seen:
                    seen, moved = received, time.monotonic()
                elif not complete and time.monotonic() - moved > stall_s:
                    raise SetupError(
                        f"the replay stalled: {received:,} of {sms.bytes_queued:,} bytes arrived "
                        f"({listener.state()['last_error'] or 'no error'})"
                    )
                if not session.step():
                    break  # run_transition Stop
                if (
                    complete
                    and ended >= len(sms.runs_finished)
                    and at_end.keys() >= sms.sent_events_per_run.keys()
                ):
                    # every run began and ended in a cycle. A run the file leaves open ends at an empty cycle
                    # that followed an empty cycle and a wait: its last packets had time to be handed over.
                    if set(sms.sent_events_per_run) == set(sms.runs_finished):
                        break
                    if idle and session.state.events_last_chunk == 0:
                        break
        finally:
            outcome.cycles = session.state.cycles
            outcome.events = sum(at_end.values())
            products.report()


@contextlib.contextmanager
def _sandbox(directory: Path) -> Iterator[None]:
    token = SAVE_SANDBOX.set(str(directory))
    try:
        yield
    finally:
        SAVE_SANDBOX.reset(token)


def _wait_for_data(
    listener: AdaraListener, sms: ReplaySMS, seen: int, idle: bool, stop: threading.Event
) -> int:
    """Bytes the listener has received, once more than `seen` have arrived, or the replay is over and the
    last cycle took events, or DATA_WAIT_S has passed (the listener holds its stream at a run's end until the
    next cycle; after an empty cycle its receive thread gets time to hand the last packets over)."""
    deadline = time.monotonic() + DATA_WAIT_S
    while True:
        received = int(listener.state()["bytes_received"])
        if received > seen or (sms.done.is_set() and not idle) or time.monotonic() >= deadline:
            return received
        if stop.wait(0.005):  # a poll interval inside a deadline, not a pause between cycles
            return received


# -- the command ------------------------------------------------------------------------------------------


def add_parser(sub) -> None:
    p = sub.add_parser("try", help="run the scripts over a recorded run, offline, before they go live")
    p.add_argument("config", nargs="?", default=None, help="config file (default /etc/livereduce.conf)")
    p.add_argument(
        "--replay",
        required=True,
        metavar="FILE",
        help="a NeXus event file (.nxs, .nxs.h5, .h5) or an .adara capture",
    )
    p.add_argument(
        "--speed",
        type=_positive(float),
        metavar="N",
        help="replay at N times real time (default: as fast as possible)",
    )
    p.add_argument("--cycles", type=_positive(int), metavar="K", help="stop after K cycles")
    p.add_argument(
        "--scripts", metavar="DIR", help="try the scripts in DIR instead of the config's script_dir"
    )
    p.add_argument(
        "--products", metavar="DIR", help="where Save* algorithms write (default: a new scratch directory)"
    )
    p.add_argument("--watch", action="store_true", help="try again on every save of a script; Ctrl-C ends")
    p.set_defaults(func=cmd_try)


def _positive(kind):
    def parse(text: str):
        value = kind(text)
        if not value > 0 or not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a number > 0, not {text!r}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its "invalid int value" message
    return parse


def cmd_try(args: argparse.Namespace) -> int:
    with _console(), _ctrl_c() as stop:
        return _try(args, stop)


def _try(args: argparse.Namespace, stop: threading.Event) -> int:
    try:
        path = resolve_config_path(args.config)
        config, warnings = load_config(path)
        runtime = resolve(config)
    except ConfigError as exc:
        log.error("configuration error: %s", exc)
        return EXIT_SETUP
    for warning in warnings:
        log.warning("config warning: %s", warning)
    if args.scripts:
        runtime = dataclasses.replace(runtime, script_dir=os.path.abspath(args.scripts))
    replay = Path(args.replay)
    problem = _unreadable(replay)
    if problem:
        log.error("cannot replay %s: %s", replay, problem)
        return EXIT_SETUP
    try:
        products = Path(args.products or tempfile.mkdtemp(prefix="livereduce-try-")).absolute()
        products.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log.error(
            "cannot use %s for products: %s", args.products or "a scratch directory", exc.strerror or exc
        )
        return EXIT_SETUP
    trial = Trial(config, runtime, replay, products, args.speed, args.cycles, stop)
    log.info(
        "trying the scripts in %s (config %s) over %s, %s; Save* products go to %s "
        "(files a script writes with open() are not redirected)",
        runtime.script_dir,
        path or "built-in defaults",
        replay,
        f"at {args.speed:g}x real time" if args.speed else "as fast as possible",
        products,
    )
    if config.engine == "mantid":
        log.warning("engine 'mantid' is not what is tried here: the trial runs the embedded engine")
    if args.watch:
        return _watch(trial, config, stop)
    try:
        outcome = trial.run()
    except SetupError as exc:
        log.error("cannot try the scripts: %s", exc)
        return EXIT_SETUP
    _say(outcome.summary())
    if stop.is_set():
        return EXIT_INTERRUPTED
    return EXIT_SCRIPT_ERROR if outcome.script_errors else 0


def _watch(trial: Trial, config: Config, stop: threading.Event) -> int:
    """Try, then again on every save of a script (or of the parameters file), until Ctrl-C (exit 0)."""
    from livereduce.script_parameters import parameters_path
    from livereduce.watch import Watcher  # watchfiles: only for --watch

    where, names = trial.runtime.script_dir, trial.runtime.script_names
    parameters_file = parameters_path(config.parameters, where)
    changed = threading.Event()

    def on_change(path: str) -> None:
        if script_kind(path, names) or (parameters_file and os.path.abspath(path) == parameters_file):
            changed.set()

    watcher = Watcher([where, *([parameters_file] if parameters_file else [])], on_change)
    watcher.start()  # before the first trial: a save during it tries again right after
    try:
        while not stop.is_set():
            changed.clear()
            try:
                _say(trial.run().summary())
            except SetupError as exc:
                log.error("cannot try the scripts: %s", exc)
            if stop.is_set():
                break
            log.info("watching %s: saving a script tries again (Ctrl-C ends)", where)
            while not (changed.wait(0.2) or stop.is_set()):
                pass
            if changed.is_set() and not stop.is_set():
                log.info("a script changed: trying again")
    finally:
        watcher.stop()
    log.info("stopped watching")
    return 0


def _unreadable(path: Path) -> str:
    """Why the replay file cannot be used ("" when it can): checked here, so it is one clear line (exit 2)."""
    if path.is_dir():
        return "a directory, not a file"
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as exc:
        return exc.strerror or str(exc)
    nexus = path.suffix in NEXUS_SUFFIXES or path.name.endswith(".nxs.h5")
    if nexus and head != b"\x89HDF\r\n\x1a\n":
        return "not an HDF5 (NeXus) file"
    return ""


def _say(line: str) -> None:
    print(line, flush=True)


class _Console(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return text if record.levelno <= logging.INFO else f"{record.levelname}: {text}"


@contextlib.contextmanager
def _console() -> Iterator[None]:
    """Log lines on stdout, in order with the summary: the progress line plainly, problems with their level.
    The servers' and the listener's INFO lines (connections, packets) are not what a trial is about."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_Console("%(message)s"))
    handler.addFilter(logging.Filter("livereduce"))  # scripts' prints and logs are under livereduce.script
    loggers = [logging.getLogger(), logging.getLogger("livereduce"), *map(logging.getLogger, QUIET)]
    levels = [logger.level for logger in loggers]
    loggers[0].addHandler(handler)
    loggers[0].setLevel(min(levels[0] or logging.INFO, logging.INFO))
    loggers[1].setLevel(logging.INFO)
    for logger in loggers[2:]:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        loggers[0].removeHandler(handler)
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@contextlib.contextmanager
def _ctrl_c() -> Iterator[threading.Event]:
    """Ctrl-C sets the event: the trial ends after the cycle in progress (a script would take a
    KeyboardInterrupt as its own error and the session would go on). A second Ctrl-C interrupts at once."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(_sig, _frame) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)
