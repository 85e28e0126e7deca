"""Instruments and listener kinds: name ↔ short name ↔ facility ↔ default listener and address.

Facts from Mantid's Facilities.xml (shared/reference/mantid-livedata.md §4). A config's `listener` and
`address` override these defaults; an instrument missing here is accepted when they are given. What each kind
of listener implies (a network address, cumulative histograms, periods and spectra) is said here once.
"""

from __future__ import annotations

import difflib
import enum
from dataclasses import dataclass


class ListenerKind(enum.StrEnum):
    """The data sources; the value is the name used in configs and logs."""

    FAKE_EVENT = "fake_event"
    FAKE_HISTOGRAM = "fake_histogram"
    ADARA = "adara"
    ISIS_HISTOGRAM = "isis_histogram"
    ISIS_EVENT = "isis_event"
    KAFKA = "kafka"

    @property
    def needs_address(self) -> bool:
        """A network client (the fakes run in-process)."""
        return self in (
            ListenerKind.ADARA,
            ListenerKind.ISIS_HISTOGRAM,
            ListenerKind.ISIS_EVENT,
            ListenerKind.KAFKA,
        )

    @property
    def cumulative(self) -> bool:
        """Sends cumulative histograms, so Add accumulation would count the same neutrons again every cycle."""
        return self in (ListenerKind.ISIS_HISTOGRAM, ListenerKind.FAKE_HISTOGRAM)

    @property
    def reads_periods_and_spectra(self) -> bool:
        return self in (ListenerKind.ISIS_HISTOGRAM, ListenerKind.ISIS_EVENT, ListenerKind.FAKE_HISTOGRAM)


def refuse_add(cumulative: bool, accum_method: str) -> str | None:
    """What a source of cumulative histograms expects instead of Add accumulation (the reason it is refused),
    or None when the method is fine. Config validation and the session both ask."""
    if cumulative and str(accum_method).lower() == "add":
        return (
            "Replace or Append: this DAS sends cumulative histograms, so Add would count the same neutrons "
            "again every cycle (Mantid refuses it too)"
        )
    return None


# Mantid's listener class names, accepted so configs written for Mantid keep working.
MANTID_LISTENER_NAMES = {
    "FakeEventDataListener": ListenerKind.FAKE_EVENT,
    "SNSLiveEventDataListener": ListenerKind.ADARA,
    "ISISHistoDataListener": ListenerKind.ISIS_HISTOGRAM,
    "ISISLiveEventDataListener": ListenerKind.ISIS_EVENT,
}


def listener_kind(name: str) -> ListenerKind:
    """The kind called `name` (ours or Mantid's class name); ValueError naming the known ones."""
    if name in MANTID_LISTENER_NAMES:
        return MANTID_LISTENER_NAMES[name]
    try:
        return ListenerKind(name)
    except ValueError:
        known = ", ".join([*ListenerKind, *MANTID_LISTENER_NAMES])
        raise ValueError(f"unknown listener {name!r}; known: {known}") from None


@dataclass(frozen=True)
class Instrument:
    name: str
    short_name: str
    facility: str
    listener: ListenerKind
    address: str


def _sns(name: str, short: str, host: str) -> Instrument:
    return Instrument(name, short, "SNS", ListenerKind.ADARA, f"{host}-daq1.sns.gov:31415")


def _hfir(name: str, short: str, host: str) -> Instrument:
    return Instrument(name, short, "HFIR", ListenerKind.ADARA, f"{host}-daq1.ornl.gov:31415")


def _isis(name: str) -> Instrument:
    return Instrument(name, name, "ISIS", ListenerKind.ISIS_HISTOGRAM, f"NDX{name}:6789")


def _isis_event(name: str) -> Instrument:
    base = name.removesuffix("_EVENT")
    return Instrument(name, name, "ISIS", ListenerKind.ISIS_EVENT, f"NDX{base}:10000")


