#!/usr/bin/env python3
"""One-command set-up for InvertAvatar (standard library only; idempotent).

    python install.py                 # backend + assets + Blender add-on
    python install.py --dev           # … plus the test tools and bpy 5.0.1 in the same venv
    python install.py --assets DIR    # use an offline asset folder laid out like shared/assets

Steps: create `.venv` (Python 3.11), install the backend with pinned dependencies (PyTorch's CUDA build where
`nvidia-smi` finds a GPU), fetch and verify the assets, record how to start the backend, build the Blender extension
zip and install it into every Blender found. A second run checks everything and downloads nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
BACKEND = ROOT / "backend"
ADDON = ROOT / "blender_addon"
VENV = ROOT / ".venv"
STAMP = VENV / ".invertavatar-install-stamp"
CUDA_INDEX = "https://download.pytorch.org/whl/cu126"


def step(message: str) -> None:
    print(f"==> {message}", flush=True)


def fail(message: str, hint: str) -> None:
    print(f"error: {message}\nhint: {hint}", file=sys.stderr)
    sys.exit(1)


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def venv_script(name: str) -> Path:
    return VENV / ("Scripts" if os.name == "nt" else "bin") / (name + (".exe" if os.name == "nt" else ""))


def find_python311() -> str:
    if sys.version_info[:2] == (3, 11):
        return sys.executable
    for candidate in ("python3.11", "py -3.11"):
        found = shutil.which(candidate.split()[0])
        if found:
            return found
    fail(f"Python 3.11 is required (this is {platform.python_version()}).",
         "Install Python 3.11 (Blender 4.2-5.0 and bpy 5.0.1 use it) and run install.py with it.")
    return ""


def has_nvidia_gpu() -> bool:
    if not shutil.which("nvidia-smi"):
        return False
    result = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
    return result.returncode == 0 and "GPU" in result.stdout


def requirement_files(dev: bool) -> list[Path]:
    files = [BACKEND / "requirements.txt", BACKEND / "constraints.txt", BACKEND / "pyproject.toml"]
    return files + ([BACKEND / "requirements-dev.txt"] if dev else [])


def install_stamp(dev: bool, gpu: bool) -> str:
    digest = hashlib.sha256(f"dev={dev} gpu={gpu}".encode())
    for path in requirement_files(dev):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def create_venv() -> None:
    if venv_python().exists():
        step(f"virtual environment exists: {VENV}")
        return
    step(f"creating the virtual environment {VENV}")
    subprocess.run([find_python311(), "-m", "venv", str(VENV)], check=True)


def install_backend(dev: bool, torch_index: str | None) -> None:
    gpu = has_nvidia_gpu()
    stamp = install_stamp(dev, gpu)
    if STAMP.exists() and STAMP.read_text() == stamp:
        step("backend dependencies are up to date")
        return
    step(f"installing the backend ({'CUDA' if gpu else 'CPU'} PyTorch{', test tools and bpy' if dev else ''})")
    command = [str(venv_python()), "-m", "pip", "install", "--disable-pip-version-check",
               "-r", str(BACKEND / "requirements.txt"), "-c", str(BACKEND / "constraints.txt")]
    if dev:
        command += ["-r", str(BACKEND / "requirements-dev.txt")]
    index = torch_index or (CUDA_INDEX if gpu and platform.system() != "Linux" else None)
    if index:  # PyPI's Linux wheel of torch is already the CUDA build; elsewhere CUDA needs PyTorch's index.
        command += ["--extra-index-url", index]
    subprocess.run(command, check=True)
    subprocess.run([str(venv_python()), "-m", "pip", "install", "--disable-pip-version-check", "--no-deps",
                    "-e", str(BACKEND)], check=True)
    STAMP.write_text(stamp)


def fetch_assets(assets_dir: Path | None, offline: bool) -> None:
    step("fetching and verifying the assets (ICT Face Model, MediaPipe Face Landmarker and selfie segmentation)")
    command = [str(venv_script("invertavatar")), "assets", "fetch"]
    if assets_dir:
        command += ["--assets", str(assets_dir.resolve())]
    if offline:
        command.append("--offline")
    if subprocess.run(command).returncode != 0:
        fail("the assets could not be installed (see above).",
             "Connect to the network, or pass --assets DIR with an offline copy laid out like shared/assets.")


def invertavatar_home() -> Path:
    output = subprocess.run([str(venv_python()), "-c", "from invertavatar import paths; print(paths.home())"],
                            capture_output=True, text=True, check=True)
    return Path(output.stdout.strip())


def record_backend_command() -> Path:
    """Write backend.json: how the add-on (or a person) starts the local backend."""
    record = {
        "command": [str(venv_script("invertavatar")), "serve", "--host", "127.0.0.1", "--port", "8765"],
        "url": "http://127.0.0.1:8765",
        "venv": str(VENV),
        "written_by": "install.py",
        "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    home = invertavatar_home()
    home.mkdir(parents=True, exist_ok=True)
    path = home / "backend.json"
    path.write_text(json.dumps(record, indent=2))
    step(f"recorded how to start the backend: {path}")
    return path


def build_extension_zip() -> Path | None:
    manifest = ADDON / "blender_manifest.toml"
    if not manifest.exists():
        step("Blender add-on: not present in this checkout yet; skipped")
        return None
    version = next((line.split("=", 1)[1].strip().strip('"') for line in manifest.read_text().splitlines()
                    if line.startswith("version")), "0.0.0")
    out = ROOT / "dist" / f"invertavatar-{version}.zip"
    out.parent.mkdir(exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(ADDON.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                archive.write(path, path.relative_to(ADDON))
    step(f"built the Blender extension: {out}")
    return out


def find_blenders() -> list[str]:
    found = [shutil.which("blender")] + [str(p) for p in Path("/opt").glob("blender*/blender")]
    found += [str(p) for p in Path("/Applications").glob("Blender*.app/Contents/MacOS/Blender")]
    return sorted({p for p in found if p})


def install_addon(extension_zip: Path | None, backend_json: Path) -> None:
    if extension_zip is None:
        return
    blenders = find_blenders()
    if not blenders:
        step("no Blender found on this machine. To install the add-on: Blender → Edit → Preferences → Get "
             f"Extensions → Install from Disk… → {extension_zip}")
        return
    for blender in blenders:
        step(f"installing the add-on into {blender}")
        result = subprocess.run([blender, "--command", "extension", "install-file", "-r", "user_default", "-e",
                                 str(extension_zip)], capture_output=True, text=True)
        if result.returncode != 0:
            print(f"   could not install automatically ({result.stderr.strip()[-300:]}); install {extension_zip} "
                  "from Preferences → Get Extensions → Install from Disk…")
    print(f"   the add-on starts the backend with the command in {backend_json}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev", action="store_true", help="also install the test tools and bpy 5.0.1")
    parser.add_argument("--assets", type=Path, default=os.environ.get("INVERTAVATAR_ASSETS"),
                        help="offline asset folder laid out like shared/assets (or INVERTAVATAR_ASSETS)")
    parser.add_argument("--offline", action="store_true", help="never download assets")
    parser.add_argument("--torch-index", help="extra package index for PyTorch (e.g. PyTorch's CPU-only wheels)")
    parser.add_argument("--no-blender", action="store_true", help="skip the Blender add-on step")
    args = parser.parse_args()
    started = time.monotonic()
    create_venv()
    install_backend(args.dev, args.torch_index)
    fetch_assets(args.assets, args.offline)
    backend_json = record_backend_command()
    if not args.no_blender:
        install_addon(build_extension_zip(), backend_json)
    step(f"done in {time.monotonic() - started:.0f} s. Try: {venv_script('invertavatar')} info")


if __name__ == "__main__":
    main()
