"""Parameters apart from code: values scripts read as `parameters["calibration"]` (Mantid-style scripts, where
it is injected like `input`) or `livereduce.parameters["calibration"]` (anywhere in a script's imports).

The config's `parameters` is a JSON object, or the path of a TOML or JSON file (relative paths: from the script
directory). A file is watched like the scripts: an edit is validated and, when good, applied from the next cycle
without a restart; a bad one is rejected with the key and the reason, and the running values stay.

Validation: a JSON/TOML object of string keys; numbers finite; values that name files (strings starting with
`/`, `./`, `../` or `~`, or under keys ending in `_file`, `_path` or `_dir`) must exist, relative ones from
the parameters file's directory (scripts get them absolute); for files the scripts write (keys starting with
`output` or `product`, or ending in `_output` or `_out`) the directory must exist. A change to a key the proc
script mentions restarts the session as a proc edit does (its chunks must all go through the same proc); other
changes swap in at the next cycle.
"""

from __future__ import annotations

import ast
import contextlib
import contextvars
import json
import math
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

MAX_PARAMETERS_BYTES = 1 << 20
PATH_KEY_SUFFIXES = ("_file", "_path", "_dir")
PATH_PREFIXES = ("/", "./", "../", "~")
OUTPUT_KEY_PREFIXES = ("output", "product")  # files the scripts write: only their directory must exist
OUTPUT_KEY_SUFFIXES = ("_output", "_out")


class ParameterError(ValueError):
    """A parameters document that cannot be used: where, which key, and why."""

    def __init__(self, source: str, key: str | None, reason: str):
        self.source, self.key, self.reason = source, key, reason
        where = f"key '{key}'" if key else "the document"
        super().__init__(f"parameters in {source}: {where}: {reason}")


@dataclass(frozen=True)
class Parameters:
    values: dict[str, Any] = field(default_factory=dict)
    path: str | None = None  # the file they came from (None: the config's own object, or none at all)

    def changed_keys(self, other: Parameters) -> set[str]:
        keys = self.values.keys() | other.values.keys()
        return {k for k in keys if self.values.get(k, _MISSING) != other.values.get(k, _MISSING)}


_MISSING = object()


def parameters_path(spec: dict | str | None, script_dir: str) -> str | None:
    """The file the config's `parameters` names (absolute), or None for an object or nothing."""
    if not isinstance(spec, str):
        return None
    path = Path(spec).expanduser()
    return str(path if path.is_absolute() else Path(script_dir) / path)


def load_parameters(spec: dict | str | None, script_dir: str) -> Parameters:
    """The parameters the config's `parameters` gives, validated; ParameterError naming key and reason."""
    if spec is None:
        return Parameters()
    if isinstance(spec, dict):
        return Parameters(validate(dict(spec), "the config", Path(script_dir)))
    path = str(parameters_path(spec, script_dir))
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ParameterError(path, None, f"cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_PARAMETERS_BYTES:
        raise ParameterError(path, None, f"{len(data):,} bytes; at most {MAX_PARAMETERS_BYTES:,}")
    try:
        text = data.decode()
        raw = tomllib.loads(text) if path.endswith(".toml") else json.loads(text)
    except UnicodeDecodeError:
        raise ParameterError(path, None, "not UTF-8 text") from None
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ParameterError(
            path, None, f"not valid {'TOML' if path.endswith('.toml') else 'JSON'}: {exc}"
        ) from None
    if not isinstance(raw, dict):
        raise ParameterError(path, None, f"expected an object of named values, found {type(raw).__name__}")
    return Parameters(validate(raw, path, Path(path).parent), path)


def validate(values: dict, source: str, base: Path) -> dict:
    """The values as scripts get them (paths made absolute), or ParameterError naming the key and the reason."""
    out = {}
    for key, value in values.items():
        if not isinstance(key, str) or not key:
            raise ParameterError(source, str(key), "keys must be non-empty strings")
        out[key] = _checked(source, key, value, base)
    return out


def _checked(source: str, key: str, value, base: Path):
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ParameterError(source, key, f"{value} is not a finite number")
        return value
    if isinstance(value, str):
        if not (value.startswith(PATH_PREFIXES) or key.endswith(PATH_KEY_SUFFIXES)):
            return value
        path = Path(value).expanduser()
        path = path if path.is_absolute() else base / path
        name = key.rsplit(".", 1)[-1]
        if name.startswith(OUTPUT_KEY_PREFIXES) or name.endswith(OUTPUT_KEY_SUFFIXES):
            if not path.parent.is_dir():  # a product the scripts write: its directory must be there
                raise ParameterError(source, key, f"names a file in a directory that does not exist: {path}")
        elif not path.exists():
            raise ParameterError(source, key, f"names a file that does not exist: {path}")
        return str(path.resolve())  # scripts run from another working directory: they get the absolute path
    if isinstance(value, list):
        return [_checked(source, key, item, base) for item in value]
    if isinstance(value, dict):
        return {sub: _checked(source, f"{key}.{sub}", item, base) for sub, item in value.items()}
    raise ParameterError(source, key, f"unsupported value type {type(value).__name__}")  # TOML dates


def mentioned_keys(source: bytes | str, keys: set[str]) -> set[str]:
    """Which of `keys` a script's source mentions as a string literal (how `parameters["key"]` and
    `parameters.get("key")` name them). A script that does not parse mentions none."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    literals = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    return keys & literals


# -- what scripts see ---------------------------------------------------------------------------------------

_ACTIVE: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "livereduce_parameters", default=MappingProxyType({})
)


class ActiveParameters(Mapping):
    """`livereduce.parameters`: the running session's parameters, read-only."""

    def __getitem__(self, key: str):
        try:
            return _ACTIVE.get()[key]
        except KeyError:
            known = ", ".join(sorted(_ACTIVE.get())) or "none are set"
            raise KeyError(f"no parameter {key!r} (known: {known})") from None

    def __iter__(self) -> Iterator[str]:
        return iter(_ACTIVE.get())

    def __len__(self) -> int:
        return len(_ACTIVE.get())

    def __repr__(self) -> str:
        return f"livereduce.parameters({dict(_ACTIVE.get())!r})"


@contextlib.contextmanager
def active(values: Mapping[str, Any]) -> Iterator[None]:
    token = _ACTIVE.set(MappingProxyType(dict(values)))
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def set_active(values: Mapping[str, Any]) -> None:
    """Within `active(...)`: new values from here on (a cycle that applies a parameters edit)."""
    _ACTIVE.set(MappingProxyType(dict(values)))


def describe(parameters: Parameters) -> str:
    where = parameters.path or "the config"
    return f"{len(parameters.values)} parameter{'s' if len(parameters.values) != 1 else ''} from {where}" + (
        f" ({', '.join(sorted(parameters.values))})" if parameters.values else ""
    )


__all__ = [
    "ActiveParameters",
    "ParameterError",
    "Parameters",
    "active",
    "load_parameters",
    "mentioned_keys",
    "parameters_path",
    "set_active",
]
