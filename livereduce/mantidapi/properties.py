"""`mantid.kernel`'s property types, validators and PropertyManager, as scripts and PythonAlgorithms use them.

The typed property classes (FloatTimeSeriesProperty, IntPropertyWithValue, ...) serve two purposes, as in
Mantid: `isinstance(run.getProperty("x"), FloatTimeSeriesProperty)` checks a log's kind (the check looks at
the values of livereduce's TimeSeries / Property), and constructing one builds a log to add to a run.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from livereduce.workspace.dates import DateAndTime
from livereduce.workspace.run import Property as _RunProperty
from livereduce.workspace.run import TimeSeries as _TimeSeries


class Direction:
    """Mantid's property directions."""

    Input, Output, InOut, None_ = 0, 1, 2, 3


def _value_kind(value) -> str:
    """'bool', 'int', 'float', 'str' or '' for a Python or numpy value / array (by its element type)."""
    arr = np.asarray(value)
    return {"b": "bool", "i": "int", "u": "int", "f": "float", "U": "str", "S": "str"}.get(arr.dtype.kind, "")


class _KindCheck(type):
    """isinstance(x, cls) is true for cls's own instances and for livereduce run entries of cls's kind."""

    def __instancecheck__(cls, obj) -> bool:
        if type.__instancecheck__(cls, obj):
            return True
        base, kind = getattr(cls, "_base", None), getattr(cls, "_kind", None)
        if base is None or not type.__instancecheck__(base, obj):
            return False
        value = obj.values if isinstance(obj, _TimeSeries) else obj.value
        return kind is None or _value_kind(value) == kind


def _ns(time) -> int:
    """A time as ns since the Unix epoch: DateAndTime, ISO8601 text, numpy datetime64, or int ns."""
    if isinstance(time, DateAndTime):
        return time.unix_ns
    if isinstance(time, str):
        return DateAndTime(time).unix_ns
    if isinstance(time, np.datetime64):
        return int(time.astype("datetime64[ns]").astype(np.int64))
    return int(time)


class TimeSeriesProperty(_TimeSeries, metaclass=_KindCheck):
    """A log built by a script: `p = FloatTimeSeriesProperty("temp"); p.addValue(time, 4.2)`."""

    _base = _TimeSeries
    _kind: str | None = None

    def __init__(self, name: str, unit: str = ""):
        super().__init__(name, unit)

    def addValue(self, time, value) -> None:
        self.append(_ns(time), value)

    def times_as_datetime64(self) -> np.ndarray:
        return self.times.astype("datetime64[ns]")


class FloatTimeSeriesProperty(TimeSeriesProperty):
    _kind = "float"


class Int64TimeSeriesProperty(TimeSeriesProperty):
    _kind = "int"


Int32TimeSeriesProperty = Int64TimeSeriesProperty


class StringTimeSeriesProperty(TimeSeriesProperty):
    _kind = "str"


class BoolTimeSeriesProperty(TimeSeriesProperty):
    _kind = "bool"


class PropertyWithValue(_RunProperty, metaclass=_KindCheck):
    """A single-valued property: `IntPropertyWithValue("run_number", 1234)`."""

    _base = _RunProperty
    _kind: str | None = None

    def __init__(self, name: str, value: Any = None, direction: int = Direction.Input):
        super().__init__(name, value)
        self.direction = direction


class IntPropertyWithValue(PropertyWithValue):
    _kind = "int"


class FloatPropertyWithValue(PropertyWithValue):
    _kind = "float"


class StringPropertyWithValue(PropertyWithValue):
    _kind = "str"


class BoolPropertyWithValue(PropertyWithValue):
    _kind = "bool"


# -- validators: PythonAlgorithms declare properties with them; setting a value checks it ------------------


class _Validator:
    def check(self, value) -> str:
        """An error message, or '' when the value is acceptable."""
        return ""


class StringListValidator(_Validator):
    def __init__(self, allowed=()):
        self.allowed = [str(a) for a in allowed]

    def check(self, value) -> str:
        return "" if str(value) in self.allowed else f"'{value}' is not one of {self.allowed}"


