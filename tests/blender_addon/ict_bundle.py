"""Avatar bundles for the add-on tests and benchmark, made from the ICT Face Model in the documented layout.

Written here (not with the backend's writer) so that the add-on's reader is checked against docs/bundle-format.md
itself. The rig is derived from the model's regions: eyeballs follow the eye bones, the jaw weights follow the
magnitude of the ``jawOpen`` shape, the lower neck blends into the neck bone.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
from PIL import Image

ICT_NPZ = Path("/work/shared/assets/ict-face-model/ict_face_light.npz")
ARKIT_NAMES = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft", "eyeSquintLeft",
    "eyeWideLeft", "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight",
    "eyeSquintRight", "eyeWideRight", "jawForward", "jawLeft", "jawRight", "jawOpen", "mouthClose", "mouthFunnel",
    "mouthPucker", "mouthLeft", "mouthRight", "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft",
    "mouthFrownRight", "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthPressLeft", "mouthPressRight",
    "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft", "mouthUpperUpRight", "browDownLeft",
    "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight", "cheekPuff", "cheekSquintLeft",
    "cheekSquintRight", "noseSneerLeft", "noseSneerRight", "tongueOut",
)
BONES = ("root", "neck", "head", "jaw", "eye_L", "eye_R")


def ict_to_arkit(names: list[str]) -> dict[str, list[int]]:
    """ARKit name -> ICT expression indices whose sum makes it (``X_L`` = ``XLeft``; unsided pairs are summed)."""
    out: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        base, side = (name[:-2], name[-1]) if name[-2:] in ("_L", "_R") else (name, "")
        candidate = base + {"L": "Left", "R": "Right", "": ""}[side]
        target = candidate if candidate in ARKIT_NAMES else base
        if target not in ARKIT_NAMES:
            raise ValueError(f"ICT shape {name} has no ARKit counterpart")
        out.setdefault(target, []).append(i)
    return out


def _region(d, name: str) -> np.ndarray:
    names = [str(n) for n in d["region_names"]]
    first, last = d["region_ranges"][names.index(name)]
    return np.arange(first, last + 1)


def build_mesh_arrays() -> dict:
    """mesh.npz arrays (metres, backend axes) for the ICT generic neutral head."""
    d = np.load(ICT_NPZ, allow_pickle=False)
    verts = d["vertices"].astype(np.float32) * 0.01
    mapping = ict_to_arkit([str(n) for n in d["expression_names"]])
    basis = d["expression_basis"].astype(np.float32) * 0.01
    deltas = np.zeros((52, len(verts), 3), np.float32)
    available = np.zeros(52, bool)
    for k, name in enumerate(ARKIT_NAMES):
        if name in mapping:
            deltas[k] = basis[mapping[name]].sum(axis=0)
            available[k] = True
    eye_l, eye_r = _region(d, "eyeball_left"), _region(d, "eyeball_right")
    centre = lambda idx: (verts[idx].min(0) + verts[idx].max(0)) / 2  # noqa: E731
    heads = np.array([[0, -0.19, -0.02], [0, -0.14, -0.02], [0, -0.04, -0.02], [0, 0.0, 0.01],
                      centre(eye_l), centre(eye_r)], np.float32)
    tails = np.array([[0, -0.14, -0.02], [0, -0.04, -0.02], [0, 0.12, -0.02], [0, -0.07, 0.09],
                      centre(eye_l) + [0, 0, 0.02], centre(eye_r) + [0, 0, 0.02]], np.float32)
    weights = np.zeros((len(verts), 6), np.float32)
    jaw_motion = np.linalg.norm(deltas[ARKIT_NAMES.index("jawOpen")], axis=1)
    jaw = np.clip((jaw_motion / jaw_motion.max() - 0.1) / 0.4, 0.0, 1.0)
    neck = np.clip((-0.08 - verts[:, 1]) / 0.05, 0.0, 1.0) * (1.0 - jaw)
    weights[:, 3] = jaw
    weights[:, 1] = neck
    weights[:, 2] = 1.0 - jaw - neck
    for bone, idx in ((4, eye_l), (5, eye_r)):
        weights[idx] = 0.0
        weights[idx, bone] = 1.0
    uv = d["uv"].astype(np.float32).copy()
    uv[:, 0] /= 7.0  # ICT spreads UDIM tiles over u in [0, 7); the bundle's UVs live in [0, 1]^2
    return {
        "vertices": verts, "faces": d["faces"].astype(np.int32), "uv": uv,
        "face_uv": d["face_uv"].astype(np.int32), "face_material": d["face_material"].astype(np.int16),
        "material_names": d["material_names"], "expression_names": np.array(ARKIT_NAMES),
        "expression_deltas": deltas, "expression_available": available, "bone_names": np.array(BONES),
        "bone_parents": np.array([-1, 0, 1, 2, 2, 2], np.int32), "bone_heads": heads, "bone_tails": tails,
        "vertex_weights": weights,
    }


def synthetic_tracks(n_frames: int, fps: float = 30.0, every: int = 1, seed: int = 0) -> dict:
    """A smooth, varied performance: every ARKit weight, head rotation/translation and gaze change per frame."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_frames) * every / fps
    phases = rng.uniform(0, 2 * math.pi, 52)
    speeds = rng.uniform(0.5, 3.0, 52)
    weights = 0.5 + 0.5 * np.sin(t[:, None] * speeds + phases)
    frames = []
    for i in range(n_frames):
        angle = 0.3 * math.sin(t[i] * 1.3)
        axis = np.array([0.3, 1.0, 0.1]) / np.linalg.norm([0.3, 1.0, 0.1])
        quat = [math.cos(angle / 2)] + list(axis * math.sin(angle / 2))
        frames.append({
            "index": i * every, "time": float(t[i]), "arkit": [round(float(w), 6) for w in weights[i]],
            "head_rotation": quat, "head_translation": [0.01 * math.sin(t[i]), 0.0, 0.005 * math.cos(t[i])],
            "gaze": {"eye_L": [0.2 * math.sin(t[i] * 2), 0.3 * math.cos(t[i])],
                     "eye_R": [0.2 * math.sin(t[i] * 2), 0.25 * math.cos(t[i])]},
        })
    return {"fps": fps, "source": "synthetic_clip.mp4", "arkit_names": list(ARKIT_NAMES), "frames": frames}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_ict_bundle(folder: Path, texture_size: int = 512, tracks: dict | None = None,
                     mesh: dict | None = None) -> Path:
    """Write a complete bundle folder; returns it. ``mesh`` may be passed to reuse arrays between bundles."""
    folder = Path(folder)
    (folder / "textures").mkdir(parents=True, exist_ok=True)
    arrays = mesh if mesh is not None else build_mesh_arrays()
    np.savez(folder / "mesh.npz", **arrays)
    ramp = np.linspace(0, 255, texture_size, dtype=np.float32)
    albedo = np.stack(np.broadcast_arrays(ramp[None, :], ramp[:, None], np.full((1, 1), 180.0)), -1)
    Image.fromarray(albedo.astype(np.uint8), "RGB").save(folder / "textures" / "albedo.png", compress_level=1)
    coverage = (ramp[None, :] > texture_size / 3).repeat(texture_size, 0).astype(np.uint8) * 255
    Image.fromarray(coverage, "L").save(folder / "textures" / "coverage.png", compress_level=1)
    if tracks is not None:
        (folder / "tracks.json").write_text(json.dumps(tracks))
    files = {p.relative_to(folder).as_posix(): _sha(p) for p in sorted(folder.rglob("*"))
             if p.is_file() and p.name != "manifest.json"}
    manifest = {
        "format": "invertavatar-bundle", "format_version": 1, "created": "2026-11-23T19:40:00Z",
        "backend_version": "0.1.0", "mode": "fit",
        "head_model": {"id": "ict-face-light", "checksum": _sha(ICT_NPZ)[:16]},
        "units": "m", "axes": {"up": "+Y", "forward": "+Z", "handedness": "right"},
        "frames": {"seen": 1, "used": 1, "skipped": 0}, "metrics": {}, "coverage": 0.41,
        "arkit": {"available": [n for n, a in zip(ARKIT_NAMES, arrays["expression_available"]) if a],
                  "missing": [n for n, a in zip(ARKIT_NAMES, arrays["expression_available"]) if not a]},
        "files": files,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return folder
