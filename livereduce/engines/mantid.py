"""The Mantid engine: where real Mantid is installed, drive its StartLiveData as the anchor daemon does.

Minimal by design (Mantid cannot be installed on our build machines, so this path is not exercised by the
test suite): it starts StartLiveData with the configured scripts and waits for SIGTERM/SIGINT. Hot reload and
the memory guard are the embedded engine's for now (issue: the Mantid engine).
"""

from __future__ import annotations

import logging
import signal
import threading

from livereduce.instruments import MANTID_LISTENER_NAMES
from livereduce.scripts import find_scripts

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


def run_mantid(config, runtime) -> int:
    from mantid.api import AlgorithmManager
    from mantid.simpleapi import StartLiveData

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    args = start_live_data_args(config, runtime)
    log.info("starting Mantid StartLiveData(%s)", ", ".join(f"{k}={v!r}" for k, v in args.items()))
    StartLiveData(**args)
    stop.wait()
    log.info("stopping Mantid live data")
    AlgorithmManager.cancelAll()
    return 0
