"""docs/troubleshooting.md covers every error and warning the daemon can print.

The modules under livereduce/ are parsed with `ast` (never imported). A message is the string literal (or the
leading literal part of an f-string) given to:

- a logger's `error`, `warning`, `exception` or `critical` (any receiver whose name contains "log":
  `log.error`, `self.log.warning`, `logger.exception`);
- a `RateLimited` logger's `warning(key, message, ...)` (receivers named `*limited*`): the second argument;
- any call that passes a level naming `logging.WARNING`, `ERROR` or `CRITICAL` (or `X.log(level, ...)`),
  followed by the message: `self.log.log(level, msg)`, the ADARA parser's `_limiter(key, level, msg)`;
- `print()` in livereduce/cli.py, and the `ERROR …` / `WARNING …` lines `livereduce check` prints
  (livereduce/check.py);
- the fake servers' one-line bind error (`BindError.one_line` in livereduce/servers/base.py): each literal
  segment of 8 characters or more, since the line starts with the program's name.

A message's *stable prefix* is its text before the first `%` placeholder or `{` field, stripped. Each stable
prefix of at least 8 characters must appear verbatim in docs/troubleshooting.md. Shorter ones ("%s",
"config: %s") say too little to look up; they are listed in SHORT_MESSAGES with the reason, so that a new
short message is added consciously (and its row in the doc written by hand).

The other way round: every entry of the doc's "Message" columns (`` `text…` ``, "…" standing for what the
log fills in) must still be found in the code: each piece between the "…" is part of a string literal under
livereduce/.
"""

from __future__ import annotations

import ast
import itertools
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "livereduce"
DOC = ROOT / "docs" / "troubleshooting.md"
MIN_PREFIX = 8
LOG_METHODS = {"error", "warning", "exception", "critical"}
LOUD_LEVELS = {"WARNING", "ERROR", "CRITICAL"}
CHECK_LINE = re.compile(r"^(ERROR|WARNING)\b")

