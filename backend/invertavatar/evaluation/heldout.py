"""Held-out frames: detect once, then per avatar track pose and expression only, render, compare, and check.

A held-out frame ends in one of these statuses (docs/evaluation.md):

- ``tracked``: scored (PSNR, SSIM, LPIPS, landmark error);
- ``no_face``: the detector found no (single) face — the face left the frame, was covered, or turned away;
- ``implausible``: the avatar's frozen identity cannot fit the landmarks (the tracker's own plausibility limit);
- ``other_person``: it fits, but the face is probably not the avatar's person (a cut): the face's mean colour jumped
  away from the build part's, or the landmark residual jumped well above the build frames'.

Only ``tracked`` frames are averaged; every other status is counted and reported as a run of frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InvertAvatarError
from ..headmodel import HeadModel
from ..io.bundle import Bundle
from ..render import Camera, render_textured
from ..track import FrameFit, Tracker, TrackerState
from .metrics import face_mask, masked_psnr, masked_ssim

#: A frame whose mean face colour (CIELAB, inside the face mask) is this far (ΔE) from the build part's shows another
#: person or scene, unless the build part itself varies more (then 3× its own spread is the limit).
APPEARANCE_JUMP = 15.0
#: ... or whose frozen-identity landmark residual exceeds this many times the build frames' mean residual.
RESIDUAL_JUMP = 3.0
RESIDUAL_FLOOR = 0.02  # IOD; below this a residual is never a jump, however small the build residual was


@dataclass
class HeldOutFrame:
    """A held-out frame and what does not depend on the avatar: its detection and its colour change."""

    index: int
    image: np.ndarray
    detection: object | None  # Detection, or None when no single face was found
    appearance_change: float | None = None  # ΔE of the face's mean colour from the build part's


def face_colour(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Mean CIELAB colour (L 0..100) of the face mask: a cheap signature of who and what lighting is on screen."""
    import cv2

    lab = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    return lab[face_mask(landmarks, image.shape[:2])].mean(0)


def _detect(detector, index: int, image: np.ndarray):
    try:
        return detector.detect(image, f"frame {index}")
    except InvertAvatarError as exc:
        if exc.code not in ("no_face", "several_faces"):
            raise
        return None


def detect_heldout(frames: list[tuple[int, np.ndarray]], reference: list[tuple[int, np.ndarray]],
                   detector) -> tuple[list[HeldOutFrame], float]:
    """Detect each held-out frame and measure its face colour change from ``reference`` frames of the build part.

    Returns the frames and the colour-change limit above which a frame counts as another person.
    """
    colours = [face_colour(image, d.landmarks) for i, image in reference
               if (d := _detect(detector, i, image)) is not None]
    centre = np.median(colours, axis=0) if colours else None
    spread = max((float(np.linalg.norm(c - centre)) for c in colours), default=0.0)
    limit = max(APPEARANCE_JUMP, 3.0 * spread)
    result = []
    for index, image in frames:
        detection = _detect(detector, index, image)
        change = None
        if detection is not None and centre is not None:
            change = float(np.linalg.norm(face_colour(image, detection.landmarks) - centre))
        result.append(HeldOutFrame(index, image, detection, change))
    return result, limit


