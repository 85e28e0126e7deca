"""Mantid-style algorithm functions: name → callable with Mantid's properties, defaults and calling rules.

Calling rules reproduced from Mantid's simpleapi (facts, own code):
- keywords by property name; positional arguments fill the *mandatory* properties (those without a valid
  default) in declaration order, skipping ones already given by keyword or by the assignment target;
- `ws = Rebin(...)` without OutputWorkspace names the output after the assignment target(s), found by reading
  the caller's bytecode; an explicit OutputWorkspace wins. With fewer targets than output properties the
  targets name the workspace outputs in order, otherwise output i takes target i;
- InputWorkspace-like properties take a workspace object or a name in `mtd`; OutputWorkspace takes a name or a
  named workspace (its name is used); outputs are registered in `mtd`;
- the return value is the outputs in declaration order (workspace and value outputs alike; unset optional
  ones left out): None, the single value, or a namedtuple `<Name>_returns`; `a, b = Alg(...)` with another
  number of outputs is an error;
- a WorkspaceGroup input runs the algorithm member by member and returns a group (see `_apply_to_groups`).
"""

from __future__ import annotations

import contextvars
import dis
import functools
import inspect
import os
import sys
from collections import namedtuple
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from livereduce.errors import AlgorithmError, UnsupportedAlgorithm
from livereduce.workspace.ads import mtd
from livereduce.workspace.group import WorkspaceGroup

REQUIRED = object()  # no valid default: the property is mandatory (and takes positional arguments)
IN, OUT, VALUE = "in", "out", "value"
OUT_VALUE = (
    "out_value"  # an output property holding a plain value (e.g. GetEi's energy), returned, not stored
)
_STORES = {"STORE_NAME", "STORE_FAST", "STORE_GLOBAL", "STORE_DEREF"}


@dataclass(frozen=True)
class Prop:
    name: str
    default: Any = REQUIRED
    kind: str = VALUE  # IN / OUT workspace property, OUT_VALUE output value, or a plain VALUE
    optional_ws: bool = False  # a workspace property (in or out) that may be left unset

    @property
    def mandatory(self) -> bool:
        return self.default is REQUIRED and not self.optional_ws


@dataclass
class Algorithm:
    name: str
    props: tuple[Prop, ...]
    impl: Callable
    per_member: bool = True  # groups in → applied member by member
    summary: str = ""

    def prop(self, name: str) -> Prop | None:
        return next((p for p in self.props if p.name == name), None)

    @property
    def outputs(self) -> list[Prop]:
        return [p for p in self.props if p.kind in (OUT, OUT_VALUE)]


_ALGORITHMS: dict[str, Algorithm] = {}
_FUNCTIONS: dict[str, Callable] = {}


# `livereduce check` dry-runs scripts on synthetic data: Save* algorithms then write into this directory
# (by file name) instead of the real product paths, so a check never overwrites real results.
SAVE_SANDBOX: contextvars.ContextVar[str | None] = contextvars.ContextVar("SAVE_SANDBOX", default=None)


def algorithm(name: str, props: list[Prop], *, per_member: bool = True):
    """Decorator: register `impl(**properties)` as Mantid algorithm `name`."""

    def decorate(impl):
        register(Algorithm(name, tuple(props), impl, per_member, (impl.__doc__ or "").strip().split("\n")[0]))
        return impl

    return decorate


def register(alg: Algorithm) -> Callable:
    """Make `alg` callable by name (also at run time: mantid.api.AlgorithmFactory.subscribe); its function."""
    _ALGORITHMS[alg.name] = alg
    _FUNCTIONS[alg.name] = _make_function(alg)
    return _FUNCTIONS[alg.name]


def supported() -> list[str]:
    return sorted(_ALGORITHMS)


def get(name: str) -> Callable:
    """The Mantid-style function for `name`; UnsupportedAlgorithm naming it (and what to do) if absent."""
    try:
        return _FUNCTIONS[name]
    except KeyError:
        raise unsupported_error(name) from None


def spec(name: str) -> Algorithm:
    return _ALGORITHMS[name]


def unsupported_error(name: str) -> UnsupportedAlgorithm:
    return UnsupportedAlgorithm(
        f"the embedded engine does not provide {name}; supported algorithms: {', '.join(supported())}; "
        f"or run with engine 'mantid' where Mantid is installed"
    )


