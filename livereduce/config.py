"""Configuration: every key declared once, as an attribute of Config (type, default, bounds, description).

FIELDS is read from those declarations; validation, the startup summary and docs/configuration.md
(scripts/build_config_doc.py) all derive from it, so they cannot drift apart. A bad value raises
ConfigError naming the key, what was expected and what was found; unknown keys are warnings, with the
closest known key suggested.
"""

from __future__ import annotations

import difflib
import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from livereduce import instruments
from livereduce.errors import ConfigError
from livereduce.instruments import MANTID_LISTENER_NAMES, ListenerKind, listener_kind, refuse_add

DEFAULT_PATH = "/etc/livereduce.conf"
SOFT_MEMORY_FRACTION = 0.8  # of the memory limit: above it the accumulation is compressed


@dataclass(frozen=True)
class Field:
    """One config key as the table declares it: what validation, the startup log and the docs need."""

    key: str  # JSON key; "a.b" is key b of object a
    attr: str  # the Config attribute
    kind: str  # str | number | int | bool | int_list | object | choice
    default: object
    doc: str
    choices: tuple = ()
    minimum: float | None = None
    maximum: float | None = None
    nullable: bool = False


def _key(
    default,
    doc: str,
    kind: str,
    *,
    choices: tuple = (),
    minimum: float | None = None,
    maximum: float | None = None,
    nullable: bool = False,
    json_key: str | None = None,
):
    """A Config attribute with its declaration: the one place a key, its default and its bounds are written."""
    spec = {
        "doc": doc,
        "kind": kind,
        "choices": choices,
        "minimum": minimum,
        "maximum": maximum,
        "nullable": nullable,
        "json_key": json_key,
    }
    if isinstance(default, dict):
        return field(default_factory=dict, metadata=spec)
    return field(default=default, metadata=spec)


@dataclass(frozen=True)
class Config:
    """A validated configuration file. Each attribute is declared once, with its default, bounds and doc."""

    instrument: str | None = _key(
        None,
        "Instrument name, full or short (`POWGEN` or `PG3`); chooses the default listener, address and "
        "script names.",
        "str",
        nullable=True,
    )
    script_dir: str | None = _key(
        None,
        "Directory holding `reduce_<INSTR>_live_proc.py` / `_post_proc.py`. Default "
        "`/SNS/<short name>/shared/livereduce`.",
        "str",
        nullable=True,
    )
    update_every: float = _key(
        30.0, "Seconds between cycle starts; 0 runs one cycle and exits.", "number", minimum=0
    )
    preserve_events: bool = _key(
        True,
        "Keep events after the proc script (false: histogram them, which bounds memory; recommended).",
        "bool",
    )
    accum_method: str = _key(
        "Add", "How each chunk joins the accumulation.", "choice", choices=("Add", "Replace", "Append")
    )
    periods: tuple | None = _key(
        None,
        "Periods to read from an ISIS histogram DAE (1-based); null: all.",
        "int_list",
        minimum=1,
        nullable=True,
    )
    spectra: tuple | None = _key(
        None, "Spectrum numbers to read from an ISIS DAE; null: all.", "int_list", minimum=0, nullable=True
    )
    system_mem_limit_perc: float = _key(
        70.0,
        f"Restart the session, clearing it, when this process's RSS exceeds this % of RAM; at "
        f"{SOFT_MEMORY_FRACTION:.0%} of it the accumulation is compressed first. 0 disables.",
        "number",
        minimum=0,
        maximum=100,
    )
    mem_check_interval_sec: float = _key(1.0, "Seconds between memory checks.", "number", minimum=0.01)
    watchdog_interval: float = _key(
        60.0,
        "Seconds between the anchor watchdog's checks (kept for compatibility; systemd's watchdog is fed "
        "from the session's progress).",
        "number",
        minimum=0.01,
        json_key="watchdog.interval",
    )
    watchdog_threshold: float = _key(
        300.0,
        "Seconds without progress after which the systemd watchdog is no longer fed (so systemd "
        "restarts the service).",
        "number",
        minimum=20,
        json_key="watchdog.threshold",
    )
    CONDA_ENV: str | None = _key(
        None, "Accepted for compatibility with the anchor's wrapper; logged only.", "str", nullable=True
    )
    PIXI_ENV: str | None = _key(
        None, "Accepted for compatibility with the anchor's wrapper; logged only.", "str", nullable=True
    )
    engine: str = _key(
        "auto",
        "`embedded` (our engine), `mantid` (Mantid's StartLiveData) or `auto` (Mantid "
        "when importable, else embedded).",
        "choice",
        choices=("auto", "embedded", "mantid"),
    )
    listener: str | None = _key(
        None,
        "Listener override: fake_event, fake_histogram, adara, isis_histogram, "
        "isis_event (or Mantid's class names).",
        "str",
        nullable=True,
    )
    address: str | None = _key(
        None, "`host:port` override of the instrument's DAS address.", "str", nullable=True
    )
    listener_options: dict = _key(  # noqa: RUF009 - _key gives a dict field its default_factory
        {}, "Extra options passed to the listener (e.g. fake_event `rate`).", "object"
    )
    start_from: str = _key(
        "start_of_run",
        "Where the stream starts: the current run's start (a restart replays the run) or now.",
        "choice",
        choices=("start_of_run", "now"),
    )
    run_transition: str = _key(
        "Restart",
        "At the end of a run: start afresh, stop, or keep the finished "
        "result as `<output>_<run>` then start afresh.",
        "choice",
        choices=("Restart", "Stop", "Rename"),
    )
    output_name: str = _key("result", "Name of the output workspace.", "str")
    max_carried_events: int = _key(
        100_000_000,
        "Most events kept for a proc script that keeps failing, to be processed once it works "
        "(~16 bytes each); past it the oldest are dropped, counted and logged.",
        "int",
        minimum=0,
    )
    step_timeout: float | None = _key(
        None,
        "Seconds a cycle's scripts may run before the step is declared hung and stopped; null: "
        "10 × update_every, at least 300.",
        "number",
        minimum=1,
        nullable=True,
    )
    state_dir: str | None = _key(
        None,
        "Directory for checkpoints (the accumulation, run identity, counters) and the single-instance lock. "
        "Null: $STATE_DIRECTORY (set by systemd's StateDirectory=), else ./livereduce-state.",
        "str",
        nullable=True,
    )
    checkpoint_every: int = _key(
        10,
        "Cycles between checkpoints (one is also written at a clean stop and at each run's end).",
        "int",
        minimum=1,
    )
    das_silence_timeout: float = _key(
        120.0,
        "Seconds without a byte from the DAS, while connected, after which the connection is dropped and "
        "made again.",
        "number",
        minimum=1,
    )
    allow_insecure_scripts: bool = _key(
        False,
        "Run scripts (and read a config) that users other than the owner may write. For development "
        "only: on a beamline it lets any of them run code as the daemon's user.",
        "bool",
    )
    log_file: str | None = _key(
        None,
        "Log file. Default: /var/log/SNS_applications/livereduce.log as user snsdata, else ./livereduce.log.",
        "str",
        nullable=True,
    )
    log_level: str = _key("INFO", "Log level.", "choice", choices=("DEBUG", "INFO", "WARNING", "ERROR"))

    def describe(self) -> list[str]:
        return [f"{f.key} = {getattr(self, f.attr)!r}" for f in FIELDS]


