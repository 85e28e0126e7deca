"""The Mantid engine: where real Mantid is installed, drive its StartLiveData as the anchor daemon does.

It runs in the daemon's worker slot (livereduce.worker.ProcessWorker with `target=worker_main`): the daemon's
watcher, signals, logging, status page and systemd notify are the same as for the embedded engine. Mantid
cannot be installed on our build machines, so this path has not run against a real Mantid.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from multiprocessing.connection import Connection

from livereduce.instruments import MANTID_LISTENER_NAMES
from livereduce.scripts import find_scripts
from livereduce.worker import PipeLogHandler, WorkerSpec

log = logging.getLogger("livereduce.engine.mantid")

MANTID_LISTENERS = {
    kind: mantid_name for mantid_name, kind in MANTID_LISTENER_NAMES.items()
}  # ours → Mantid's


def start_live_data_args(config, runtime) -> dict:
    """The StartLiveData keyword arguments for this configuration (the anchor's call, plus our overrides)."""
    found = find_scripts(config.script_dir, list(runtime.script_names))
    args = dict(
        Instrument=runtime.name,
        UpdateEvery=config.update_every,
        PreserveEvents=config.preserve_events,
        AccumulationMethod=config.accum_method,
        OutputWorkspace=config.output_name,
        RunTransitionBehavior=config.run_transition,
        FromNow=config.start_from == "now",
        FromStartOfRun=config.start_from == "start_of_run",
    )
    if config.listener:
        args["Listener"] = MANTID_LISTENERS.get(runtime.listener, runtime.listener)
    if config.address:
        args["Address"] = config.address
    if found.proc:
        args["ProcessingScriptFilename"] = found.proc
    if found.post_proc:
        args["PostProcessingScriptFilename"] = found.post_proc
        args["AccumulationWorkspace"] = "accumulation"
    if config.periods:
        args["PeriodList"] = list(config.periods)
    if config.spectra:
        args["SpectraList"] = list(config.spectra)
    return args


def worker_main(conn: Connection, spec: WorkerSpec, log_level: int) -> None:
    """The Mantid engine's worker process: StartLiveData with `spec.engine`'s arguments, until the supervisor
    says stop (the same pipe protocol as the embedded session's worker: logs and records up, requests down).

    First version: starts and stops Mantid's live data; the records Mantid's workspaces can give, the post_proc
    swap and memory requests are the Mantid-engine issue's (docs/engines.md says what has run against Mantid).
    """
    from mantid.api import AlgorithmManager  # Mantid is imported only in this process, only for this engine
    from mantid.simpleapi import StartLiveData

    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):  # the daemon's signals: it acts on them
        signal.signal(sig, signal.SIG_IGN)
    lock = threading.Lock()

    def send(message: tuple) -> None:
        with lock:
            conn.send(message)

    root = logging.getLogger()
    root.handlers[:] = [PipeLogHandler(send)]
    root.setLevel(log_level)
    send(("ready", os.getpid()))
    log.info("starting Mantid StartLiveData(%s)", ", ".join(f"{k}={v!r}" for k, v in spec.engine.items()))
    StartLiveData(**spec.engine)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            break  # the supervisor is gone
        if message[0] == "stop":
            break
        if message[0] == "request":
            log.warning("the Mantid engine does not act on %r yet", message[1])
    log.info("stopping Mantid live data")
    AlgorithmManager.cancelAll()
    with contextlib.suppress(OSError):
        send(("exiting", {}))  # no session state of ours to report