def unsupported_stub(name: str) -> Callable:
    """A callable standing for an algorithm we lack: importing it works, calling it fails at the call."""

    def stub(*args, **kwargs):
        raise unsupported_error(name)

    stub.__name__ = stub.__qualname__ = name
    stub.__doc__ = f"{name} is not provided by livereduce's embedded engine (calling it raises)."
    stub.unsupported = True  # type: ignore[attr-defined]
    return stub


def call(name: str, *args, **kwargs):
    """Run algorithm `name` from Python code that is not a user script (no assignment-target naming)."""
    return _run(spec(name), args, kwargs, lhs=[])


# -- assignment targets --------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _targets(code, lasti: int) -> tuple[str, ...]:
    """Names the value produced by the instruction at `lasti` is stored into: `a = f()` → (a,),
    `a, b = f()` → (a, b), `a = b = f()` → (a,), anything else → ()."""
    instrs = [i for i in dis.get_instructions(code) if i.opname != "CACHE"]
    after = [i for i in instrs if i.offset > lasti]
    if not after:
        return ()
    first = after[0]
    if first.opname in _STORES:
        return (first.argval,)
    if first.opname == "COPY" and len(after) > 1 and after[1].opname in _STORES:
        return (after[1].argval,)
    if first.opname in ("UNPACK_SEQUENCE", "UNPACK_EX"):
        names = []
        for i in after[1 : 1 + int(first.arg or 0)]:
            if i.opname not in _STORES:
                return ()
            names.append(i.argval)
        return tuple(names)
    return ()


def lhs_names(frame) -> tuple[str, ...]:
    """Assignment targets of the call currently executing in `frame` (Mantid's lhs_info, own code)."""
    if frame is None:
        return ()
    try:
        return _targets(frame.f_code, frame.f_lasti)
    except Exception:
        return ()


# -- calling --------------------------------------------------------------------------------------


def _make_function(alg: Algorithm) -> Callable:
    def run(*args, **kwargs):
        return _run(alg, args, kwargs, lhs=lhs_names(sys._getframe(1)))

    run.__name__ = run.__qualname__ = alg.name
    run.__module__ = "livereduce.algorithms"
    params = [
        inspect.Parameter(
            p.name, inspect.Parameter.KEYWORD_ONLY, default=None if p.default is REQUIRED else p.default
        )
        for p in alg.props
    ]
    run.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    run.__doc__ = f"{alg.name}({', '.join(p.name for p in alg.props)})\n\n{alg.impl.__doc__ or ''}"
    return run


def _names_from_lhs(outs: list[Prop], lhs) -> dict[str, str]:
    """Output workspace names taken from the assignment targets, as Mantid's simpleapi assigns them."""
    if not lhs:
        return {}
    if len(lhs) >= len(outs):  # one target per output: output i takes target i (value outputs skip theirs)
        return {p.name: lhs[i] for i, p in enumerate(outs) if p.kind == OUT}
    queue = list(lhs)  # fewer targets: they go to the workspace outputs in order
    return {p.name: queue.pop(0) for p in outs if p.kind == OUT and queue}


def _run(alg: Algorithm, args: tuple, kwargs: dict, lhs) -> Any:
    store = bool(kwargs.pop("StoreInADS", True))  # Mantid's magic keyword: False keeps outputs out of mtd
    values = _prepare(alg, args, kwargs, lhs, named=store)
    produced = _execute(alg, values, store=store)
    return _returns(alg, values, produced, lhs)


def execute(name: str, properties: dict, *, store: bool = True) -> tuple[dict, dict]:
    """Run algorithm `name` with these property values (AlgorithmManager handles): returns the resolved
    property values and the outputs produced. With store false (a child algorithm) nothing goes into mtd
    and output workspaces need no name."""
    alg = spec(name)
    values = _prepare(alg, (), dict(properties), (), named=store)
    return values, _execute(alg, values, store=store)


def _execute(alg: Algorithm, values: dict, *, store: bool) -> dict[str, Any]:
    produced = _apply(alg, values, store)
    for p in alg.outputs:
        if store and p.kind == OUT and values[p.name] is not None and hasattr(produced.get(p.name), "id"):
            mtd.addOrReplace(values[p.name], produced[p.name])
    return produced


