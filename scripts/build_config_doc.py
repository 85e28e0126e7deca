#!/usr/bin/env python3
"""Write docs/configuration.md from livereduce.config.FIELDS (the one place config keys are declared)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from livereduce.config import FIELDS, MAX_FILE_BYTES, MAX_NESTING, bound_text  # noqa: E402


def render() -> str:
    lines = [
        "# Configuration",
        "",
        "<!-- Generated from livereduce/config.py by scripts/build_config_doc.py — do not edit. -->",
        "",
        "livereduce reads one JSON object: the file named on the command line, else `/etc/livereduce.conf`,",
        "else built-in defaults. A bad value stops startup with exit code 2 and a message naming the key, what",
        "was expected and what was found; an unknown key is a warning. `watchdog.interval` is written as",
        '`"watchdog": {"interval": 60}`. NaN and Infinity are refused everywhere. The file must be UTF-8',
        f"JSON of at most {MAX_FILE_BYTES >> 20} MiB, nested at most {MAX_NESTING} levels deep, and writable by its "
        "owner only (unless",
        "`allow_insecure_scripts` is set).",
        "",
        "| key | type | default | allowed | meaning |",
        "|---|---|---|---|---|",
    ]
    for f in FIELDS:
        allowed = ", ".join(f.choices) if f.choices else ""
        if f.kind == "address":
            allowed = "host:port, port 1–65535"
        if f.minimum is not None:
            allowed = f"≥ {bound_text(f.minimum)}" + (
                f", ≤ {bound_text(f.maximum)}" if f.maximum is not None else ""
            )
        if f.kind == "number":
            allowed = "finite" + (", " + allowed if allowed else "")
        if f.nullable:
            allowed = (allowed + "; " if allowed else "") + "null"
        default = json.dumps(f.default)
        lines.append(f"| `{f.key}` | {f.kind} | `{default}` | {allowed} | {f.doc} |")
    lines += [
        "",
        "Example (the processing-scripts guide's memory settings):",
        "",
        "```json",
        json.dumps(
            {
                "instrument": "POWGEN",
                "preserve_events": False,
                "system_mem_limit_perc": 70,
                "mem_check_interval_sec": 1,
            },
            indent=2,
        ),
        "```",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    (REPO / "docs" / "configuration.md").write_text(render())
