"""A reconstruction job: frames → detection → incremental tracking and texture fusion → avatar bundle.

The CLI and the server both call :func:`run_job`; neither re-implements any of it. Frames are streamed: a clip is
never held in memory, each frame is detected and tracked, and only a crop around the face of a keyframe (a photo, or
a clip frame kept by the keyframe choice) is held until the keyframes are refined together (track/multiview.py)
and fused.
"""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from ..detect import Detection
from ..errors import CancelledError, InvertAvatarError
from ..headmodel import HeadModel, load_head_model
from ..io.bundle import Bundle, read_bundle, write_bundle
from ..io.frames import Frame, expand_inputs, open_source
from ..render import Camera
from ..texture import TextureFusion, bake_atlas, bake_photographed, frame_sharpness
from ..texture.skin_maps import bake_material_maps
from ..texture.skin_mask import skin_mask
from ..track import FrameFit, Tracker, TrackerState
from .avatar_mesh import mesh_arrays
from .face_check import FaceGate
from .clip_keyframes import ClipKeyframes, crop_view, face_crop
from .iris import IrisColour
from .mouth import MouthColour
from .selection import KeyframeSelector
from .tracks import TrackRecorder

Progress = Callable[[str, float, str], None]
TRACK_SHARE, TEXTURE_SHARE = 0.85, 0.95  # overall progress reached at the end of each stage


@dataclass
class JobSpec:
    """What to reconstruct and how (docs/architecture.md, "Pipeline")."""

    inputs: list[Path]
    output: Path
    refine: Path | None = None
    mode: str = "fit"
    head_model: str = "ict"
    every: int = 1
    max_frames: int = 16
    detector: str = "mediapipe"
    multiple_faces: str = "largest"
    texture_size: int = 1024  # fusion resolution per skin tile; the atlas stores 2048² skin tiles
    photometric_steps: int = 0  # keyframes after the first: align to the fused texture before fusing (0 = off)
    hair_colour: tuple[float, float, float] | None = None  # RGB 0..1 for the unseen scalp; a bald-scalp tone if None
    delight: bool = True  # divide each keyframe's fitted lighting out of the albedo (texture/delight.py)
    overwrite: bool = False
    accept_any_face: bool = False  # build even from faces the human-face check refuses (stated in the bundle)
    multiview_identity: bool = True  # refine the identity by the keyframes' colour agreement (track/multiview.py)
    hair: bool = True  # reconstruct the person's hair (hair/); off gives a bald head, as before


@dataclass
class JobResult:
    bundle: Path
    manifest: dict
    timings: dict[str, float]
    warnings: list[str] = field(default_factory=list)


PHOTO_CROP_SCALE = 3.0  # a photo keyframe keeps this many times its landmark box: the head, ears and neck


@dataclass
class _Keyframe:
    """A keyframe waiting to be fused: a crop of its frame (cut at ``offset``), its full-frame detection and fit."""

    crop: np.ndarray
    offset: tuple[int, int]
    detection: Detection  # full-frame coordinates
    fit: FrameFit
    sharpness: float


class _Job:
    """The state of one running job (kept out of run_job to keep each step small)."""

    def __init__(self, spec: JobSpec, progress: Progress | None, cancel: threading.Event | None) -> None:
        self.spec = spec
        self.report = progress or (lambda stage, fraction, message: None)
        self.cancel = cancel or threading.Event()
        self.timings: dict[str, float] = {"detect": 0.0, "track": 0.0, "texture": 0.0, "hair": 0.0, "neural": 0.0,
                                          "bundle": 0.0}
        self.warnings: list[str] = []
        self.seen = self.used = self.skipped = 0
        self.landmark_errors: list[float] = []
        self.keyframes: list[int] | None = None  # clips: the frame indices chosen as keyframes
        self.neural = None  # pipeline.neural_stage.NeuralStage in neural mode
        self.faces = FaceGate(spec.accept_any_face)  # the human-face check (pipeline.face_check)
        self.pending: list[_Keyframe] = []  # photo keyframes tracked but not yet fused
        self.identity_refinement = None  # track.multiview.MultiViewResult of this job's keyframes
        self.hair = None  # hair.HairStage when the job reconstructs hair
        self.neutral: np.ndarray | None = None  # the avatar's neutral head once its identity is final (hair frame)
        self.mouth = MouthColour()  # the open mouth's teeth and interior colours (pipeline/mouth.py)

    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise CancelledError()

    def timed(self, stage: str, started: float) -> None:
        self.timings[stage] += time.perf_counter() - started


