"""Configuration: every key declared once, as an attribute of Config (type, default, bounds, description).

FIELDS is read from those declarations; validation, the startup summary and docs/configuration.md
(scripts/build_config_doc.py) all derive from it, so they cannot drift apart. Plain dataclasses with field
metadata rather than pydantic or attrs: the rules are few and ours (units, ranges, messages that name the key
and what was expected), the types stay visible to mypy, and it costs no dependency on the daemon's hosts.
A bad value raises ConfigError naming the key, what was expected and what was found; unknown keys are warnings, with the
closest known key suggested.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from livereduce import instruments
from livereduce.errors import ConfigError
from livereduce.instruments import MANTID_LISTENER_NAMES, ListenerKind, listener_kind, refuse_add

DEFAULT_PATH = "/etc/livereduce.conf"
SOFT_MEMORY_FRACTION = 0.8  # of the memory limit: above it the accumulation is compressed
MAX_FILE_BYTES = 1 << 20  # a config is a few hundred bytes; anything near this is not one
MAX_NESTING = 8  # a config nests two or three levels (watchdog, listener_options); deeper is not one
DAY_S = 86400.0
INT32_MAX = 2**31 - 1
DEFAULT_STATE_DIR = "livereduce-state"  # under the working directory, when neither config nor systemd says
LISTENER_TIMEOUT_MAX_S = DAY_S


@dataclass(frozen=True)
class Field:
    """One config key as the table declares it: what validation, the startup log and the docs need."""

    key: str  # JSON key; "a.b" is key b of object a
    attr: str  # the Config attribute
    # str | number | int | bool | int_list | object | parameters (object or path) | choice | address (host:port)
    kind: str
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
        30.0,
        "Seconds between cycle starts; 0 runs one cycle and exits.",
        "number",
        minimum=0,
        maximum=DAY_S,
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
        maximum=INT32_MAX,
        nullable=True,
    )
    spectra: tuple | None = _key(
        None,
        "Spectrum numbers to read from an ISIS DAE; null: all.",
        "int_list",
        minimum=0,
        maximum=INT32_MAX,
        nullable=True,
    )
    system_mem_limit_perc: float = _key(
        70.0,
        f"Restart the session, clearing it, when this process's RSS exceeds this % of RAM; at "
        f"{SOFT_MEMORY_FRACTION:.0%} of it the accumulation is compressed first. 0 disables.",
        "number",
        minimum=0,
        maximum=100,
    )
    mem_check_interval_sec: float = _key(
        1.0, "Seconds between memory checks.", "number", minimum=0.01, maximum=3600
    )
    memory_restart_interval: float = _key(
        60.0,
        "Seconds after a memory-limit restart (which resumes from the checkpoint) during which hitting the limit "
        "again starts a new, empty accumulation instead (the accumulation itself is too large); the interval "
        "doubles each time, up to an hour.",
        "number",
        minimum=1,
        maximum=3600,
    )
    watchdog_interval: float = _key(
        60.0,
        "Seconds between the anchor watchdog's checks (kept for compatibility; systemd's watchdog is fed "
        "from the session's progress).",
        "number",
        minimum=0.01,
        maximum=3600,
        json_key="watchdog.interval",
    )
    watchdog_threshold: float = _key(
        300.0,
        "Seconds without progress after which the systemd watchdog is no longer fed (so systemd "
        "restarts the service).",
        "number",
        minimum=20,
        maximum=DAY_S,
        json_key="watchdog.threshold",
    )
    max_buffered_events: int = _key(
        200_000_000,
        "Events the listener may hold while the session is busy (8 bytes each: 1.6 GB by default). When the session "
        "falls that far behind, whole pulses are dropped and counted (an ERROR line each cycle, "
        "`events_dropped_buffer_full` and the lag on the status page) instead of memory growing without end. "
        "Four times it also bounds the chunks kept since the last checkpoint (for a worker that replaces a dead "
        "one): past that, a checkpoint is written early.",
        "int",
        minimum=10_000,
        maximum=4_000_000_000,
    )
    parameters: dict | str | None = _key(  # noqa: RUF009 - its default is None; _key only declares it
        None,
        'Values scripts read as `parameters["key"]` (or `livereduce.parameters["key"]`): a JSON object, or '
        "the path of a TOML or JSON file (relative: from script_dir). A file is watched: an edit is validated "
        "and applied from the next cycle without a restart (a key the proc script names restarts the session, "
        "as a proc edit does); a bad edit is rejected and the running values stay. See "
        "docs/processing-scripts.md.",
        "parameters",
        nullable=True,
    )
    status_enabled: bool = _key(
        True,
        'Serve the read-only status page, /status JSON and /metrics over HTTP (`"status": false` turns it off).',
        "bool",
        json_key="status.enabled",
    )
    status_host: str = _key(
        "127.0.0.1",
        "Address the status server binds (loopback by default: reach it through an SSH tunnel; 0.0.0.0 opens it "
        "to the network).",
        "str",
        json_key="status.host",
    )
    status_port: int = _key(
        8140,
        "Port of the status server; 0 picks a free port (the URL is logged).",
        "int",
        minimum=0,
        maximum=65535,
        json_key="status.port",
    )
    ready_grace: float = _key(
        30.0,
        "Seconds the daemon waits for the DAS before telling systemd it is ready anyway (STATUS says the DAS "
        "is not reachable); READY is sent as soon as the listener connects.",
        "number",
        minimum=0,
        maximum=3600,
    )
    CONDA_ENV: str | None = _key(
        None, "Accepted for compatibility with the anchor's wrapper; logged only.", "str", nullable=True
    )
    PIXI_ENV: str | None = _key(
        None, "Accepted for compatibility with the anchor's wrapper; logged only.", "str", nullable=True
    )
    engine: str = _key(
        "auto",
        "`embedded` (our engine), `mantid` (Mantid's StartLiveData) or `auto`: Mantid when it is importable "
        "and the scripts call what the embedded engine lacks, else embedded (the choice and why are logged "
        "and on the status page; docs/engines.md).",
        "choice",
        choices=("auto", "embedded", "mantid"),
    )
    listener: str | None = _key(
        None,
        "Listener override: fake_event, fake_histogram, adara, isis_histogram, "
        "isis_event, kafka (see docs/kafka.md) (or Mantid's class names).",
        "str",
        nullable=True,
    )
    address: str | None = _key(
        None, "`host:port` override of the instrument's DAS address.", "address", nullable=True
    )
    listener_options: dict = _key(  # noqa: RUF009 - _key gives a dict field its default_factory
        {},
        "Extra options passed to the listener (e.g. fake_event `rate`). Numbers must be finite; an option "
        f"named `*timeout` must be > 0 and ≤ {LISTENER_TIMEOUT_MAX_S:g} s.",
        "object",
    )
    instrument_definition: str | None = _key(
        None,
        "Path of a Mantid instrument definition (IDF XML) for listeners whose stream sends no geometry (ISIS, "
        "Kafka, fake): chunks get its L1 and each detector's L2, 2θ and φ, and `getInstrument()` its "
        "parameters. An ADARA stream's own GEOMETRY packet wins. Read once, when the listener is made.",
        "str",
        nullable=True,
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
        maximum=10**10,
    )
    step_timeout: float | None = _key(
        None,
        "Seconds a cycle's scripts may run before the step is declared hung and stopped; null: "
        "10 × update_every, at least 300.",
        "number",
        minimum=1,
        maximum=DAY_S,
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
        "Cycles between checkpoints (one is also written at a clean stop and at each run's end, and early once "
        "the chunks kept since the last one for a replacement worker hold more than 4 × `max_buffered_events`). "
        "A regular checkpoint waits, if need be, until writing the last one took at most a tenth of the time since "
        "(a 10^8-bin accumulation takes seconds to write).",
        "int",
        minimum=1,
        maximum=10**6,
    )
    das_silence_timeout: float = _key(
        120.0,
        "Seconds without a byte from the DAS, while connected, after which the connection is dropped and "
        "made again.",
        "number",
        minimum=1,
        maximum=DAY_S,
    )
    allow_insecure_scripts: bool = _key(
        False,
        "Run scripts (and read a config) that users other than the owner may write. For development "
        "only: on a beamline it lets any of them run code as the daemon's user.",
        "bool",
    )
    log_file: str | None = _key(
        None,
        "Log file. Default: $LOGS_DIRECTORY/livereduce.log under systemd (the unit's LogsDirectory=), else "
        "/var/log/SNS_applications/livereduce.log as user snsdata, else ./livereduce.log.",
        "str",
        nullable=True,
    )
    log_level: str = _key("INFO", "Log level.", "choice", choices=("DEBUG", "INFO", "WARNING", "ERROR"))

    def describe(self) -> list[str]:
        """`key = value` lines for the log; secrets in listener_options (a Kafka listener's SASL/SSL settings)
        are shown as ***."""
        return [f"{f.key} = {_redacted(getattr(self, f.attr))!r}" for f in FIELDS]


_SECRET = re.compile(r"password|secret|token|credential|(^|[._])key($|[._])", re.IGNORECASE)


def _redacted(value):
    """`value` with the values of secret-looking keys (password, secret, token, credential, *.key) masked."""
    if isinstance(value, dict):
        return {k: "***" if _SECRET.search(str(k)) else _redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


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


def bound_text(x: float) -> str:
    """A bound as the docs and messages show it: exact for whole numbers (2147483647, not 2.14748e+09)."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e16 else f"{x:g}"


def _range_text(field: Field) -> str:
    parts = [f"≥ {bound_text(field.minimum)}"] if field.minimum is not None else []
    if field.maximum is not None:
        parts.append(f"≤ {bound_text(field.maximum)}")
    return (" " + " and ".join(parts)) if parts else ""


def _finite(value) -> bool:
    """A JSON number that is a usable float: not NaN, not ±Infinity, not an integer too large for a float."""
    try:
        return math.isfinite(float(value))
    except (OverflowError, ValueError, TypeError):
        return False


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _within(field: Field, value) -> bool:
    return (field.minimum is None or value >= field.minimum) and (
        field.maximum is None or value <= field.maximum
    )


# host:port; the host is a name, an IPv4 address or a bracketed IPv6 address
_ADDRESS = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):(?P<port>[0-9]{1,5})")


