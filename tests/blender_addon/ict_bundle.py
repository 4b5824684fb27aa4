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


HAIR_SHADING = {
    "scalp": {"melanin": 0.82, "melanin_redness": 0.35, "tint": [1.0, 1.0, 1.0], "roughness": 0.32,
              "radial_roughness": 0.35, "coat": 0.1, "ior": 1.55, "random_color": 0.08, "random_roughness": 0.1,
              "tip": {"melanin": 0.74, "melanin_redness": 0.38}, "root_colour": [0.05, 0.03, 0.02],
              "length_m": 0.0, "strands_per_cm2": 120},
    "beard": {"melanin": 0.9, "melanin_redness": 0.2, "tint": [1.0, 0.95, 0.9], "roughness": 0.4,
              "radial_roughness": 0.3, "coat": 0.0, "ior": 1.55, "random_color": 0.05, "random_roughness": 0.05,
              "tip": None, "root_colour": [0.04, 0.03, 0.02], "length_m": 0.0, "strands_per_cm2": 60},
}


def with_atlas_uv(mesh: dict) -> dict:
    """A copy of ``mesh`` whose UVs are laid out like the backend's atlas (texture/atlas.py): face and back of
    the head side by side in the top half, every other part squeezed into the bottom half.

    ICT's own UDIM tiles overlap (the eyes share the face's tile), and Blender attaches hair by the surface's UV
    map, which must be unique where the hair grows, as the backend's atlas is.
    """
    names = [str(n) for n in mesh["material_names"]]
    corner_uv = mesh["uv"][np.maximum(mesh["face_uv"], 0)].astype(np.float64)  # (F, 4, 2)
    u = corner_uv[..., 0] * 7.0  # undo build_mesh_arrays' squeeze back to ICT's tile coordinates
    v = corner_uv[..., 1]
    material = np.asarray(mesh["face_material"])[:, None]
    face, back = material == names.index("M_Face"), material == names.index("M_BackHead")
    new_u = np.where(face, 0.5 * u, np.where(back, 0.5 + 0.5 * (u - 1.0), u / 7.0))
    new_v = np.where(face | back, 0.5 + 0.5 * v, 0.5 * v)
    valid = mesh["face_uv"] >= 0
    out = dict(mesh)
    out["uv"] = np.stack([new_u, new_v], -1)[valid].astype(np.float32)
    face_uv = np.full(valid.shape, -1, np.int32)
    face_uv[valid] = np.arange(valid.sum(), dtype=np.int32)
    out["face_uv"] = face_uv
    return out


