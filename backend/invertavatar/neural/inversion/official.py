"""Official few-shot weights (``FSInvertAvatar.pkl``'s ``G``, an ``inversionNet``) in our ``InversionNet``.

The tensors come by official name, from the safe pickle reader or from the parity recipe; both go through
:func:`load_official_inversion`, which checks every name and shape, the ``latent_avg`` / ``w_avg`` alias, and
selects the official few-shot BatchNorm mode.
"""

from __future__ import annotations

import torch

from invertavatar.errors import InvertAvatarError
from invertavatar.neural.checkpoints import describe_mismatch
from invertavatar.neural.config import PriorConfig, config_from_official_kwargs
from invertavatar.neural.inversion.batchnorm import set_batchnorm_mode
from invertavatar.neural.inversion.config import official_encoder_config
from invertavatar.neural.inversion.model import InversionNet
from invertavatar.neural.prior.generator import Next3DGenerator

W_AVG = "generator.backbone.mapping.w_avg"


def build_official_inversion(generator_kwargs: dict | None = None) -> InversionNet:
    """An empty ``InversionNet`` with the released layout (generator from its official constructor kwargs)."""
    config: PriorConfig = config_from_official_kwargs(generator_kwargs or {})
    return InversionNet(Next3DGenerator(config), official_encoder_config(), use_gru=True)


def load_official_inversion(net: InversionNet, tensors: dict[str, torch.Tensor], source: str,
                            bn_mode: str = "official") -> InversionNet:
    """Copy official-named tensors into ``net`` strictly; default BatchNorm mode = the released script's."""
    if "latent_avg" in tensors and W_AVG in tensors:
        # The official wrapper registers latent_avg as a view of the mapping's w_avg: they can only be equal.
        if not torch.equal(tensors["latent_avg"].reshape(-1), tensors[W_AVG].reshape(-1)):
            raise InvertAvatarError("bad_checkpoint", f"{source}: latent_avg differs from {W_AVG}, which it aliases.",
                                    "The file is damaged or not an official few-shot snapshot.")
    problem = describe_mismatch(net.state_dict(), tensors)
    if problem:
        raise InvertAvatarError("bad_checkpoint", f"{source} does not match the few-shot model ({problem}).",
                                "Use FSInvertAvatar.pkl (network 'G') or a file converted from it.")
    net.load_state_dict(tensors, strict=True)
    set_batchnorm_mode(net, bn_mode)
    return net


ONE_SHOT_HINT = ("updatedOSInvertAvatar.pkl (transformer U-Nets, uvnet_new) is not supported: the reference documents "
                 "its layout but no parity fixture pins its computation; use FSInvertAvatar.pkl.")


def official_kind(class_name: str) -> str:
    """``gan`` (TriPlaneGenerator), ``fewshot`` (uvnet.inversionNet) or ``oneshot`` (uvnet_new.inversionNet)."""
    if class_name.endswith("TriPlaneGenerator"):
        return "gan"
    if class_name.endswith("uvnet_new.inversionNet"):
        return "oneshot"
    if class_name.endswith("inversionNet"):
        return "fewshot"
    raise InvertAvatarError("bad_checkpoint", f"Unknown official network class '{class_name}'.",
                            "Pass ani3dgan512.pkl (key G_ema) or FSInvertAvatar.pkl (key G).")


def _recorded_stage(state: dict) -> int | None:
    """The e4e ``progressive_stage`` (an enum, recovered as a placeholder holding its value), if recorded."""
    stage = state.get("progressive_stage")
    args = getattr(stage, "__dict__", {}).get("_args") if stage is not None else None
    if args and isinstance(args[0], int):
        return int(args[0])
    return None


def read_official_fewshot(path, key: str = "G", network=None) -> tuple[InversionNet, dict]:
    """``FSInvertAvatar.pkl`` -> our ``InversionNet`` (official BatchNorm mode), read without executing anything.

    ``network`` = an already read ``OfficialNetwork`` of that file. Returns the network and a report (class, tensor
    count, parameter counts per part, generator kwargs, W+ stage).
    """
    from invertavatar.neural.official_pickle import read_official_pickle

    network = network or read_official_pickle(path, key=key)
    kind = official_kind(network.class_name)
    if kind == "oneshot":
        raise InvertAvatarError("unsupported_checkpoint", f"{path} holds the improved one-shot model.", ONE_SHOT_HINT)
    if kind != "fewshot":
        raise InvertAvatarError("bad_checkpoint", f"{path} [{key}] is a {network.class_name}, not the few-shot "
                                "inversion wrapper.", "Convert GAN snapshots with --kind gan (key G_ema).")
    generator_kwargs = network.child_init_kwargs("generator")
    net = build_official_inversion(generator_kwargs)
    load_official_inversion(net, network.state_dict, source=f"{path} [{key}]")
    stage = _recorded_stage(network.states.get("encoder", {}))
    if stage is not None:
        net.encoder.stage = min(stage, net.encoder.num_ws - 1)
    counts = {part: sum(p.numel() for n, p in net.named_parameters() if n.startswith(prefix))
              for part, prefix in (("generator", "generator."), ("encoder", "encoder."),
                                   ("texture_unet", "unet_encoder.texture_unet."),
                                   ("triplane_unet", "unet_encoder.triplane_unet."))}
    report = {"class_name": network.class_name, "tensors": len(network.state_dict), "parameters": counts,
              "generator_init_kwargs": generator_kwargs, "encoder_stage": net.encoder.stage}
    return net, report
