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
