"""The Next3D++ generator: official parameter layout, tiny forward/backward, determinism, expression locality."""

from __future__ import annotations

import pytest
import torch

from invertavatar.errors import InvertAvatarError
from invertavatar.neural.config import PriorConfig, get_config, official_config, tiny_config
from invertavatar.neural.ops.layers import count_parameters
from invertavatar.neural.prior.cameras import camera_label, orbit_camera
from invertavatar.neural.prior.generator import Next3DGenerator

torch.set_num_threads(1)


def expected_official_shapes() -> dict[str, tuple[int, ...]]:
    """Names and shapes written out from the reference's §1.3/§7 rules, independently of our module code."""
    shapes: dict[str, tuple[int, ...]] = {}
    widths = {4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256, 256: 128}

    def layer(prefix: str, cin: int, cout: int, res: int) -> None:
        shapes.update({f"{prefix}.weight": (cout, cin, 3, 3), f"{prefix}.bias": (cout,),
                       f"{prefix}.noise_strength": (), f"{prefix}.affine.weight": (cin, 512),
                       f"{prefix}.affine.bias": (cin,), f"{prefix}.resample_filter": (4, 4),
                       f"{prefix}.noise_const": (res, res)})

    def torgb(prefix: str, cin: int, cout: int) -> None:
        shapes.update({f"{prefix}.weight": (cout, cin, 1, 1), f"{prefix}.bias": (cout,),
                       f"{prefix}.affine.weight": (cin, 512), f"{prefix}.affine.bias": (cin,)})

    for name, rgb in (("texture_backbone", 32), ("backbone", 96), ("face_backbone", 32)):
        m = f"{name}.mapping"
        shapes.update({f"{m}.embed.weight": (512, 25), f"{m}.embed.bias": (512,), f"{m}.fc0.weight": (512, 1024),
                       f"{m}.fc0.bias": (512,), f"{m}.fc1.weight": (512, 512), f"{m}.fc1.bias": (512,),
                       f"{m}.w_avg": (512,)})
        for res, width in widths.items():
            b = f"{name}.synthesis.b{res}"
            shapes[f"{b}.resample_filter"] = (4, 4)
            if res == 4:
                shapes[f"{b}.const"] = (512, 4, 4)
            else:
                layer(f"{b}.conv0", widths[res // 2], width, res)
            layer(f"{b}.conv1", width, width, res)
            torgb(f"{b}.torgb", width, rgb)
    for block, cin, cout, res in (("block0", 32, 256, 256), ("block1", 256, 128, 512)):
        b = f"superresolution.{block}"
        shapes[f"{b}.resample_filter"] = (4, 4)
        layer(f"{b}.conv0", cin, cout, res)
        layer(f"{b}.conv1", cout, cout, res)
        torgb(f"{b}.torgb", cout, 3)
    shapes.update({"decoder.net.0.weight": (64, 32), "decoder.net.0.bias": (64,),
                   "decoder.net.2.weight": (33, 64), "decoder.net.2.bias": (33,)})
    return shapes


@pytest.fixture(scope="module")
def official() -> Next3DGenerator:
    return Next3DGenerator(official_config())


def test_official_names_shapes_and_counts(official):
    state = {n: tuple(t.shape) for n, t in official.state_dict().items()}
    expected = expected_official_shapes()
    assert sorted(set(state) - set(expected)) == [] and sorted(set(expected) - set(state)) == []
    assert state == expected
    assert len(state) == 444
    assert count_parameters(official) == 88_301_010
    parts = {"texture_backbone": 28_819_437, "face_backbone": 28_819_437, "backbone": 29_008_301,
             "superresolution": 1_649_578, "decoder": 4_257}
    assert {k: count_parameters(getattr(official, k)) for k in parts} == parts
    buffers = {n for n, _ in official.named_buffers()}
    assert all(n.endswith(("resample_filter", "noise_const", "w_avg")) for n in buffers)
    assert official.num_ws == 14


def test_config_round_trip_and_errors():
    for name in ("official", "tiny"):
        cfg = get_config(name)
        assert PriorConfig.from_dict(cfg.to_dict()) == cfg
    assert official_config().face_window == (57, 185, 64, 192) and tiny_config().face_window == (14, 46, 16, 48)
    with pytest.raises(InvertAvatarError):
        get_config("huge")
    with pytest.raises(InvertAvatarError):
        PriorConfig.from_dict({"z_dim": 4, "typo": 1})


def synthetic_condition(res: int, mouth_open: float) -> torch.Tensor:
    """A face-like condition: ellipse of UVs with a mouth hole whose height is ``mouth_open``."""
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, res), torch.linspace(-1, 1, res), indexing="ij")
    face = (xx / 0.7) ** 2 + (yy / 0.9) ** 2 < 1
    mouth = ((xx / 0.3) ** 2 + ((yy - 0.45) / max(mouth_open, 1e-3)) ** 2 < 1) & (mouth_open > 0)
    u = xx * 0.8
    v = yy * 0.8 + 0.2 * mouth_open * (yy > 0.2).float()  # the lower face stretches as the jaw opens
    return torch.stack([u, v, (face & ~mouth).float()], dim=-1)[None]


@pytest.fixture(scope="module")
def tiny() -> Next3DGenerator:
    torch.manual_seed(1)
    return Next3DGenerator(tiny_config())


