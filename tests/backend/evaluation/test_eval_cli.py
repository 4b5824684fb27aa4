"""`invertavatar eval` options and `invertavatar bench` (run on a stand-in benchmark folder, not the real ones)."""

from __future__ import annotations

import json

import pytest

from invertavatar.cli.main import build_parser, main
from invertavatar.evaluation import bench


def test_eval_parses_frame_counts_and_rejects_bad_ones(capsys):
    args = build_parser().parse_args(["eval", "clip.mp4", "--frames", "1,3,9", "--mode", "neural", "--out", "x"])
    assert args.frames == [1, 3, 9] and args.mode == "neural" and str(args.out) == "x"
    assert build_parser().parse_args(["eval", "clip.mp4"]).frames == [1, 2, 4, 8, 16]
    for bad in ("0,2", "a,b", ""):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["eval", "clip.mp4", "--frames", bad])
    assert "positive frame counts" in capsys.readouterr().err


def test_eval_of_a_missing_clip_says_what_to_do(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "missing.mp4")]) == 1
    err = capsys.readouterr().err
    assert "does not exist" in err and "hint:" in err


def test_bench_lists_every_script_with_its_small_defaults(capsys):
    assert main(["bench", "--list"]) == 0
    listed = capsys.readouterr().out
    for name in bench.discover():
        assert name in listed
    assert "eval" in bench.discover() and "--quick" in listed


@pytest.fixture
def fake_benchmarks(tmp_path, monkeypatch):
    scripts, docs = tmp_path / "backend" / "benchmarks", tmp_path / "docs" / "benchmarks"
    scripts.mkdir(parents=True)
    (scripts / "bench_good.py").write_text(
        "import json, pathlib, sys\n"
        "pathlib.Path('docs/benchmarks/good.json').write_text(json.dumps({'argv': sys.argv[1:]}))\n")
    (scripts / "bench_bad.py").write_text("raise SystemExit('no data here')\n")
    docs.mkdir(parents=True)
    monkeypatch.setattr(bench, "ROOT", tmp_path)
    monkeypatch.setattr(bench, "SCRIPTS", scripts)
    monkeypatch.setattr(bench, "DOCS", docs)
    monkeypatch.setitem(bench.BENCHMARKS, "good", ["--small"])
    return docs


def test_bench_runs_each_script_and_writes_the_table(fake_benchmarks):
    results = bench.run_benchmarks(echo=lambda message: None)
    by_name = {r["name"]: r for r in results}
    assert by_name["good"]["status"] == "ok" and by_name["good"]["outputs"] == ["good.json"]
    assert json.loads((fake_benchmarks / "good.json").read_text()) == {"argv": ["--small"]}
    assert by_name["bad"]["status"] == "failed (exit 1)" and by_name["bad"]["error_tail"] == ["no data here"]
    table = (fake_benchmarks / "README.md").read_text()
    assert "| good | ok |" in table and "| bad | failed (exit 1) |" in table and "cores" in table
    assert "no data here" in table
    # Running one benchmark again keeps the other's row.
    bench.run_benchmarks(["good"], echo=lambda message: None)
    assert "| bad |" in (fake_benchmarks / "README.md").read_text()


def test_bench_rejects_unknown_names(fake_benchmarks):
    from invertavatar.errors import InvertAvatarError

    with pytest.raises(InvertAvatarError, match="No benchmark named nope"):
        bench.run_benchmarks(["nope"])
