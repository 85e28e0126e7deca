"""PDLoadCharacterizations and PDDetermineCharacterizations: which vanadium, container and d/TOF ranges go with
a run, chosen by its chopper frequency and centre wavelength (how SNS powder reductions configure
AlignAndFocusPowder).

Formats (Mantid's documentation; own code):
- Classic characterization file: a first line `Instrument parameter file: NAME`, then focus positions
  `bank L2 polar [azimuthal]` up to a line `L1 <primary flight path>`; then, '#' lines skipped, one row per
  setting: `frequency wavelength bank vanadium container vanadium_background d_min d_max tof_min tof_max
  [wavelength_min wavelength_max]` (d_min/d_max may be comma lists, one per focused spectrum).
- `version=1` file: a header `freq wl van van_back mt_env mt_instr <container names…>`, then rows keyed by
  frequency and wavelength that set the run numbers of the matching rows, and one column per sample
  container (spaces removed from the name).
- Matching (PDDetermineCharacterizations): frequency and wavelength are each "close enough" when they differ
  by less than 5 % of their mean. Frequency is the first non-zero of the logs FrequencyLogNames, wavelength of
  WaveLengthLogNames (a time series gives its time average, else its mean).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from livereduce.algorithms._util import float_list, int_list
from livereduce.algorithms.powder_tables import TableWorkspace
from livereduce.algorithms.registry import IN, OUT, OUT_VALUE, Prop, algorithm
from livereduce.errors import AlgorithmError

log = logging.getLogger(__name__)

COLUMNS = [
    ("frequency", "double"),
    ("wavelength", "double"),
    ("bank", "int"),
    ("container", "str"),
    ("vanadium", "str"),
    ("vanadium_background", "str"),
    ("empty_environment", "str"),
    ("empty_instrument", "str"),
    ("d_min", "str"),
    ("d_max", "str"),
    ("tof_min", "double"),
    ("tof_max", "double"),
    ("wavelength_min", "double"),
    ("wavelength_max", "double"),
]
_NAMES = [n for n, _ in COLUMNS]
DEFAULT_PROPERTIES = "__pd_reduction_properties"


def close_enough(a: float, b: float) -> bool:
    """Equal, or within 5 % of their mean."""
    if a == b:
        return True
    return abs(a - b) * 2 / abs(a + b) < 0.05 if (a + b) != 0 else False


class Characterizations:
    """What the files say: the focus positions and the rows of the table."""

    def __init__(self) -> None:
        self.iparm = ""
        self.l1 = 0.0
        self.spectra: list[int] = []
        self.l2: list[float] = []
        self.polar: list[float] = []
        self.azimuthal: list[float] = []
        self.rows: list[dict] = []
        self.extra: list[str] = []  # container columns of version=1 files

    def read(self, path: str) -> None:
        try:
            lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as exc:
            raise AlgorithmError(f"PDLoadCharacterizations: cannot read '{path}': {exc}") from None
        body = [ln.strip() for ln in lines if ln.strip()]
        if not body:
            raise AlgorithmError(f"PDLoadCharacterizations: '{path}' is empty")
        if body[0].lower().startswith("version=1"):
            self._read_version1(path, body[1:])
        else:
            self._read_classic(path, body)

    def _bad(self, path: str, line: str, what: str):
        return AlgorithmError(f"PDLoadCharacterizations: {path}: {what}: {line!r}")

    def _read_classic(self, path: str, body: list[str]) -> None:
        k = 0
        if body[0].startswith("Instrument parameter file:"):
            self.iparm = body[0].split(":", 1)[1].strip()
            k = 1
            while k < len(body) and not body[k].startswith("#"):
                cols = body[k].split()
                if cols[0] == "L1":
                    self.l1 = float(cols[1])
                    k += 1
                    break
                if len(cols) < 3:
                    raise self._bad(path, body[k], "expected 'bank L2 polar [azimuthal]'")
                self.spectra.append(int(cols[0]))
                self.l2.append(float(cols[1]))
                self.polar.append(float(cols[2]))
                self.azimuthal.append(float(cols[3]) if len(cols) > 3 else 0.0)
                k += 1
        for line in body[k:]:
            if line.startswith("#"):
                continue
            cols = line.split()
            if len(cols) < 10:
                raise self._bad(path, line, "expected at least 10 columns (frequency … tof_max)")
            try:
                row = {
                    "frequency": float(cols[0]),
                    "wavelength": float(cols[1]),
                    "bank": int(cols[2]),
                    "vanadium": cols[3],
                    "container": cols[4],
                    "vanadium_background": cols[5],
                    "empty_environment": "0",
                    "empty_instrument": "0",
                    "d_min": cols[6],
                    "d_max": cols[7],
                    "tof_min": float(cols[8]),
                    "tof_max": float(cols[9]),
                    "wavelength_min": float(cols[10]) if len(cols) > 10 else 0.0,
                    "wavelength_max": float(cols[11]) if len(cols) > 11 else 0.0,
                }
                float_list(row["d_min"]), float_list(row["d_max"])
            except (ValueError, AlgorithmError):
                raise self._bad(path, line, "unreadable number") from None
            self.rows.append(row)

    def _read_version1(self, path: str, body: list[str]) -> None:
        header = body[0].split()
        if header[:6] != ["freq", "wl", "van", "van_back", "mt_env", "mt_instr"]:
            raise self._bad(path, body[0], "expected 'freq wl van van_back mt_env mt_instr …'")
        extra = header[6:]
        self.extra += [c for c in extra if c not in self.extra]
        for line in body[1:]:
            if line.startswith("#"):
                continue
            cols = line.split()
            if len(cols) != len(header):
                raise self._bad(path, line, f"expected {len(header)} columns")
            freq, wl = float(cols[0]), float(cols[1])
            update = {
                "vanadium": cols[2],
                "vanadium_background": cols[3],
                "empty_environment": cols[4],
                "empty_instrument": cols[5],
                **dict(zip(extra, cols[6:], strict=True)),
            }
            rows = [
                r
                for r in self.rows
                if close_enough(r["frequency"], freq) and close_enough(r["wavelength"], wl)
            ]
            if not rows:
                rows = [{**dict.fromkeys(_NAMES, "0"), "frequency": freq, "wavelength": wl, "bank": 1}]
                for key in ("tof_min", "tof_max", "wavelength_min", "wavelength_max"):
                    rows[0][key] = 0.0
                self.rows.append(rows[0])
            for r in rows:
                r.update(update)

    def read_exp_ini(self, path: str) -> None:
        """NOMAD's exp.ini: `Vana N`, `VanaBg N` and `MTc N` lines set every row's vanadium,
        vanadium_background and container (other lines, such as Dia or the optional section, are ignored)."""
        try:
            lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as exc:
            raise AlgorithmError(
                f"PDLoadCharacterizations: cannot read ExpIniFilename '{path}': {exc}"
            ) from None
        keys = {"Vana": "vanadium", "VanaBg": "vanadium_background", "MTc": "container"}
        for line in lines:
            cols = line.split()
            if len(cols) >= 2 and cols[0] in keys:
                for row in self.rows:
                    row[keys[cols[0]]] = cols[1]

    def table(self) -> TableWorkspace:
        cols = COLUMNS + [(c, "str") for c in self.extra]
        return TableWorkspace(cols, [[r.get(n, "0") for n, _ in cols] for r in self.rows])


@algorithm(
    "PDLoadCharacterizations",
    [
        Prop("Filename"),
        Prop("ExpIniFilename", ""),
        Prop("OutputWorkspace", kind=OUT),
        Prop("IParmFilename", "", kind=OUT_VALUE),
        Prop("PrimaryFlightPath", 0.0, kind=OUT_VALUE),
        Prop("SpectrumIDs", None, kind=OUT_VALUE),
        Prop("L2", None, kind=OUT_VALUE),
        Prop("Polar", None, kind=OUT_VALUE),
        Prop("Azimuthal", None, kind=OUT_VALUE),
    ],
    per_member=False,
)
def _load(Filename, ExpIniFilename, OutputWorkspace):
    """Read characterization files (classic and version=1, comma-separated) into a table and focus positions."""
    c = Characterizations()
    names = Filename if isinstance(Filename, list | tuple) else str(Filename).split(",")
    for name in [str(n).strip() for n in names if str(n).strip()]:
        c.read(name)
    if ExpIniFilename:
        c.read_exp_ini(str(ExpIniFilename))
    return {
        "OutputWorkspace": c.table(),
        "IParmFilename": c.iparm,
        "PrimaryFlightPath": c.l1,
        "SpectrumIDs": list(c.spectra),
        "L2": list(c.l2),
        "Polar": list(c.polar),
        "Azimuthal": list(c.azimuthal),
    }


def log_value(run, names: str | list[str]) -> float:
    """The first non-zero of these logs (a series: its time average, else its mean); 0 when none is."""
    for name in names.split(",") if isinstance(names, str) else names:
        name = name.strip()
        if not name or not run.hasProperty(name):
            continue
        p = run.getProperty(name)
        v = p.value
        if isinstance(v, np.ndarray | list | tuple):
            arr = np.asarray(v, float)
            if not arr.size:
                continue
            try:
                value = float(p.timeAverageValue())
            except Exception:
                value = float(arr.mean())
        else:
            try:
                value = float(v)
            except (TypeError, ValueError):
                continue
        if np.isfinite(value) and value != 0:
            return value
    return 0.0


def _runs(value) -> list[int]:
    """A run-number cell ('0', '12345', '1,2') as a list."""
    try:
        return int_list(str(value).strip() or "0", "run numbers") or [0]
    except AlgorithmError:
        return [0]


def _overriding_runs(value, key: str) -> list[int]:
    """An override property's run numbers: an int, a list, or text '0', '-1', '123,124' (negatives allowed)."""
    if isinstance(value, int | np.integer):
        return [int(value)]
    if isinstance(value, str):
        try:
            return [int(v) for v in value.replace(" ", "").split(",") if v]
        except ValueError:
            raise AlgorithmError(
                f"PDDetermineCharacterizations: {key} {value!r} is not a list of run numbers"
            ) from None
    return [int(v) for v in value]


