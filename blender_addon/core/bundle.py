"""Reader for avatar bundles, format version 1 (docs/bundle-format.md), with the standard library and numpy only.

The add-on runs inside an artist's Blender, so it cannot use the backend's reader; both follow the same document.
Everything is checked before the scene is touched: version, checksums, array shapes, ARKit names.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .arkit import ARKIT_NAMES, match_names
from .errors import BAD_BUNDLE, AddonError

FORMAT_NAME = "invertavatar-bundle"
FORMAT_VERSION = 1
BONE_NAMES = ("root", "neck", "head", "jaw", "eye_L", "eye_R")
REQUIRED_FILES = ("mesh.npz", "textures/albedo.png", "textures/coverage.png")
#: The backend's artwork warning (invertavatar.pipeline.face_check.ARTWORK_WARNING), for the status line.
ARTWORK_NOTE = "this looks like an artwork: the texture is the artwork's colours"
_HINT = "Reconstruct the avatar again, or update the add-on if the bundle comes from a newer backend."


@dataclass
class Tracks:
    """A clip's performance, one row per tracked source frame, ARKit weights in ``ARKIT_NAMES`` order."""

    fps: float | None
    source: str
    indices: np.ndarray  # (N,) int64 source frame numbers
    times: np.ndarray  # (N,) float64 seconds
    arkit: np.ndarray  # (N, 52) float32
    head_rotation: np.ndarray  # (N, 4) float64 [w, x, y, z], backend axes
    head_translation: np.ndarray  # (N, 3) float64 metres, backend axes
    gaze: np.ndarray  # (N, 2, 2) float64 [eye_L, eye_R] x [pitch, yaw] radians


@dataclass
class Bundle:
    """An avatar bundle in backend axes (metres, +Y up, face towards +Z)."""

    root: Path
    manifest: dict
    vertices: np.ndarray
    faces: np.ndarray
    uv: np.ndarray
    face_uv: np.ndarray
    face_material: np.ndarray
    material_names: list[str]
    expression_names: list[str]
    expression_deltas: np.ndarray
    expression_available: np.ndarray
    bone_names: list[str]
    bone_parents: np.ndarray
    bone_heads: np.ndarray
    bone_tails: np.ndarray
    vertex_weights: np.ndarray
    tracks: Tracks | None = None
    textures: dict[str, Path] = field(default_factory=dict)

    @property
    def coverage(self) -> float:
        """Fraction of the texture seen in the inputs (0..1), as the backend reported it."""
        return float(self.manifest.get("coverage", 0.0))

    @property
    def face_note(self) -> str:
        """What the backend's human-face check says the artist should know (manifest ``face_check``): that the
        face looks like an artwork, or that faces it refused were accepted on request; empty otherwise and for
        bundles made before the check existed."""
        check = self.manifest.get("face_check")
        if not isinstance(check, dict):
            return ""
        notes = []
        if check.get("looks_like_artwork"):
            notes.append(ARTWORK_NOTE)
        if check.get("accept_any_face") and check.get("not_human"):
            notes.append("built from a face that does not look human (accept any face)")
        return "; ".join(notes)