INSTRUMENTS: tuple[Instrument, ...] = (
    # TEST_LIVE: the fake DAS endpoints on this machine
    Instrument(
        "ISIS_Histogram", "ISIS_Histogram", "TEST_LIVE", ListenerKind.ISIS_HISTOGRAM, "127.0.0.1:56789"
    ),
    Instrument("ISIS_Event", "ISIS_Event", "TEST_LIVE", ListenerKind.ISIS_EVENT, "127.0.0.1:59876"),
    Instrument("ADARA_FakeEvent", "ADARA_FakeEvent", "TEST_LIVE", ListenerKind.FAKE_EVENT, ""),
    Instrument("ADARA_FileReader", "ADARA_FileReader", "TEST_LIVE", ListenerKind.ADARA, "127.0.0.1:31415"),
    Instrument("FAKE_EVENT", "FAKE_EVENT", "TEST_LIVE", ListenerKind.FAKE_EVENT, ""),
    Instrument("FAKE_HISTOGRAM", "FAKE_HISTOGRAM", "TEST_LIVE", ListenerKind.FAKE_HISTOGRAM, ""),
    # SNS
    _sns("USANS", "USANS", "bl1a"),
    _sns("NOMAD", "NOM", "bl1b"),
    _sns("SNAP", "SNAP", "bl3"),
    _sns("REF_M", "REF_M", "bl4a"),
    _sns("REF_L", "REF_L", "bl4b"),
    _sns("CNCS", "CNCS", "bl5"),
    _sns("EQ-SANS", "EQSANS", "bl6"),
    _sns("VULCAN", "VULCAN", "bl7"),
    _sns("CORELLI", "CORELLI", "bl9"),
    _sns("POWGEN", "PG3", "bl11a"),
    _sns("MANDI", "MANDI", "bl11b"),
    _sns("TOPAZ", "TOPAZ", "bl12"),
    _sns("HYSPEC", "HYS", "bl14b"),
    _sns("VISION", "VIS", "bl16b"),
    _sns("SEQUOIA", "SEQ", "bl17"),
    _sns("ARCS", "ARCS", "bl18"),
    # HFIR
    _hfir("HB2B", "HB2B", "hb2b"),
    _hfir("WAND", "HB2C", "hb2c"),
    _hfir("GPSANS", "CG2", "cg2"),
    _hfir("BIOSANS", "CG3", "cg3"),
    # ISIS (histogram DAE on 6789; event streams on 10000)
    *(
        _isis(n)
        for n in (
            "ALF",
            "ARGUS",
            "CHIPIR",
            "CRISP",
            "EMU",
            "ENGINX",
            "GEM",
            "HRPD",
            "IMAT",
            "INTER",
            "IRIS",
            "LARMOR",
            "LET",
            "LOQ",
            "MAPS",
            "MARI",
            "MERLIN",
            "MUSR",
            "NIMROD",
            "OFFSPEC",
            "OSIRIS",
            "PEARL",
            "POLARIS",
            "POLREF",
            "SANS2D",
            "SURF",
            "SXD",
            "TOSCA",
            "VESUVIO",
            "WISH",
            "ZOOM",
        )
    ),
    *(
        _isis_event(n)
        for n in ("ENGIN-X_EVENT", "MERLIN_EVENT", "LET_EVENT", "OFFSPEC_EVENT", "SANS2D_EVENT")
    ),
)

_BY_NAME = {key.upper(): inst for inst in INSTRUMENTS for key in (inst.name, inst.short_name)}


def lookup(name: str) -> Instrument:
    """The instrument called `name` (full or short name, any case); KeyError listing the closest names."""
    try:
        return _BY_NAME[str(name).upper()]
    except KeyError:
        close = difflib.get_close_matches(str(name).upper(), list(_BY_NAME), n=3, cutoff=0.5)
        hint = f"; closest known: {', '.join(_BY_NAME[c].name for c in close)}" if close else ""
        raise KeyError(f"unknown instrument {name!r}{hint}") from None


def closest(name: str) -> list[str]:
    close = difflib.get_close_matches(str(name).upper(), list(_BY_NAME), n=3, cutoff=0.5)
    return list(dict.fromkeys(_BY_NAME[c].name for c in close))


def script_names(instrument: Instrument) -> list[str]:
    """Names accepted in reduce_<NAME>_live_*.py: the short name and the full name (PG3 and POWGEN)."""
    return list(dict.fromkeys([instrument.short_name, instrument.name]))
