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
HAIR_FILES = ("hair/guides.npz", "hair/hair.json")
#: ``guides.npz``'s ``group`` value -> the ``hair.json`` group it belongs to.
HAIR_GROUPS = ("scalp", "beard")
HAIR_JSON_VERSION = 1
# hair.json's Principled Hair BSDF parameters (Melanin parametrisation) and the range each must lie in.
_SHADING_RANGES = {"melanin": (0.0, 1.0), "melanin_redness": (0.0, 1.0), "roughness": (0.0, 1.0),
                   "radial_roughness": (0.0, 1.0), "coat": (0.0, 1.0), "ior": (1.0, 3.0), "random_color": (0.0, 1.0),
                   "random_roughness": (0.0, 1.0)}
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
class HairShading:
    """One hair group's look (``hair.json``): Principled Hair BSDF parameters in the Melanin parametrisation."""

    melanin: float
    melanin_redness: float
    tint: tuple[float, float, float]  # linear RGB, 1 = no tint
    roughness: float
    radial_roughness: float
    coat: float
    ior: float
    random_color: float
    random_roughness: float
    tip: tuple[float, float] | None  # (melanin, melanin_redness) at the tips, None when root and tip match
    root_colour: tuple[float, float, float]  # de-lit linear RGB albedo near the roots (the hair's colour in Blender)
    length_m: float
    strands_per_cm2: float
    tip_colour: tuple[float, float, float] | None = None  # as root_colour, at the tips where ``tip`` is given


