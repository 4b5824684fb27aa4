"""The visibility step through OpenGL (moderngl on a headless EGL context; Mesa llvmpipe on CPU-only machines).

Each valid triangle is drawn with its primitive number + 1 written to a one-channel float32 target (exact below
2^24 triangles) and a depth test does the rest. Only triangle ids come back: barycentrics and depth are recomputed
in PyTorch by the caller, so this step needs no gradients.
"""

from __future__ import annotations

import os
import threading

import numpy as np
import torch

from ..errors import InvertAvatarError

_VERTEX_SHADER = """
#version 330
in vec4 in_clip;
void main() { gl_Position = in_clip; }
"""

# gl_PrimitiveID counts the triangles of the draw call, i.e. positions in the kept-triangle list.
_FRAGMENT_SHADER = """
#version 330
out float prim;
void main() { prim = float(gl_PrimitiveID + 1); }
"""


class _GLState:
    """One lazily created EGL context, shared by the process; GL calls are serialised by a lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ctx = None
        self.program = None
        self.error: str | None = None
        self.targets: dict[tuple[int, int], object] = {}
        self.pid = os.getpid()

    def context(self):
        if self.ctx is not None and self.pid != os.getpid():
            # A forked child inherits the parent's EGL display without its driver threads: neither the old context
            # nor a new one works there (Mesa hangs), so the child uses the PyTorch rasterizer instead.
            self.ctx, self.program, self.targets = None, None, {}
            self.error = "the OpenGL context belongs to the parent process of this fork"
        if self.ctx is None and self.error is None:
            self.pid = os.getpid()
            try:
                import moderngl

                self.ctx = moderngl.create_standalone_context(backend="egl")
                self.program = self.ctx.program(vertex_shader=_VERTEX_SHADER, fragment_shader=_FRAGMENT_SHADER)
            except Exception as exc:  # any failure here (no moderngl, no libEGL, no driver) means "unavailable"
                self.error = f"{type(exc).__name__}: {exc}"
        if self.ctx is None:
            raise InvertAvatarError(
                "rasterizer_unavailable",
                f"The OpenGL rasterizer could not start ({self.error}).",
                "Install moderngl and Mesa's EGL drivers (Debian: libegl1 libegl-mesa0 libgl1-mesa-dri), "
                "or set INVERTAVATAR_RASTERIZER=torch.",
            )
        return self.ctx

    def target(self, width: int, height: int):
        """A cached framebuffer (float32 id colour + depth) of the given size."""
        key = (width, height)
        if key not in self.targets:
            limit = int(self.ctx.info["GL_MAX_TEXTURE_SIZE"])
            if width > limit or height > limit:
                raise InvertAvatarError("image_too_large", f"{width}×{height} exceeds the OpenGL limit of {limit}.",
                                        "Render at a smaller size or set INVERTAVATAR_RASTERIZER=torch.")
            colour = self.ctx.texture((width, height), 1, dtype="f4")
            depth = self.ctx.depth_renderbuffer((width, height))
            self.targets[key] = self.ctx.framebuffer(color_attachments=[colour], depth_attachment=depth)
        return self.targets[key]


_STATE = _GLState()


def is_available() -> bool:
    """True when an EGL context can be created (the first call creates it)."""
    with _STATE.lock:
        try:
            _STATE.context()
        except InvertAvatarError:
            return False
    return True


def renderer_name() -> str:
    """The OpenGL renderer string, e.g. ``llvmpipe (LLVM 15.0.6, 256 bits)``."""
    with _STATE.lock:
        return str(_STATE.context().info["GL_RENDERER"])


def clip_positions(screen: torch.Tensor, triangles: torch.Tensor, valid: torch.Tensor, height: int,
                   width: int) -> torch.Tensor:
    """Homogeneous clip coordinates (B,V,4) for screen vertices (B,V,3) (pixel x, pixel y down, depth).

    w = depth gives perspective-correct interpolation. z_ndc is affine in 1/depth (so the hardware interpolates it
    exactly) and maps the depth range of the drawn triangles, with a small margin, onto [-1, 1]: fragments are
    ordered by true depth, no drawn triangle is clipped, and the depth buffer's precision covers only the depths
    actually present. Row 0 of the image is the top (+1 in NDC).
    """
    x, y, z = screen.unbind(-1)
    ndc_x = 2.0 * x / width - 1.0
    ndc_y = 1.0 - 2.0 * y / height
    corner_z = screen[:, triangles][..., 2]  # (B,T,3)
    inf = torch.full_like(corner_z[..., 0], float("inf"))
    z_min = torch.where(valid, corner_z.amin(-1), inf).amin(-1)
    z_max = torch.where(valid, corner_z.amax(-1), -inf).amax(-1)
    drawn = torch.isfinite(z_min)
    near = torch.where(drawn, z_min * 0.999, torch.ones_like(z_min))[:, None]
    far = torch.where(drawn, z_max * 1.001 + 1e-6, torch.full_like(z_max, 2.0))[:, None]
    # z_ndc = a - b / z with z_ndc(near) = -1 and z_ndc(far) = +1; clip z = z_ndc * w = a z - b.
    b = 2.0 / (1.0 / near - 1.0 / far)
    a = b / near - 1.0
    return torch.stack([ndc_x * z, ndc_y * z, a * z - b, z], -1)


def rasterize_ids(screen: torch.Tensor, triangles: torch.Tensor, valid: torch.Tensor, height: int,
                  width: int) -> torch.Tensor:
    """Nearest triangle per pixel centre, (B,H,W) int64 with -1 where empty (same contract as raster_torch)."""
    import moderngl

    B = screen.shape[0]
    clip = clip_positions(screen.detach().float(), triangles, valid, height, width).cpu().numpy()
    tris = triangles.cpu().numpy().astype(np.int32)
    valid_np = valid.cpu().numpy()
    out = np.full((B, height, width), -1, dtype=np.int64)
    with _STATE.lock:
        ctx = _STATE.context()
        with ctx:
            fbo = _STATE.target(width, height)
            fbo.use()
            ctx.enable(moderngl.DEPTH_TEST)
            ctx.disable(moderngl.CULL_FACE | moderngl.BLEND)
            ctx.depth_func = "<"
            for b in range(B):
                kept = np.flatnonzero(valid_np[b])
                fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
                if kept.size:
                    vbo = ctx.buffer(np.ascontiguousarray(clip[b], dtype=np.float32))
                    ibo = ctx.buffer(np.ascontiguousarray(tris[kept]))
                    vao = ctx.vertex_array(_STATE.program, [(vbo, "4f", "in_clip")], index_buffer=ibo,
                                           index_element_size=4)
                    try:
                        vao.render(moderngl.TRIANGLES)
                    finally:
                        vao.release()
                        ibo.release()
                        vbo.release()
                raw = np.frombuffer(fbo.read(components=1, dtype="f4"), dtype=np.float32)
                prim = raw.reshape(height, width)[::-1].astype(np.int64)  # GL rows run bottom-up
                hit = prim > 0
                out[b][hit] = kept[prim[hit] - 1]
    return torch.from_numpy(out).to(screen.device)
