"""The daemon's scripts: found, checked and compiled, and what a change on disk means.

A missing script directory (an /SNS mount not back yet), no script or a broken one is not a reason to exit: a
restart would not fix it, and the operator's fix arrives as a file. So `load()` failing leaves the set
*waiting*: the daemon says why and tries again on every change and at a growing interval. A change to a script
that is running is checked (permissions, readable, compiles) before it replaces the running version; a change
that fails is rejected with its file and line and the running version stays.
"""

from __future__ import annotations

import difflib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from livereduce.config import Runtime
from livereduce.errors import ScriptError
from livereduce.script_parameters import (
    ParameterError,
    Parameters,
    describe,
    load_parameters,
    mentioned_keys,
    parameters_path,
)
from livereduce.scripts import (
    FoundScripts,
    Script,
    check_permissions,
    compile_script,
    find_scripts,
    md5_of_text,
    read_script,
    script_kind,
)

log = logging.getLogger("livereduce.daemon")

KINDS = ("proc", "post_proc")
MAX_DIFF_LINES = 60  # what changed at 02:13, without a rewritten script flooding the log


def script_diff(old: bytes, new: bytes, path: str) -> str:
    """A unified diff of a script edit for the log (after a newline; empty when nothing is to show), cut at
    MAX_DIFF_LINES lines with how many more there were."""
    lines = list(
        difflib.unified_diff(
            old.decode(errors="replace").splitlines(),
            new.decode(errors="replace").splitlines(),
            f"{path} (before)",
            f"{path} (now)",
            n=2,
            lineterm="",
        )
    )
    if not lines:
        return ""
    if len(lines) > MAX_DIFF_LINES:
        lines = [*lines[:MAX_DIFF_LINES], f"... {len(lines) - MAX_DIFF_LINES} more diff lines not shown"]
    return "\n" + "\n".join(lines)


@dataclass(frozen=True)
class Change:
    """A script changed on disk and was accepted: `script` is None when it was removed."""

    kind: str
    script: Script | None
    text: bytes | None
    previous: Script | None


@dataclass(frozen=True)
class ParametersChange:
    """The parameters file changed and was accepted: `restart` names the changed keys the proc script uses."""

    parameters: Parameters
    changed: set[str]
    restart: set[str]


