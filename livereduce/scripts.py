"""User scripts: discovery (naming rules, md5) and execution with Mantid's contract.

Mantid's RunPythonScript indents the user's text into a method body, so scripts run in *function scope* with
`input` (the workspace) and `output` (a workspace name) as locals, and may `return` early; it shifts traceback
line numbers by five. We keep the contract but wrap at the AST level instead of the text level, so tracebacks
point at the user's own file and line. `from x import *` (illegal inside a function) is hoisted to module
level instead of being a SyntaxError.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import inspect
import logging
import os
import stat
import sys
import traceback
import types
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from livereduce import algorithms
from livereduce.config import writable_by_others
from livereduce.errors import ScriptError
from livereduce.mantidapi import script_imports
from livereduce.workspace.scipp_view import from_scipp, to_scipp

log = logging.getLogger("livereduce.scripts")
script_log = logging.getLogger("livereduce.script")

_ENTRY = "__livereduce_script__"
_RESULT = "__livereduce_result__"


def md5_of_text(text: bytes) -> str:
    """The script's identity in logs (md5, as the anchor logs it; not a security measure)."""
    return hashlib.md5(text, usedforsecurity=False).hexdigest()


@dataclass
class Script:
    """A compiled user script, ready to run once per cycle."""

    path: str
    kind: str  # "proc" or "post_proc"
    md5: str
    code: types.CodeType = field(repr=False)
    namespace: dict = field(default_factory=dict, repr=False)  # module globals; persists across cycles
    style: str = "mantid"  # "scipp": the script defines proc(chunk, params) / post_proc(accumulation, params)

    @property
    def name(self) -> str:
        return os.path.basename(self.path)


_NO_TYPE_PARAMS: dict[str, Any] = {"type_params": []} if sys.version_info >= (3, 12) else {}


def _wrap(tree: ast.Module) -> ast.Module:
    """def __livereduce_script__(input, output): try: <body> finally: result[:] = [input, output]."""
    hoisted = [n for n in tree.body if isinstance(n, ast.ImportFrom) and any(a.name == "*" for a in n.names)]
    body = [n for n in tree.body if n not in hoisted] or [ast.Pass()]
    capture = ast.parse(f"{_RESULT}[:] = [input, output]").body
    func = ast.FunctionDef(
        name=_ENTRY,
        args=ast.arguments(
            posonlyargs=[],
            args=[ast.arg("input"), ast.arg("output")],
            kwonlyargs=[],
            kw_defaults=[],
            defaults=[],
        ),
        body=[ast.Try(body=body, handlers=[], orelse=[], finalbody=capture)],
        decorator_list=[],
        returns=None,
        **_NO_TYPE_PARAMS,
    )
    module = ast.Module(body=[*hoisted, func], type_ignores=[])
    return ast.fix_missing_locations(module)  # wrapper nodes take line 1; the user's keep their own


