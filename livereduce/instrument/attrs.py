"""Reading IDF attributes: numbers and parameter values, with errors that name the element."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

ParameterValue = float | int | bool | str


def describe(el: ET.Element) -> str:
    keys = ("name", "type", "idname", "is")
    attrs = " ".join(f'{k}="{el.get(k)}"' for k in keys if el.get(k) is not None)
    return f"<{el.tag}{' ' + attrs if attrs else ''}>"


def number(el: ET.Element, attr: str, default: float | None = None) -> float:
    raw = el.get(attr)
    if raw is None:
        if default is None:
            raise ValueError(f"{describe(el)}: missing {attr}")
        return default
    try:
        v = float(raw)
    except ValueError:
        raise ValueError(f"{describe(el)}: {attr}={raw!r} is not a number") from None
    if not math.isfinite(v):
        raise ValueError(f"{describe(el)}: {attr}={raw!r} is not finite")
    return v


def integer(el: ET.Element, attr: str, default: int | None = None) -> int:
    raw = el.get(attr)
    if raw is None:
        if default is None:
            raise ValueError(f"{describe(el)}: missing {attr}")
        return default
    try:
        return int(raw.strip().lstrip("+"))
    except ValueError:
        raise ValueError(f"{describe(el)}: {attr}={raw!r} is not an integer") from None


def parameter_value(par: ET.Element) -> ParameterValue | None:
    """A <parameter>'s first <value val>, typed by its type attribute; None when it has none (log-driven)."""
    v = par.find("value")
    if v is None or v.get("val") is None:
        return None
    raw, kind = v.get("val", ""), par.get("type", "double")
    if kind == "string":
        return raw
    if kind == "bool":
        return raw.strip().lower() in ("true", "1", "yes")
    if kind == "int":
        return integer(v, "val")
    return number(v, "val")