class ScriptSet:
    def __init__(self, runtime: Runtime, allow_insecure: bool, parameters: dict | str | None = None):
        self.runtime, self.allow_insecure = runtime, allow_insecure
        self.parameters_spec = parameters
        self.parameters_file = parameters_path(parameters, runtime.script_dir)
        self.parameters = Parameters()
        self.scripts: dict[str, Script | None] = dict.fromkeys(KINDS)
        self.texts: dict[str, bytes] = {}
        self.loaded_at: dict[str, float] = {}  # kind → wall time its current script was accepted
        self.waiting: str | None = None  # why there are no usable scripts yet
        self._retry_at = 0.0
        self._retry_delay = 2.0
        self._said_at = 0.0

    def sources(self) -> dict[str, tuple[str, bytes]]:
        """kind → (path, text) of the scripts in use: what a worker compiles."""
        return {k: (s.path, self.texts[k]) for k, s in self.scripts.items() if s is not None}

    def md5s(self) -> dict[str, str | None]:
        return {k: s.md5 if s else None for k, s in self.scripts.items()}

    def describe(self) -> list[dict]:
        """The scripts in use, for the status page: kind, path, md5 and when it was accepted."""
        return [
            {"kind": k, "path": s.path, "md5": s.md5, "loaded_at": self.loaded_at.get(k)}
            for k, s in self.scripts.items()
            if s is not None
        ]

    def retry_due(self) -> bool:
        return self.waiting is not None and time.monotonic() >= self._retry_at

    def retry_now(self) -> None:
        self._retry_at = 0.0

    def load(self) -> bool:
        """Find, check and compile the scripts; False (and waiting, said in the log) when they are not usable."""
        try:
            found = find_scripts(self.runtime.script_dir, self.runtime.script_names)
            for warning in check_permissions(self.runtime.script_dir, found, self.allow_insecure):
                log.warning("insecure: %s", warning)
            loaded = {}
            for kind, path in zip(KINDS, (found.proc, found.post_proc), strict=True):
                if path:
                    text = read_script(path)
                    loaded[kind] = (compile_script(path, kind, text), text)
            parameters = load_parameters(self.parameters_spec, self.runtime.script_dir)
        except (ScriptError, ParameterError) as exc:
            self._wait(str(exc))
            return False
        if self.parameters_spec is not None:
            log.info("using %s", describe(parameters))
        self.parameters = parameters
        for kind in KINDS:
            if kind in loaded:
                script, self.texts[kind] = loaded[kind]
                previous = self.scripts[kind]
                if previous is None or previous.md5 != script.md5:
                    self.loaded_at[kind] = time.time()
                self.scripts[kind] = script
                log.info("using %s script %s (md5 %s)", kind, script.path, script.md5)
            else:
                self.scripts[kind] = None
                self.texts.pop(kind, None)
                what = (
                    "accumulation passes through"
                    if kind == "post_proc"
                    else "chunks pass through unprocessed"
                )
                log.info("no %s script (%s)", kind, what)
        if self.waiting is not None:
            log.info("the scripts are usable again")
        self.waiting, self._retry_delay = None, 2.0
        return True

    def _wait(self, why: str) -> None:
        now = time.monotonic()
        if why != self.waiting or now >= self._said_at + 60:
            log.error(
                "waiting for scripts: %s; retrying in %.0f s and on every change to %s",
                why,
                self._retry_delay,
                self.runtime.script_dir,
            )
            self._said_at = now
        self.waiting = why
        self._retry_at = now + self._retry_delay
        self._retry_delay = min(2 * self._retry_delay, 60.0)

    def parameters_changed(self) -> ParametersChange | None:
        """The parameters file changed: the new values when they are good and differ, else None (a rejection
        is said in the log with the key and the reason; the running values stay)."""
        try:
            new = load_parameters(self.parameters_spec, self.runtime.script_dir)
        except ParameterError as exc:
            log.error("rejected the new parameters: %s; the running values stay", exc)
            return None
        changed = self.parameters.changed_keys(new)
        if not changed:
            log.info("%s changed on disk but its values did not; nothing to do", self.parameters_file)
            return None
        restart = mentioned_keys(self.texts.get("proc", b""), changed)
        self.parameters = new
        return ParametersChange(new, changed, restart)

    def changed(self, path: str) -> Change | None:
        """What a change to `path` means, once checked; None when there is nothing to do (not a script of
        ours, unchanged, or rejected: said in the log, the running version stays)."""
        kind = script_kind(path, self.runtime.script_names)
        if kind is None:
            return None
        current = self.scripts.get(kind)
        if not Path(path).is_file():
            if current is None or os.path.abspath(current.path) != os.path.abspath(path):
                return None
            log.warning("%s script %s was removed", kind, path)
            if self.scripts["proc" if kind == "post_proc" else "post_proc"] is None:
                log.error("no script left; keeping the running session until a script appears")
                return None
            self.scripts[kind] = None
            self.texts.pop(kind, None)
            return Change(kind, None, None, current)
        try:
            found = FoundScripts(path if kind == "proc" else None, path if kind == "post_proc" else None)
            for warning in check_permissions(self.runtime.script_dir, found, self.allow_insecure):
                log.warning("%s", warning)
            text = read_script(path)
        except ScriptError as exc:
            log.error("rejected the new %s script: %s; the running version stays", kind, exc)
            return None
        if current is not None and md5_of_text(text) == current.md5:
            log.info("%s changed on disk but its md5 %s is unchanged; nothing to do", path, current.md5)
            return None
        try:
            script = compile_script(path, kind, text)
        except ScriptError as exc:
            log.error(
                "rejected the new %s script: %s; the running version stays\n%s",
                kind,
                exc,
                exc.traceback_text.rstrip(),
            )
            return None
        log.info(
            "%s script %s changed (md5 %s -> %s)%s",
            kind,
            path,
            current.md5 if current else "none",
            script.md5,
            script_diff(self.texts.get(kind, b""), text, path),
        )
        self.scripts[kind], self.texts[kind] = script, text
        self.loaded_at[kind] = time.time()
        return Change(kind, script, text, current)
