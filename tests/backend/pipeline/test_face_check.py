"""The human-face check inside a job: a photo that is not a human face fails the job naming the file, a clip frame
is skipped and counted (a clip without any human frame fails), an artwork is built with a warning, and
accept_any_face turns the refusal into a warning stated in the manifest."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data

from invertavatar.detect import make_detector
from invertavatar.errors import InvertAvatarError
from invertavatar.pipeline import JobSpec, run_job
from invertavatar.pipeline.face_check import ARTWORK_WARNING, FaceGate


@pytest.fixture(scope="module")
def faces(astronaut):
    """(photo, its detection) for a human face, the same landmarks on a coffee cup, and a bronze-toned copy."""
    with make_detector() as detector:
        detection = detector.detect(astronaut, "astronaut.png")
    cup = np.ascontiguousarray(cv2.resize(data.coffee(), (512, 512), interpolation=cv2.INTER_AREA))
    grey = cv2.cvtColor(cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    toned = np.clip(grey.astype(np.float32) * np.array([1.0, 0.98, 0.95]), 0, 255).astype(np.uint8)
    return {"human": (astronaut, detection), "cup": (cup, replace(detection, source="cup.png")),
            "artwork": (toned, replace(detection, source="bust.png"))}


def test_a_photo_that_is_not_a_human_face_fails_naming_the_file(faces):
    gate = FaceGate()
    with pytest.raises(InvertAvatarError) as caught:
        gate.admit(*faces["cup"], is_clip=False)
    error = caught.value
    assert error.code == "not_a_human_face" and "cup.png" in error.message
    assert "--accept-any-face" in error.hint and "Animals are not supported" in error.hint


def test_clip_frames_that_are_not_human_are_skipped_and_counted(faces):
    gate = FaceGate()
    assert not gate.admit(*faces["cup"], is_clip=True)
    assert not gate.admit(*faces["cup"], is_clip=True)
    error = gate.refusal([Path("clip.mp4")])
    assert error.code == "not_a_human_face" and "clip.mp4" in error.message and "2 face(s)" in error.message
    assert gate.admit(*faces["human"], is_clip=True)
    assert gate.manifest(clip=True)["not_human"] == 2 and gate.warnings(clip=True) == []


def test_an_artwork_is_accepted_with_the_warning(faces):
    gate = FaceGate()
    assert gate.admit(*faces["artwork"], is_clip=False) and gate.admit(*faces["human"], is_clip=False)
    assert gate.warnings(clip=False) == [f"bust.png: {ARTWORK_WARNING}."]
    assert gate.manifest(clip=False)["looks_like_artwork"] is True
    clip = FaceGate()  # in a clip, the warning needs most of the human frames to look like an artwork
    clip.admit(*faces["artwork"], is_clip=True)
    clip.admit(*faces["human"], is_clip=True)
    assert clip.warnings(clip=True) == []
    clip.admit(*faces["artwork"], is_clip=True)
    assert clip.warnings(clip=True) == [f"2 of 3 frames: {ARTWORK_WARNING}."]


def test_accept_any_face_lets_it_through_and_says_so(faces):
    gate = FaceGate(accept_any_face=True)
    assert gate.admit(*faces["cup"], is_clip=False)
    assert gate.refusal([Path("cup.png")]) is None
    assert gate.warnings(clip=False) == ["cup.png: accepted although it does not look like a human face "
                                         "(--accept-any-face)."]
    manifest = gate.manifest(clip=False)
    assert manifest["accept_any_face"] is True and manifest["not_human_sources"] == ["cup.png"]


def test_a_job_on_a_toned_portrait_is_built_with_the_warning_in_its_manifest(faces, tmp_path):
    photo = tmp_path / "bust.png"
    Image.fromarray(faces["artwork"][0]).save(photo)
    result = run_job(JobSpec([photo], tmp_path / "bust.avatar", texture_size=128))
    assert any(ARTWORK_WARNING in w for w in result.warnings)
    assert result.manifest["face_check"]["looks_like_artwork"] is True
    assert result.manifest["face_check"]["artwork_sources"] == ["bust.png"]


@pytest.fixture()
def six_frame_clip(astronaut, clip_writer, tmp_path):
    frames = [np.roll(astronaut, shift, axis=1) for shift in range(0, 12, 2)]
    return clip_writer(tmp_path / "talk.mp4", frames, fps=6, codec="libx264")


def _refuse_every(monkeypatch, period: int) -> None:
    """Make the check call every ``period``-th face not human (the real check runs for the others)."""
    from invertavatar.detect import human_check

    real = human_check.HumanFaceCheck.check
    calls = {"n": 0}

    def check(self, image, detection, full=False):
        calls["n"] += 1
        if calls["n"] % period == 0:
            return human_check.FaceVerdict(human_check.NOT_HUMAN, 0, {}, "a test says so")
        return real(self, image, detection, full)

    monkeypatch.setattr(human_check.HumanFaceCheck, "check", check)


def test_a_clip_skips_and_counts_frames_that_are_not_human(six_frame_clip, tmp_path, monkeypatch):
    _refuse_every(monkeypatch, 2)
    result = run_job(JobSpec([six_frame_clip], tmp_path / "c.avatar", max_frames=2, texture_size=128))
    assert result.manifest["frames"]["skipped"] == 3 and result.manifest["face_check"]["not_human"] == 3
    assert len(result.manifest["face_check"]["not_human_sources"]) == 3


def test_a_clip_without_a_human_frame_fails(six_frame_clip, tmp_path, monkeypatch):
    _refuse_every(monkeypatch, 1)
    with pytest.raises(InvertAvatarError) as caught:
        run_job(JobSpec([six_frame_clip], tmp_path / "c.avatar", max_frames=2, texture_size=128))
    assert caught.value.code == "not_a_human_face" and "talk.mp4" in caught.value.message
    assert not (tmp_path / "c.avatar").exists()
