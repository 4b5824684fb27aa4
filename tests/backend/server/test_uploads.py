import pytest

from invertavatar.server.uploads import describe_unknown, sanitise_name, sniff

from .conftest import image_bytes


@pytest.mark.parametrize("fmt, ext", [("JPEG", ".jpg"), ("PNG", ".png"), ("WEBP", ".webp"), ("BMP", ".bmp"),
                                      ("TIFF", ".tif")])
def test_sniff_recognises_real_images(fmt, ext):
    assert sniff(image_bytes(fmt)[:64]) == ("image", ext)


def test_sniff_recognises_video_containers():
    assert sniff(b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00") == ("video", ".mp4")
    assert sniff(b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00") == ("video", ".mov")
    assert sniff(b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81") == ("video", ".mkv")
    assert sniff(b"RIFF\x00\x00\x00\x00AVI LIST") == ("video", ".avi")


def test_sniff_refuses_text_and_junk():
    assert sniff(b"hello, this is not a photo\n") is None
    assert sniff(b"") is None
    assert sniff(b"\x00\x00\x00\x18ftypheic") is None
    assert "text" in describe_unknown(b"hello")
    assert "empty" in describe_unknown(b"")
    assert "not a supported" in describe_unknown(b"\xff\xfe\x00\x81\x92")


@pytest.mark.parametrize("raw, clean", [
    ("photo.jpg", "photo"), ("../../etc/passwd", "passwd"), ("C:\\Users\\me\\face.png", "face"),
    (".bashrc", "bashrc"), ("", "upload"), (None, "upload"), ("my face (1).JPG", "my_face_1"),
    ("Zoë ünïcode.jpg", "Zoe_unicode"), ("....", "upload"), ("a" * 200 + ".jpg", "a" * 48),
])
def test_sanitise_name(raw, clean):
    assert sanitise_name(raw) == clean
