"""What `livereduce check` finds in a script's text: algorithm calls and `mantid` names the embedded engine
lacks, each with its line, in code that runs.

`unsupported_calls(source)`: a call is reported when it names an algorithm-looking function (CapitalisedName,
not a Python builtin) that is not supported and that the script neither defines nor imports from a module
other than mantid; calls through a mantid module alias (`simpleapi.FitPeak(...)`,
`mantid.simpleapi.FitPeak(...)`) count too, except algorithms the script registers with
`AlgorithmFactory.subscribe(Name)`.

`unsupported_names(source)`: `mantid` modules and names the engine does not provide: `import mantid.plots`,
`from mantid.kernel import Foo`, `mantid.api.Foo` (through any alias of a mantid module), and attributes of
imported mantid objects the engine's do not have (`from mantid.simpleapi import mtd; mtd.importAll()`).

Both look only at code that runs: the module's own statements, and the bodies of functions and classes that
code refers to (by name, directly or through other such functions; a class's methods run when the class is
used, e.g. subscribed). A function the script defines but never calls is not reported. Decorated functions
count as used (decorators usually register them).
"""

from __future__ import annotations

import ast
import builtins
import re
from dataclasses import dataclass, field

from livereduce.mantidapi import api, dataobjects, kernel, simpleapi

_ALGO = re.compile(r"^[A-Z][A-Za-z0-9]*$")
_MANTID_API = ("mantid", "mantid.simpleapi")
_MODULES = {
    "mantid.simpleapi": simpleapi,
    "mantid.kernel": kernel,
    "mantid.api": api,
    "mantid.dataobjects": dataobjects,
}
# what the stand-in `mantid` package itself holds (livereduce.mantidapi._root_module)
_ROOT = {
    "simpleapi",
    "kernel",
    "api",
    "dataobjects",
    "logger",
    "config",
    "mtd",
    "AnalysisDataService",
    "__version__",
}


def _supported() -> set[str]:
    return set(simpleapi.__all__)


def _provides(module: str, name: str) -> bool:
    """Whether `from <module> import <name>` works in the embedded engine."""
    if module == "mantid":
        return name in _ROOT
    mod = _MODULES.get(module)
    if mod is None:
        return False
    if mod is simpleapi:
        return True  # unknown algorithms import as stubs; their calls are reported by unsupported_calls
    return hasattr(mod, name)


def _object(module: str, name: str):
    """What `from <module> import <name>` gives in the embedded engine (None: not a plain object to check)."""
    if module == "mantid":
        roots = {"logger": kernel.logger, "config": kernel.config, "mtd": api.mtd}
        roots.update({"AnalysisDataService": api.AnalysisDataService})
        return roots.get(name)
    mod = _MODULES.get(module)
    return getattr(mod, name, None) if mod is not simpleapi or name == "mtd" else None


@dataclass(eq=False)
class _Body:
    """A module, function, lambda or class body: what it calls and refers to, and the defs directly in it."""

    node: ast.AST
    name: str = ""
    is_class: bool = False
    calls: list[tuple[str, int, bool]] = field(default_factory=list)  # (name, line, via a mantid module)
    names: list[tuple[str, int]] = field(default_factory=list)  # (dotted mantid name, line) it uses
    refs: set[str] = field(default_factory=set)  # names (and attribute names) it loads
    children: list[tuple[str, _Body, bool]] = field(default_factory=list)  # (name, body, decorated)


