"""Reading IDF attributes: numbers and parameter values (from a <value>, or from run logs through a logfile's
formula), with errors that name the element."""

from __future__ import annotations

import ast
import math
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping

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


def parameter_value(par: ET.Element, logs: Mapping[str, float] | None = None) -> ParameterValue | None:
    """A <parameter>'s value: its first <value val>, typed by the parameter's type attribute; else, with run
    logs, its <logfile id> value through the logfile's `eq`; else None (a log-driven parameter without logs)."""
    v = par.find("value")
    if v is None or v.get("val") is None:
        lf = par.find("logfile")
        if lf is None or not logs or lf.get("id") not in logs:
            return None
        x = float(logs[lf.get("id", "")])
        return evaluate(lf.get("eq"), x, lf) if lf.get("eq") else x
    raw, kind = v.get("val", ""), par.get("type", "double")
    if kind == "string":
        return raw
    if kind == "bool":
        return raw.strip().lower() in ("true", "1", "yes")
    if kind == "int":
        return integer(v, "val")
    return number(v, "val")


_FUNCTIONS: dict[str, Callable[..., float]] = {
    name: getattr(math, name) for name in ("sin", "cos", "tan", "asin", "acos", "atan", "sqrt", "exp", "log")
}
_FUNCTIONS |= {"abs": abs, "log10": math.log10, "ln": math.log}
_CONSTANTS = {"value": 0.0, "_pi": math.pi, "_e": math.e}
_OPS: dict[type, Callable[[float, float], float]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Pow: math.pow,
}


def evaluate(eq: str | None, value: float, el: ET.Element) -> float:
    """A <logfile eq="..."> formula of `value` (muParser's syntax as IDFs use it: + - * / ^, parentheses,
    sin cos tan asin acos atan sqrt exp log ln log10 abs, _pi, _e), evaluated without eval: only these."""
    text = (eq or "value").replace("^", "**")
    if len(text) > 500:
        raise ValueError(f"{describe(el)}: eq of {len(text)} characters")

    def ev(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, int | float)
            and not isinstance(node.value, bool)
        ):
            return float(node.value)
        if isinstance(node, ast.Name) and node.id in _CONSTANTS:
            return value if node.id == "value" else _CONSTANTS[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            return -ev(node.operand) if isinstance(node.op, ast.USub) else ev(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS:
            if len(node.args) != 1 or node.keywords:
                raise ValueError("one argument")
            return float(_FUNCTIONS[node.func.id](ev(node.args[0])))
        raise ValueError(f"{ast.dump(node)[:40]} is not allowed")

    try:
        result = ev(ast.parse(text.strip(), mode="eval"))
    except (SyntaxError, ValueError, ZeroDivisionError, OverflowError, RecursionError) as exc:
        raise ValueError(f"{describe(el)}: eq={eq!r}: {exc}") from None
    if not math.isfinite(result):
        raise ValueError(f"{describe(el)}: eq={eq!r} gives {result} for value {value}")
    return result
