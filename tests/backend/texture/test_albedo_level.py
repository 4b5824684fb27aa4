"""The albedo's level: a known face under a known exposure comes back at its own level, a dark face is not lightened.

End to end: renders of a known head with a known atlas, brightened by a known exposure, go through the whole job;
the bundle's inner-face mean (linear) is compared with the atlas's. The skin range and the bounds are also checked
on their own.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from invertavatar.io.bundle import read_bundle
from invertavatar.pipeline import JobSpec, run_job
from invertavatar.pipeline.synthetic import render_view
from invertavatar.texture.albedo_level import (
    LUMINANCE, SCLERA_ALBEDO, atlas_face_mean, choose_level, inner_face_mask, lab_to_linear, linear_to_srgb, skin_range,
    srgb_to_linear)
from invertavatar.texture.atlas import SLOTS, slot_pixels

SCLERA_LINEAR = 0.80  # the white of the eye in the known atlas (inside SCLERA_ALBEDO)


def _known_atlas(model, base: np.ndarray, face_linear: np.ndarray) -> np.ndarray:
    """``base`` (a real atlas) with its skin at inner-face mean ``face_linear`` and a sclera of known albedo."""
    atlas = base.copy()
    size = atlas.shape[0]
    rows, cols = slot_pixels(SLOTS["face"], size)
    face = srgb_to_linear(atlas[rows, cols] / 255.0)
    import cv2

    inner = cv2.resize(inner_face_mask(model, 512).astype(np.uint8), face.shape[:2][::-1],
                       interpolation=cv2.INTER_NEAREST) > 0
    gain = np.asarray(face_linear) / face[inner].mean(0)
    for slot in ("face", "back_head"):
        r, c = slot_pixels(SLOTS[slot], size)
        atlas[r, c] = (linear_to_srgb(srgb_to_linear(atlas[r, c] / 255.0) * gain) * 255 + 0.5).astype(np.uint8)
    r, c = slot_pixels(SLOTS["sclera"], size)
    tile = atlas[r, c]
    white = tile.mean(-1) > 140  # the painted white, not the iris or pupil
    tile[white] = int(linear_to_srgb(np.array(SCLERA_LINEAR)) * 255 + 0.5)
    atlas[r, c] = tile
    return atlas


def _exposed(image: np.ndarray, exposure: float) -> np.ndarray:
    linear = srgb_to_linear(image / 255.0) * exposure
    return (linear_to_srgb(linear) * 255 + 0.5).astype(np.uint8)


def _reconstruct(model, identity, atlas, exposure, folder) -> tuple[np.ndarray, dict]:
    view = render_view(model, identity, np.zeros(model.n_expression, np.float32), (0.0, 0.0, 0.0), atlas,
                       shading=False)
    photo = folder / "view.png"
    Image.fromarray(_exposed(view.image, exposure)).save(photo)
    bundle = read_bundle(run_job(JobSpec([photo], folder / "v.avatar", texture_size=512,
                                         accept_any_face=True)).bundle)
    return atlas_face_mean(bundle.albedo, bundle.coverage, model), bundle.manifest["albedo_level"]


@pytest.mark.parametrize("exposure", [1.2, 1.9])
def test_a_fair_face_under_a_bright_exposure_comes_back_at_its_level(ict_model, ground_truth, known_albedo,
                                                                     tmp_path, exposure):
    known = lab_to_linear(np.array([70.0, 12.0, 16.0]))  # fair skin, L* 70
    atlas = _known_atlas(ict_model, known_albedo, known)
    fused, level = _reconstruct(ict_model, ground_truth["identity"], atlas, exposure, tmp_path)
    photographed = np.array(level["face_mean_linear_fused"])
    y_fused, y_known, y_photo = fused @ LUMINANCE, known @ LUMINANCE, photographed @ LUMINANCE
    print(f"exposure {exposure}: known {known.round(3)} photo level {photographed.round(3)} "
          f"result {fused.round(3)}; level {level}")
    # The exposure really did brighten the face the job saw (1.14× at exposure 1.2: the renders are shaded).
    assert y_photo > 1.1 * y_known
    _, high, (_, y_high) = skin_range()
    assert (fused <= high * 1.02).all() and y_fused <= y_high * 1.02  # never brighter than skin can be
    if exposure < 1.5:  # the sclera is not clipped: it tells the exposure, and the level comes back
        assert abs(y_fused / y_known - 1.0) < 0.06, (y_fused, y_known)
        assert level["method"] == "skin-range+sclera"
    else:  # clipped: only the skin's range is left, still far nearer the known level than the exposure's
        assert abs(y_fused - y_known) < 0.35 * abs(y_photo - y_known)


def test_a_dark_face_is_not_lightened(ict_model, ground_truth, known_albedo, tmp_path):
    known = lab_to_linear(np.array([32.0, 12.0, 14.0]))  # dark skin, L* 32
    atlas = _known_atlas(ict_model, known_albedo, known)
    fused, level = _reconstruct(ict_model, ground_truth["identity"], atlas, 1.0, tmp_path)
    photographed = np.array(level["face_mean_linear_fused"])
    print(f"dark: known {known.round(3)} photo level {photographed.round(3)} result {fused.round(3)}; {level}")
    assert level["gain"] == pytest.approx([1.0, 1.0, 1.0], abs=0.02)
    assert (fused <= photographed * 1.03).all()


def test_bounds_not_a_pull():
    low, high, (y_low, y_high) = skin_range()
    # Inside the range: left alone, dark or fair.
    for lab in ([30.0, 10.0, 12.0], [45.0, 15.0, 18.0], [68.0, 12.0, 15.0]):
        face = lab_to_linear(np.array(lab))
        assert choose_level(face).gain == pytest.approx(np.ones(3))
    # Brighter than skin can be: down to the range's edge, not to its middle.
    bright = choose_level(np.array([0.96, 0.70, 0.62]))
    assert bright.result @ LUMINANCE == pytest.approx(y_high * 0.98, rel=0.005)  # just inside the edge
    assert (bright.result <= high + 1e-6).all()
    # Darker than any skin: up to the lowest skin level only.
    dark = choose_level(np.array([0.02, 0.012, 0.008]))
    assert dark.result @ LUMINANCE == pytest.approx(y_low, rel=0.05)
    # A clipped sclera caps the level; a dim one (shade, glasses, a few pixels) never lifts a face.
    face = np.array([0.30, 0.18, 0.13])
    assert choose_level(face, sclera=np.array([1.0, 1.0, 1.0])).exposure_scale == pytest.approx(0.83, abs=0.01)
    dim = np.array([0.25, 0.25, 0.25])  # linear 0.05
    assert choose_level(face * 0.3, sclera=dim).gain == pytest.approx(np.ones(3))


def test_an_unmistakable_dim_sclera_lifts_an_under_exposed_face():
    face = lab_to_linear(np.array([55.0, 14.0, 17.0]))  # medium skin
    y_face = face @ LUMINANCE
    # Photographed at a third of the exposure: the face's level and the white of the eye (albedo 0.8) both dim.
    dim_face, sclera = face / 3, linear_to_srgb(np.full(3, 0.8 / 3))
    lifted = choose_level(dim_face, sclera=sclera)
    assert lifted.evidence["method"] == "skin-range+sclera-lift"
    # Lifted by what the dimmest eye's white allows (0.6 / (0.8 / 3)), not to the face's own level nor beyond it.
    assert lifted.exposure_scale == pytest.approx(SCLERA_ALBEDO[0] / (0.8 / 3), rel=0.01)
    assert 0.7 * y_face < lifted.result @ LUMINANCE <= y_face
    # The same dim sclera next to a face that is not twice darker than it (the lids' shade, glasses) lifts nothing.
    assert choose_level(face * 0.7, sclera=sclera).exposure_scale == pytest.approx(1.0)
    # A dark face under a good exposure beside its bright eye's white is not lightened.
    dark = lab_to_linear(np.array([30.0, 12.0, 14.0]))
    assert choose_level(dark, sclera=linear_to_srgb(np.full(3, 0.75))).gain == pytest.approx(np.ones(3))


def test_an_under_exposed_face_comes_back_towards_its_level(ict_model, ground_truth, known_albedo, tmp_path):
    known = lab_to_linear(np.array([55.0, 14.0, 17.0]))
    atlas = _known_atlas(ict_model, known_albedo, known)
    fused, level = _reconstruct(ict_model, ground_truth["identity"], atlas, 0.3, tmp_path)
    photographed = np.array(level["face_mean_linear_fused"])
    y_fused, y_known, y_photo = fused @ LUMINANCE, known @ LUMINANCE, photographed @ LUMINANCE
    print(f"under-exposed: known {known.round(3)} photo level {photographed.round(3)} result {fused.round(3)}; "
          f"{level}")
    assert y_photo < 0.5 * y_known  # the exposure really darkened what the job saw
    assert level["method"] == "skin-range+sclera-lift"
    # Lifted by what the dimmest white of an eye allows (0.6 of the known 0.8): about 3/4 of the way, never above.
    assert 0.65 * y_known < y_fused <= 1.05 * y_known
