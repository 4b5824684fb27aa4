"""PNG header check for the preview engine (Blender decodes the pixels itself)."""

from __future__ import annotations

import struct

from .errors import BAD_RESPONSE, AddonError

_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) of a PNG; raises ``AddonError`` when ``data`` is not a PNG."""
    if len(data) < 24 or not data.startswith(_SIGNATURE) or data[12:16] != b"IHDR":
        raise AddonError(BAD_RESPONSE, "The backend's preview is not a PNG image.",
                         "Check that the backend has a renderer installed (see its log).")
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)