class _Scan(ast.NodeVisitor):
    def __init__(self):
        self.defined: set[str] = set()
        self.from_mantid: set[str] = set()  # names imported from mantid.* (still must be supported)
        self.mantid_objects: dict[str, tuple[str, object]] = {}  # local name → (dotted name, the object)
        self.mantid_alias: dict[str, str] = {}  # local name → module ("mantid", "mantid.kernel", …)
        self.foreign_star = False
        self.subscribed: set[str] = set()  # AlgorithmFactory.subscribe(X): X is callable by name afterwards
        self.module = _Body(ast.Module(body=[], type_ignores=[]))
        self.body = self.module

    # -- imports: they run where they stand ----------------------------------------------------------------
    def visit_Import(self, node):
        for a in node.names:
            local = a.asname or a.name.split(".")[0]
            if a.name == "mantid" or a.name.startswith("mantid."):
                if a.name != "mantid" and a.name not in _MODULES:
                    self.body.names.append((a.name, node.lineno))
                self.mantid_alias[local] = a.name if a.asname else "mantid"
            else:
                self.defined.add(local)

    def visit_ImportFrom(self, node):
        mod = node.module or ""
        mantid = mod == "mantid" or mod.startswith("mantid.")
        if mantid and mod != "mantid" and mod not in _MODULES:
            self.body.names.append((mod, node.lineno))
        for a in node.names:
            local = a.asname or a.name
            if a.name == "*":
                self.foreign_star |= not mantid
            elif mantid and f"{mod}.{a.name}" in _MODULES:
                self.mantid_alias[local] = f"{mod}.{a.name}"
            elif mantid:
                self.from_mantid.add(local)
                if mod in _MODULES or mod == "mantid":
                    if not _provides(mod, a.name):
                        self.body.names.append((f"{mod}.{a.name}", node.lineno))
                    else:
                        found = _object(mod, a.name)
                        if found is not None:
                            self.mantid_objects[local] = (f"{mod}.{a.name}", found)
            else:
                self.defined.add(local)

    # -- bodies ----------------------------------------------------------------------------------------
    def _enter(self, node, name: str, inner: list, is_class: bool = False) -> None:
        child = _Body(node, name, is_class)
        self.body.children.append((name, child, bool(getattr(node, "decorator_list", []))))
        outer, self.body = self.body, child
        for stmt in inner:
            self.visit(stmt)
        self.body = outer

    def visit_FunctionDef(self, node):
        self.defined.add(node.name)
        for a in node.args.args + node.args.kwonlyargs + node.args.posonlyargs:
            self.defined.add(a.arg)
        for d in node.decorator_list + node.args.defaults + [d for d in node.args.kw_defaults if d]:
            self.visit(d)  # evaluated where the def stands
        self._enter(node, node.name, node.body)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node):
        for d in node.args.defaults:
            self.visit(d)
        self._enter(node, "<lambda>", [node.body])

    def visit_ClassDef(self, node):
        self.defined.add(node.name)
        for b in node.bases + node.decorator_list + [k.value for k in node.keywords]:
            self.visit(b)
        self._enter(node, node.name, node.body, is_class=True)

    def visit_Name(self, node):
        if isinstance(node.ctx, ast.Store):
            self.defined.add(node.id)
        else:
            self.body.refs.add(node.id)

    def visit_ExceptHandler(self, node):
        if node.name:
            self.defined.add(node.name)
        self.generic_visit(node)

    def _dotted(self, node) -> tuple[str, list[str]] | None:
        """(mantid module, attribute chain) when `node` is an attribute chain on a mantid module alias."""
        chain = []
        while isinstance(node, ast.Attribute):
            chain.append(node.attr)
            node = node.value
        if isinstance(node, ast.Name) and node.id in self.mantid_alias:
            return self.mantid_alias[node.id], list(reversed(chain))
        return None

    def visit_Attribute(self, node):
        self.body.refs.add(node.attr)
        base = node.value
        if (
            isinstance(base, ast.Name)
            and base.id in self.mantid_objects
            and base.id not in self.defined
            and not node.attr.startswith("__")
        ):
            dotted, obj = self.mantid_objects[base.id]  # e.g. mtd.importAll: does our mtd have it?
            if not hasattr(obj, node.attr):
                self.body.names.append((f"{dotted}.{node.attr}", node.lineno))
        found = self._dotted(node)
        if found and isinstance(node.ctx, ast.Load):
            module, chain = found
            while chain and f"{module}.{chain[0]}" in _MODULES:  # mantid.kernel.X → module mantid.kernel
                module = f"{module}.{chain.pop(0)}"
            if chain and not _provides(module, chain[0]):
                self.body.names.append((f"{module}.{chain[0]}", node.lineno))
            return  # the chain is resolved; its base name needs no visit
        self.generic_visit(node)

    def visit_Call(self, node):
        f = node.func
        if isinstance(f, ast.Attribute) and f.attr == "subscribe":
            self.subscribed |= {a.id for a in node.args if isinstance(a, ast.Name)}
        if isinstance(f, ast.Name):
            self.body.calls.append((f.id, node.lineno, False))
        elif isinstance(f, ast.Attribute):
            found = self._dotted(f)
            if found:
                module, chain = found
                if ".".join([module, *chain[:-1]]) == "mantid.simpleapi":
                    self.body.calls.append((f.attr, node.lineno, True))
                    for a in [*node.args, *[k.value for k in node.keywords]]:
                        self.visit(a)
                    return  # an algorithm call: not also an unknown-name report
        self.generic_visit(node)


def _running(scan: _Scan) -> list[_Body]:
    """The bodies that run, to a fixpoint: the module's; a class body where its class statement runs; a
    function (or a class's methods) once running code refers to its (or the class's) name; decorated
    functions and lambdas where they are written."""
    running: list[_Body] = [scan.module]
    seen = {id(scan.module)}
    grew = True
    while grew:
        grew = False
        refs = set().union(*(b.refs for b in running))
        for body in list(running):
            for name, child, decorated in body.children:
                used = (
                    child.is_class
                    or decorated
                    or name == "<lambda>"
                    or (name in refs if not body.is_class else body.name in refs)
                )
                if used and id(child) not in seen:
                    seen.add(id(child))
                    running.append(child)
                    grew = True
    return running


def _scan(source: str) -> tuple[_Scan, list[_Body]]:
    scan = _Scan()
    for stmt in ast.parse(source).body:
        scan.visit(stmt)
    return scan, _running(scan)


def unsupported_calls(source: str) -> list[tuple[str, int]]:
    """[(algorithm name, line)] of calls the embedded engine cannot run, in code that runs, by line."""
    scan, running = _scan(source)
    supported = _supported()
    out = []
    for body in running:
        for name, line, via_module in body.calls:
            if not _ALGO.match(name) or name in supported or name in scan.subscribed:
                continue
            if not via_module:
                if hasattr(builtins, name) or (name in scan.defined and name not in scan.from_mantid):
                    continue
                if scan.foreign_star and name not in scan.from_mantid:
                    continue
            out.append((name, line))
    return sorted(set(out), key=lambda p: (p[1], p[0]))


def unsupported_names(source: str) -> list[tuple[str, int]]:
    """[(dotted name, line)] of `mantid` modules and names the embedded engine lacks, in code that runs."""
    _, running = _scan(source)
    return sorted({n for body in running for n in body.names}, key=lambda p: (p[1], p[0]))
