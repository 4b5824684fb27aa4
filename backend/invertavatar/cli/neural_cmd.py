"""``invertavatar convert-checkpoint OFFICIAL.pkl OUT``: official snapshot -> our safetensors prior checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert-checkpoint",
        help="convert an official InvertAvatar .pkl (e.g. ani3dgan512.pkl) to a safe .safetensors checkpoint",
        description="Reads the official pickle with a restricted unpickler (its embedded code is never run), "
        "checks every tensor name and shape against the prior, and writes our format.",
    )
    parser.add_argument("official", type=Path, help="official snapshot, e.g. ani3dgan512.pkl")
    parser.add_argument("out", type=Path, help="output checkpoint, e.g. next3d_official.safetensors")
    parser.add_argument("--key", default="G_ema", help="network inside the snapshot (default: G_ema)")
    parser.add_argument("--config", default="official", choices=("official", "tiny"),
                        help="prior configuration the tensors must match (default: official)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from invertavatar.neural.checkpoints import convert_official
    from invertavatar.neural.config import get_config

    out, report = convert_official(args.official, args.out, key=args.key, config=get_config(args.config))
    print(f"read {report['tensors']} tensors of {report['class_name']} [{args.key}] from {args.official}")
    print(f"wrote {out}")
    return 0
