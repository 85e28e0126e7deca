"""`livereduce geometry IDF_FILE [--ids 1,2,3] [--json]`: what an instrument definition file gives.

Exit 0 with the report; 2 with one error line on stderr for an unreadable or invalid file, a malformed --ids or
an id the instrument does not have.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

import numpy as np

from livereduce.instrument.load import read_idf
from livereduce.instrument.model import InstrumentGeometry

EXIT_BAD_INPUT = 2


def add_parser(sub) -> None:
    p = sub.add_parser("geometry", help="read an instrument definition file (IDF): L1, pixels, positions, 2θ")
    p.add_argument("idf", metavar="IDF_FILE", help="a Mantid instrument definition (XML)")
    p.add_argument("--ids", default="", help="detector ids to print, comma-separated (e.g. 1,2,3)")
    p.add_argument("--json", action="store_true", help="print JSON (metres, degrees)")
    p.add_argument(
        "--log",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a run log value for <logfile> parameters (e.g. SNAP's det_arc1=-65); repeatable",
    )
    p.set_defaults(func=cmd_geometry)


def _ids(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"--ids {text!r}: comma-separated integers expected") from None


def _logs(items: list[str]) -> dict[str, float]:
    logs = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            logs[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"--log {item!r}: NAME=NUMBER expected") from None
    return logs


def _finite(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def report(g: InstrumentGeometry, ids: list[int]) -> dict:
    """The --json document: {"instrument", "L1", "n_pixels", "id_min", "id_max", "pixels": {"<id>": {"x", "y",
    "z", "L2", "two_theta_deg"}}} (KeyError for an unknown id)."""
    rows = g.index_of(ids) if ids else np.empty(0, np.int64)
    pixels = {}
    for det, k in zip(ids, rows, strict=True):
        x, y, z = (float(v) for v in g.positions[k])
        pixels[str(det)] = {
            "x": x,
            "y": y,
            "z": z,
            "L2": float(g.l2[k]),
            "two_theta_deg": math.degrees(g.two_theta[k]),
        }
    return {
        "instrument": g.name,
        "L1": _finite(g.l1),
        "n_pixels": g.n_pixels,
        "id_min": int(g.det_ids[0]) if g.n_pixels else None,
        "id_max": int(g.det_ids[-1]) if g.n_pixels else None,
        "pixels": pixels,
    }


def _text(doc: dict, g: InstrumentGeometry) -> str:
    lines = [
        f"instrument  {doc['instrument']}",
        f"L1          {g.l1:.6f} m",
        f"pixels      {doc['n_pixels']} (ids {doc['id_min']}..{doc['id_max']})",
        f"monitors    {', '.join(str(int(m)) for m in g.monitor_ids) or 'none'}",
    ]
    if doc["pixels"]:
        lines.append(f"{'id':>10} {'x/m':>11} {'y/m':>11} {'z/m':>11} {'L2/m':>10} {'2θ/deg':>10}")
        for det, p in doc["pixels"].items():
            lines.append(
                f"{det:>10} {p['x']:11.6f} {p['y']:11.6f} {p['z']:11.6f} {p['L2']:10.6f} {p['two_theta_deg']:10.4f}"
            )
    return "\n".join(lines)


def cmd_geometry(args: argparse.Namespace) -> int:
    try:
        ids = _ids(args.ids)
        g = read_idf(args.idf, logs=_logs(args.log))
        doc = report(g, ids)
    except (ValueError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        print(f"livereduce geometry: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(json.dumps(doc, indent=2) if args.json else _text(doc, g))
    return 0