def _fail(message: str) -> AddonError:
    return AddonError(BAD_BUNDLE, message, _HINT)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def extract_bundle_zip(zip_path: Path, dest: Path) -> Path:
    """Unpack a bundle zip (as served by ``GET /v1/avatars/{id}/bundle``) into ``dest``, refusing unsafe names."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(zip_path) as archive:
            for info in archive.infolist():
                name = info.filename
                target = (dest / name).resolve()
                if name.startswith("/") or ".." in Path(name).parts or dest.resolve() not in target.parents:
                    raise _fail(f"The bundle archive holds an unsafe path: {name!r}.")
            archive.extractall(dest)
    except zipfile.BadZipFile as exc:
        raise _fail(f"The bundle archive is damaged: {exc}.") from exc
    return dest


def _read_manifest(root: Path) -> dict:
    path = root / "manifest.json"
    if not path.is_file():
        raise _fail(f"{root} is not an avatar bundle: manifest.json is missing.")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _fail(f"manifest.json cannot be read: {exc}.") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise _fail("manifest.json does not describe an InvertAvatar bundle.")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise _fail(f"The bundle has an invalid format_version {version!r}.")
    if version > FORMAT_VERSION:
        raise AddonError(BAD_BUNDLE, f"The bundle uses format version {version}; this add-on reads up to "
                         f"{FORMAT_VERSION}.", "Update the InvertAvatar add-on to match the backend.")
    return manifest


def _verify_files(root: Path, manifest: dict) -> None:
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise _fail("manifest.json has no 'files' table.")
    for required in REQUIRED_FILES:
        if required not in files:
            raise _fail(f"The bundle lacks the required file {required}.")
    for name, expected in files.items():
        path = root / name
        if not path.is_file():
            raise _fail(f"The bundle file {name} is missing.")
        if _sha256(path) != str(expected).lower():
            raise _fail(f"The bundle file {name} is damaged (checksum mismatch).")


def _array(npz, key: str, dtype, shape: tuple) -> np.ndarray:
    if key not in npz.files:
        raise _fail(f"mesh.npz lacks the array {key!r}.")
    arr = npz[key]
    if arr.ndim != len(shape) or any(want is not None and got != want for got, want in zip(arr.shape, shape)):
        raise _fail(f"mesh.npz array {key!r} has shape {arr.shape}, expected {shape}.")
    return np.ascontiguousarray(arr.astype(dtype, copy=False))


def _read_mesh(path: Path) -> dict:
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise _fail(f"mesh.npz cannot be read: {exc}.") from exc
    with npz:
        out = {"vertices": _array(npz, "vertices", np.float32, (None, 3))}
        v = out["vertices"].shape[0]
        out["faces"] = _array(npz, "faces", np.int32, (None, 4))
        f = out["faces"].shape[0]
        out["uv"] = _array(npz, "uv", np.float32, (None, 2))
        out["face_uv"] = _array(npz, "face_uv", np.int32, (f, 4))
        out["face_material"] = _array(npz, "face_material", np.int32, (f,))
        out["material_names"] = [str(n) for n in _array(npz, "material_names", str, (None,))]
        out["expression_names"] = [str(n) for n in _array(npz, "expression_names", str, (52,))]
        out["expression_deltas"] = _array(npz, "expression_deltas", np.float32, (52, v, 3))
        out["expression_available"] = _array(npz, "expression_available", bool, (52,))
        out["bone_names"] = [str(n) for n in _array(npz, "bone_names", str, (len(BONE_NAMES),))]
        out["bone_parents"] = _array(npz, "bone_parents", np.int32, (len(BONE_NAMES),))
        out["bone_heads"] = _array(npz, "bone_heads", np.float32, (len(BONE_NAMES), 3))
        out["bone_tails"] = _array(npz, "bone_tails", np.float32, (len(BONE_NAMES), 3))
        out["vertex_weights"] = _array(npz, "vertex_weights", np.float32, (v, len(BONE_NAMES)))
    _check_mesh(out)
    return out


def _check_mesh(mesh: dict) -> None:
    v, f = mesh["vertices"].shape[0], mesh["faces"].shape[0]
    if v == 0 or f == 0:
        raise _fail("The bundle mesh is empty.")
    faces, face_uv = mesh["faces"], mesh["face_uv"]
    if faces[:, :3].min() < 0 or faces.max() >= v or faces[:, 3].min() < -1:
        raise _fail("mesh.npz 'faces' refers to vertices that do not exist.")
    if not np.array_equal(faces[:, 3] < 0, face_uv[:, 3] < 0):
        raise _fail("mesh.npz 'face_uv' does not match the polygon sizes of 'faces'.")
    if face_uv[:, :3].min() < 0 or face_uv.max() >= mesh["uv"].shape[0]:
        raise _fail("mesh.npz 'face_uv' refers to texture coordinates that do not exist.")
    if mesh["face_material"].min() < 0 or mesh["face_material"].max() >= max(1, len(mesh["material_names"])):
        raise _fail("mesh.npz 'face_material' refers to a material that does not exist.")
    if tuple(mesh["expression_names"]) != ARKIT_NAMES:
        raise _fail("mesh.npz 'expression_names' are not Apple's 52 ARKit names in Apple's order.")
    if tuple(mesh["bone_names"]) != BONE_NAMES:
        raise _fail(f"mesh.npz 'bone_names' must be {', '.join(BONE_NAMES)}.")
    for key in ("vertices", "expression_deltas", "bone_heads", "bone_tails", "vertex_weights", "uv"):
        if not np.isfinite(mesh[key]).all():
            raise _fail(f"mesh.npz '{key}' holds NaN or infinite values.")


def _read_tracks(path: Path) -> Tracks:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        names = list(data["arkit_names"])
        frames = list(data["frames"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise _fail(f"tracks.json cannot be read: {exc}.") from exc
    return tracks_from_dict(data, names, frames)


def tracks_from_dict(data: dict, names: list[str], frames: list[dict]) -> Tracks:
    """Validate and convert a parsed ``tracks.json`` into arrays ordered like ``ARKIT_NAMES``."""
    mapping, _unmatched = match_names(names)
    columns = [(i, ARKIT_NAMES.index(mapping[n])) for i, n in enumerate(names) if n in mapping]
    n = len(frames)
    arkit = np.zeros((n, 52), np.float32)
    rotation = np.tile(np.array([1.0, 0.0, 0.0, 0.0]), (n, 1))
    translation = np.zeros((n, 3))
    gaze = np.zeros((n, 2, 2))
    indices = np.zeros(n, np.int64)
    times = np.zeros(n)
    try:
        for row, frame in enumerate(frames):
            indices[row] = int(frame["index"])
            times[row] = float(frame.get("time", 0.0))
            weights = frame["arkit"]
            if len(weights) != len(names):
                raise ValueError(f"frame {indices[row]} has {len(weights)} ARKit weights for {len(names)} names")
            for src, dst in columns:
                arkit[row, dst] = float(weights[src])
            if "head_rotation" in frame:
                rotation[row] = [float(x) for x in frame["head_rotation"]]
            if "head_translation" in frame:
                translation[row] = [float(x) for x in frame["head_translation"]]
            eyes = frame.get("gaze") or {}
            for e, eye in enumerate(("eye_L", "eye_R")):
                if eye in eyes:
                    gaze[row, e] = [float(x) for x in eyes[eye]]
    except (KeyError, TypeError, ValueError) as exc:
        raise _fail(f"tracks.json has a malformed frame: {exc}.") from exc
    if n and np.any(np.diff(indices) <= 0):
        raise _fail("tracks.json frames must have strictly increasing 'index' values.")
    norms = np.linalg.norm(rotation, axis=1)
    if n and (not np.isfinite(rotation).all() or np.any(norms < 1e-6)):
        raise _fail("tracks.json holds an invalid head rotation quaternion.")
    rotation /= norms[:, None] if n else 1.0
    fps = data.get("fps")
    fps = float(fps) if isinstance(fps, (int, float)) and fps > 0 else None
    return Tracks(fps, str(data.get("source", "")), indices, times, arkit, rotation, translation, gaze)


def read_bundle(root: str | Path) -> Bundle:
    """Read and verify a bundle folder (``NAME.avatar/``) or a bundle zip's extracted contents.

    Raises ``AddonError("bad_bundle")`` naming the first problem found.
    """
    root = Path(root)
    if not root.is_dir():
        raise _fail(f"{root} is not a folder.")
    manifest = _read_manifest(root)
    _verify_files(root, manifest)
    mesh = _read_mesh(root / "mesh.npz")
    tracks = _read_tracks(root / "tracks.json") if (root / "tracks.json").is_file() else None
    textures = {p.stem: p for p in sorted((root / "textures").glob("*.png"))}
    return Bundle(root=root, manifest=manifest, tracks=tracks, textures=textures, **mesh)


def read_tracks(path: str | Path) -> Tracks:
    """Read a ``tracks.json`` file on its own (e.g. to apply a clip's performance to an existing avatar)."""
    return _read_tracks(Path(path))