# (file, message as written) → why its stable prefix is too short to be looked up, and how the doc finds it
SHORT_MESSAGES: dict[tuple[str, str], str] = {
    (
        "livereduce/listeners/kafka.py",
        "lost %d messages of source %s on %s[%d] (message ids %d..%d were never received)",
    ): "'lost' and a count; doc row `lost … messages of source … on …`",
    (
        "livereduce/listeners/kafka.py",
        "run %d starts while run %d has no stop: ending run %d at run %d's start",
    ): "'run' and a number; doc row `run … starts while run … has no stop…`",
    (
        "livereduce/listeners/kafka.py",
        "run %d's stop (%s) came after pulses past it were handed out in its chunks: run control is "
        "behind the events by more than an update",
    ): "'run' and a number; doc row `run …'s stop (…) came after pulses past it…`",
    (
        "livereduce/servers/fake_kafka.py",
        "run %d: %d messages not yet acknowledged by the broker",
    ): "'run' and a number; doc row `run …: … messages not yet acknowledged…`",
    (
        "livereduce/servers/fake_kafka.py",
        "run %d: a message of %d events was not delivered (%s)",
    ): "'run' and a number; doc row `run …: a message of … events was not delivered…`",
    (
        "livereduce/cli.py",
        "config: %s",
    ): "a warning from the config loader; the doc lists them under `config: …`",
    (
        "livereduce/daemon.py",
        "thread %s crashed",
    ): "the thread's name comes first; doc row `thread … crashed`",
    ("livereduce/script_set.py", "%s"): "relays check_permissions' warning (`…: accepted because "
    "allow_insecure_scripts is set`), documented by that text",
    ("livereduce/script_set.py", "%s script %s was removed"): "starts with the script kind; doc row "
    "`… script … was removed`",
    (
        "livereduce/daemon.py",
        "memory %.0f MB is above the soft limit (%.0f MB of %.0f MB hard): compressing the accumulation",
    ): "'memory' and a number; doc row `memory … MB is above the soft limit…`",
    (
        "livereduce/daemon.py",
        "memory %.0f MB is still above the limit %.0f MB after starting a new "
        "accumulation; not restarting again within %.0f s (compressing instead)",
    ): "'memory' and a number; doc row `memory … MB is still above the limit…`",
    (
        "livereduce/daemon.py",
        "memory %.0f MB exceeds the limit %.0f MB again %.0f s after the last restart: "
        "the accumulation itself is too large; starting a new, empty one (what it held of run %s is no longer in "
        "it). Next time within %.0f s the same",
    ): "'memory' and a number; doc row `memory … MB exceeds the limit … MB again…`",
    (
        "livereduce/daemon.py",
        "memory %.0f MB exceeds the limit %.0f MB (system_mem_limit_perc=%s): replacing "
        "the worker (its memory is freed; the new one resumes from the last checkpoint)",
    ): "'memory' and a number; doc row `memory … MB exceeds the limit … MB (system_mem_limit_perc=…`",
    (
        "livereduce/listeners/stream.py",
        "%s from %s; dropping the connection, reconnecting in %.1f s",
    ): "starts "
    "with why (`protocol error: …`, `no data for …`, `connection lost (…`, `connection closed by peer`, "
    "`unexpected error`): one doc row per reason",
    (
        "livereduce/listeners/isis_event.py",
        "dropped %d events with a NaN or infinite time of flight; %d so far",
    ): "'dropped' and a number; doc row `dropped … events with a NaN or infinite time of flight…`",
    (
        "livereduce/listeners/isis_event.py",
        "frame %d has proton charge %.3g: counted as 0 (%d such frames so far)",
    ): "'frame' and a number; doc row `frame … has proton charge…`",
    (
        "livereduce/listeners/isis_histogram.py",
        "DAE %s:%d: %s; dropping the connection and reconnecting at the next update",
    ): "'DAE' and the address; doc row `DAE …: …; dropping the connection…`",
    ("livereduce/listeners/isis_histogram.py", "%s"): "relays NotYet at start (`cannot reach the DAE at …`), "
    "documented by that text",
    ("livereduce/mantidapi/logger.py", "%s"): "relays a script's own mantid.logger message (the script's "
    "text, not ours)",
    (
        "livereduce/progress.py",
        "%s of %s events of run %d (%.0f %%) fell outside the bins they were "
        "histogrammed into and are not counted (Mantid's rule); widen Rebin's Params to keep them",
    ): "starts with counts; doc row `… of … events of run … fell outside the bins…`",
    (
        "livereduce/session.py",
        "%d events are kept and will be processed with the next chunk",
    ): "starts with a count; doc row `… events are kept and will be processed with the next chunk`",
    (
        "livereduce/session.py",
        "%d events could not be processed before %s (the proc script kept failing); "
        "they are not in the accumulation",
    ): "starts with a count; doc row `… events could not be processed before…`",
    ("livereduce/session.py", "cycle %d failed; the session continues"): "'cycle' and a number; doc row "
    "`cycle … failed; the session continues`",
    ("livereduce/worker.py", "%s"): "relays a log line from the worker process (its own message, documented "
    "where it is made)",
    ("livereduce/check.py", "ERROR {}"): "relays a script error (`ERROR <file>:<line>: …`) under `livereduce "
    "check`; doc row `ERROR …`",
    (
        "livereduce/check.py",
        "ERROR {}:{}: {} is not provided by the embedded engine (use engine 'mantid' "
        "where Mantid is installed, or see `docs/algorithms.md` for the supported list)",
    ): "starts with the file name; doc row `ERROR …: … is not provided by the embedded engine…`",
}


@dataclass(frozen=True)
class Message:
    path: str  # relative to the repository
    line: int
    text: str  # as written: %-placeholders kept, f-string fields as "{}"

    @property
    def prefix(self) -> str:
        return stable_prefix(self.text)

    def where(self) -> str:
        return f"{self.path}:{self.line}"


def stable_prefix(text: str) -> str:
    return re.split(r"[%{]", text, maxsplit=1)[0].strip()


def template(node: ast.AST) -> str | None:
    """The literal's text (f-string fields as "{}"), or None for anything that is not a literal."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            part.value if isinstance(part, ast.Constant) else "{}"
            for part in node.values
            if isinstance(part, ast.Constant | ast.FormattedValue)
        )
    return None


def segments(node: ast.AST) -> list[str]:
    """The literal pieces of a string or f-string."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        return [part.value for part in node.values if isinstance(part, ast.Constant)]
    return []


def is_loud_level(node: ast.AST) -> bool:
    """An expression naming logging.WARNING, ERROR or CRITICAL (`logging.ERROR if x else logging.WARNING`)."""
    return any(
        isinstance(n, ast.Attribute)
        and n.attr in LOUD_LEVELS
        and isinstance(n.value, ast.Name)
        and n.value.id == "logging"
        for n in ast.walk(node)
    )


def message_arg(call: ast.Call) -> ast.AST | None:
    """The argument holding the message, when `call` logs a warning or worse; None otherwise."""
    func, args = call.func, call.args
    if isinstance(func, ast.Attribute):
        receiver = ast.unparse(func.value).lower()
        if func.attr in LOG_METHODS and "limited" in receiver:
            return args[1] if len(args) > 1 else None
        if func.attr in LOG_METHODS and "log" in receiver:
            return args[0] if args else None
        if func.attr == "log" and len(args) > 1 and not _quiet_level(args[0]):
            return args[1]
    for level, arg in itertools.pairwise(args):
        if is_loud_level(level):
            return arg
    return None


