"""``invertavatar assets {fetch,verify}``: install the models and check their SHA-256."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import assets


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("assets", help="fetch or verify the head model and landmarker files")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    fetch = actions.add_parser("fetch", help="install missing assets (offline folder first, then the network)")
    fetch.add_argument("--assets", type=Path, help="offline folder laid out like shared/assets")
    fetch.add_argument("--offline", action="store_true", help="never use the network")
    fetch.set_defaults(func=run_fetch)
    verify = actions.add_parser("verify", help="check the installed assets against their pinned SHA-256")
    verify.set_defaults(func=run_verify)


def run_fetch(args: argparse.Namespace) -> int:
    assets.fetch_all(args.assets, allow_network=not args.offline)
    return 0


def run_verify(args: argparse.Namespace) -> int:
    del args
    status = assets.verify_all()
    for name, ok in status.items():
        print(f"{name:27s} {'ok' if ok else 'MISSING or MODIFIED'}")
    return 0 if all(status.values()) else 1