def valid_address(value: object) -> bool:
    """True for 'host:port' with a port from 1 to 65535."""
    match = _ADDRESS.fullmatch(value) if isinstance(value, str) else None
    return match is not None and 1 <= int(match["port"]) <= 65535


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
    if field.kind == "address":
        if not valid_address(value):
            bad("host:port with a port from 1 to 65535 (e.g. 'bl11a-daq1.sns.gov:31415')")
        return value
    if field.kind == "bool":
        if not isinstance(value, bool):
            bad("true or false")
        return value
    if field.kind == "number":  # NaN and ±Infinity (JSON's NaN, Infinity, 1e999) compare false: refused first
        if not _is_number(value) or not _finite(value) or not _within(field, value):
            bad("a finite number" + _range_text(field))
        return float(value)
    if field.kind == "int":
        if not _is_number(value) or not _finite(value) or value != int(value) or not _within(field, value):
            bad("an integer" + _range_text(field))
        return int(value)
    if field.kind == "int_list":
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            bad("null or a list of integers")
        if not all(_within(field, v) for v in value):
            bad("integers" + _range_text(field))
        return tuple(value)
    if field.kind == "parameters":
        if isinstance(value, str) and value.strip():
            return value
        if not isinstance(value, dict):
            bad("a JSON object of values, or the path of a TOML or JSON file")
        _check_options(field.key, value, source)
        return dict(value)
    if field.kind == "object":
        if not isinstance(value, dict):
            bad("a JSON object")
        _check_options(field.key, value, source)
        return dict(value)
    for choice in field.choices:  # "choice": case-insensitive, canonicalised
        if isinstance(value, str) and value.lower() == choice.lower():
            return choice
    bad("one of " + ", ".join(field.choices))