def _validate(spec: JobSpec) -> list[Path]:
    if spec.mode not in ("fit", "neural"):
        raise InvertAvatarError("invalid_option", f"Unknown mode {spec.mode!r}.", "Use 'fit' or 'neural'.")
    if spec.mode == "neural":
        from .neural_check import require_neural_checkpoints  # says which files are missing

        require_neural_checkpoints(spec.head_model)
    if spec.every < 1 or spec.max_frames < 1:
        raise InvertAvatarError("invalid_option", "--every and --max-frames must be at least 1.", "")
    if spec.multiple_faces not in ("largest", "fail"):
        raise InvertAvatarError("invalid_option", f"Unknown multiple_faces {spec.multiple_faces!r}.",
                                "Use 'largest' or 'fail'.")
    if spec.output.exists() and not spec.overwrite and spec.output != spec.refine:
        raise InvertAvatarError("output_exists", f"{spec.output} already exists.",
                                "Choose another output name, or refine it with --refine.")
    return expand_inputs(spec.inputs)


def _sources(files: list[Path], stack: ExitStack):
    """Open every input first, so a bad file fails the job before any work is done."""
    sources = []
    for path in files:
        source = open_source(path)
        stack.callback(source.close)
        sources.append(source)
    clips = [s for s in sources if s.info.kind == "video"]
    if len(clips) > 1 or (clips and len(sources) > 1):
        raise InvertAvatarError("invalid_input", "Give either photos or one clip per job.",
                                "Reconstruct from the clip first, then refine the avatar with the photos.")
    return sources


def _restore(spec: JobSpec, model: HeadModel, tracker: Tracker, fusion: TextureFusion) -> Bundle | None:
    if spec.refine is None:
        return None
    previous = read_bundle(spec.refine)
    if previous.manifest.get("head_model", {}).get("checksum") != model.checksum:
        raise InvertAvatarError("head_model_mismatch", f"{spec.refine.name} was built with another head model.",
                                "Refine with the same head model, or reconstruct from scratch.")
    if "tracker.json" not in previous.state or "texture_fusion.npz" not in previous.state:
        raise InvertAvatarError("no_state", f"{spec.refine.name} carries no incremental state to continue from.",
                                "Reconstruct the avatar again from all its photos.")
    tracker.state = TrackerState.from_bytes(previous.state["tracker.json"])
    fusion.load_bytes(previous.state["texture_fusion.npz"])
    return previous


def _camera(fit: FrameFit) -> Camera:
    k, r, t = fit.camera_tensors()
    return Camera(k, r, t, fit.image_size[1], fit.image_size[0])


def _frames(job: _Job, sources) -> Iterator[tuple[Frame, bool, int | None]]:
    """Every frame of every source, with whether it comes from a clip and the source's frame count."""
    for source in sources:
        is_clip = source.info.kind == "video"
        for frame in source:
            job.check_cancel()
            if is_clip and frame.index % job.spec.every:
                continue
            yield frame, is_clip, source.info.frame_count