def _face_frames(mesh: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per polygon: centroid, outward unit normal (Newell) and the mean of its UVs."""
    faces, verts, uv = mesh["faces"], mesh["vertices"], mesh["uv"]
    valid = faces >= 0
    count = valid.sum(1, keepdims=True)
    corners = verts[np.where(valid, faces, 0)] * valid[..., None]
    centroid = corners.sum(1) / count
    nxt = np.where(np.roll(valid, -1, 1), np.roll(faces, -1, 1), faces[:, :1])  # next corner, wrapping to the first
    a, b = verts[np.where(valid, faces, 0)], verts[nxt]
    normal = (np.cross(a, b) * valid[..., None]).sum(1)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-12
    uvs = uv[np.where(valid, mesh["face_uv"], 0)] * valid[..., None]
    return centroid, normal, uvs.sum(1) / count


def synthetic_hair(mesh: dict, scalp_guides: int = 160, beard_guides: int = 60, seed: int = 0) -> tuple[dict, dict]:
    """Guide curves grown from the ICT head: swept-back scalp hair falling to the nape and a short beard.

    Scalp roots are head polygons above the hairline (and the back of the head); each strand leaves along the
    surface normal, turns towards a back-and-down "gravity" and slides over an ellipsoid around the skull, so it
    stays outside the head. Returns (``guides.npz`` arrays, ``hair.json``) in the documented layout.
    """
    rng = np.random.default_rng(seed)
    centroid, normal, face_uv = _face_frames(mesh)
    names = [str(n) for n in mesh["material_names"]]
    material = np.asarray(mesh["face_material"])
    skin = np.isin(material, [names.index("M_Face"), names.index("M_BackHead")])
    x, y, z = centroid.T
    scalp = skin & ((y > 0.085) | ((z < -0.02) & (y > 0.0))) & (normal[:, 1] > -0.3)
    beard = (material == names.index("M_Face")) & (y < -0.045) & (y > -0.1) & (z > 0.04) & (normal[:, 2] > 0.2)
    centre, radii = np.array([0.0, 0.02, 0.0]), np.array([0.1, 0.135, 0.118]) * 1.06
    strands, groups, roots = [], [], []
    for group, mask, count, points, step, gravity in (
            (0, scalp, scalp_guides, 14, 0.011, np.array([0.0, -1.0, -0.45])),
            (1, beard, beard_guides, 5, 0.004, np.array([0.0, -1.0, 0.3]))):
        chosen = rng.choice(np.flatnonzero(mask), size=count, replace=False)
        for f in chosen:
            pull = gravity.copy()
            if group == 0:  # hair from the front of the scalp is combed back, not down over the face
                pull = pull + np.array([0.0, 0.9, -1.6]) * np.clip(centroid[f, 2] / 0.08, 0.0, 1.0)
            pull = pull / np.linalg.norm(pull)
            p, d = centroid[f].astype(np.float64), normal[f].astype(np.float64)
            strand = [p.copy()]
            for i in range(1, points):
                bend = min(1.0, i / 3.0)
                d = (1 - bend) * normal[f] + bend * pull + 0.15 * rng.normal(size=3)
                p = p + step * d / np.linalg.norm(d)
                if group == 0:  # slide over the skull instead of through it
                    q = (p - centre) / radii
                    if np.linalg.norm(q) < 1.0:
                        p = centre + q / np.linalg.norm(q) * radii
                strand.append(p.copy())
            strands.append(np.array(strand))
            groups.append(group)
            roots.append(f)
    sizes = np.array([len(s) for s in strands])
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int32)
    taper = np.concatenate([np.linspace(1.0, 0.3, n) for n in sizes])
    roots = np.array(roots, np.int32)
    shading = json.loads(json.dumps(HAIR_SHADING))
    groups = np.array(groups, np.uint8)
    for index, name in enumerate(("scalp", "beard")):
        lengths = [np.linalg.norm(np.diff(s, axis=0), axis=1).sum() for s, g in zip(strands, groups) if g == index]
        shading[name]["length_m"] = round(float(max(lengths)), 4)
    scalp_vertices = np.unique(mesh["faces"][scalp][:, :3])
    guides = {
        "points": np.concatenate(strands).astype(np.float32), "curve_offsets": offsets,
        "radius": (0.00006 * taper).astype(np.float32), "root_face": roots,
        "root_uv": face_uv[roots].astype(np.float32), "group": groups, "scalp_vertices": scalp_vertices.astype(np.int32),
    }
    return guides, {"version": 1, "groups": shading}


def write_hair(folder: Path, guides: dict, hair_json: dict) -> None:
    """Write ``hair/guides.npz`` and ``hair/hair.json`` into a bundle folder and refresh the manifest's checksums."""
    folder = Path(folder)
    (folder / "hair").mkdir(exist_ok=True)
    np.savez(folder / "hair" / "guides.npz", **guides)
    (folder / "hair" / "hair.json").write_text(json.dumps(hair_json, indent=1))
    refresh_checksums(folder)


def refresh_checksums(folder: Path) -> None:
    """Recompute the manifest's ``files`` table from the files in the folder (after a test edits one)."""
    folder = Path(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"] = {p.relative_to(folder).as_posix(): _sha(p) for p in sorted(folder.rglob("*"))
                         if p.is_file() and p.name != "manifest.json"}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))


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
