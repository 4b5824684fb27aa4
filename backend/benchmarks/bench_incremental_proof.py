"""Proof at CPU scale that inversion quality grows with the number of frames (tiny model, synthetic data).

Trains the ``tiny`` prior (reconstruction / auto-decoder objective, no discriminator), then the W+ encoder, the
fine U-Nets (one frame) and the recurrent stage (clips, chunked truncated back-propagation), each stage under a
wall-clock budget, all on synthetic ICT renders. Then, on held-out synthetic identities, it streams 1, 2, 4, 8 and
16 frames into an ``InversionSession`` and measures self-reenactment PSNR/SSIM on unseen frames of the same person
(new pose and expression). Ablations on the same networks: ``no_gru`` = the ConvGRU state is reset before every
frame (the avatar comes from the latest frame alone, i.e. one-shot) and ``coarse`` = the W+ code only.

Writes docs/benchmarks/incremental_proof.json and .png. A benchmark, not a test: the figures depend on the budget.

    OMP_NUM_THREADS=1 PYTHONPATH=backend python backend/benchmarks/bench_incremental_proof.py [--minutes 20]
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from pathlib import Path

import numpy as np
import torch
from skimage.metrics import structural_similarity

from invertavatar.headmodel import load_head_model
from invertavatar.neural.config import tiny_config
from invertavatar.neural.inversion.session import InversionSession
from invertavatar.neural.synthetic_data import SyntheticRenderer, build_dataset, cat_frames, random_identity
from invertavatar.neural.train.config import TrainConfig
from invertavatar.neural.train.trainer import Trainer

REPO = Path(__file__).resolve().parents[2]
OUT_DIR = REPO / "docs" / "benchmarks"
COUNTS = (1, 2, 4, 8, 16)
# Share of the training budget per stage, learning rate, batch.
STAGES = (("prior", 0.2, 2.5e-3, 4), ("coarse", 0.2, 1e-3, 4), ("fine", 0.25, 1e-3, 4), ("recurrent", 0.35, 5e-4, 2))


def train(minutes: float, work: Path, data, log: logging.Logger) -> dict:
    report = {}
    prior = encoders = None
    for stage, share, lr, batch in STAGES:
        cfg = TrainConfig(stage=stage, size="tiny", out_dir=str(work / stage), steps=100_000, batch=batch, lr=lr,
                          prior_checkpoint=prior, encoder_checkpoint=encoders, resume=False, checkpoint_every=0,
                          clip_lengths=(4, 6, 8), chunk=4, log_every=25)
        trainer = Trainer(cfg, data, torch.device("cpu"))
        budget, started = share * minutes * 60, time.time()
        while time.time() - started < budget:
            trainer.run(steps=5)
        h = trainer.history
        report[stage] = {"steps": len(h), "seconds": round(time.time() - started, 1),
                         "loss_first10": float(np.mean(h[:10])), "loss_last10": float(np.mean(h[-10:]))}
        log.info("%s: %s", stage, report[stage])
        if stage == "prior":
            prior = str(work / stage / "prior.safetensors")
        else:
            encoders = str(work / stage / "encoders.safetensors")
    return report | {"prior_checkpoint": prior, "encoder_checkpoint": encoders}


def _scores(images: torch.Tensor, truth: torch.Tensor) -> tuple[float, float]:
    a = ((images.clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).numpy().astype(np.float64)
    b = ((truth + 1) / 2).permute(0, 2, 3, 1).numpy().astype(np.float64)
    psnr = [10 * np.log10(1 / np.mean((x - y) ** 2)) for x, y in zip(a, b)]
    ssim = [structural_similarity(x, y, channel_axis=2, data_range=1.0) for x, y in zip(a, b)]
    return float(np.mean(psnr)), float(np.mean(ssim))


def evaluate(net, model, people: int, targets: int, seed: int) -> dict:
    renderer = SyntheticRenderer(model, net.prior_config)
    rng = np.random.default_rng(seed)
    rows = {"gru": {n: [] for n in COUNTS}, "no_gru": {n: [] for n in COUNTS}, "coarse": {n: [] for n in COUNTS}}
    net.eval()
    for _ in range(people):
        person = random_identity(model, rng)
        inputs = renderer.clip(person, max(COUNTS), rng)
        truth = renderer.clip(person, targets, rng)
        cams, conds, gt = truth.camera[0], truth.condition[0], truth.image[0]
        stream = InversionSession(net)
        for i in range(max(COUNTS)):
            stream.add_frames(inputs.select([i]))
            n = i + 1
            if n not in COUNTS:
                continue
            rows["gru"][n].append(_scores(stream.render(cams, conds).image, gt))
            rows["coarse"][n].append(_scores(stream.render(cams, conds, use_fine=False).image, gt))
            latest = InversionSession(net)  # no recurrence: W+ from frame 0, fine stage from the latest frame only
            latest.ws, latest.hidden = stream.ws, latest.zero_state()
            latest.add_frames(inputs.select([i]))
            rows["no_gru"][n].append(_scores(latest.render(cams, conds).image, gt))
    out = {}
    for variant, table in rows.items():
        out[variant] = {str(n): {"psnr": float(np.mean([s[0] for s in v])), "ssim": float(np.mean([s[1] for s in v])),
                                 "psnr_per_person": [round(s[0], 3) for s in v]} for n, v in table.items()}
    return out


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for variant, style in (("gru", "o-"), ("no_gru", "s--"), ("coarse", "x:")):
        table = result["metrics"][variant]
        for ax, key in zip(axes, ("psnr", "ssim")):
            ax.plot(COUNTS, [table[str(n)][key] for n in COUNTS], style, label=variant)
    for ax, key in zip(axes, ("PSNR (dB)", "SSIM")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(COUNTS, [str(n) for n in COUNTS])
        ax.set_xlabel("input frames")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle("tiny model, CPU, synthetic held-out identities: self-reenactment vs frames")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20.0, help="training budget over all four stages")
    parser.add_argument("--identities", type=int, default=24)
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--test-people", type=int, default=4)
    parser.add_argument("--targets", type=int, default=4)
    parser.add_argument("--work", type=Path, default=Path("/tmp/invertavatar_proof"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    log = logging.getLogger("proof")
    torch.manual_seed(0)
    started = time.time()
    model = load_head_model("ict")
    data = build_dataset(model, tiny_config(), args.identities, args.frames, seed=1)
    data_seconds = time.time() - started
    log.info("dataset %s in %.0f s", tuple(data.image.shape), data_seconds)
    training = train(args.minutes, args.work, data, log)
    from invertavatar.neural.checkpoints import load_prior
    from invertavatar.neural.inversion.checkpoints import load_encoders

    net = load_encoders(training["encoder_checkpoint"], load_prior(training["prior_checkpoint"], "cpu"), "cpu")
    eval_started = time.time()
    metrics = evaluate(net, model, args.test_people, args.targets, seed=12345)
    result = {
        "what": "self-reenactment on held-out synthetic identities vs number of streamed input frames (tiny, CPU)",
        "counts": list(COUNTS), "metrics": metrics, "training": training,
        "data": {"train_identities": args.identities, "frames_per_identity": args.frames,
                 "test_people": args.test_people, "targets_per_person": args.targets, "resolution": 64,
                 "seconds": round(data_seconds, 1)},
        "eval_seconds": round(time.time() - eval_started, 1), "total_seconds": round(time.time() - started, 1),
        "threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
    }
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "incremental_proof.json").write_text(json.dumps(result, indent=2))
    plot(result, OUT_DIR / "incremental_proof.png")
    log.info("wrote %s", OUT_DIR / "incremental_proof.json")
    for variant in metrics:
        log.info("%s: %s", variant, {n: round(v["psnr"], 2) for n, v in metrics[variant].items()})


if __name__ == "__main__":
    main()