def run_job(spec: JobSpec, progress: Progress | None = None,
            cancel: threading.Event | None = None) -> JobResult:
    """Run one reconstruction (or refinement) and write its bundle atomically; see the module docstring."""
    job = _Job(spec, progress, cancel)
    files = _validate(spec)
    model = load_head_model(spec.head_model)
    tracker = Tracker(model)
    fusion = TextureFusion(model, spec.texture_size)
    previous = _restore(spec, model, tracker, fusion)
    initial_state = tracker.state  # a clip's avatar identity starts from here (states are never changed in place)
    iris = IrisColour.from_bytes(previous.state["iris.json"]) if previous and "iris.json" in previous.state \
        else IrisColour()
    neural = None
    if spec.mode == "neural":
        from .neural_stage import STATE_FILE, NeuralStage

        neural = NeuralStage(model, previous.state.get(STATE_FILE) if previous else None)
    job.neural = neural
    if previous is not None and "mouth.json" in previous.state:
        job.mouth = MouthColour.from_bytes(previous.state["mouth.json"])  # a refinement adds to the mouth's sums
    if spec.hair:
        from ..hair import HairStage
        from ..hair.stage import STATE_FILE as HAIR_STATE

        job.hair = HairStage(model)
        if previous is not None and HAIR_STATE in previous.state:
            job.hair.load_bytes(previous.state[HAIR_STATE])  # a refinement carves on from the avatar's hair
    try:
        return _run(job, files, model, tracker, fusion, previous, initial_state, iris)
    finally:
        if job.hair is not None:
            job.hair.close()  # its segmenter: MediaPipe's threads must not outlive the job


def _run(job: _Job, files: list[Path], model: HeadModel, tracker: Tracker, fusion: TextureFusion,
         previous: Bundle | None, initial_state: TrackerState, iris: "IrisColour") -> JobResult:
    """The body of `run_job`: every frame, the keyframes, the bundle."""
    spec = job.spec
    from ..detect import make_detector

    with ExitStack() as stack:
        sources = _sources(files, stack)
        detector = stack.enter_context(make_detector(spec.detector, multiple_faces=spec.multiple_faces))
        clip = next((s for s in sources if s.info.kind == "video"), None)
        recorder = None
        selector = KeyframeSelector(max_keyframes=spec.max_frames if clip else max(spec.max_frames, len(sources)))
        clip_keyframes = ClipKeyframes(spec.max_frames) if clip else None
        job.report("detect", 0.0, f"reading {len(files)} input file(s)")
        for frame, is_clip, count in _frames(job, sources):
            fit = _process_frame(job, frame, is_clip, detector, tracker, fusion, selector, iris, clip_keyframes)
            if fit is None:
                continue
            if is_clip:
                if recorder is None:
                    recorder = TrackRecorder(model.rig.heads[2], clip.info.fps, clip.info.name)
                recorder.add(fit)
            total = count if is_clip and count else len(sources)
            done = (frame.index + 1) if is_clip else job.seen
            job.report("track", TRACK_SHARE * min(done / max(total, 1), 1.0),
                       f"frame {done}/{total}: landmark error {fit.landmark_error_iod:.1%}")
    if job.pending:
        _use_photo_keyframes(job, tracker, fusion, iris, initial_state)
    if clip_keyframes is not None:
        # A clip's avatar comes from the keyframes chosen over the whole clip; the tracker that followed the clip
        # (its identity updated online, for tracking) is not the avatar's.
        tracker = Tracker(model, state=initial_state)
        _use_clip_keyframes(job, clip_keyframes, tracker, fusion, iris, initial_state)
    if job.used == 0 and job.faces.refusal(files):  # faces were found, but none was a human's
        raise job.faces.refusal(files)
    if job.used == 0:
        raise InvertAvatarError("no_face", f"No face was found in any frame of {', '.join(f.name for f in files)}.",
                                "Use photos or a clip in which one human face is clearly visible.")
    return _write(job, model, tracker, fusion, previous, recorder, iris)


