"""Keyframes of a clip chosen over the whole clip, in one streamed pass.

Every tracked frame is offered once. A bounded set of candidates is kept per view bin (yaw × pitch of the head): the
sharpest, best-tracked, largest and most neutral frames, at least ``MIN_GAP_S`` apart, plus the best frame with the
mouth open and the best with the eyes closed (so lips, teeth and eyelids are seen both ways). Only a crop around the
face is kept, and never more than ``capacity`` of them, so memory does not grow with the clip. When the clip ends,
:meth:`ClipKeyframes.choose` spends the budget: one frame per view first (the most frontal view, then always the
view farthest from those taken), then the expression frames, then views seen only in poor frames, then further
frames of each view in turn — more frames of a view lower the texture's noise in fusion.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..detect import Detection
from ..headmodel.arkit import ARKIT_INDEX, ARKIT_NAMES
from ..track import FrameFit

VIEW_BIN = np.radians(15.0)  # yaw and pitch bin width
VIEW_LIMIT = np.radians((60.0, 30.0))  # |yaw|, |pitch| beyond these fall into the outermost bins
MIN_GAP_S = 0.12  # candidates of one view closer in time than this are near-duplicates: the better one stays
MOUTH_OPEN, EYES_CLOSED = 0.35, 0.6  # ARKit weights that make an "open mouth" / "closed eyes" frame
QUALITY_SHARE = 0.5  # a view whose best frame scores under this share of the clip's best comes after the good ones
CROP_SCALE = 2.2  # the stored crop is this many times the landmark box: room for forehead, ears and neck
TRACKING_SCALE = 0.03  # landmark error (share of the eye distance) at which the tracking term halves the quality
SIZE_SCALE = 300.0  # landmark-box side (pixels) beyond which a bigger face adds no texture detail here
VIEW_COUNT = int(np.prod(2 * np.round(VIEW_LIMIT / VIEW_BIN) + 1))  # 9 × 5 view bins
_JAW = ARKIT_INDEX["jawOpen"]
_BLINK = [ARKIT_INDEX["eyeBlinkLeft"], ARKIT_INDEX["eyeBlinkRight"]]
_EXPRESSIVE = np.array([not name.startswith("eyeLook") for name in ARKIT_NAMES])  # gaze is not an expression


def view_angles(rotation: np.ndarray) -> tuple[float, float]:
    """Yaw and pitch (radians) of the face's forward axis; (0, 0) faces the camera.

    ``rotation`` maps model space to OpenCV camera space (``FrameFit.rotation``): a frontal face has its +Z axis
    pointing at the camera, i.e. towards camera −z. Positive yaw turns the face towards image +x, positive pitch up.
    """
    forward = np.asarray(rotation, np.float64) @ np.array([0.0, 0.0, 1.0])
    yaw = float(np.arctan2(forward[0], -forward[2]))
    pitch = float(np.arctan2(-forward[1], np.hypot(forward[0], forward[2])))
    return yaw, pitch


def view_bin(yaw: float, pitch: float) -> tuple[int, int]:
    """The (yaw, pitch) bin of a view; bins are centred on the frontal view."""
    limits = np.round(VIEW_LIMIT / VIEW_BIN).astype(int)
    return (int(np.clip(np.round(yaw / VIEW_BIN), -limits[0], limits[0])),
            int(np.clip(np.round(pitch / VIEW_BIN), -limits[1], limits[1])))


def frame_quality(sharpness: float, landmark_error_iod: float, box: np.ndarray, arkit: np.ndarray,
                  prefer_neutral: bool = True) -> float:
    """How useful a frame is for the avatar, in [0, 1]: sharp, well tracked, large and (for texture) neutral."""
    tracking = 1.0 / (1.0 + (landmark_error_iod / TRACKING_SCALE) ** 2)
    side = float(max(box[2] - box[0], box[3] - box[1]))
    size = min(side / SIZE_SCALE, 1.0)
    neutral = 1.0
    if prefer_neutral:
        neutral = 1.0 - 0.5 * float(np.clip(np.max(np.asarray(arkit)[_EXPRESSIVE]), 0.0, 1.0))
    return float(sharpness * tracking * size * neutral)


@dataclass
class Candidate:
    """A frame kept for possible use as a keyframe: a crop of its picture and its full-frame detection."""

    index: int
    time: float
    crop: np.ndarray  # (h, w, 3) uint8, the face region of the frame
    offset: tuple[int, int]  # (x, y) of the crop's top-left corner in the frame
    detection: Detection  # full-frame coordinates: the keyframe is refitted from it
    image_size: tuple[int, int]  # (height, width) of the full frame
    sharpness: float
    quality: float  # with the preference for neutral frames (texture)
    plain_quality: float  # without it (expression frames)
    view: tuple[int, int]
    yaw: float
    pitch: float
    mouth_open: float
    eyes_closed: float

    def crop_view(self, fit: FrameFit) -> tuple[np.ndarray, Detection, FrameFit]:
        """The crop with the detection and fit (of the full frame) moved into its pixel coordinates."""
        return crop_view(self.crop, self.offset, self.detection, fit)


def crop_view(crop: np.ndarray, offset: tuple[int, int], detection: Detection,
              fit: FrameFit) -> tuple[np.ndarray, Detection, FrameFit]:
    """``crop`` (cut at ``offset`` from a frame) with the frame's ``detection`` and ``fit`` moved into its pixels."""
    x, y = offset
    shift = np.array([x, y], np.float32)
    height, width = crop.shape[:2]
    moved = replace(detection, box=detection.box - np.tile(shift, 2), landmarks=detection.landmarks - shift,
                    image_size=(height, width))
    full_h, full_w = fit.image_size
    cx, cy = fit.principal if fit.principal is not None else (full_w / 2, full_h / 2)
    return crop, moved, replace(fit, image_size=(height, width), principal=(cx - x, cy - y))


