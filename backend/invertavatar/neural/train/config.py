"""Training configuration (a JSON file for ``invertavatar train STAGE --config FILE``)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from invertavatar.errors import InvertAvatarError

STAGES = ("prior", "coarse", "fine", "recurrent")


@dataclasses.dataclass
class TrainConfig:
    """All settings of one training run. Paths are relative to the current directory."""

    stage: str = "coarse"
    size: str = "tiny"  # 'tiny' or 'official'
    out_dir: str = "runs/tiny"
    steps: int = 200
    batch: int = 4
    lr: float = 1e-3
    seed: int = 0
    prior_checkpoint: str | None = None  # input prior (the prior stage writes out_dir/prior.safetensors)
    encoder_checkpoint: str | None = None  # input encoders (fine/recurrent start from the coarse stage's)
    use_gru: bool = True
    # Synthetic data: identities x frames renders (see invertavatar.neural.synthetic_data).
    identities: int = 16
    frames: int = 8
    data_seed: int = 1
    pose_range: float = 0.5
    # Loss weights (reference §4); lpips/identity/adversarial need unavailable networks and must stay 0.
    losses: dict = dataclasses.field(default_factory=lambda: {"l1": 1.0, "raw_l1": 1.0, "w_delta": 0.001})
    # Long sequences: clip lengths drawn at random; chunked truncated back-propagation.
    clip_lengths: tuple[int, ...] = (4, 6, 8)
    chunk: int = 4
    checkpoint_every: int = 50
    log_every: int = 10
    resume: bool = True

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise InvertAvatarError("bad_option", f"Unknown training stage '{self.stage}'.", f"Use one of {STAGES}.")
        self.clip_lengths = tuple(self.clip_lengths)
        if self.chunk < 1 or self.batch < 1 or self.steps < 0:
            raise InvertAvatarError("bad_option", "chunk and batch must be >= 1 and steps >= 0.", "Fix the config.")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


def load_train_config(path: str | Path, stage: str | None = None) -> TrainConfig:
    """Read a JSON config; ``stage`` (from the command line) overrides the file's."""
    path = Path(path)
    if not path.is_file():
        raise InvertAvatarError("missing_file", f"Training config not found: {path}.",
                                "Write a JSON file with the fields of TrainConfig (see docs/neural-inversion.md).")
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise InvertAvatarError("bad_config", f"{path} is not valid JSON ({exc}).", "Fix the file.") from exc
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InvertAvatarError("bad_config", f"Unknown training config keys: {', '.join(unknown)}.",
                                f"Known keys: {', '.join(sorted(known))}.")
    if stage is not None:
        data["stage"] = stage
    return TrainConfig(**data)
