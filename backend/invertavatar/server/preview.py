"""Preview renders for `POST /v1/avatars/{id}/render`: the pipeline's own bundle reader and the avatar renderers
(`invertavatar.renderers`: albedo or neural), with a small cache of read bundles and one render at a time (renders
share the compute device with jobs)."""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from invertavatar.errors import InvertAvatarError

from .errors import ApiError
from .schemas import RenderRequest

CACHE_SIZE = 4


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

    def render_png(self, avatar_id: str, folder: Path, request: RenderRequest) -> tuple[bytes, str]:
        """Render the avatar as asked and encode a PNG; also returns the renderer that drew it."""
        from PIL import Image

        from invertavatar.renderers import render

        with self._lock:
            try:
                bundle = self._bundle(avatar_id, folder)
            except InvertAvatarError as exc:
                raise ApiError(500, exc.code, f"The stored avatar cannot be read: {exc.message}",
                               "Delete the avatar and reconstruct it.") from exc
            camera = request_camera(request, np.asarray(bundle.mesh["vertices"]))
            try:
                result = render(bundle, request.renderer, request.arkit, request.head_rotation,
                                request.head_translation, request.gaze, camera,
                                background=np.round(np.asarray(request.background) * 255.0),
                                neural_resolution=request.neural_resolution,
                                super_resolution=request.super_resolution)
            except InvertAvatarError as exc:
                status = 409 if exc.code in ("no_neural_state", "neural_unavailable", "head_model_mismatch") else 422
                raise ApiError.from_pipeline(status, exc) from exc
        buffer = io.BytesIO()
        Image.fromarray(np.asarray(result.image, dtype=np.uint8)).save(buffer, format="PNG")
        return buffer.getvalue(), result.renderer


def request_camera(request: RenderRequest, vertices: np.ndarray) -> Any:
    """The request's camera (the client's, in the avatar's frame), or a portrait camera orbited by ``yaw``."""
    import torch

    from invertavatar.render import Camera
    from invertavatar.render.framing import portrait_camera

    if request.camera is None:
        return portrait_camera(vertices, request.width, request.height, request.yaw)
    tensors = (torch.tensor(getattr(request.camera, name), dtype=torch.float32) for name in ("K", "R", "t"))
    return Camera(*tensors, request.width, request.height)