def determine(table: TableWorkspace | None, run, freq_logs: str, wl_logs: str, overrides: dict) -> dict:
    """The reduction properties for `run`: the matching row's values, then the overrides (0: keep, -1: zero)."""
    props: dict = {
        "frequency": 0.0,
        "wavelength": 0.0,
        "bank": 1,
        "vanadium": [0],
        "vanadium_background": [0],
        "container": [0],
        "empty_environment": [0],
        "empty_instrument": [0],
        "d_min": [],
        "d_max": [],
        "tof_min": 0.0,
        "tof_max": 0.0,
        "wavelength_min": 0.0,
        "wavelength_max": 0.0,
    }
    freq = log_value(run, freq_logs) if run is not None else 0.0
    wl = log_value(run, wl_logs) if run is not None else 0.0
    row = None
    if table is not None and table.rowCount():
        if freq and wl:
            hits = [
                table.row(i)
                for i in range(table.rowCount())
                if close_enough(float(table.cell(i, "frequency")), freq)
                and close_enough(float(table.cell(i, "wavelength")), wl)
            ]
            row = hits[0] if hits else None
            if row is None:
                log.warning(
                    "PDDetermineCharacterizations: no characterization row for %g Hz and %g Å", freq, wl
                )
        elif table.rowCount() == 1:  # one row: it applies whatever the logs say (Mantid does the same)
            row = table.row(0)
        else:
            log.warning("PDDetermineCharacterizations: frequency or wavelength not in the run's logs")
    if row is not None:
        props.update(
            frequency=float(row["frequency"]),
            wavelength=float(row["wavelength"]),
            bank=int(row["bank"]),
            d_min=float_list(str(row["d_min"])),
            d_max=float_list(str(row["d_max"])),
            **{k: float(row[k]) for k in ("tof_min", "tof_max", "wavelength_min", "wavelength_max")},
        )
        for key in ("vanadium", "vanadium_background", "container", "empty_environment", "empty_instrument"):
            props[key] = _runs(row.get(key, "0"))
        container = (
            run.getProperty("SampleContainer").value
            if run is not None and run.hasProperty("SampleContainer")
            else None
        )
        if container is not None and str(container).replace(" ", "") in row:
            props["container"] = _runs(row[str(container).replace(" ", "")])
    for key, value in overrides.items():
        runs = _overriding_runs(value, key)
        if runs and runs[0] > 0:
            props[key] = runs
        elif runs and runs[0] < 0:
            props[key] = [0]
    return props


