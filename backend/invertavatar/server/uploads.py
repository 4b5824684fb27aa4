"""Uploads: multipart bodies streamed straight to disk under size caps, then typed by their content.

The request body is parsed as it arrives (never buffered whole in memory or in a temporary file first), so an
oversize upload is refused as soon as it crosses a cap. File names from the client are only used, sanitised, as
part of the stored name; the type comes from the bytes (magic numbers, then the frame decoder).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import BinaryIO

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from .errors import ApiError

FIELD_LIMIT = 64 * 1024  # the options JSON and the avatar id are tiny
KNOWN_FIELDS = frozenset({"options", "avatar_id"})  # the form fields kept; others are counted, then dropped
MAX_OTHER_PARTS = 16  # parts beyond the files and the known fields (tolerated, e.g. a client's extra field)
MAX_NAME = 48
SUPPORTED_HINT = ("Upload photos (JPEG, PNG, WebP, BMP, TIFF) or a clip (MP4, MOV, MKV, WebM, AVI) of a face.")


@dataclass(frozen=True)
class Limits:
    """Caps on one upload request."""

    max_file_bytes: int
    max_job_bytes: int
    max_files: int


@dataclass
class Upload:
    """One received file: where it is now, the client's name (sanitised) and its size."""

    path: Path
    name: str
    size: int = 0


@dataclass
class Received:
    """Everything a job request carried."""

    files: list[Upload] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)


def sanitise_name(name: str | None) -> str:
    """A safe file name stem from whatever a client sent: no folders, no dots in front, ASCII, short."""
    base = PureWindowsPath(PurePosixPath(name or "").name).name
    base = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode("ascii")
    stem = base.rsplit(".", 1)[0] if "." in base.lstrip(".") else base
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_-")[:MAX_NAME]
    return stem or "upload"


def sniff(head: bytes) -> tuple[str, str] | None:
    """``(kind, extension)`` for an image or video recognised by its first bytes, else None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image", ".jpg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image", ".png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image", ".webp"
    if head.startswith(b"BM") and len(head) >= 14:
        return "image", ".bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image", ".tif"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video", ".avi"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video", ".mkv"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"heic", b"heix", b"mif1", b"avif"):
            return None  # still-image containers the decoders do not read
        return "video", ".mov" if brand == b"qt  " else ".mp4"
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free"):
        return "video", ".mov"
    return None


def describe_unknown(head: bytes) -> str:
    """A short description of content that is not a supported image or video, for the error message."""
    if not head:
        return "it is empty"
    sample = head[:64]
    try:
        sample.decode("utf-8")
        return "it contains text, not image or video data"
    except UnicodeDecodeError:
        return "its content is not a supported image or video format"


class _MultipartSink:
    """Callbacks for python-multipart's streaming parser: each `files` part goes to its own file."""

    def __init__(self, folder: Path, limits: Limits) -> None:
        self.folder = folder
        self.limits = limits
        self.received = Received()
        self.error: ApiError | None = None
        self.total = 0
        self.parts = 0
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._headers: dict[str, bytes] = {}
        self._field: str | None = None
        self._file: BinaryIO | None = None
        self._upload: Upload | None = None
        self._buffer = bytearray()

    def callbacks(self) -> dict:
        return {"on_part_begin": self._part_begin, "on_header_field": self._header_field_data,
                "on_header_value": self._header_value_data, "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished, "on_part_data": self._part_data,
                "on_part_end": self._part_end}

    def _fail(self, error: ApiError) -> None:
        if self.error is None:
            self.error = error
        if self._file is not None:
            self._file.close()
            self._file = None

    def _part_begin(self) -> None:
        self.parts += 1
        if self.parts > self.limits.max_files + len(KNOWN_FIELDS) + MAX_OTHER_PARTS and self.error is None:
            self._fail(ApiError(413, "too_many_parts", f"The form has more than {self.parts - 1} parts.",
                                "Send the files in 'files', the options in 'options' and nothing else."))
        self._headers = {}
        self._field = None
        self._buffer = bytearray()

    def _count(self, size: int) -> bool:
        """Count ``size`` bytes of any part (headers, files, fields) against the job cap; False once refused."""
        self.total += size
        if self.total > self.limits.max_job_bytes and self.error is None:
            self._fail(ApiError(413, "job_too_large",
                                f"The upload is larger than the per-job limit of {_mib(self.limits.max_job_bytes)} "
                                "(files, form fields and part headers together).",
                                "Send fewer or smaller files, or ask the operator to raise --max-job-mb."))
        return self.error is None

    # python-multipart bounds one header line itself (MultipartParseError, answered 422 bad_multipart).
    def _header_field_data(self, data: bytes, start: int, end: int) -> None:
        if self._count(end - start):
            self._header_name += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        if self._count(end - start):
            self._header_value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._header_name.decode("latin-1").lower()] = bytes(self._header_value)
        self._header_name, self._header_value = bytearray(), bytearray()

    def _headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get("content-disposition", b""))
        self._field = params.get(b"name", b"").decode("utf-8", "replace")
        if self._field != "files" or self.error is not None:
            return
        index = len(self.received.files)
        if index >= self.limits.max_files:
            self._fail(ApiError(413, "too_many_files", f"A job takes at most {self.limits.max_files} files.",
                                "Send fewer photos, or a clip instead of many photos."))
            return
        client_name = params.get(b"filename", b"").decode("utf-8", "replace")
        self._upload = Upload(self.folder / f"part-{index:04d}", sanitise_name(client_name))
        self._file = open(self._upload.path, "wb")
        self.received.files.append(self._upload)

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        size = end - start
        if not self._count(size):
            return
        if self._field == "files":
            if self._file is None or self._upload is None:
                return
            self._upload.size += size
            if self._upload.size > self.limits.max_file_bytes:
                self._fail(ApiError(413, "file_too_large",
                                    f"The file '{self._upload.name}' is larger than the per-file limit of "
                                    f"{_mib(self.limits.max_file_bytes)}.",
                                    "Send a shorter or smaller clip, or ask the operator to raise --max-file-mb."))
            else:
                self._file.write(data[start:end])
        elif self._field not in KNOWN_FIELDS:
            return  # counted against the cap above, never kept
        elif len(self._buffer) + size <= FIELD_LIMIT:
            self._buffer += data[start:end]
        else:
            self._fail(ApiError(413, "field_too_large", f"The form field '{self._field}' is too long.",
                                f"Form fields other than files must stay under {FIELD_LIMIT // 1024} KiB."))

    def _part_end(self) -> None:
        if self._field == "files":
            if self._file is not None:
                self._file.close()
                self._file = None
        elif self._field in KNOWN_FIELDS:
            self.received.fields[self._field] = self._buffer.decode("utf-8", "replace")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _mib(size: int) -> str:
    return f"{size / 2**20:g} MiB"