def test_tiny_forward_backward_shapes_and_finite_gradients(tiny):
    cfg = tiny.config
    cam = camera_label(orbit_camera(yaw=0.2, pitch=-0.1))[None]
    z = torch.randn(1, cfg.z_dim)
    ws = tiny.mapping(z, cam)
    ws.retain_grad()
    out = tiny.synthesize(ws, cam, synthetic_condition(cfg.plane_resolution, 0.15))
    r = cfg.neural_rendering_resolution
    assert out.image.shape == (1, 3, 4 * r, 4 * r)
    assert out.image_raw.shape == (1, 3, r, r) and out.features.shape == (1, cfg.plane_channels, r, r)
    assert out.depth.shape == (1, 1, r, r) and out.planes.shape == (1, 3, cfg.plane_channels, 64, 64)
    near, far = 2.7 - 0.45, 2.7 + 0.6
    assert near - 1e-4 <= out.depth.min().item() and out.depth.max().item() <= far + 1e-4
    (out.image.square().mean() + out.image_raw.mean() + out.depth.mean()).backward()
    assert torch.isfinite(ws.grad).all() and ws.grad.abs().sum() > 0
    for part in ("texture_backbone.synthesis", "backbone.synthesis", "face_backbone.synthesis",
                 "superresolution", "decoder", "backbone.mapping"):
        grads = [p.grad for n, p in tiny.named_parameters() if n.startswith(part) and p.grad is not None]
        assert grads, part
        assert all(torch.isfinite(g).all() for g in grads), part
        assert sum(g.abs().sum() for g in grads) > 0, part
    tiny.zero_grad()


def test_same_seed_and_noise_give_the_same_image(tiny):
    cfg = tiny.config
    cam = camera_label(orbit_camera(yaw=-0.3))[None]
    cond = synthetic_condition(cfg.plane_resolution, 0.1)

    def run(seed: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed)
        z = torch.randn(1, cfg.z_dim, generator=gen)
        with torch.no_grad():
            ws = tiny.mapping(z, cam)
            return tiny.synthesize(ws, cam, cond, noise_mode="random", generator=gen).image

    first, again, other = run(7), run(7), run(8)
    assert torch.equal(first, again)
    assert not torch.allclose(first, other)


def test_expression_changes_only_the_face_window(tiny):
    cfg = tiny.config
    torch.manual_seed(3)
    ws = tiny.mapping(torch.randn(1, cfg.z_dim), camera_label(orbit_camera())[None])
    with torch.no_grad():
        feats = tiny.avatar_features(ws)
        closed = tiny.face_planes(feats, ws, synthetic_condition(cfg.plane_resolution, 0.0))
        opened = tiny.face_planes(feats, ws, synthetic_condition(cfg.plane_resolution, 0.2))
    assert torch.equal(closed[:, 1:], opened[:, 1:])  # XZ and ZX planes are static
    assert torch.equal(closed[:, 1:], feats.static_planes[:, 1:])
    r0, r1, c0, c1 = cfg.face_window
    inside = torch.zeros(cfg.plane_resolution, cfg.plane_resolution, dtype=torch.bool)
    inside[r0:r1, c0:c1] = True
    diff = (closed[0, 0] - opened[0, 0]).abs().amax(dim=0)
    assert diff[~inside].max() == 0
    assert diff[inside].max() > 1e-3
    # outside the window plane 0 is the static plane, untouched
    assert torch.equal(closed[0, 0][:, ~inside], feats.static_planes[0, 0][:, ~inside])


def test_bad_condition_and_camera_are_clear_errors(tiny):
    ws = torch.zeros(1, tiny.num_ws, tiny.config.w_dim)
    with pytest.raises(InvertAvatarError) as err:
        tiny.synthesize(ws, camera_label(orbit_camera())[None], torch.zeros(1, 32, 32, 3))
    assert err.value.code == "bad_input"
    with pytest.raises(InvertAvatarError):
        tiny.render(torch.zeros(1, 3, 8, 64, 64), ws, torch.zeros(1, 16))


def test_sft_conditioning_and_truncation(tiny):
    cfg = tiny.config
    torch.manual_seed(4)
    cam = camera_label(orbit_camera())[None]
    ws = tiny.mapping(torch.randn(1, cfg.z_dim), cam)
    synthesis = tiny.backbone.synthesis
    with torch.no_grad():
        base = synthesis(ws)
        width = cfg.channels_at(16)
        identity = {16: (torch.ones(1, width // 2, 16, 16), torch.zeros(1, width // 2, 16, 16))}
        assert torch.equal(synthesis(ws, sft=identity), base)
        shifted = {16: (torch.ones(1, width // 2, 16, 16), torch.full((1, width // 2, 16, 16), 0.5))}
        assert not torch.allclose(synthesis(ws, sft=shifted), base)
        tiny.backbone.mapping.w_avg.fill_(0.25)
        pulled = tiny.mapping(torch.randn(1, cfg.z_dim), cam, truncation_psi=0.0)
        tiny.backbone.mapping.w_avg.zero_()
    assert torch.allclose(pulled, torch.full_like(pulled, 0.25))


def test_batch_of_two_planes_match_single_runs(tiny):
    cfg = tiny.config
    torch.manual_seed(6)
    cam = camera_label(orbit_camera())[None].repeat(2, 1)
    ws = tiny.mapping(torch.randn(2, cfg.z_dim), cam)
    cond = torch.cat([synthetic_condition(cfg.plane_resolution, 0.0), synthetic_condition(cfg.plane_resolution, 0.2)])
    with torch.no_grad():
        both = tiny.face_planes(tiny.avatar_features(ws), ws, cond)
        for i in range(2):
            one = tiny.face_planes(tiny.avatar_features(ws[i : i + 1]), ws[i : i + 1], cond[i : i + 1])
            torch.testing.assert_close(both[i : i + 1], one, rtol=1e-4, atol=1e-5)
