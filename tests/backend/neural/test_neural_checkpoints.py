"""Our safetensors checkpoints and the safe reader of official pickles (mimicked per reference §6)."""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from invertavatar.errors import InvertAvatarError
from invertavatar.neural.checkpoints import convert_official, load_prior, read_prior_header, save_prior
from invertavatar.neural.config import official_config, tiny_config
from invertavatar.neural.official_pickle import load_official_pickle, read_official_pickle
from invertavatar.neural.prior.generator import Next3DGenerator

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny() -> Next3DGenerator:
    torch.manual_seed(5)
    gen = Next3DGenerator(tiny_config())
    with torch.no_grad():  # make every tensor distinctive (biases and noise strengths start at constants)
        for p in gen.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    return gen


def assert_same_state(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    for name in a:
        assert a[name].dtype == b[name].dtype and torch.equal(a[name], b[name]), name


def test_official_state_dict_round_trips_bit_identically(tmp_path):
    torch.manual_seed(0)
    gen = Next3DGenerator(official_config())
    path = save_prior(tmp_path / "official.safetensors", gen)
    config, meta = read_prior_header(path)
    assert config == official_config() and meta["format_version"] == "1"
    loaded = load_prior(path)
    assert_same_state(gen.state_dict(), loaded.state_dict())


def test_tiny_round_trip_and_damaged_files(tmp_path, tiny):
    path = save_prior(tmp_path / "tiny.safetensors", tiny)
    assert_same_state(tiny.state_dict(), load_prior(path).state_dict())
    assert not list(tmp_path.glob("*.tmp"))
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(InvertAvatarError) as err:
        load_prior(truncated)
    assert err.value.code == "bad_checkpoint"
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(InvertAvatarError):
        load_prior(tmp_path / "junk.safetensors")
    with pytest.raises(InvertAvatarError) as err:
        load_prior(tmp_path / "absent.safetensors")
    assert err.value.code == "missing_file"


def test_safe_reader_recovers_every_tensor_and_never_runs_the_source(tmp_path, tiny, fake_modules, mimic):
    marker = tmp_path / "executed.txt"
    pkl = tmp_path / "ani3dgan_mimic.pkl"
    mimic.write_mimic_snapshot(pkl, tiny, marker)
    # Control: the standard unpickler really executes the embedded source of this file.
    with pytest.raises(RuntimeError, match="embedded module source executed"):
        with open(pkl, "rb") as f:
            pickle.load(f)
    assert marker.exists()
    marker.unlink()

    network = read_official_pickle(pkl)
    assert not marker.exists()
    assert network.class_name == "TriPlaneGenerator" and network.source_chars > 0
    assert_same_state(tiny.state_dict(), {k: v.clone() for k, v in network.state_dict.items()})
    assert network.init_kwargs["rendering_kwargs"]["avg_camera_radius"] == 2.7
    assert network.init_kwargs["rendering_kwargs"]["avg_camera_pivot"] == [0.0, 0.0, 0.2]  # numpy array
    assert network.attributes["neural_rendering_resolution"] == 128
    # the renderer's non-contiguous plane_axes (strides 9, 1, 3) is rebuilt with its strides honoured
    axes = load_official_pickle(pkl)["G_ema"].state["_modules"]["renderer"].state["plane_axes"]
    assert axes.stride() == (9, 1, 3)
    assert torch.equal(axes, torch.tensor([[[1., 0, 0], [0, 1, 0], [0, 0, 1]], [[1., 0, 0], [0, 0, 1], [0, 1, 0]],
                                           [[0., 0, 1], [0, 1, 0], [1, 0, 0]]]).transpose(1, 2))
    assert not marker.exists()


def test_convert_official_writes_our_format(tmp_path, tiny, fake_modules, mimic):
    pkl = tmp_path / "snap.pkl"
    mimic.write_mimic_snapshot(pkl, tiny, tmp_path / "executed.txt")
    out, report = convert_official(pkl, tmp_path / "prior.safetensors", config=tiny_config())
    assert report["tensors"] == len(tiny.state_dict())
    assert_same_state(tiny.state_dict(), load_prior(out).state_dict())
    # the tiny snapshot does not fit the official layout: a clear report of what is wrong
    with pytest.raises(InvertAvatarError) as err:
        convert_official(pkl, tmp_path / "official.safetensors")
    assert err.value.code == "bad_checkpoint" and "wrong shape" in err.value.message
    with pytest.raises(InvertAvatarError) as err:
        read_official_pickle(pkl, key="G_missing")
    assert "G_ema" in err.value.message
    assert not (tmp_path / "executed.txt").exists()


class _Evil:
    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


@pytest.mark.parametrize("func", [os.system, eval, getattr, __import__, np.ndarray])
def test_other_globals_are_refused(tmp_path, func):
    marker = tmp_path / "pwned.txt"
    args = {os.system: (f"touch {marker}",), eval: (f"open({str(marker)!r}, 'w')",),
            getattr: (marker, "unlink"), __import__: ("os",), np.ndarray: ((10,), "f4")}[func]
    pkl = tmp_path / "evil.pkl"
    pkl.write_bytes(pickle.dumps({"G_ema": _Evil(func, args)}))
    with pytest.raises(InvertAvatarError) as err:
        load_official_pickle(pkl)
    assert err.value.code in ("unsafe_checkpoint", "bad_checkpoint")
    assert "not allowed" in err.value.message or func is np.ndarray  # ndarray resolves only to an inert name
    assert not marker.exists()


def test_storage_stream_cannot_smuggle_globals(tmp_path):
    inner = io.BytesIO()
    pickle.dump(0x1950A86A20F9469CFC6C, inner, protocol=2)
    pickle.dump(1001, inner, protocol=2)
    pickle.dump({}, inner, protocol=2)
    pickle.dump(_Evil(os.system, ("true",)), inner, protocol=2)

    class Payload:
        def __reduce__(self):
            return (torch.storage._load_from_bytes, (inner.getvalue(),))

    pkl = tmp_path / "storage.pkl"
    pkl.write_bytes(pickle.dumps({"G_ema": Payload()}))
    with pytest.raises(InvertAvatarError) as err:
        load_official_pickle(pkl)
    assert err.value.code == "unsafe_checkpoint"


def test_not_a_pickle_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"this is not a pickle")
    with pytest.raises(InvertAvatarError) as err:
        load_official_pickle(bad)
    assert err.value.code == "bad_checkpoint"


def test_cli_convert_checkpoint(tmp_path, tiny, fake_modules, mimic, capsys):
    import argparse

    from invertavatar.cli import neural_cmd

    pkl = tmp_path / "snap.pkl"
    mimic.write_mimic_snapshot(pkl, tiny, tmp_path / "executed.txt")
    parser = argparse.ArgumentParser()
    neural_cmd.add_parser(parser.add_subparsers(dest="command"))
    out = tmp_path / "out.safetensors"
    args = parser.parse_args(["convert-checkpoint", str(pkl), str(out), "--config", "tiny"])
    assert args.func(args) == 0
    assert "wrote" in capsys.readouterr().out
    assert_same_state(tiny.state_dict(), load_prior(out).state_dict())
    bad = parser.parse_args(["convert-checkpoint", str(tmp_path / "none.pkl"), str(out)])
    with pytest.raises(InvertAvatarError) as err:
        bad.func(bad)
    assert err.value.code == "missing_file"
