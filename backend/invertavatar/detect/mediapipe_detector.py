"""MediaPipe Face Landmarker (Tasks API, mediapipe 1.2.2): box, 478 landmarks, 52 ARKit scores and head pose.

The model bundle ``face_landmarker.task`` is an asset (see `find_task_file`). Besides the landmarker, the bundle's
own short-range face detector is run once more on its own to report a confidence score, which the landmarker does
not expose; it costs a few milliseconds per frame and gives the plausibility signal in `Detection.score`.
"""

from __future__ import annotations

import atexit
import threading
import weakref
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from invertavatar.detect.base import Detection, as_rgb_uint8, box_from_points, no_face_error, pick_face
from invertavatar.detect.landmark_schemes import LEFT_EYE_OUTER, RIGHT_EYE_OUTER
from invertavatar.detect.mediapipe_mesh import canonical_face_mesh
from invertavatar.detect.native_logs import quiet_native_stderr
from invertavatar.detect.tiles import pose_to_full_frame, tile_grid, unique_faces
from invertavatar.errors import InvertAvatarError
from invertavatar.headmodel.arkit import ARKIT_NAMES

TASK_FILE = "face_landmarker.task"
TASK_SUBDIR = "mediapipe"
MAX_FACES = 4  # enough to count several faces and pick the largest
#: Vertical field of view of the virtual camera MediaPipe's geometry pipeline assumes when it computes the pose.
POSE_VERTICAL_FOV_DEG = 63.0

# MediaPipe's pose maps centimetres into an OpenGL-style camera (y up, looking down -z). Flipping y and z gives
# OpenCV's camera (y down, looking down +z); both are proper rotations, so the pose stays a rigid motion.
_GL_TO_CV = np.diag([1.0, -1.0, -1.0]).astype(np.float64)
_CM = 0.01


