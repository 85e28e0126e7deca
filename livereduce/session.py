"""The live session: one cycle is Mantid's LoadLiveData, the loop is MonitorLiveData.

A cycle: apply pending requests → read-and-clear data_reset → extract → run_status → proc script (or pass
the chunk through) → histogram events unless preserve_events → accumulate → post_proc script → apply the
run transition. The session owns every workspace and knows nothing of files, signals or systemd: the daemon
posts requests (clear, swap post_proc, compress) and reads `state`.

Where we differ from Mantid (docs/live-semantics.md): errors never end the session; a chunk whose proc script
fails is carried into the next cycle's input, so its events are processed once the script works again;
after an EndRun, empty between-run chunks do not replace the finished run's result; a post_proc script need
not create the output workspace.
"""

from __future__ import annotations

import enum
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from livereduce import script_parameters
from livereduce.accumulate import Incompatible, Method, accumulate
from livereduce.checkpoint import Checkpoint
from livereduce.chunks import workspace_from_chunk
from livereduce.errors import ConfigError, NotYet, ScriptError
from livereduce.instruments import refuse_add
from livereduce.listeners.base import Chunk, ChunkEvents, RunStatus, StartFrom
from livereduce.records import Dispatcher, RecordKind
from livereduce.scripts import Script, compile_script, run_script
from livereduce.workspace.ads import ActiveRegistry, AnalysisDataService, active, using
from livereduce.workspace.events import EventWorkspace
from livereduce.workspace.group import WorkspaceGroup
from livereduce.workspace.histogram import HistogramWorkspace

RUN_TRANSITIONS = ("Restart", "Stop", "Rename")
NOT_YET_RETRY_S = 2.0
MAX_CARRIED_EVENTS = 100_000_000  # default cap on events kept for a failing proc script (~1.6 GB)


class Phase(enum.StrEnum):
    STARTING = "starting"
    WAITING = "waiting"  # the listener is not ready yet; retried every NOT_YET_RETRY_S
    RUNNING = "running"
    STOPPED = "stopped"


@dataclass
class Taken:
    """What one cycle reads from its listener: the reset flag (read before extracting), the chunk, the run
    status latched by that extract, and the listener's run number at that moment."""

    reset: bool
    chunk: Chunk
    status: RunStatus
    listener_run_number: int


def take_from(listener) -> Taken:
    """The one place a session reads its listener (NotYet propagates). A listener that lives in another
    process (livereduce.worker.RemoteListener) answers all four in one call."""
    take = getattr(listener, "take", None)
    if take is not None:
        return take()
    reset = listener.data_reset()
    chunk = listener.extract()
    return Taken(reset, chunk, listener.run_status(), int(listener.run_number or 0))


@dataclass
class SessionState:
    """What the daemon, the log and the status page read. Written only by the session thread."""

    phase: Phase = Phase.STARTING
    cycles: int = 0
    events_last_chunk: int = 0
    events_received: int = 0  # since the session started
    events_in_run: int = 0  # received since the current run (or accumulation) began
    events_accumulated: int = 0  # in the current accumulation (counts, for histograms)
    events_carried: int = 0  # waiting in a chunk whose proc script failed
    events_dropped: int = 0  # lost for good (counted, logged)
    events_outside_bins: int = 0  # since the accumulation began: fell outside the bins they were
    # histogrammed into (by Rebin in a script or by the session), not counted
    event_rate: float = 0.0  # events/s over the last cycle
    proc_seconds: float | None = None
    post_proc_seconds: float | None = None
    cycle_seconds: float | None = None
    proc_errors: int = 0
    post_proc_errors: int = 0
    cycle_errors: int = 0
    last_error: str | None = None
    last_error_time: float | None = None
    run_number: int = 0
    run_status: str = "NO_RUN"
    scripts: dict = field(default_factory=dict)  # file name → md5
    accumulation_bytes: int = 0
    last_cycle_time: float | None = None
    last_pulse_ns: int = 0  # the latest pulse time accumulated (checkpoints resume after it)
    events_skipped_resumed: int = 0  # replayed after a resume and already in the restored accumulation
    heartbeat: float = field(default_factory=time.monotonic)


