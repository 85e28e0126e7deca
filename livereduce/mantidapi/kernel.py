"""`mantid.kernel` for scripts: logger, Logger, config (a small ConfigService stand-in)."""

from __future__ import annotations

import os

from livereduce.mantidapi.logger import Logger, logger


class ConfigService(dict):
    """`mantid.kernel.config`: a plain key → string mapping with Mantid's accessor names."""

    def getString(self, key: str) -> str:
        return str(self.get(key, ""))

    def setString(self, key: str, value: str) -> None:
        self[key] = str(value)

    def getFacility(self) -> str:
        return self.getString("default.facility")

    def getInstrument(self) -> str:
        return self.getString("default.instrument")


config = ConfigService(
    {
        "default.facility": "SNS",
        "default.instrument": "",
        "defaultsave.directory": os.getcwd(),
        "datasearch.directories": "",
    }
)
ConfigServiceImpl = ConfigService

__all__ = ["ConfigService", "Logger", "config", "logger"]


def __getattr__(name: str):
    raise AttributeError(
        f"mantid.kernel in livereduce's embedded engine has no '{name}'; it provides "
        f"{', '.join(__all__)} (run with engine 'mantid' where Mantid is installed for more)"
    )