def _process_frame(job: _Job, frame: Frame, is_clip: bool, detector, tracker: Tracker, fusion: TextureFusion,
                   selector: KeyframeSelector, iris: "IrisColour",
                   clip_keyframes: ClipKeyframes | None) -> FrameFit | None:
    """Detect and track one frame. A photo is used for the avatar at once; a clip frame is offered to the clip's
    keyframe choice (``clip_keyframes``), and updates the tracking identity when the online selector takes it."""
    job.seen += 1
    started = time.perf_counter()
    try:
        detection = detector.detect(frame.image, frame.label)
        if not job.faces.admit(frame.image, detection, is_clip):  # not a human face: a clip frame is skipped
            job.skipped += 1
            return None
    except InvertAvatarError as exc:
        if is_clip and exc.code in ("no_face", "several_faces"):
            job.skipped += 1  # clips: a frame without a (single) face is skipped and counted
            return None
        raise
    finally:
        job.timed("detect", started)
    job.warnings.extend(w for w in detection.warnings if w not in job.warnings)
    started = time.perf_counter()
    sharpness = frame_sharpness(frame.image, detection.box)
    # The pose of this frame is known only after fitting; a clip frame updates the tracking identity when it
    # might be a new view (photos always do).
    guess = tracker.previous.rotation if (is_clip and tracker.previous is not None) else None
    candidate = selector.consider(frame.index if is_clip else job.seen - 1, sharpness, guess if is_clip else None)
    candidate = candidate or not is_clip
    try:
        fit = tracker.add_frame(detection, frame.image.shape[:2], frame.index, frame.time, keyframe=candidate,
                                consecutive=is_clip)
    except InvertAvatarError as exc:
        if is_clip and exc.code == "implausible_face":
            job.skipped += 1
            return None
        raise
    finally:
        job.timed("track", started)
    job.landmark_errors.append(fit.landmark_error_iod)
    if candidate:
        selector.accept(fit.rotation)
    if clip_keyframes is not None:
        clip_keyframes.offer(frame.index, frame.time, frame.image, detection, fit, sharpness)
    elif job.spec.multiview_identity:  # fused once the job's keyframes have been refined together
        crop, offset = face_crop(frame.image, detection.box, PHOTO_CROP_SCALE)
        job.pending.append(_Keyframe(crop, offset, detection, fit, sharpness))
    else:
        _use_keyframe(job, frame.image, detection, fit, tracker, fusion, iris, sharpness)
    return fit


def _final_fits(job: _Job, tracker: Tracker, prior: TrackerState,
                keyframes: list[tuple[Detection, FrameFit, np.ndarray, tuple[int, int]]]) -> list[FrameFit]:
    """The keyframes' fits for fusion. With `JobSpec.multiview_identity` and two or more keyframes, each
    (detection, fit, crop, offset) is refitted under the job's final identity (earlier keyframes were fitted under an
    earlier one), then the identity and every keyframe are refined together by the colours they agree on
    (track/multiview.py); otherwise the fits stay as tracked. ``prior`` is the state before the job."""
    from ..track.multiview import KeyframeView, refine_identity

    if len(keyframes) < 2 or not job.spec.multiview_identity:
        return [fit for _, fit, _, _ in keyframes]
    started = time.perf_counter()
    fits = []
    for detection, fit, _, _ in keyframes:
        try:
            refit = tracker.add_frame(detection, fit.image_size, fit.index, fit.time, keyframe=False)
        except InvertAvatarError:
            refit = fit  # fitted before under an earlier identity; keep that fit
        refit.keyframe = True
        fits.append(refit)
    job.report("track", TRACK_SHARE, f"refining the shape on {len(fits)} keyframes")
    views = [KeyframeView(detection, fit, crop, offset) for (detection, _, crop, offset), fit in zip(keyframes, fits)]
    job.identity_refinement = refine_identity(tracker, views, prior)
    job.timed("track", started)
    return fits


def _use_photo_keyframes(job: _Job, tracker: Tracker, fusion: TextureFusion, iris: "IrisColour",
                         prior: TrackerState) -> None:
    """Fuse the job's photos, in order, once their identity is final (see `_final_fits`)."""
    pending, job.pending = job.pending, []
    fits = _final_fits(job, tracker, prior, [(k.detection, k.fit, k.crop, k.offset) for k in pending])
    for keyframe, fit in zip(pending, fits):
        job.check_cancel()
        image, detection, view = crop_view(keyframe.crop, keyframe.offset, keyframe.detection, fit)
        _use_keyframe(job, image, detection, view, tracker, fusion, iris, keyframe.sharpness,
                      full=(keyframe.detection, fit))


