"""Fixtures C and D1: the W+ encoder and the two recurrent U-Nets of the few-shot model (README §7, §8.1).

Both use the whole few-shot wrapper built from ``CD_weights`` and loaded by official names through
:func:`invertavatar.neural.inversion.official.load_official_inversion` (the path ``FSInvertAvatar.pkl`` takes).
"""

from __future__ import annotations

from typing import Callable

import torch

from invertavatar.neural.inversion.batchnorm import set_batchnorm_mode
from invertavatar.neural.inversion.model import InversionNet
from invertavatar.neural.inversion.official import build_official_inversion, load_official_inversion
from invertavatar.neural.parity.fixture import Fixture, Row
from invertavatar.neural.parity.recipe import materialize

Progress = Callable[[str], None]


def build_fewshot(fixture: Fixture, progress: Progress) -> InversionNet:
    progress(f"{fixture.name}: materialising the few-shot recipe weights (450 M values)")
    state, meta = materialize(fixture.weights_json)
    net = build_official_inversion(meta.get("generator_init_kwargs"))
    load_official_inversion(net, state, source=f"{fixture.weights_json.stem} recipe")
    return net.eval()


def run_c(fixture: Fixture, net: InversionNet, progress: Progress) -> list[Row]:
    image = fixture.tensor("in.image_u8").to(torch.float32).permute(2, 0, 1)[None] / 127.5 - 1
    ours: dict[str, torch.Tensor] = {"latent_avg": net.latent_avg}
    for mode, suffix in (("eval", "eval"), ("official", "trainbn")):
        progress(f"C: W+ encoder, BatchNorm mode {mode}")
        set_batchnorm_mode(net, mode)
        with torch.no_grad():
            ours[f"codes_{suffix}"] = net.encoder(net.face_pool(image))
            ours[f"ws_{suffix}"] = net.coarse_ws(image)
    set_batchnorm_mode(net, "official")
    rows: list[Row] = []
    for key in fixture.outputs():
        rows.extend(fixture.compare(key, ours[key]))
    return rows


def unet_call(net: InversionNet, texture_in: torch.Tensor, triplane_in: torch.Tensor,
              hidden: list[torch.Tensor] | None) -> tuple[dict[str, torch.Tensor], list[torch.Tensor]]:
    """One call of both U-Nets on (B, T, C, R, R) inputs; returns the fixture's tensors and the 8 new states."""
    unets = net.unet_encoder
    hidden = hidden or [None] * 8
    with torch.no_grad():
        tex_states = unets.texture_unet.decode(texture_in, hidden[:4])
        tri_states = unets.triplane_unet.decode(triplane_in, hidden[4:])
        offsets = unets.texture_unet.heads(tex_states)
        sft = unets.triplane_unet.heads(tri_states)
    out: dict[str, torch.Tensor] = {}
    for k in range(4):
        out[f"texture_offset.{k}"] = offsets[k]
        out[f"texture_hidden.{k}"] = tex_states[k]
        out[f"triplane_hidden.{k}"] = tri_states[k]
    for res, (scale, shift) in sft.items():
        out[f"sft.{res}"] = torch.stack([scale, shift])
    return out, tex_states + tri_states


def run_d1(fixture: Fixture, net: InversionNet, progress: Progress) -> list[Row]:
    frames = [(fixture.tensor(f"in.texture_frame{i}")[:, None], fixture.tensor(f"in.triplane_frame{i}")[:, None])
              for i in range(2)]
    ours: dict[str, torch.Tensor] = {}
    for mode, calls in (("official", 2), ("alleval", 1)):
        set_batchnorm_mode(net, "official" if mode == "official" else "eval")
        hidden = None
        for call in range(calls):
            progress(f"D1: U-Nets, BatchNorm mode {mode}, call {call + 1}")
            out, hidden = unet_call(net, frames[call][0], frames[call][1], hidden)
            ours.update({f"{mode}.call{call + 1}.{k}": v for k, v in out.items()})
    set_batchnorm_mode(net, "official")
    rows: list[Row] = []
    for key in fixture.outputs():
        rows.extend(fixture.compare(key, ours[key]))
    return rows