class _Bounded(_Validator):
    def __init__(self, lower=None, upper=None, exclusive: bool = False):
        self.lower, self.upper, self.exclusive = lower, upper, exclusive

    def setLower(self, v) -> None:
        self.lower = v

    def setUpper(self, v) -> None:
        self.upper = v

    def check(self, value) -> str:
        if self.lower is not None and (value <= self.lower if self.exclusive else value < self.lower):
            return f"{value} is below the lower bound {self.lower}"
        if self.upper is not None and (value >= self.upper if self.exclusive else value > self.upper):
            return f"{value} is above the upper bound {self.upper}"
        return ""


class FloatBoundedValidator(_Bounded):
    pass


class IntBoundedValidator(_Bounded):
    pass


class StringMandatoryValidator(_Validator):
    def check(self, value) -> str:
        return "" if str(value or "") else "a value is required"


class FloatArrayProperty:
    """Declared by PythonAlgorithms: `FloatArrayProperty("Params", [0.0, 1.0], direction=Direction.Input)`."""

    def __init__(self, name: str, values=(), validator=None, direction: int = Direction.Input):
        self.name, self.default, self.validator, self.direction = name, list(values), validator, direction


class IntArrayProperty(FloatArrayProperty):
    pass


class StringArrayProperty(FloatArrayProperty):
    pass


# -- PropertyManager: a named bag of properties (PropertyManagerDataService holds them) ---------------------


class _Value:
    """What `getProperty(name)` returns: Mantid's property object, whose `.value` scripts read."""

    def __init__(self, name: str, value):
        self.name, self.value = name, value

    def valueAsStr(self) -> str:
        return str(self.value)

    def __repr__(self) -> str:
        return f"Property({self.name!r}, {self.value!r})"


class PropertyManager:
    """Mantid's PropertyManager: properties by (case-insensitive) name."""

    def __init__(self, values: dict | None = None):
        self._values: dict[str, tuple[str, Any]] = {}
        for k, v in (values or {}).items():
            self.declareProperty(k, v)

    def declareProperty(self, name: str, value=None, *args, **kwargs) -> None:
        self._values[name.lower()] = (name, value)

    def setProperty(self, name: str, value) -> None:
        self._values[name.lower()] = (self._values.get(name.lower(), (name, None))[0], value)

    def existsProperty(self, name: str) -> bool:
        return name.lower() in self._values

    __contains__ = existsProperty

    def getProperty(self, name: str) -> _Value:
        try:
            real, value = self._values[name.lower()]
        except KeyError:
            raise KeyError(f"Unknown property search object {name}") from None
        return _Value(real, value)

    def getPropertyValue(self, name: str) -> str:
        return str(self.getProperty(name).value)

    def __getitem__(self, name: str) -> _Value:
        """The property (as Mantid's: scripts read `manager["tof_min"].value`)."""
        return self.getProperty(name)

    def __setitem__(self, name: str, value) -> None:
        self.setProperty(name, value)

    def keys(self) -> list[str]:
        return [real for real, _ in self._values.values()]

    def propertyCount(self) -> int:
        return len(self._values)

    def __len__(self) -> int:
        return len(self._values)


class PropertyManagerDataServiceImpl:
    """Named PropertyManagers (Mantid's PropertyManagerDataService): how SNS reductions pass settings."""

    def __init__(self) -> None:
        self._items: dict[str, PropertyManager] = {}

    def addOrReplace(self, name: str, manager) -> None:
        self._items[name] = manager if isinstance(manager, PropertyManager) else PropertyManager(manager)

    add = addOrReplace

    def retrieve(self, name: str) -> PropertyManager:
        try:
            return self._items[name]
        except KeyError:
            raise KeyError(f"'{name}' does not exist in the PropertyManagerDataService") from None

    __getitem__ = retrieve

    def doesExist(self, name: str) -> bool:
        return name in self._items

    __contains__ = doesExist

    def remove(self, name: str) -> None:
        self._items.pop(name, None)

    def clear(self) -> None:
        self._items.clear()

    def getObjectNames(self) -> list[str]:
        return sorted(self._items)

    def size(self) -> int:
        return len(self._items)

    def Instance(self) -> PropertyManagerDataServiceImpl:
        return self


PropertyManagerDataService = PropertyManagerDataServiceImpl()
