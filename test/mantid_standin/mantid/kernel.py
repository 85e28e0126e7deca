"""STAND-IN for `mantid.kernel`, for livereduce's tests only: this is not Mantid.

Written from Mantid's documentation: `ConfigService` (a singleton read and written like a dict of the
properties file's keys; `setLogLevel`; `getInstrument`/`getFacility`/`setFacility`), the `Logger` class with
Poco's priorities (fatal, critical, error, warning, notice, information, debug, trace) and the module's
`logger`. Where messages go follows `logging.channels.consoleChannel.class`: `PythonLoggingChannel` hands each
message's text to Python's `logging.getLogger("Mantid")` at the documented level mapping (fatal/critical 50,
error 40, warning 30, notice/information 20, debug/trace 10); any other channel writes to stderr.
"""

from __future__ import annotations

import logging
import sys
import threading

# Poco priorities, most to least severe (a message is shown when its priority ≤ the root level's)
PRIORITIES = {
    "fatal": 1,
    "critical": 2,
    "error": 3,
    "warning": 4,
    "notice": 5,
    "information": 6,
    "debug": 7,
    "trace": 8,
}
_PYTHON_LEVEL = {1: 50, 2: 50, 3: 40, 4: 30, 5: 20, 6: 20, 7: 10, 8: 10}

# Live-data instruments by facility (Mantid's Facilities.xml, <livedata> entries only; a subset)
FACILITIES: dict[
    str, dict[str, tuple[str, str, str]]
] = {  # facility → name → (short name, address, listener)
    "TEST_LIVE": {
        "ISIS_Histogram": ("ISIS_Histogram", "127.0.0.1:56789", "ISISHistoDataListener"),
        "ISIS_Event": ("ISIS_Event", "127.0.0.1:59876", "ISISLiveEventDataListener"),
        "ADARA_FileReader": ("ADARA_FileReader", "127.0.0.1:0", "FileEventDataListener"),
        "ADARA_FakeEvent": ("ADARA_FakeEvent", "127.0.0.1:0", "FakeEventDataListener"),
        "ISIS_Kafka_Event": ("ISIS_Kafka_Event", "sakura:9092", "KafkaEventListener"),
    },
    "SNS": {
        "POWGEN": ("PG3", "bl11a-daq1.sns.gov:31415", "SNSLiveEventDataListener"),
        "NOMAD": ("NOM", "bl1b-daq1.sns.gov:31415", "SNSLiveEventDataListener"),
        "CNCS": ("CNCS", "bl5-daq1.sns.gov:31415", "SNSLiveEventDataListener"),
        "ARCS": ("ARCS", "bl18-daq1.sns.gov:31415", "SNSLiveEventDataListener"),
    },
    "ISIS": {
        "MUSR": ("MUSR", "NDXMUSR:6789", "ISISHistoDataListener"),
        "LET_EVENT": ("LET_EVENT", "NDXLET_EVENT:10000", "ISISLiveEventDataListener"),
    },
}


class FacilityInfo:
    def __init__(self, name: str):
        self._name = name

    def name(self) -> str:
        return self._name


class InstrumentInfo:
    def __init__(self, name: str, facility: str):
        self._name, self._facility = name, facility
        self._short, self._address, self._listener = FACILITIES[facility][name]

    def name(self) -> str:
        return self._name

    def shortName(self) -> str:
        return self._short

    def facility(self) -> FacilityInfo:
        return FacilityInfo(self._facility)

    def liveListener(self) -> str:
        return self._listener

    def liveDataAddress(self) -> str:
        return self._address

    def __str__(self) -> str:
        return self._name


class ConfigServiceImpl:
    """The properties (`config["key"]`), the log level and the default facility."""

    def __init__(self):
        self._lock = threading.Lock()
        self._props: dict[str, str] = {
            "default.facility": "ISIS",
            "logging.loggers.root.level": "notice",
            "logging.channels.consoleChannel.class": "ConsoleChannel",
            "fakeeventdatalistener.datarate": "200",
            "fakeeventdatalistener.endrunevery": "0",
            "fakeeventdatalistener.notyettimes": "0",
        }

    def Instance(self) -> ConfigServiceImpl:
        return self

    def __getitem__(self, key: str) -> str:
        with self._lock:
            return self._props.get(key, "")

    def __setitem__(self, key: str, value) -> None:
        with self._lock:
            self._props[key] = str(value)

    def __contains__(self, key: str) -> bool:
        return key in self._props

    def getString(self, key: str) -> str:
        return self[key]

    def setString(self, key: str, value) -> None:
        self[key] = value

    def setLogLevel(self, level, quiet: bool = False) -> None:
        """A Poco priority number (0–8; 0 none) or a level name ("debug", "information", "warning", …)."""
        if isinstance(level, str):
            if level.lower() not in PRIORITIES:
                raise ValueError(f"Unknown log level: {level}")
            name = level.lower()
        else:
            number = int(level)
            if not 0 <= number <= 8:
                raise ValueError(f"Log level must be 0-8, not {number}")
            name = next((n for n, p in PRIORITIES.items() if p == number), "none")
        self["logging.loggers.root.level"] = name
        if not quiet:
            Logger("ConfigService").information(f"logging set to {name} priority")

    def _root_priority(self) -> int:
        return PRIORITIES.get(self["logging.loggers.root.level"].lower(), 0)

    def getFacility(self) -> FacilityInfo:
        return FacilityInfo(self["default.facility"])

    def setFacility(self, name: str) -> None:
        if name not in FACILITIES:
            raise RuntimeError(f"Failed to find facility {name}")
        self["default.facility"] = name

    def getInstrument(self, name: str | None = None) -> InstrumentInfo:
        """The instrument `name` (full or short) in any facility, default facility first."""
        name = name or self["default.instrument"]
        order = [self["default.facility"], *[f for f in FACILITIES if f != self["default.facility"]]]
        for facility in order:
            for full, (short, _, _) in FACILITIES[facility].items():
                if name.upper() in (full.upper(), short.upper()):
                    return InstrumentInfo(full, facility)
        raise RuntimeError(f"FacilityInfo search object {name} not found")


ConfigService = ConfigServiceImpl()
config = ConfigService


class Logger:
    """Mantid's named logger: one method per Poco priority."""

    def __init__(self, name: str):
        self._name = name

    def _log(self, priority: int, message: str) -> None:
        _dispatch(priority, self._name, str(message))

    def fatal(self, message: str) -> None:
        self._log(1, message)

    def error(self, message: str) -> None:
        self._log(3, message)

    def warning(self, message: str) -> None:
        self._log(4, message)

    def notice(self, message: str) -> None:
        self._log(5, message)

    def information(self, message: str) -> None:
        self._log(6, message)

    def debug(self, message: str) -> None:
        self._log(7, message)


def _dispatch(priority: int, source: str, text: str) -> None:
    if priority > ConfigService._root_priority():
        return
    if ConfigService["logging.channels.consoleChannel.class"] == "PythonLoggingChannel":
        logging.getLogger("Mantid").log(_PYTHON_LEVEL[priority], text)  # the text only, as Mantid's channel
    else:
        sys.stderr.write(f"{source}-[{priority}] {text}\n")


logger = Logger("Python")

__all__ = ["ConfigService", "FacilityInfo", "InstrumentInfo", "Logger", "config", "logger"]
