"""`mantid.api`'s algorithm objects: AlgorithmManager handles, PythonAlgorithm and AlgorithmFactory.

- `AlgorithmManager.create("Rebin")` gives a handle: initialize(), setProperty(), execute(),
  getProperty(name).value, as scripts use for child algorithms (`setChild(True)` / `setAlwaysStoreInADS(False)`
  keeps outputs out of mtd).
- `class MyAlg(PythonAlgorithm)` with PyInit (declareProperty) and PyExec (getProperty / setProperty), then
  `AlgorithmFactory.subscribe(MyAlg)`: the algorithm becomes callable like any other, with Mantid's calling
  rules, as `mantid.simpleapi.MyAlg(...)` and through AlgorithmManager (in the script, `MyAlg` stays the
  class, as in Mantid).
"""

from __future__ import annotations

from typing import Any

from livereduce.algorithms import registry
from livereduce.algorithms.registry import IN, OUT, OUT_VALUE, REQUIRED, VALUE, Prop
from livereduce.errors import AlgorithmError
from livereduce.mantidapi.properties import Direction, FloatArrayProperty, _Value


class PropertyMode:
    Mandatory, Optional = 0, 1


class FileAction:
    Save, OptionalSave, Load, OptionalLoad, Directory, OptionalDirectory = range(6)


class WorkspaceProperty:
    """A workspace property for PythonAlgorithm.declareProperty: name, default, direction, optional."""

    def __init__(self, name: str, defaultValue: str = "", direction: int = Direction.Input, *args, **kw):
        optional = kw.get("optional", next((a for a in args if isinstance(a, int)), PropertyMode.Mandatory))
        self.name, self.default, self.direction = name, defaultValue, direction
        self.optional = optional == PropertyMode.Optional


MatrixWorkspaceProperty = WorkspaceProperty
WorkspaceGroupProperty = WorkspaceProperty
ITableWorkspaceProperty = WorkspaceProperty


class FileProperty:
    def __init__(self, name: str, defaultValue: str = "", action: int = FileAction.Load, extensions=(), **kw):
        self.name, self.default, self.direction = name, defaultValue, kw.get("direction", Direction.Input)


# -- handles over registry algorithms --------------------------------------------------------------------


class AlgorithmHandle:
    """A created algorithm: properties are set, then `execute()` runs it; outputs read back by property."""

    def __init__(self, name: str, version: int = -1):
        if name not in registry.supported():
            raise registry.unsupported_error(name)
        self._spec = registry.spec(name)
        self._values: dict[str, Any] = {}
        self._results: dict[str, Any] = {}
        self._store = True
        self._executed = False

    def name(self) -> str:
        return self._spec.name

    def version(self) -> int:
        return 1

    def initialize(self) -> None:
        pass

    def isInitialized(self) -> bool:
        return True

    def _prop_name(self, name: str) -> str:
        real = next((p.name for p in self._spec.props if p.name.lower() == name.lower()), None)
        if real is None:
            raise KeyError(f"Unknown property search object {name} (in {self._spec.name})")
        return real

    def setProperty(self, name: str, value) -> None:
        self._values[self._prop_name(name)] = value

    setPropertyValue = setProperty

    def getProperty(self, name: str) -> _Value:
        real = self._prop_name(name)
        if real in self._results:
            return _Value(real, self._results[real])
        prop = self._spec.prop(real)
        default = None if prop is None or prop.default is REQUIRED else prop.default
        return _Value(real, self._values.get(real, default))

    def getPropertyValue(self, name: str) -> str:
        value = self.getProperty(name).value
        return value.name() if callable(getattr(value, "name", None)) else str(value)

    def existsProperty(self, name: str) -> bool:
        return any(p.name.lower() == name.lower() for p in self._spec.props)

    def propertyNames(self) -> list[str]:
        return [p.name for p in self._spec.props]

    def setChild(self, child: bool) -> None:
        self._store = not child

    def setAlwaysStoreInADS(self, store: bool) -> None:
        self._store = bool(store)

    def setLogging(self, on: bool) -> None:
        pass

    def setRethrows(self, on: bool) -> None:
        pass

    def isExecuted(self) -> bool:
        return self._executed

    def execute(self) -> bool:
        values, produced = registry.execute(self._spec.name, self._values, store=self._store)
        self._results = {**values, **produced}
        self._executed = True
        return True


class _AlgorithmManager:
    """`mantid.api.AlgorithmManager`: creates algorithm handles (managed or not: the same here)."""

    def create(self, name: str, version: int = -1) -> AlgorithmHandle:
        return AlgorithmHandle(name, version)

    createUnmanaged = create

    def Instance(self) -> _AlgorithmManager:
        return self


AlgorithmManager = _AlgorithmManager()


# -- PythonAlgorithm -------------------------------------------------------------------------------------


