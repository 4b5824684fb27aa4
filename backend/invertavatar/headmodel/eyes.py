"""The eyeball as a sphere: the centre the eye turns about and the radius its front surface lies at.

An eyeball region is not a uniform sphere of vertices: ICT's has an inner iris layer and an outer sclera layer with a
cornea bulge, and more vertices at the front than at the back, so the mean vertex lies 4.6 mm in front of the centre
and the farthest vertex from that mean is 21 mm away on a 16 mm eye. Gaze, the eye bones and the painted iris all
need the true centre; a least-squares sphere gives it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EyeballSphere:
    """``centre`` (3,) in the model's frame (metres) and ``radius``: the centre's distance to the front-most point
    (the cornea's apex, where the iris landmark projects)."""

    centre: np.ndarray
    radius: float


def eyeball_sphere(points: np.ndarray) -> EyeballSphere:
    """The sphere through an eyeball's vertices (N, 3): the algebraic least-squares centre (|p|² = 2 p·c + k is
    linear in c and k), and the radius to the vertex farthest forward (+Z) from it."""
    points = np.asarray(points, np.float64)
    design = np.c_[2.0 * points, np.ones(len(points))]
    centre = np.linalg.lstsq(design, np.square(points).sum(1), rcond=None)[0][:3]
    front = points[int(np.argmax(points[:, 2]))]
    return EyeballSphere(centre.astype(np.float32), float(np.linalg.norm(front - centre)))
