"""The geometry arithmetic of instrument definitions: rotations, spherical positions, flight paths and angles.

Pure numpy, no XML. Conventions (Mantid's IDF, facts of the format):

- A component's frame is placed in its parent's by a rotation R and a translation t: a point p given in the
  component's frame is R @ p + t in the parent's. A block of points (n, 3) maps as p @ R.T + t.
- Rotations compose intrinsically: a second rotation turns the already-rotated frame, so R = R1 @ R2.
- Spherical r, t, p are fixed-axis: t is the polar angle from +z, p the azimuth from +x towards +y, whatever
  the reference frame (x = r sin t cos p, y = r sin t sin p, z = r cos t).
"""

from __future__ import annotations

import numpy as np

IDENTITY = np.eye(3)
IDENTITY.setflags(write=False)


def rotation(angle_rad: float, axis) -> np.ndarray:
    """The matrix turning a frame by `angle_rad` (right-handed, counter-clockwise seen from the axis' tip)
    about `axis` (any non-zero length)."""
    a = np.asarray(axis, dtype=float)
    norm = float(np.linalg.norm(a))
    if not np.isfinite(norm) or norm == 0.0:
        raise ValueError(f"rotation axis {tuple(a)} has no direction")
    x, y, z = a / norm
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    k = 1.0 - c
    # Rodrigues' formula written out
    return np.array(
        [
            [c + x * x * k, x * y * k - z * s, x * z * k + y * s],
            [y * x * k + z * s, c + y * y * k, y * z * k - x * s],
            [z * x * k - y * s, z * y * k + x * s, c + z * z * k],
        ]
    )


def spherical(r: float, polar_rad: float, azimuth_rad: float) -> np.ndarray:
    """The point at distance r, polar angle from +z and azimuth from +x (fixed axes)."""
    s = r * np.sin(polar_rad)
    return np.array([s * np.cos(azimuth_rad), s * np.sin(azimuth_rad), r * np.cos(polar_rad)])


def place(points: np.ndarray, rot: np.ndarray, trans: np.ndarray) -> np.ndarray:
    """Points (n, 3) of a child frame, in the parent's frame."""
    return points @ rot.T + trans


def scattering_angles(
    pos: np.ndarray, beam: np.ndarray, up: np.ndarray, horizontal: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """L2, 2θ and φ (rad) of positions (n, 3) relative to the sample.

    2θ is the angle between the beam direction and the sample → pixel vector (0 for a pixel at the sample).
    φ is the azimuth about the beam, from `horizontal` towards `up` (in the default frame, z along the beam and
    y up, horizontal is x and φ = atan2(y, x): Mantid's getPhi there)."""
    l2 = np.sqrt(np.einsum("ij,ij->i", pos, pos))
    along = pos @ beam
    with np.errstate(invalid="ignore", divide="ignore"):
        cos2t = np.where(l2 > 0, along / np.where(l2 > 0, l2, 1.0), 1.0)
    two_theta = np.arccos(np.clip(cos2t, -1.0, 1.0))
    azimuthal = np.arctan2(pos @ up, pos @ horizontal)
    return l2, two_theta, azimuthal
