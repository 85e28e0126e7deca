"""CreateSampleWorkspace: a deterministic synthetic workspace with a real geometry (for tests and dry runs).

Our own instrument (documented, not Mantid's):
- L1 = SourceDistanceFromSample (10 m); the beam runs along +z, the sample at the origin.
- Bank b (1..NumBanks) is a flat square of BankPixelWidth² pixels, PixelSpacing apart, facing the sample with
  its centre at BankDistanceFromSample (5 m) and scattering angle 2θ_b = 90°·b/NumBanks, in the horizontal
  plane. Each pixel's L2, 2θ and azimuth come from its own position.
- Detector ids: bank b pixel k → b·width² + k; spectrum numbers 1..N, one pixel per spectrum.
Data: bin edges XMin..XMax step BinWidth; Y = Function at the bin centres, E = √Y (histograms, same in every
spectrum). Events: NumEvents per spectrum spread over the bins in proportion to Function (largest-remainder
rounding, so exactly NumEvents), evenly spaced within each bin; Random=True scatters them instead.
Functions (of u = (x − XMin)/(XMax − XMin)): "One Peak" 0.3 + 10·G(u; 0.5, 0.025); "Multiple Peaks"
0.3 + 6·G(u; 0.3, 0.02) + 10·G(u; 0.6, 0.02); "Flat background" 1; "Exp Decay" 10·exp(−5u);
"Powder Diffraction" 0.2 + peaks of height 3..10 at u = 0.15, 0.3, 0.45, 0.6, 0.75, 0.9 (σ 0.01).
"""

from __future__ import annotations

import numpy as np

from livereduce.algorithms.registry import OUT, Prop, algorithm
from livereduce.errors import AlgorithmError
from livereduce.workspace.events import EventColumns, EventWorkspace
from livereduce.workspace.histogram import HistogramWorkspace
from livereduce.workspace.run import Run
from livereduce.workspace.spectra import Spectra


def _g(u, c, s):
    return np.exp(-0.5 * ((u - c) / s) ** 2)


FUNCTIONS = {
    "One Peak": lambda u: 0.3 + 10 * _g(u, 0.5, 0.025),
    "Multiple Peaks": lambda u: 0.3 + 6 * _g(u, 0.3, 0.02) + 10 * _g(u, 0.6, 0.02),
    "Flat background": lambda u: np.ones_like(u),
    "Exp Decay": lambda u: 10 * np.exp(-5 * u),
    "Powder Diffraction": lambda u: (
        0.2
        + sum(
            h * _g(u, c, 0.01)
            for h, c in zip((3, 5, 10, 7, 4, 6), (0.15, 0.3, 0.45, 0.6, 0.75, 0.9), strict=True)
        )
    ),
}


def sample_spectra(num_banks: int, width: int, spacing: float, bank_distance: float, l1: float) -> Spectra:
    det, l2, tt, az = [], [], [], []
    off = (np.arange(width) - (width - 1) / 2) * spacing
    a, c = np.meshgrid(off, off, indexing="ij")
    for b in range(1, num_banks + 1):
        ang = np.deg2rad(90.0 * b / num_banks)
        u = np.array([np.sin(ang), 0.0, np.cos(ang)])
        e1 = np.array([np.cos(ang), 0.0, -np.sin(ang)])
        p = bank_distance * u + a.reshape(-1, 1) * e1 + c.reshape(-1, 1) * np.array([0.0, 1.0, 0.0])
        r = np.linalg.norm(p, axis=1)
        det.append(b * width * width + np.arange(width * width))
        l2.append(r)
        tt.append(np.arccos(np.clip(p[:, 2] / r, -1, 1)))
        az.append(np.arctan2(p[:, 1], p[:, 0]))
    return Spectra.one_to_one(
        np.concatenate(det),
        l1=l1,
        l2=np.concatenate(l2),
        two_theta=np.concatenate(tt),
        azimuthal=np.concatenate(az),
        instrument="basic_rect",
    )


def _events_per_bin(weights: np.ndarray, n: int) -> np.ndarray:
    share = weights / weights.sum() * n
    counts = np.floor(share).astype(np.int64)
    rest = n - counts.sum()
    counts[np.argsort(-(share - counts), kind="stable")[:rest]] += 1
    return counts