class AvatarRenderer:
    """Renders a bundle's texture on the head model with the bundle's identity, at a tracked pose and expression."""

    def __init__(self, model: HeadModel, bundle: Bundle) -> None:
        from ..headmodel.base import split_polygons
        from ..texture import atlas_uvs
        from ..texture.atlas import slot_of_material
        from ..texture.fusion import OVERLAY_SLOTS

        if "tracker.json" not in bundle.state:
            raise InvertAvatarError("no_state", "The avatar carries no tracker state to evaluate.",
                                    "Build it with this version of the backend.")
        self.model = model
        self.state = TrackerState.from_bytes(bundle.state["tracker.json"])
        self.identity = self.state.mean[:-1].copy()
        self.texture = torch.from_numpy(np.array(bundle.albedo[..., :3])).float() / 255.0
        uv, face_uv = atlas_uvs(model)
        _, _, uv_triangles = split_polygons(model.faces, face_uv)
        # Translucent overlays (lashes, tear film, occlusion shells) would be drawn opaque: leave them out.
        slots = np.array([slot_of_material(n) for n in model.material_names])[model.face_material[model.triangle_face]]
        solid = ~np.isin(slots, list(OVERLAY_SLOTS))
        self.triangles, self.uv_triangles, self.uv = model.triangles[solid], uv_triangles[solid], torch.from_numpy(uv)

    def render(self, fit: FrameFit, photo: np.ndarray | None = None,
               region: np.ndarray | None = None) -> np.ndarray:
        """(H, W, 3) uint8 render (mid-grey background) of the avatar at ``fit``'s pose, expression and camera.

        The bundle's albedo is de-lit (texture/delight.py); with ``photo`` the render is re-lit with the lighting
        fitted to that photo inside ``region`` (H, W) bool (the whole head when omitted) and applied to the whole
        rendered head, so that a score compares
        the avatar with the photo under the photo's own light, as a lit texture used to be compared.
        """
        from ..render.textured import camera_normals
        from ..texture.delight import relight

        with torch.no_grad():
            vertices = self.model.evaluate(torch.from_numpy(self.identity).float()[None],
                                           torch.from_numpy(fit.expression).float()[None])[0]
            k, r, t = fit.camera_tensors()
            camera = Camera(k, r, t, fit.image_size[1], fit.image_size[0])
            image, mask = render_textured(vertices, self.triangles, self.uv, self.uv_triangles, self.texture, camera,
                                          background=0.5)
            rendered = (image[0].clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)
            if photo is None:
                return rendered
            normals, _ = camera_normals(vertices, self.triangles, camera)
        head = mask[0].numpy() > 0
        inside = head & region if region is not None else head
        return relight(rendered, photo, normals[0].numpy(), inside, apply=head)


def score_frames(model: HeadModel, bundle: Bundle, frames: list[HeldOutFrame], colour_limit: float,
                 lpips=None, keep: set[int] = frozenset()) -> tuple[list[dict], list[tuple[int, np.ndarray, np.ndarray]]]:
    """Per-frame records for one avatar, and (index, real, rendered) face crops of the tracked frames in ``keep``."""
    renderer = AvatarRenderer(model, bundle)
    tracker = Tracker(model, state=renderer.state)
    build_residual = float(bundle.manifest.get("metrics", {}).get("landmark_error_iod_mean", RESIDUAL_FLOOR))
    residual_limit = max(RESIDUAL_JUMP * build_residual, RESIDUAL_FLOOR)
    records, kept = [], []
    for frame in frames:
        record: dict = {"index": frame.index, "status": "no_face"}
        records.append(record)
        if frame.detection is None:
            continue
        if frame.appearance_change is not None:
            record["appearance_change"] = round(frame.appearance_change, 3)
        try:
            fit = tracker.add_frame(frame.detection, frame.image.shape[:2], frame.index, keyframe=False)
        except InvertAvatarError as exc:
            if exc.code != "implausible_face":
                raise
            record["status"] = "implausible"
            continue
        record["landmark_error_iod"] = round(fit.landmark_error_iod, 5)
        jumps = [name for name, jumped in (("appearance", record.get("appearance_change", 0.0) > colour_limit),
                                           ("landmark_residual", fit.landmark_error_iod > residual_limit)) if jumped]
        if jumps:
            record.update(status="other_person", reason=jumps)
            continue
        mask = face_mask(frame.detection.landmarks, frame.image.shape[:2])
        rendered = renderer.render(fit, frame.image, mask)  # re-lit with the held-out frame's own lighting
        record.update(status="tracked", psnr=round(masked_psnr(frame.image, rendered, mask), 4),
                      ssim=round(masked_ssim(frame.image, rendered, mask), 5))
        if lpips is not None:
            record["lpips"] = round(lpips(frame.image, rendered, mask), 5)
        if frame.index in keep:
            box = face_crop(frame.detection.box, frame.image.shape[:2])
            kept.append((frame.index, frame.image[box], rendered[box]))
    return records, kept


def face_crop(box: np.ndarray, shape: tuple[int, int], margin: float = 1.6) -> tuple[slice, slice]:
    """A square around the detected face box (``margin`` × its larger side), kept inside the image."""
    x0, y0, x1, y1 = (float(v) for v in box)
    side = min(int(margin * max(x1 - x0, y1 - y0)), *shape)
    left = int(np.clip((x0 + x1 - side) / 2, 0, shape[1] - side))
    top = int(np.clip((y0 + y1 - side) / 2, 0, shape[0] - side))
    return slice(top, top + side), slice(left, left + side)
