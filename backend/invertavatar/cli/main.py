"""The ``invertavatar`` command: a thin layer over the library; each feature adds its sub-command."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from .. import __version__
from ..errors import InvertAvatarError

# Feature modules that contribute sub-commands (``add_parser(subparsers)``); absent ones are skipped.
COMMAND_MODULES = ("info_cmd", "assets_cmd", "reconstruct_cmd", "serve_cmd", "neural_cmd", "train_cmd", "eval_cmd",
                   "bench_cmd", "verify_official_cmd", "animate_cmd")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="invertavatar", description="Photos or a clip of a face → a rigged, "
                                     "textured, animatable head avatar (InvertAvatar, SIGGRAPH 2024).")
    parser.add_argument("--version", action="version", version=f"invertavatar {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"{__package__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__package__}.{name}":
                continue
            raise
        module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except InvertAvatarError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
