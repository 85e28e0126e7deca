"""Config validation: each bad value names the key, the expectation and what was found."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from livereduce.config import FIELDS, Config, load_config, parse_config
from livereduce.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_defaults_follow_the_anchor():
    config, warnings = parse_config({"instrument": "POWGEN"})
    assert (config.update_every, config.preserve_events, config.accum_method) == (30.0, True, "Add")
    assert (config.system_mem_limit_perc, config.mem_check_interval_sec) == (70.0, 1.0)
    assert (config.watchdog_interval, config.watchdog_threshold) == (60.0, 300.0)
    assert config.script_dir == "/SNS/PG3/shared/livereduce"  # the short name, as the anchor uses
    assert warnings == []


@pytest.mark.parametrize(
    ("raw", "key", "found"),
    [
        ({"instrument": "NOM", "update_every": "fast"}, "update_every", "'fast'"),
        ({"instrument": "NOM", "update_every": -1}, "update_every", "-1"),
        ({"instrument": "NOM", "preserve_events": "no"}, "preserve_events", "'no'"),
        ({"instrument": "NOM", "accum_method": "Sum"}, "accum_method", "'Sum'"),
        ({"instrument": "NOM", "mem_check_interval_sec": 0}, "mem_check_interval_sec", "0"),
        ({"instrument": "NOM", "system_mem_limit_perc": 170}, "system_mem_limit_perc", "170"),
        ({"instrument": "NOM", "watchdog": {"threshold": 10}}, "watchdog.threshold", "10"),
        ({"instrument": "NOM", "watchdog": 5}, "watchdog", "5"),
        ({"instrument": "NOM", "periods": [1, "2"]}, "periods", "[1, '2']"),
        ({"instrument": "NOM", "periods": [0]}, "periods", "[0]"),
        ({"instrument": "NOM", "listener": "telnet"}, "listener", "'telnet'"),
        ({"instrument": "NOM", "engine": "fast"}, "engine", "'fast'"),
    ],
)
def test_bad_values_name_key_expected_and_found(raw, key, found):
    with pytest.raises(ConfigError) as err:
        parse_config(raw, "site.conf")
    assert err.value.key == key
    assert f"config key '{key}' in site.conf: expected " in str(err.value) and f"found {found}" in str(
        err.value
    )


def test_choices_are_case_insensitive_and_canonical():
    config, _ = parse_config({"instrument": "nomad", "accum_method": "replace", "run_transition": "rename"})
    assert (config.accum_method, config.run_transition) == ("Replace", "Rename")


def test_unknown_keys_warn_with_a_suggestion():
    _, warnings = parse_config({"instrument": "NOM", "update_evry": 5})
    assert warnings == ["unknown key 'update_evry' ignored (did you mean 'update_every'?)"]


def test_invalid_json_reports_line_and_column(tmp_path):
    path = tmp_path / "bad.conf"
    path.write_text('{\n  "instrument": "NOM",\n  "update_every": ,\n}\n')
    with pytest.raises(ConfigError, match="line 3 column 19"):
        load_config(str(path))


def test_add_on_a_histogram_source_is_refused():
    with pytest.raises(ConfigError, match="cumulative histograms") as err:
        parse_config({"instrument": "ISIS_Histogram"})
    assert err.value.key == "accum_method"
    config, _ = parse_config({"instrument": "ISIS_Histogram", "accum_method": "Replace", "periods": [1, 3]})
    assert config.periods == (1, 3)


def test_unknown_instrument_lists_closest_or_needs_a_listener():
    with pytest.raises(ConfigError, match="closest: POWGEN"):
        parse_config({"instrument": "POWGN"})
    with pytest.raises(ConfigError) as err:
        parse_config({"instrument": "MYBEAM", "listener": "adara"})
    assert err.value.key == "address"
    config, _ = parse_config({"instrument": "MYBEAM", "listener": "adara", "address": "dassrv:31415"})
    assert config.script_dir == "/SNS/MYBEAM/shared/livereduce"


def test_defaults_are_declared_once_and_parse_back_to_themselves():
    """An empty file gives Config's declared defaults; each field's default passes its own validation."""
    config, _ = parse_config({"instrument": "POWGEN"})
    for f in FIELDS:
        if f.key not in ("instrument", "script_dir"):
            assert (
                getattr(config, f.attr)
                == getattr(Config(), f.attr)
                == (tuple(f.default) if isinstance(f.default, list) else f.default)
            ), f.key


def test_configuration_doc_is_generated_from_the_table():
    """Compared, never rewritten here: a failing run must not repair the source tree by itself."""
    committed = (REPO / "docs" / "configuration.md").read_text()
    spec = importlib.util.spec_from_file_location(
        "build_config_doc", REPO / "scripts" / "build_config_doc.py"
    )
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    assert builder.render() == committed, "docs/configuration.md is stale: run scripts/build_config_doc.py"
    for f in FIELDS:
        assert f"`{f.key}`" in committed


def test_seed_memory_settings_parse():
    raw = json.loads('{"preserve_events": false, "system_mem_limit_perc": 70, "mem_check_interval_sec": 1}')
    config, _ = parse_config({"instrument": "POWGEN", **raw})
    assert config.preserve_events is False and config.system_mem_limit_perc == 70
