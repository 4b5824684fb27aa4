"""Frame sources: photos by content, EXIF orientation, streamed clips, and clear errors for bad files."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from invertavatar.errors import InvertAvatarError
from invertavatar.io import frames
from invertavatar.io.frames import expand_inputs, open_source


def grey_frames(n_frames: int, size=(96, 64)):
    return (np.full((size[1], size[0], 3), (i * 20) % 255, np.uint8) for i in range(n_frames))


@pytest.mark.parametrize("fmt,suffix", [("JPEG", ".jpg"), ("PNG", ".png"), ("WEBP", ".webp"), ("BMP", ".bmp"),
                                        ("TIFF", ".tif")])
def test_image_formats_decode_by_content(tmp_path, astronaut, fmt, suffix):
    path = tmp_path / f"photo{suffix}.bin"  # the name does not decide the type
    Image.fromarray(astronaut).save(path, format=fmt)
    source = open_source(path)
    assert source.info.kind == "image"
    (frame,) = list(source)
    assert frame.image.shape == astronaut.shape and frame.image.dtype == np.uint8


def test_exif_orientation_is_honoured(tmp_path):
    image = np.zeros((40, 80, 3), np.uint8)
    image[:, :40] = 255  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    path = tmp_path / "rotated.jpg"
    Image.fromarray(image).save(path, exif=exif, quality=95)
    (frame,) = list(open_source(path))
    assert frame.image.shape[:2] == (80, 40)
    assert frame.image[:40].mean() > 200 and frame.image[40:].mean() < 50  # white half now on top


def test_clip_streams_frames_with_time_and_fps(tmp_path, clip_writer):
    source = open_source(clip_writer(tmp_path / "clip.bin", grey_frames(12)))
    assert source.info.kind == "video" and source.info.fps == pytest.approx(24)
    decoded = list(source)
    source.close()
    assert [f.index for f in decoded] == list(range(12))
    assert decoded[3].time == pytest.approx(3 / 24, abs=1e-3)
    assert decoded[0].image.shape == (64, 96, 3)


def test_iterating_a_clip_does_not_keep_frames(tmp_path, clip_writer):
    source = open_source(clip_writer(tmp_path / "clip.mp4", grey_frames(30)))
    import types

    stream = iter(source)
    assert isinstance(stream, types.GeneratorType)  # decoded on demand, one frame at a time
    assert next(stream).index == 0 and next(stream).index == 1


@pytest.mark.parametrize("content,reason", [(b"", "empty"), (b"hello, this is text\n" * 10, "neither"),
                                            (b"\xff\xd8\xff\xe0" + b"\x00" * 64, "damaged")])
def test_bad_files_give_clear_errors(tmp_path, content, reason):
    path = tmp_path / "photo.jpg"
    path.write_bytes(content)
    with pytest.raises(InvertAvatarError) as info:
        list(open_source(path))
    assert info.value.code == "unreadable_input" and "photo.jpg" in info.value.message
    assert "JPEG" in info.value.hint


def test_truncated_clip_keeps_decodable_frames_or_fails_clearly(tmp_path, clip_writer):
    path = clip_writer(tmp_path / "clip.mp4", grey_frames(40))
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 3])
    try:
        decoded = list(open_source(cut))
    except InvertAvatarError as exc:
        assert exc.code == "unreadable_input"
    else:
        assert 0 < len(decoded) < 40


def test_huge_png_is_refused_before_decoding(tmp_path):
    # Only the header of a 20000×20000 PNG: decoding it would need 1.2 GB.
    path = tmp_path / "huge.png"
    ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    chunk = lambda kind, body: struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 100)))
    with pytest.raises(InvertAvatarError) as info:
        open_source(path)
    assert info.value.code == "image_too_large" and "megapixels" in info.value.hint


def test_large_jpeg_is_decoded_reduced(tmp_path, monkeypatch):
    monkeypatch.setattr(frames, "MAX_DECODE_PIXELS", 500_000)
    path = tmp_path / "big.jpg"
    Image.fromarray(np.full((1200, 1600, 3), 128, np.uint8)).save(path)
    (frame,) = list(open_source(path, max_side=400))
    assert max(frame.image.shape[:2]) <= 400


def test_expand_inputs(tmp_path):
    (tmp_path / "b.jpg").write_bytes(b"x")
    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / ".hidden").write_bytes(b"x")
    assert [p.name for p in expand_inputs([tmp_path])] == ["a.jpg", "b.jpg"]
    with pytest.raises(InvertAvatarError):
        expand_inputs([])