@algorithm(
    "PDDetermineCharacterizations",
    [
        Prop("InputWorkspace", None, kind=IN, optional_ws=True),
        Prop("Characterizations", None, kind=IN, optional_ws=True),
        Prop("ReductionProperties", DEFAULT_PROPERTIES),
        Prop("BackRun", "0"),
        Prop("NormRun", "0"),
        Prop("NormBackRun", "0"),
        Prop("EmptyEnv", "0"),
        Prop("EmptyInstr", "0"),
        Prop("FrequencyLogNames", "SpeedRequest1,Speed1,frequency,skf1.speed"),
        Prop("WaveLengthLogNames", "LambdaRequest,lambda,skf12.lambda,BL1B:Det:TH:BL:Lambda"),
    ],
    per_member=False,
)
def _determine(
    InputWorkspace,
    Characterizations,
    ReductionProperties,
    BackRun,
    NormRun,
    NormBackRun,
    EmptyEnv,
    EmptyInstr,
    FrequencyLogNames,
    WaveLengthLogNames,
):
    """Choose the characterization row matching the run's frequency and wavelength into a PropertyManager."""
    from livereduce.mantidapi.properties import PropertyManager, PropertyManagerDataService

    run = InputWorkspace.getRun() if InputWorkspace is not None else None
    overrides = {
        "container": BackRun,
        "vanadium": NormRun,
        "vanadium_background": NormBackRun,
        "empty_environment": EmptyEnv,
        "empty_instrument": EmptyInstr,
    }
    props = determine(Characterizations, run, FrequencyLogNames, WaveLengthLogNames, overrides)
    PropertyManagerDataService.addOrReplace(str(ReductionProperties), PropertyManager(props))
    return {}