def _prepare(alg: Algorithm, args: tuple, kwargs: dict, lhs, named: bool = True) -> dict[str, Any]:
    """The value of every (non-output-value) property: keywords in any case, assignment targets, positional
    arguments, defaults; input workspaces resolved, output workspaces as names (with `named` false, outputs
    that stay out of mtd need none: they get a placeholder)."""
    names = {p.name.lower(): p.name for p in alg.props}  # property names match in any case, as in Mantid
    kwargs = {names.get(k.lower(), k): v for k, v in kwargs.items()}
    kwargs.pop("Version", None)
    kwargs.pop("EnableLogging", None)
    unknown = [k for k in kwargs if alg.prop(k) is None]
    if unknown:
        raise TypeError(
            f"'{unknown[0]}' is an invalid keyword argument for {alg.name}; its properties are: "
            f"{', '.join(p.name for p in alg.props)}"
        )
    outs = alg.outputs
    for prop_name, target in _names_from_lhs(outs, lhs).items():
        if kwargs.get(prop_name) is None:  # an explicit OutputWorkspace wins over the target
            kwargs[prop_name] = target
    if args:
        free = [p.name for p in alg.props if p.mandatory and p.kind != OUT_VALUE and p.name not in kwargs]
        if not free:
            raise AlgorithmError(
                f"{alg.name}: positional argument(s) given but no mandatory property is left "
                f"to take them; use keywords"
            )
        if len(args) > len(free):
            raise AlgorithmError(
                f"{alg.name}: {len(args)} positional arguments for {len(free)} mandatory "
                f"properties ({', '.join(free)})"
            )
        kwargs.update(zip(free, args, strict=False))  # args fill the first free properties
    values = {}
    for p in alg.props:
        if p.kind == OUT_VALUE:
            continue  # set by the algorithm; a value passed in is ignored, as in Mantid
        if p.name in kwargs and kwargs[p.name] is not None:
            v = kwargs[p.name]
        elif p.kind == OUT and not p.optional_ws and not named:
            v = f"__{alg.name}_{p.name}"
        elif p.kind == OUT and not p.optional_ws:
            raise AlgorithmError(
                f"{alg.name}: no name for {p.name}: pass {p.name}='name' or assign the result "
                f"(ws = {alg.name}(...)); Mantid cannot name it from mtd['x'] = {alg.name}(...) either"
            )
        elif p.mandatory:
            raise AlgorithmError(f"{alg.name}: property {p.name} is required")
        else:
            v = None if p.default is REQUIRED else p.default
        if p.kind == IN and v is not None:
            v = resolve_workspace(v, alg.name, p.name)
        elif p.kind == OUT and v is not None:
            v = _output_name(v, alg.name, p.name)
        values[p.name] = v
    sandbox = SAVE_SANDBOX.get()
    if sandbox is not None and alg.name.startswith("Save"):
        for key in ("Filename", "OutputFilename"):  # SavePlot1D names its file OutputFilename
            if values.get(key):
                values[key] = os.path.join(sandbox, os.path.basename(str(values[key])))
    return values


def _as_outputs(alg: Algorithm, result) -> dict[str, Any]:
    """What `impl` returned, by output property: a dict, a tuple in declaration order, or the only output."""
    outs = alg.outputs
    if isinstance(result, dict):
        return result
    if len(outs) > 1 and isinstance(result, tuple):
        return dict(zip([p.name for p in outs], result, strict=False))
    return {outs[0].name: result} if outs else {}


def _returns(alg: Algorithm, values: dict, produced: dict, lhs):
    """Mantid's return convention: every output that was set, in declaration order."""
    got = {}
    for p in alg.outputs:
        if p.kind == OUT_VALUE:
            got[p.name] = produced.get(p.name, None if p.default is REQUIRED else p.default)
        elif values[p.name] is not None and produced.get(p.name) is not None:
            got[p.name] = produced[p.name]
    if len(lhs) > 1 and len(got) != len(lhs):
        raise AlgorithmError(
            f"{alg.name} is trying to return {len(got)} output(s) but you have provided {len(lhs)} "
            f"variable(s). These numbers must match."
        )
    if not got:
        return None
    if len(got) == 1:
        return next(iter(got.values()))
    return _returns_type(alg.name, tuple(got))(**got)