def _use_clip_keyframes(job: _Job, keyframes: ClipKeyframes, tracker: Tracker, fusion: TextureFusion,
                        iris: "IrisColour", prior: TrackerState) -> None:
    """Refit the chosen clip keyframes as keyframes of the avatar's identity, then fuse them from their stored crops
    robustly: each texel's samples are judged against the plain mean of all of them (texture/fusion.py)."""
    chosen = keyframes.choose()
    fitted = []
    for n, candidate in enumerate(chosen):
        job.check_cancel()
        job.report("texture", TRACK_SHARE * (1 + 0.05 * n / max(len(chosen), 1)),
                   f"keyframe {n + 1}/{len(chosen)} (clip frame {candidate.index})")
        started = time.perf_counter()
        try:
            fit = tracker.add_frame(candidate.detection, candidate.image_size, candidate.index, candidate.time,
                                    keyframe=True, consecutive=False)
        except InvertAvatarError as exc:
            if exc.code != "implausible_face":
                raise
            continue  # tracked in context, but not fitted on its own: not a keyframe
        finally:
            job.timed("track", started)
        fitted.append((candidate, fit))
    fits = _final_fits(job, tracker, prior, [(c.detection, fit, c.crop, c.offset) for c, fit in fitted])
    fitted = [(candidate, fit, *candidate.crop_view(fit)) for (candidate, _), fit in zip(fitted, fits)]
    started = time.perf_counter()
    samples = [None] * len(fitted)
    if len(fitted) >= 3:  # with two frames, neither can outvote the other
        fusion.reference = fusion.snapshot()
        for n, (candidate, _, image, detection, view) in enumerate(fitted):
            job.check_cancel()
            samples[n] = fusion.unwrap(image, _vertices(tracker, view), _camera(view), candidate.sharpness,
                                       skin=skin_mask(image, detection), delight=job.spec.delight)
            fusion.reference.add_samples(samples[n])
    job.timed("texture", started)
    try:
        for n, (candidate, fit, image, detection, view) in enumerate(fitted):
            job.check_cancel()
            _use_keyframe(job, image, detection, view, tracker, fusion, iris, candidate.sharpness,
                          full=(candidate.detection, fit), samples=samples[n])
            samples[n] = None  # bounded: each keyframe's samples are let go once fused
    finally:
        fusion.reference = None
    job.keyframes = [c.index for c in chosen]


def _vertices(tracker: Tracker, fit: FrameFit) -> np.ndarray:
    """The fitted head of one frame without its pose (model space), with the current identity."""
    return tracker.model.evaluate(torch.from_numpy(tracker.identity).float()[None],
                                  torch.from_numpy(fit.expression).float()[None])[0].numpy()


def mesh_neutral(tracker: Tracker) -> np.ndarray:
    """The avatar's neutral head with the current identity (model space): the frame the hair is built in."""
    zeros = torch.zeros(1, tracker.model.expression_basis.shape[0])
    return tracker.model.evaluate(torch.from_numpy(tracker.identity).float()[None], zeros)[0].numpy()


