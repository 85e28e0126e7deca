"""STAND-IN for Mantid's live-data algorithms (StartLiveData, MonitorLiveData, LoadLiveData) and listeners, for
livereduce's tests only: this is not Mantid.

Written from Mantid's algorithm documentation (StartLiveData-v1, MonitorLiveData-v1, LoadLiveData-v1,
RunPythonScript-v1) and the behaviour reference in shared/reference/mantid-livedata.md, not from livereduce's
engine:

- the common properties (Instrument — the live instruments of the default facility —, Connection, Listener,
  Address, StartTime, the processing/post-processing Algorithm/Properties/Script/ScriptFilename,
  AccumulationMethod Add/Replace/Append, PreserveEvents, RunTransitionBehavior Restart/Stop/Rename,
  AccumulationWorkspace, OutputWorkspace, LastTimeStamp); StartLiveData's FromNow (default true),
  FromStartOfRun, FromTime, UpdateEvery (default 60 s) and its MonitorLiveData output handle; a listener's own
  properties (ISISHistoDataListener: SpectraList, PeriodList ≥ 1) copied in once Instrument, Listener or
  Connection is set, so they are unknown properties for other listeners;
- validation: Add refused for a histogram listener, OutputWorkspace mandatory, one processing method per
  step, AccumulationWorkspace set and different from OutputWorkspace when post-processing, no second running
  MonitorLiveData on the same workspaces, exactly one of FromNow/FromStartOfRun/FromTime;
- StartLiveData: one LoadLiveData at once, forced to Replace, then MonitorLiveData started asynchronously
  when UpdateEvery > 0; MonitorLiveData: every 50 ms, a LoadLiveData when more than UpdateEvery has passed
  (start to start), run transitions by RunTransitionBehavior, any failure ends it;
- LoadLiveData: reset flag, extract (NotYet retried every 10 s until cancelled), the chunk script, Replace when
  there is no accumulation or the listener reset, Add/Replace/Append, then the post-processing script from
  the accumulation into OutputWorkspace; scripts are read from their file at each run (RunPythonScript's
  Filename), with `input` the workspace and `output` the output's name.

Only FakeEventDataListener produces data (2 spectra, TOF uniform in 40000–60000 µs, at
`fakeeventdatalistener.datarate` events/s; EndRun every `fakeeventdatalistener.endrunevery` s, the run number
going up by one). The network listeners fail to connect: the stand-in speaks no DAS protocol.
"""

from __future__ import annotations

import datetime
import os
import threading
import time

import numpy as np

from mantid import _standin
from mantid.api import Algorithm as _Algorithm
from mantid.api import (
    AlgorithmManager,
    AnalysisDataService,
    EventWorkspace,
    Property,
    Workspace2D,
    format_exception,
)
from mantid.kernel import FACILITIES, ConfigService, Logger

NO_RUN, BEGIN_RUN, RUNNING, END_RUN = 0, 1, 2, 4


class NotYet(Exception):
    """The listener has nothing to give yet (Mantid's Exception::NotYet)."""


# -- listeners ---------------------------------------------------------------------------------------------------


class LiveListener:
    NAME = ""
    buffers_events = True
    supports_history = False

    def __init__(self):
        self.properties: list[Property] = []
        self.values: dict = {}

    def connect(self, address: str) -> None:
        if _standin.fail_connect:
            raise RuntimeError(
                f"Unable to connect listener [{self.NAME}] to [{address}]: {_standin.fail_connect}"
            )
        self._connect(address)

    def _connect(self, address: str) -> None:
        raise RuntimeError(
            f"Unable to connect listener [{self.NAME}] to [{address}]: the Mantid stand-in speaks no DAS protocol"
        )

    def start(self, start_time: str) -> None:
        pass

    def dataReset(self) -> bool:
        return False

    def runStatus(self) -> int:
        return RUNNING

    def runNumber(self) -> int:
        return 0

    def extractData(self):
        raise NotYet("no data")


