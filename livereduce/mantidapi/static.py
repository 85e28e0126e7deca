"""`unsupported_calls(source)`: algorithm calls in a script that the embedded engine cannot run (for check).

A call is reported when it names an algorithm-looking function (CapitalisedName, not a Python builtin) that
is not supported and that the script neither defines nor imports from a module other than mantid; calls
through a mantid module alias (`simpleapi.FitPeak(...)`, `mantid.simpleapi.FitPeak(...)`) count too, except
algorithms the script itself registers with `AlgorithmFactory.subscribe(Name)`.
"""

from __future__ import annotations

import ast
import builtins
import re

from livereduce.mantidapi import simpleapi

_ALGO = re.compile(r"^[A-Z][A-Za-z0-9]*$")
_MANTID_API = ("mantid", "mantid.simpleapi")


def _supported() -> set[str]:
    return set(simpleapi.__all__)


class _Scan(ast.NodeVisitor):
    def __init__(self):
        self.defined: set[str] = set()
        self.from_mantid: set[str] = set()  # names imported from mantid.* (still must be supported)
        self.mantid_alias: dict[str, str] = {}  # local name → module ("mantid" or "mantid.simpleapi")
        self.foreign_star = False
        self.calls: list[tuple[str, int, bool]] = []  # (name, line, via a mantid module attribute)
        self.subscribed: set[str] = set()  # AlgorithmFactory.subscribe(X): X is callable by name afterwards

    def visit_Import(self, node):
        for a in node.names:
            local = a.asname or a.name.split(".")[0]
            if a.name in _MANTID_API or (a.asname is None and a.name.startswith("mantid")):
                self.mantid_alias[local] = a.name if a.asname else "mantid"
            else:
                self.defined.add(local)

    def visit_ImportFrom(self, node):
        mod = node.module or ""
        for a in node.names:
            local = a.asname or a.name
            if a.name == "*":
                self.foreign_star |= not mod.startswith("mantid")
            elif mod == "mantid" and a.name == "simpleapi":
                self.mantid_alias[local] = "mantid.simpleapi"
            elif mod.startswith("mantid"):
                self.from_mantid.add(local)
            else:
                self.defined.add(local)

    def _targets(self, t):
        for n in ast.walk(t):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                self.defined.add(n.id)

    def visit_FunctionDef(self, node):
        self.defined.add(node.name)
        for a in node.args.args + node.args.kwonlyargs + node.args.posonlyargs:
            self.defined.add(a.arg)
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node):
        self.defined.add(node.name)
        self.generic_visit(node)

    def visit_Name(self, node):
        if isinstance(node.ctx, ast.Store):
            self.defined.add(node.id)

    def visit_ExceptHandler(self, node):
        if node.name:
            self.defined.add(node.name)
        self.generic_visit(node)

    def visit_Call(self, node):
        f = node.func
        if isinstance(f, ast.Attribute) and f.attr == "subscribe":
            self.subscribed |= {a.id for a in node.args if isinstance(a, ast.Name)}
        if isinstance(f, ast.Name):
            self.calls.append((f.id, node.lineno, False))
        elif isinstance(f, ast.Attribute):
            base = f.value
            dotted = []
            while isinstance(base, ast.Attribute):
                dotted.append(base.attr)
                base = base.value
            if isinstance(base, ast.Name) and base.id in self.mantid_alias:
                module = ".".join([self.mantid_alias[base.id], *reversed(dotted)])
                if module == "mantid.simpleapi":
                    self.calls.append((f.attr, node.lineno, True))
        self.generic_visit(node)


def unsupported_calls(source: str) -> list[tuple[str, int]]:
    """[(algorithm name, line)] of calls the embedded engine cannot run, in source order."""
    tree = ast.parse(source)
    scan = _Scan()
    scan.visit(tree)
    supported = _supported()
    out = []
    for name, line, via_module in scan.calls:
        if not _ALGO.match(name) or name in supported or name in scan.subscribed:
            continue
        if not via_module:
            if hasattr(builtins, name) or (name in scan.defined and name not in scan.from_mantid):
                continue
            if scan.foreign_star and name not in scan.from_mantid:
                continue
        out.append((name, line))
    return sorted(out, key=lambda p: p[1])