@dataclass
class Hair:
    """Guide curves on the head (backend axes, neutral pose) and each group's look; see bundle-format.md."""

    points: np.ndarray  # (P, 3) float32 metres
    curve_offsets: np.ndarray  # (C+1,) int32, curve c = points[offsets[c]:offsets[c+1]], root first
    radius: np.ndarray  # (P,) float32 metres
    root_face: np.ndarray  # (C,) int32 polygon of mesh.npz under each root
    root_uv: np.ndarray  # (C, 2) float32 on the head's UV map
    group: np.ndarray  # (C,) uint8 index into HAIR_GROUPS
    scalp_vertices: np.ndarray  # (S,) int32 head vertices under the scalp hair
    groups: dict[str, HairShading]

    @property
    def curve_sizes(self) -> np.ndarray:
        """Points per curve, (C,) int32."""
        return np.diff(self.curve_offsets).astype(np.int32)

    def group_curves(self, name: str) -> np.ndarray:
        """Indices of the curves in group ``name`` (``scalp`` or ``beard``)."""
        return np.flatnonzero(self.group == HAIR_GROUPS.index(name))

    def subset(self, curves: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(points, curve_offsets, radius) of the given curves only, offsets renumbered from 0."""
        sizes = self.curve_sizes[curves]
        offsets = np.zeros(len(curves) + 1, np.int32)
        np.cumsum(sizes, out=offsets[1:])
        starts = self.curve_offsets[curves]
        # Point index of every kept point: each curve's start plus 0..size-1.
        index = np.repeat(starts - offsets[:-1], sizes) + np.arange(offsets[-1])
        return self.points[index], offsets, self.radius[index]


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
    hair: Hair | None = None

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


def _hair_array(npz, key: str, dtype, shape: tuple) -> np.ndarray:
    if key not in npz.files:
        raise _fail(f"hair/guides.npz lacks the array {key!r}.")
    arr = npz[key]
    if arr.ndim != len(shape) or any(want is not None and got != want for got, want in zip(arr.shape, shape)):
        raise _fail(f"hair/guides.npz array {key!r} has shape {arr.shape}, expected {shape}.")
    if arr.dtype.kind not in ("i", "u", "f") or (np.dtype(dtype).kind in "iu" and arr.dtype.kind == "f"):
        raise _fail(f"hair/guides.npz array {key!r} has type {arr.dtype}, expected {np.dtype(dtype)}.")
    return np.ascontiguousarray(arr.astype(dtype, copy=False))


def _read_guides(path: Path, n_vertices: int, n_faces: int) -> dict:
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise _fail(f"hair/guides.npz cannot be read: {exc}.") from exc
    with npz:
        out = {"points": _hair_array(npz, "points", np.float32, (None, 3))}
        p = out["points"].shape[0]
        out["curve_offsets"] = _hair_array(npz, "curve_offsets", np.int64, (None,))
        c = out["curve_offsets"].shape[0] - 1
        out["radius"] = _hair_array(npz, "radius", np.float32, (p,))
        out["root_face"] = _hair_array(npz, "root_face", np.int64, (c,))
        out["root_uv"] = _hair_array(npz, "root_uv", np.float32, (c, 2))
        out["group"] = _hair_array(npz, "group", np.int64, (c,))
        out["scalp_vertices"] = _hair_array(npz, "scalp_vertices", np.int64, (None,))
    offsets = out["curve_offsets"]
    if c < 1:
        raise _fail("hair/guides.npz holds no curves.")
    if offsets[0] != 0 or offsets[-1] != p:
        raise _fail(f"hair/guides.npz 'curve_offsets' must run from 0 to the {p} points.")
    if np.any(np.diff(offsets) < 2):
        raise _fail("hair/guides.npz 'curve_offsets' must increase by at least 2 (every curve has 2 or more "
                    "points).")
    for key in ("points", "radius", "root_uv"):
        if not np.isfinite(out[key]).all():
            raise _fail(f"hair/guides.npz '{key}' holds NaN or infinite values.")
    if out["radius"].min() < 0:
        raise _fail("hair/guides.npz 'radius' holds negative values.")
    if out["root_face"].min() < 0 or out["root_face"].max() >= n_faces:
        raise _fail(f"hair/guides.npz 'root_face' refers to polygons that do not exist (the mesh has {n_faces}).")
    scalp = out["scalp_vertices"]
    if scalp.size and (scalp.min() < 0 or scalp.max() >= n_vertices):
        raise _fail("hair/guides.npz 'scalp_vertices' refers to vertices that do not exist.")
    if out["group"].min() < 0 or out["group"].max() >= len(HAIR_GROUPS):
        raise _fail("hair/guides.npz 'group' holds an unknown group (known: 0 = scalp, 1 = beard).")
    for key, dtype in (("curve_offsets", np.int32), ("root_face", np.int32), ("group", np.uint8),
                       ("scalp_vertices", np.int32)):
        out[key] = out[key].astype(dtype)
    return out


def _number(group: str, data: dict, key: str, low: float = -np.inf, high: float = np.inf) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise _fail(f"hair/hair.json group {group!r}: {key!r} must be a number, got {value!r}.")
    if not low <= value <= high:
        raise _fail(f"hair/hair.json group {group!r}: {key!r} = {value} lies outside {low:g}..{high:g}.")
    return float(value)


def _rgb(group: str, data: dict, key: str) -> tuple[float, float, float]:
    value = data.get(key)
    if (not isinstance(value, list) or len(value) != 3
            or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and np.isfinite(x) and x >= 0
                       for x in value)):
        raise _fail(f"hair/hair.json group {group!r}: {key!r} must be 3 non-negative numbers, got {value!r}.")
    return (float(value[0]), float(value[1]), float(value[2]))


def _read_shading(group: str, data) -> HairShading:
    if not isinstance(data, dict):
        raise _fail(f"hair/hair.json group {group!r} is not an object.")
    values = {key: _number(group, data, key, *bounds) for key, bounds in _SHADING_RANGES.items()}
    tip = data.get("tip")
    if tip is not None:
        if not isinstance(tip, dict):
            raise _fail(f"hair/hair.json group {group!r}: 'tip' must be an object or null.")
        tip = (_number(group, tip, "melanin", 0.0, 1.0), _number(group, tip, "melanin_redness", 0.0, 1.0))
    tip_colour = _rgb(group, data, "tip_colour") if data.get("tip_colour") is not None else None
    return HairShading(tint=_rgb(group, data, "tint"), tip=tip, root_colour=_rgb(group, data, "root_colour"),
                       tip_colour=tip_colour,
                       length_m=_number(group, data, "length_m", 0.0),
                       strands_per_cm2=_number(group, data, "strands_per_cm2", 0.0), **values)


def _read_hair(root: Path, manifest: dict, n_vertices: int, n_faces: int) -> Hair | None:
    listed = [name for name in HAIR_FILES if name in manifest["files"]]
    if not listed:
        return None  # no hair found (a bald or shaved head), or a bundle from before hair existed
    if len(listed) != len(HAIR_FILES):
        missing = next(name for name in HAIR_FILES if name not in listed)
        raise _fail(f"The bundle has {listed[0]} but not {missing}.")
    guides = _read_guides(root / "hair" / "guides.npz", n_vertices, n_faces)
    try:
        data = json.loads((root / "hair" / "hair.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _fail(f"hair/hair.json cannot be read: {exc}.") from exc
    if not isinstance(data, dict) or not isinstance(data.get("groups"), dict):
        raise _fail("hair/hair.json has no 'groups' object.")
    version = data.get("version")
    if not isinstance(version, int) or not 1 <= version <= HAIR_JSON_VERSION:
        raise _fail(f"hair/hair.json has version {version!r}; this add-on reads version {HAIR_JSON_VERSION}.")
    unknown = sorted(set(data["groups"]) - set(HAIR_GROUPS))
    if unknown:
        raise _fail(f"hair/hair.json names unknown hair groups {unknown} (known: {', '.join(HAIR_GROUPS)}).")
    groups = {name: _read_shading(name, data["groups"][name]) for name in HAIR_GROUPS if name in data["groups"]}
    for index in np.unique(guides["group"]).tolist():
        if HAIR_GROUPS[index] not in groups:
            raise _fail(f"hair/guides.npz has {HAIR_GROUPS[index]} curves but hair/hair.json no "
                        f"{HAIR_GROUPS[index]!r} group.")
    return Hair(groups=groups, **guides)


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
    hair = _read_hair(root, manifest, mesh["vertices"].shape[0], mesh["faces"].shape[0])
    return Bundle(root=root, manifest=manifest, tracks=tracks, textures=textures, hair=hair, **mesh)


def read_tracks(path: str | Path) -> Tracks:
    """Read a ``tracks.json`` file on its own (e.g. to apply a clip's performance to an existing avatar)."""
    return _read_tracks(Path(path))
