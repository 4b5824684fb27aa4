"""Equalised-learning-rate gains and resampling of the StyleGAN2 layers, against hand computations in numpy."""

from __future__ import annotations

import math

import numpy as np
import torch

from invertavatar.neural.ops.filters import make_filter, upsample2d
from invertavatar.neural.ops.layers import FullyConnectedLayer, MappingNetwork, SynthesisLayer, ToRGBLayer

torch.manual_seed(0)


def lrelu(x: np.ndarray) -> np.ndarray:
    return np.where(x >= 0, x, 0.2 * x) * math.sqrt(2)


def correlate(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Valid 2-D cross-correlation: x (I, H, W), w (O, I, k, k) -> (O, H-k+1, W-k+1)."""
    o, _, k, _ = w.shape
    out = np.zeros((o, x.shape[1] - k + 1, x.shape[2] - k + 1))
    for r in range(out.shape[1]):
        for c in range(out.shape[2]):
            out[:, r, c] = np.tensordot(w, x[:, r : r + k, c : c + k], axes=([1, 2, 3], [0, 1, 2]))
    return out


def test_fully_connected_gain_matches_hand_computation():
    layer = FullyConnectedLayer(5, 3, activation="lrelu", lr_multiplier=0.01, bias_init=0.5)
    with torch.no_grad():
        layer.bias.copy_(torch.tensor([0.5, -20.0, 3.0]))
    x = torch.randn(2, 5)
    w, b = layer.weight.detach().double().numpy(), layer.bias.detach().double().numpy()
    expected = lrelu(x.double().numpy() @ (w * 0.01 / math.sqrt(5)).T + b * 0.01)
    np.testing.assert_allclose(layer(x).detach().numpy(), expected, rtol=1e-5, atol=1e-6)
    # stored weights are initialised 1/lr_multiplier larger, so the effective weight starts at N(0, 1/in)
    assert 50 < layer.weight.detach().std().item() < 200


def test_mapping_gains_embed_and_fc_layers():
    mapping = MappingNetwork(z_dim=8, c_dim=25, w_dim=8, num_ws=4, num_layers=2, lr_multiplier=0.01)
    assert math.isclose(mapping.embed.weight_gain, 1 / math.sqrt(25)) and mapping.embed.bias_gain == 1.0
    assert math.isclose(mapping.fc0.weight_gain, 0.01 / math.sqrt(16)) and mapping.fc0.bias_gain == 0.01
    z, c = torch.randn(3, 8), torch.randn(3, 25)
    zn, cn = z.double().numpy(), c.double().numpy()
    e = cn @ (mapping.embed.weight.detach().double().numpy() / 5).T + mapping.embed.bias.detach().double().numpy()
    x = np.concatenate([zn / np.sqrt((zn**2).mean(1, keepdims=True) + 1e-8),
                        e / np.sqrt((e**2).mean(1, keepdims=True) + 1e-8)], axis=1)
    for fc in (mapping.fc0, mapping.fc1):
        w = fc.weight.detach().double().numpy() * 0.01 / math.sqrt(fc.in_features)
        x = lrelu(x @ w.T + fc.bias.detach().double().numpy() * 0.01)
    ws = mapping(z, c)
    assert ws.shape == (3, 4, 8)
    np.testing.assert_allclose(ws[:, 2].detach().numpy(), x, rtol=1e-4, atol=1e-5)


def _modulated_weight(layer, w: torch.Tensor, demodulate: bool, style_gain: float = 1.0) -> np.ndarray:
    a = layer.affine
    styles = w.double().numpy() @ (a.weight.detach().double().numpy() / math.sqrt(a.in_features)).T
    styles = (styles + a.bias.detach().double().numpy()) * style_gain
    ww = layer.weight.detach().double().numpy() * styles[0][None, :, None, None]
    if demodulate:
        ww = ww / np.sqrt((ww**2).sum(axis=(1, 2, 3), keepdims=True) + 1e-8)
    return ww


def test_modulated_conv_gain_demodulation_noise_and_bias():
    layer = SynthesisLayer(2, 3, w_dim=6, resolution=5)
    with torch.no_grad():
        layer.noise_strength.fill_(0.3)
        layer.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
    x, w = torch.randn(1, 2, 5, 5), torch.randn(1, 6)
    ww = _modulated_weight(layer, w, demodulate=True)
    expected = correlate(np.pad(x[0].double().numpy(), ((0, 0), (1, 1), (1, 1))), ww)
    expected += layer.noise_const.double().numpy()[None] * 0.3 + np.array([0.1, -0.2, 0.3])[:, None, None]
    out = layer(x, w, noise_mode="const")
    np.testing.assert_allclose(out[0].detach().numpy(), lrelu(expected), rtol=1e-4, atol=1e-5)


def test_torgb_style_gain_without_demodulation():
    layer = ToRGBLayer(4, 3, w_dim=6)
    x, w = torch.randn(1, 4, 3, 3), torch.randn(1, 6)
    ww = _modulated_weight(layer, w, demodulate=False, style_gain=1 / math.sqrt(4 * 1 * 1))
    expected = np.einsum("oi,ihw->ohw", ww[:, :, 0, 0], x[0].double().numpy())
    expected += layer.bias.detach().double().numpy()[:, None, None]
    np.testing.assert_allclose(layer(x, w)[0].detach().numpy(), expected, rtol=1e-4, atol=1e-5)


def _fir(x: np.ndarray, pad: tuple[int, int], gain: float) -> np.ndarray:
    f = make_filter().double().numpy() * gain
    xp = np.pad(x, ((0, 0), (pad[0], pad[1]), (pad[0], pad[1])))
    return np.stack([correlate(c[None], f[None, None])[0] for c in xp])


def test_upsample2d_is_zero_insertion_plus_filter():
    x = torch.randn(1, 2, 4, 4)
    up = np.zeros((2, 8, 8))
    up[:, ::2, ::2] = x[0].double().numpy()
    expected = _fir(up, (2, 1), 4.0)
    np.testing.assert_allclose(upsample2d(x, make_filter())[0].numpy(), expected, rtol=1e-5, atol=1e-6)


def test_upsampling_conv_matches_transposed_conv_then_filter():
    # Reference arithmetic: the up layer runs with flip_weight=False, i.e. a stride-2 transposed conv with the
    # stored kernel == *convolve* (correlate with the flipped kernel) the zero-inserted input padded by k-1,
    # then the [1,3,3,1] filter with padding 1 and gain 4 -> exactly 2H samples. Parity fixture A pins this.
    layer = SynthesisLayer(2, 3, w_dim=6, resolution=8, up=True)
    x, w = torch.randn(1, 2, 4, 4), torch.randn(1, 6)
    ww = _modulated_weight(layer, w, demodulate=True)
    zeros = np.zeros((2, 8, 8))
    zeros[:, ::2, ::2] = x[0].double().numpy()
    y = correlate(np.pad(zeros[:, :7, :7], ((0, 0), (2, 2), (2, 2))), ww[..., ::-1, ::-1])  # (3, 9, 9)
    expected = _fir(y, (1, 1), 4.0) + layer.bias.detach().double().numpy()[:, None, None]
    out = layer(x, w, noise_mode="none")
    assert out.shape == (1, 3, 8, 8)
    np.testing.assert_allclose(out[0].detach().numpy(), lrelu(expected), rtol=1e-4, atol=1e-5)


def test_batched_modulated_convs_match_per_sample():
    # The batch is folded into groups of one convolution; each sample must see only its own styles.
    for up in (False, True):
        layer = SynthesisLayer(3, 4, w_dim=6, resolution=8 if up else 4, up=up)
        x, w = torch.randn(2, 3, 4, 4), torch.randn(2, 6)
        both = layer(x, w, noise_mode="none")
        single = torch.cat([layer(x[i : i + 1], w[i : i + 1], noise_mode="none") for i in range(2)])
        torch.testing.assert_close(both, single, rtol=1e-5, atol=1e-6)
    rgb = ToRGBLayer(3, 2, w_dim=6)
    x, w = torch.randn(2, 3, 4, 4), torch.randn(2, 6)
    torch.testing.assert_close(rgb(x, w), torch.cat([rgb(x[i : i + 1], w[i : i + 1]) for i in range(2)]))