class FakeEventDataListener(LiveListener):
    NAME = "FakeEventDataListener"

    def _connect(self, address: str) -> None:
        self.rate = float(ConfigService["fakeeventdatalistener.datarate"] or 200)
        self.end_run_every = float(ConfigService["fakeeventdatalistener.endrunevery"] or 0)
        self.not_yet = int(ConfigService["fakeeventdatalistener.notyettimes"] or 0)
        self.run_number = 1
        self._rng = np.random.default_rng(1)
        self._last = self._run_started = time.monotonic()
        self._status = RUNNING
        self._owed = 0.0

    def runStatus(self) -> int:
        return self._status

    def runNumber(self) -> int:
        return self.run_number

    def extractData(self):
        if self.not_yet > 0:
            self.not_yet -= 1
            raise NotYet("The listener is not ready yet")
        now = time.monotonic()
        self._owed += (now - self._last) * self.rate
        self._last = now
        n = int(self._owed) // 2
        self._owed -= 2 * n
        ws = EventWorkspace(2)
        for i in range(2):
            ws.tofs[i] = self._rng.uniform(40000.0, 60000.0, n)
            ws.weights[i] = np.ones(n)
        ws.getRun().addProperty("run_number", self.run_number)
        self._status = RUNNING
        if self.end_run_every and now - self._run_started >= self.end_run_every:
            self._status = END_RUN  # this chunk ends the run; the next one is the next run's
            self._run_started = now
            self.run_number += 1
            ws.getRun().addProperty("run_number", self.run_number - 1)
        return ws


class ISISHistoDataListener(LiveListener):
    NAME = "ISISHistoDataListener"
    buffers_events = False

    def __init__(self):
        super().__init__()
        self.properties = [
            Property("SpectraList", [], "int_array"),
            Property("PeriodList", [], "int_array", minimum=1),
        ]


class ISISLiveEventDataListener(LiveListener):
    NAME = "ISISLiveEventDataListener"


class SNSLiveEventDataListener(LiveListener):
    NAME = "SNSLiveEventDataListener"
    supports_history = True


class KafkaEventListener(LiveListener):
    NAME = "KafkaEventListener"
    supports_history = True


class FileEventDataListener(LiveListener):
    NAME = "FileEventDataListener"


LISTENERS = {
    cls.NAME: cls
    for cls in (
        FakeEventDataListener,
        ISISHistoDataListener,
        ISISLiveEventDataListener,
        SNSLiveEventDataListener,
        KafkaEventListener,
        FileEventDataListener,
    )
}


# -- the algorithms ---------------------------------------------------------------------------------------------


def _live_instruments() -> list[str]:
    return sorted(FACILITIES.get(ConfigService["default.facility"], {}))


