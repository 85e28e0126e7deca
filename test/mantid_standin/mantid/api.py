"""STAND-IN for `mantid.api`, for livereduce's tests only: this is not Mantid.

Behaviour written from Mantid's documentation and Python API: the AnalysisDataService (`mtd`: `mtd[name]`,
`doesExist`, `addOrReplace`, `remove`, `clear`, `getObjectNames`) with `AnalysisDataServiceObserver`
(`observeAdd/Replace/Delete/Clear/All`; `addHandle(name, ws)`, `replaceHandle(name, ws)`, `deleteHandle`,
`clearHandle()` called on the thread that changed the ADS); the AlgorithmManager (`create`, `createUnmanaged`,
`runningInstancesOf`, `runningInstances`, `newestInstanceOf`, `cancelAll` — which only *requests*
cancellation —, `shutdown` — cancel all and wait for them —, `clear`, `size`); algorithms with declared,
validated properties (an unknown name raises as Mantid's property manager does; a value outside a list
validator's allowed values raises ValueError), `execute`, `executeAsync`, `isRunning`, `isExecuted`, `cancel`.
Workspaces are minimal: an event workspace (TOF events per spectrum, weights), a histogram workspace, and a
run with logs.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

from mantid import _standin
from mantid.kernel import Logger

# -- workspaces ----------------------------------------------------------------------------------------------


class LogProperty:
    def __init__(self, name: str, value):
        self.name, self.value = name, value


class Run:
    def __init__(self):
        self._logs: dict[str, LogProperty] = {}

    def addProperty(self, name: str, value, replace: bool = True) -> None:
        if name in self._logs and not replace:
            raise ValueError(f"Property {name} already exists")
        self._logs[name] = LogProperty(name, value)

    def hasProperty(self, name: str) -> bool:
        return name in self._logs

    def getProperty(self, name: str) -> LogProperty:
        if name not in self._logs:
            raise RuntimeError(f"Unknown property search object {name}")
        return self._logs[name]

    def keys(self) -> list[str]:
        return list(self._logs)

    def copy(self) -> Run:
        run = Run()
        run._logs = {k: LogProperty(k, v.value) for k, v in self._logs.items()}
        return run


class Workspace:
    def __init__(self):
        self._name = ""
        self._run = Run()

    def name(self) -> str:
        return self._name

    def getRun(self) -> Run:
        return self._run

    def run(self) -> Run:
        return self._run

    def getRunNumber(self) -> int:
        if not self._run.hasProperty("run_number"):
            return 0
        try:
            return int(self._run.getProperty("run_number").value)
        except (TypeError, ValueError):
            return 0


class EventWorkspace(Workspace):
    """TOF events (µs) and weights per spectrum."""

    def __init__(self, n_spectra: int):
        super().__init__()
        self.tofs = [np.empty(0) for _ in range(n_spectra)]
        self.weights = [np.empty(0) for _ in range(n_spectra)]

    def id(self) -> str:
        return "EventWorkspace"

    def getNumberHistograms(self) -> int:
        return len(self.tofs)

    def getNumberEvents(self) -> int:
        return int(sum(len(t) for t in self.tofs))

    def getMemorySize(self) -> int:
        return int(sum(t.nbytes + w.nbytes for t, w in zip(self.tofs, self.weights, strict=True))) + 1024

    def clone(self) -> EventWorkspace:
        ws = EventWorkspace(len(self.tofs))
        ws.tofs = [t.copy() for t in self.tofs]
        ws.weights = [w.copy() for w in self.weights]
        ws._run = self._run.copy()
        return ws


class Workspace2D(Workspace):
    """Histograms: counts per bin per spectrum."""

    def __init__(self, y: np.ndarray, x: np.ndarray):
        super().__init__()
        self.y, self.x = np.asarray(y, float), np.asarray(x, float)

    def id(self) -> str:
        return "Workspace2D"

    def getNumberHistograms(self) -> int:
        return self.y.shape[0]

    def readY(self, i: int) -> np.ndarray:
        return self.y[i]

    def extractY(self) -> np.ndarray:
        return self.y.copy()

    def getMemorySize(self) -> int:
        return int(self.y.nbytes * 2 + self.x.nbytes) + 1024

    def clone(self) -> Workspace2D:
        ws = Workspace2D(self.y.copy(), self.x.copy())
        ws._run = self._run.copy()
        return ws


# -- the ADS -------------------------------------------------------------------------------------------------


class AnalysisDataServiceObserver:
    """Subclass and override the handles; `observe*(True)` subscribes."""

    def __init__(self):
        self._observing: set[str] = set()

    def _observe(self, kind: str, on: bool) -> None:
        (self._observing.add if on else self._observing.discard)(kind)
        if self._observing:
            AnalysisDataService._observers.add(self)
        else:
            AnalysisDataService._observers.discard(self)

    def observeAdd(self, on: bool = True) -> None:
        self._observe("add", on)

    def observeReplace(self, on: bool = True) -> None:
        self._observe("replace", on)

    def observeDelete(self, on: bool = True) -> None:
        self._observe("delete", on)

    def observeClear(self, on: bool = True) -> None:
        self._observe("clear", on)

    def observeAll(self, on: bool = True) -> None:
        for kind in ("add", "replace", "delete", "clear"):
            self._observe(kind, on)

    def addHandle(self, ws_name: str, ws) -> None:
        pass

    def replaceHandle(self, ws_name: str, ws) -> None:
        pass

    def deleteHandle(self, ws_name: str, ws) -> None:
        pass

    def clearHandle(self) -> None:
        pass


class AnalysisDataServiceImpl:
    def __init__(self):
        self._lock = threading.RLock()
        self._items: dict[str, Workspace] = {}
        self._observers: set[AnalysisDataServiceObserver] = set()

    def Instance(self) -> AnalysisDataServiceImpl:
        return self

    def _notify(self, kind: str, *args) -> None:
        for observer in list(self._observers):
            if kind in observer._observing:
                getattr(observer, f"{kind}Handle")(*args)

    def addOrReplace(self, name: str, ws: Workspace) -> None:
        with self._lock:
            existed = name in self._items
            ws._name = name
            self._items[name] = ws
        self._notify("replace" if existed else "add", name, ws)

    def add(self, name: str, ws: Workspace) -> None:
        with self._lock:
            if name in self._items:
                raise RuntimeError(f"AnalysisDataService::add - {name} already exists")
        self.addOrReplace(name, ws)

    def retrieve(self, name: str) -> Workspace:
        with self._lock:
            if name not in self._items:
                raise KeyError(f"'{name}' does not exist.")
            return self._items[name]

    __getitem__ = retrieve

    def doesExist(self, name: str) -> bool:
        with self._lock:
            return name in self._items

    __contains__ = doesExist

    def remove(self, name: str) -> None:
        with self._lock:
            ws = self._items.pop(name, None)
        if ws is not None:
            self._notify("delete", name, ws)

    def clear(self) -> None:
        _standin.record("ADS.clear")
        with self._lock:
            self._items.clear()
        self._notify("clear")

    def getObjectNames(self) -> list[str]:
        with self._lock:
            return sorted(self._items)

    def size(self) -> int:
        return len(self._items)


AnalysisDataService = AnalysisDataServiceImpl()
mtd = AnalysisDataService


# -- algorithms ----------------------------------------------------------------------------------------------


class CancelledError(RuntimeError):
    """What a cancelled algorithm raises at its next interruption point (Mantid's CancelException)."""


class Property:
    def __init__(self, name, default, kind="str", allowed=None, output=False, file_ext=None, minimum=None):
        self.name, self.default, self.kind = name, default, kind
        self.allowed, self.output, self.file_ext, self.minimum = allowed, output, file_ext, minimum
        self.value = default
        self.is_default = True

    @property
    def allowedValues(self) -> list:
        return list(self.allowed or [])

    def set(self, value) -> None:
        kind = self.kind
        if kind == "bool":
            if not isinstance(value, bool | int | np.bool_):
                raise TypeError(f"{self.name}: a bool is expected, not {value!r}")
            value = bool(value)
        elif kind == "double":
            value = float(value)
        elif kind == "int_array":
            if isinstance(value, str):
                value = [int(v) for v in value.split(",") if v.strip()]
            value = [int(v) for v in value]
            if self.minimum is not None and any(v < self.minimum for v in value):
                raise ValueError(f"Invalid value for property {self.name}: values must be ≥ {self.minimum}")
        elif kind in ("str", "file"):
            value = "" if value is None else str(value)
            if self.allowed is not None and value not in self.allowed:
                raise ValueError(
                    f'Invalid value for property {self.name} (string) from string "{value}": The value '
                    f'"{value}" is not in the list of allowed values'
                )
        self.value, self.is_default = value, False


class Algorithm:
    """A managed (or unmanaged) algorithm: properties, then execute() or executeAsync()."""

    NAME = ""

    def __init__(self):
        self._props: dict[str, Property] = {}
        self._initialized = False
        self._running = threading.Event()
        self._executed = False
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self.log = Logger(self.NAME)
        self.error: str | None = None
        self._observers: dict[AlgorithmObserver, set[str]] = {}

    def _notify(self, kind: str, *args) -> None:
        for observer, kinds in list(self._observers.items()):
            if kind in kinds:
                getattr(observer, f"{kind}Handle")(*args)

    def progress(self, fraction: float, message: str) -> None:
        self._notify("progress", fraction, message)

    # -- properties -------------------------------------------------------------------------------------------
    def name(self) -> str:
        return self.NAME

    def version(self) -> int:
        return 1

    def declare(self, prop: Property) -> None:
        self._props[prop.name] = prop

    def initialize(self) -> None:
        if not self._initialized:
            self.init()
            self._initialized = True

    def init(self) -> None:
        pass

    def _find(self, name: str) -> Property:
        for prop in self._props.values():
            if prop.name.lower() == name.lower():  # Mantid's property names are case-insensitive
                return prop
        raise RuntimeError(f"Unknown property search object {name}")

    def setProperty(self, name: str, value) -> None:
        if not self._initialized:
            raise RuntimeError(f"Algorithm {self.NAME} is not initialized")
        self._find(name).set(value)
        self.afterPropertySet(self._find(name).name)

    def setPropertyValue(self, name: str, value: str) -> None:
        self.setProperty(name, value)

    def afterPropertySet(self, name: str) -> None:
        pass

    def getProperty(self, name: str) -> Property:
        return self._find(name)

    def getPropertyValue(self, name: str) -> str:
        return str(self._find(name).value)

    def getProperties(self) -> list[Property]:
        return list(self._props.values())

    def value(self, name: str):
        return self._find(name).value

    def given(self) -> dict[str, Any]:
        return {p.name: p.value for p in self._props.values() if not p.is_default}

    def validateInputs(self) -> dict[str, str]:
        return {}

    # -- running ----------------------------------------------------------------------------------------------
    def isRunning(self) -> bool:
        return self._running.is_set()

    def isExecuted(self) -> bool:
        return self._executed

    def cancel(self) -> None:
        self._cancel.set()

    def interruption_point(self) -> None:
        if self._cancel.is_set():
            if (
                _standin.cancel_delay
            ):  # a slow asynchronous algorithm: busy in a step that cannot stop at once
                time.sleep(_standin.cancel_delay)
            raise CancelledError(f"{self.NAME}: execution cancelled by user")

    def execute(self) -> bool:
        self.initialize()
        errors = self.validateInputs()
        if errors:
            text = "\n".join(f"{k}: {v}" for k, v in errors.items())
            self.log.error(f"Some invalid Properties found:\n{text}")
            raise RuntimeError(f"Some invalid Properties found: \n {text}")
        _standin.record(self.NAME, self.given())
        self._running.set()
        try:
            self.exec()
            self._executed = True
        except CancelledError:
            self.log.notice(f"Execution of {self.NAME} cancelled")
            self._notify("error", "Algorithm terminated")
            raise
        except Exception as exc:
            self.error = str(exc)
            self.log.error(f"Error in execution of algorithm {self.NAME}:\n{exc}")
            self._notify("error", str(exc))
            raise RuntimeError(str(exc)) from exc
        finally:
            self._running.clear()
        self._notify("finish")
        return True

    def executeAsync(self) -> None:
        self._running.set()  # running from the call on, as Mantid's asynchronous execution reports

        def run():
            try:
                self.execute()
            except Exception:  # noqa: S110 - logged by execute(); the handle says it did not execute
                pass
            finally:
                self._running.clear()

        self._thread = threading.Thread(target=run, name=f"{self.NAME}-async", daemon=True)
        self._thread.start()

    def exec(self) -> None:
        raise NotImplementedError


class AlgorithmObserver:
    """Subclass and override the handles; `observe*(alg)` subscribes to that algorithm's notifications (sent
    on the algorithm's thread)."""

    def _observe(self, alg: Algorithm, *kinds: str) -> None:
        alg._observers.setdefault(self, set()).update(kinds)

    def observeAll(self, alg: Algorithm) -> None:
        self._observe(alg, "finish", "error", "progress")

    def observeFinish(self, alg: Algorithm) -> None:
        self._observe(alg, "finish")

    def observeError(self, alg: Algorithm) -> None:
        self._observe(alg, "error")

    def observeProgress(self, alg: Algorithm) -> None:
        self._observe(alg, "progress")

    def stopObserving(self, alg: Algorithm) -> None:
        alg._observers.pop(self, None)

    def finishHandle(self) -> None:
        pass

    def errorHandle(self, what: str) -> None:
        pass

    def progressHandle(self, p: float, message: str) -> None:
        pass


class AlgorithmManagerImpl:
    def __init__(self):
        self._lock = threading.Lock()
        self._managed: list[Algorithm] = []
        self._registry: dict[str, Callable[[], Algorithm]] = {}

    def Instance(self) -> AlgorithmManagerImpl:
        return self

    def subscribe(self, cls) -> None:
        self._registry[cls.NAME] = cls

    def _make(self, name: str) -> Algorithm:
        if name not in self._registry:
            raise RuntimeError(f"algorithm {name} is not registered (stand-in: only a few are)")
        return self._registry[name]()

    def create(self, name: str, version: int = -1) -> Algorithm:
        alg = self._make(name)
        alg.initialize()
        with self._lock:
            self._managed.append(alg)
        return alg

    def createUnmanaged(self, name: str, version: int = -1) -> Algorithm:
        return self._make(name)

    def size(self) -> int:
        return len(self._managed)

    def runningInstancesOf(self, name: str) -> list[Algorithm]:
        with self._lock:
            return [a for a in self._managed if a.name() == name and a.isRunning()]

    def runningInstances(self) -> list[Algorithm]:
        with self._lock:
            return [a for a in self._managed if a.isRunning()]

    def newestInstanceOf(self, name: str) -> Algorithm | None:
        with self._lock:
            return next((a for a in reversed(self._managed) if a.name() == name), None)

    def cancelAll(self) -> None:
        """Requests cancellation; returns at once (running algorithms stop at their next check)."""
        _standin.record("cancelAll")
        for alg in self.runningInstances():
            alg.cancel()

    def shutdown(self) -> None:
        self.cancelAll()
        while self.runningInstances():
            time.sleep(0.1)
        self.clear()

    def clear(self) -> None:
        with self._lock:
            self._managed = [a for a in self._managed if a.isRunning()]


AlgorithmManager = AlgorithmManagerImpl()


def format_exception(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


__all__ = [
    "AlgorithmManager",
    "AlgorithmObserver",
    "AnalysisDataService",
    "AnalysisDataServiceObserver",
    "EventWorkspace",
    "Workspace",
    "Workspace2D",
    "mtd",
]
