"""Sizes of the Next3D++ prior, as one plain dataclass with two named configurations.

``official`` reproduces the released generator exactly (names, shapes, buffers; 88,301,010 parameters).
``tiny`` runs the same code with small widths and resolutions so tests and CPU experiments stay fast.
Everything that depends on the plane resolution (face window, mouth row) is stored at the official 256
scale and rescaled by :meth:`PriorConfig.scaled`, so both configurations share one code path.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from invertavatar.errors import InvertAvatarError

# The face window of the XY plane and the mouth row, in pixels of the official 256 x 256 plane.
OFFICIAL_PLANE_RES = 256
FACE_WINDOW_256 = (57, 185, 64, 192)  # rows [57, 185), cols [64, 192)
MOUTH_ROW_256 = 87


@dataclasses.dataclass(frozen=True)
class PriorConfig:
    """All sizes of the generator. Field names follow the reference document where one exists."""

    name: str = "official"
    z_dim: int = 512
    w_dim: int = 512
    c_dim: int = 25
    mapping_layers: int = 2
    mapping_lr_multiplier: float = 0.01
    plane_resolution: int = 256  # resolution of all three StyleGAN2 synthesis networks
    plane_channels: int = 32  # channels per tri-plane and of the UV neural texture
    channel_base: int = 32768
    channel_max: int = 512
    inject_start_res: int = 32  # first block whose output is rasterised / injected (list output)
    neural_rendering_resolution: int = 128
    sr_channels: tuple[int, int] = (256, 128)
    sr_conv_clamp: float | None = 256.0
    decoder_hidden: int = 64
    decoder_lr_multiplier: float = 1.0
    depth_resolution: int = 48
    depth_resolution_importance: int = 48
    ray_start_offset: float = 0.45  # near bound = mean camera distance - this
    ray_end_offset: float = 0.6  # far bound = mean camera distance + this
    box_warp: float = 1.0

    # ------------------------------------------------------------------ derived sizes
    @property
    def num_ws(self) -> int:
        """Number of w vectors consumed by one synthesis network (14 for a 256 network)."""
        blocks = self.plane_resolution.bit_length() - 2  # 4, 8, ..., res
        return 2 * blocks

    @property
    def output_resolution(self) -> int:
        """Side of the final super-resolved image (4x the neural rendering resolution)."""
        return self.neural_rendering_resolution * 4

    def channels_at(self, res: int) -> int:
        """Feature width of the synthesis block at resolution ``res`` (StyleGAN2 rule)."""
        return min(self.channel_base // res, self.channel_max)

    def scaled(self, value: float) -> int:
        """A pixel coordinate of the official 256 plane rescaled to this configuration's plane."""
        return int(round(value * self.plane_resolution / OFFICIAL_PLANE_RES))

    @property
    def face_window(self) -> tuple[int, int, int, int]:
        """(row0, row1, col0, col1) of the animated face window in the XY plane."""
        return tuple(self.scaled(v) for v in FACE_WINDOW_256)  # type: ignore[return-value]

    @property
    def mouth_row(self) -> int:
        """Holes above this plane row are not treated as mouth (no injection there)."""
        return self.scaled(MOUTH_ROW_256)

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (tuples become lists)."""
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PriorConfig":
        """Inverse of :meth:`to_dict`; unknown keys are an error so typos are not silently ignored."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise InvertAvatarError(
                "bad_checkpoint",
                f"Unknown neural prior configuration keys: {', '.join(unknown)}.",
                "The checkpoint was written by a newer or different version; re-convert it with this version.",
            )
        values = {}
        for key, value in data.items():
            values[key] = tuple(value) if isinstance(value, list) else value
        return cls(**values)


def official_config() -> PriorConfig:
    """The configuration of the released ``ani3dgan512.pkl`` generator."""
    return PriorConfig()


def tiny_config() -> PriorConfig:
    """Same architecture, small sizes: 64 x 64 planes, 16 x 16 neural render, 64 x 64 output."""
    return PriorConfig(
        name="tiny",
        z_dim=64,
        w_dim=64,
        plane_resolution=64,
        plane_channels=8,
        channel_base=1024,
        channel_max=32,
        inject_start_res=8,
        neural_rendering_resolution=16,
        sr_channels=(16, 8),
        decoder_hidden=16,
        depth_resolution=12,
        depth_resolution_importance=12,
    )


def get_config(name: str) -> PriorConfig:
    """Look a configuration up by name (``official`` or ``tiny``)."""
    table = {"official": official_config, "tiny": tiny_config}
    if name not in table:
        raise InvertAvatarError(
            "bad_option", f"Unknown neural prior configuration '{name}'.", "Use 'official' or 'tiny'."
        )
    return table[name]()


def config_from_official_kwargs(kwargs: dict, name: str | None = None) -> PriorConfig:
    """Our configuration for an official ``TriPlaneGenerator`` constructor-kwargs dict (from a pickle or fixture).

    Only the sizes we model may differ from the released generator (StyleGAN widths, mapping depth, sample counts,
    box warp); anything else that changes the computation is refused rather than silently ignored.
    """
    rendering = kwargs.get("rendering_kwargs") or {}
    base, cmax = int(kwargs.get("channel_base", 32768)), int(kwargs.get("channel_max", 512))
    checks = {"z_dim": 512, "w_dim": 512, "c_dim": 25, "img_resolution": 512, "img_channels": 3}
    wrong = [k for k, v in checks.items() if k in kwargs and int(kwargs[k]) != v]
    if rendering.get("clamp_mode", "softplus") != "softplus" or rendering.get("disparity_space_sampling", False):
        wrong.append("rendering_kwargs")
    if wrong:
        raise InvertAvatarError("bad_checkpoint", f"Unsupported official generator settings: {', '.join(wrong)}.",
                                "Only the released InvertAvatar generator layout (and narrower widths) is supported.")
    released = base == 32768 and cmax == 512
    return PriorConfig(
        name=name or ("official" if released else f"official-{base}-{cmax}"),
        mapping_layers=int((kwargs.get("mapping_kwargs") or {}).get("num_layers", 2)),
        channel_base=base,
        channel_max=cmax,
        depth_resolution=int(rendering.get("depth_resolution", 48)),
        depth_resolution_importance=int(rendering.get("depth_resolution_importance", 48)),
        box_warp=float(rendering.get("box_warp", 1.0)),
    )
