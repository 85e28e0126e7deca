"""A known powder sample for the fake SMS (`livereduce fake-adara --idf FILE --powder silicon`): its Bragg peaks'
d-spacings, computed from the lattice, and events drawn from them as a time-of-flight diffractometer records
them.

Physics (textbook; the numbers are ours to choose where it says so):
- Silicon and diamond have the diamond structure (space group Fd-3m, cubic, 8 atoms per cell). A reflection
  (h k l) is allowed when h, k, l are all odd, or all even with h + k + l divisible by 4; its structure factor is
  |F|² = 32 b² (all odd) or 64 b² (all even). Its spacing is d = a / sqrt(h² + k² + l²).
- A peak's weight (our choice, a plain one): multiplicity × |F|², the multiplicity counted as the number of
  integer (h, k, l) with the same h² + k² + l² (333 and 511 share N = 27 and add up).
- Lattice constants: silicon a = 5.431020511 Å (CODATA 2018), diamond a = 3.56679 Å.
- Each event: a peak drawn by weight among those the pixel can see, d broadened by a Gaussian of relative width
  `resolution` (our choice: σ_d/d = 0.0025, POWGEN-like), TOF = DIFC·d with DIFC = 2 m_n (L1 + L2) sinθ / h of
  the pixel's geometry. A pixel sees a peak when its wavelength λ = 2 d sinθ lies in the band the choppers pass
  (our choice: POWGEN's 60 Hz frame around 1.066 Å, [0.536, 1.596] Å).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

LATTICE = {"silicon": 5.431020511, "diamond": 3.56679}  # Å


def diamond_structure_peaks(a: float, d_min: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(d, weight, N = h²+k²+l²) of the allowed reflections with d ≥ d_min, by decreasing d."""
    n_max = int(np.floor((a / d_min) ** 2))
    r = int(np.ceil(np.sqrt(n_max)))
    grid = np.meshgrid(*(np.arange(-r, r + 1),) * 3, indexing="ij")
    h, k, l = (axis.ravel() for axis in grid)  # noqa: E741 - Miller indices
    n = h * h + k * k + l * l
    odd = (h % 2 != 0) & (k % 2 != 0) & (l % 2 != 0)
    even = (h % 2 == 0) & (k % 2 == 0) & (l % 2 == 0) & ((h + k + l) % 4 == 0)
    keep = (odd | even) & (n > 0) & (n <= n_max)
    f2 = np.where(odd, 32.0, 64.0)[keep]
    weights = np.bincount(n[keep], weights=f2, minlength=n_max + 1)
    ns = np.flatnonzero(weights)
    return a / np.sqrt(ns), weights[ns], ns


@dataclass
class PowderSample:
    name: str = "silicon"
    resolution: float = 0.0025  # σ_d / d
    band: tuple[float, float] = (0.536, 1.596)  # Å
    d_min: float = 0.6  # Å: the shortest spacing generated
    d: np.ndarray = field(init=False)
    weights: np.ndarray = field(init=False)
    n: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        if self.name not in LATTICE:
            raise ValueError(f"powder sample {self.name!r}: known are {', '.join(LATTICE)}")
        self.d, self.weights, self.n = diamond_structure_peaks(LATTICE[self.name], self.d_min)

    def visible(self, sin_theta: np.ndarray) -> np.ndarray:
        """bool [pixels, peaks]: λ = 2 d sinθ of each peak at each pixel lies in the band."""
        lam = 2.0 * np.outer(sin_theta, self.d)
        return (lam >= self.band[0]) & (lam <= self.band[1])

    def draw_d(self, rng: np.random.Generator, sin_theta: np.ndarray) -> np.ndarray:
        """One d per event (its pixel's sinθ given); NaN for an event whose pixel sees no peak. Peaks are drawn
        by weight among those the pixel sees (inverse CDF over each pixel's visible weights)."""
        seen = self.visible(sin_theta) * self.weights  # [events, peaks]
        cdf = np.cumsum(seen, axis=1)
        total = cdf[:, -1]
        u = rng.random(sin_theta.size) * total
        k = np.minimum((cdf < u[:, None]).sum(axis=1), self.d.size - 1)
        d = self.d[k] * (1.0 + self.resolution * rng.standard_normal(sin_theta.size))
        return np.where(total > 0, d, np.nan)
