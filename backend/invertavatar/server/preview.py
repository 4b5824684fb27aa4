"""Preview renders for `POST /v1/avatars/{id}/render`: the pipeline's own bundle reader and avatar renderer,
with a small cache of read bundles and one render at a time (renders share the compute device with jobs)."""

from __future__ import annotations

import io
import math
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from invertavatar.errors import InvertAvatarError

from .errors import ApiError
from .schemas import RenderRequest

CACHE_SIZE = 4
# Portrait framing: a long lens (focal = 2 × the short image side) and the head filling ~80 % of the frame.
FOCAL_PER_SIDE = 2.0
FILL = 0.8


class PreviewRenderer:
    """Reads bundles once (keyed by folder identity, so a refinement is picked up) and renders PNGs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, tuple[tuple[int, int], Any]] = OrderedDict()

    def forget(self, avatar_id: str) -> None:
        with self._lock:
            self._cache.pop(avatar_id, None)

    def _bundle(self, avatar_id: str, folder: Path) -> Any:
        from invertavatar.io.bundle import read_bundle

        stat = (folder / "manifest.json").stat()
        key = (stat.st_ino, stat.st_mtime_ns)
        cached = self._cache.get(avatar_id)
        if cached is not None and cached[0] == key:
            self._cache.move_to_end(avatar_id)
            return cached[1]
        bundle = read_bundle(folder)
        self._cache[avatar_id] = (key, bundle)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return bundle

    def render_png(self, avatar_id: str, folder: Path, request: RenderRequest) -> bytes:
        """Render the avatar as asked and encode a PNG."""
        import torch
        from PIL import Image

        from invertavatar.render.avatar import render_avatar

        with self._lock:
            try:
                bundle = self._bundle(avatar_id, folder)
            except InvertAvatarError as exc:
                raise ApiError(500, exc.code, f"The stored avatar cannot be read: {exc.message}",
                               "Delete the avatar and reconstruct it.") from exc
            # Weights go in the bundle's own expression order (Apple's order in format v1, but read, not assumed).
            order = {str(name): i for i, name in enumerate(bundle.mesh["expression_names"])}
            arkit = np.zeros(len(order), dtype=np.float32)
            for name, weight in request.arkit.items():
                if name in order:
                    arkit[order[name]] = weight
            camera = preview_camera(np.asarray(bundle.mesh["vertices"]), request.width, request.height, request.yaw)
            with torch.no_grad():
                image = render_avatar(bundle, arkit, np.asarray(request.head_rotation, dtype=np.float32),
                                      np.asarray(request.head_translation, dtype=np.float32), camera,
                                      np.round(np.asarray(request.background) * 255.0))
        buffer = io.BytesIO()
        Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buffer, format="PNG")
        return buffer.getvalue()


def preview_camera(vertices: np.ndarray, width: int, height: int, yaw_degrees: float) -> Any:
    """A camera looking at the centre of the neutral head from the front, orbited by ``yaw`` about +Y."""
    import torch

    from invertavatar.render.camera import Camera

    low, high = vertices.min(axis=0), vertices.max(axis=0)
    centre = (low + high) / 2.0
    extent = float(max(high[1] - low[1], high[0] - low[0], 1e-3))
    focal = FOCAL_PER_SIDE * min(width, height)
    distance = focal * extent / (FILL * min(width, height)) + float(high[2] - centre[2])
    yaw = math.radians(yaw_degrees)
    eye = centre + distance * np.array([math.sin(yaw), 0.0, math.cos(yaw)])
    return Camera.look_at(torch.tensor(eye, dtype=torch.float32), torch.tensor(centre, dtype=torch.float32),
                          focal, width, height)