def _field(f) -> Field:
    m = f.metadata
    default = {} if m["kind"] == "object" else f.default
    return Field(
        m["json_key"] or f.name,
        f.name,
        m["kind"],
        default,
        m["doc"],
        m["choices"],
        m["minimum"],
        m["maximum"],
        m["nullable"],
    )


FIELDS: tuple[Field, ...] = tuple(_field(f) for f in fields(Config))
_BY_KEY = {f.key: f for f in FIELDS}


def resolve_config_path(arg: str | None) -> str | None:
    """argv[1] if given and non-empty, else /etc/livereduce.conf if it exists, else None (built-in defaults)."""
    if arg:
        return arg
    return DEFAULT_PATH if os.path.exists(DEFAULT_PATH) else None


def _check(field: Field, value, source: str | None):
    def bad(expected: str):
        raise ConfigError(field.key, expected, value, source)

    if value is None:
        if field.nullable:
            return None
        bad(f"a {field.kind} value, not null")
    if field.kind == "str":
        if not isinstance(value, str) or not value.strip():
            bad("a non-empty string")
        return value
    if field.kind == "bool":
        if not isinstance(value, bool):
            bad("true or false")
        return value
    if field.kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            bad("a number" + (f" ≥ {field.minimum:g}" if field.minimum is not None else ""))
        if (field.minimum is not None and value < field.minimum) or (
            field.maximum is not None and value > field.maximum
        ):
            hi = f" and ≤ {field.maximum:g}" if field.maximum is not None else ""
            bad(f"a number ≥ {field.minimum:g}{hi}")
        return float(value)
    if field.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
            bad("an integer" + (f" ≥ {field.minimum:g}" if field.minimum is not None else ""))
        if field.minimum is not None and value < field.minimum:
            bad(f"an integer ≥ {field.minimum:g}")
        return int(value)
    if field.kind == "int_list":
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            bad("null or a list of integers")
        if field.minimum is not None and any(v < field.minimum for v in value):
            bad(f"integers ≥ {field.minimum:g}")
        return tuple(value)
    if field.kind == "object":
        if not isinstance(value, dict):
            bad("a JSON object")
        return dict(value)
    for choice in field.choices:  # "choice": case-insensitive, canonicalised
        if isinstance(value, str) and value.lower() == choice.lower():
            return choice
    bad("one of " + ", ".join(field.choices))


