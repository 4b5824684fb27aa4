"""Request and response shapes of HTTP API v1 (they make up /v1/openapi.json)."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from invertavatar.headmodel.arkit import ARKIT_NAMES

JobState = Literal["queued", "running", "done", "failed", "cancelled"]
ID_PATTERN = r"^[0-9a-f]{32}$"


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. `no_face`, `queue_full`.")
    message: str = Field(description="What went wrong.")
    hint: str = Field(description="What to do about it (may be empty).")


class ErrorBody(BaseModel):
    error: ErrorDetail


class ModelInfo(BaseModel):
    installed: bool
    path: str | None = Field(None, description="Where the file is (when installed).")
    hint: str | None = Field(None, description="How to install it (when missing).")


class Health(BaseModel):
    status: Literal["ok"]
    backend_version: str
    api_version: str
    device: str = Field(description="The compute device, e.g. `cpu (8 threads)` or `cuda:0 (NVIDIA RTX 4090)`.")
    models: dict[str, ModelInfo]


class JobOptions(BaseModel):
    """The `options` form field of `POST /v1/jobs`, as a JSON object. Every key is optional; a missing key takes
    the pipeline's own default (`invertavatar.pipeline.JobSpec`), so the CLI and the service behave alike."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["fit", "neural"] | None = Field(None, description="`fit`: head model + texture (default); "
                                                                    "`neural`: also the neural inversion "
                                                                    "(needs a checkpoint).")
    head_model: Literal["ict", "faceverse"] | None = Field(None, description="Default `ict`.")
    every: int | None = Field(None, ge=1, le=1000, description="Use every n-th frame of a clip (default 1).")
    max_frames: int | None = Field(None, ge=1, le=100000, description="Use at most this many frames.")
    multiple_faces: Literal["largest", "fail"] | None = Field(
        None, description="Several faces in a frame: track the `largest` (default), or `fail`.")
    detector: Literal["mediapipe", "fan"] | None = Field(None, description="Default `mediapipe`.")
    accept_any_face: bool | None = Field(
        None, description="Build even from faces the human-face check refuses (`not_a_human_face`, e.g. animals); "
                          "the bundle's manifest says so. Default false.")
    hair: bool | None = Field(
        None, description="Reconstruct the person's hair into the bundle's `hair/` (default true); false gives a "
                          "bald head.")


class JobAccepted(BaseModel):
    job_id: str
    state: JobState


class Job(BaseModel):
    job_id: str
    state: JobState
    stage: str = Field(description="Current pipeline stage: detect, track, texture, neural, bundle (or empty).")
    progress: float = Field(ge=0.0, le=1.0)
    message: str
    avatar_id: str | None = Field(description="The avatar this job makes or refines (set once known).")
    error: ErrorDetail | None
    warnings: list[str] = Field(default_factory=list, description="Warnings of a finished job (also in the bundle's "
                                "manifest), e.g. that the face looks like an artwork.")
    created: str = Field(description="ISO 8601 UTC time.")
    updated: str = Field(description="ISO 8601 UTC time.")


Weight = Annotated[float, Field(ge=0.0, le=1.0)]
Angle = Annotated[float, Field(ge=-math.pi, le=math.pi)]


