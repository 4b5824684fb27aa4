"""Pictures for docs/addon.md and docs/user-guide.md: the two renderers, the neural bake, and reenactment.

    INVERTAVATAR_CHECKPOINTS=DIR PYTHONPATH=backend python backend/benchmarks/make_neural_figures.py

``DIR`` holds a prior and ``encoders.safetensors`` (e.g. trained with ``invertavatar train`` on the synthetic
data, as described in docs/neural-inversion.md). Everything comes from public-domain samples (skimage's astronaut)
and the project's own commands: ``invertavatar reconstruct --sample astronaut --mode neural``, the render API's
renderers, and ``invertavatar animate --side-by-side`` driven by a clip the project renders itself.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[2]
FIGURES = REPO / "docs" / "figures"


def _label(image: np.ndarray, text: str) -> np.ndarray:
    picture = Image.fromarray(image)
    draw = ImageDraw.Draw(picture)
    draw.rectangle((0, 0, 8 + 6 * len(text), 14), fill=(0, 0, 0))
    draw.text((4, 2), text, fill=(255, 255, 255))
    return np.asarray(picture)


def _grid(rows: list[list[np.ndarray]]) -> np.ndarray:
    return np.concatenate([np.concatenate(row, axis=1) for row in rows], axis=0)


def main() -> int:
    from invertavatar.cli.main import main as cli
    from invertavatar.io.bundle import read_bundle
    from invertavatar.render.framing import portrait_camera
    from invertavatar.renderers import render

    FIGURES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="neural-figures-") as tmp:
        tmp = Path(tmp)
        avatar = tmp / "astronaut.avatar"
        assert cli(["reconstruct", "--sample", "astronaut", "--mode", "neural", "-o", str(avatar)]) == 0
        bundle = read_bundle(avatar)
        vertices = bundle.mesh["vertices"]

        # 1. The same request through both renderers: three yaws and an open jaw (what the engine shows).
        size = 192
        rows = []
        for name in ("albedo", "neural"):
            row = []
            for yaw, arkit, text in ((0, None, "front"), (30, None, "yaw 30"), (-30, None, "yaw -30"),
                                     (0, {"jawOpen": 0.8}, "jawOpen 0.8")):
                image = render(bundle, name, arkit, camera=portrait_camera(vertices, size, size, yaw)).image
                row.append(_label(image, f"{name}, {text}"))
            rows.append(row)
        Image.fromarray(_grid(rows)).save(FIGURES / "neural_renderers.png")

        # 2. Photo texture vs neural bake on the same mesh (albedo renderer), where photos see little.
        baked = read_bundle(avatar)
        baked.albedo = bundle.neural_baked
        rows = []
        for source, name in ((bundle, "photo texture"), (baked, "neural bake")):
            rows.append([_label(render(source, "albedo", camera=portrait_camera(vertices, size, size, yaw)).image,
                                f"{name}, yaw {yaw}") for yaw in (0, 70, 120, 180)])
        Image.fromarray(_grid(rows)).save(FIGURES / "neural_bake_vs_photo.png")
        atlas = np.concatenate([bundle.albedo[::8, ::8], bundle.neural_baked[::8, ::8]], axis=1)
        Image.fromarray(atlas).save(FIGURES / "neural_bake_atlas.png")

        # 3. Reenactment: a clip rendered by the project (a synthetic head turning and opening its mouth) drives it.
        # Columns: driving frame | albedo avatar (from --side-by-side) | neural avatar.
        clip = _driving_clip(tmp / "drive.mp4", bundle.albedo)
        assert cli(["animate", str(avatar), "--drive", str(clip), "-o", str(tmp / "albedo.mp4"), "--size", "160",
                    "--side-by-side", "--renderer", "albedo"]) == 0
        assert cli(["animate", str(avatar), "--drive", str(clip), "-o", str(tmp / "neural.mp4"), "--size", "160",
                    "--renderer", "neural"]) == 0
        pairs, neural = _decode(tmp / "albedo.mp4"), _decode(tmp / "neural.mp4")
        assert len(pairs) == len(neural) == 24
        picks = np.linspace(0, len(pairs) - 1, 4).round().astype(int)
        rows = [np.concatenate([pairs[i], neural[i]], axis=1) for i in picks]
        Image.fromarray(np.concatenate(rows, axis=0)).save(FIGURES / "neural_animate.png")
    print(f"wrote the figures to {FIGURES}")
    return 0


def _driving_clip(path: Path, albedo: np.ndarray) -> Path:
    import av

    from invertavatar.headmodel import load_head_model
    from invertavatar.pipeline.synthetic import render_view

    model = load_head_model("ict")
    identity = np.random.default_rng(11).normal(0, 0.8, model.n_identity).astype(np.float32)
    jaw = model.expression_names.index("jawOpen")
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=12)
        stream.width = stream.height = 256
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = 3_000_000
        for i in range(24):
            expression = np.zeros(model.n_expression, np.float32)
            expression[jaw] = 0.45 * (1 - np.cos(2 * np.pi * i / 12))
            image = render_view(model, identity, expression, (0.35 * np.sin(2 * np.pi * i / 24), 0, 0), albedo,
                                size=256).image
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _decode(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


if __name__ == "__main__":
    sys.exit(main())
