"""The server's preview of an avatar bundle: ARKit expression, rigid head pose, textured render, optional shading."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..errors import InvertAvatarError
from ..headmodel.base import split_polygons
from .camera import Camera
from .textured import render_textured
from .transforms import quaternion_to_matrix

#: Overlay meshes that a real-time engine blends with transparency; drawn opaque they would hide the eyes (the lashes
#: as opaque cards read as a thick black eyeliner, so the preview leaves them out).
PREVIEW_HIDDEN_MATERIALS = ("M_EyeOcclusion", "M_LacrimalFluid", "M_EyeBlend", "M_EyeLashes")


def _bad(message: str, hint: str) -> InvertAvatarError:
    return InvertAvatarError("invalid_render_input", message, hint)


def _vector(value: Any, size: int, name: str, hint: str) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64).reshape(-1) if value is not None else None
    if array is None or array.shape != (size,) or not np.isfinite(array).all():
        raise _bad(f"{name} must be {size} finite numbers.", hint)
    return array


def _background(background: Any, height: int, width: int) -> torch.Tensor:
    """(H,W,3) or (3,) float in [0,1] from a colour in 0..255 or an (H,W,3) uint8 image."""
    if background is None:
        return torch.full((3,), 0.5)
    bg = np.asarray(background)
    if bg.shape == (3,):
        return torch.from_numpy(np.clip(bg.astype(np.float32) / 255.0, 0.0, 1.0))
    if bg.shape == (height, width, 3):
        return torch.from_numpy(bg.astype(np.float32) / 255.0)
    raise _bad(f"background must be an RGB colour (3 numbers in 0..255) or a {height}×{width}×3 image, "
               f"got shape {bg.shape}.", "Pass e.g. (128, 128, 128).")


def gaze_matrix(pitch: float, yaw: float) -> torch.Tensor:
    """Eye rotation (3,3) for a gaze [pitch, yaw] in radians (tracks.json): pitch about −X (up), then yaw about +Y.

    The eye's turn from rest (where its painted iris looks: ``texture.eyes.rest_gaze``); positive pitch looks up
    (+Y), positive yaw towards the subject's left (+X), as ``track.gaze.estimate_gaze`` measures it.
    """
    cp, sp, cy, sy = math.cos(pitch), math.sin(pitch), math.cos(yaw), math.sin(yaw)
    up = torch.tensor([[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]]).T  # rotation by −pitch about X
    turn = torch.tensor([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    return turn @ up


def _turn_eyes(mesh: dict[str, np.ndarray], shaped: torch.Tensor, gaze: dict[str, Any]) -> torch.Tensor:
    """Rotate each eye's skinned vertices about its bone head by the gaze (bones eye_L / eye_R)."""
    names = [str(n) for n in mesh.get("bone_names", ())]
    for bone, angles in gaze.items():
        if bone not in names or "vertex_weights" not in mesh:
            continue
        pitch, yaw = (float(a) for a in _vector(angles, 2, f"gaze[{bone}]", "Give [pitch, yaw] in radians."))
        index = names.index(bone)
        weight = torch.from_numpy(np.asarray(mesh["vertex_weights"], np.float32)[:, index])[:, None]
        pivot = torch.from_numpy(np.asarray(mesh["bone_heads"], np.float32)[index])
        turned = (shaped - pivot) @ gaze_matrix(pitch, yaw).T + pivot
        shaped = shaped + weight * (turned - shaped)
    return shaped


def posed_vertices(mesh: dict[str, np.ndarray], arkit: np.ndarray, rotation: np.ndarray,
                   translation: np.ndarray, gaze: dict[str, Any] | None = None) -> torch.Tensor:
    """Neutral + ARKit deltas, the eyes turned by ``gaze``, then the head's rigid rotation about the head bone and
    translation: (V,3) float32.

    ``rotation`` is a quaternion [w, x, y, z] relative to the rest pose, ``translation`` metres (backend axes),
    ``gaze`` ``{"eye_L": [pitch, yaw], "eye_R": [...]}`` radians, as in tracks.json. Without a ``head`` bone the
    rotation pivots about the origin.
    """
    vertices = torch.from_numpy(np.asarray(mesh["vertices"], dtype=np.float32))
    deltas = torch.from_numpy(np.asarray(mesh["expression_deltas"], dtype=np.float32))
    weights = torch.from_numpy(arkit.astype(np.float32))
    shaped = vertices + torch.einsum("e,evc->vc", weights, deltas)
    if gaze:
        shaped = _turn_eyes(mesh, shaped, gaze)
    pivot = torch.zeros(3)
    names = [str(n) for n in mesh.get("bone_names", ())]
    if "head" in names and "bone_heads" in mesh:
        pivot = torch.from_numpy(np.asarray(mesh["bone_heads"], dtype=np.float32)[names.index("head")])
    R = quaternion_to_matrix(torch.from_numpy(rotation.astype(np.float32)))
    return (shaped - pivot) @ R.T + pivot + torch.from_numpy(translation.astype(np.float32))


