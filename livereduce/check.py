"""`livereduce check [CONFIG]`: the seed's "test before deploying", as one command.

Validates the config, finds and compiles the scripts, lists every algorithm a script calls that the embedded
engine lacks, and dry-runs the scripts for a few cycles on synthetic data shaped like the configured source.
Exit 0 only when all is well; every problem is printed with its file and line.
"""

from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path

from livereduce.algorithms.registry import SAVE_SANDBOX
from livereduce.config import load_config, resolve, resolve_config_path
from livereduce.errors import ConfigError, ScriptError
from livereduce.listeners.fake import FakeEventListener, FakeHistogramListener
from livereduce.mantidapi import unsupported_calls
from livereduce.records import RecordKind
from livereduce.script_parameters import ParameterError, describe, load_parameters
from livereduce.scripts import compile_script, find_scripts
from livereduce.session import Session

DRY_RUN_CYCLES = 3


def run_check(config_arg: str | None, out=None) -> int:
    out = out or sys.stdout
    problems: list[str] = []

    def say(line: str) -> None:
        print(line, file=out, flush=True)

    try:
        path = resolve_config_path(config_arg)
        config, warnings = load_config(path)
        runtime = resolve(config)
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
        problems.extend(_dry_run(config, runtime, scripts, say))
    for line in problems:
        say(line)
    say("check passed" if not problems else f"check failed: {len(problems)} problem(s)")
    return 0 if not problems else 1


def _unsupported(file: str) -> list[str]:

    source = Path(file).read_text(encoding="utf-8", errors="replace")
    return [
        f"ERROR {file}:{line}: {name} is not provided by the embedded engine (use engine 'mantid' where "
        f"Mantid is installed, or see `docs/algorithms.md` for the supported list)"
        for name, line in unsupported_calls(source)
    ]


def _dry_run(config, runtime, scripts, say) -> list[str]:

    histogram_source = runtime.listener.cumulative
    listener = (
        FakeHistogramListener(nperiods=max(config.periods or [1]), periods=config.periods)
        if histogram_source
        else FakeEventListener(events_per_extract=10_000, nspectra=16, seed=1)
    )
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
            f"OK dry run: {DRY_RUN_CYCLES} cycles on synthetic {'histograms' if histogram_source else 'events'} "
            f"(files from Save* algorithms went to a scratch directory)"
        )
    return list(dict.fromkeys(errors))
