"""Is a detected face a human's, and is it a photograph? Evidence that does not come from the face landmarker.

MediaPipe's Face Landmarker fits its human face mesh to anything face-like — some dogs, cats and the back of a
bulldog's head on the devset — and reports proportions that look human, because its mesh can only take human
shapes (landmark geometry, blendshapes and its own face score do not separate those animals from people: see
docs/human-face-check.md). The check here asks an independent detector, OpenCV's Haar cascades that ship inside
the installed ``opencv`` wheel (``cv2.data``; trained on human faces only), whether it too sees a human face at the
same place. The face is first cut out upright (the eye line levelled, the face scaled to `FACE_PX`), so a tilted
head or a small face does not defeat the cascades; the frontal cascades and the profile cascade (on the crop and on
its mirror image, for both sides) then vote with every detection window that overlaps the landmarks' box. A human
face collects tens of votes, the animals at most a few; the few borderline faces are settled by the face score of
MediaPipe's own face detector (`is_human_evidence`), which is high for people and middling for animals.

A human face can still be an artwork — a painting, statue, drawing or cartoon — whose avatar carries the artwork's
colours. Two colour cues flag that (`artwork_cues`): a face that is mostly one flat colour (cartoons, flat
illustrations), and a picture that is almost but not exactly grey (stone, bronze, toned prints). They catch only
some artworks: paintings in natural colours, pencil drawings and shaded anime pass as photos (measured, and listed,
in docs/human-face-check.md).

Every threshold is in this module's constants, each with its measured rates on the devset
(``backend/benchmarks/bench_human_check.py`` writes ``docs/benchmarks/human_check.json``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from invertavatar.detect.base import Detection
from invertavatar.detect.landmark_schemes import LEFT_EYE_OUTER, RIGHT_EYE_OUTER

HUMAN, ARTWORK, NOT_HUMAN = "human", "artwork", "not_human"

# --- thresholds (measured on the devset: 29 human and 3 group photos with a face found, 80 frames of 8 human clips,
# --- 3 animal photos in which MediaPipe finds a "face", 5 artworks with a face found; and on the augmented set of
# --- bench_human_check.py: crops and mirror images of the animals, mirrored and rolled humans; see
# --- docs/human-face-check.md)
#: The verdict combines the cascades' votes (overlapping detection windows, all cascades) with the face score of
#: MediaPipe's own face detector (`Detection.score`): a face is human when
#:   votes >= HUMAN_MIN_VOTES and score >= HUMAN_MIN_SCORE   (both agree), or
#:   votes >= STRONG_VOTES                                    (the cascades are sure), or
#:   votes >= 1 and score >= STRONG_SCORE                      (MediaPipe is sure and the cascades not silent).
#: Measured (devset and its augmented set: 204 detected human faces, 33 detected animal faces; 18 renders of the
#: head model): human photos and clip frames have 7..262 votes (the lowest: a face seen from below, a near
#: profile), renders lit flat (no shading, turned 43°) only 1..3; the animals 0..6. The animals with 4..6 votes
#: score 0.53..0.55 and those with any vote at most 0.77, while every human face and render with fewer than 20 votes
#: scores at least 0.81. Result: false accepts 0/33 animal faces; false rejects 0/117 devset faces (photos, group
#: photos, clip frames, artworks), 0/87 augmented, 0/18 renders. See docs/human-face-check.md for the closest calls.
HUMAN_MIN_VOTES = 4
HUMAN_MIN_SCORE = 0.7
STRONG_VOTES = 20
STRONG_SCORE = 0.8
#: A window counts as a vote when its intersection-over-union with the landmarks' box is at least this.
VOTE_MIN_IOU = 0.4
#: Share of the face taken by its most common colour (RGB quantised to `COLOUR_STEP` levels) above which the face is
#: drawn in flat colour. Measured: photos at most 0.46, clip frames at most 0.41; the flat cartoon 0.66.
FLAT_COLOUR_SHARE = 0.55
COLOUR_STEP = 24
#: Mean HSV saturation (0..255) of the face crop (the face and its surroundings) below which, yet above
#: `GREY_SATURATION`, the face is a monochrome stone/bronze/toned surface. Measured: colour photos and clip frames at
#: least 29.9; the marble bust 15.3. (The whole picture's saturation separates less: a grey backdrop lowers it.)
MONOCHROME_SATURATION = 22.0
#: Below this mean saturation the crop is grey (a black-and-white photo or scan): no artwork cue applies.
GREY_SATURATION = 2.0

# The upright face crop the cascades look at: the face (the extent of the landmarks) is FACE_PX wide/high.
CROP_PX, FACE_PX = 160, 96
# Cascade search: window sizes around the expected face size only (fast, and no votes from other scales).
_SCALE_FACTOR, _MIN_WINDOW, _MAX_WINDOW = 1.08, 56, 150
_FRONTAL = ("haarcascade_frontalface_alt2.xml", "haarcascade_frontalface_default.xml")  # cheapest first
_PROFILE = "haarcascade_profileface.xml"
_IBUG_EYES = (36, 45)  # outer eye corners in the 68-point scheme (FAN)
_MESH_POINTS = 468  # MediaPipe's face mesh without the 10 iris points


def is_human_evidence(votes: int, score: float | None) -> bool:
    """The rule above: the cascades' ``votes`` and the face detector's ``score`` (None: the votes alone decide)."""
    return votes >= votes_needed(score)


def votes_needed(score: float | None) -> int:
    """The fewest votes that make a face with the face detector's ``score`` human under the rule above: counting
    can stop there, the verdict no longer changes (a clip checks every frame, so this is most of its cost)."""
    if score is None:
        return HUMAN_MIN_VOTES
    if score >= STRONG_SCORE:
        return 1
    return HUMAN_MIN_VOTES if score >= HUMAN_MIN_SCORE else STRONG_VOTES


@dataclass(frozen=True)
class FaceVerdict:
    """The outcome of `HumanFaceCheck.check`: ``kind`` is `HUMAN`, `ARTWORK` or `NOT_HUMAN`.

    ``votes`` is the independent detector's vote count (counting stops once the votes settle the verdict, see
    `votes_needed`, unless the check ran with ``full=True``); ``cues`` the measured numbers behind the verdict; ``reason`` a sentence for the user.
    """

    kind: str
    votes: int
    cues: dict[str, float] = field(default_factory=dict)
    reason: str = ""

    @property
    def is_human(self) -> bool:
        """Whether the face is a human's (a photograph or an artwork)."""
        return self.kind != NOT_HUMAN


