"""`livereduce check [CONFIG]`: the seed's "test before deploying", as one command.

Validates the config, finds and compiles the scripts, lists every algorithm a script calls and every `mantid`
name it uses that the embedded engine lacks (in code that runs: module statements and the functions they
use), and dry-runs the scripts for a few cycles on synthetic data shaped like the configured source: events
over the instrument's real detectors when its definition (IDF) is found, else 16 synthetic spectra.
Exit 0 only when all is well; every problem is printed with its file and line.
"""

from __future__ import annotations

import glob
import logging
import os
import sys
import tempfile
from pathlib import Path

from livereduce.algorithms.registry import SAVE_SANDBOX
from livereduce.config import load_config, resolve, resolve_config_path
from livereduce.errors import ConfigError, ScriptError
from livereduce.instruments import ListenerKind
from livereduce.listeners import kafka
from livereduce.listeners.fake import FakeEventListener, FakeHistogramListener
from livereduce.mantidapi import unsupported_calls
from livereduce.mantidapi.static import unsupported_names
from livereduce.records import RecordKind
from livereduce.script_parameters import ParameterError, describe, load_parameters
from livereduce.scripts import compile_script, find_scripts
from livereduce.session import Session

DRY_RUN_CYCLES = 3
SYNTHETIC_SPECTRA = 16  # the dry run's spectra when the instrument's geometry is not known
# where Mantid installs keep instrument definitions (<NAME>_Definition*.xml); the script directory first
IDF_DIRS = ("{script_dir}", "~/.mantid/instrument", "/opt/mantid*/instrument", "/opt/Mantid*/instrument")


def run_check(config_arg: str | None, out=None, idf: str | None = None) -> int:
    """Check a config and its scripts; `idf`: the instrument definition to dry-run on (default: searched
    in IDF_DIRS by the instrument's name)."""
    out = out or sys.stdout
    problems: list[str] = []

    def say(line: str) -> None:
        print(line, file=out, flush=True)

    try:
        path = resolve_config_path(config_arg)
        config, warnings = load_config(path)
        runtime = resolve(config)
        if runtime.listener is ListenerKind.KAFKA:
            kafka.require_extra()  # the daemon would exit 2 on it: say so before it is started
    except ConfigError as exc:
        say(f"ERROR config: {exc}")
        return 2
    say(
        f"OK config {path or '(defaults)'}: instrument {runtime.name}, listener {runtime.listener} "
        f"{runtime.where}"
    )
    for warning in warnings:
        say(f"WARNING config: {warning}")

    try:
        found = find_scripts(runtime.script_dir, runtime.script_names)
    except ScriptError as exc:
        say(f"ERROR scripts: {exc}")
        return 2
    try:
        parameters = load_parameters(config.parameters, runtime.script_dir)
        if config.parameters is not None:
            say(f"OK {describe(parameters)}")
    except ParameterError as exc:
        say(f"ERROR {exc}")
        return 2
    scripts = {}
    for kind, file in (("proc", found.proc), ("post_proc", found.post_proc)):
        if not file:
            continue
        try:
            scripts[kind] = compile_script(file, kind)
            say(f"OK {kind} script {file} compiles (md5 {scripts[kind].md5})")
        except ScriptError as exc:
            problems.append(f"ERROR {exc}")
            continue
        problems.extend(_unsupported(file))
    if len(scripts) == sum(1 for f in (found.proc, found.post_proc) if f):
        problems.extend(_dry_run(config, runtime, scripts, say, idf))
    for line in problems:
        say(line)
    say("check passed" if not problems else f"check failed: {len(problems)} problem(s)")
    return 0 if not problems else 1


def _unsupported(file: str) -> list[str]:
    source = Path(file).read_text(encoding="utf-8", errors="replace")
    found = [(line, name) for name, line in unsupported_calls(source)]
    found += [(line, name) for name, line in unsupported_names(source)]
    return [
        f"ERROR {file}:{line}: {name} is not provided by the embedded engine (use engine 'mantid' where "
        f"Mantid is installed, or see `docs/algorithms.md` for the supported list)"
        for line, name in sorted(found)
    ]


def find_idf(name: str, script_dir: str) -> str | None:
    """The newest-named `<name>_Definition*.xml` in IDF_DIRS (Mantid names files by instrument and date)."""
    for pattern in IDF_DIRS:
        folder = os.path.expanduser(pattern.format(script_dir=script_dir or "."))
        base = folder if "*" in folder else glob.escape(folder)  # a script dir is a path, not a pattern
        hits = sorted(glob.glob(os.path.join(base, f"{name}_Definition*.xml")))
        if hits:
            return hits[-1]
    return None


def _geometry_spectra(path: str):
    """Spectra over every detector of the IDF at `path` (one spectrum per pixel, with its geometry)."""
    from livereduce.instrument import read_idf
    from livereduce.workspace.spectra import Spectra

    g = read_idf(path)
    s = Spectra.one_to_one(
        g.det_ids, l1=g.l1, l2=g.l2, two_theta=g.two_theta, azimuthal=g.azimuthal, instrument=g.name
    )
    s.geometry = g
    return s


def _dry_run(config, runtime, scripts, say, idf: str | None = None) -> list[str]:
    histogram_source = runtime.listener.cumulative
    shape = f"{SYNTHETIC_SPECTRA} synthetic spectra"
    listener: FakeHistogramListener | FakeEventListener
    if histogram_source:
        listener = FakeHistogramListener(nperiods=max(config.periods or [1]), periods=config.periods)
    else:
        listener = FakeEventListener(events_per_extract=10_000, nspectra=SYNTHETIC_SPECTRA, seed=1)
        path = idf or config.instrument_definition or find_idf(runtime.name, runtime.script_dir)
        if path:  # a script that assumes the real detector count must see it
            try:
                listener.spectra = _geometry_spectra(path)
                shape = f"the {len(listener.spectra)} detectors of {path}"
            except (OSError, ValueError) as exc:
                say(f"WARNING instrument definition {path} unreadable ({exc}); dry run on {shape}")
    quiet = logging.getLogger("livereduce.session")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # errors are reported below, once each
    # synthetic data must never overwrite real products: Save* algorithms write into a scratch directory
    # (a script's own open() calls are not redirected)
    scratch = tempfile.TemporaryDirectory(prefix="livereduce-check-")
    sandbox = SAVE_SANDBOX.set(scratch.name)
    try:
        session = Session(
            listener=listener,
            proc=scripts.get("proc"),
            post_proc=scripts.get("post_proc"),
            accum_method=config.accum_method,
            preserve_events=config.preserve_events,
            update_every=1,
            run_transition=config.run_transition,
            output_name=config.output_name,
            parameters=load_parameters(config.parameters, runtime.script_dir).values,
        )
        errors: list[str] = []
        session.records.subscribe(
            lambda r: (
                errors.append(f"ERROR dry run, cycle {r.cycle}: {r.data.message}")
                if r.kind is RecordKind.SCRIPT_ERROR
                else None
            )
        )
        for _ in range(DRY_RUN_CYCLES):
            session.step()
    except ConfigError as exc:
        return [f"ERROR config: {exc}"]
    finally:
        quiet.setLevel(level)
        SAVE_SANDBOX.reset(sandbox)
        scratch.cleanup()
    if not errors:
        say(
            f"OK dry run: {DRY_RUN_CYCLES} cycles on synthetic "
            f"{'histograms' if histogram_source else 'events over ' + shape} "
            f"(files from Save* algorithms went to a scratch directory)"
        )
    return list(dict.fromkeys(errors))
