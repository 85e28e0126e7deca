"""Script discovery and execution with Mantid's contract, on real files."""

from __future__ import annotations

import sys

import pytest

from livereduce.chunks import workspace_from_chunk
from livereduce.errors import ScriptError
from livereduce.listeners.fake import FakeEventListener
from livereduce.scripts import compile_script, find_scripts, run_script


@pytest.fixture
def chunk_ws(ads):
    listener = FakeEventListener(events_per_extract=1000, seed=11)
    listener.start(None)
    ws = workspace_from_chunk(listener.extract())
    ads.addOrReplace("__in", ws)
    return ws


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_noop_script_passes_the_chunk_through(tmp_path, chunk_ws):
    script = compile_script(write(tmp_path, "p.py", "print('hello')\n"), "proc")
    assert run_script(script, chunk_ws, "__in") == "__in"


def test_script_error_names_the_users_file_and_true_line(tmp_path, chunk_ws):
    path = write(tmp_path, "reduce_X_live_proc.py", "a = 1\n\nb = input.getNumberEvents()\nc = b / 0\n")
    with pytest.raises(ScriptError) as err:
        run_script(compile_script(path, "proc"), chunk_ws, "__in")
    assert err.value.filename == str(path) and err.value.lineno == 4
    assert f"{path}:4: ZeroDivisionError" in str(err.value)
    assert f'File "{path}", line 4' in err.value.traceback_text


def test_syntax_error_is_reported_with_its_line(tmp_path):
    path = write(tmp_path, "s.py", "x = 1\ndef f(:\n    pass\n")
    with pytest.raises(ScriptError) as err:
        compile_script(path, "proc")
    assert err.value.lineno == 2 and "SyntaxError" in str(err.value)


def test_empty_script_is_an_error(tmp_path):
    with pytest.raises(ScriptError, match="empty"):
        compile_script(write(tmp_path, "e.py", "  \n"), "proc")


def test_function_scope_top_level_return_and_star_import(tmp_path, chunk_ws, ads):
    text = (
        "from mantid.simpleapi import *\n"
        "if input.getNumberEvents() > 0:\n"
        "    CloneWorkspace(InputWorkspace=input, OutputWorkspace='copy')\n"
        "    return\n"
        "output = 'never'\n"
    )
    script = compile_script(write(tmp_path, "r.py", text), "proc")
    assert run_script(script, chunk_ws, "__in") == "__in"  # early return keeps `output`
    assert ads["copy"].getNumberEvents() == 1000
    assert "copy" not in script.namespace  # locals do not leak into the module


def test_reassigning_output_to_a_workspace_is_honoured(tmp_path, chunk_ws):
    text = "from mantid.simpleapi import SumSpectra\noutput = SumSpectra(InputWorkspace=input)\n"
    out = run_script(compile_script(write(tmp_path, "o.py", text), "proc"), chunk_ws, "__in")
    assert out.getNumberHistograms() == 1 and out.getNumberEvents() == 1000


def test_mantid_imports_work_and_do_not_leak(tmp_path, chunk_ws):
    text = (
        "import mantid\nimport mantid.simpleapi as api\nfrom mantid import simpleapi\n"
        "from mantid.kernel import logger\nmantid.logger.information('from mantid.logger')\n"
        "logger.warning('from mantid.kernel')\nassert api.Rebin is simpleapi.Rebin\n"
    )
    assert not any(m == "mantid" or m.startswith("mantid.") for m in sys.modules)
    run_script(compile_script(write(tmp_path, "m.py", text), "proc"), chunk_ws, "__in")
    assert not any(m == "mantid" or m.startswith("mantid.") for m in sys.modules)


def test_print_and_mantid_logger_go_to_the_script_log(tmp_path, chunk_ws, caplog):
    text = "import mantid\nprint('chunk', input.getNumberEvents())\nmantid.logger.notice('noted')\n"
    with caplog.at_level("INFO", logger="livereduce.script"):
        run_script(compile_script(write(tmp_path, "l.py", text), "proc"), chunk_ws, "__in")
    messages = [r.getMessage() for r in caplog.records if r.name == "livereduce.script"]
    assert "[l.py] chunk 1000" in messages
    assert any("noted" in m for m in messages)


def test_discovery_accepts_short_or_full_name_but_not_both(tmp_path):
    write(tmp_path, "reduce_PG3_live_proc.py", "pass\n")
    found = find_scripts(tmp_path, ["PG3", "POWGEN"])
    assert found.proc == str(tmp_path / "reduce_PG3_live_proc.py") and found.post_proc is None
    write(tmp_path, "reduce_POWGEN_live_proc.py", "pass\n")
    with pytest.raises(ScriptError, match="both"):
        find_scripts(tmp_path, ["PG3", "POWGEN"])


def test_discovery_needs_at_least_one_non_empty_script(tmp_path):
    with pytest.raises(ScriptError, match=r"no processing script found.*reduce_NOM_live_proc.py"):
        find_scripts(tmp_path, ["NOM"])
    write(tmp_path, "reduce_NOM_live_post_proc.py", "")
    with pytest.raises(ScriptError, match="empty"):
        find_scripts(tmp_path, ["NOM"])
