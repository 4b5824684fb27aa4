"""Bad inputs end in a clear error and leave no bundle (and no half-written folder) behind."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from invertavatar.errors import InvertAvatarError
from invertavatar.pipeline import JobSpec, run_job


def run_expecting(tmp_path, inputs, code: str) -> InvertAvatarError:
    output = tmp_path / "out" / "x.avatar"
    with pytest.raises(InvertAvatarError) as info:
        run_job(JobSpec(inputs, output, texture_size=128))
    assert info.value.code == code, info.value
    assert info.value.hint
    assert not output.exists()
    assert not output.parent.exists() or not any(output.parent.iterdir())
    return info.value


def save(tmp_path, name, image) -> object:
    path = tmp_path / name
    Image.fromarray(image).save(path)
    return path


def test_photo_without_a_face(tmp_path):
    from skimage import data

    error = run_expecting(tmp_path, [save(tmp_path, "coffee.png", data.coffee())], "no_face")
    assert "coffee.png" in error.message


def test_animal_photo(tmp_path):
    from skimage import data

    run_expecting(tmp_path, [save(tmp_path, "chelsea.png", data.chelsea())], "no_face")


@pytest.mark.parametrize("content", [b"", b"plain text, not a photo\n", b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR"])
def test_unreadable_files(tmp_path, content):
    path = tmp_path / "photo.jpg"
    path.write_bytes(content)
    run_expecting(tmp_path, [path], "unreadable_input")


def test_truncated_jpeg(tmp_path, astronaut):
    path = save(tmp_path, "a.jpg", astronaut)
    path.write_bytes(path.read_bytes()[:2000])
    run_expecting(tmp_path, [path], "unreadable_input")


def test_huge_image_is_refused_not_decoded(tmp_path):
    path = tmp_path / "huge.png"
    ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    chunk = lambda kind, body: struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)))
    run_expecting(tmp_path, [path], "image_too_large")


def test_clip_without_any_face(tmp_path, clip_writer):
    frames = (np.full((96, 128, 3), 40 + 10 * i, np.uint8) for i in range(8))
    run_expecting(tmp_path, [clip_writer(tmp_path / "empty.mp4", frames)], "no_face")


def test_mixing_clips_and_photos_is_refused(tmp_path, clip_writer, astronaut):
    clip = clip_writer(tmp_path / "c.mp4", (np.zeros((64, 64, 3), np.uint8) for _ in range(3)))
    run_expecting(tmp_path, [clip, save(tmp_path, "a.png", astronaut)], "invalid_input")


def test_neural_mode_without_checkpoints_says_what_is_missing(tmp_path, astronaut):
    with pytest.raises(InvertAvatarError) as info:
        run_job(JobSpec([save(tmp_path, "a.png", astronaut)], tmp_path / "n.avatar", mode="neural"))
    assert info.value.code == "neural_unavailable" and "fit" in info.value.hint

