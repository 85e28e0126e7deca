"""Parameters apart from code, and the diff of a script edit in the log (#18): a daemon in-process on the fake
listener, its scripts and parameters file in a temporary directory watched by the real inotify watcher.

The "calibration" here is a file holding one number; post_proc writes a product with that number and the
accumulated event count, so which calibration a product used is read from the product itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from inprocess import wait_until

from livereduce.config import parse_config
from livereduce.errors import ConfigError
from livereduce.script_parameters import ParameterError, load_parameters, mentioned_keys

POST_PROC = """
import json, os
with open(parameters["calibration_file"]) as f:  # relative in the file: absolute here
    factor = float(f.read())
with open(parameters["product"] + ".tmp", "w") as out:
    json.dump({"factor": factor, "events": accumulation.getNumberEvents()}, out)
os.replace(parameters["product"] + ".tmp", parameters["product"])
"""


def product(r) -> dict | None:
    path = Path(r.dir.parent / "product.json")
    return json.loads(path.read_text()) if path.exists() else None


def start(running, tmp_path, params: dict, proc: str = "pass\n"):
    params = {"product": str(tmp_path / "product.json"), **params}
    return running(
        {"proc": proc, "post_proc": POST_PROC},
        files={"cal_a.txt": "2.0", "cal_b.txt": "3.0", "params.json": json.dumps(params)},
        parameters="params.json",
    )


def edit(r, params: dict) -> None:
    path = r.dir / "params.json"
    temp = path.with_suffix(".tmp")
    temp.write_text(json.dumps({"product": str(r.dir.parent / "product.json"), **params}))
    temp.replace(path)  # as editors save


def test_a_parameters_edit_swaps_the_calibration_without_a_restart(running, tmp_path, caplog):
    r = start(running, tmp_path, {"calibration_file": "cal_a.txt"})
    wait_until(
        lambda: (p := product(r)) and p["factor"] == 2.0 and p["events"] > 0, what="a product with cal A"
    )
    session = r.session()
    edit(r, {"calibration_file": "cal_b.txt"})
    wait_until(lambda: product(r)["factor"] == 3.0, what="a product with cal B")
    assert r.session() is session and r.daemon.restarts == 0  # no restart: the accumulation went on
    before = session.state.events_accumulated
    wait_until(lambda: session.state.events_accumulated > before, what="the accumulation growing")
    assert (
        "parameters changed (calibration_file): applied from the next cycle, without a restart" in caplog.text
    )


def test_a_bad_parameters_edit_is_rejected_with_key_and_reason_and_the_old_values_stay(
    running, tmp_path, caplog
):
    r = start(running, tmp_path, {"calibration_file": "cal_a.txt"})
    wait_until(lambda: product(r) and product(r)["factor"] == 2.0, what="a product with cal A")
    edit(r, {"calibration_file": "cal_missing.txt"})
    wait_until(lambda: "rejected the new parameters" in caplog.text, what="the rejection")
    assert "key 'calibration_file': names a file that does not exist" in caplog.text
    assert str(r.dir / "cal_missing.txt") in caplog.text
    (r.dir / "params.json").write_text("{not json")
    wait_until(lambda: "not valid JSON" in caplog.text, what="the second rejection")
    events = product(r)["events"]
    wait_until(lambda: product(r)["events"] > events, what="more products")
    assert product(r)["factor"] == 2.0 and r.daemon.restarts == 0  # still the old calibration


def test_a_key_the_proc_script_uses_restarts_the_session_and_says_so(running, tmp_path, caplog):
    proc = 'Rebin(InputWorkspace=input, OutputWorkspace=output, Params=parameters["proc_bins"])\n'
    r = start(running, tmp_path, {"calibration_file": "cal_a.txt", "proc_bins": "40000,100,60000"}, proc=proc)
    first = r.session()
    wait_until(lambda: product(r), what="a product")
    edit(r, {"calibration_file": "cal_a.txt", "proc_bins": "40000,200,60000"})
    wait_until(lambda: r.session() is not first, what="a new session")
    assert "restarting the session: parameters the proc script uses changed (proc_bins)" in caplog.text
    assert r.session().parameters["proc_bins"] == "40000,200,60000"


def test_scripts_read_livereduce_parameters_and_config_objects(running, tmp_path):
    post = "import livereduce\nrecord.append(livereduce.parameters['scale'] * 2)\n"
    r = running({"post_proc": post}, parameters={"scale": 21})
    wait_until(lambda: r.records() and r.records()[-1] == 42, what="livereduce.parameters read")


def test_a_bad_parameters_file_at_startup_waits_like_a_broken_script(running, tmp_path, caplog):
    r = running(
        {"post_proc": "pass\n"},
        files={"params.toml": "calibration_file = 'nowhere.cal'\n"},
        parameters="params.toml",
    )
    wait_until(lambda: r.daemon.scripts.waiting is not None, what="waiting")
    assert "key 'calibration_file': names a file that does not exist" in r.daemon.scripts.waiting
    assert r.session() is None
    (r.dir / "nowhere.cal").write_text("1.0")
    (r.dir / "params.toml").write_text("calibration_file = 'nowhere.cal'\n")  # the fix arrives as a save
    wait_until(lambda: r.session() is not None, timeout=30, what="the session once the file exists")
    assert r.session().parameters == {"calibration_file": str(r.dir / "nowhere.cal")}


def test_load_parameters_validates_types_paths_and_formats(tmp_path):
    (tmp_path / "a.cal").write_text("x")
    (tmp_path / "p.toml").write_text(
        'cal = "./a.cal"\nscale = 2.5\nbanks = [1, 2]\n[nested]\nmask_file = "a.cal"\n'
    )
    (tmp_path / "p0.json").write_text(json.dumps({"product_file": str(tmp_path / "not-yet.nxs")}))
    assert load_parameters(
        "p0.json", str(tmp_path)
    ).values  # a product need not exist yet, its directory must
    loaded = load_parameters("p.toml", str(tmp_path))
    cal = str(tmp_path / "a.cal")  # relative paths resolved from the parameters file's directory
    assert loaded.values == {"cal": cal, "scale": 2.5, "banks": [1, 2], "nested": {"mask_file": cal}}
    assert loaded.path == str(tmp_path / "p.toml")
    bad = {
        "p1.json": ("[1, 2]", "the document: expected an object of named values, found list"),
        "p2.json": ('{"scale": 1e999}', "key 'scale': inf is not a finite number"),
        "p3.json": (
            '{"x": {"grouping_file": "/no/such.xml"}}',
            "key 'x.grouping_file': names a file that does not",
        ),
        "p4.toml": ("when = 1979-05-27\n", "key 'when': unsupported value type date"),
        "p5.toml": ("a = \n", "not valid TOML"),
        "p6.json": (
            '{"output_file": "/no/such/dir/x.nxs"}',
            "names a file in a directory that does not exist",
        ),
    }
    for name, (text, message) in bad.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(ParameterError) as error:
            load_parameters(name, str(tmp_path))
        assert message in str(error.value), str(error.value)
        assert str(tmp_path / name) in str(error.value)
    with pytest.raises(ParameterError, match="cannot read"):
        load_parameters("absent.json", str(tmp_path))


def test_the_config_key_takes_an_object_or_a_path():
    base = {"instrument": "FAKE", "listener": "fake_event"}
    assert parse_config({**base, "parameters": {"a": 1}})[0].parameters == {"a": 1}
    assert parse_config({**base, "parameters": "p.toml"})[0].parameters == "p.toml"
    assert parse_config(base)[0].parameters is None
    with pytest.raises(ConfigError, match=r"parameters.*a JSON object of values, or the path"):
        parse_config({**base, "parameters": 3})


def test_which_keys_a_proc_script_uses():
    source = 'x = parameters["a"]\ny = livereduce.parameters.get("b", 1)\nz = "c and d"\n'
    assert mentioned_keys(source, {"a", "b", "c", "e"}) == {"a", "b"}
    assert mentioned_keys("this is not python(", {"a"}) == set()


def test_a_script_edit_logs_its_diff_beside_the_md5(running, caplog):
    r = running({"proc": "pass\n", "post_proc": "x = 1\ny = 2\nz = 3\n"})
    session = r.session()
    old = session.post_proc.md5
    r.write("post_proc", "x = 1\ny = 20\nz = 3\n")
    wait_until(lambda: session.post_proc.md5 != old, what="the new post_proc")
    text = caplog.text
    at = text.index("post_proc script " + str(r.dir / "reduce_FAKE_live_post_proc.py") + " changed (md5")
    diff = text[at:].splitlines()
    assert f"--- {r.dir / 'reduce_FAKE_live_post_proc.py'} (before)" in diff
    assert "-y = 2" in diff and "+y = 20" in diff and " x = 1" in diff
    # a rewrite of a long script shows its first lines and says how many more there were
    r.write("post_proc", "".join(f"v{i} = {i}\n" for i in range(200)))
    wait_until(lambda: "more diff lines not shown" in caplog.text, what="a cut diff")


def test_livereduce_check_validates_the_parameters_file(tmp_path):
    from daemon_helpers import run_once

    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "reduce_FAKE_live_post_proc.py").write_text("x = parameters['dmin']\n")
    (scripts / "p.toml").write_text("dmin = 0.3\ncalibration_file = 'gone.h5'\n")
    config = {
        "instrument": "FAKE",
        "listener": "fake_event",
        "script_dir": str(scripts),
        "parameters": "p.toml",
    }
    bad = run_once(tmp_path, config, "check")
    assert bad.returncode == 2, bad.stdout + bad.stderr
    assert f"ERROR parameters in {scripts / 'p.toml'}: key 'calibration_file': names a file" in bad.stdout
    (scripts / "gone.h5").write_bytes(b"")
    good = run_once(tmp_path, config, "check")
    assert good.returncode == 0, good.stdout + good.stderr
    assert f"OK 2 parameters from {scripts / 'p.toml'} (calibration_file, dmin)" in good.stdout
