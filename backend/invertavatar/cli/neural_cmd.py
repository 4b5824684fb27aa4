"""``invertavatar convert-checkpoint OFFICIAL.pkl OUT``: official snapshot -> our safetensors checkpoint(s).

``ani3dgan512.pkl`` (the GAN, network ``G_ema``) becomes one prior file; ``FSInvertAvatar.pkl`` (the few-shot
wrapper, network ``G``) becomes a prior file plus an encoders file. ``updatedOSInvertAvatar.pkl`` is refused.
"""

from __future__ import annotations

import argparse
from pathlib import Path

# Released parameter counts (reference §1.3, §3): a converted file must have exactly these.
RELEASED_COUNTS = {"generator": 88_301_010, "encoder": 209_450_688, "texture_unet": 68_518_304,
                   "triplane_unet": 82_784_960}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert-checkpoint",
        help="convert an official InvertAvatar .pkl (ani3dgan512.pkl, FSInvertAvatar.pkl) to safe .safetensors",
        description="Reads the official pickle with a restricted unpickler (its embedded code is never run), "
        "checks every tensor name, shape and parameter count, and writes our format. A few-shot snapshot gives a "
        "prior file (OUT) and an encoders file (--encoders-out).",
    )
    parser.add_argument("official", type=Path, help="official snapshot, e.g. ani3dgan512.pkl or FSInvertAvatar.pkl")
    parser.add_argument("out", type=Path, help="output prior checkpoint, e.g. next3d_official.safetensors")
    parser.add_argument("--key", default=None, help="network inside the snapshot (default: G_ema, else G)")
    parser.add_argument("--config", default="official", choices=("official", "tiny"),
                        help="prior configuration a GAN snapshot must match (default: official)")
    parser.add_argument("--encoders-out", type=Path, default=None,
                        help="few-shot snapshots: encoders file (default: OUT with '_encoders' added)")
    parser.set_defaults(func=run)


def _check_counts(counts: dict[str, int], config: str) -> list[str]:
    if config != "official":
        return []
    return [f"{part}: {n:,} parameters, released {RELEASED_COUNTS[part]:,}" for part, n in counts.items()
            if part in RELEASED_COUNTS and n != RELEASED_COUNTS[part]]


def run(args: argparse.Namespace) -> int:
    from invertavatar.errors import InvertAvatarError
    from invertavatar.neural.checkpoints import convert_official
    from invertavatar.neural.config import get_config
    from invertavatar.neural.inversion.checkpoints import convert_official_fewshot
    from invertavatar.neural.inversion.official import ONE_SHOT_HINT, official_kind
    from invertavatar.neural.official_pickle import default_key, load_official_pickle, network_from_snapshot

    data = load_official_pickle(args.official)
    key = args.key or default_key(data)
    network = network_from_snapshot(data, key, args.official)
    kind = official_kind(network.class_name)
    print(f"read {len(network.state_dict)} tensors of {network.class_name} [{key}] from {args.official} "
          f"(embedded source of {network.source_chars} characters kept as text, not executed)")
    if kind == "oneshot":
        raise InvertAvatarError("unsupported_checkpoint", f"{args.official} holds the improved one-shot model.",
                                ONE_SHOT_HINT)
    if kind == "gan":
        out, report = convert_official(args.official, args.out, key=key, config=get_config(args.config),
                                       network=network)
        written = [out]
    else:
        encoders_out = args.encoders_out or args.out.with_name(f"{args.out.stem}_encoders{args.out.suffix}")
        prior, encoders, report = convert_official_fewshot(args.official, args.out, encoders_out, key=key,
                                                           network=network)
        written = [prior, encoders]
        print(f"W+ encoder stage {report['encoder_stage']}; BatchNorm mode 'official' stored with the encoders")
    problems = _check_counts(report["parameters"], args.config)
    for part, n in report["parameters"].items():
        print(f"  {part:14s} {n:>12,} parameters")
    if problems:
        for path in written:
            path.unlink(missing_ok=True)
        raise InvertAvatarError("bad_checkpoint", "Parameter counts differ from the released model: "
                                + "; ".join(problems) + ".", "Use the released file, or --config tiny for tests.")
    for path in written:
        print(f"wrote {path}")
    return 0
