"""What an instrument definition gives a reduction: `InstrumentGeometry`, frozen, arrays read-only.

Positions are in metres with the sample at the origin; angles in radians (the CLI prints degrees). Detector
arrays are sorted by detector id, which is also Mantid's default spectrum order. Monitors are kept apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from livereduce.instrument.attrs import ParameterValue
from livereduce.instrument.banks import BankLayout
from livereduce.instrument.transforms import scattering_angles

AXES = {"x": np.array([1.0, 0.0, 0.0]), "y": np.array([0.0, 1.0, 0.0]), "z": np.array([0.0, 0.0, 1.0])}


@dataclass(frozen=True)
class ReferenceFrame:
    """<defaults><reference-frame>: the axis along the beam, the one pointing up, and the handedness."""

    beam: str = "z"
    up: str = "y"
    handedness: str = "right"

    def __post_init__(self) -> None:
        if self.beam not in AXES or self.up not in AXES or self.beam == self.up:
            raise ValueError(f"reference frame: along-beam {self.beam!r} and pointing-up {self.up!r}")
        if self.handedness not in ("right", "left"):
            raise ValueError(f"reference frame: handedness {self.handedness!r}")

    def vectors(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unit vectors along the beam, up, and horizontal (the third axis: up × beam if right-handed, so x in
        the default frame)."""
        beam, up = AXES[self.beam], AXES[self.up]
        horizontal = np.cross(up, beam) if self.handedness == "right" else np.cross(beam, up)
        return beam, up, horizontal


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class InstrumentGeometry:
    name: str
    frame: ReferenceFrame
    source: np.ndarray  # (3,) as in the file (sample not subtracted); NaN if the IDF has no Source
    sample: np.ndarray  # (3,) as in the file
    det_ids: np.ndarray  # (n,) int64, sorted
    positions: np.ndarray  # (n, 3), sample at the origin
    monitor_ids: np.ndarray  # (m,) int64, sorted
    monitor_positions: np.ndarray  # (m, 3), sample at the origin
    parameters: Mapping[str, Mapping[str, ParameterValue]] = field(default_factory=dict)
    valid_from: str = ""
    valid_to: str = ""
    banks: tuple[BankLayout, ...] = ()  # rectangular panels and banks of tubes, in document order
    l1: float = field(init=False)
    l2: np.ndarray = field(init=False)
    two_theta: np.ndarray = field(init=False)  # rad
    azimuthal: np.ndarray = field(init=False)  # rad, about the beam from the horizontal axis towards up

    def __post_init__(self) -> None:
        put = object.__setattr__
        for name in ("source", "sample", "det_ids", "positions", "monitor_ids", "monitor_positions"):
            put(self, name, _frozen(getattr(self, name)))
        put(
            self,
            "parameters",
            MappingProxyType({k: MappingProxyType(dict(v)) for k, v in self.parameters.items()}),
        )
        beam, up, horizontal = self.frame.vectors()
        path = self.sample - self.source
        l1 = float(np.linalg.norm(path))
        if np.isfinite(l1) and l1 > 0:  # 2θ is measured from the source → sample direction, as Mantid does
            beam = path / l1
        l2, tt, az = scattering_angles(self.positions, beam, up, horizontal)
        put(self, "l1", l1)
        put(self, "l2", _frozen(l2))
        put(self, "two_theta", _frozen(tt))
        put(self, "azimuthal", _frozen(az))

    def __reduce__(self):
        """Pickled (the daemon → worker pipe) as its defining fields and derived arrays, its parameters as plain
        dicts (mapping proxies do not pickle). One parse_idf made is pickled as its text instead (load.py)."""
        state = {k: v for k, v in self.__dict__.items() if k != "parameters"}
        state["parameters"] = {k: dict(v) for k, v in self.parameters.items()}
        return (_rebuild, (state,))

    @property
    def n_pixels(self) -> int:
        return int(self.det_ids.size)

    def index_of(self, ids) -> np.ndarray:
        """Indices into the detector arrays of these detector ids; KeyError naming the first unknown one."""
        want = np.asarray(ids, dtype=np.int64).ravel()
        pos = np.searchsorted(self.det_ids, want)
        ok = pos < self.det_ids.size
        ok[ok] = self.det_ids[pos[ok]] == want[ok]
        if not ok.all():
            raise KeyError(f"no detector id {int(want[~ok][0])} in {self.name or 'the instrument'}")
        return pos

    def bank(self, name: str) -> BankLayout | None:
        """The layout of the bank called `name` (a component's name in the IDF), or None."""
        return next((b for b in self.banks if name in b.names), None)

    def parameter(self, name: str, component: str | None = None) -> ParameterValue | None:
        """A <parameter> of `component` (a component name), else of the instrument; None if neither has it."""
        for owner in (component, self.name):
            if owner is not None and name in self.parameters.get(owner, {}):
                return self.parameters[owner][name]
        return None

    def number_parameter(self, name: str, component: str | None = None) -> list[float]:
        """As Mantid's getNumberParameter: [value], or [] when absent or not a number."""
        v = self.parameter(name, component)
        return [float(v)] if isinstance(v, int | float) and not isinstance(v, bool) else []

    def string_parameter(self, name: str, component: str | None = None) -> list[str]:
        """As Mantid's getStringParameter: [value], or [] when absent or not a string."""
        v = self.parameter(name, component)
        return [v] if isinstance(v, str) else []


def _rebuild(state: dict) -> InstrumentGeometry:
    """An InstrumentGeometry from its pickled state, without computing its angles again."""
    g = object.__new__(InstrumentGeometry)
    for k, v in state.items():
        if isinstance(v, np.ndarray):
            v.setflags(write=False)
        object.__setattr__(g, k, v)
    params = state["parameters"]
    object.__setattr__(g, "parameters", MappingProxyType({k: MappingProxyType(v) for k, v in params.items()}))
    return g
