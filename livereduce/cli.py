"""Command line: `livereduce [run] [CONFIG]`, `livereduce check [CONFIG]`, and the fake DAS servers.

Exit codes: 0 fine; 1 unexpected failure; 2 a bad or unparseable configuration, scripts or a config that others
may write, or another daemon holding the state directory's lock (fix the setup: restarting will not help, and
the systemd unit does not restart on 2). Missing or broken scripts are not an exit: the daemon waits for them.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from pathlib import Path

from livereduce import __version__, logs
from livereduce.check import run_check
from livereduce.config import load_config, resolve, resolve_config_path, state_dir_path
from livereduce.daemon import build_daemon
from livereduce.errors import ConfigError, ScriptError
from livereduce.lock import InstanceLock, LockError
from livereduce.scripts import check_permissions, find_scripts

EXIT_SETUP = 2  # fix the setup: a restart cannot help (the systemd unit does not restart on 2)
log = logging.getLogger("livereduce")


def _load(path_arg: str | None):
    path = resolve_config_path(path_arg)
    config, warnings = load_config(path)
    return path, config, warnings


def cmd_run(args) -> int:
    try:
        path, config, warnings = _load(args.config)
    except ConfigError as exc:
        logs.setup_logging(None, "INFO")
        log.error("configuration error: %s", exc)
        return EXIT_SETUP
    logs.setup_logging(config.log_file, config.log_level)
    log.info("livereduce %s starting with %s", __version__, path or "built-in defaults")
    for warning in warnings:
        log.warning("config: %s", warning)
    try:
        runtime = resolve(config)
        try:
            engine, why = _engine(config, runtime)
        except EngineError as exc:
            log.error("cannot run engine 'mantid': %s", exc)
            return EXIT_SETUP
        log.info("engine %s: %s", engine, why)
        try:  # missing or broken scripts: the daemon waits for them; insecure ones: exit 2 (a restart cannot fix)
            found = find_scripts(runtime.script_dir, runtime.script_names)
        except ScriptError:
            found = None
        if found is not None and not config.allow_insecure_scripts:
            check_permissions(runtime.script_dir, found, allow_insecure=False)  # the daemon warns otherwise
        # one daemon per state directory, for its whole life (both engines: they would fight over products)
        with InstanceLock(state_dir_path(config.state_dir)) as lock:
            log.info("holding %s", lock.path)
            daemon = build_daemon(config, runtime, config_path=path, engine=engine)
            daemon.status.set_engine(engine, why)  # /status shows the choice and its reason
            return daemon.run()
    except ConfigError as exc:
        log.error("configuration error: %s", exc)
        return EXIT_SETUP
    except ScriptError as exc:
        log.error("script error: %s", exc)
        return EXIT_SETUP
    except LockError as exc:
        log.error("not starting: %s", exc)
        return EXIT_SETUP


class EngineError(Exception):
    """engine 'mantid' where Mantid cannot be imported: the service runs in the wrong environment (exit 2)."""


def _engine(config, runtime) -> tuple[str, str]:
    """(engine, why). `embedded` and `mantid` are the config's word; `auto` takes Mantid when `import mantid`
    finds a real Mantid (not livereduce's own aliases) and the scripts call what the embedded engine lacks."""
    from livereduce.engines.mantid import mantid_importable

    if config.engine == "embedded":
        return "embedded", "the config says engine 'embedded'"
    importable, where = mantid_importable()
    if config.engine == "mantid":
        if not importable:
            raise EngineError(_no_mantid(config, where))
        return "mantid", f"the config says engine 'mantid' (Mantid from {where})"
    lacking = _lacking(runtime)
    if lacking and importable:
        return (
            "mantid",
            f"auto: the scripts call what the embedded engine lacks ({lacking}); Mantid from {where}",
        )
    if lacking:
        log.warning(
            "engine auto: the scripts call what the embedded engine lacks (%s) but Mantid cannot be imported "
            "(%s); running the embedded engine, where those calls fail as script errors",
            lacking,
            where,
        )
        return (
            "embedded",
            f"auto: Mantid cannot be imported ({where}); the scripts call {lacking}, which fail",
        )
    if importable:
        return (
            "embedded",
            f"auto: the embedded engine has everything the scripts call (Mantid from {where} unused)",
        )
    return "embedded", f"auto: Mantid cannot be imported ({where})"


def _lacking(runtime) -> str:
    """What the scripts call that the embedded engine lacks, as `Name (file:line)`, or "" (scripts missing or
    unparsable: the daemon reports those itself)."""
    from livereduce.mantidapi.static import unsupported_calls, unsupported_names

    try:
        found = find_scripts(runtime.script_dir, runtime.script_names)
    except ScriptError:
        return ""
    out = []
    for path in (found.proc, found.post_proc):
        if not path:
            continue
        try:
            source = Path(path).read_text(encoding="utf-8")
            hits = unsupported_calls(source) + unsupported_names(source)
        except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
            continue
        out += [f"{name} ({os.path.basename(path)}:{line})" for name, line in hits]
    return ", ".join(out[:5]) + (f" and {len(out) - 5} more" if len(out) > 5 else "")


def _no_mantid(config, why: str) -> str:
    envs = [f"{key}={getattr(config, key)!r}" for key in ("CONDA_ENV", "PIXI_ENV") if getattr(config, key)]
    named = f"the config names {' and '.join(envs)}; " if envs else ""
    return (
        f"this Python ({sys.executable}) cannot import Mantid ({why}). CONDA_ENV/PIXI_ENV "
        f"in the config are only logged: {named}start the service with the Mantid environment's interpreter, "
        "e.g. a systemd drop-in with ExecStart=/path/to/env/bin/python -m livereduce run /etc/livereduce.conf, "
        "or `conda run -n ENV livereduce run ...` / `pixi run --manifest-path ... livereduce run ...` "
        "(docs/engines.md); or set engine 'embedded' or 'auto'"
    )


def cmd_check(args) -> int:
    return run_check(args.config)


def cmd_status(args) -> int:
    from livereduce.status.client import main as status_main

    return status_main(args.config, args.url, args.json)


# fake DAS servers, named after the listener that reads them; the second name is the older one, kept
SERVERS = {
    "fake-adara": ("livereduce.servers.adara", "fake-sms", "fake SNS ADARA stream server (an SMS)"),
    "fake-isis-histogram": ("livereduce.servers.isis_histogram", "fake-dae", "fake ISIS histogram DAE"),
    "fake-isis-event": ("livereduce.servers.isis_event", "fake-event-dae", "fake ISIS event DAE"),
    "fake-kafka": ("livereduce.servers.fake_kafka", "", "fake Kafka producer (ESS FlatBuffers topics)"),
}
SERVER_NAMES = {alias: name for name, (_, old, _) in SERVERS.items() for alias in (name, old) if alias}
COMMANDS = {"run", "check", "try", "geometry", "status", *SERVER_NAMES}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="livereduce", description="Live data reduction for neutron beamlines."
    )
    parser.add_argument("--version", action="version", version=f"livereduce {__version__}")
    sub = parser.add_subparsers(dest="command")
    p = sub.add_parser("run", help="run the daemon (default)")
    p.add_argument("config", nargs="?", default=None, help="config file (default /etc/livereduce.conf)")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("check", help="validate config and scripts, dry-run the scripts on synthetic data")
    p.add_argument("config", nargs="?", default=None)
    p.set_defaults(func=cmd_check)
    p = sub.add_parser("status", help="show the running daemon's status (its /status page, for a terminal)")
    p.add_argument("config", nargs="?", default=None, help="config naming the status host and port")
    p.add_argument("--url", help="the daemon's status URL (default: from the config's status.host/port)")
    p.add_argument("--json", action="store_true", help="print the /status JSON as it is")
    p.set_defaults(func=cmd_status)
    from livereduce.instrument.report import add_parser as add_geometry

    add_geometry(sub)  # livereduce geometry IDF_FILE [--ids ...] [--json]
    from livereduce.trial import add_parser as add_try

    add_try(sub)  # livereduce try [CONFIG] --replay FILE [--speed N] [--cycles K] [--scripts DIR] ...
    for name, (_, old, text) in SERVERS.items():
        sub.add_parser(name, aliases=[old] if old else [], help=f"{text} (see {name} --help)")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SERVER_NAMES:  # the fake servers parse their own options
        module = importlib.import_module(SERVERS[SERVER_NAMES[argv[0]]][0])
        return module.main(argv[1:], prog=f"livereduce {argv[0]}") or 0
    if not argv or (argv[0] not in COMMANDS and not argv[0].startswith("-")):
        argv = ["run", *argv]  # the seed's form: livereduce.py [CONFIG]
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
