"""Checkpoints: what a restarted session needs to go on where the last one stopped.

A checkpoint is the accumulation (a processed NeXus file, the format SaveNexus writes) and a small JSON
document: the run it belongs to, the session's counters, and the latest pulse accumulated. Both are written
atomically (temporary file, fsync, rename); the JSON is written last and names the NeXus file, so a reader
sees the previous checkpoint or the new one, never half of one. A checkpoint of another run is moved to
`archive/` instead of being loaded.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from livereduce.algorithms import nexus
from livereduce.algorithms.product_file import product_file

log = logging.getLogger("livereduce.checkpoint")

INDEX = "checkpoint.json"
FORMAT = 1


@dataclass
class Checkpoint:
    run_number: int
    run_start: str  # with the number, the run's identity: a DAS restarted at the same number is another run
    cycle: int  # the session cycle it was written after
    last_pulse_ns: int  # the latest pulse time accumulated (0: unknown)
    counters: dict[str, Any] = field(default_factory=dict)  # SessionState fields worth keeping
    accumulation: str | None = None  # file name of the accumulation, beside the index
    run_ended: bool = False  # written after the run's END_RUN: nothing of it can be missing
    written: float = field(default_factory=time.time)
    format: int = FORMAT


def write(state_dir: str | os.PathLike, checkpoint: Checkpoint, accumulation) -> None:
    """Write the accumulation (if any), then the index naming it; remove the previous accumulation file."""
    folder = Path(state_dir)
    folder.mkdir(parents=True, exist_ok=True)
    previous = read_index(folder)
    if accumulation is not None:
        checkpoint.accumulation = f"accumulation-{checkpoint.run_number}-{checkpoint.cycle}.nxs"
        nexus.save(accumulation, str(folder / checkpoint.accumulation), title="livereduce checkpoint")
    with product_file(folder / INDEX) as temp, open(temp, "w", encoding="utf-8") as fh:
        json.dump(asdict(checkpoint), fh, indent=1)
    if previous is not None and previous.accumulation and previous.accumulation != checkpoint.accumulation:
        (folder / previous.accumulation).unlink(missing_ok=True)


def read_index(state_dir: str | os.PathLike) -> Checkpoint | None:
    path = Path(state_dir) / INDEX
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("format") != FORMAT:
            raise ValueError(f"format {raw.get('format')!r}, expected {FORMAT}")
        return Checkpoint(**raw)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as exc:
        log.error("checkpoint %s is unreadable (%s); starting without it", path, exc)
        archive(state_dir, "unreadable")
        return None


def load(state_dir: str | os.PathLike) -> tuple[Checkpoint, Any] | None:
    """The last checkpoint and its accumulation (None when there is none or it cannot be read)."""
    checkpoint = read_index(state_dir)
    if checkpoint is None:
        return None
    accumulation = None
    if checkpoint.accumulation:
        try:
            accumulation = nexus.load(str(Path(state_dir) / checkpoint.accumulation))
        except Exception as exc:  # any failure to read it back: say so and start afresh
            log.error(
                "checkpoint accumulation %s is unreadable (%s); starting without it",
                checkpoint.accumulation,
                exc,
            )
            archive(state_dir, "unreadable")
            return None
    return checkpoint, accumulation


def archive(state_dir: str | os.PathLike, reason: str) -> None:
    """Move the current checkpoint aside (state_dir/archive/<time>-<reason>/), so it is kept but not loaded."""
    folder = Path(state_dir)
    files = [p for p in (folder / INDEX, *folder.glob("accumulation-*.nxs")) if p.exists()]
    if not files:
        return
    target = folder / "archive" / f"{time.strftime('%Y%m%dT%H%M%S')}-{reason}"
    target.mkdir(parents=True, exist_ok=True)
    for p in files:
        os.replace(p, target / p.name)
    log.info("checkpoint archived to %s (%s)", target, reason)
