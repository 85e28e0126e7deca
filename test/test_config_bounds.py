"""Config values that pass a type check but would disable the daemon: NaN, ±Infinity, absurd magnitudes, ports
out of range, non-positive listener timeouts, and files that are not small UTF-8 JSON. Each is refused with a
message naming the key (or the file); through the CLI, exit 2 and one error line, no traceback."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from daemon_helpers import error_lines, run_config_file, run_once

from livereduce.config import (
    FIELDS,
    MAX_FILE_BYTES,
    MAX_NESTING,
    load_config,
    parse_config,
    state_dir_path,
    valid_address,
)
from livereduce.errors import ConfigError

BASE = {"instrument": "FAKE", "listener": "fake_event"}
NUMERIC = [f for f in FIELDS if f.kind in ("number", "int")]


def refused(raw: dict, key: str) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        parse_config({**BASE, **raw}, "site.conf")
    assert err.value.key == key, str(err.value)
    assert f"config key '{key}' in site.conf" in str(err.value)
    return err.value


def as_json(field, value) -> dict:
    """The JSON object that sets `field` to `value` (watchdog.x is written nested)."""
    if "." in field.key:
        outer, inner = field.key.split(".")
        return {outer: {inner: value}}
    return {field.key: value}


def test_every_number_has_a_documented_range():
    for f in NUMERIC:
        assert f.minimum is not None and f.maximum is not None, f.key
    maxima = {f.key: f.maximum for f in NUMERIC}
    assert maxima["update_every"] <= 86400 and maxima["mem_check_interval_sec"] <= 3600
    assert maxima["step_timeout"] <= 86400 and maxima["das_silence_timeout"] <= 86400
    assert maxima["max_carried_events"] <= 10**10 and maxima["system_mem_limit_perc"] <= 100


@pytest.mark.parametrize("field", NUMERIC, ids=lambda f: f.key)
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, 1e10, 10**400, -1], ids=str)
def test_non_finite_huge_and_negative_numbers_are_refused(field, value):
    if value == 1e10 and field.maximum >= 1e10:  # max_carried_events may be 1e10 itself
        value = field.maximum * 10
    error = refused(as_json(field, value), field.key)
    assert "expected a" in str(error) and ("finite number" in str(error) or "an integer" in str(error))


@pytest.mark.parametrize("field", NUMERIC, ids=lambda f: f.key)
def test_both_bounds_are_accepted(field):
    for value in (field.minimum, field.maximum):
        config, _ = parse_config({**BASE, **as_json(field, value)})
        assert getattr(config, field.attr) == value


@pytest.mark.parametrize(
    "address",
    ["dassrv:0", "dassrv:65536", "dassrv:99999", "dassrv", "dassrv:", ":31415", "a b:1", "h:port", 5],
)
def test_address_must_be_host_and_port_1_to_65535(address):
    error = refused({"address": address}, "address")
    assert "host:port with a port from 1 to 65535" in str(error)


@pytest.mark.parametrize("address", ["dassrv:1", "bl11a-daq1.sns.gov:31415", "10.0.0.2:65535", "[::1]:31415"])
def test_good_addresses_pass(address):
    assert valid_address(address)
    config, _ = parse_config({**BASE, "listener": "adara", "address": address})
    assert config.address == address


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"timeout": -1}, "listener_options.timeout"),
        ({"timeout": 0}, "listener_options.timeout"),
        ({"timeout": math.nan}, "listener_options.timeout"),
        ({"timeout": math.inf}, "listener_options.timeout"),
        ({"timeout": 1e10}, "listener_options.timeout"),
        ({"timeout": None}, "listener_options.timeout"),
        ({"read_timeout": "30"}, "listener_options.read_timeout"),
        ({"rate": math.nan}, "listener_options.rate"),
        ({"rate": -math.inf}, "listener_options.rate"),
        ({"backoff": [1, math.inf]}, "listener_options.backoff"),
    ],
)
def test_listener_options_numbers_are_finite_and_timeouts_positive(options, key):
    refused({"listener_options": options}, key)


def test_reasonable_listener_options_pass():
    options = {"rate": 2000, "seed": 1, "timeout": 0.5, "backoff": [1, 2, 5], "nested": {"x": [1.5]}}
    config, _ = parse_config({**BASE, "listener_options": options})
    assert config.listener_options == options


def nested(depth: int) -> str:
    return (
        '{"instrument": "FAKE", "listener": "fake_event", "listener_options": {"x": '
        + "[" * depth
        + "]" * depth
        + "}}"
    )


# what a broken or wrong file looks like on disk, and what the message must say about it
BAD_FILES = {
    "utf16": (json.dumps(BASE).encode("utf-16"), "UTF-16"),
    "binary": (bytes(range(256)) * 8, "NUL byte"),
    "latin1": ('{"instrument": "FAKE", "output_name": "caf\xe9"}'.encode("latin-1"), "not UTF-8"),
    "nested100": (nested(100).encode(), f"nested at most {MAX_NESTING} levels"),
    "nested100000": (nested(100_000).encode(), f"nested at most {MAX_NESTING} levels"),
    "2MiB": (('{"instrument": "FAKE", "pad": "' + "x" * (2 << 20) + '"}').encode(), "at most 1 MiB"),
    "hugeint": (b'{"instrument": "FAKE", "update_every": ' + b"9" * 5000 + b"}", "valid JSON"),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_unparseable_files_are_config_errors_naming_the_file(tmp_path, name):
    data, expected = BAD_FILES[name]
    path = tmp_path / f"{name}.conf"
    path.write_bytes(data)
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    assert str(path) in str(err.value) and expected in str(err.value)


def test_a_utf8_bom_and_moderate_nesting_are_fine(tmp_path):
    path = tmp_path / "bom.conf"
    path.write_bytes(b"\xef\xbb\xbf" + nested(MAX_NESTING - 2).encode())
    config, _ = load_config(str(path))
    assert config.instrument == "FAKE"
    assert MAX_FILE_BYTES == 1 << 20


def test_state_dir_rule(tmp_path, monkeypatch):
    assert state_dir_path(str(tmp_path / "s"), {}) == tmp_path / "s"
    assert state_dir_path(None, {"STATE_DIRECTORY": "/var/lib/livereduce:/var/lib/other"}) == Path(
        "/var/lib/livereduce"
    )
    monkeypatch.chdir(tmp_path)
    assert state_dir_path(None, {}) == tmp_path / "livereduce-state"


# -- through the CLI: exit 2, one error line naming the key or the file, no traceback --------------------


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ({"update_every": math.inf}, "update_every"),
        ({"update_every": math.nan}, "update_every"),
        ({"update_every": 1e10}, "update_every"),
        ({"update_every": -1}, "update_every"),
        ({"mem_check_interval_sec": 1e10}, "mem_check_interval_sec"),
        ({"step_timeout": math.inf}, "step_timeout"),
        ({"max_carried_events": math.nan}, "max_carried_events"),
        ({"listener": "adara", "address": "127.0.0.1:0"}, "address"),
        ({"listener": "adara", "address": "127.0.0.1:65536"}, "address"),
        ({"listener": "adara", "address": "127.0.0.1:99999"}, "address"),
        ({"listener": "adara", "address": "127.0.0.1"}, "address"),
        ({"listener_options": {"timeout": -1}}, "listener_options.timeout"),
    ],
    ids=lambda v: v if isinstance(v, str) else json.dumps(v),
)
def test_cli_refuses_bad_values_with_one_line(tmp_path, extra, key):
    result = run_once(tmp_path, json.dumps({**BASE, "log_file": str(tmp_path / "x.log"), **extra}))
    out = result.stdout + result.stderr
    assert result.returncode == 2, out
    assert "Traceback" not in out
    errors = error_lines(result.stderr)
    assert len(errors) == 1 and f"config key '{key}'" in errors[0], out


@pytest.mark.parametrize("name", ["utf16", "binary", "nested100", "2MiB"])
def test_cli_refuses_unparseable_files_with_one_line(tmp_path, name):
    data, expected = BAD_FILES[name]
    path = tmp_path / "livereduce.conf"
    path.write_bytes(data)
    result = run_config_file(path)
    out = result.stdout + result.stderr
    assert result.returncode == 2, out[-2000:]
    assert "Traceback" not in out
    errors = error_lines(result.stderr)
    assert len(errors) == 1 and str(path) in errors[0] and expected in errors[0], out[-2000:]
