"""``invertavatar animate AVATAR --drive CLIP|tracks.json -o out.mp4``: reenactment video of an avatar."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "animate", help="drive an avatar with another performance (clip or tracks.json) and write a video",
        description="Tracks the driving clip's expressions, head pose and gaze (the driving person's identity is "
        "fitted for tracking only; the avatar keeps its own), renders every tracked frame with the chosen renderer "
        "and encodes the video as it goes. Ctrl-C cancels and leaves no video.")
    parser.add_argument("avatar", type=Path, help="the NAME.avatar bundle to animate")
    parser.add_argument("--drive", type=Path, required=True, help="a driving clip, or a bundle's tracks.json")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the video to write (.mp4)")
    parser.add_argument("--renderer", choices=("neural", "albedo"), default=None,
                        help="default: neural when the avatar has a neural state, else albedo")
    parser.add_argument("--size", type=int, default=512, help="avatar picture side in pixels (default 512)")
    parser.add_argument("--side-by-side", action="store_true", help="driving frame | avatar, for checking")
    parser.add_argument("--fps", type=float, default=None, help="frame rate (default: the driving clip's)")
    parser.add_argument("--neural-resolution", type=int, default=None,
                        help="rays per side for the neural renderer (lower is faster; default: the prior's)")
    parser.add_argument("--force", action="store_true", help="replace an existing output")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import InvertAvatarError
    from ..renderers.reenact import animate
    from .progress import progress_and_cancel

    if args.output.exists() and not args.force:
        raise InvertAvatarError("output_exists", f"{args.output} already exists.", "Choose another name or --force.")
    with progress_and_cancel() as (progress, cancel):
        result = animate(args.avatar, args.drive, args.output, args.renderer, args.size, args.side_by_side,
                         args.fps, args.neural_resolution, progress, cancel)
    print(f"wrote {result.output.resolve()}: {result.frames} frames at {result.fps:g} fps, {result.renderer} renderer")
    return 0
