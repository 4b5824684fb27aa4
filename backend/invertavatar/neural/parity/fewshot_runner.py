"""Fixtures C, D1, D2: W+ encoder, the two recurrent U-Nets, the few-shot top level (README §7, §8).

Both use the whole few-shot wrapper built from ``CD_weights`` and loaded by official names through
:func:`invertavatar.neural.inversion.official.load_official_inversion` (the path ``FSInvertAvatar.pkl`` takes).
"""

from __future__ import annotations

from typing import Callable

import torch

from invertavatar.errors import InvertAvatarError
from invertavatar.neural.inversion.batchnorm import set_batchnorm_mode
from invertavatar.neural.inversion.model import FrameBatch, InversionNet
from invertavatar.neural.inversion.official import build_official_inversion, load_official_inversion
from invertavatar.neural.inversion.session import official_groups
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


def d2_frames(fixture: Fixture) -> tuple[FrameBatch, list[int]]:
    """The group of four reference frames the official script forms from the fixture's two references."""
    frame0 = fixture.tensor("in.frame_u8")[0].to(torch.int32)
    frame1 = (frame0.flip(1) + 12).clamp(0, 255)  # mirrored and brightened, in integers (README §8.2)
    images = torch.stack([frame0, frame1]).to(torch.float32).permute(0, 3, 1, 2) / 127.5 - 1
    uv_texture = fixture.tensor("in.uv_gttex_u8").to(torch.float32) / 127.5 - 1
    pverts = fixture.tensor("in.uv_pverts")
    order = official_groups(2)[0]
    pick = torch.tensor(order)
    frames = FrameBatch(image=images[pick][None], camera=fixture.tensor("in.vid_c")[pick][None],
                        condition=fixture.tensor("in.vid_uvcoords_image")[pick][None],
                        uv_grid=pverts[pick, :2].permute(0, 2, 3, 1)[None], uv_visible=pverts[pick, 2][None],
                        uv_texture=uv_texture[pick][None])
    return frames, order


def run_d2(fixture: Fixture, net: InversionNet, progress: Progress) -> list[Row]:
    frames, order = d2_frames(fixture)
    if order != list(fixture.meta.get("frame_order", order)):
        raise InvertAvatarError("bad_fixture", f"D2 frame order {fixture.meta['frame_order']} differs from the "
                                f"official grouping {order}.", "The fixture and this version disagree.")
    set_batchnorm_mode(net, "official")
    trace: dict = {}
    with torch.no_grad():
        progress("D2: W+ code of the first reference and the coarse avatar")
        ws = net.coarse_ws(frames.image[:, 0])
        coarse = net.coarse_features(ws)
        progress("D2: coarse re-render of the 4 frames and both U-Nets (slow)")
        states = net.fine_step(frames, ws, coarse, None, jitter=False, trace=trace)
        avatar = net.avatar(ws, coarse, states, trace=trace)
        progress("D2: driven frame")
        planes = net.generator.face_planes(avatar, ws, fixture.tensor("in.drive_uvcoords_image"))
        drive = net.generator.render(planes, ws, fixture.tensor("in.drive_c"), jitter=False)
    ours = {"ws": ws, "texture_unet_input": trace["texture_unet_input"],
            "triplane_unet_input": trace["triplane_unet_input"], "drive.image": drive.image,
            "drive.feature_image": drive.features, "drive.planes": planes}
    for k in range(6):
        ours[f"updated_texture_list.{k}"] = trace["texture_list"][k]
        ours[f"updated_static_list.{k}"] = trace["static_list"][k]
    for k in range(4):
        ours[f"r_list.texture.{k}"], ours[f"r_list.triplane.{k}"] = states[k], states[4 + k]
    rows: list[Row] = []
    for key in fixture.outputs():
        rows.extend(fixture.compare(key, ours[key]))
    return rows
