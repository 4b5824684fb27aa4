"""The command line: version, info (device, assets, absent user files with hints), assets verify."""

from __future__ import annotations

import json
import subprocess
import sys

from invertavatar import __version__
from invertavatar.cli.main import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "invertavatar.cli", *args], capture_output=True, text=True)


def test_version():
    result = run_cli("--version")
    assert result.returncode == 0 and __version__ in result.stdout


def test_info_lists_device_assets_and_absent_user_files(capsys):
    assert main(["info", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["device"].startswith(("cpu", "cuda"))
    assert report["models"]["ict-face-model"]["installed"]
    assert report["models"]["mediapipe-face-landmarker"]["installed"]
    for optional in ("faceverse", "invertavatar-checkpoints", "face-alignment-fan"):
        item = report["models"][optional]
        assert not item["installed"] and "put" in item["hint"]
    assert main(["info"]) == 0
    text = capsys.readouterr().out
    assert "device:" in text and "absent" in text


def test_assets_fetch_offline_then_verify(capsys):
    assert main(["assets", "fetch", "--offline"]) == 0  # copies from INVERTAVATAR_ASSETS into the test home
    assert main(["assets", "verify"]) == 0
    assert "MISSING" not in capsys.readouterr().out


def test_assets_verify_detects_a_modified_file(capsys):
    from invertavatar import assets

    main(["assets", "fetch", "--offline"])
    with open(assets.LANDMARKER.path, "r+b") as handle:
        handle.seek(1000)
        handle.write(b"tampered")
    assert main(["assets", "verify"]) == 1
    assert "MODIFIED" in capsys.readouterr().out
    assets.LANDMARKER.path.unlink()


def test_user_errors_print_message_and_hint(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("INVERTAVATAR_ASSETS", str(tmp_path))
    from invertavatar import assets

    for asset in assets.ASSETS:
        asset.path.unlink(missing_ok=True)
    assert main(["assets", "fetch", "--offline"]) == 1
    err = capsys.readouterr().err
    assert "error:" in err and "hint:" in err and "--assets" in err
