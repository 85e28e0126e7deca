"""`mantid.kernel` for scripts: logger, config (ConfigService), DateAndTime, property types and validators."""

from __future__ import annotations

import os

from livereduce.mantidapi.logger import Logger, logger
from livereduce.mantidapi.properties import (
    BoolPropertyWithValue,
    BoolTimeSeriesProperty,
    Direction,
    FloatArrayProperty,
    FloatBoundedValidator,
    FloatPropertyWithValue,
    FloatTimeSeriesProperty,
    Int32TimeSeriesProperty,
    Int64TimeSeriesProperty,
    IntArrayProperty,
    IntBoundedValidator,
    IntPropertyWithValue,
    PropertyManager,
    PropertyManagerDataService,
    PropertyWithValue,
    StringArrayProperty,
    StringListValidator,
    StringMandatoryValidator,
    StringPropertyWithValue,
    StringTimeSeriesProperty,
    TimeSeriesProperty,
)
from livereduce.workspace.dates import DateAndTime, time_duration


class _Info(str):
    """A facility or instrument as ConfigService returns it: a name with Mantid's accessors."""

    def name(self) -> str:
        return str(self)

    def shortName(self) -> str:
        return str(self)


class ConfigServiceImpl(dict):
    """`mantid.kernel.config` (also `ConfigService`, the same instance, as in Mantid): key → string."""

    def __missing__(self, key: str) -> str:
        return ""  # Mantid answers an unknown key with an empty string

    def Instance(self) -> ConfigServiceImpl:
        return self

    def getString(self, key: str, use_cache: bool = True) -> str:
        return str(self[key])

    def setString(self, key: str, value: str) -> None:
        self[key] = str(value)

    def hasProperty(self, key: str) -> bool:
        return key in self

    def getFacility(self, name: str | None = None) -> _Info:
        return _Info(name or self["default.facility"])

    def getInstrument(self, name: str | None = None) -> _Info:
        return _Info(name or self["default.instrument"])

    def setFacility(self, name: str) -> None:
        self["default.facility"] = str(name)

    def getDataSearchDirs(self) -> list[str]:
        """`datasearch.directories` split on ';', each ending with '/' as Mantid returns them."""
        dirs = [d.strip() for d in self["datasearch.directories"].split(";") if d.strip()]
        return [d if d.endswith("/") else d + "/" for d in dirs]

    def setDataSearchDirs(self, dirs) -> None:
        self["datasearch.directories"] = dirs if isinstance(dirs, str) else ";".join(dirs)

    def appendDataSearchDir(self, path: str) -> None:
        self.setDataSearchDirs([*self.getDataSearchDirs(), str(path)])

    def getUserFilename(self) -> str:
        return ""


config = ConfigServiceImpl(
    {
        "default.facility": "SNS",
        "default.instrument": "",
        "defaultsave.directory": os.getcwd(),
        "datasearch.directories": "",
    }
)
ConfigService = config

__all__ = [
    "BoolPropertyWithValue",
    "BoolTimeSeriesProperty",
    "ConfigService",
    "ConfigServiceImpl",
    "DateAndTime",
    "Direction",
    "FloatArrayProperty",
    "FloatBoundedValidator",
    "FloatPropertyWithValue",
    "FloatTimeSeriesProperty",
    "Int32TimeSeriesProperty",
    "Int64TimeSeriesProperty",
    "IntArrayProperty",
    "IntBoundedValidator",
    "IntPropertyWithValue",
    "Logger",
    "PropertyManager",
    "PropertyManagerDataService",
    "PropertyWithValue",
    "StringArrayProperty",
    "StringListValidator",
    "StringMandatoryValidator",
    "StringPropertyWithValue",
    "StringTimeSeriesProperty",
    "TimeSeriesProperty",
    "config",
    "logger",
    "time_duration",
]


def __getattr__(name: str):
    raise AttributeError(
        f"mantid.kernel in livereduce's embedded engine has no '{name}'; it provides "
        f"{', '.join(__all__)} (run with engine 'mantid' where Mantid is installed for more)"
    )
