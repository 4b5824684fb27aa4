"""Parity with the official InvertAvatar code: every stored tensor of the fixtures within its tolerance.

The fixtures live outside the repository (``../shared/reference/parity``, or ``INVERTAVATAR_PARITY_DIR``); the
tests skip when they are absent. A, C and D1 run in the default suite (tens of seconds each on CPU); B (prior at
official size) and D2 (few-shot top level, ~5 min) are slow tests.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from invertavatar.neural.parity.fixture import Fixture
from invertavatar.neural.parity.runner import ParityRun

torch.set_num_threads(2)

_REPO = Path(__file__).resolve().parents[3]
PARITY_DIR = Path(os.environ.get("INVERTAVATAR_PARITY_DIR", _REPO.parent / "shared" / "reference" / "parity"))
needs_fixtures = pytest.mark.skipif(not (PARITY_DIR / "A.json").is_file(), reason=f"no parity fixtures in {PARITY_DIR}")


@pytest.fixture(scope="module")
def runner() -> ParityRun:
    run = ParityRun(PARITY_DIR)
    yield run
    run.close()


def assert_all_pass(rows, fixture: str) -> None:
    fx = Fixture(PARITY_DIR, fixture)
    covered = {r.tensor for r in rows}
    assert covered == set(fx.outputs()), f"not compared: {sorted(set(fx.outputs()) - covered)}"
    failed = [f"{r.tensor} [{r.form}] err {r.max_abs_error:.3e} tol {r.tolerance}" for r in rows if not r.ok]
    assert not failed, "\n".join(failed)


@needs_fixtures
def test_fixture_a_prior_reduced_width_via_cli(tmp_path, capsys):
    from invertavatar.cli.main import main
    from invertavatar.neural.parity.fixture import Row

    out_json, out_md = tmp_path / "a.json", tmp_path / "a.md"
    code = main(["verify-official", str(PARITY_DIR), "--fixture", "A", "--json", str(out_json),
                 "--markdown", str(out_md)])
    printed = capsys.readouterr().out
    report = json.loads(out_json.read_text())
    assert_all_pass([Row(**r) for r in report["rows"]], "A")
    assert code == 0 and "A: PASS" in printed and "`image`" in out_md.read_text()


def test_cli_exit_status_reports_failures(tmp_path, monkeypatch, capsys):
    from invertavatar.cli.main import main
    from invertavatar.neural.parity import runner as runner_module
    from invertavatar.neural.parity.fixture import Row

    def fake_run(self, name):
        self.timings[name] = 0.0
        return [Row(name, "image", "full", 1e-2, "5e-04", False, 20.0)]

    monkeypatch.setattr(runner_module.ParityRun, "run", fake_run)
    assert main(["verify-official", str(tmp_path), "--fixture", "C"]) == 1
    assert "FAIL" in capsys.readouterr().out
    assert main(["verify-official", str(tmp_path / "absent"), "--fixture", "C"]) == 1  # clear error, no traceback


@needs_fixtures
def test_fixture_c_wplus_encoder_both_batchnorm_modes(runner):
    rows = runner.run("C")
    assert_all_pass(rows, "C")
    # The two BatchNorm variants are distinguishable: the eval result does not pass as the train-BN reference.
    fx = Fixture(PARITY_DIR, "C")
    assert not fx.compare("codes_trainbn", fx.tensor("codes_eval"))[0].ok


@needs_fixtures
def test_fixture_d1_unets_two_calls_official_and_alleval(runner):
    assert_all_pass(runner.run("D1"), "D1")


@needs_fixtures
def test_comparator_catches_small_errors():
    fx = Fixture(PARITY_DIR, "A")
    image = fx.tensor("image")
    assert fx.compare("image", image)[0].ok
    assert not fx.compare("image", image + 1e-3)[0].ok  # 2x the render tolerance
    assert not fx.compare("image", image[..., :-1])[0].ok  # wrong shape
    summary = torch.zeros(fx.records["face_plane"]["shape"])
    assert not any(r.ok for r in fx.compare("face_plane", summary))


@pytest.mark.slow
@needs_fixtures
def test_fixture_b_prior_official_size(runner):
    assert_all_pass(runner.run("B"), "B")


@pytest.mark.slow
@needs_fixtures
def test_fixture_d2_fewshot_top_level(runner):
    assert_all_pass(runner.run("D2"), "D2")


# ---------------------------------------------------------------------------------------------------------------
# Official pickles mimicked from the recipe weights (hostile embedded source), converted, then run.

def _quiet(_message: str) -> None:
    return None


def _gan_mimic_prior(tmp_path, mimic, fixture: Fixture):
    from invertavatar.neural.checkpoints import convert_official, load_prior
    from invertavatar.neural.parity.prior_runner import build_prior

    recipe = build_prior(fixture, _quiet)
    marker = tmp_path / "executed.txt"
    pkl = tmp_path / "ani3dgan512.pkl"
    mimic.write_mimic_snapshot(pkl, recipe, marker)
    out, report = convert_official(pkl, tmp_path / "prior.safetensors", config=recipe.config)
    assert report["tensors"] == len(recipe.state_dict()) == fixture.meta.get("num_state_dict_entries", 444)
    assert report["parameters"]["generator"] == fixture.meta["num_parameters"]
    loaded = load_prior(out)
    assert not marker.exists(), "the embedded source ran"
    for name, tensor in recipe.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name
    return loaded


@needs_fixtures
def test_gan_mimic_converts_and_reproduces_fixture_a_mapping_and_syntheses(tmp_path, fake_modules, mimic):
    fx = Fixture(PARITY_DIR, "A")
    generator = _gan_mimic_prior(tmp_path, mimic, fx)
    with torch.no_grad():
        ws = generator.mapping(fx.tensor("in.z"), fx.tensor("in.c"))
        trace: dict = {}
        generator.avatar_features(ws, "const", trace=trace)
    rows = fx.compare("ws", ws)
    for group in ("texture_list", "static_list"):
        for i, t in enumerate(trace[group]):
            rows += fx.compare(f"{group}.{i}", t)
    assert all(r.ok for r in rows), [r for r in rows if not r.ok]


@pytest.mark.slow
@needs_fixtures
def test_gan_mimic_reproduces_all_of_fixture_a(tmp_path, fake_modules, mimic):
    from invertavatar.neural.parity.prior_runner import run_prior_fixture

    fx = Fixture(PARITY_DIR, "A")
    assert_all_pass(run_prior_fixture(fx, _quiet, generator=_gan_mimic_prior(tmp_path, mimic, fx)), "A")


def test_fewshot_mimic_loads_without_running_code(tmp_path, fake_modules, mimic):
    """Tiny wrapper pickled like FSInvertAvatar.pkl: every tensor back, official BN mode, recorded W+ stage."""
    from invertavatar.errors import InvertAvatarError
    from invertavatar.neural.inversion.checkpoints import convert_official_fewshot
    from invertavatar.neural.inversion.config import configs
    from invertavatar.neural.inversion.model import InversionNet
    from invertavatar.neural.inversion.official import _recorded_stage
    from invertavatar.neural.official_pickle import read_official_pickle
    from invertavatar.neural.prior.generator import Next3DGenerator

    prior, enc = configs("tiny")
    torch.manual_seed(3)
    net = InversionNet(Next3DGenerator(prior), enc)
    with torch.no_grad():
        for t in net.state_dict().values():
            if t.is_floating_point():
                t.add_(torch.randn_like(t) * 0.01)
        net.latent_avg.copy_(net.generator.backbone.mapping.w_avg[None])
    net.encoder.stage = 12  # a snapshot taken during progressive training
    marker = tmp_path / "executed.txt"
    pkl = tmp_path / "FSInvertAvatar.pkl"
    mimic.write_mimic_fewshot(pkl, net, marker)
    network = read_official_pickle(pkl, key="G")
    assert network.class_name == "encoder_inversion.models.uvnet.inversionNet"
    assert set(network.state_dict) == set(net.state_dict())
    for name, tensor in net.state_dict().items():
        assert torch.equal(tensor, network.state_dict[name]), name
    assert network.child_init_kwargs("generator")["channel_base"] == prior.channel_base
    assert _recorded_stage(network.states["encoder"]) == 12
    # Only the released layout converts; the tiny one is refused by name/shape, clearly.
    with pytest.raises(InvertAvatarError) as err:
        convert_official_fewshot(pkl, tmp_path / "p.safetensors", tmp_path / "e.safetensors", network=network)
    assert err.value.code == "bad_checkpoint"
    assert not marker.exists(), "the embedded source ran"


def test_one_shot_snapshot_is_refused_clearly(tmp_path, fake_modules, mimic, capsys):
    from invertavatar.cli.main import main

    pkl = tmp_path / "updatedOSInvertAvatar.pkl"
    mimic.write_mimic_one_shot(pkl)
    assert main(["convert-checkpoint", str(pkl), str(tmp_path / "out.safetensors")]) == 1
    assert "one-shot" in capsys.readouterr().err
    assert not (tmp_path / "out.safetensors").exists()


def test_info_lists_official_files(tmp_path, monkeypatch, capsys):
    from invertavatar.cli.main import main

    monkeypatch.setenv("INVERTAVATAR_CHECKPOINTS", str(tmp_path))
    (tmp_path / "FSInvertAvatar.pkl").write_bytes(b"")
    assert main(["info", "--json"]) == 0
    listed = {item["name"]: item["present"] for item in json.loads(capsys.readouterr().out)["official_files"]}
    assert listed == {"ani3dgan512.pkl": False, "FSInvertAvatar.pkl": True, "updatedOSInvertAvatar.pkl": False}


@pytest.mark.slow
@needs_fixtures
def test_fewshot_mimic_full_size_reproduces_c_and_d1(tmp_path, fake_modules, mimic, runner, capsys):
    from invertavatar.cli.main import main
    from invertavatar.neural.checkpoints import load_prior
    from invertavatar.neural.inversion.batchnorm import batchnorm_mode
    from invertavatar.neural.inversion.checkpoints import load_encoders
    from invertavatar.neural.parity.fewshot_runner import run_c, run_d1

    fx = Fixture(PARITY_DIR, "C")
    recipe_net = runner.fewshot(fx)
    marker = tmp_path / "executed.txt"
    pkl = tmp_path / "FSInvertAvatar.pkl"
    mimic.write_mimic_fewshot(pkl, recipe_net, marker)
    prior_path, enc_path = tmp_path / "p.safetensors", tmp_path / "e.safetensors"
    assert main(["convert-checkpoint", str(pkl), str(prior_path), "--encoders-out", str(enc_path)]) == 0
    printed = capsys.readouterr().out
    for part, count in json.loads((PARITY_DIR / "CD_weights.json").read_text())["num_parameters"].items():
        assert f"{count:,}" in printed, part
    pkl.unlink()
    net = load_encoders(enc_path, load_prior(prior_path)).eval()
    assert batchnorm_mode(net) == "official" and not marker.exists()
    assert_all_pass(run_c(fx, net, _quiet), "C")
    assert_all_pass(run_d1(Fixture(PARITY_DIR, "D1"), net, _quiet), "D1")
