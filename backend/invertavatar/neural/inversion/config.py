"""Sizes of the inversion encoders, derived from the prior's configuration so both always fit together.

``official`` reproduces the released few-shot model (IR-SE-50 bodies, decoder widths 512/384/256/96);
``tiny`` keeps every structural rule (stage strides, tap points, PixelShuffle factors, head placement) with
small widths and one or two units per stage.
"""

from __future__ import annotations

import dataclasses

from invertavatar.errors import InvertAvatarError
from invertavatar.neural.config import PriorConfig, get_config


@dataclasses.dataclass(frozen=True)
class EncoderConfig:
    """Widths of the IR-SE bodies and of the U-Net decoders."""

    name: str = "official"
    stage_widths: tuple[int, int, int, int] = (64, 128, 256, 512)
    stage_units: tuple[int, int, int, int] = (3, 4, 14, 3)  # 24 units = IR-SE-50
    se_reduction: int = 16
    decoder_widths: tuple[int, int, int, int] = (512, 384, 256, 96)  # DoubleConv outputs = GRU hidden sizes
    final_head_width: int = 96  # tri-plane U-Net's extra full-resolution level
    coarse_heads: int = 3  # W+ heads read from the coarsest map
    middle_heads: int = 4  # then the middle map; the rest from the finest map

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def official_encoder_config() -> EncoderConfig:
    return EncoderConfig()


def tiny_encoder_config() -> EncoderConfig:
    # The last stage width equals tiny's w_dim (64), like 512 in the official model.
    return EncoderConfig(name="tiny", stage_widths=(16, 32, 48, 64), stage_units=(1, 1, 2, 2), se_reduction=4,
                         decoder_widths=(32, 24, 16, 8), final_head_width=8)


def get_encoder_config(name: str) -> EncoderConfig:
    table = {"official": official_encoder_config, "tiny": tiny_encoder_config}
    if name not in table:
        raise InvertAvatarError("bad_option", f"Unknown inversion configuration '{name}'.", "Use 'official' or 'tiny'.")
    return table[name]()


def configs(name: str) -> tuple[PriorConfig, EncoderConfig]:
    """The matching (prior, encoder) pair of a named size."""
    return get_config(name), get_encoder_config(name)


def encoder_config_from_dict(data: dict) -> EncoderConfig:
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return EncoderConfig(**values)