def _check_options(prefix: str, options: dict, source: str | None) -> None:
    """Listener options pass through to the listener: every number in them must be finite, and an option
    named `*timeout` (a socket timeout) a number > 0 and ≤ a day (0 or less kills the receive thread)."""
    for key, value in options.items():
        name = f"{prefix}.{key}"
        if str(key).lower().endswith("timeout"):
            if not _is_number(value) or not _finite(value) or not 0 < value <= LISTENER_TIMEOUT_MAX_S:
                raise ConfigError(
                    name, f"a number of seconds > 0 and ≤ {bound_text(LISTENER_TIMEOUT_MAX_S)}", value, source
                )
            continue
        stack = [value]
        while stack:
            item = stack.pop()
            if isinstance(item, dict):
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
            elif _is_number(item) and not _finite(item):
                raise ConfigError(name, "finite numbers (not NaN or Infinity)", value, source)


NESTED = {  # keys whose value is an object of sub-keys ("a": {"b": 1} is key "a.b")
    "watchdog": 'an object like {"interval": 60, "threshold": 300}',
    "status": 'true, false, or an object like {"host": "127.0.0.1", "port": 8140}',
}


def _flatten(raw: dict, source: str | None, warnings: list[str]) -> dict:
    flat = {}
    for key, value in raw.items():
        if key == "status" and isinstance(value, bool):
            flat["status.enabled"] = value  # "status": false turns the HTTP server off
        elif key in NESTED:
            if not isinstance(value, dict):
                raise ConfigError(key, NESTED[key], value, source)
            for sub, subvalue in value.items():
                flat[f"{key}.{sub}"] = subvalue
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


