"""Chunk (what a listener extracted) → workspace (what a script sees)."""

from __future__ import annotations

from livereduce.listeners.base import Chunk
from livereduce.workspace.events import EventColumns, EventWorkspace
from livereduce.workspace.group import WorkspaceGroup
from livereduce.workspace.histogram import HistogramWorkspace


def workspace_from_chunk(chunk: Chunk):
    """EventWorkspace for event chunks; HistogramWorkspace (or a group, one per period) for histograms."""
    monitors = workspace_from_chunk(chunk.monitors) if chunk.monitors is not None else None
    if chunk.histograms is not None:
        h = chunk.histograms
        members: list[HistogramWorkspace] = []
        for p, counts in zip(h.periods, h.counts, strict=True):
            run = chunk.run.copy()
            run.set("current_period", int(p))
            mon = monitors[len(members)] if isinstance(monitors, WorkspaceGroup) else monitors
            members.append(
                HistogramWorkspace(counts, counts.copy(), h.edges, chunk.spectra.copy(), run, "TOF", mon)
            )
        return members[0] if len(members) == 1 else WorkspaceGroup(members)
    ev = chunk.events
    if ev is None:
        columns = EventColumns.empty()
    else:
        # TOF stays float32 (as received) until something reads it as float64, and each event's pulse is
        # spelled out only when read: Rebin into an accumulation does neither
        columns = EventColumns(
            ev.index,
            ev.tof,
            None,
            ev.pulse_time if ev.pulse_time.size else None,
            pulse_start=ev.pulse_start if ev.pulse_time.size else None,
        )
    return EventWorkspace(chunk.spectra, columns, None, chunk.run, "TOF", monitors)
