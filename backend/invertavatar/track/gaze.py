"""Eye gaze from the iris landmarks: the camera ray through each iris centre meets the fitted eyeball sphere.

The gaze is the eye bone's turn: measured from where the avatar's painted iris looks at rest (`texture.eyes.rest_gaze`),
so that the turned eye puts its iris where the photo's is."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from ..detect import Detection
from ..detect.landmark_schemes import LEFT_IRIS_CENTER, RIGHT_IRIS_CENTER
from ..headmodel.eyes import eyeball_sphere
from ..texture.eyes import rest_gaze


def _ray_sphere(origin_dir: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray | None:
    """Nearest intersection of the ray from the camera origin along ``origin_dir`` with a sphere, or None."""
    b = float(origin_dir @ centre)
    disc = b * b - float(centre @ centre) + radius * radius
    if disc < 0:
        return None
    return origin_dir * (b - np.sqrt(disc))


@lru_cache(maxsize=4)
def _eyeball_spheres(model, identity: bytes) -> dict:
    """Both eyeballs' spheres under an identity (float32 bytes; cached: a clip's identity changes only at keyframes)."""
    balls = {region: model.regions[region] for region in ("eyeball_left", "eyeball_right")}
    eyes = model.evaluate(torch.from_numpy(np.frombuffer(identity, np.float32).copy())[None],
                          vertex_ids=np.concatenate(list(balls.values())))[0].numpy()  # the eyeballs only: cheap
    split = len(balls["eyeball_left"])
    return {"eyeball_left": eyeball_sphere(eyes[:split]), "eyeball_right": eyeball_sphere(eyes[split:])}


def estimate_gaze(model, identity: np.ndarray, fit, detection: Detection) -> dict[str, list[float]]:
    """``{"eye_L": [pitch, yaw], "eye_R": [...]}`` in radians in head space (+pitch up, +yaw towards +X)."""
    if detection.scheme != "mediapipe478" or len(detection.landmarks) < 478:
        return {"eye_L": [0.0, 0.0], "eye_R": [0.0, 0.0]}
    spheres = _eyeball_spheres(model, np.asarray(identity, np.float32).tobytes())
    rest = rest_gaze(model)
    height, width = fit.image_size
    k_inv = np.linalg.inv(np.array([[fit.focal, 0, width / 2], [0, fit.focal, height / 2], [0, 0, 1]]))
    gaze = {}
    # The subject's left eye is MediaPipe's "left" iris (473), on the image right in a frontal photo.
    for name, region, iris in (("eye_L", "eyeball_left", LEFT_IRIS_CENTER), ("eye_R", "eyeball_right",
                                                                              RIGHT_IRIS_CENTER)):
        sphere = spheres[region]
        radius = sphere.radius
        centre_cam = fit.rotation @ sphere.centre + fit.translation
        ray = k_inv @ np.array([*(detection.landmarks[iris] + 0.5), 1.0])  # renderer pixel convention
        ray /= np.linalg.norm(ray)
        hit = _ray_sphere(ray, centre_cam, radius)
        if hit is None:
            gaze[name] = [0.0, 0.0]
            continue
        direction = fit.rotation.T @ (hit - centre_cam)  # back to head space
        direction /= np.linalg.norm(direction)
        pitch, yaw = float(np.arcsin(np.clip(direction[1], -1, 1))), float(np.arctan2(direction[0], direction[2]))
        gaze[name] = [pitch - rest[name][0], yaw - rest[name][1]]
    return gaze