class RenderCamera(BaseModel):
    """A pinhole camera in the avatar's frame (backend axes: metres, +Y up, the face towards +Z), OpenCV convention
    (x right, y down, z forward): ``x_cam = R @ x + t``, pixels = ``K @ x_cam``, pixel centres at +0.5. The add-on
    sends its scene or viewport camera this way; the picture is the request's width × height."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    K: list[list[float]] = Field(min_length=3, max_length=3, description="3×3 intrinsics in pixels (row-major).")
    R: list[list[float]] = Field(min_length=3, max_length=3, description="3×3 rotation, world → camera.")
    t: list[float] = Field(min_length=3, max_length=3, description="Translation, world → camera (metres).")

    @field_validator("K", "R")
    @classmethod
    def _three_by_three(cls, value: list[list[float]]) -> list[list[float]]:
        if any(len(row) != 3 for row in value):
            raise ValueError("must be a 3×3 matrix (three rows of three numbers)")
        return value

    @field_validator("K")
    @classmethod
    def _intrinsics(cls, value: list[list[float]]) -> list[list[float]]:
        if value[0][0] <= 0 or value[1][1] <= 0 or value[2] != [0.0, 0.0, 1.0] or value[1][0] != 0.0:
            raise ValueError("K must be [[fx, s, cx], [0, fy, cy], [0, 0, 1]] with positive focal lengths")
        return value

    @field_validator("R")
    @classmethod
    def _rotation(cls, value: list[list[float]]) -> list[list[float]]:
        gram = [[sum(value[k][i] * value[k][j] for k in range(3)) for j in range(3)] for i in range(3)]
        if any(abs(gram[i][j] - (i == j)) > 1e-3 for i in range(3) for j in range(3)):
            raise ValueError("R must be a rotation matrix (orthonormal rows)")
        return value


class RenderRequest(BaseModel):
    """A preview of an avatar: expression, head pose and camera. Angles in degrees, sizes in pixels."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    arkit: dict[str, Weight] = Field(default_factory=dict, description="ARKit blendshape weights by name; "
                                                                       "missing names are 0.")
    head_rotation: list[float] = Field([1.0, 0.0, 0.0, 0.0], min_length=4, max_length=4,
                                       description="Head rotation as a unit quaternion [w, x, y, z] (backend axes).")
    head_translation: list[Annotated[float, Field(ge=-1.0, le=1.0)]] = Field(
        [0.0, 0.0, 0.0], min_length=3, max_length=3, description="Head offset in metres (backend axes).")
    width: int = Field(512, ge=16, le=2048)
    height: int = Field(512, ge=16, le=2048)
    yaw: float = Field(0.0, ge=-180.0, le=180.0, description="Camera orbit around the head; positive moves the "
                                                             "camera towards the subject's left.")
    background: list[Weight] = Field([0.5, 0.5, 0.5], min_length=3, max_length=3, description="RGB in 0..1 "
                                     "(the albedo renderer; the neural one draws the background its prior learned).")
    renderer: Literal["albedo", "neural"] | None = Field(
        None, description="`albedo`: the fitted mesh with its fused texture; `neural`: the prior with the avatar's "
                          "inversion state. Default: `neural` when the avatar has a neural state, else `albedo`. "
                          "The response header `X-InvertAvatar-Renderer` says which one drew the picture.")
    camera: RenderCamera | None = Field(None, description="The camera in the avatar's frame (e.g. Blender's scene "
                                                          "camera); when given, `yaw` is ignored.")
    gaze: dict[Literal["eye_L", "eye_R"], list[Angle]] | None = Field(
        None, description="Per-eye gaze [pitch, yaw] in radians (as in tracks.json): +pitch up, +yaw towards the "
                          "subject's left.")
    neural_resolution: int | None = Field(None, ge=4, le=512, description="Rays per side for the neural renderer "
                                                                          "(lower is faster; default: the prior's).")
    super_resolution: bool = Field(True, description="Neural renderer: `false` shows the raw volume render without "
                                                     "the super-resolution (much faster at the official size).")

    @field_validator("gaze")
    @classmethod
    def _two_angles(cls, value: dict[str, list[float]] | None) -> dict[str, list[float]] | None:
        if value is not None and any(len(v) != 2 for v in value.values()):
            raise ValueError("each eye's gaze is [pitch, yaw]")
        return value

    @field_validator("arkit")
    @classmethod
    def _known_names(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(ARKIT_NAMES))
        if unknown:
            raise ValueError(f"unknown ARKit names {unknown[:5]}; use Apple's 52 names, e.g. 'jawOpen'")
        return value

    @field_validator("head_rotation")
    @classmethod
    def _unit_quaternion(cls, value: list[float]) -> list[float]:
        norm = math.sqrt(sum(v * v for v in value))
        if not math.isfinite(norm) or norm < 1e-6:
            raise ValueError("head_rotation must be a non-zero quaternion [w, x, y, z]")
        return [v / norm for v in value]


Number = Annotated[float, Field(strict=True)]  # a JSON number (an integer passes); never a string or a bool


class TrackFrame(BaseModel):
    """One frame of a tracks.json (docs/bundle-format.md); other keys (e.g. `time`) are kept as given."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    index: int = Field(strict=True, ge=0, description="Frame number in the source.")
    time: Number | None = None
    arkit: list[Number] = Field(description="The ARKit weights, in the order of `arkit_names`.")
    head_rotation: list[Number] | None = Field(None, min_length=4, max_length=4,
                                               description="Unit quaternion [w, x, y, z].")
    head_translation: list[Number] | None = Field(None, min_length=3, max_length=3, description="Metres.")
    gaze: dict[Literal["eye_L", "eye_R"], Annotated[list[Number], Field(min_length=2, max_length=2)]] | None = \
        Field(None, description="Per eye [pitch, yaw] in radians.")


class Tracks(BaseModel):
    """A tracks.json object, checked strictly: a malformed performance is a 422 now, not a failed job later."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    fps: Number | None = Field(None, gt=0, le=240)
    arkit_names: list[Annotated[str, Field(strict=True)]] | None = Field(
        None, description="Names of the `arkit` weights (default: Apple's 52, in ARKit order).")
    frames: list[TrackFrame] = Field(min_length=1, max_length=100000)

    @model_validator(mode="after")
    def _weights_match_names(self) -> "Tracks":
        count = len(self.arkit_names) if self.arkit_names else len(ARKIT_NAMES)
        bad = next((i for i, frame in enumerate(self.frames) if len(frame.arkit) != count), None)
        if bad is not None:
            raise ValueError(f"frames[{bad}].arkit has {len(self.frames[bad].arkit)} weights; "
                             f"{'arkit_names lists' if self.arkit_names else 'without arkit_names it needs'} {count}")
        return self


class AnimateRequest(BaseModel):
    """`POST /v1/avatars/{id}/animate`: render the avatar for every frame of a performance into a video (a job).
    The performance is tracks.json's content (docs/bundle-format.md), e.g. the Blender scene's keyed frames."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    tracks: Tracks = Field(description="A tracks.json object: `fps`, `arkit_names` and `frames` (each with `index`, "
                                       "`arkit`, and optionally `head_rotation`, `head_translation`, `gaze`).")
    renderer: Literal["albedo", "neural"] | None = Field(None, description="Default: as for renders.")
    size: int = Field(512, ge=16, le=2048, description="Side of the avatar picture in pixels.")
    fps: float | None = Field(None, gt=0, le=240, description="Frame rate (default: the tracks').")
    neural_resolution: int | None = Field(None, ge=4, le=512)