def face_crop(image: np.ndarray, box: np.ndarray, scale: float = CROP_SCALE) -> tuple[np.ndarray, tuple[int, int]]:
    """A copy of the square region ``scale`` times the box around its centre (clipped to the image), and its corner."""
    height, width = image.shape[:2]
    x0, y0, x1, y1 = (float(v) for v in box)
    half = scale * max(x1 - x0, y1 - y0) / 2
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left, top = max(int(np.floor(cx - half)), 0), max(int(np.floor(cy - half)), 0)
    right, bottom = min(int(np.ceil(cx + half)), width), min(int(np.ceil(cy + half)), height)
    return np.ascontiguousarray(image[top:bottom, left:right]), (left, top)


class ClipKeyframes:
    """The bounded candidate set of one clip and the final choice (see the module docstring)."""

    def __init__(self, budget: int, capacity: int | None = None) -> None:
        self.budget = max(int(budget), 1)
        # Every view keeps its best frame, so the bound is at least one crop per view bin (and the two expressions).
        self.capacity = max(capacity or 2 * self.budget + 8, VIEW_COUNT + 2)
        self.bins: dict[tuple[int, int], list[Candidate]] = {}
        self.special: dict[str, Candidate] = {}  # "mouth_open", "eyes_closed": best such frame of the clip
        self.offered = 0

    # ----------------------------------------------------------------------------------------------- streaming
    def offer(self, index: int, time: float, image: np.ndarray, detection: Detection, fit: FrameFit,
              sharpness: float) -> bool:
        """Consider one tracked frame; returns whether it was kept as a candidate."""
        self.offered += 1
        yaw, pitch = view_angles(fit.rotation)
        arkit = np.asarray(fit.arkit, np.float64)
        quality = frame_quality(sharpness, fit.landmark_error_iod, detection.box, arkit)
        plain = frame_quality(sharpness, fit.landmark_error_iod, detection.box, arkit, prefer_neutral=False)
        mouth, eyes = float(arkit[_JAW]), float(arkit[_BLINK].mean())
        view = view_bin(yaw, pitch)
        candidate: Candidate | None = None

        def make() -> Candidate:
            nonlocal candidate
            if candidate is None:
                crop, offset = face_crop(image, detection.box)
                candidate = Candidate(index, time, crop, offset, detection, tuple(image.shape[:2]), sharpness,
                                      quality, plain, view, yaw, pitch, mouth, eyes)
            return candidate

        for slot, value, threshold in (("mouth_open", mouth, MOUTH_OPEN), ("eyes_closed", eyes, EYES_CLOSED)):
            held = self.special.get(slot)
            if value >= threshold and (held is None or plain > held.plain_quality):
                self.special[slot] = make()
        if self._offer_to_bin(view, time, quality, make):
            self._evict()
        return candidate is not None and self._holds(candidate)

    def _offer_to_bin(self, view: tuple[int, int], time: float, quality: float, make) -> bool:
        members = self.bins.setdefault(view, [])
        near = [c for c in members if abs(c.time - time) < MIN_GAP_S]
        if near:
            if quality <= max(c.quality for c in near):
                return False
            for c in near:  # a better frame of the same moment and view takes their place
                members.remove(c)
        elif len(members) >= self.budget:
            worst = min(members, key=lambda c: c.quality)
            if quality <= worst.quality:
                return False
            members.remove(worst)
        members.append(make())
        return True

    def _evict(self) -> None:
        """Over capacity: drop the worst candidate of the most crowded view (a view's last one is never dropped)."""
        while self._count() > self.capacity:
            crowded = max((m for m in self.bins.values() if len(m) > 1), key=len, default=None)
            if crowded is None:
                break
            crowded.remove(min(crowded, key=lambda c: c.quality))

    def _count(self) -> int:
        kept = {id(c) for members in self.bins.values() for c in members}
        return len(kept | {id(c) for c in self.special.values()})

    def _holds(self, candidate: Candidate) -> bool:
        return any(candidate is c for m in self.bins.values() for c in m) or \
            any(candidate is c for c in self.special.values())

    # -------------------------------------------------------------------------------------------------- choice
    def view_order(self, views: list[tuple[int, int]] | None = None) -> list[tuple[int, int]]:
        """Views with candidates: the most frontal first, then always the one farthest from those already taken."""
        views = [v for v, members in self.bins.items() if members] if views is None else list(views)
        if not views:
            return []
        order = [min(views, key=lambda v: (v[0] ** 2 + v[1] ** 2, v))]
        rest = [v for v in views if v != order[0]]
        while rest:
            far = max(rest, key=lambda v: (min((v[0] - o[0]) ** 2 + (v[1] - o[1]) ** 2 for o in order), -abs(v[0])))
            order.append(far)
            rest.remove(far)
        return order

    def choose(self) -> list[Candidate]:
        """Spend the budget (see the module docstring); the result is in clip order.

        Views and expression frames whose best frame is far worse than the clip's best (``QUALITY_SHARE``: blurred,
        badly tracked, tiny) wait until every good view and expression has been taken.
        """
        ranked = {v: sorted(m, key=lambda c: -c.quality) for v, m in self.bins.items() if m}
        best = max((m[0].quality for m in ranked.values()), default=0.0)
        good = [v for v, m in ranked.items() if m[0].quality >= QUALITY_SHARE * best]
        order = self.view_order(good) + self.view_order([v for v in ranked if v not in good])
        best_plain = max((m[0].plain_quality for m in ranked.values()), default=0.0)
        expressions = [self.special[s] for s in ("eyes_closed", "mouth_open") if s in self.special]
        chosen: list[Candidate] = []

        def take(candidate: Candidate) -> None:
            if len(chosen) < self.budget and all(candidate is not c for c in chosen):
                chosen.append(candidate)

        for view in order[:len(good)]:
            take(ranked[view][0])
        for candidate in expressions:
            if candidate.plain_quality >= QUALITY_SHARE * best_plain:
                take(candidate)
        for view in order[len(good):]:
            take(ranked[view][0])
        for candidate in expressions:
            take(candidate)
        depth = max((len(m) for m in ranked.values()), default=0)
        for rank in range(1, depth):
            for view in order:
                if rank < len(ranked[view]):
                    take(ranked[view][rank])
        return sorted(chosen, key=lambda c: c.index)