def upright_face(image: np.ndarray, detection: Detection) -> tuple[np.ndarray, np.ndarray]:
    """The face cut out with the eye line level and its landmark extent `FACE_PX` pixels, in a `CROP_PX` square.

    Returns the RGB crop and the face points moved into it (MediaPipe's 468 mesh points, or all 68 iBUG points).
    """
    import cv2

    points = np.asarray(detection.landmarks, np.float64)
    if detection.scheme == "mediapipe478":
        right, left = points[RIGHT_EYE_OUTER], points[LEFT_EYE_OUTER]
        points = points[:_MESH_POINTS]
    else:
        right, left = points[_IBUG_EYES[0]], points[_IBUG_EYES[1]]
    centre = points.mean(axis=0)
    angle = float(np.degrees(np.arctan2(left[1] - right[1], left[0] - right[0])))
    level = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, 1.0)
    levelled = (points - centre) @ level[:, :2].T
    extent = float(max(np.ptp(levelled[:, 0]), np.ptp(levelled[:, 1]), 1e-6))
    warp = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, FACE_PX / extent)
    warp[:, 2] += CROP_PX / 2 - centre
    crop = cv2.warpAffine(image, warp, (CROP_PX, CROP_PX), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    return crop, points @ warp[:, :2].T + warp[:, 2]


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes ``a`` (N, 4) with one box ``b`` (4,), all ``x0, y0, x1, y1``."""
    ix = np.clip(np.minimum(a[:, 2], b[2]) - np.maximum(a[:, 0], b[0]), 0, None)
    iy = np.clip(np.minimum(a[:, 3], b[3]) - np.maximum(a[:, 1], b[1]), 0, None)
    inter = ix * iy
    union = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / np.maximum(union, 1e-9)


def artwork_cues(crop: np.ndarray, points: np.ndarray) -> dict[str, float]:
    """The colour numbers behind the artwork verdict: ``flat_colour_share`` of the face and ``saturation`` of the
    upright face crop (see the thresholds above)."""
    import cv2

    mask = np.zeros(crop.shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(points.astype(np.float32)).astype(np.int32), 1)
    mask = cv2.erode(mask, np.ones((5, 5), np.uint8)) > 0  # the face's inside, without its outline
    levels = (crop[mask] // COLOUR_STEP).astype(np.int32)
    keys = (levels[:, 0] * 16 + levels[:, 1]) * 16 + levels[:, 2]
    share = float(np.bincount(keys).max() / max(len(keys), 1)) if len(keys) else 0.0
    saturation = float(cv2.cvtColor(crop, cv2.COLOR_RGB2HSV)[..., 1].mean())
    return {"flat_colour_share": round(share, 4), "saturation": round(saturation, 2)}


class HumanFaceCheck:
    """Decides `HUMAN` / `ARTWORK` / `NOT_HUMAN` for a detected face (see the module docstring).

    Loads the cascades once; `check` is thread-safe (one lock: OpenCV cascades keep per-call scratch state).
    """

    def __init__(self) -> None:
        import cv2

        folder = cv2.data.haarcascades
        self._frontal = [self._load(cv2, folder + name) for name in _FRONTAL]
        self._profile = self._load(cv2, folder + _PROFILE)
        self._lock = threading.Lock()

    @staticmethod
    def _load(cv2, path: str):
        cascade = cv2.CascadeClassifier(path)
        if cascade.empty():  # the wheel ships these files; a damaged install is the only way to get here
            from invertavatar.errors import InvertAvatarError

            raise InvertAvatarError("damaged_install", f"OpenCV's face cascade {path} could not be loaded.",
                                    "Reinstall the backend (python install.py); the cascades come with opencv.")
        return cascade

    def votes(self, crop: np.ndarray, points: np.ndarray, enough: int | None = STRONG_VOTES) -> int:
        """Detection windows of all cascades overlapping the face; the cascades still to run are skipped once
        ``enough`` votes are in (None: every cascade runs)."""
        import cv2

        grey = cv2.equalizeHist(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY))
        box = np.array([*points.min(axis=0), *points.max(axis=0)])
        mirrored_box = np.array([CROP_PX - 1 - box[2], box[1], CROP_PX - 1 - box[0], box[3]])
        passes = [(c, grey, box) for c in self._frontal] + [(self._profile, grey, box),
                                                             (self._profile, grey[:, ::-1].copy(), mirrored_box)]
        total = 0
        with self._lock:
            for cascade, picture, target in passes:
                windows, _ = cascade.detectMultiScale2(picture, scaleFactor=_SCALE_FACTOR, minNeighbors=0,
                                                       minSize=(_MIN_WINDOW, _MIN_WINDOW),
                                                       maxSize=(_MAX_WINDOW, _MAX_WINDOW))
                if len(windows):
                    w = np.asarray(windows, np.float64)
                    boxes = np.stack([w[:, 0], w[:, 1], w[:, 0] + w[:, 2], w[:, 1] + w[:, 3]], axis=1)
                    total += int(np.count_nonzero(_iou(boxes, target) >= VOTE_MIN_IOU))
                if enough is not None and total >= enough:
                    break
        return total

    def check(self, image: np.ndarray, detection: Detection, full: bool = False) -> FaceVerdict:
        """The verdict for ``detection`` found in ``image`` (H×W×3 RGB uint8). ``full`` counts every vote (for
        calibration) instead of stopping once the face is confirmed human."""
        crop, points = upright_face(image, detection)
        votes = self.votes(crop, points, None if full else votes_needed(detection.score))
        cues: dict[str, float] = {"votes": float(votes)}
        if detection.score is not None:
            cues["detector_score"] = round(float(detection.score), 4)
        if not is_human_evidence(votes, detection.score):
            return FaceVerdict(NOT_HUMAN, votes, cues,
                               "an independent human-face detector (OpenCV's cascades) does not confirm the face "
                               "that the face landmarker found")
        cues.update(artwork_cues(crop, points))
        if cues["flat_colour_share"] >= FLAT_COLOUR_SHARE:
            return FaceVerdict(ARTWORK, votes, cues, "most of the face is one flat colour (a drawing or cartoon)")
        if GREY_SATURATION <= cues["saturation"] < MONOCHROME_SATURATION:
            return FaceVerdict(ARTWORK, votes, cues, "the picture is almost but not exactly grey (a statue, bronze "
                                                     "or toned print)")
        return FaceVerdict(HUMAN, votes, cues, "")
