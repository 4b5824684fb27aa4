"""Inversion networks: official names/shapes/counts (reference §3, §7) and the ConvGRU update on a hand case."""

from __future__ import annotations

import numpy as np
import torch

from invertavatar.neural.inversion.config import configs
from invertavatar.neural.inversion.unet import ConvGRU, TextureUNet, TriPlaneUNet
from invertavatar.neural.inversion.wplus import WPlusEncoder


def _official():
    prior, enc = configs("official")
    with torch.device("meta"):
        return (WPlusEncoder(prior, enc, prior.num_ws), TextureUNet(prior, enc), TriPlaneUNet(prior, enc))


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_official_parameter_counts_match_reference():
    e4e, tex, tri = _official()
    assert _count(e4e) == 209_450_688
    assert _count(tex) == 68_518_304
    assert _count(tri) == 82_784_960
    assert _count(tex.body) == 30_948_160
    assert _count(tex.input_layer) == 4_224 and _count(tri.input_layer) == 3_648
    assert sum(_count(getattr(tex, f"outconv{i}")) for i in range(4)) == 365_856
    assert _count(tri.final_head) == 104_064
    sft = sum(_count(m) for n, m in tri.named_children() if n.startswith("condition_"))
    assert sft == 14_529_024


def test_official_names_and_shapes():
    e4e, tex, tri = _official()
    e = {n: tuple(p.shape) for n, p in e4e.state_dict().items()}
    assert e["input_layer.0.weight"] == (64, 3, 3, 3)
    assert e["latlayer1.weight"] == (512, 256, 1, 1) and e["latlayer2.weight"] == (512, 128, 1, 1)
    assert e["styles.13.linear.weight"] == (512, 512) and "styles.0.convs.6.weight" in e
    assert "styles.0.convs.8.weight" not in e and "styles.13.convs.10.weight" in e  # 4 / 6 convs
    assert {i for i in range(24) if f"body.{i}.shortcut_layer.0.weight" in e} == {3, 7, 21}
    assert e["body.23.res_layer.5.fc1.weight"] == (32, 512, 1, 1)
    assert "body.0.res_layer.4.running_var" in e
    t = {n: tuple(p.shape) for n, p in tex.state_dict().items()}
    assert t["input_layer.0.weight"] == (64, 7, 3, 3)
    for k, c in zip(range(1, 5), (512, 384, 256, 96)):
        assert t[f"up{k}.conv_gru.ih.0.weight"] == (2 * c, 2 * c, 3, 3)
        assert t[f"up{k}.conv_gru.hh.0.weight"] == (c, 2 * c, 3, 3)
        assert f"up{k}.conv.double_conv.5.weight" in t
    assert t["outconv0.weight"] == (32, 384, 1, 1) and t["outconv3.weight"] == (256, 96, 1, 1)
    r = {n: tuple(p.shape) for n, p in tri.state_dict().items()}
    assert r["input_layer.0.weight"] == (64, 6, 3, 3)
    assert r["final_head.0.weight"] == (96, 24, 3, 3) and r["final_head.2.weight"] == (96, 96, 3, 3)
    for res, c, s in ((16, 512, 256), (32, 384, 256), (64, 256, 256), (128, 96, 128), (256, 96, 64)):
        for kind in ("scale", "shift"):
            assert r[f"condition_{kind}{res}.0.weight"] == (c, c, 3, 3)
            assert r[f"condition_{kind}{res}.2.weight"] == (s, c, 3, 3)


def test_wrapper_names(tiny_net):
    names = set(tiny_net.state_dict())
    assert {"latent_avg", "black_uv_bg"} <= names
    prefixes = {n.split(".")[0] for n in names}
    assert {"generator", "encoder", "unet_encoder"} <= prefixes
    assert any(n.startswith("unet_encoder.texture_unet.") for n in names)
    assert any(n.startswith("unet_encoder.triplane_unet.") for n in names)


def test_convgru_update_by_hand():
    """C = 1, 3x3 kernels with only the centre tap: every pixel is an independent scalar GRU."""
    gru = ConvGRU(1)
    with torch.no_grad():
        for conv in (gru.ih[0], gru.hh[0]):
            conv.weight.zero_()
            conv.bias.zero_()
        gru.ih[0].weight[:, :, 1, 1] = torch.tensor([[0.5, -1.0], [2.0, 0.3]])  # rows: r, z; cols: x, h
        gru.ih[0].bias[:] = torch.tensor([0.1, -0.2])
        gru.hh[0].weight[0, :, 1, 1] = torch.tensor([1.5, -0.7])  # cols: x, r*h
        gru.hh[0].bias[:] = 0.05
    x = torch.tensor([[[[0.3, -1.2], [0.8, 0.0]]]])
    h = torch.tensor([[[[0.5, 0.1], [-0.4, 0.9]]]])
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    xn, hn = x.numpy(), h.numpy()
    r = sig(0.5 * xn - 1.0 * hn + 0.1)
    z = sig(2.0 * xn + 0.3 * hn - 0.2)
    cand = np.tanh(1.5 * xn - 0.7 * r * hn + 0.05)
    expected = (1 - z) * hn + z * cand
    np.testing.assert_allclose(gru(x, h).detach().numpy(), expected, rtol=1e-5, atol=1e-6)
    # Zero initial state when none is given.
    np.testing.assert_allclose(gru(x, None).detach().numpy(), gru(x, torch.zeros_like(x)).detach().numpy())