class PythonAlgorithm:
    """Base class for algorithms written in Python (Mantid's PythonAlgorithm; DataProcessorAlgorithm too)."""

    def __init__(self) -> None:
        self._declared: list[
            tuple[str, Any, int, bool, Any]
        ] = []  # name, default, direction, optional, validator
        self._ws_declared: set[str] = set()  # names declared as workspace properties
        self._values: dict[str, Any] = {}

    # what subclasses override
    def PyInit(self) -> None:
        pass

    def PyExec(self) -> None:
        raise NotImplementedError

    def name(self) -> str:
        return type(self).__name__

    def category(self) -> str:
        return ""

    def summary(self) -> str:
        return ""

    def version(self) -> int:
        return 1

    def validateInputs(self) -> dict:
        return {}

    # what PyInit / PyExec call
    def declareProperty(self, prop, defaultValue=None, validator=None, doc: str = "", direction=None, **kw):
        if isinstance(prop, (WorkspaceProperty, FileProperty, FloatArrayProperty)):
            if isinstance(prop, WorkspaceProperty):
                self._ws_declared.add(prop.name)
            self._declared.append(
                (prop.name, prop.default, prop.direction, getattr(prop, "optional", False), None)
            )
            return
        if direction is None:
            direction = kw.get("direction", Direction.Input)
        if isinstance(validator, int) and not isinstance(validator, bool) and direction == Direction.Input:
            direction, validator = validator, None  # declareProperty(name, default, Direction.Output)
        self._declared.append((prop, defaultValue, direction, False, validator))

    def getProperty(self, name: str) -> _Value:
        return _Value(name, self._values.get(name))

    def getPropertyValue(self, name: str) -> str:
        value: Any = self._values.get(name)
        return value.name() if callable(getattr(value, "name", None)) else str(value)

    def setProperty(self, name: str, value) -> None:
        self._values[name] = value

    setPropertyValue = setProperty

    def log(self):
        from livereduce.mantidapi.logger import Logger

        return Logger(self.name())

    def progress(self, *args, **kwargs) -> None:
        pass

    def createChildAlgorithm(self, name: str, *args, **kwargs) -> AlgorithmHandle:
        handle = AlgorithmManager.create(name)
        handle.setChild(True)
        return handle


DataProcessorAlgorithm = PythonAlgorithm


class _AlgorithmFactory:
    """`mantid.api.AlgorithmFactory`: subscribe a PythonAlgorithm class to make it callable by name."""

    def subscribe(self, cls) -> None:
        name = cls.__name__
        props, validators = _declarations(cls)

        def impl(**values):
            alg = cls()
            alg.PyInit()
            for key, value in values.items():
                check = validators.get(key)
                message = check.check(value) if check is not None and value is not None else ""
                if message:
                    raise AlgorithmError(f"{name}: invalid value for {key}: {message}")
                alg._values[key] = value
            problems = alg.validateInputs() or {}
            if problems:
                raise AlgorithmError(f"{name}: {'; '.join(f'{k}: {v}' for k, v in problems.items())}")
            alg.PyExec()
            return {p.name: alg._values.get(p.name) for p in props if p.kind in (OUT, OUT_VALUE)}

        impl.__doc__ = (cls.__doc__ or "").strip() or f"{name} (a PythonAlgorithm subscribed at run time)"
        function = registry.register(registry.Algorithm(name, tuple(props), impl, True, impl.__doc__))
        from livereduce.mantidapi import simpleapi

        simpleapi.publish(name, function)  # the script's own name still means the class, as in Mantid

    def exists(self, name: str, version: int = -1) -> bool:
        return name in registry.supported()

    def getRegisteredAlgorithms(self, include_hidden: bool = False) -> dict[str, list[int]]:
        return {name: [1] for name in registry.supported()}

    def Instance(self) -> _AlgorithmFactory:
        return self


def _declarations(cls) -> tuple[list[Prop], dict[str, Any]]:
    """Run PyInit once to learn the properties: workspace properties become workspace inputs/outputs, plain
    ones with direction Output become returned values, the rest plain inputs."""
    probe = cls()
    probe.PyInit()
    props, validators = [], {}
    for name, default, direction, optional, validator in probe._declared:
        ws = name in probe._ws_declared
        if ws and direction == Direction.Output:
            props.append(Prop(name, None if optional else REQUIRED, OUT, optional_ws=optional))
        elif ws:
            props.append(Prop(name, None if optional else REQUIRED, IN, optional_ws=optional))
        elif direction == Direction.Output:
            props.append(Prop(name, default, OUT_VALUE))
        else:
            props.append(Prop(name, default, VALUE))
        if validator is not None:
            validators[name] = validator
    return props, validators


AlgorithmFactory = _AlgorithmFactory()