def writable_by_others(st_mode: int) -> str | None:
    """'group-writable', 'world-writable' or 'group- and world-writable' for such a mode, else None."""
    group, world = bool(st_mode & stat.S_IWGRP), bool(st_mode & stat.S_IWOTH)
    if group and world:
        return "group- and world-writable"
    return "group-writable" if group else "world-writable" if world else None


def load_config(path: str | None) -> tuple[Config, list[str]]:
    """Read and validate the config file at `path` (None: built-in defaults).

    Anything that is not a small UTF-8 JSON object is a ConfigError naming the file and the problem: a file
    over MAX_FILE_BYTES, NUL bytes (binary, UTF-16), bytes that are not UTF-8, JSON nested deeper than
    MAX_NESTING. A file that users other than its owner may write is refused unless it sets
    allow_insecure_scripts (then it is a warning).
    """
    if path is None:
        return parse_config({}, None)
    raw = json_document(_read_text(path), path)
    config, warnings = parse_config(raw, path)
    return config, warnings + _file_mode_warnings(path, config.allow_insecure_scripts)


def _read_text(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError("<file>", "a readable JSON file", f"{path}: {exc.strerror or exc}") from exc
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(
            "<file>",
            f"a JSON file of at most {MAX_FILE_BYTES >> 20} MiB",
            f"more than {MAX_FILE_BYTES} bytes",
            path,
        )
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ConfigError("<file>", "UTF-8 text", "UTF-16 text (save the file as UTF-8)", path)
    if b"\x00" in data:
        raise ConfigError(
            "<file>", "UTF-8 text", f"a NUL byte at offset {data.index(0)} (a binary or UTF-16 file)", path
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            "<file>", "UTF-8 text", f"byte 0x{data[exc.start]:02x} at offset {exc.start} is not UTF-8", path
        ) from None


def json_document(text: str, path: str | None):
    """The decoded JSON, or a ConfigError (syntax with line and column, nesting, oversized numbers)."""
    deep = ConfigError("<json>", f"JSON nested at most {MAX_NESTING} levels deep", "deeper nesting", path)
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            "<json>", "valid JSON", f"{exc.msg} at line {exc.lineno} column {exc.colno}", path
        ) from exc
    except RecursionError:  # the decoder's own limit; _depth below catches the depths short of it
        raise deep from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise ConfigError("<json>", "valid JSON", str(exc), path) from None
    if _depth(raw) > MAX_NESTING:
        raise deep
    return raw


def _depth(value) -> int:
    """How deeply objects and arrays nest (a flat object: 1), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _file_mode_warnings(path: str, allow_insecure: bool) -> list[str]:
    """Whoever can write the config chooses the scripts the daemon runs: only its owner may write it."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise ConfigError("<file>", "a readable JSON file", f"{path}: {exc.strerror or exc}") from exc
    who = writable_by_others(mode)
    if who is None:
        return []
    found = f"mode {stat.S_IMODE(mode):04o} ({who})"
    if allow_insecure:
        return [f"{path} is {found}: accepted because allow_insecure_scripts is set (development only)"]
    raise ConfigError(
        "<file>",
        "a file only its owner may write (chmod go-w it; allow_insecure_scripts accepts it for development)",
        found,
        path,
    )


def state_dir_path(state_dir: str | None, environ: Mapping[str, str] | None = None) -> Path:
    """Where checkpoints and the single-instance lock live: `state_dir` if set, else $STATE_DIRECTORY (set by
    systemd's StateDirectory=; the first entry when it lists several), else ./livereduce-state."""
    if state_dir:
        return Path(state_dir).absolute()
    env = (os.environ if environ is None else environ).get("STATE_DIRECTORY", "")
    first = env.split(":")[0]
    return Path(first or DEFAULT_STATE_DIR).absolute()
