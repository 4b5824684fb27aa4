"""Hands: the .task bundle packed from the legacy models, no hands found where there are none, the mask a hand
covers, and a missing model that leaves jobs running."""

from __future__ import annotations

import logging
import zipfile
from io import BytesIO

import numpy as np
import pytest

from invertavatar import assets
from invertavatar.detect import hands as hands_module
from invertavatar.detect.hands import BUNDLE_MEMBERS, Hand, HandDetector, hand_mask, hand_task_bundle


@pytest.fixture(scope="module")
def hand_detector():
    with HandDetector() as detector:
        yield detector


def open_hand(wrist=(200.0, 300.0), palm=60.0) -> Hand:
    """A flat right hand pointing up: wrist at ``wrist``, knuckles ``palm`` pixels above it, fingers above those."""
    x0, y0 = wrist
    points = [(x0, y0)]
    points += [(x0 - 0.5 * palm + 0.1 * palm * k, y0 - 0.3 * palm - 0.25 * palm * k) for k in range(4)]  # thumb
    for finger, dx in enumerate((-0.35, -0.12, 0.12, 0.35)):  # index, middle, ring, pinky: knuckle then 3 joints
        length = (0.95, 1.0, 0.95, 0.75)[finger]
        points += [(x0 + dx * palm, y0 - palm - length * 0.33 * palm * k) for k in range(4)]
    return Hand(np.array(points, np.float32), 0.99)


def test_task_bundle_holds_the_two_models_stored(tmp_path):
    detector, landmarks = tmp_path / "a.tflite", tmp_path / "b.tflite"
    detector.write_bytes(b"detector bytes")
    landmarks.write_bytes(b"landmark bytes")
    with zipfile.ZipFile(BytesIO(hand_task_bundle(detector, landmarks))) as archive:
        infos = archive.infolist()
        assert [i.filename for i in infos] == list(BUNDLE_MEMBERS)
        assert all(i.compress_type == zipfile.ZIP_STORED for i in infos)  # MediaPipe maps the members in place
        for info in infos:  # ... so each member's data starts on an aligned offset
            assert (info.header_offset + 30 + len(info.filename) + len(info.extra)) % 64 == 0
        assert archive.read(BUNDLE_MEMBERS[0]) == b"detector bytes"
        assert archive.read(BUNDLE_MEMBERS[1]) == b"landmark bytes"


def test_hand_assets_are_pinned_and_installed():
    for asset in (assets.PALM_DETECTOR, assets.HAND_LANDMARKS):
        path = assets.find_asset(asset)
        assert assets.is_verified(asset, path), f"{path} does not match its pinned SHA-256"
        assert asset in assets.ASSETS and asset in assets.LEGACY_WHEEL_MEMBERS


def test_no_hands_in_portraits_without_hands(hand_detector, astronaut, grace_hopper):
    assert hand_detector.detect(astronaut) == []
    assert hand_detector.detect(grace_hopper) == []


def test_detector_refuses_a_grey_image(hand_detector):
    from invertavatar.errors import InvertAvatarError

    with pytest.raises(InvertAvatarError, match="H×W×3"):
        hand_detector.detect(np.zeros((64, 64), np.uint8))


def test_hand_mask_covers_the_hand_and_the_forearm_not_beyond():
    hand = open_hand()
    mask = hand_mask((480, 400), [hand])
    for x, y in np.round(hand.landmarks).astype(int):
        assert mask[y, x] == 1
    # Grown past the finger tips by a quarter palm; the middle finger's tip is at y = 300 - 60 - 60 = 180.
    assert mask[180 - 10, 200 - 7] == 1 and mask[180 - 30, 200 - 7] == 0
    assert mask[300 + 100, 200] == 1  # the forearm below the wrist (up to two palm lengths)
    assert mask[300 + 140, 200] == 0
    assert mask[250, 320] == 0 and mask[250, 80] == 0  # beside the hand
    half = hand_mask((240, 200), [hand], scale=0.5)  # a mask at half the resolution covers the same place
    assert half[150, 100] == 1 and half[125, 160] == 0


def test_missing_hand_models_warn_once_and_find_nothing(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("INVERTAVATAR_ASSETS", str(tmp_path))
    monkeypatch.setenv("INVERTAVATAR_HOME", str(tmp_path / "home"))
    hands_module.reset_shared_detector()
    try:
        with caplog.at_level(logging.WARNING, logger="invertavatar.detect.hands"):
            assert hands_module.shared_detector() is None
            assert hands_module.shared_detector() is None
        warnings = [r for r in caplog.records if "hands are not kept out of the skin" in r.getMessage()]
        assert len(warnings) == 1
        from invertavatar.texture.skin_mask import frame_hands

        assert frame_hands(np.zeros((32, 32, 3), np.uint8)) == []
    finally:
        hands_module.reset_shared_detector()
