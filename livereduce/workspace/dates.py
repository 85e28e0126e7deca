"""Mantid's DateAndTime (ns since 1990-01-01T00:00:00 UTC) and the time_duration of a difference."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import numpy as np

_ZONE = re.compile(r"[+-]\d\d:?\d\d$")  # a UTC offset at the end of ISO8601 text
_EPOCH_1990_NS = 631_152_000 * 1_000_000_000  # Mantid's DateAndTime counts ns from 1990-01-01T00:00:00


class time_duration:
    """The difference of two DateAndTime values."""

    def __init__(self, ns: int):
        self._ns = int(ns)

    def total_nanoseconds(self) -> int:
        return self._ns

    def total_microseconds(self) -> int:
        return self._ns // 1_000

    def total_milliseconds(self) -> int:
        return self._ns // 1_000_000

    def total_seconds(self) -> float:
        return self._ns / 1e9


class DateAndTime:
    """Mantid's DateAndTime: from ISO8601 text (UTC when no zone is given) or ns since 1990-01-01."""

    def __init__(self, value):
        if isinstance(value, DateAndTime):
            self.unix_ns = value.unix_ns
        elif isinstance(value, str):
            text = value.strip().replace(" ", "T")
            stamp = np.datetime64(_to_utc(text) if _ZONE.search(text) else text.rstrip("Z"), "ns")
            self.unix_ns = int(stamp.astype(np.int64))
        elif isinstance(value, np.datetime64):
            self.unix_ns = int(value.astype("datetime64[ns]").astype(np.int64))
        else:
            self.unix_ns = int(value) + _EPOCH_1990_NS

    @classmethod
    def from_unix_ns(cls, ns: int) -> DateAndTime:
        """From ns since 1970-01-01 (livereduce's time base)."""
        return cls(int(ns) - _EPOCH_1990_NS)

    @classmethod
    def maximum(cls) -> DateAndTime:
        return cls(np.iinfo(np.int64).max - _EPOCH_1990_NS)

    @classmethod
    def minimum(cls) -> DateAndTime:
        return cls(np.iinfo(np.int64).min + 1)

    def totalNanoseconds(self) -> int:
        return self.unix_ns - _EPOCH_1990_NS

    def total_nanoseconds(self) -> int:
        return self.totalNanoseconds()

    def toISO8601String(self) -> str:
        text = str(np.datetime64(self.unix_ns, "ns"))
        return text.rstrip("0").rstrip(".") if "." in text else text

    def to_datetime64(self) -> np.datetime64:
        return np.datetime64(self.unix_ns, "ns")

    def __str__(self) -> str:
        return self.toISO8601String()

    def __repr__(self) -> str:
        return f"DateAndTime('{self.toISO8601String()}')"

    def __sub__(self, other):
        if isinstance(other, DateAndTime):
            return time_duration(self.unix_ns - other.unix_ns)
        return DateAndTime(self.totalNanoseconds() - _duration_ns(other))

    def __add__(self, other):
        return DateAndTime(self.totalNanoseconds() + _duration_ns(other))

    def __eq__(self, other) -> bool:
        return isinstance(other, DateAndTime) and self.unix_ns == other.unix_ns

    def __lt__(self, other) -> bool:
        return self.unix_ns < DateAndTime(other).unix_ns

    def __le__(self, other) -> bool:
        return self.unix_ns <= DateAndTime(other).unix_ns

    def __gt__(self, other) -> bool:
        return self.unix_ns > DateAndTime(other).unix_ns

    def __ge__(self, other) -> bool:
        return self.unix_ns >= DateAndTime(other).unix_ns

    def __hash__(self) -> int:
        return hash(self.unix_ns)


def _duration_ns(d) -> int:
    return d.total_nanoseconds() if isinstance(d, time_duration) else int(d)


def _to_utc(text: str) -> str:
    """ISO text with a +hh:mm offset → naive UTC text numpy can read."""
    parsed = datetime.fromisoformat(text)
    return parsed.astimezone(UTC).replace(tzinfo=None).isoformat()
