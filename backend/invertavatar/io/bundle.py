"""Avatar bundle v1 (docs/bundle-format.md): atomic writer and checking reader."""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import InvertAvatarError

BUNDLE_FORMAT = "invertavatar-bundle"
BUNDLE_FORMAT_VERSION = 1
MESH_KEYS = ("vertices", "faces", "uv", "face_uv", "face_material", "material_names", "expression_names",
             "expression_deltas", "expression_available", "bone_names", "bone_parents", "bone_heads", "bone_tails",
             "vertex_weights")
AXES = {"up": "+Y", "forward": "+Z", "handedness": "right"}
HAIR_KEYS = ("points", "curve_offsets", "radius", "root_face", "root_uv", "group", "scalp_vertices")
HAIR_GROUPS = ("scalp", "beard")


@dataclass
class Bundle:
    """An avatar in memory. ``state`` maps file names under ``state/`` to their bytes (backend-only)."""

    manifest: dict
    mesh: dict[str, np.ndarray]
    albedo: np.ndarray
    coverage: np.ndarray
    neural_baked: np.ndarray | None = None
    tracks: dict | None = None
    state: dict[str, bytes] = field(default_factory=dict)
    photographed: np.ndarray | None = None  # the skin as photographed (shading in), beside the de-lit albedo
    hair: dict[str, np.ndarray] | None = None  # hair/guides.npz arrays (HAIR_KEYS)
    hair_params: dict | None = None  # hair/hair.json
    material_maps: dict[str, np.ndarray] = field(default_factory=dict)  # textures/{roughness,specular,normal}.png


MATERIAL_MAPS = ("roughness", "specular", "normal")  # optional skin-material textures (texture/skin_maps.py)


def _damaged(path: Path, what: str) -> InvertAvatarError:
    return InvertAvatarError("bundle_damaged", f"The avatar bundle {path.name} is damaged: {what}.",
                             "Reconstruct the avatar again, or restore the bundle from a backup.")


def _png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def check_mesh(mesh: dict[str, np.ndarray], where: str = "mesh") -> None:
    """Shapes must agree with each other (the reader and the writer both call this)."""
    missing = [k for k in MESH_KEYS if k not in mesh]
    if missing:
        raise ValueError(f"{where} lacks {missing}")
    n = mesh["vertices"].shape[0]
    if mesh["vertices"].shape != (n, 3) or mesh["faces"].shape[1] != 4 or mesh["faces"].max() >= n:
        raise ValueError(f"{where}: vertices/faces are inconsistent")
    if mesh["expression_deltas"].shape != (len(mesh["expression_names"]), n, 3):
        raise ValueError(f"{where}: expression_deltas shape {mesh['expression_deltas'].shape}")
    if mesh["vertex_weights"].shape != (n, len(mesh["bone_names"])):
        raise ValueError(f"{where}: vertex_weights shape {mesh['vertex_weights'].shape}")


def check_hair(hair: dict[str, np.ndarray], faces: int, vertices: int) -> None:
    """The guide curves must be well formed and refer to the bundle's mesh (docs/bundle-format.md, "hair/")."""
    missing = [k for k in HAIR_KEYS if k not in hair]
    if missing:
        raise ValueError(f"hair/guides.npz lacks {missing}")
    points, offsets = hair["points"], hair["curve_offsets"]
    curves = len(offsets) - 1
    if points.ndim != 2 or points.shape[1] != 3 or not np.isfinite(points).all():
        raise ValueError("hair points must be finite (P, 3)")
    if curves < 1 or offsets[0] != 0 or offsets[-1] != len(points) or np.any(np.diff(offsets) < 2):
        raise ValueError("hair curve_offsets must rise from 0 to P with at least 2 points per curve")
    if hair["radius"].shape != (len(points),) or hair["root_uv"].shape != (curves, 2):
        raise ValueError("hair radius/root_uv shapes do not match the curves")
    if hair["root_face"].shape != (curves,) or hair["root_face"].min() < 0 or hair["root_face"].max() >= faces:
        raise ValueError("hair root_face must name a polygon of the mesh for every curve")
    if hair["group"].shape != (curves,) or hair["group"].max() >= len(HAIR_GROUPS):
        raise ValueError("hair group must be 0 (scalp) or 1 (beard) for every curve")
    scalp = hair["scalp_vertices"]
    if len(scalp) and (scalp.min() < 0 or scalp.max() >= vertices):
        raise ValueError("hair scalp_vertices must be vertices of the mesh")