def read_script(path: str | os.PathLike) -> bytes:
    """A script's bytes; ScriptError naming the file when it cannot be read (permissions, a directory, a
    dangling link, an I/O error), never a bare OSError."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ScriptError(str(path), None, f"cannot read script: {exc.strerror or exc}") from exc


def compile_script(path: str | os.PathLike, kind: str, text: bytes | None = None) -> Script:
    """Read and compile a script; ScriptError with the file and line if it is unreadable, empty or does not
    compile."""
    path = str(path)
    if text is None:
        text = read_script(path)
    if not text.strip():
        raise ScriptError(path, None, "script is empty")
    try:
        source = text.decode("utf-8").replace("\r\n", "\n")
        tree = ast.parse(source, filename=path)
        style = "scipp" if _defines_entry(tree, kind) else "mantid"
        code = compile(tree if style == "scipp" else _wrap(tree), path, "exec")
    except SyntaxError as exc:
        raise ScriptError(
            path, exc.lineno, f"SyntaxError: {exc.msg}", "".join(traceback.format_exception_only(exc))
        ) from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise ScriptError(path, None, f"cannot compile: {exc}") from exc
    return Script(path=path, kind=kind, md5=md5_of_text(text), code=code, style=style)


def _defines_entry(tree: ast.Module, kind: str) -> bool:
    """A scipp-native script: `def proc(chunk, params)` (or `def post_proc(accumulation, params)`) at the top
    level of its file; the module runs once, the function every cycle."""
    return any(isinstance(n, ast.FunctionDef) and n.name == kind for n in tree.body)


def _script_print(script: Script):
    def _print(*args, sep=" ", end="\n", file=None, flush=False):
        if file not in (None, sys.stdout, sys.stderr):
            print(*args, sep=sep, end=end, file=file, flush=flush)
            return
        script_log.info("[%s] %s", script.name, sep.join(str(a) for a in args))

    return _print


def run_script(script: Script, input_ws, output: str | None, extra: dict | None = None):
    """Run `script` with Mantid's contract; return what `output` holds afterwards (a name, a workspace or None).

    Errors become ScriptError carrying the innermost line of the user's own file and the traceback.
    """
    if script.style == "scipp":
        return _run_scipp(script, input_ws, (extra or {}).get("parameters", {}))
    with script_imports():
        ns = script.namespace
        if _ENTRY not in ns:  # the first run (a namespace others put a name into is not yet set up)
            ns.update(_simpleapi_names())
            # as under Mantid's live data, whose host process has imported mantid: `mantid.X` works unimported
            ns["mantid"] = importlib.import_module("mantid")
            ns.update(__name__="__main__", __file__=script.path, __builtins__=__builtins__)
            ns["print"] = _script_print(script)
            exec(script.code, ns)  # noqa: S102 - running the user's script is the job; defines the entry function (and runs hoisted star imports)
        result: list = []
        ns[_RESULT] = result
        if extra:
            ns.update(extra)
        try:
            ns[_ENTRY](input_ws, output)
        except BaseException as exc:  # sys.exit() and KeyboardInterrupt in a script are its errors too
            raise _script_error(script, exc) from exc
        finally:
            for key in extra or ():
                ns.pop(key, None)
    return result[1] if len(result) == 2 else output


def _run_scipp(script: Script, input_ws, parameters: dict):
    """A scipp-native script: its module runs once; each cycle its `proc`/`post_proc` gets the scipp view of the
    chunk or accumulation and the parameters, and what it returns becomes a workspace again."""
    ns = script.namespace
    try:
        if script.kind not in ns or not callable(ns[script.kind]):
            ns.update(__name__="__main__", __file__=script.path, __builtins__=__builtins__)
            ns["print"] = _script_print(script)
            exec(script.code, ns)  # noqa: S102 - running the user's script is the job: it defines the entry
        entry = ns[script.kind]
        takes = len(inspect.signature(entry).parameters)
        data = to_scipp(input_ws)
        result = entry(data, dict(parameters)) if takes >= 2 else entry(data)
    except BaseException as exc:  # sys.exit() and KeyboardInterrupt in a script are its errors too
        raise _script_error(script, exc) from exc
    line = entry.__code__.co_firstlineno  # what it returned is the function's doing: point at its def
    if result is None:
        if script.kind == "proc":
            raise ScriptError(
                script.path, line, "proc() returned None: return the processed chunk (a DataArray)"
            )
        return None
    try:
        return from_scipp(result, input_ws)
    except (TypeError, ValueError) as exc:
        raise ScriptError(
            script.path, line, f"{script.kind}() returned what cannot be a workspace: {exc}"
        ) from exc


def _simpleapi_names() -> dict:
    """What Mantid pre-imports for scripts: `from mantid.simpleapi import *`."""
    simpleapi = importlib.import_module("mantid.simpleapi")
    names = getattr(simpleapi, "__all__", None) or [n for n in dir(simpleapi) if not n.startswith("_")]
    return {n: getattr(simpleapi, n) for n in names}


def _script_error(script: Script, exc: BaseException) -> ScriptError:
    frames = traceback.extract_tb(exc.__traceback__)
    name = getattr(exc, "name", None)
    if isinstance(exc, NameError) and name and name[:1].isupper():
        # Mantid pre-imports every algorithm; a missing capitalised name is most likely one we lack
        if name not in algorithms.SUPPORTED:
            try:
                algorithms.get(name)
            except Exception as unsupported:
                exc = type(unsupported)(f"{exc}: {unsupported}").with_traceback(exc.__traceback__)
    mine = [f for f in frames if f.filename == script.path]
    lineno = mine[-1].lineno if mine else None
    shown = [f for f in frames if f.filename == script.path or "livereduce/scripts.py" not in f.filename]
    text = "Traceback (most recent call last):\n" + "".join(traceback.format_list(shown))
    text += "".join(traceback.format_exception_only(type(exc), exc))
    return ScriptError(script.path, lineno, f"{type(exc).__name__}: {exc}", text)


# -- discovery ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FoundScripts:
    proc: str | None
    post_proc: str | None


def script_filename(instrument_name: str, kind: str) -> str:
    return f"reduce_{instrument_name}_live_{kind}.py"


def script_kind(path: str | os.PathLike, names) -> str | None:
    """ "proc" or "post_proc" when `path` is a script file of one of the instrument `names`, else None."""
    base = os.path.basename(path)
    for name in names:
        for kind in ("proc", "post_proc"):
            if base == script_filename(name, kind):
                return kind
    return None


def find_scripts(script_dir: str | os.PathLike, names: Sequence[str]) -> FoundScripts:
    """Find reduce_<NAME>_live_{proc,post_proc}.py for any accepted instrument name (short or full).

    Both variants of one kind present → error (which one is meant is ambiguous). At least one script must
    exist and none may be empty.
    """
    script_dir = Path(script_dir).absolute()  # scripts are known by absolute path (logs, watcher, __file__)
    if not script_dir.is_dir():
        raise ScriptError(str(script_dir), None, "script_dir does not exist or is not a directory")
    found: dict[str, str | None] = {}
    for kind in ("proc", "post_proc"):
        hits = [script_dir / script_filename(n, kind) for n in dict.fromkeys(names)]
        for h in hits:  # a script's name on something that is not a file is a mistake to report, not skip
            if os.path.lexists(h) and not h.is_file():
                raise ScriptError(
                    str(h),
                    None,
                    "cannot read script: not a regular file (a directory, device or broken link)",
                )
        hits = [h for h in hits if h.is_file()]
        if len(hits) > 1:
            raise ScriptError(
                str(script_dir),
                None,
                f"both {hits[0].name} and {hits[1].name} exist; keep one {kind} script per instrument",
            )
        if hits and hits[0].stat().st_size == 0:
            raise ScriptError(str(hits[0]), None, "script is empty")
        found[kind] = str(hits[0]) if hits else None
    if not any(found.values()):
        wanted = ", ".join(script_filename(n, k) for n in dict.fromkeys(names) for k in ("proc", "post_proc"))
        raise ScriptError(str(script_dir), None, f"no processing script found; expected one of: {wanted}")
    return FoundScripts(found["proc"], found["post_proc"])


def check_permissions(script_dir: str | os.PathLike, found: FoundScripts, allow_insecure: bool) -> list[str]:
    """Refuse a script directory or script that users other than its owner may write (any of them could run
    code as the daemon's user, or plant the missing script); with `allow_insecure` these are warnings instead.

    Returns the warnings; raises ScriptError naming the path and its mode otherwise.
    """
    warnings = []
    for path in (Path(script_dir).absolute(), *(Path(p) for p in (found.proc, found.post_proc) if p)):
        try:
            mode = path.stat().st_mode
        except OSError as exc:
            raise ScriptError(str(path), None, f"cannot stat: {exc.strerror or exc}") from exc
        who = writable_by_others(mode)
        if who is None:
            continue
        what = "script directory" if path.is_dir() else "script"
        problem = f"{what} is {who} (mode {stat.S_IMODE(mode):04o})"
        if not allow_insecure:
            raise ScriptError(
                str(path),
                None,
                f"{problem}: users other than its owner could run code as this daemon; chmod go-w it "
                "(allow_insecure_scripts accepts it for development)",
            )
        warnings.append(
            f"{path}: {problem}; accepted because allow_insecure_scripts is set (development only)"
        )
    return warnings
