"""One trainer for the four stages (reference §4, adapted to CPU-scale runs on synthetic data).

* ``prior``: the generator learns to reconstruct the synthetic renders from a per-identity latent z
  (auto-decoder / GLO objective: L1 on the image and the raw render; no discriminator), w_avg tracked by EMA.
* ``coarse``: the W+ encoder, generator frozen: L1 + raw L1 of the re-render at the input camera + W+ regulariser.
* ``fine``: the two U-Nets (one frame, zero state), generator and W+ encoder frozen; supervised at the input frame
  and at another frame of the same identity (self-reenactment).
* ``recurrent``: clips of random length fed one frame per call; chunked truncated back-propagation: every chunk but
  the last advances the ConvGRU states without gradients (states detached), the last chunk runs with gradients;
  supervision on frame 0, random clip frames and one unseen frame of the identity.

Everything random is drawn from one ``torch.Generator`` whose state is checkpointed, so a resumed run continues
exactly where it stopped.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from invertavatar.device import select_device
from invertavatar.neural.checkpoints import load_prior, save_prior
from invertavatar.neural.inversion.checkpoints import load_encoders, save_encoders
from invertavatar.neural.inversion.config import configs
from invertavatar.neural.inversion.model import FrameBatch, InversionNet
from invertavatar.neural.prior.cameras import camera_label, orbit_camera
from invertavatar.neural.prior.generator import AvatarFeatures, Next3DGenerator
from invertavatar.neural.train import losses
from invertavatar.neural.train.config import TrainConfig

log = logging.getLogger(__name__)
STATE_FILE = "train_state.safetensors"


class Trainer:
    """Builds the networks for ``config.stage``, trains, checkpoints and resumes."""

    def __init__(self, config: TrainConfig, data: FrameBatch, device: torch.device | None = None) -> None:
        losses.check_unavailable_losses(config.losses)
        self.config, self.data = config, data
        self.device = device or select_device()
        self.out = Path(config.out_dir)
        prior_cfg, enc_cfg = configs(config.size)
        torch.manual_seed(config.seed)
        if config.prior_checkpoint:
            generator = load_prior(config.prior_checkpoint, self.device)
        else:
            log.warning("No prior checkpoint given: starting from a randomly initialised '%s' prior.", config.size)
            generator = Next3DGenerator(prior_cfg)
        if config.encoder_checkpoint:
            self.net = load_encoders(config.encoder_checkpoint, generator, self.device)
        else:
            self.net = InversionNet(generator, enc_cfg, use_gru=config.use_gru).to(self.device)
        if config.stage == "fine" or (config.stage == "recurrent" and not config.encoder_checkpoint):
            # The fine stage is the first to train the U-Nets: start them as an exact no-op on the coarse result.
            self.net.start_from_coarse()
        self.data = data.to(self.device)
        self.codes = nn.Parameter(torch.randn(data.image.shape[0], prior_cfg.z_dim, device=self.device))
        self.trained = self._trained_modules()
        for p in self.net.parameters():
            p.requires_grad_(False)
        params = [p for m in self.trained for p in m.parameters()]
        for p in params:
            p.requires_grad_(True)
        if config.stage == "prior":
            params.append(self.codes)
        self.params = params
        self.optimizer = torch.optim.Adam(params, lr=config.lr, betas=(0.5, 0.999) if config.stage != "prior"
                                          else (0.0, 0.99))
        self.rng = torch.Generator().manual_seed(config.seed)
        self.step_index = 0
        self.history: list[float] = []
        if config.resume and (self.out / STATE_FILE).is_file():
            self.load_state()

    def _trained_modules(self) -> list[nn.Module]:
        stage = self.config.stage
        if stage == "prior":
            return [self.net.generator]
        if stage == "coarse":
            return [self.net.encoder]
        return [self.net.unet_encoder]

    # ------------------------------------------------------------------ sampling helpers
    def _randint(self, high: int, size: int) -> torch.Tensor:
        return torch.randint(0, high, (size,), generator=self.rng)

    def _frames(self, ids: torch.Tensor, frame_ids: torch.Tensor) -> FrameBatch:
        """One frame per batch entry: (B, 1, ...)."""
        d = self.data
        pick = lambda t: t[ids.to(t.device), frame_ids.to(t.device)][:, None]  # noqa: E731
        return FrameBatch(pick(d.image), pick(d.camera), pick(d.condition), pick(d.uv_grid), pick(d.uv_visible))

    def _jitter(self) -> torch.Generator:
        return torch.Generator(device=self.device).manual_seed(self.config.seed * 1_000_003 + self.step_index + 1)

    def _image_loss(self, out, target: torch.Tensor) -> torch.Tensor:
        w = self.config.losses
        return w.get("l1", 1.0) * losses.image_l1(out.image, target) + w.get("raw_l1", 0.0) * losses.raw_l1(
            out.image_raw, target)

    # ------------------------------------------------------------------ stage steps
    def _prior_loss(self) -> torch.Tensor:
        n_id, n_fr = self.data.image.shape[:2]
        ids, fr = self._randint(n_id, self.config.batch), self._randint(n_fr, self.config.batch)
        frames = self._frames(ids, fr)
        g = self.net.generator
        frontal = camera_label(orbit_camera(0.0))[None].to(self.device).expand(len(ids), -1)
        ws = g.mapping(self.codes[ids.to(self.device)], frontal)
        with torch.no_grad():  # StyleGAN's w_avg tracking, used as the encoders' latent_avg
            w_avg = g.backbone.mapping.w_avg
            w_avg.copy_(ws[:, 0].mean(0).lerp(w_avg, 0.995) if self.step_index > 0 else ws[:, 0].mean(0))
        out = g.synthesize(ws, frames.camera[:, 0], frames.condition[:, 0], generator=self._jitter())
        return self._image_loss(out, frames.image[:, 0])

    def _coarse_loss(self) -> torch.Tensor:
        n_id, n_fr = self.data.image.shape[:2]
        frames = self._frames(self._randint(n_id, self.config.batch), self._randint(n_fr, self.config.batch))
        ws = self.net.coarse_ws(frames.image[:, 0])
        out = self.net.render(self.net.coarse_features(ws), ws, frames.camera[:, 0], frames.condition[:, 0],
                              self._jitter())
        return self._image_loss(out, frames.image[:, 0]) + self.config.losses.get("w_delta", 0.0) * losses.w_delta(ws)

    def _coarse(self, image: torch.Tensor) -> tuple[torch.Tensor, AvatarFeatures]:
        with torch.no_grad():
            ws = self.net.coarse_ws(image)
            return ws, self.net.coarse_features(ws)

    def _render_targets(self, avatar: AvatarFeatures, ws: torch.Tensor, targets: list[FrameBatch]) -> torch.Tensor:
        total = 0.0
        for target in targets:
            out = self.net.render(avatar, ws, target.camera[:, 0], target.condition[:, 0], self._jitter())
            total = total + self._image_loss(out, target.image[:, 0])
        return total / len(targets)

    def _fine_loss(self) -> torch.Tensor:
        n_id, n_fr = self.data.image.shape[:2]
        ids = self._randint(n_id, self.config.batch)
        source, other = self._randint(n_fr, len(ids)), self._randint(n_fr, len(ids))
        frames = self._frames(ids, source)
        ws, coarse = self._coarse(frames.image[:, 0])
        states = self.net.fine_step(frames, ws, coarse, None)
        avatar = self.net.avatar(ws, coarse, states)
        return self._render_targets(avatar, ws, [frames, self._frames(ids, other)])

    def _recurrent_loss(self) -> torch.Tensor:
        n_id, n_fr = self.data.image.shape[:2]
        lengths = [n for n in self.config.clip_lengths if n < n_fr] or [n_fr - 1]
        length = lengths[int(self._randint(len(lengths), 1))]
        ids = self._randint(n_id, self.config.batch)
        order = torch.stack([torch.randperm(n_fr, generator=self.rng) for _ in range(len(ids))])  # (B, n_fr)
        clip = [self._frames(ids, order[:, t]) for t in range(length)]
        ws, coarse = self._coarse(clip[0].image[:, 0])
        chunk = self.config.chunk
        start_last = max(0, (length - 1) // chunk * chunk)
        hidden = None
        with torch.no_grad():  # truncated BPTT: earlier chunks only advance the states
            for t in range(start_last):
                hidden = self.net.fine_step(clip[t], ws, coarse, hidden)
        hidden = None if hidden is None else [h.detach() for h in hidden]
        for t in range(start_last, length):
            hidden = self.net.fine_step(clip[t], ws, coarse, hidden)
        avatar = self.net.avatar(ws, coarse, hidden)
        extra = self._randint(length, max(chunk - 1, 0)).tolist()
        targets = [clip[0]] + [clip[t] for t in extra] + [self._frames(ids, order[:, length])]
        return self._render_targets(avatar, ws, targets)

    # ------------------------------------------------------------------ loop
    def step(self) -> float:
        """One optimisation step; returns the loss."""
        self._modes()
        loss_fn = {"prior": self._prior_loss, "coarse": self._coarse_loss, "fine": self._fine_loss,
                   "recurrent": self._recurrent_loss}[self.config.stage]
        self.optimizer.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        self.optimizer.step()
        self.step_index += 1
        value = float(loss.detach())
        self.history.append(value)
        return value

    def eval_loss(self, seed: int = 12345) -> float:
        """The stage loss on a fixed draw of data and ray jitter, without gradients or state changes."""
        saved_rng, saved_step = self.rng.get_state(), self.step_index
        saved_buffers = {n: b.clone() for n, b in self.net.named_buffers()}
        self.rng = torch.Generator().manual_seed(seed)
        self.step_index = -1
        self._modes()  # same BatchNorm behaviour as in training; buffers are restored below
        loss_fn = {"prior": self._prior_loss, "coarse": self._coarse_loss, "fine": self._fine_loss,
                   "recurrent": self._recurrent_loss}[self.config.stage]
        try:
            with torch.no_grad():
                return float(loss_fn())
        finally:
            self.rng.set_state(saved_rng)
            self.step_index = saved_step
            for n, b in self.net.named_buffers():
                b.copy_(saved_buffers[n])

    def _modes(self) -> None:
        # Only the trained part is in train mode; frozen encoders use their running BatchNorm statistics.
        self.net.eval()
        for module in self.trained:
            module.train()

    def run(self, steps: int | None = None, progress: Callable[[int, float], None] | None = None) -> list[float]:
        """Train up to ``steps`` more steps (default: until ``config.steps``), checkpointing along the way."""
        target = self.step_index + steps if steps is not None else self.config.steps
        started = time.time()
        while self.step_index < target:
            value = self.step()
            if progress:
                progress(self.step_index, value)
            if self.step_index % self.config.log_every == 0:
                log.info("%s step %d loss %.4f (%.1f s)", self.config.stage, self.step_index, value,
                         time.time() - started)
            if self.config.checkpoint_every and self.step_index % self.config.checkpoint_every == 0:
                self.save()
        self.save()
        return self.history

    # ------------------------------------------------------------------ checkpoints
    def save(self) -> None:
        """Write the resumable state and the stage's product (prior or encoders) into ``out_dir``."""
        self.out.mkdir(parents=True, exist_ok=True)
        tensors = {f"net.{n}": t.detach().cpu().contiguous().clone() for n, t in self.net.state_dict().items()}
        tensors["codes"] = self.codes.detach().cpu().clone()
        tensors["rng"] = self.rng.get_state()
        tensors["history"] = torch.tensor(self.history, dtype=torch.float64)
        state = self.optimizer.state_dict()
        for index, entry in state["state"].items():
            for key, value in entry.items():
                tensors[f"optim.{index}.{key}"] = torch.as_tensor(value).detach().cpu().clone()
        metadata = {"step": str(self.step_index), "config": self.config.to_json(),
                    "param_groups": json.dumps(state["param_groups"])}
        tmp = self.out / (STATE_FILE + ".tmp")
        save_file(tensors, str(tmp), metadata=metadata)
        tmp.replace(self.out / STATE_FILE)
        if self.config.stage == "prior":
            save_prior(self.out / "prior.safetensors", self.net.generator)
        else:
            save_encoders(self.out / "encoders.safetensors", self.net)

    def load_state(self) -> None:
        from safetensors import safe_open

        path = self.out / STATE_FILE
        with safe_open(str(path), "pt") as f:
            metadata = f.metadata()
        tensors = load_file(str(path))
        self.net.load_state_dict({n[4:]: t for n, t in tensors.items() if n.startswith("net.")})
        with torch.no_grad():
            self.codes.copy_(tensors["codes"])
        self.rng.set_state(tensors["rng"])
        self.history = tensors["history"].tolist()
        self.step_index = int(metadata["step"])
        optim_state: dict = {}
        for name, value in tensors.items():
            if name.startswith("optim."):
                _, index, key = name.split(".", 2)
                optim_state.setdefault(int(index), {})[key] = value.to(self.device) if key != "step" else value
        self.optimizer.load_state_dict({"state": optim_state, "param_groups": json.loads(metadata["param_groups"])})
        log.info("resumed %s at step %d from %s", self.config.stage, self.step_index, path)