def _quiet_level(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "logging"
        and node.attr not in LOUD_LEVELS
    )


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def collect_messages() -> list[Message]:
    found: list[Message] = []
    for path in modules():
        rel = relative(path)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
        parts = {
            id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for part in node.values
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                arg = message_arg(node)
                if arg is None and rel == "livereduce/cli.py":
                    is_print = isinstance(node.func, ast.Name) and node.func.id == "print"
                    arg = node.args[0] if is_print and node.args else None
                text = template(arg) if arg is not None else None
                if text is not None:
                    found.append(Message(rel, node.lineno, text))
            elif (
                rel == "livereduce/check.py"
                and isinstance(node, ast.JoinedStr | ast.Constant)
                and id(node) not in parts
            ):
                text = template(node)
                if text is not None and CHECK_LINE.match(text):
                    found.append(Message(rel, node.lineno, text))
            elif (
                rel == "livereduce/servers/base.py"
                and isinstance(node, ast.FunctionDef)
                and node.name == "one_line"
            ):
                for inner in ast.walk(node):
                    if id(inner) in parts:
                        continue  # an f-string's piece: taken with the f-string
                    for piece in segments(inner):
                        if len(piece.strip()) >= MIN_PREFIX:
                            found.append(Message(rel, inner.lineno, piece.strip()))
    return found


def code_literals() -> list[str]:
    """Every literal piece of every string under livereduce/."""
    pieces = []
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            pieces.extend(segments(node))
    return pieces


def doc_entries() -> list[tuple[int, str]]:
    """(line, text) of each `…`-ended code span opening a table row of the doc."""
    entries = []
    for number, line in enumerate(DOC.read_text(encoding="utf-8").splitlines(), 1):
        match = re.match(r"^\|\s*`([^`]+)`", line)
        if match and "…" in match.group(1):
            entries.append((number, match.group(1)))
    return entries


MESSAGES = collect_messages()
LITERALS = code_literals()


def test_the_scan_finds_the_messages_it_should():
    """Guards the scanner itself: a refactor that hides the messages from it must not pass silently."""
    prefixes = {m.prefix for m in MESSAGES}
    for expected in (
        "waiting for scripts:",  # log.error
        "accumulation cleared:",  # self.log.warning
        "cannot open the DAE at",  # RateLimited.warning(key, message)
        "protocol error in",  # the ADARA parser's _limiter(key, logging.ERROR, message)
        "dropped a bad",  # _bad_log(name, logging.ERROR if … else logging.WARNING, message)
        "ERROR config:",  # livereduce check
        "is already in use (another server is listening there?)",  # BindError.one_line
    ):
        assert expected in prefixes, expected
    assert len(MESSAGES) >= 60


def test_every_message_is_in_the_troubleshooting_guide():
    doc = DOC.read_text(encoding="utf-8")
    missing = [
        f"{m.where()}: {m.prefix!r}" for m in MESSAGES if len(m.prefix) >= MIN_PREFIX and m.prefix not in doc
    ]
    assert not missing, (
        "messages missing from docs/troubleshooting.md (add a row: the message, level, meaning, what to do):\n"
        + "\n".join(missing)
    )


def test_short_messages_are_allowlisted_with_a_reason():
    short = [m for m in MESSAGES if len(m.prefix) < MIN_PREFIX]
    unlisted = [f"{m.where()}: {m.text!r}" for m in short if (m.path, m.text) not in SHORT_MESSAGES]
    assert not unlisted, (
        f"messages whose stable prefix is under {MIN_PREFIX} characters: add them to SHORT_MESSAGES with a "
        "reason, and a row to docs/troubleshooting.md:\n" + "\n".join(unlisted)
    )
    present = {(m.path, m.text) for m in short}
    stale = [f"{path}: {text!r}" for path, text in SHORT_MESSAGES if (path, text) not in present]
    assert not stale, "SHORT_MESSAGES entries no longer in the code:\n" + "\n".join(stale)


@pytest.mark.parametrize("line, entry", doc_entries())
def test_every_doc_entry_still_matches_the_code(line, entry):
    for piece in (p.strip() for p in entry.split("…")):
        assert not piece or any(piece in lit for lit in LITERALS), (
            f"docs/troubleshooting.md:{line}: {piece!r} (of `{entry}`) is no longer in any message under "
            "livereduce/: update or remove the row"
        )