def find_task_file(model_path: str | Path | None = None) -> Path:
    """Locate ``face_landmarker.task``.

    ``model_path`` may name the file, or a folder holding it directly or in ``mediapipe/`` (an assets folder).
    Without it, the installed asset is used (`invertavatar.assets`: the models folder, then the offline folder
    ``INVERTAVATAR_ASSETS``). A missing file raises ``InvertAvatarError("asset_missing")`` saying how to install it.
    """
    if model_path is None:
        from invertavatar import assets

        return assets.find_asset(assets.LANDMARKER)
    path = Path(model_path).expanduser()
    candidates = [path / TASK_FILE, path / TASK_SUBDIR / TASK_FILE] if path.is_dir() else [path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise InvertAvatarError(
        "asset_missing",
        f"The MediaPipe face model {TASK_FILE} was not found (looked in: {', '.join(map(str, candidates))}).",
        "Run `python install.py` to fetch the models, or `python install.py --assets DIR` / set "
        f"INVERTAVATAR_ASSETS=DIR for an offline folder that contains {TASK_SUBDIR}/{TASK_FILE}.",
    )


# Detectors still open at interpreter exit are closed by an atexit hook, while MediaPipe's modules still exist;
# left to garbage collection during shutdown, MediaPipe's own finalisers print tracebacks.
_OPEN: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _close_open_detectors() -> None:
    for detector in list(_OPEN):
        detector.close()


@dataclass
class _Face:
    """One face of one MediaPipe run, already in whole-frame pixels."""

    xyz: np.ndarray
    box: np.ndarray
    blendshapes: np.ndarray | None
    blendshapes_valid: np.ndarray | None
    pose: np.ndarray | None
    score: float | None
    margin: float  # distance of the face from the border of the image or tile it was found in


class MediaPipeDetector:
    """`Detector` backed by MediaPipe's Face Landmarker in IMAGE mode (each call is independent).

    ``head_pose`` maps the canonical face mesh (`canonical_face_mesh`, converted to metres, backend axes) to OpenCV
    camera space in metres. Its rotation is what matters; its translation assumes MediaPipe's virtual camera: a
    pinhole with `POSE_VERTICAL_FOV_DEG` vertical field of view centred on the image (`pose_focal_px`).
    ``search_tiles`` (default on) looks for a small face in overlapping tiles when the whole frame shows none; it
    costs up to `tiles.MAX_TILES` extra passes, and only on frames without a face.
    """

    name = "mediapipe"
    scheme = "mediapipe478"

    def __init__(self, multiple_faces: str = "largest", model_path: str | Path | None = None,
                 search_tiles: bool = True) -> None:
        # Imported here so that importing invertavatar.detect stays cheap and works without mediapipe.
        from mediapipe.tasks.python import vision
        from mediapipe.tasks.python.core.base_options import BaseOptions

        self.multiple_faces = multiple_faces
        self.search_tiles = search_tiles
        self.task_path = find_task_file(model_path)
        try:
            with zipfile.ZipFile(self.task_path) as bundle:
                face_detector_model = bundle.read("face_detector.tflite")
        except (zipfile.BadZipFile, KeyError) as exc:
            raise InvertAvatarError(
                "damaged_asset", f"{self.task_path} is not a Face Landmarker bundle ({exc}).",
                "Reinstall the model with `python install.py`; it checks the file's SHA-256.",
            ) from exc
        self._canonical = canonical_face_mesh(self.task_path)[0].astype(np.float64)
        self._lock = threading.Lock()
        self._landmarker = self._face_detector = None
        try:
            with quiet_native_stderr():
                self._create_tasks(vision, BaseOptions, face_detector_model)
        except (RuntimeError, ValueError) as exc:  # MediaPipe's errors for a model it cannot load
            self.close()
            raise InvertAvatarError(
                "damaged_asset", f"MediaPipe cannot load {self.task_path}: {exc}.",
                "Reinstall the model with `python install.py`; it checks the file's SHA-256.",
            ) from exc
        _OPEN.add(self)

    def _create_tasks(self, vision, base_options, face_detector_model: bytes) -> None:
        """Create the landmarker and the face detector that scores its faces (MediaPipe's ``vision`` module and
        ``BaseOptions`` class are passed in: they are imported lazily)."""
        self._landmarker = vision.FaceLandmarker.create_from_options(vision.FaceLandmarkerOptions(
            base_options=base_options(model_asset_path=str(self.task_path)),
            running_mode=vision.RunningMode.IMAGE,
            num_faces=MAX_FACES,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        ))
        # A low threshold: we only read the score of the face the landmarker already accepted.
        self._face_detector = vision.FaceDetector.create_from_options(vision.FaceDetectorOptions(
            base_options=base_options(model_asset_buffer=face_detector_model),
            running_mode=vision.RunningMode.IMAGE,
            min_detection_confidence=0.05,
        ))

    # -- lifecycle -------------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Release the MediaPipe graphs (also done by ``with`` and, as a last resort, by garbage collection)."""
        tasks = [getattr(self, attr, None) for attr in ("_landmarker", "_face_detector")]
        self._landmarker = self._face_detector = None
        tasks = [t for t in tasks if t is not None]
        if tasks:
            with quiet_native_stderr():  # closing (and freeing) the graphs prints native INFO lines too
                for task in tasks:
                    task.close()
                del task
                tasks.clear()

    def __enter__(self) -> MediaPipeDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from a finaliser (e.g. at interpreter exit)
            pass

    # -- detection -------------------------------------------------------------------------------------------------
    @staticmethod
    def pose_focal_px(height: int) -> float:
        """Focal length in pixels of the virtual camera that `Detection.head_pose` assumes for this image height."""
        return 0.5 * height / np.tan(np.radians(POSE_VERTICAL_FOV_DEG) / 2.0)

    def detect(self, image: np.ndarray, source: str = "image") -> Detection:
        """Detect the face in ``image`` (see `Detector.detect`); landmarks are MediaPipe's 478 points.

        When the whole frame shows no face, overlapping tiles are searched for a small one (`invertavatar.detect.tiles`).
        """
        if self._landmarker is None:
            raise InvertAvatarError("detector_closed", "The MediaPipe detector was already closed.",
                                    "Create a new detector with make_detector().")
        rgb = as_rgb_uint8(image, source)
        height, width = rgb.shape[:2]
        # Inference prints native chatter too: on the first call and whenever the image size is new.
        with self._lock, quiet_native_stderr():
            faces = self._faces_in(rgb, (0, 0), (height, width))
            if not faces and self.search_tiles:
                for x, y, w, h in tile_grid(height, width):
                    faces += self._faces_in(rgb[y:y + h, x:x + w], (x, y), (height, width))
                keep = unique_faces([f.box for f in faces], [f.margin for f in faces])
                faces = [faces[i] for i in keep]
        if not faces:
            raise no_face_error(source)
        chosen, warnings = pick_face([f.box for f in faces], self.multiple_faces, source)
        face = faces[chosen]
        return Detection(
            box=face.box,
            landmarks=face.xyz[:, :2].astype(np.float32),
            landmarks_z=face.xyz[:, 2].astype(np.float32),
            scheme=self.scheme,
            blendshapes=face.blendshapes,
            head_pose=face.pose,
            faces_found=len(faces),
            warnings=warnings,
            score=face.score,
            shape_residual=self._shape_residual(face.xyz),
            blendshapes_valid=face.blendshapes_valid,
            source=source,
            image_size=(height, width),
        )

    def _faces_in(self, rgb: np.ndarray, origin: tuple[int, int], full_size: tuple[int, int]) -> list[_Face]:
        """Every face MediaPipe finds in ``rgb``, a tile at ``origin`` of a frame of ``full_size`` (H, W)."""
        import mediapipe as mp

        frame = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        result = self._landmarker.detect(frame)
        if not result.face_landmarks:
            return []
        detections = self._face_detector.detect(frame).detections
        height, width = rgb.shape[:2]
        full_height, full_width = full_size
        faces = []
        for k, landmarks in enumerate(result.face_landmarks):
            xyz = self._to_pixels(landmarks, width, height)
            local_box = box_from_points(xyz[:, :2], height, width)
            xyz[:, :2] += origin
            blendshapes, valid = (self._blendshapes(result.face_blendshapes[k]) if result.face_blendshapes
                                  else (None, None))
            pose = None
            if result.facial_transformation_matrixes:
                pose = self._pose(result.facial_transformation_matrixes[k])
                if (height, width) != full_size:
                    pose = pose_to_full_frame(
                        pose, origin, self.pose_focal_px(height), np.array([(width - 1) / 2, (height - 1) / 2]),
                        self.pose_focal_px(full_height), np.array([(full_width - 1) / 2, (full_height - 1) / 2]))
            faces.append(_Face(
                xyz=xyz, box=box_from_points(xyz[:, :2], full_height, full_width),
                blendshapes=blendshapes, blendshapes_valid=valid, pose=pose,
                score=self._score(detections, local_box),
                margin=float(min(local_box[0], local_box[1], width - 1 - local_box[2], height - 1 - local_box[3])),
            ))
        return faces

    @staticmethod
    def _to_pixels(face: list, width: int, height: int) -> np.ndarray:
        """(478, 3) pixels: MediaPipe's normalised [0, 1] image coordinates to OpenCV pixel centres; z scales
        like x (MediaPipe's convention)."""
        norm = np.array([(p.x, p.y, p.z) for p in face], dtype=np.float64)
        return np.stack([norm[:, 0] * width - 0.5, norm[:, 1] * height - 0.5, norm[:, 2] * width], axis=1)

    @staticmethod
    def _blendshapes(categories: list) -> tuple[np.ndarray, np.ndarray]:
        """Scores by name into ARKIT_NAMES order; names MediaPipe lacks stay 0 and are marked invalid."""
        by_name = {c.category_name: float(c.score) for c in categories}
        scores = np.array([by_name.get(n, 0.0) for n in ARKIT_NAMES], dtype=np.float32)
        valid = np.array([n in by_name for n in ARKIT_NAMES], dtype=bool)
        return np.clip(scores, 0.0, 1.0), valid

    @staticmethod
    def _pose(matrix: np.ndarray) -> np.ndarray:
        """MediaPipe's 4×4 (canonical cm → OpenGL camera cm) as backend metres → OpenCV camera metres."""
        m = np.asarray(matrix, dtype=np.float64)
        pose = np.eye(4)
        pose[:3, :3] = _GL_TO_CV @ m[:3, :3]
        pose[:3, 3] = _GL_TO_CV @ m[:3, 3] * _CM
        return pose.astype(np.float32)

    @staticmethod
    def _score(detections: list, box: np.ndarray) -> float | None:
        """Confidence of the face-detector box whose centre lies in the chosen face's box (the best such)."""
        best = None
        for det in detections:
            bb = det.bounding_box
            cx, cy = bb.origin_x + 0.5 * bb.width, bb.origin_y + 0.5 * bb.height
            if box[0] <= cx <= box[2] and box[1] <= cy <= box[3] and det.categories:
                score = float(det.categories[0].score)
                best = score if best is None else max(best, score)
        return best

    def _shape_residual(self, xyz: np.ndarray) -> float:
        """RMS residual of a similarity fit of the canonical mesh to the 468 face landmarks, in inter-ocular units."""
        target = xyz[: self._canonical.shape[0]]
        src = self._canonical
        mu_s, mu_t = src.mean(axis=0), target.mean(axis=0)
        s0, t0 = src - mu_s, target - mu_t
        u, sigma, vt = np.linalg.svd(t0.T @ s0)
        fix = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])  # keep a rotation, never a reflection
        rotation = u @ fix @ vt
        scale = float(np.trace(np.diag(sigma) @ fix) / np.sum(s0 ** 2))
        fitted = scale * s0 @ rotation.T
        rms = float(np.sqrt(np.mean(np.sum((fitted - t0) ** 2, axis=1))))
        iod = float(np.linalg.norm(target[LEFT_EYE_OUTER] - target[RIGHT_EYE_OUTER]))
        return rms / max(iod, 1e-6)
