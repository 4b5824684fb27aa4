import io
import os
import shutil
import zipfile

from invertavatar.server.zipstream import iter_zip


def _make_bundle(folder):
    (folder / "textures").mkdir(parents=True)
    (folder / "manifest.json").write_text('{"format": "invertavatar-bundle"}')
    (folder / "mesh.npz").write_bytes(b"\x01\x02" * 300_000)
    (folder / "textures" / "albedo.png").write_bytes(os.urandom(700_000))
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_zip_round_trip_in_several_chunks(tmp_path):
    files = _make_bundle(tmp_path / "a.avatar")
    chunks = list(iter_zip(tmp_path / "a.avatar"))
    assert len(chunks) > 3  # streamed, not built in one piece
    archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    assert archive.testzip() is None
    assert {name: archive.read(name) for name in archive.namelist()} == files
    assert archive.getinfo("textures/albedo.png").compress_type == zipfile.ZIP_STORED
    assert archive.getinfo("mesh.npz").compress_type == zipfile.ZIP_DEFLATED


def test_zip_stays_consistent_when_the_folder_is_replaced_mid_stream(tmp_path):
    folder = tmp_path / "a.avatar"
    files = _make_bundle(folder)
    stream = iter_zip(folder)
    first = next(stream)
    shutil.rmtree(folder)  # what a refinement's swap does to the old version
    _make_bundle(folder)
    archive = zipfile.ZipFile(io.BytesIO(first + b"".join(stream)))
    assert {name: archive.read(name) for name in archive.namelist()} == files


def test_zip_without_compression_stores_everything(tmp_path):
    files = _make_bundle(tmp_path / "a.avatar")
    archive = zipfile.ZipFile(io.BytesIO(b"".join(iter_zip(tmp_path / "a.avatar", compress=False))))
    assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_STORED}
    assert {name: archive.read(name) for name in archive.namelist()} == files
