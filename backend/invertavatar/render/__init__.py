"""The one place that rasterizes: cameras, visibility, differentiable interpolation, UV-space and textured renders.

See docs/architecture.md "Rendering" for the contract and docs/benchmarks/rasterizer.md for the backend choice.
"""

from .camera import Camera, make_intrinsics
from .interpolate import interpolate, sample_image, vertex_normals
from .rasterize import (BACKENDS, RASTERIZER_ENV, Fragments, available_backends, choose_backend, rasterize,
                        rasterize_uv, triangle_mask)
from .textured import headlight_shading, render_textured, uv_to_texture_pixels
from .transforms import axis_angle_to_matrix, matrix_to_quaternion, quaternion_to_matrix

__all__ = [
    "BACKENDS", "RASTERIZER_ENV", "Camera", "Fragments", "available_backends", "axis_angle_to_matrix",
    "choose_backend", "headlight_shading", "interpolate", "make_intrinsics", "matrix_to_quaternion",
    "quaternion_to_matrix", "rasterize", "rasterize_uv", "render_textured", "sample_image", "triangle_mask",
    "uv_to_texture_pixels", "vertex_normals",
]