def _use_keyframe(job: _Job, image: np.ndarray, detection, fit: FrameFit, tracker: Tracker, fusion: TextureFusion,
                  iris: "IrisColour", sharpness: float, full: tuple | None = None,
                  samples: list | None = None) -> None:
    """Fuse one keyframe into the texture (and the neural state). ``image``/``detection``/``fit`` may be a crop of
    the frame; ``full`` is then its full-frame (detection, fit), which the photometric landmark term needs.
    ``samples`` is the keyframe's `TextureFusion.unwrap` if already made (unless the photometric step moves it)."""
    job.used += 1
    started = time.perf_counter()
    if job.spec.photometric_steps and fusion.frames:
        samples = None  # the fit is about to move
        from ..track.photometric import FaceTexture

        texture = FaceTexture(tracker.model, *fusion.mean_colour("face"))
        if full is None:
            tracker.refine_photometric(fit, detection, image, texture, job.spec.photometric_steps)
        else:
            tracker.refine_photometric(full[1], full[0], image, texture, job.spec.photometric_steps,
                                       crop=(image, detection, fit))
    vertices = _vertices(tracker, fit)
    skin = skin_mask(image, detection) if samples is None or job.hair is not None else None
    if samples is None:
        samples = fusion.unwrap(image, vertices, _camera(fit), sharpness, skin=skin, delight=job.spec.delight)
    fusion.add_samples(samples)
    iris.add(image, detection)
    job.mouth.add(image, detection)
    job.timed("texture", started)
    if job.hair is not None:
        started = time.perf_counter()
        if job.neutral is None:
            job.neutral = mesh_neutral(tracker)
        job.hair.add(image, detection, _camera(fit), vertices, job.neutral, skin)
        job.timed("hair", started)
    if job.neural is not None:
        started = time.perf_counter()
        job.neural.add(image, detection.box, fit, vertices)
        job.timed("neural", started)


