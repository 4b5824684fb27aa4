"""``invertavatar info``: device, torch build, installed assets and user-supplied files."""

from __future__ import annotations

import argparse
import json

from ..paths import faceverse_dir
from ..status import installation_report


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("info", help="show the device, torch build and which models are installed")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..neural.checkpoints import official_files
    from ..paths import checkpoints_dir

    report = installation_report()
    report["official_files"] = official_files(checkpoints_dir())
    report["faceverse_files"] = faceverse_files()
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"invertavatar {report['backend_version']} (API v{report['api_version']})")
    print(f"device:       {report['device']}")
    print(f"torch:        {report['torch']}")
    print(f"home:         {report['home']}")
    for name, item in report["models"].items():
        state = "installed" if item["installed"] else "absent"
        where = item.get("path") or item.get("hint", "")
        print(f"{name:27s} {state:9s} {where}")
    print(f"official InvertAvatar files (in {checkpoints_dir()}):")
    for item in report["official_files"]:
        print(f"  {item['name']:25s} {'present' if item['present'] else 'absent':9s} {item['note']}")
    print(f"FaceVerse user files (in {faceverse_dir()}; none is downloaded or shipped):")
    for item in report["faceverse_files"]:
        print(f"  {item['name']:35s} {'present' if item['present'] else 'absent':9s} for {item['needed_for']}; "
              f"{item['source']}")
    return 0


def faceverse_files() -> list[dict]:
    """The FaceVerse model and the official pipeline's side files: present or not, what needs them, their origin."""
    from ..headmodel import FACEVERSE_USER_FILES

    return [{"name": name, "present": (faceverse_dir() / name).is_file(), "needed_for": need, "source": source}
            for name, need, source in FACEVERSE_USER_FILES]
