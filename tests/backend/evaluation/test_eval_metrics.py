"""Metrics against hand-computed values, the face mask, and how statuses become events and summaries."""

from __future__ import annotations

import numpy as np
import pytest

from invertavatar.errors import InvertAvatarError
from invertavatar.evaluation import face_mask, masked_psnr, masked_ssim
from invertavatar.evaluation.report import events, summarise


def test_psnr_matches_hand_computation_inside_the_mask():
    real = np.zeros((4, 4, 3), np.uint8)
    rendered = real.copy()
    rendered[0, 0] = 255  # outside the mask: must not count
    rendered[2, 2] = [51, 0, 0]  # one masked pixel off by 0.2 in one channel
    mask = np.zeros((4, 4), bool)
    mask[1:3, 1:3] = True
    # 4 masked pixels × 3 channels = 12 values, one of them off by 0.2: MSE = 0.04 / 12.
    assert masked_psnr(real, rendered, mask) == pytest.approx(10 * np.log10(12 / 0.04), abs=1e-9)
    assert masked_psnr(real, real, mask) == float("inf")
    # Float images in [0, 1] give the same number as uint8 ones.
    assert masked_psnr(real / 255.0, rendered / 255.0, mask) == pytest.approx(10 * np.log10(300), abs=1e-9)


def test_ssim_of_flat_images_is_the_luminance_term():
    a, b = 0.4, 0.6
    real, rendered = np.full((32, 32, 3), a), np.full((32, 32, 3), b)
    mask = np.ones((32, 32), bool)
    c1 = (0.01 * 1.0) ** 2  # flat images: no variance, so only the luminance term (2ab + C1) / (a² + b² + C1) is left
    assert masked_ssim(real, rendered, mask) == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), abs=1e-9)
    assert masked_ssim(real, real, mask) == pytest.approx(1.0)


def test_ssim_drops_with_noise_and_ignores_pixels_outside_the_mask():
    rng = np.random.default_rng(0)
    real = rng.uniform(0, 1, (48, 48, 3))
    noisy = real.copy()
    mask = np.zeros((48, 48), bool)
    mask[:, :16] = True
    noisy[:, 32:] = rng.uniform(0, 1, (48, 16, 3))  # far from the mask (beyond the 11-pixel window)
    assert masked_ssim(real, noisy, mask) == pytest.approx(1.0)
    noise = rng.normal(0, 1, real.shape)
    light, heavy = (masked_ssim(real, np.clip(real + s * noise, 0, 1), mask) for s in (0.1, 0.3))
    assert 1.0 > light > heavy


def test_face_mask_is_the_landmark_hull():
    square = np.array([[2, 2], [7, 2], [7, 7], [2, 7], [4, 5]], np.float32)
    mask = face_mask(square, (10, 10))
    assert mask.sum() == 36 and mask[2:8, 2:8].all()


def test_bad_inputs_are_clear_errors():
    image = np.zeros((4, 4, 3))
    with pytest.raises(InvertAvatarError, match="empty"):
        masked_psnr(image, image, np.zeros((4, 4), bool))
    with pytest.raises(InvertAvatarError, match="differ in shape"):
        masked_ssim(image, np.zeros((4, 5, 3)), np.ones((4, 4), bool))


def test_events_and_summary_keep_unscored_frames_visible():
    statuses = ["tracked", "no_face", "no_face", "tracked", "other_person", "other_person", "implausible"]
    records = [{"index": 10 + i, "status": s} for i, s in enumerate(statuses)]
    records[0].update(psnr=20.0, ssim=0.5, landmark_error_iod=0.02)
    records[3].update(psnr=30.0, ssim=0.7, landmark_error_iod=0.04)
    assert events(records) == [
        {"status": "no_face", "first_frame": 11, "last_frame": 12, "count": 2},
        {"status": "other_person", "first_frame": 14, "last_frame": 15, "count": 2},
        {"status": "implausible", "first_frame": 16, "last_frame": 16, "count": 1}]
    summary = summarise(records)["summary"]
    assert summary["tracked"] == 2 and summary["tracked_share"] == pytest.approx(2 / 7, abs=1e-4)
    assert summary["psnr"]["mean"] == 25.0 and summary["ssim"]["median"] == pytest.approx(0.6)
    assert summary["lpips"] is None
    assert summary["status_counts"] == {"tracked": 2, "no_face": 2, "implausible": 1, "other_person": 2}
