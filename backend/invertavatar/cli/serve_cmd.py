"""`invertavatar serve`: the HTTP backend for the Blender add-on and scripts."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the `serve` sub-command; its ``func`` starts the server and returns the exit status."""
    from invertavatar.server.main import add_arguments, run

    parser = subparsers.add_parser("serve", help="run the HTTP backend (loopback only unless --allow-remote)",
                                   description="Run the InvertAvatar HTTP backend (API v1, see docs/server.md).")
    add_arguments(parser)
    parser.set_defaults(func=run)