class LiveDataAlgorithm(_Algorithm):
    def init_common(self) -> None:
        d = self.declare
        d(Property("Instrument", "", allowed=_live_instruments()))
        d(Property("Connection", ""))
        d(Property("Listener", "", allowed=["", *LISTENERS]))
        d(Property("Address", ""))
        d(Property("StartTime", ""))
        for step in ("Processing", "PostProcessing"):
            d(Property(f"{step}Algorithm", ""))
            d(Property(f"{step}Properties", ""))
            d(Property(f"{step}Script", ""))
            d(Property(f"{step}ScriptFilename", "", "file", file_ext=".py"))
            if step == "Processing":
                d(Property("AccumulationMethod", "Add", allowed=["Add", "Replace", "Append"]))
                d(Property("PreserveEvents", False, "bool"))
        d(Property("RunTransitionBehavior", "Restart", allowed=["Restart", "Stop", "Rename"]))
        d(Property("AccumulationWorkspace", "", "workspace"))
        d(Property("OutputWorkspace", "", "workspace"))
        d(Property("LastTimeStamp", "", output=True))
        self.listener: LiveListener | None = None

    def listener_class(self) -> type[LiveListener]:
        name = self.value("Listener")
        if not name and self.value("Instrument"):
            facility = ConfigService["default.facility"]
            name = FACILITIES[facility][self.value("Instrument")][2]
        if not name:
            raise RuntimeError("Instrument or Listener must be set")
        return LISTENERS[name]

    def listener_address(self) -> str:
        if self.value("Address"):
            return self.value("Address")
        if self.value("Instrument"):
            return FACILITIES[ConfigService["default.facility"]][self.value("Instrument")][1]
        return "0.0.0.0:0"

    def afterPropertySet(self, name: str) -> None:
        if name not in ("Instrument", "Listener", "Connection"):
            return
        for prop in [p for p in self._props.values() if getattr(p, "group", "") == "ListenerProperties"]:
            del self._props[prop.name]
        try:
            listener = self.listener_class()()
        except RuntimeError:
            return
        for prop in listener.properties:
            copy = Property(prop.name, prop.default, prop.kind, prop.allowed, minimum=prop.minimum)
            copy.group = "ListenerProperties"  # type: ignore[attr-defined]
            self.declare(copy)

    def validateInputs(self) -> dict[str, str]:
        errors: dict[str, str] = {}
        for key in ("ProcessingScriptFilename", "PostProcessingScriptFilename"):
            path = self.value(key)
            if path and not os.path.isfile(path):
                errors[key] = f'File "{path}" not found'
            elif path and not path.endswith(".py"):
                errors[key] = f'File "{path}" is not a .py file'
        try:
            listener_cls = self.listener_class()
        except RuntimeError as exc:
            errors["Instrument"] = str(exc)
            listener_cls = None
        if (
            listener_cls is not None
            and not listener_cls.buffers_events
            and self.value("AccumulationMethod") == "Add"
        ):
            errors["AccumulationMethod"] = (
                "The listener you selected does not buffer events and the live stream produces histograms. Add is "
                "not a sensible accumulation method."
            )
        if not self.value("OutputWorkspace"):
            errors["OutputWorkspace"] = "Must specify the OutputWorkspace."
        post = False
        for step in ("Processing", "PostProcessing"):
            given = [k for k in ("Algorithm", "Script", "ScriptFilename") if self.value(f"{step}{k}")]
            if len(given) > 1:
                errors[f"{step}Algorithm"] = (
                    f"Only one of {step}Algorithm, {step}Script, {step}ScriptFilename"
                )
            post = post or (step == "PostProcessing" and bool(given))
        accumulation = self.value("AccumulationWorkspace")
        if post and not accumulation:
            errors["AccumulationWorkspace"] = (
                "Must specify the AccumulationWorkspace parameter if using PostProcessing."
            )
        if accumulation and accumulation == self.value("OutputWorkspace"):
            errors["AccumulationWorkspace"] = (
                "The AccumulationWorkspace must be different than the OutputWorkspace."
            )
        if self.NAME != "LoadLiveData":
            for other in AlgorithmManager.runningInstancesOf("MonitorLiveData"):
                if other is self:
                    continue
                if other.value("OutputWorkspace") == self.value("OutputWorkspace"):
                    errors["OutputWorkspace"] = (
                        "Another MonitorLiveData thread is running with the same OutputWorkspace."
                    )
                if accumulation and other.value("AccumulationWorkspace") == accumulation:
                    errors["AccumulationWorkspace"] = (
                        "Another MonitorLiveData thread is running with the same AccumulationWorkspace."
                    )
        return errors

    def copy_from(self, other: LiveDataAlgorithm) -> None:
        for prop in other.getProperties():
            if not prop.output and prop.name in self._props:
                self._props[prop.name].value = prop.value
                self._props[prop.name].is_default = prop.is_default

    def create_listener(self) -> LiveListener:
        listener = self.listener_class()()
        for prop in listener.properties:
            listener.values[prop.name] = self.value(prop.name) if prop.name in self._props else prop.default
        listener.connect(self.listener_address())
        listener.start(self.value("StartTime"))
        return listener


class LoadLiveData(LiveDataAlgorithm):
    NAME = "LoadLiveData"

    def init(self) -> None:
        self.init_common()

    def exec(self) -> None:
        output = self.value("OutputWorkspace")
        post = bool(self.value("PostProcessingScriptFilename") or self.value("PostProcessingScript"))
        accumulation_name = self.value("AccumulationWorkspace") if post else output
        listener = self.listener or self.create_listener()
        reset = listener.dataReset()
        while True:
            try:
                chunk = listener.extractData()
                break
            except NotYet as exc:
                self.log.warning(f"The listener is not ready yet: {exc}. Retrying in 10 s")
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    self.interruption_point()
                    time.sleep(0.25)
        self.getProperty("LastTimeStamp").value = datetime.datetime.now(datetime.UTC).isoformat()
        chunk = self.run_step("Processing", chunk, f"__anonymous_livedata_input_{output}")
        if not self.value("PreserveEvents") and isinstance(chunk, EventWorkspace):
            chunk = _to_histogram(chunk)
        method = self.value("AccumulationMethod")
        if reset or not AnalysisDataService.doesExist(accumulation_name):
            method = "Replace"
        accumulation = _accumulate(
            AnalysisDataService[accumulation_name] if method != "Replace" else None, chunk, method
        )
        AnalysisDataService.addOrReplace(accumulation_name, accumulation)
        if post:
            self.run_step("PostProcessing", accumulation, output)

    def run_step(self, step: str, workspace, output_name: str):
        """The step's script, by file or text, with `input` the workspace and `output` the output's name; the
        result is what `output` names afterwards (a chunk script that does nothing passes the chunk on)."""
        path, code = self.value(f"{step}ScriptFilename"), self.value(f"{step}Script")
        if not path and not code:
            return workspace
        if step == "Processing":
            AnalysisDataService.addOrReplace(output_name, workspace)
        if path:
            with open(path, encoding="utf-8") as f:  # read at every run: an edit counts from the next one
                code = f.read()
        from mantid import simpleapi

        namespace = {name: getattr(simpleapi, name) for name in simpleapi.__all__}
        local = {"input": workspace, "output": output_name}
        try:
            exec(compile(code, _standin.script_filename or path or "<script>", "exec"), namespace, local)
        except Exception as exc:
            Logger("RunPythonScript").error(format_exception(exc).rstrip())
            if step == "Processing":
                self.log.error("While processing chunk:")
            raise RuntimeError(
                f"Error processing the workspace using RunPythonScript. See log for details. ({exc})"
            ) from exc
        result = local.get("output")
        if isinstance(result, str):
            if not AnalysisDataService.doesExist(result):
                raise RuntimeError(f"Error processing the workspace: '{result}' does not exist.")
            result = AnalysisDataService[result]
        if step == "Processing":
            AnalysisDataService.remove(output_name)
        elif result is not None:
            AnalysisDataService.addOrReplace(output_name, result)
        return result if result is not None else workspace


