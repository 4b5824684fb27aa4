"""Reading a parity fixture (``X.json`` + ``X.safetensors``) and comparing our tensors with it (README §1, §9).

A stored tensor is compared in the form it was stored: in full (``f32``, ``f16``, ``raw``, ``u8code``) or as a
``summary`` (4,096 sampled values, the channel means, the full-tensor statistics). Tolerances follow README §9:
W+ codes 1e-5 absolute; float32-stored renders 5e-4 absolute; every other intermediate (including the float16
stored ones, whose rounding it covers) 2^-10 relative + 1e-4 absolute; integer data exactly. A summary gets the
tolerance of the tensor it summarises.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file

from invertavatar.errors import InvertAvatarError

WS_ABS = 1e-5
RENDER_ABS = 5e-4
INTERMEDIATE_REL = 2.0**-10
INTERMEDIATE_ABS = 1e-4
STAT_NAMES = ("min", "max", "mean", "std", "absmean")


@dataclasses.dataclass(frozen=True)
class Tolerance:
    """|ours - ref| <= abs + rel * |ref|, element-wise."""

    abs: float
    rel: float = 0.0

    def bound(self, ref: np.ndarray) -> np.ndarray:
        return self.abs + self.rel * np.abs(ref)

    def describe(self) -> str:
        return f"{self.abs:.0e}" + (f"+{self.rel:.1e}|ref|" if self.rel else "")


EXACT = Tolerance(0.0)


@dataclasses.dataclass
class Row:
    """One line of the parity table."""

    fixture: str
    tensor: str
    form: str  # full, sample, chan_mean, stats
    max_abs_error: float
    tolerance: str
    ok: bool
    worst_ratio: float  # max |err| / bound (<= 1 is a pass); 0 for exact matches

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _is_ws_like(key: str) -> bool:
    leaf = key.split(".")[-1]
    return leaf in ("ws", "latent_avg") or leaf.startswith(("codes_", "ws_"))


def _is_final_render(key: str) -> bool:
    return key.split(".")[-1] in ("feature_image", "image_depth", "image")


class Fixture:
    """One fixture's records and stored tensors."""

    def __init__(self, directory: str | Path, name: str) -> None:
        self.directory, self.name = Path(directory), name
        json_path, st_path = self.directory / f"{name}.json", self.directory / f"{name}.safetensors"
        if not json_path.is_file() or not st_path.is_file():
            raise InvertAvatarError("missing_file", f"Parity fixture {name} not found in {self.directory}.",
                                    f"The directory must hold {name}.json and {name}.safetensors.")
        self.meta = json.loads(json_path.read_text())
        self.records: dict[str, dict] = self.meta["tensors"]
        self.data = load_file(str(st_path))

    @property
    def weights_json(self) -> Path:
        return self.directory / f"{Path(str(self.meta['weights_file'])).stem}.json"

    # ------------------------------------------------------------------ inputs
    def tensor(self, key: str) -> torch.Tensor:
        """A fully stored tensor decoded to its float32 (or integer) value."""
        record = self.records[key]
        store = record["store"]
        if store == "summary":
            raise KeyError(f"{key} is only summarised")
        value = self.data[key]
        if store == "u8code":
            value = (value.astype(np.float32) - 128.0) / 128.0
        elif store == "f16":
            value = value.astype(np.float32)
        return torch.from_numpy(np.array(value, copy=True))

    def outputs(self, prefix: str = "") -> list[str]:
        """Keys of stored non-input tensors (optionally only those starting with ``prefix``)."""
        return [k for k in self.records if not k.startswith("in.") and k.startswith(prefix)]

    def tolerance(self, key: str) -> Tolerance:
        record = self.records[key]
        if record["store"] == "raw" or record.get("source_dtype", "").startswith(("uint", "int")):
            return EXACT
        if _is_ws_like(key):
            return Tolerance(WS_ABS)
        if _is_final_render(key):
            return Tolerance(RENDER_ABS)
        return Tolerance(INTERMEDIATE_ABS, INTERMEDIATE_REL)

    # ------------------------------------------------------------------ comparison
    def compare(self, key: str, ours: torch.Tensor, tolerance: Tolerance | None = None) -> list[Row]:
        """Rows comparing ``ours`` with the stored form(s) of ``key``."""
        record = self.records[key]
        tol = tolerance or self.tolerance(key)
        expected = tuple(record["shape"])
        arr = ours.detach().to("cpu", torch.float64).numpy()
        if tuple(arr.shape) != expected:
            return [Row(self.name, key, "shape", float("inf"), f"shape {expected}", False, float("inf"))]
        if record["store"] != "summary":
            ref = self.tensor(key).to(torch.float64).numpy()
            if record["store"] == "raw":
                arr = np.rint(arr) if tol is EXACT and record.get("source_dtype") == "uint8" else arr
            return [self._row(key, "full", arr, ref, tol)]
        rows = []
        idx = self.data[f"{key}.sample_idx"].astype(np.int64)
        rows.append(self._row(key, "sample", arr.reshape(-1)[idx], self.data[f"{key}.sample_val"].astype(np.float64),
                              tol))
        kept = tuple(record.get("chan_mean_dims_kept", [1]))
        reduce = tuple(d for d in range(arr.ndim) if d not in kept)
        rows.append(self._row(key, "chan_mean", arr.mean(axis=reduce), self.data[f"{key}.chan_mean"].astype(np.float64),
                              tol))
        rows.append(self._stats_row(key, arr, record["stats"], tol))
        return rows

    def _row(self, key: str, form: str, ours: np.ndarray, ref: np.ndarray, tol: Tolerance) -> Row:
        ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64).reshape(np.shape(ours))
        finite_same = np.array_equal(np.isfinite(ours), np.isfinite(ref))
        err = np.abs(np.where(np.isfinite(ref), ours - ref, 0.0))
        err = np.where(np.isfinite(ours) | ~np.isfinite(ref), err, np.inf)
        bound = tol.bound(ref)
        worst = float(np.max(err / np.maximum(bound, 1e-30))) if err.size and bound.max() > 0 else (
            0.0 if not err.size or err.max() == 0 else float("inf"))
        ok = bool(finite_same and (err <= bound).all())
        return Row(self.name, key, form, float(err.max()) if err.size else 0.0, tol.describe(), ok, worst)

    def _stats_row(self, key: str, arr: np.ndarray, stats: dict, tol: Tolerance) -> Row:
        ours = {"min": arr.min(), "max": arr.max(), "mean": arr.mean(), "std": arr.std(), "absmean": np.abs(arr).mean()}
        names = [n for n in STAT_NAMES if n in stats]
        row = self._row(key, "stats", np.array([ours[n] for n in names]), np.array([stats[n] for n in names]), tol)
        counts_ok = all(int(stats.get(c, 0)) == int(n) for c, n in
                        (("n_nan", np.isnan(arr).sum()), ("n_inf", np.isinf(arr).sum())))
        row.ok = row.ok and counts_ok
        return row