def render_avatar(bundle: Any, arkit: Any, rotation: Any, translation: Any, camera: Camera,
                  background: Any = None, *, shading: bool = True, backend: str | None = None,
                  gaze: dict[str, Any] | None = None, hair: bool = True) -> np.ndarray:
    """Render an avatar bundle for a preview: returns an (H,W,3) uint8 image of the camera's size.

    ``bundle`` has ``mesh`` (the mesh.npz arrays of docs/bundle-format.md) and ``albedo`` (H,W,3) uint8;
    ``arkit`` 52 weights in the bundle's ``expression_names`` order; ``rotation`` a quaternion [w, x, y, z] and
    ``translation`` (3,) metres — the head pose of tracks.json; ``camera`` one ``Camera``; ``background`` an RGB colour
    in 0..255 or an (H,W,3) uint8 image (default mid grey); ``gaze`` per-eye [pitch, yaw] (see
    :func:`posed_vertices`). ``shading`` multiplies the albedo by a headlight
    Lambert term so the shape reads in the preview. With ``hair`` a bundle's ``hair/`` guides are drawn as strands
    in the same z-buffer (``render.hair``); a bundle without hair renders the same either way.
    """
    mesh = getattr(bundle, "mesh", None)
    albedo = getattr(bundle, "albedo", None)
    if not isinstance(mesh, dict) or albedo is None:
        raise _bad("render_avatar needs a bundle with a mesh and an albedo.", "Read it with io.bundle.read_bundle.")
    needed = ("vertices", "faces", "uv", "face_uv", "expression_deltas")
    missing = [key for key in needed if key not in mesh]
    if missing:
        raise _bad(f"The bundle's mesh lacks {missing}.", "Reconstruct the avatar again with this backend.")
    n_expr = int(np.asarray(mesh["expression_deltas"]).shape[0])
    weights = _vector(arkit, n_expr, "arkit", f"Give {n_expr} expression weights (ARKit order, 0..1).")
    quat = _vector(rotation, 4, "rotation", "Give a quaternion [w, x, y, z]; [1, 0, 0, 0] is the rest pose.")
    if np.linalg.norm(quat) < 1e-9:
        raise _bad("rotation quaternion has zero length.", "Use [1, 0, 0, 0] for the rest pose.")
    shift = _vector(translation, 3, "translation", "Give the head offset in metres, e.g. [0, 0, 0].")
    if camera.batch_size not in (None, 1):
        raise _bad("render_avatar renders one view; got a batch of cameras.", "Pass one Camera.")
    albedo = np.asarray(albedo)
    if albedo.ndim != 3 or albedo.shape[2] < 3:
        raise _bad(f"albedo must be an (H,W,3) image, got {albedo.shape}.", "Check the bundle's albedo.png.")

    faces = np.asarray(mesh["faces"])
    face_uv = np.asarray(mesh["face_uv"])
    if "face_material" in mesh and "material_names" in mesh:
        names = [str(n) for n in np.asarray(mesh["material_names"])]
        hidden = [i for i, n in enumerate(names) if n in PREVIEW_HIDDEN_MATERIALS]
        shown = ~np.isin(np.asarray(mesh["face_material"]), hidden)
        faces, face_uv = faces[shown], face_uv[shown]
    triangles, _, uv_triangles = split_polygons(faces, face_uv)

    cam = camera.to(dtype=torch.float32)
    device = cam.K.device
    vertices = posed_vertices(mesh, weights, quat, shift, gaze).to(device)
    texture = torch.from_numpy(albedo[..., :3].astype(np.float32) / 255.0).to(device)
    uv = torch.from_numpy(np.asarray(mesh["uv"], dtype=np.float32)).to(device)
    with torch.no_grad():
        background_image = _background(background, cam.height, cam.width).to(device)
        image = None
        if hair and getattr(bundle, "hair", None):
            from .hair import draw_hair_bundle

            image = draw_hair_bundle(bundle, vertices, triangles, uv, uv_triangles, texture, cam, weights, quat, shift,
                                     background=background_image, shading=shading, backend=backend)
        if image is None:
            image, _ = render_textured(vertices, triangles, uv, uv_triangles, texture, cam,
                                       background=background_image, cull_backfaces=True, shading=shading,
                                       backend=backend)
    return (image[0].clamp(0.0, 1.0) * 255.0 + 0.5).to(torch.uint8).cpu().numpy()