async def receive_multipart(request: Request, folder: Path, limits: Limits) -> Received:
    """Stream a ``multipart/form-data`` body into ``folder``; raise ApiError 413/415/422 on bad bodies.

    After a cap is crossed the rest of the body is read and dropped (up to twice the job cap), so that the client
    receives the 413 instead of a broken connection.
    """
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in params:
        raise ApiError(415, "not_multipart", "A job must be sent as multipart/form-data.",
                       "Put the photos or the clip in the form field 'files' and the options JSON in 'options'.")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > 2 * limits.max_job_bytes + FIELD_LIMIT:
        raise ApiError(413, "job_too_large", f"The upload is larger than the per-job limit of "
                       f"{_mib(limits.max_job_bytes)}.", "Send fewer or smaller files.")
    folder.mkdir(parents=True, exist_ok=True)
    sink = _MultipartSink(folder, limits)
    parser = MultipartParser(params[b"boundary"], sink.callbacks())
    drained = 0
    try:
        async for chunk in request.stream():
            if sink.error is not None:
                drained += len(chunk)
                if drained > 2 * limits.max_job_bytes:
                    break
                continue
            try:
                parser.write(chunk)
            except Exception as exc:  # python-multipart raises its own parse errors on malformed bodies
                sink._fail(ApiError(422, "bad_multipart", f"The multipart body could not be read ({exc}).",
                                    "Send a well-formed multipart/form-data request."))
        if sink.error is None:
            parser.finalize()
    finally:
        sink.close()
    if sink.error is not None:
        raise sink.error
    return sink.received


def type_uploads(received: Received, inputs: Path) -> list[Path]:
    """Check every upload by its content and move it to ``inputs/NNNN/name.ext`` (the extension from the bytes).

    Recognised files are then opened with the frame decoder and their first frame read, so a damaged or truncated
    file is refused now (415) rather than failing the job later.
    """
    if not received.files:
        raise ApiError(422, "no_files", "The request carried no files.",
                       "Put one or more photos, or one clip, in the form field 'files'.")
    inputs.mkdir(parents=True, exist_ok=True)
    typed = []
    for index, upload in enumerate(received.files):
        with open(upload.path, "rb") as handle:
            head = handle.read(64)
        kind = sniff(head)
        if kind is None:
            raise ApiError(415, "unsupported_file_type",
                           f"The file '{upload.name}' cannot be used: {describe_unknown(head)}.",
                           f"{SUPPORTED_HINT} The type is read from the file's content, not its name.")
        # One folder per upload keeps the client's (sanitised) name intact, so pipeline messages name the file the
        # user knows, while two uploads with the same name cannot collide.
        target = inputs / f"{index:04d}" / f"{upload.name}{kind[1]}"
        target.parent.mkdir()
        upload.path.rename(target)
        _check_decodes(target, upload.name)
        typed.append(target)
    return typed


def _check_decodes(path: Path, name: str) -> None:
    """Open the file with the pipeline's own frame source (which refuses oversized images and clips from their
    headers) and check that its first frame decodes (a JPEG at 1/8 scale)."""
    from invertavatar.errors import InvertAvatarError
    from invertavatar.io.frames import open_source

    try:
        source = open_source(path)
        try:
            source.check()
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()
    except InvertAvatarError as exc:
        raise ApiError(415, exc.code, f"The file '{name}' cannot be decoded: {exc.message}",
                       exc.hint or SUPPORTED_HINT) from exc
    except Exception as exc:  # a decoder library's own error on a damaged file is still the file's fault
        raise ApiError(415, "unreadable_input", f"The file '{name}' cannot be decoded ({type(exc).__name__}).",
                       SUPPORTED_HINT) from exc
