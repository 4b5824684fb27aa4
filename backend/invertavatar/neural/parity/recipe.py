"""The parity fixtures' weight recipe: rebuild a full official-named state dict from small metadata.

Each ``<w>_weights.json`` entry says how one tensor of the official module's ``state_dict()`` is made
(README §2): ``recipe`` = seeded standard normal * std + mean (float32, multiply rounded before the add),
``exact`` = stored in ``<w>_weights.safetensors``, ``const`` = one value, ``alias`` = the values of another
entry reshaped. The result is a plain ``{official name: tensor}`` dict, i.e. exactly what the safe reader of an
official pickle returns, so it goes through the same loading path as a real checkpoint.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file

from invertavatar.errors import InvertAvatarError

_DTYPES = {"float32": np.float32, "float64": np.float64, "float16": np.float16, "int64": np.int64,
           "int32": np.int32, "uint8": np.uint8, "bool": np.bool_}


def recipe_seed(name: str, base_seed: int) -> int:
    """Per-tensor seed: crc32 of the UTF-8 name XOR the base seed."""
    return zlib.crc32(name.encode("utf-8")) ^ int(base_seed)


def recipe_tensor(name: str, entry: dict, base_seed: int) -> np.ndarray:
    """Value of one ``recipe`` entry (numpy float32 semantics, no fused multiply-add)."""
    shape = tuple(entry["shape"])
    seed = recipe_seed(name, base_seed)
    if "seed" in entry and int(entry["seed"]) != seed:
        raise InvertAvatarError("bad_fixture", f"Recipe seed of {name} disagrees with its metadata.",
                                "The weights JSON is damaged or from another recipe version.")
    z = np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)
    std = np.float32(entry.get("std_used", entry["init_std"]))
    mean = np.float32(entry.get("mean_used", entry["init_mean"]))
    value = (z * std).astype(np.float32) + mean
    return np.abs(value) if entry.get("abs") else value.astype(np.float32)


def materialize(weights_json: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Build every tensor described by a fixture weights file; returns (state dict, the JSON metadata)."""
    weights_json = Path(weights_json)
    if not weights_json.is_file():
        raise InvertAvatarError("missing_file", f"Fixture weights not found: {weights_json}.",
                                "Pass the parity fixture directory (it holds *_weights.json/.safetensors).")
    meta = json.loads(weights_json.read_text())
    stored = load_file(str(weights_json.with_suffix(".safetensors")))
    base_seed = int(meta["base_seed"])
    out: dict[str, np.ndarray] = {}
    aliases = []
    for name, entry in meta["entries"].items():
        kind = entry["kind"]
        if kind == "recipe":
            out[name] = recipe_tensor(name, entry, base_seed)
        elif kind == "exact":
            if name not in stored:
                raise InvertAvatarError("bad_fixture", f"{name} is missing from {weights_json.stem}.safetensors.",
                                        "The fixture files do not belong together.")
            out[name] = stored[name]
        elif kind == "const":
            out[name] = np.full(tuple(entry["shape"]), entry["value"], dtype=_DTYPES[entry["dtype"]])
        elif kind == "alias":
            aliases.append((name, entry))
        else:
            raise InvertAvatarError("bad_fixture", f"Unknown recipe kind '{kind}' for {name}.",
                                    "Update InvertAvatar to read this fixture version.")
    for name, entry in aliases:
        out[name] = out[entry["alias_of"]].reshape(tuple(entry["shape"]))
    tensors = {}
    for name, value in out.items():
        expected = tuple(meta["entries"][name]["shape"])
        if tuple(value.shape) != expected:
            raise InvertAvatarError("bad_fixture", f"{name} has shape {value.shape}, metadata says {expected}.",
                                    "The fixture files do not belong together.")
        tensors[name] = torch.from_numpy(np.array(value, copy=True, order="C"))  # keeps 0-d shapes
    return tensors, meta
