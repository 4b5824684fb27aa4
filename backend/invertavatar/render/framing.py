"""Portrait framing: cameras that look at a head from a direction, with the head filling most of the picture.

Used by the preview API when the client sends no camera, by the neural bake (views around the head) and by
reenactment (a fixed frontal camera).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .camera import Camera

# A long lens (focal = 2 × the short image side) and the head filling ~80 % of the short side.
FOCAL_PER_SIDE = 2.0
FILL = 0.8


def portrait_camera(vertices: np.ndarray, width: int, height: int, yaw_degrees: float = 0.0,
                    pitch_degrees: float = 0.0, fill: float = FILL) -> Camera:
    """A camera looking at the centre of the head's bounding box from the front, orbited by yaw and pitch.

    ``vertices`` (V, 3) metres, backend axes. Positive ``yaw`` moves the camera towards +X (the subject's left),
    positive ``pitch`` above the head. The distance keeps the head's frontal extent at ``fill`` of the short side
    whatever the direction (the bounding sphere would waste pixels on a frontal view).
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    low, high = vertices.min(axis=0), vertices.max(axis=0)
    centre = (low + high) / 2.0
    extent = float(max(high[1] - low[1], high[0] - low[0], 1e-3))
    depth = float(max(high - centre))  # nearest the camera can get to the box centre's surface, any side
    focal = FOCAL_PER_SIDE * min(width, height)
    distance = focal * extent / (fill * min(width, height)) + depth
    yaw, pitch = math.radians(yaw_degrees), math.radians(pitch_degrees)
    direction = np.array([math.sin(yaw) * math.cos(pitch), math.sin(pitch), math.cos(yaw) * math.cos(pitch)])
    # Straight above or below, +Y cannot be "up" in the picture: use the face direction (+Z) instead.
    up = (0.0, 1.0, 0.0) if abs(math.cos(pitch)) > 1e-3 else (0.0, 0.0, -math.copysign(1.0, pitch))
    eye = centre + distance * direction
    return Camera.look_at(torch.tensor(eye, dtype=torch.float32), torch.tensor(centre, dtype=torch.float32),
                          focal, width, height, up=up)