def _write(job: _Job, model: HeadModel, tracker: Tracker, fusion: TextureFusion, previous: Bundle | None,
           recorder: TrackRecorder | None, iris: "IrisColour") -> JobResult:
    job.check_cancel()
    spec = job.spec
    job.warnings.extend(job.faces.warnings(clip=recorder is not None))
    hair = None
    scalp_colour = spec.hair_colour
    if job.hair is not None:
        started = time.perf_counter()
        job.report("texture", TRACK_SHARE, "growing the hair")
        from ..texture.albedo_level import fused_level

        # The hair shares the keyframes' light with the skin, and the exposure the skin's level corrects.
        exposure = fused_level(fusion, iris.sclera_photographed()).exposure_scale
        job.hair.gain = delighting_gain(fusion) * exposure
        hair = job.hair.finish()
        if scalp_colour is None and hair.root_colour is not None:
            scalp_colour = tuple(float(c) for c in hair.root_colour)  # thin hair must not show a bald scalp
        job.timed("hair", started)
    started = time.perf_counter()
    job.report("texture", TRACK_SHARE, "baking the texture atlas")
    albedo, coverage, figures = bake_atlas(fusion, iris.colour(), sclera_colour=iris.sclera(),
                                           scalp_colour=scalp_colour, iris_radius_iod=iris.radius_iod(),
                                           sclera_photographed=iris.sclera_photographed(),
                                           iris_pattern=iris.pattern(),  # the photo's iris (pipeline/iris.py)
                                           mouth=job.mouth)  # the open mouth's colours (pipeline/mouth.py)
    photographed = bake_photographed(fusion, albedo, scalp_colour)
    material_maps = bake_material_maps(model, albedo, coverage)  # roughness, specular, normal (texture/skin_maps.py)
    job.timed("texture", started)
    job.check_cancel()
    started = time.perf_counter()
    job.report("bundle", TEXTURE_SHARE, "writing the avatar bundle")
    frames = {"seen": job.seen, "used": job.used, "skipped": job.skipped}
    if previous is not None:
        frames = {k: frames[k] + int(previous.manifest.get("frames", {}).get(k, 0)) for k in frames}
    tracks = recorder.to_json() if recorder else (previous.tracks if previous else None)
    errors = np.array(job.landmark_errors)
    manifest = {
        "mode": spec.mode,
        "head_model": {"id": model.name, "checksum": model.checksum},
        "frames": frames,
        "coverage": round(figures["coverage"], 4),
        "metrics": {"landmark_error_iod_mean": round(float(errors.mean()), 5),
                    "landmark_error_iod_max": round(float(errors.max()), 5),
                    "coverage_face": round(figures["coverage_face"], 4),
                    "coverage_back_head": round(figures["coverage_back_head"], 4),
                    "focal_ratio": round(float(np.exp(tracker.state.mean[-1])), 4),
                    "keyframes_total": tracker.state.keyframes},
        "keyframes": job.keyframes,
        "arkit": {"available": [n for n, a in zip(_arkit_names(), model.arkit.available) if a],
                  "missing": list(model.arkit.missing)},
        "timings_s": {k: round(v, 3) for k, v in job.timings.items()},
        "warnings": job.warnings,
        "face_check": job.faces.manifest(clip=recorder is not None),
        "refined_from": previous.manifest.get("created") if previous else None,
        "identity_refinement": job.identity_refinement.summary() if job.identity_refinement else None,
        "hair": hair.manifest if hair is not None else {"found": False, "method": "off"},
        "albedo_level": figures.get("albedo_level"),  # texture/albedo_level.py
        "mouth": figures.get("mouth"),  # the measured teeth / gums colours (pipeline/mouth.py); {} = defaults
    }
    state = {"tracker.json": tracker.state.to_bytes(), "texture_fusion.npz": fusion.to_bytes(),
             "iris.json": iris.to_bytes(), "mouth.json": job.mouth.to_bytes()}
    if job.hair is not None:
        from ..hair.stage import STATE_FILE as HAIR_STATE

        state[HAIR_STATE] = job.hair.to_bytes()
    mesh = mesh_arrays(model, tracker.identity)
    neural_baked = None
    if job.neural is not None:
        from .neural_bake import bake_neural_texture
        from .neural_stage import STATE_FILE

        started_bake = time.perf_counter()
        job.report("neural", TEXTURE_SHARE, f"inverting {job.neural.frames} keyframe(s)")
        state[STATE_FILE] = job.neural.state_bytes()  # the collected keyframes are inverted here
        manifest["metrics"]["neural_frames"] = job.neural.frames

        def bake_progress(stage: str, fraction: float, message: str) -> None:  # within the bundle's share
            job.report(stage, TEXTURE_SHARE + 0.9 * (1.0 - TEXTURE_SHARE) * fraction, message)

        neural_baked, _, manifest["neural_bake"] = bake_neural_texture(
            job.neural, mesh, model, iris.colour(), albedo.shape[0] // 2, bake_progress, job.cancel,
            sclera_colour=iris.sclera(), scalp_colour=scalp_colour, iris_radius_iod=iris.radius_iod())
        job.timed("neural", started_bake)
    bundle = Bundle(manifest=manifest, mesh=mesh, albedo=albedo, coverage=coverage, neural_baked=neural_baked,
                    tracks=tracks, state=state, photographed=photographed,
                    hair=hair.arrays if hair is not None else None, hair_params=hair.params if hair is not None else None)
    bundle.material_maps = material_maps
    job.check_cancel()  # last chance: after this the bundle appears whole or not at all
    path = write_bundle(spec.output, bundle, overwrite=spec.overwrite or spec.output == spec.refine)
    job.timed("bundle", started)
    manifest["timings_s"] = {k: round(v, 3) for k, v in job.timings.items()}
    job.report("bundle", 1.0, f"wrote {path.name}")
    return JobResult(bundle=path, manifest=bundle.manifest, timings=dict(job.timings), warnings=job.warnings)


def delighting_gain(fusion: TextureFusion) -> np.ndarray:
    """(3,) linear: the fused face's albedo over its photographed colour, the de-lighting a keyframe's other pixels
    (the hair) need to be comparable with the skin."""
    from ..texture.albedo_level import srgb_to_linear

    albedo, weight = fusion.mean_colour("face")
    photo, _ = fusion.mean_colour("face", photographed=True)
    seen = weight > 1e-3
    if seen.sum() < 100:
        return np.ones(3)
    ratio = srgb_to_linear(albedo[seen]).mean(0) / np.maximum(srgb_to_linear(photo[seen]).mean(0), 1e-4)
    return np.clip(ratio, 0.25, 4.0)


def _arkit_names() -> tuple[str, ...]:
    from ..headmodel import ARKIT_NAMES

    return ARKIT_NAMES


__all__ = ["JobResult", "JobSpec", "run_job"]
