"""``invertavatar reconstruct INPUT... -o NAME.avatar``: photos, a folder or a clip → avatar bundle."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from ..pipeline import JobSpec, run_job

SAMPLES = ("astronaut", "grace_hopper")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("reconstruct", help="build an avatar bundle from photos or a clip",
                                   description="Build (or refine) an avatar bundle from photos, a folder of photos, "
                                   "or one video clip.")
    parser.add_argument("inputs", nargs="*", type=Path, help="photos, folders of photos, or one clip")
    parser.add_argument("-o", "--output", type=Path, help="the NAME.avatar folder to write")
    parser.add_argument("--sample", choices=SAMPLES, help="use a sample photo shipped in scikit-image/matplotlib")
    parser.add_argument("--refine", type=Path, help="an existing NAME.avatar to add these frames to")
    parser.add_argument("--mode", choices=("fit", "neural"), default="fit")
    parser.add_argument("--head-model", default="ict", choices=("ict", "faceverse"))
    parser.add_argument("--every", type=int, default=1, help="clips: consider every Nth frame")
    parser.add_argument("--max-frames", type=int, default=16, help="clips: at most this many keyframes")
    parser.add_argument("--multiple-faces", choices=("largest", "fail"), default="largest")
    parser.add_argument("--texture-size", type=int, default=1024, help="fusion resolution per skin tile")
    parser.add_argument("--photometric-steps", type=int, default=0,
                        help="align keyframes to the texture fused so far before fusing them (e.g. 12; slower)")
    parser.add_argument("--landmark-shape-only", action="store_true",
                        help="fit the shape to landmarks alone (faster; by default several keyframes also refine "
                        "it by the colours they agree on)")
    parser.add_argument("--accept-any-face", action="store_true",
                        help="build even from faces that do not look human (animals...); the bundle says so")
    parser.add_argument("--no-hair", action="store_true",
                        help="do not reconstruct the hair (a bald head, as if the person had none)")
    parser.add_argument("--hair-colour", type=hair_colour, default=None, metavar="#RRGGBB",
                        help="colour of the scalp under the hair (e.g. #3b2a20 or 59,42,32); by default the fitted "
                        "hair's root colour, or a bald-scalp tone without hair")
    parser.add_argument("--force", action="store_true", help="replace an existing output")
    parser.set_defaults(func=run)


def hair_colour(text: str) -> tuple[float, float, float]:
    """``#RRGGBB`` or ``R,G,B`` (0..255) → RGB in 0..1, for ``JobSpec.hair_colour``."""
    text = text.strip()
    try:
        if text.startswith("#") and len(text) == 7:
            values = [int(text[i:i + 2], 16) for i in (1, 3, 5)]
        else:
            values = [int(v) for v in text.split(",")]
        if len(values) != 3 or not all(0 <= v <= 255 for v in values):
            raise ValueError(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a colour: use #RRGGBB or R,G,B with 0..255") from None
    return tuple(v / 255.0 for v in values)


def sample_photo(name: str, folder: Path) -> Path:
    """Write a packaged sample photo to ``folder`` and return its path."""
    from PIL import Image

    if name == "astronaut":
        from skimage import data

        image = Image.fromarray(data.astronaut())
    else:
        import matplotlib

        image = Image.open(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg")
    path = folder / f"{name}.png"
    image.save(path)
    return path


def run(args: argparse.Namespace) -> int:
    from .progress import progress_and_cancel

    if not args.inputs and not args.sample:
        raise SystemExit("reconstruct: give input files or --sample NAME")
    with tempfile.TemporaryDirectory() as tmp:
        inputs = list(args.inputs) + ([sample_photo(args.sample, Path(tmp))] if args.sample else [])
        output = args.output or args.refine or Path(f"{(args.sample or inputs[0].stem)}.avatar")
        spec = JobSpec(inputs=inputs, output=output, refine=args.refine, mode=args.mode, head_model=args.head_model,
                       every=args.every, max_frames=args.max_frames, multiple_faces=args.multiple_faces,
                       texture_size=args.texture_size, overwrite=args.force,
                       photometric_steps=args.photometric_steps, accept_any_face=args.accept_any_face,
                       hair_colour=args.hair_colour, multiview_identity=not args.landmark_shape_only,
                       hair=not args.no_hair)
        with progress_and_cancel() as (progress, cancel):
            result = run_job(spec, progress, cancel)
    for warning in result.warnings:
        print(f"warning: {warning}")
    manifest = result.manifest
    frames = manifest["frames"]
    print(f"wrote {result.bundle.resolve()}")
    print(f"  frames seen {frames['seen']}, used {frames['used']}, skipped {frames['skipped']}; "
          f"coverage {manifest['coverage']:.0%}; landmark error {manifest['metrics']['landmark_error_iod_mean']:.1%} "
          "of the eye distance")
    print("  open it in Blender: InvertAvatar tab → Avatar → Import bundle (see docs/user-guide.md)")
    return 0