def _flatten(raw: dict, source: str | None, warnings: list[str]) -> dict:
    flat = {}
    for key, value in raw.items():
        if key == "watchdog":
            if not isinstance(value, dict):
                raise ConfigError(
                    "watchdog", 'an object like {"interval": 60, "threshold": 300}', value, source
                )
            for sub, subvalue in value.items():
                flat[f"watchdog.{sub}"] = subvalue
        else:
            flat[key] = value
    for key in [k for k in flat if k not in _BY_KEY]:
        hint = difflib.get_close_matches(key, list(_BY_KEY), n=1)
        warnings.append(f"unknown key '{key}' ignored" + (f" (did you mean '{hint[0]}'?)" if hint else ""))
        del flat[key]
    return flat


def parse_config(raw, source: str | None = None) -> tuple[Config, list[str]]:
    """Validate a decoded JSON document into a Config, plus warnings."""
    if not isinstance(raw, dict):
        raise ConfigError("<top level>", "a JSON object", type(raw).__name__, source)
    warnings: list[str] = []
    values: dict[str, Any] = {f.attr: f.default for f in FIELDS}
    for key, value in _flatten(raw, source, warnings).items():
        values[_BY_KEY[key].attr] = _check(_BY_KEY[key], value, source)
    values["listener_options"] = dict(values["listener_options"])
    runtime = _resolve(
        values["instrument"],
        values["listener"],
        values["address"],
        values["accum_method"],
        values["script_dir"],
        source,
    )
    values["script_dir"] = runtime.script_dir
    for key in ("CONDA_ENV", "PIXI_ENV"):
        if values[key]:
            warnings.append(
                f"{key}={values[key]!r} noted (environment selection is the service wrapper's job)"
            )
    return Config(**values), warnings


@dataclass(frozen=True)
class Runtime:
    """What a config means here: the instrument's name, its script names, and where its data comes from."""

    name: str
    script_names: tuple[str, ...]
    listener: ListenerKind
    address: str
    script_dir: str

    @property
    def where(self) -> str:
        """The DAS address for the log, or what stands in for one."""
        return self.address if self.listener.needs_address else "(in-process, no DAS)"


def resolve(config: Config) -> Runtime:
    return _resolve(
        config.instrument, config.listener, config.address, config.accum_method, config.script_dir, None
    )


def _resolve(
    name: str | None,
    listener_name: str | None,
    address: str | None,
    accum_method: str,
    script_dir: str | None,
    source: str | None,
) -> Runtime:
    """The one rule from instrument, listener and address to what runs (validation and the daemon use it)."""
    listener = None
    if listener_name is not None:
        try:
            listener = listener_kind(listener_name)
        except ValueError as exc:
            raise ConfigError(
                "listener",
                "one of " + ", ".join([*ListenerKind, *MANTID_LISTENER_NAMES]),
                listener_name,
                source,
            ) from exc
    if name is None:
        raise ConfigError(
            "instrument", "an instrument name (e.g. POWGEN, NOMAD, ISIS_Histogram)", None, source
        )
    try:
        inst = instruments.lookup(name)
    except KeyError:
        inst = None
        if listener is None:
            close = instruments.closest(name)
            expected = (
                "a known instrument"
                + (f" (closest: {', '.join(close)})" if close else "")
                + ", or give 'listener' (and 'address')"
            )
            raise ConfigError("instrument", expected, name, source) from None
        if listener.needs_address and not address:
            raise ConfigError(
                "address",
                f"host:port of the DAS (listener {listener} needs one for an instrument not in the table)",
                None,
                source,
            ) from None
    if listener is None:
        if inst is None:  # cannot happen: an unknown instrument without a listener was refused above
            raise ConfigError("listener", "a listener for an instrument not in the table", None, source)
        listener = inst.listener
    refused = refuse_add(listener.cumulative, accum_method)
    if refused:
        raise ConfigError("accum_method", refused, accum_method, source)
    names = tuple(instruments.script_names(inst)) if inst is not None else (name,)
    # scripts live under the short name by default, as the anchor has them (/SNS/PG3/shared/livereduce)
    script_dir = script_dir or f"/SNS/{names[0]}/shared/livereduce"
    if inst is None:
        return Runtime(name, names, listener, address or "", script_dir)
    return Runtime(inst.name, names, listener, address or inst.address, script_dir)


def load_config(path: str | None) -> tuple[Config, list[str]]:
    """Read and validate the config file at `path` (None: built-in defaults)."""
    if path is None:
        return parse_config({}, None)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("<file>", "a readable JSON file", f"{path}: {exc.strerror}") from exc
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            "<json>", "valid JSON", f"{exc.msg} at line {exc.lineno} column {exc.colno}", path
        ) from exc
    return parse_config(raw, path)
