"""Texture: incremental UV-space fusion of the frames, plausible fill, and the bundle's atlas."""

from .atlas import atlas_uvs
from .bake import bake_atlas, bake_photographed
from .fusion import TextureFusion, frame_sharpness

__all__ = ["TextureFusion", "atlas_uvs", "bake_atlas", "bake_photographed", "frame_sharpness"]
