"""Next3D++: the animatable tri-plane generator of InvertAvatar (reference §1).

Data flow: one set of ws drives three StyleGAN2 networks. ``texture_backbone`` makes a UV neural texture,
``backbone`` the static tri-plane, ``face_backbone`` re-synthesises the face window of the XY plane with the
texture rasterised through the mesh condition injected at several scales. The tri-plane is volume rendered at the
neural rendering resolution and super-resolved 4x. Expression, identity shape and gaze enter only through the mesh
condition; head pose only through the camera.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from invertavatar.errors import InvertAvatarError
from invertavatar.neural.config import PriorConfig
from invertavatar.neural.prior.face_plane import check_condition, hole_masks, injection_maps, paste_face
from invertavatar.neural.prior.stylegan2 import StyleGenerator
from invertavatar.neural.prior.superres import SuperResolution
from invertavatar.neural.prior.volume import TriPlaneDecoder, VolumeRenderer, camera_rays


@dataclasses.dataclass
class AvatarFeatures:
    """Per-avatar backbone outputs; reusable for every driven frame (only the face network reruns)."""

    texture_levels: list[torch.Tensor]  # [img@start, x@start, x@2start, ..., img@res] of the UV texture network
    static_levels: list[torch.Tensor]  # same levels of the static network, plane-0 channels for the images
    static_planes: torch.Tensor  # (B, 3, C, P, P)


@dataclasses.dataclass
class Synthesis:
    """Result of one synthesis: image (B, 3, 4r, 4r), raw RGB (B, 3, r, r), features (B, C, r, r), depth."""

    image: torch.Tensor
    image_raw: torch.Tensor
    features: torch.Tensor
    depth: torch.Tensor
    planes: torch.Tensor


class Next3DGenerator(nn.Module):
    """The prior. Parameter names and shapes match the released generator for ``official_config()``."""

    def __init__(self, config: PriorConfig) -> None:
        super().__init__()
        self.config = config
        c = config

        def style_generator(channels: int) -> StyleGenerator:
            return StyleGenerator(c.z_dim, c.c_dim, c.w_dim, c.plane_resolution, channels, c.channel_base,
                                  c.channel_max, c.mapping_layers, c.mapping_lr_multiplier, c.inject_start_res)

        self.texture_backbone = style_generator(c.plane_channels)
        self.backbone = style_generator(3 * c.plane_channels)
        self.face_backbone = style_generator(c.plane_channels)
        self.superresolution = SuperResolution(c.plane_channels, c.w_dim, c.neural_rendering_resolution,
                                               c.sr_channels, c.sr_conv_clamp)
        self.decoder = TriPlaneDecoder(c.plane_channels, c.decoder_hidden, c.decoder_lr_multiplier)
        self.renderer = VolumeRenderer(c.depth_resolution, c.depth_resolution_importance, c.box_warp,
                                       c.ray_start_offset, c.ray_end_offset)

    @property
    def num_ws(self) -> int:
        return self.backbone.synthesis.num_ws

    # ------------------------------------------------------------------ latents
    def mapping(
        self, z: torch.Tensor, c: torch.Tensor, truncation_psi: float = 1.0, truncation_cutoff: int | None = None
    ) -> torch.Tensor:
        """z (B, z_dim) + camera label (B, >= 25; the first 25 condition the mapping) -> ws (B, num_ws, w_dim)."""
        return self.backbone.mapping(z, c[:, : self.config.c_dim], truncation_psi, truncation_cutoff)

    # ------------------------------------------------------------------ stages
    def avatar_features(
        self, ws: torch.Tensor, noise_mode: str = "const", generator: torch.Generator | None = None,
        trace: dict | None = None,
    ) -> AvatarFeatures:
        """Run the texture and static networks (once per avatar); ``trace`` receives both raw level lists."""
        texture = self.texture_backbone.synthesis(ws, noise_mode, generator, return_list=True)
        static = self.backbone.synthesis(ws, noise_mode, generator, return_list=True)
        if trace is not None:
            trace["texture_list"], trace["static_list"] = list(texture), list(static)
        b, ch, p = ws.shape[0], self.config.plane_channels, self.config.plane_resolution
        planes = static[-1].reshape(b, 3, ch, p, p)
        # The image levels hold three planes stacked on channels; only plane 0 (XY) is rasterised into.
        first = static[0].reshape(b, 3, ch, *static[0].shape[-2:])[:, 0]
        static_levels = [first] + static[1:-1] + [planes[:, 0]]
        return AvatarFeatures(texture, static_levels, planes)

    def face_planes(
        self,
        features: AvatarFeatures,
        ws: torch.Tensor,
        condition: torch.Tensor,
        noise_mode: str = "const",
        generator: torch.Generator | None = None,
        trace: dict | None = None,
    ) -> torch.Tensor:
        """Tri-planes (B, 3, C, P, P) for one mesh condition: plane 0 animated inside the face window.

        ``trace`` (a dict) receives every rasterised level (all six, as the reference computes them), the masks,
        the face network's output and the planes.
        """
        c = self.config
        condition = check_condition(condition, c.plane_resolution).to(ws.device)
        full_alpha, inject_alpha = hole_masks(condition[..., 2], c.mouth_row)
        # img@start and the hidden maps up to the block before the last are all that injection uses.
        levels = len(features.texture_levels) if trace is not None else 4
        maps = injection_maps(features.texture_levels[:levels], features.static_levels[:levels], condition,
                              inject_alpha, c.face_window, c.plane_resolution)
        face = self.face_backbone.synthesis(ws, noise_mode, generator, inject=maps[:4])
        plane0 = paste_face(face, full_alpha, features.static_planes[:, 0], c.face_window)
        planes = torch.cat([plane0.unsqueeze(1), features.static_planes[:, 1:]], dim=1)
        if trace is not None:
            trace.update(cond_list=maps, full_alpha=full_alpha, hole_mask=full_alpha - condition[..., 2],
                         face_plane=face, planes=planes)
        return planes

    def render(
        self,
        planes: torch.Tensor,
        ws: torch.Tensor,
        camera: torch.Tensor,
        deterministic: bool = True,
        generator: torch.Generator | None = None,
        jitter: bool = True,
        trace: dict | None = None,
    ) -> Synthesis:
        """Volume render the planes from ``camera`` (B, 25; or (B, 50) whose last 25 are used) and super-resolve.

        ``deterministic`` / ``jitter`` select the ray-sampling mode (see :class:`VolumeRenderer`); the default is the
        reference's inference mode, ``jitter=False`` the fully deterministic one. ``trace`` receives the rays,
        importance depths and total weights.
        """
        if camera.ndim != 2 or camera.shape[1] not in (25, 50):
            raise InvertAvatarError("bad_input", f"Camera label must be (B, 25) or (B, 50), got {tuple(camera.shape)}.",
                                    "Use invertavatar.neural.prior.cameras.camera_label().")
        res = self.config.neural_rendering_resolution
        origins, dirs = camera_rays(camera[:, -25:].to(ws.dtype), res)
        if trace is not None:
            trace.update(ray_origins=origins, ray_directions=dirs)
        feats, depth = self.renderer(planes, self.decoder, origins, dirs, deterministic, generator, jitter, trace)
        b = ws.shape[0]
        features = feats.permute(0, 2, 1).reshape(b, -1, res, res)
        depth = depth.permute(0, 2, 1).reshape(b, 1, res, res)
        rgb = features[:, :3]
        image = self.superresolution(rgb, features, ws, noise_mode="none")
        return Synthesis(image=image, image_raw=rgb, features=features, depth=depth, planes=planes)

    def synthesize(
        self,
        ws: torch.Tensor,
        camera: torch.Tensor,
        condition: torch.Tensor,
        noise_mode: str = "const",
        generator: torch.Generator | None = None,
        features: AvatarFeatures | None = None,
        jitter: bool = True,
        trace: dict | None = None,
    ) -> Synthesis:
        """ws + camera label + mesh condition -> image, raw render, features, depth (pass ``features`` to reuse).

        ``jitter=False`` is the fully deterministic ray sampling; ``trace`` collects the intermediate tensors.
        """
        if features is None:
            features = self.avatar_features(ws, noise_mode, generator, trace=trace)
        planes = self.face_planes(features, ws, condition, noise_mode, generator, trace=trace)
        return self.render(planes, ws, camera, deterministic=True, generator=generator, jitter=jitter, trace=trace)

    def forward(self, ws: torch.Tensor, camera: torch.Tensor, condition: torch.Tensor, **kwargs) -> Synthesis:
        return self.synthesize(ws, camera, condition, **kwargs)
