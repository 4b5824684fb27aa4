"""``InversionNet``: prior + coarse W+ encoder + the two fine U-Nets (module names of reference §3.5).

One call of :meth:`InversionNet.fine_step` takes a group of frames (B, T, ...) and the eight hidden states and
returns the new states; :meth:`avatar` turns ws + states into ``AvatarFeatures`` for the prior. The coarse render
used for the residual is always the one of the W+ code from the session's first frame (as the reference does).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from invertavatar.neural.config import PriorConfig
from invertavatar.neural.inversion.config import EncoderConfig
from invertavatar.neural.inversion.unet import TextureUNet, TriPlaneUNet
from invertavatar.neural.inversion.wplus import WPlusEncoder
from invertavatar.neural.prior.generator import AvatarFeatures, Next3DGenerator, Synthesis


@dataclasses.dataclass
class FrameBatch:
    """Observed frames with everything the fine stage needs; leading dims (B, T).

    image (B, T, 3, S, S) in [-1, 1] at the prior's output resolution S; camera (B, T, 25) label;
    condition (B, T, P, P, 3) mesh condition; uv_grid (B, T, P, P, 2) image position of every UV texel in
    ``grid_sample`` coordinates; uv_visible (B, T, P, P) 1 where that texel is seen in the image; optional
    uv_texture (B, T, 3, P, P): the image already unwrapped into UV space (the reference's precomputed
    ``uv_gttex``, +1 where unseen); when absent it is sampled from ``image`` through ``uv_grid``.
    """

    image: torch.Tensor
    camera: torch.Tensor
    condition: torch.Tensor
    uv_grid: torch.Tensor
    uv_visible: torch.Tensor
    uv_texture: torch.Tensor | None = None

    def select(self, index: slice | list[int] | torch.Tensor) -> "FrameBatch":
        """Frames ``index`` along T (keeps B)."""
        return FrameBatch(*(None if getattr(self, f.name) is None else getattr(self, f.name)[:, index]
                            for f in dataclasses.fields(self)))

    @property
    def length(self) -> int:
        return int(self.image.shape[1])

    def to(self, device: torch.device | str) -> "FrameBatch":
        return FrameBatch(*(None if getattr(self, f.name) is None else getattr(self, f.name).to(device)
                            for f in dataclasses.fields(self)))


class UNetPair(nn.Module):
    """Container named ``unet_encoder`` in the reference."""

    def __init__(self, prior: PriorConfig, config: EncoderConfig, use_gru: bool) -> None:
        super().__init__()
        self.texture_unet = TextureUNet(prior, config, use_gru)
        self.triplane_unet = TriPlaneUNet(prior, config, use_gru)


class InversionNet(nn.Module):
    """The complete inversion model. ``generator`` is the (frozen) prior."""

    def __init__(self, generator: Next3DGenerator, config: EncoderConfig, use_gru: bool = True) -> None:
        super().__init__()
        prior = generator.config
        self.prior_config, self.encoder_config, self.use_gru = prior, config, use_gru
        self.generator = generator
        self.encoder = WPlusEncoder(prior, config, generator.num_ws)
        self.unet_encoder = UNetPair(prior, config, use_gru)
        self.face_pool = nn.AdaptiveAvgPool2d(prior.plane_resolution)
        self.register_buffer("latent_avg", generator.backbone.mapping.w_avg.detach().clone()[None])
        res = prior.plane_resolution
        self.register_buffer("black_uv_bg", -torch.ones(1, 3, res, res))

    def start_from_coarse(self) -> None:
        """Make the fine stage an exact no-op at initialisation: zero texture heads, identity SFT."""
        for i in range(4):
            conv = getattr(self.unet_encoder.texture_unet, f"outconv{i}")
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)
        self.unet_encoder.triplane_unet.start_as_identity()

    # ------------------------------------------------------------------ coarse stage
    def coarse_ws(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> W+ (B, num_ws, w_dim)."""
        return self.encoder(self.face_pool(image)) + self.latent_avg[:, None]

    def coarse_features(self, ws: torch.Tensor) -> AvatarFeatures:
        return self.generator.avatar_features(ws)

    def render(self, features: AvatarFeatures, ws: torch.Tensor, camera: torch.Tensor, condition: torch.Tensor,
               generator: torch.Generator | None = None) -> Synthesis:
        """Render an avatar for one camera (B, 25) and mesh condition (B, P, P, 3)."""
        planes = self.generator.face_planes(features, ws, condition)
        return self.generator.render(planes, ws, camera, generator=generator)

    # ------------------------------------------------------------------ fine stage
    def fine_inputs(self, frames: FrameBatch, ws: torch.Tensor, coarse: AvatarFeatures,
                    jitter: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Texture-U-Net input (B, T, 7, P, P) and tri-plane input (B, T, 6, S, S) for a group of frames.

        The residual is the coarse avatar rendered at every frame's camera and mesh (all frames of the call in
        one batch, as the reference does) minus the frame. ``jitter=False`` renders it with the fully
        deterministic ray sampling; otherwise the coarse samples get one fixed jitter pattern.
        """
        b, t = frames.image.shape[:2]
        ws_t = ws.repeat_interleave(t, dim=0)
        feats = AvatarFeatures([x.repeat_interleave(t, dim=0) for x in coarse.texture_levels],
                               [x.repeat_interleave(t, dim=0) for x in coarse.static_levels],
                               coarse.static_planes.repeat_interleave(t, dim=0))
        image = frames.image.flatten(0, 1)
        # Same ray jitter for every frame: the residual should show the avatar's error, not sampling noise.
        generator = torch.Generator(device=image.device).manual_seed(0)
        with torch.no_grad():
            planes = self.generator.face_planes(feats, ws_t, frames.condition.flatten(0, 1))
            recon = self.generator.render(planes, ws_t, frames.camera.flatten(0, 1), generator=generator,
                                          jitter=jitter)
        residual = recon.image - image
        grid = frames.uv_grid.flatten(0, 1)
        visible = frames.uv_visible.flatten(0, 1)[:, None]
        if frames.uv_texture is not None:
            uv_image = frames.uv_texture.flatten(0, 1)
        else:
            uv_image = F.grid_sample(image, grid, align_corners=False) * visible + (1 - visible)
        uv_residual = F.grid_sample(residual, grid, align_corners=False) * visible - (1 - visible)
        texture_in = torch.cat([uv_image, uv_residual, visible], dim=1)
        tri_in = torch.cat([image, residual], dim=1)  # the tri-plane U-Net pools it to its own resolution
        return texture_in.unflatten(0, (b, t)), tri_in.unflatten(0, (b, t))

    def fine_step(self, frames: FrameBatch, ws: torch.Tensor, coarse: AvatarFeatures,
                  hidden: list[torch.Tensor | None] | None = None, jitter: bool = True,
                  trace: dict | None = None) -> list[torch.Tensor]:
        """One call on a group of frames: the 8 new hidden states (texture stages 1-4, tri-plane stages 1-4).

        ``trace`` (a dict) receives both U-Net inputs.
        """
        hidden = hidden if hidden is not None else [None] * 8
        texture_in, tri_in = self.fine_inputs(frames, ws, coarse, jitter)
        if trace is not None:
            trace.update(texture_unet_input=texture_in, triplane_unet_input=tri_in)
        tex = self.unet_encoder.texture_unet.decode(texture_in, hidden[:4])
        tri = self.unet_encoder.triplane_unet.decode(tri_in, hidden[4:])
        return tex + tri

    def avatar(self, ws: torch.Tensor, coarse: AvatarFeatures, states: list[torch.Tensor] | None,
               trace: dict | None = None) -> AvatarFeatures:
        """The avatar after the fine stage (``states`` None = coarse only); ``trace`` gets the raw static list."""
        if states is None:
            return coarse
        offsets = self.unet_encoder.texture_unet.heads(states[:4])
        texture = [level + offsets[i] if i < 4 else level for i, level in enumerate(coarse.texture_levels)]
        sft = self.unet_encoder.triplane_unet.heads(states[4:])
        static = self.generator.backbone.synthesis(ws, "const", None, return_list=True, sft=sft)
        if trace is not None:
            trace.update(texture_list=texture, static_list=static)
        return features_from_lists(self.prior_config, texture, static)


def features_from_lists(config: PriorConfig, texture: list[torch.Tensor], static: list[torch.Tensor]) -> AvatarFeatures:
    """Build ``AvatarFeatures`` from the two backbones' level lists (same layout as ``avatar_features``)."""
    b, ch, p = static[-1].shape[0], config.plane_channels, config.plane_resolution
    planes = static[-1].reshape(b, 3, ch, p, p)
    first = static[0].reshape(b, 3, ch, *static[0].shape[-2:])[:, 0]
    return AvatarFeatures(texture, [first] + static[1:-1] + [planes[:, 0]], planes)


def hidden_shapes(net: InversionNet, batch: int = 1) -> list[tuple[int, ...]]:
    """Shapes of the 8 ConvGRU states: texture stages 1-4 then tri-plane stages 1-4, at P/16 .. P/2."""
    res, widths = net.prior_config.plane_resolution, net.encoder_config.decoder_widths
    one = [(batch, c, res // 16 * 2**k, res // 16 * 2**k) for k, c in enumerate(widths)]
    return one + one


def invert_one_shot(net: InversionNet, frames: FrameBatch) -> tuple[torch.Tensor, AvatarFeatures]:
    """The one-shot path: W+ from the first frame, one fine call on ``frames`` from the zero state."""
    ws = net.coarse_ws(frames.image[:, 0])
    coarse = net.coarse_features(ws)
    states = net.fine_step(frames, ws, coarse, None)
    return ws, net.avatar(ws, coarse, states)
