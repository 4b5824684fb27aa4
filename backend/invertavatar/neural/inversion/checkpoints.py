"""Encoder checkpoints: every non-generator tensor of ``InversionNet`` in one safetensors file + JSON configs.

The prior is stored separately with :func:`invertavatar.neural.checkpoints.save_prior`, so one prior can serve
several encoder sets and the official prior converts without touching the encoders.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from invertavatar.errors import InvertAvatarError
from invertavatar.neural.checkpoints import save_prior, write_safetensors_atomic
from invertavatar.neural.inversion.batchnorm import batchnorm_mode, set_batchnorm_mode
from invertavatar.neural.inversion.config import encoder_config_from_dict
from invertavatar.neural.inversion.model import InversionNet
from invertavatar.neural.prior.generator import Next3DGenerator

FORMAT_NAME = "invertavatar.neural.encoders"
FORMAT_VERSION = 1


def encoder_state(net: InversionNet) -> dict[str, torch.Tensor]:
    return {n: t for n, t in net.state_dict().items() if not n.startswith("generator.")}


def save_encoders(path: str | Path, net: InversionNet, extra: dict[str, str] | None = None) -> Path:
    """Write the encoders (W+, texture and tri-plane U-Nets, wrapper buffers) atomically.

    The BatchNorm mode (``official`` for converted few-shot weights) and the W+ stage travel in the metadata.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {n: t.detach().cpu().contiguous().clone() for n, t in encoder_state(net).items()}
    metadata = {"format": FORMAT_NAME, "format_version": str(FORMAT_VERSION), "prior": net.prior_config.to_json(),
                "encoder": json.dumps(net.encoder_config.to_dict()), "use_gru": str(net.use_gru),
                "batchnorm_mode": batchnorm_mode(net), "encoder_stage": str(net.encoder.stage)}
    metadata.update(extra or {})
    return write_safetensors_atomic(path, tensors, metadata)


def load_encoders(path: str | Path, generator: Next3DGenerator, device: torch.device | str = "cpu") -> InversionNet:
    """Rebuild ``InversionNet`` around ``generator`` and load the encoders strictly."""
    path = Path(path)
    if not path.is_file():
        raise InvertAvatarError("missing_file", f"Inversion encoder checkpoint not found: {path}.",
                                "Train one with 'invertavatar train coarse/fine/recurrent' or check the path.")
    try:
        with safe_open(str(path), "pt") as f:
            metadata = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise InvertAvatarError("bad_checkpoint", f"{path} is not a readable encoder checkpoint ({exc}).",
                                "Re-save it with save_encoders().") from exc
    if metadata.get("format") != FORMAT_NAME:
        raise InvertAvatarError("bad_checkpoint", f"{path} is not an inversion encoder checkpoint.",
                                "Pass the encoders file, not the prior.")
    prior = json.loads(metadata["prior"])
    if prior.get("name") != generator.config.name or prior.get("plane_resolution") != generator.config.plane_resolution:
        raise InvertAvatarError("bad_checkpoint", f"{path} was trained for the '{prior.get('name')}' prior, "
                                f"not '{generator.config.name}'.", "Load the prior the encoders were trained with.")
    net = InversionNet(generator, encoder_config_from_dict(json.loads(metadata["encoder"])),
                       use_gru=metadata.get("use_gru", "True") == "True")
    expected = encoder_state(net)
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = sorted(n for n in set(expected) & set(tensors) if expected[n].shape != tensors[n].shape)
    if missing or unexpected or wrong:
        raise InvertAvatarError("bad_checkpoint", f"{path} does not match the encoders: missing {missing[:5]}, "
                                f"unexpected {unexpected[:5]}, wrong shape {wrong[:5]}.", "Use a matching checkpoint.")
    net.load_state_dict({**net.state_dict(), **tensors})
    set_batchnorm_mode(net, metadata.get("batchnorm_mode", "eval"))
    net.encoder.stage = int(metadata.get("encoder_stage", net.encoder.stage))
    return net.to(device)


def convert_official_fewshot(pkl_path: str | Path, prior_out: str | Path, encoders_out: str | Path,
                             key: str = "G", network=None) -> tuple[Path, Path, dict]:
    """``FSInvertAvatar.pkl`` -> our prior file + our encoders file (read safely, names/shapes/counts checked)."""
    from invertavatar.neural.inversion.official import read_official_fewshot

    net, report = read_official_fewshot(pkl_path, key=key, network=network)
    extra = {"source": Path(pkl_path).name, "source_key": key}
    prior_path = save_prior(prior_out, net.generator, {**extra, "source_init_kwargs": json.dumps(
        report["generator_init_kwargs"], default=str, sort_keys=True)})
    encoders_path = save_encoders(encoders_out, net, extra)
    return prior_path, encoders_path, report