def write_bundle(path: Path | str, bundle: Bundle, overwrite: bool = False) -> Path:
    """Write ``bundle`` to the folder ``path`` atomically; with ``overwrite`` an existing bundle is replaced whole."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise InvertAvatarError("output_exists", f"{path} already exists.", "Choose another name or use --force.")
    check_mesh(bundle.mesh)
    files: dict[str, bytes] = {
        "mesh.npz": _npz_bytes(bundle.mesh),
        "textures/albedo.png": _png_bytes(bundle.albedo),
        "textures/coverage.png": _png_bytes(bundle.coverage),
    }
    if bundle.neural_baked is not None:
        files["textures/neural_baked.png"] = _png_bytes(bundle.neural_baked)
    if bundle.photographed is not None:
        files["textures/photographed.png"] = _png_bytes(bundle.photographed)
    for name, image in bundle.material_maps.items():
        if name not in MATERIAL_MAPS:
            raise ValueError(f"unknown material map {name!r}")
        files[f"textures/{name}.png"] = _png_bytes(image)
    if bundle.tracks is not None:
        files["tracks.json"] = json.dumps(bundle.tracks).encode()
    if bundle.hair is not None:
        check_hair(bundle.hair, len(bundle.mesh["faces"]), len(bundle.mesh["vertices"]))
        files["hair/guides.npz"] = _npz_bytes(bundle.hair)
        files["hair/hair.json"] = json.dumps(bundle.hair_params or {}, indent=2).encode()
    for name, data in bundle.state.items():
        files[f"state/{name}"] = data
    manifest = dict(bundle.manifest)
    manifest.update(format=BUNDLE_FORMAT, format_version=BUNDLE_FORMAT_VERSION, units="m", axes=AXES,
                    backend_version=__version__,
                    files={name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())})
    manifest.setdefault("created", _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    files["manifest.json"] = json.dumps(manifest, indent=2).encode()

    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        staging.chmod(0o755)  # mkdtemp makes it private; a bundle is an ordinary folder
        for name, data in files.items():
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        if path.exists():
            retired = path.with_name(f".{path.name}.old")
            shutil.rmtree(retired, ignore_errors=True)
            os.replace(path, retired)
            os.replace(staging, path)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    bundle.manifest = manifest
    return path


def read_manifest(path: Path | str) -> dict:
    """The manifest alone, with its format and version checked."""
    path = Path(path)
    manifest_path = path / "manifest.json"
    if not manifest_path.is_file():
        raise InvertAvatarError("bundle_missing", f"{path} is not an avatar bundle (no manifest.json).",
                                "Pass the NAME.avatar folder written by `invertavatar reconstruct`.")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise _damaged(path, "manifest.json is not valid JSON") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise _damaged(path, "manifest.json does not describe an InvertAvatar bundle")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > BUNDLE_FORMAT_VERSION:
        raise InvertAvatarError(
            "bundle_too_new", f"{path.name} uses bundle format {version}; this backend reads up to "
            f"{BUNDLE_FORMAT_VERSION}.", "Update InvertAvatar to open this avatar.")
    return manifest


def _read_png(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img)


def read_bundle(path: Path | str) -> Bundle:
    """Read and verify a bundle: version, every file's SHA-256, and the mesh arrays' consistency."""
    path = Path(path)
    manifest = read_manifest(path)
    data: dict[str, bytes] = {}
    for name, digest in manifest.get("files", {}).items():
        file_path = (path / name).resolve()
        if path.resolve() not in file_path.parents:
            raise _damaged(path, f"the manifest names a file outside the bundle ({name})")
        if not file_path.is_file():
            raise _damaged(path, f"{name} is missing")
        content = file_path.read_bytes()
        if hashlib.sha256(content).hexdigest() != digest:
            raise _damaged(path, f"{name} does not match its checksum")
        data[name] = content
    for required in ("mesh.npz", "textures/albedo.png", "textures/coverage.png"):
        if required not in data:
            raise _damaged(path, f"{required} is not listed in the manifest")
    try:
        with np.load(io.BytesIO(data["mesh.npz"]), allow_pickle=False) as npz:
            mesh = {key: npz[key] for key in npz.files}
        check_mesh(mesh)
        albedo = _read_png(data["textures/albedo.png"])
        coverage = _read_png(data["textures/coverage.png"])
        neural = _read_png(data["textures/neural_baked.png"]) if "textures/neural_baked.png" in data else None
        photographed = _read_png(data["textures/photographed.png"]) if "textures/photographed.png" in data else None
        tracks = json.loads(data["tracks.json"]) if "tracks.json" in data else None
        hair = hair_params = None
        if "hair/guides.npz" in data:
            with np.load(io.BytesIO(data["hair/guides.npz"]), allow_pickle=False) as npz:
                hair = {key: npz[key] for key in npz.files}
            check_hair(hair, len(mesh["faces"]), len(mesh["vertices"]))
            hair_params = json.loads(data.get("hair/hair.json", b"{}"))
    except InvertAvatarError:
        raise
    except Exception as exc:
        raise _damaged(path, str(exc)) from exc
    state = {name[len("state/"):]: content for name, content in data.items() if name.startswith("state/")}
    try:
        maps = {name: _read_png(data[f"textures/{name}.png"]) for name in MATERIAL_MAPS
                if f"textures/{name}.png" in data}
    except Exception as exc:
        raise _damaged(path, str(exc)) from exc
    return Bundle(manifest, mesh, albedo, coverage, neural, tracks, state, photographed, hair, hair_params, maps)