def create_sample(
    workspace_type="Histogram",
    function="One Peak",
    x_unit="TOF",
    xmin=0.0,
    xmax=20000.0,
    bin_width=200.0,
    num_events=1000,
    random=False,
    num_banks=2,
    bank_pixel_width=10,
    pixel_spacing=0.008,
    bank_distance=5.0,
    source_distance=10.0,
):
    if function not in FUNCTIONS:
        raise AlgorithmError(
            f"CreateSampleWorkspace: Function {function!r} is not supported by the embedded "
            f"engine; choose from {', '.join(FUNCTIONS)}"
        )
    if not (xmax > xmin and bin_width > 0):
        raise AlgorithmError("CreateSampleWorkspace: need XMax > XMin and BinWidth > 0")
    spectra = sample_spectra(
        int(num_banks),
        int(bank_pixel_width),
        float(pixel_spacing),
        float(bank_distance),
        float(source_distance),
    )
    n = len(spectra)
    nb = int(np.floor((xmax - xmin) / bin_width + 1e-9))
    edges = xmin + bin_width * np.arange(nb + 1)
    if edges[-1] < xmax - 1e-9 * bin_width:
        edges = np.append(edges, xmax)
    centres = 0.5 * (edges[:-1] + edges[1:])
    y = FUNCTIONS[function]((centres - xmin) / (xmax - xmin))
    rng = np.random.default_rng() if random else None
    run = Run()
    run.set("run_start", "2010-01-01T00:00:00Z")
    run.set("run_title", "Test Workspace")
    if workspace_type == "Histogram":
        values = np.tile(y, (n, 1))
        if rng is not None:
            values = values * rng.uniform(0.5, 1.5, values.shape)
        return HistogramWorkspace(values, values.copy(), edges, spectra, run, x_unit)
    if workspace_type != "Event":
        raise AlgorithmError(
            f"CreateSampleWorkspace: WorkspaceType must be Histogram or Event, not {workspace_type!r}"
        )
    num_events = int(num_events)
    if rng is None:
        counts = _events_per_bin(y, num_events)
        k = np.arange(num_events) - np.repeat(np.cumsum(counts) - counts, counts)
        x_one = np.repeat(edges[:-1], counts) + (k + 0.5) / np.repeat(counts, counts) * np.repeat(
            np.diff(edges), counts
        )
        x = np.tile(x_one, n)
    else:
        b = rng.choice(y.size, size=n * num_events, p=y / y.sum())
        x = edges[b] + rng.uniform(0, 1, b.size) * np.diff(edges)[b]
    index = np.repeat(np.arange(n, dtype=np.uint32), num_events)
    return EventWorkspace(spectra, EventColumns(index, x), edges, run, x_unit)


@algorithm(
    "CreateSampleWorkspace",
    [
        Prop("OutputWorkspace", kind=OUT),
        Prop("WorkspaceType", "Histogram"),
        Prop("Function", "One Peak"),
        Prop("UserDefinedFunction", ""),
        Prop("XUnit", "TOF"),
        Prop("XMin", 0.0),
        Prop("XMax", 20000.0),
        Prop("BinWidth", 200.0),
        Prop("NumEvents", 1000),
        Prop("Random", False),
        Prop("NumScanPoints", 1),
        Prop("InstrumentName", "basic_rect"),
        Prop("NumBanks", 2),
        Prop("NumMonitors", 0),
        Prop("BankPixelWidth", 10),
        Prop("PixelDiameter", 0.008),
        Prop("PixelHeight", 0.0002),
        Prop("PixelSpacing", 0.008),
        Prop("BankDistanceFromSample", 5.0),
        Prop("SourceDistanceFromSample", 10.0),
    ],
    per_member=False,
)
def _create_sample_alg(
    OutputWorkspace,
    WorkspaceType,
    Function,
    UserDefinedFunction,
    XUnit,
    XMin,
    XMax,
    BinWidth,
    NumEvents,
    Random,
    NumScanPoints,
    InstrumentName,
    NumBanks,
    NumMonitors,
    BankPixelWidth,
    PixelDiameter,
    PixelHeight,
    PixelSpacing,
    BankDistanceFromSample,
    SourceDistanceFromSample,
):
    """A synthetic histogram or event workspace with banks of pixels and a real geometry."""
    if int(NumMonitors) or int(NumScanPoints) != 1 or Function == "User Defined":
        raise AlgorithmError(
            "CreateSampleWorkspace: monitors, scan points and user-defined functions are not "
            "supported by the embedded engine"
        )
    ws = create_sample(
        WorkspaceType,
        Function,
        XUnit,
        float(XMin),
        float(XMax),
        float(BinWidth),
        NumEvents,
        bool(Random),
        NumBanks,
        BankPixelWidth,
        PixelSpacing,
        BankDistanceFromSample,
        SourceDistanceFromSample,
    )
    ws.spectra.instrument = InstrumentName
    return ws