class Session:
    def __init__(
        self,
        *,
        listener,
        proc: Script | None = None,
        post_proc: Script | None = None,
        accum_method: Method | str = Method.ADD,
        preserve_events: bool = True,
        update_every: float = 30.0,
        run_transition: str = "Restart",
        output_name: str = "result",
        start: StartFrom | None = None,
        max_carried_events: int = MAX_CARRIED_EVENTS,
        ads: AnalysisDataService | None = None,
        parameters: dict | None = None,
        dispatcher: Dispatcher | None = None,
        logger: logging.Logger | None = None,
    ):
        self.method = accum_method if isinstance(accum_method, Method) else Method.parse(accum_method)
        refused = refuse_add(not listener.buffers_events, self.method.value)
        if refused:
            raise ConfigError("accum_method", refused, self.method.value)
        if run_transition not in RUN_TRANSITIONS:
            raise ConfigError("run_transition", " / ".join(RUN_TRANSITIONS), run_transition)
        self.listener, self.proc, self.post_proc = listener, proc, post_proc
        self.preserve_events, self.update_every = bool(preserve_events), float(update_every)
        self.run_transition, self.output_name = run_transition, output_name
        self.max_carried_events = int(max_carried_events)
        self.parameters = dict(parameters or {})  # config `parameters`: what scripts read as parameters[...]
        self.accumulation_name = "accumulation" if post_proc is not None else output_name
        self.input_name = f"__livereduce_input_{output_name}"
        self.start_from = start or StartFrom()
        # the session's own registry (a new one unless given): its scripts' `mtd` while it runs
        self.ads = (
            active() if isinstance(ads, ActiveRegistry) else ads if ads is not None else AnalysisDataService()
        )
        self.records = dispatcher or Dispatcher()
        self.log = logger or logging.getLogger("livereduce.session")
        self.state = SessionState(scripts={s.name: s.md5 for s in (proc, post_proc) if s is not None})
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        self._replace_next = True  # first cycle and after a reset: Replace
        self._carry: EventWorkspace | None = None  # chunk workspace whose proc failed
        self._acc: Any = None  # the accumulation (a workspace or group); owned here, also registered by name
        self._counted: Any = None  # the accumulation st.events_accumulated was last counted over
        self._last_extract = time.monotonic()
        self._started = False
        # set by the daemon: accumulation → smaller accumulation (soft memory limit)
        self.compress_hook: Callable[[Any], Any] | None = None
        self._resume: Checkpoint | None = None  # restored, until the stream shows which run it is in
        self._run_start = ""  # the current run's start time, as its chunks state it

    # -- requests from other threads (applied at the next cycle boundary) -------------------------
    def request(self, action: str, payload=None) -> None:
        self._requests.put((action, payload))

    def _apply_requests(self) -> None:
        while True:
            try:
                action, payload = self._requests.get_nowait()
            except queue.Empty:
                return
            if action == "swap_post_proc":
                if isinstance(payload, tuple):  # (path, text) from another process: compiled here
                    payload = compile_script(payload[0], "post_proc", payload[1])
                self.post_proc = payload
                self.state.scripts = {s.name: s.md5 for s in (self.proc, payload) if s is not None}
                self.log.info(
                    "post_proc script swapped in: %s (md5 %s); accumulation kept", payload.name, payload.md5
                )
            elif action == "set_parameters":
                self.parameters = dict(payload)
                script_parameters.set_active(self.parameters)
                self.log.info("parameters in use from this cycle: %s", ", ".join(sorted(payload)) or "none")
            elif action == "clear":
                self.clear(payload or "requested")
            elif action == "compress":
                self._compress(payload)

    def clear(self, reason: str) -> None:
        for name in (self.accumulation_name, self.output_name, self.input_name):
            self.ads.remove(name)
        self._carry = self._acc = None
        self._replace_next = True
        self.state.events_accumulated = self.state.accumulation_bytes = 0
        self.state.events_in_run = self.state.events_outside_bins = 0
        self.log.warning("accumulation cleared: %s", reason)
        self.records.emit(RecordKind.RESET, self.state.cycles, reason=reason)

    def _compress(self, reason) -> None:
        if self.compress_hook is None or self._acc is None:
            return
        acc = self._acc
        before = acc.nbytes()
        smaller = self._acc = self.compress_hook(acc)
        self.ads.addOrReplace(self.accumulation_name, smaller)
        self.state.accumulation_bytes = smaller.nbytes()
        self.log.warning(
            "accumulation compressed (%s): %.1f MB -> %.1f MB", reason, before / 1e6, smaller.nbytes() / 1e6
        )

    # -- the loop ---------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Cycles start every update_every seconds (start to start; back to back when slower; no catch-up)."""
        next_start = time.monotonic()
        while not stop.is_set():
            delay = next_start - time.monotonic()
            if delay > 0:
                stop.wait(delay)
                continue
            started = time.monotonic()
            try:
                keep_going = self.step()
            except Exception as exc:  # a bug or a broken listener must not end live reduction
                keep_going = True
                self.state.cycle_errors += 1
                self._error(f"cycle failed: {type(exc).__name__}: {exc}")
                self.log.exception("cycle %d failed; the session continues", self.state.cycles)
            if not keep_going or (self.update_every == 0 and self.state.cycles >= 1):
                break
            period = NOT_YET_RETRY_S if self.state.phase is Phase.WAITING else self.update_every
            next_start = max(started + period, time.monotonic())
        self.state.phase = Phase.STOPPED
        self.records.emit(RecordKind.STOPPED, self.state.cycles)

    def step(self) -> bool:
        """Run one cycle. Returns False when the session should end (run_transition Stop at an EndRun)."""
        # scripts and algorithms see this session's registry as `mtd`, its parameters as livereduce.parameters
        with using(self.ads), script_parameters.active(self.parameters):
            return self._step()

    def _step(self) -> bool:
        st = self.state
        if not self._started:
            self.listener.start(self.start_from)
            self._started = True
            self.records.emit(
                RecordKind.STARTED, 0, accumulation=self.accumulation_name, output=self.output_name
            )
        self._apply_requests()
        st.heartbeat = time.monotonic()
        try:
            taken = take_from(self.listener)
        except NotYet as exc:
            if st.phase is not Phase.WAITING:
                self.log.info("waiting for data: %s", exc)
            st.phase = Phase.WAITING
            self.records.emit(RecordKind.WAITING, st.cycles, reason=str(exc))
            return True
        t0 = time.monotonic()
        reset, chunk, status = taken.reset, taken.chunk, taken.status
        st.phase, st.cycles = Phase.RUNNING, st.cycles + 1
        st.run_status = status.name
        # The chunk names the run its data belongs to. The listener's own number may already be the next
        # run's: its receive thread goes on after extract (an END_RUN chunk must not be labelled run N+1).
        run_number = chunk.run.getRunNumber() or taken.listener_run_number
        if run_number:
            st.run_number = run_number
        if self._resume is not None:
            chunk, status = self._resumed(chunk, status)
        if chunk.run.startTime():
            self._run_start = chunk.run.startTime()
        n = chunk.n_events
        st.events_last_chunk, st.events_received = n, st.events_received + n
        # the first chunk holds what was buffered before this session existed: its rate is not known
        st.event_rate = n / max(t0 - self._last_extract, 1e-9) if st.cycles > 1 else 0.0
        self._last_extract = t0
        self.records.emit(
            RecordKind.CHUNK, st.cycles, events=n, run_status=status.name, run_number=st.run_number
        )

        if reset or status == RunStatus.BEGIN_RUN:
            self._drop_carry("a data reset" if reset else f"run {st.run_number} began")
            self._replace_next = True
        if self._replace_next:
            st.events_in_run = st.events_outside_bins = 0
        st.events_in_run += n
        if status == RunStatus.BEGIN_RUN:
            self.log.info("run %d started", st.run_number)
        chunk_ws = workspace_from_chunk(chunk)
        between_runs = (
            self._replace_next
            and n == 0
            and chunk.histograms is None
            and self._acc is not None
            and status != RunStatus.BEGIN_RUN
        )
        if not between_runs:
            if self._carry is not None:
                chunk_ws = _merge_events(self._carry, chunk_ws)
                self._carry, st.events_carried = None, 0
            processed = self._process(chunk_ws)
            if processed is not None:
                self._accumulate(processed)
                if chunk.events is not None and chunk.events.pulse_time.size:
                    st.last_pulse_ns = max(st.last_pulse_ns, int(chunk.events.pulse_time.max()))
                self._post_process()
        st.cycle_seconds = time.monotonic() - t0
        st.last_cycle_time = time.time()
        st.heartbeat = time.monotonic()
        self.records.emit(
            RecordKind.CYCLE,
            st.cycles,
            run_number=st.run_number,
            run_status=status.name,
            events=n,
            events_in_run=st.events_in_run,
            events_accumulated=st.events_accumulated,
            events_outside_bins=st.events_outside_bins,
            events_carried=st.events_carried,
            proc_seconds=st.proc_seconds,
            post_proc_seconds=st.post_proc_seconds,
            accumulation_bytes=st.accumulation_bytes,
            cycle_seconds=st.cycle_seconds,
            event_rate=st.event_rate,
            events_dropped=st.events_dropped,
        )
        return self._transition(status)

    # -- checkpoints ------------------------------------------------------------------------------
    CHECKPOINTED = (
        "run_number",
        "events_in_run",
        "events_accumulated",
        "events_outside_bins",
        "events_dropped",
        "last_pulse_ns",
        "proc_errors",
        "post_proc_errors",
    )

    def checkpoint(self) -> tuple[Checkpoint, Any]:
        """What a restarted session needs to go on: the run, the counters and the accumulation."""
        st = self.state
        counters = {k: getattr(st, k) for k in self.CHECKPOINTED}
        ended = st.run_status in (RunStatus.END_RUN.name, RunStatus.NO_RUN.name)
        checkpoint = Checkpoint(st.run_number, self._run_start, st.cycles, st.last_pulse_ns, counters)
        checkpoint.run_ended = ended
        return checkpoint, self._acc

    def restore(self, checkpoint: Checkpoint, accumulation) -> None:
        """Take up a checkpoint. Whether it applies is known at the first chunk that names its run: the same
        run goes on (events of pulses already accumulated are skipped), another run archives it."""
        self._resume = checkpoint
        self._run_start = checkpoint.run_start
        self._acc = accumulation
        if accumulation is not None:
            self.ads.addOrReplace(self.accumulation_name, accumulation)
            self._replace_next = False
        for key, value in checkpoint.counters.items():
            if key in self.CHECKPOINTED:
                setattr(self.state, key, value)
        self.state.accumulation_bytes = accumulation.nbytes() if accumulation is not None else 0
        self.log.info(
            "restored the checkpoint of run %d (cycle %d, %d events accumulated)",
            checkpoint.run_number,
            checkpoint.cycle,
            self.state.events_accumulated,
        )

    def _resumed(self, chunk: Chunk, status: RunStatus) -> tuple[Chunk, RunStatus]:
        checkpoint = self._resume
        run = chunk.run.getRunNumber()
        if checkpoint is not None and not run and status == RunStatus.NO_RUN and not checkpoint.run_ended:
            self._resume = (
                None  # its run ended while no session ran: a DAS does not send a finished run again
            )
            self.log.error(
                "a run ended while livereduce was down or disconnected: the DAS does not send a finished run "
                "again, so run %d misses what was sent after its last checkpoint (cycle %d, %d events "
                "accumulated)",
                checkpoint.run_number,
                checkpoint.cycle,
                self.state.events_accumulated,
            )
            self.records.emit(
                RecordKind.EVENTS_DROPPED,
                self.state.cycles,
                events=0,
                reason=f"run {checkpoint.run_number} ended while livereduce was down (count unknown)",
            )
            return chunk, status
        if checkpoint is None or not run:
            return chunk, status  # between runs: not known yet
        self._resume = None
        start = chunk.run.startTime()
        if run != checkpoint.run_number or (start and checkpoint.run_start and start != checkpoint.run_start):
            self.log.warning(
                "the stream is in run %d (started %s), the checkpoint was of run %d (started %s): starting afresh",
                run,
                start or "?",
                checkpoint.run_number,
                checkpoint.run_start or "?",
            )
            self.records.emit(RecordKind.RESET, self.state.cycles, reason="checkpoint of another run")
            self._acc, self._replace_next = None, True
            self.ads.remove(self.accumulation_name)
            return chunk, status
        skipped = _drop_pulses_through(chunk, checkpoint.last_pulse_ns)
        self.state.events_skipped_resumed += skipped
        events = chunk.events
        if events is not None and events.pulse_time.size and checkpoint.last_pulse_ns and not skipped:
            gap = (int(events.pulse_time.min()) - checkpoint.last_pulse_ns) / 1e9
            if gap > max(2 * self.update_every, 1.0):  # a DAS that does not replay: say what is missing
                self.log.warning(
                    "resumed run %d %.1f s after the checkpoint's last pulse: this DAS did not send the events "
                    "in between again, so they are not in the accumulation",
                    run,
                    gap,
                )
        self.log.info(
            "resumed run %d after its checkpoint: %d replayed events were already accumulated", run, skipped
        )
        # the replayed start of the same run is not a new run: the accumulation goes on
        return chunk, RunStatus.RUNNING if status == RunStatus.BEGIN_RUN else status

    # -- steps ------------------------------------------------------------------------------------
    def _process(self, chunk_ws):
        if self.proc is None:
            return chunk_ws
        self.ads.addOrReplace(self.input_name, chunk_ws)
        t = time.monotonic()
        self.state.proc_seconds = None
        try:
            out = run_script(
                self.proc, chunk_ws, self.input_name, extra={"parameters": dict(self.parameters)}
            )
            result = self._resolve_output(out, self.proc)
        except ScriptError as exc:
            self.state.proc_errors += 1
            self._script_failed(exc, "proc")
            if isinstance(chunk_ws, EventWorkspace) and chunk_ws.getNumberEvents():
                self._keep_carry(chunk_ws)
            return None
        finally:
            self.state.proc_seconds = time.monotonic() - t
            self.ads.remove(self.input_name)
        self.records.emit(
            RecordKind.PROC_DONE, self.state.cycles, seconds=self.state.proc_seconds, script=self.proc.path
        )
        return result

    def _resolve_output(self, out, script: Script):
        if out is None:
            raise ScriptError(
                script.path, None, "the script set 'output' to None: no workspace to accumulate"
            )
        if isinstance(out, str):
            if not self.ads.doesExist(out):
                raise ScriptError(script.path, None, f"the output workspace '{out}' was not created")
            return self.ads[out]
        if hasattr(out, "id"):
            return out
        raise ScriptError(script.path, None, f"invalid type assigned to 'output': {type(out).__name__}")

    def _accumulate(self, processed) -> None:
        acc = self._existing_accumulation()
        method = Method.REPLACE if (self._replace_next or acc is None) else self.method
        script_output, outside = processed, 0
        if not self.preserve_events:
            histogram = _to_histogram(processed, acc if method is Method.ADD else None)
            if histogram is not processed:
                outside += _outside_bins(histogram)
            processed = histogram
        before = _outside_bins(acc) if acc is not None and method is Method.ADD else None
        previous = acc
        try:
            acc = accumulate(acc, processed, method)
        except Incompatible as exc:
            self.log.warning("chunk does not fit the accumulation (%s); starting a new accumulation", exc)
            self.records.emit(RecordKind.RESET, self.state.cycles, reason=f"incompatible chunk: {exc}")
            if not self.preserve_events:
                processed = _to_histogram(processed, None)
            acc, method = accumulate(acc, processed, Method.REPLACE), Method.REPLACE
            before = None
        missed_in_place = 0
        if before is not None:  # events histogrammed in place into the accumulation
            missed_in_place = _outside_bins(acc) - before
        outside += missed_in_place
        # the proc script's own histogramming (e.g. Rebin), read after accumulating: a pending histogram
        # knows its count once the accumulation has histogrammed its events
        outside += _outside_bins(script_output)
        self._replace_next = False
        self._acc = acc
        self.ads.addOrReplace(self.accumulation_name, acc)
        st = self.state
        # a histogram's count is a pass over the whole table (~50 ms at 10^8 bins): taken once per
        # accumulation, then kept up by the counts each in-place Add put in
        added = _counts_added_in_place(processed, previous, acc, method, missed_in_place)
        if added is not None and self._counted is acc:
            st.events_accumulated += added
        else:
            st.events_accumulated, self._counted = _event_count(acc), acc
        st.events_outside_bins += outside
        st.accumulation_bytes = acc.nbytes()
        self.records.emit(
            RecordKind.ACCUMULATED,
            st.cycles,
            method=method.value,
            events=st.events_accumulated,
            bytes=st.accumulation_bytes,
        )

    def _existing_accumulation(self):
        """The session's accumulation. A script that renamed or deleted its name does not lose it: the name
        is registered again here (Mantid would silently start over)."""
        if self._acc is not None and not (
            self.ads.doesExist(self.accumulation_name) and self.ads[self.accumulation_name] is self._acc
        ):
            self.ads.addOrReplace(self.accumulation_name, self._acc)
        return self._acc

    def _post_process(self) -> None:
        if self.post_proc is None:
            return
        acc = self._existing_accumulation()
        t = time.monotonic()
        self.state.post_proc_seconds = None
        try:
            out = run_script(
                self.post_proc,
                acc,
                self.output_name,
                extra={"accumulation": acc, "parameters": dict(self.parameters)},
            )
            if out is not None and not isinstance(out, str) and hasattr(out, "id"):
                self.ads.addOrReplace(self.output_name, out)
        except ScriptError as exc:
            self.state.post_proc_errors += 1
            self._script_failed(exc, "post_proc")
            return
        finally:
            self.state.post_proc_seconds = time.monotonic() - t
        self.records.emit(
            RecordKind.POST_PROC_DONE,
            self.state.cycles,
            seconds=self.state.post_proc_seconds,
            script=self.post_proc.path,
        )

    def _transition(self, status: RunStatus) -> bool:
        if status != RunStatus.END_RUN:
            return True
        st = self.state
        self.log.info("run %d ended (%d events accumulated)", st.run_number, st.events_accumulated)
        self._drop_carry(f"run {st.run_number} ended")
        self.records.emit(
            RecordKind.RUN_TRANSITION, st.cycles, run_number=st.run_number, behaviour=self.run_transition
        )
        if self.run_transition == "Stop":
            return False
        if self.run_transition == "Rename" and self.ads.doesExist(self.output_name):
            kept = f"{self.output_name}_{st.run_number}"
            self.ads.addOrReplace(kept, self.ads[self.output_name].clone())
            self.log.info("kept the result of run %d as '%s'", st.run_number, kept)
        self._replace_next = True
        return True

    # -- helpers ----------------------------------------------------------------------------------
    def _keep_carry(self, chunk_ws: EventWorkspace) -> None:
        """Keep a chunk whose proc script failed for the next cycle, at most max_carried_events of it: past
        the cap the oldest events go (counted and logged), so a script that keeps failing cannot exhaust
        memory."""
        excess = chunk_ws.getNumberEvents() - self.max_carried_events
        if excess > 0:
            chunk_ws.drop_oldest(excess)
            self.state.events_dropped += excess
            self.log.error(
                "the proc script keeps failing: dropped the %d oldest of the events kept for it "
                "(max_carried_events = %d); %d events lost so far",
                excess,
                self.max_carried_events,
                self.state.events_dropped,
            )
            self.records.emit(
                RecordKind.EVENTS_DROPPED, self.state.cycles, events=excess, reason="max_carried_events"
            )
        self._carry = chunk_ws
        self.state.events_carried = chunk_ws.getNumberEvents()
        self.log.warning(
            "%d events are kept and will be processed with the next chunk", self.state.events_carried
        )

    def _drop_carry(self, why: str) -> None:
        if self._carry is None:
            return
        lost = self._carry.getNumberEvents()
        self.state.events_dropped += lost
        self.state.events_carried = 0
        self._carry = None
        self.log.error(
            "%d events could not be processed before %s (the proc script kept failing); they are "
            "not in the accumulation",
            lost,
            why,
        )
        self.records.emit(RecordKind.EVENTS_DROPPED, self.state.cycles, events=lost, reason=why)

    def _script_failed(self, exc: ScriptError, script: str) -> None:
        """Recorded here; logged by the progress subscriber, which folds repeats of the same error."""
        self._error(str(exc))
        self.records.emit(
            RecordKind.SCRIPT_ERROR,
            self.state.cycles,
            script=script,
            file=exc.filename,
            line=exc.lineno,
            message=str(exc),
            traceback=exc.traceback_text,
        )

    def _error(self, message: str) -> None:
        self.state.last_error, self.state.last_error_time = message, time.time()