def _to_histogram(ws: EventWorkspace) -> Workspace2D:
    counts = np.array([[w.sum()] for w in ws.weights])
    out = Workspace2D(counts, np.array([40000.0, 60000.0]))
    out._run = ws.getRun().copy()
    return out


def _accumulate(accumulation, chunk, method: str):
    if accumulation is None or method == "Replace":
        return chunk
    if method == "Add":
        if isinstance(accumulation, EventWorkspace) and isinstance(chunk, EventWorkspace):
            for i in range(accumulation.getNumberHistograms()):
                accumulation.tofs[i] = np.concatenate([accumulation.tofs[i], chunk.tofs[i]])
                accumulation.weights[i] = np.concatenate([accumulation.weights[i], chunk.weights[i]])
        elif isinstance(accumulation, Workspace2D) and isinstance(chunk, Workspace2D):
            accumulation.y = accumulation.y + chunk.y
        else:
            raise RuntimeError("Plus: the workspaces are not compatible")
        for name in chunk.getRun().keys():
            accumulation.getRun().addProperty(name, chunk.getRun().getProperty(name).value)
        return accumulation
    if isinstance(accumulation, EventWorkspace):  # Append: the chunk's spectra after the accumulation's
        accumulation.tofs += chunk.tofs
        accumulation.weights += chunk.weights
        return accumulation
    accumulation.y = np.vstack([accumulation.y, chunk.y])
    return accumulation


class MonitorLiveData(LiveDataAlgorithm):
    NAME = "MonitorLiveData"

    def init(self) -> None:
        self.init_common()
        self.declare(Property("UpdateEvery", 60.0, "double"))
        self.chunks = 0

    def exec(self) -> None:
        every = self.value("UpdateEvery")
        if every <= 0:
            raise RuntimeError("UpdateEvery must be > 0")
        listener = self.listener or self.create_listener()
        last = time.monotonic()
        next_method = self.value("AccumulationMethod")
        run_number = 0
        output = self.value("OutputWorkspace")
        while True:
            self.interruption_point()
            time.sleep(0.05)
            now = time.monotonic()
            if now - last <= every:
                continue
            last = now
            self.chunks += 1
            self.log.notice(f"Loading live data chunk {self.chunks} at {time.strftime('%H:%M:%S')}")
            load = LoadLiveData()
            load.initialize()
            load.copy_from(self)
            load.getProperty("AccumulationMethod").value = next_method
            load.listener = listener
            load._cancel = self._cancel  # a child: cancelled with its parent
            load.execute()
            next_method = self.value("AccumulationMethod")
            if run_number == 0:
                run_number = listener.runNumber()
            status = listener.runStatus()
            if status in (BEGIN_RUN, END_RUN):
                self.log.notice(f"Run #{run_number} ended.")
                behaviour = self.value("RunTransitionBehavior")
                if behaviour == "Stop":
                    break
                next_method = "Replace"
                if behaviour == "Rename" and status == END_RUN and AnalysisDataService.doesExist(output):
                    AnalysisDataService.addOrReplace(
                        f"{output}_{run_number}", AnalysisDataService[output].clone()
                    )
                run_number = 0
            self.progress(0.0, f"Live Data {self.chunks}")