@functools.lru_cache(maxsize=256)
def _returns_type(name: str, fields: tuple[str, ...]):
    return namedtuple(f"{name}_returns", fields)


def _apply(alg: Algorithm, values: dict, store: bool = True) -> dict[str, Any]:
    groups = [p.name for p in alg.props if p.kind == IN and isinstance(values[p.name], WorkspaceGroup)]
    if groups and alg.per_member:
        return _apply_to_groups(alg, values, groups, store)
    try:
        return _as_outputs(alg, alg.impl(**values))
    except AlgorithmError as exc:
        if str(exc).startswith(alg.name):
            raise
        raise AlgorithmError(f"{alg.name}: {exc}") from exc


def _apply_to_groups(alg: Algorithm, values: dict, groups: list[str], store: bool) -> dict[str, Any]:
    """Mantid's group processing: run once per member (members of several groups pair up), and collect each
    output workspace into a group under the output name. Member i of output `out` is called `out_<i+1>` when
    every input group's members are named `<group>_<suffix>`, else `<input member names>_out` (the names of
    all inputs of entry i joined by '_'); an output named like an input group replaces its members in place."""
    sizes = {len(values[g]) for g in groups}
    if len(sizes) != 1:
        raise AlgorithmError(f"{alg.name}: workspace groups of different sizes {sorted(sizes)}")
    size = sizes.pop()
    if size == 0:
        raise AlgorithmError(f"{alg.name}: empty group passed as input")
    similar = all(values[g].areNamesSimilar() for g in groups if len(values[g]) > 1)
    ins = [p.name for p in alg.props if p.kind == IN and values[p.name] is not None]
    outs = [p for p in alg.outputs if p.kind == OUT and values[p.name] is not None]
    members: list[dict[str, Any]] = []
    for i in range(size):
        one = dict(values)
        for g in groups:
            one[g] = values[g][i]
        base = "_".join(
            one[n].name() for n in ins if callable(getattr(one[n], "name", None)) and one[n].name()
        )
        for p in outs:
            out = values[p.name]
            same = [g for g in groups if values[g].name() == out]
            if same:
                one[p.name] = values[same[0]][i].name() or f"{out}_{i + 1}"
            elif similar or not base:
                one[p.name] = f"{out}_{i + 1}"
            else:
                one[p.name] = f"{base}_{out}"
        produced = _apply(alg, one, store)
        for p in outs:
            ws = produced.get(p.name)
            if store and ws is not None and hasattr(ws, "id"):
                mtd.addOrReplace(one[p.name], ws)  # each member run stores its output, as Mantid's child does
        members.append(produced)
    result: dict[str, Any] = {}
    for p in outs:
        got = [m.get(p.name) for m in members]
        if all(hasattr(ws, "id") for ws in got):
            result[p.name] = WorkspaceGroup(got)
    return result


def _output_name(v, alg: str, prop: str) -> str:
    if isinstance(v, str) and v.strip():
        return v
    name = getattr(v, "name", None)
    if callable(name) and name():
        return name()
    raise AlgorithmError(f"{alg}: {prop} must be a workspace name, not {v!r}")


def resolve_workspace(v, alg: str = "", prop: str = "InputWorkspace"):
    """A workspace object, or the workspace called `v` in mtd."""
    if isinstance(v, str):
        if not mtd.doesExist(v):
            raise AlgorithmError(
                f"{alg}: {prop} '{v}' does not exist in the workspace list; it has: "
                f"{', '.join(mtd.getObjectNames()) or '(nothing)'}"
            )
        return mtd[v]
    if hasattr(v, "id") and callable(v.id):
        return v
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)  # arithmetic accepts plain numbers
    raise AlgorithmError(f"{alg}: {prop} must be a workspace or a workspace name, not {type(v).__name__}")


# importing the family modules registers their algorithms (they import only the names defined above)
from livereduce.algorithms import (  # noqa: E402, F401
    arithmetic,
    ascii,
    binning,
    characterization,
    diffcal,
    event_nexus,
    filtering,
    focus,
    grouping,
    gsas,
    math_ops,
    more_ops,
    neighbours,
    nexus,
    peaks,
    plots_xye,
    point_data,
    powder,
    sample,
    spectra_ops,
    units,
    workspace_ops,
)

SUPPORTED: list[str] = sorted(_ALGORITHMS)