def _merge_events(carried, new):
    """The carried (failed) chunk's events followed by the new chunk's, in one workspace."""
    if isinstance(new, EventWorkspace) and new.spectra.same_layout(carried.spectra):
        carried.add_events(new)
        carried.run_info.merge(new.run_info)
        return carried
    return new


def _to_histogram(ws, acc):
    """preserve_events false: events become histograms. When Adding to a histogram accumulation of the same
    spectra the events stay events here and are histogrammed in place into its bins by accumulate.add."""
    if isinstance(ws, WorkspaceGroup):
        return WorkspaceGroup([_to_histogram(m, None) for m in ws])
    if not isinstance(ws, EventWorkspace):
        return ws
    if (
        isinstance(acc, HistogramWorkspace)
        and acc.spectra.same_layout(ws.spectra)
        and acc.x_unit == ws.x_unit
    ):
        return ws  # accumulate.add histograms these events straight into acc's bins
    return ws.histogram()


def _drop_pulses_through(chunk: Chunk, last_ns: int) -> int:
    """Remove from `chunk` the events of pulses at or before `last_ns`; returns how many were removed."""
    events = chunk.events
    if events is None or not last_ns or not events.pulse_time.size:
        return 0
    keep_pulse = events.pulse_time > last_ns
    if keep_pulse.all():
        return 0
    per_pulse = np.diff(np.append(events.pulse_start, len(events)))
    keep = np.repeat(keep_pulse, per_pulse)
    kept_per_pulse = per_pulse[keep_pulse]
    starts = np.concatenate([[0], np.cumsum(kept_per_pulse)[:-1]]).astype(np.int64)
    chunk.events = ChunkEvents(events.index[keep], events.tof[keep], events.pulse_time[keep_pulse], starts)
    return int(len(events) - keep.sum())


def _counts_added_in_place(chunk, previous, acc, method: Method, missed_in_place: int) -> int | None:
    """The counts an Add histogrammed into the same histogram accumulation in place, when known without a
    pass over the table (unweighted events: one count each, less those outside the bins); else None."""
    if method is not Method.ADD or acc is not previous or not isinstance(acc, HistogramWorkspace):
        return None
    if isinstance(chunk, EventWorkspace):
        events = chunk.events
    elif isinstance(chunk, HistogramWorkspace) and chunk.pending_events is not None:
        events, missed_in_place = chunk.pending_events, chunk.events_outside_bins
    else:
        return None
    return None if events.weights is not None else len(events) - missed_in_place


def _outside_bins(ws) -> int:
    if isinstance(ws, WorkspaceGroup):
        return sum(_outside_bins(m) for m in ws)
    return int(getattr(ws, "events_outside_bins", 0))


def _event_count(acc) -> int:
    if isinstance(acc, WorkspaceGroup):
        return sum(_event_count(m) for m in acc)
    return int(acc.getNumberEvents())