class StartLiveData(LiveDataAlgorithm):
    NAME = "StartLiveData"

    def init(self) -> None:
        self.declare(Property("FromNow", True, "bool"))
        self.declare(Property("FromStartOfRun", False, "bool"))
        self.declare(Property("FromTime", False, "bool"))
        self.declare(Property("UpdateEvery", 60.0, "double"))
        self.init_common()
        self.declare(Property("MonitorLiveData", None, "algorithm", output=True))

    def exec(self) -> None:
        checked = sum(bool(self.value(k)) for k in ("FromNow", "FromStartOfRun", "FromTime"))
        if checked != 1:
            raise RuntimeError("Please check exactly one of FromNow, FromStartOfRun, FromTime.")
        if self.value("FromNow"):
            self.getProperty("StartTime").value = "1990-01-01T00:00:00"
        elif self.value("FromStartOfRun"):
            self.getProperty("StartTime").value = "1990-01-01T00:00:01"
        listener = self.create_listener()
        if not self.value("FromNow") and not listener.supports_history and listener.buffers_events:
            self.log.error(
                "Requested start time is in the past, but this instrument does not support historical data. "
                "The effective start time is therefore 'now'."
            )
        load = LoadLiveData()
        load.initialize()
        load.copy_from(self)
        load.getProperty("AccumulationMethod").value = "Replace"  # the first chunk clears out old junk
        load.listener = listener
        load._cancel = self._cancel
        load.execute()
        every = self.value("UpdateEvery")
        if every > 0:
            self.interruption_point()
            monitor = AlgorithmManager.create("MonitorLiveData")
            monitor.copy_from(self)
            monitor.getProperty("UpdateEvery").value = every
            monitor.listener = listener
            monitor.executeAsync()
            self.getProperty("MonitorLiveData").value = monitor


class CloneWorkspace(_Algorithm):
    NAME = "CloneWorkspace"

    def init(self) -> None:
        self.declare(Property("InputWorkspace", None, "workspace"))
        self.declare(Property("OutputWorkspace", "", "workspace"))

    def exec(self) -> None:
        ws = self.value("InputWorkspace")
        ws = AnalysisDataService[ws] if isinstance(ws, str) else ws
        AnalysisDataService.addOrReplace(self.value("OutputWorkspace"), ws.clone())


class CompressEvents(_Algorithm):
    """Events of a spectrum whose TOFs are within Tolerance µs become one weighted event."""

    NAME = "CompressEvents"

    def init(self) -> None:
        self.declare(Property("InputWorkspace", None, "workspace"))
        self.declare(Property("OutputWorkspace", "", "workspace"))
        self.declare(Property("Tolerance", 0.01, "double"))

    def exec(self) -> None:
        ws = self.value("InputWorkspace")
        ws = AnalysisDataService[ws] if isinstance(ws, str) else ws
        tolerance = self.value("Tolerance")
        out = ws.clone() if self.value("OutputWorkspace") != ws.name() else ws
        if isinstance(out, EventWorkspace):
            for i in range(out.getNumberHistograms()):
                keys = np.floor(out.tofs[i] / tolerance)
                unique, inverse = np.unique(keys, return_inverse=True)
                out.weights[i] = np.bincount(inverse, weights=out.weights[i], minlength=len(unique))
                out.tofs[i] = unique * tolerance
        AnalysisDataService.addOrReplace(self.value("OutputWorkspace"), out)


for _cls in (StartLiveData, MonitorLiveData, LoadLiveData, CloneWorkspace, CompressEvents):
    AlgorithmManager.subscribe(_cls)


def run_algorithm(name: str, kwargs: dict, first: tuple[str, ...] = ()):
    """As mantid.simpleapi calls an algorithm: create it managed, set the properties (`first` ones first),
    execute; returns its OutputWorkspace from the ADS when it has one."""
    alg = AlgorithmManager.create(name)
    for key in [k for k in first if k in kwargs] + [k for k in kwargs if k not in first]:
        alg.setProperty(key, kwargs[key])
    alg.execute()
    try:
        output = alg.value("OutputWorkspace")
    except RuntimeError:
        return None
    return (
        AnalysisDataService[output]
        if isinstance(output, str) and AnalysisDataService.doesExist(output)
        else None
    )


_ = threading  # the asynchronous algorithms run on threads (mantid.api.Algorithm.executeAsync)
