"""Our checkpoint format: one ``.safetensors`` file whose header metadata carries the JSON configuration.

Reading it never unpickles anything (``safetensors`` parses a JSON header and raw little-endian tensors), so a
checkpoint from an untrusted source cannot run code. Official ``.pkl`` files are read by
:mod:`invertavatar.neural.official_pickle` and converted with :func:`convert_official`.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from invertavatar.errors import InvertAvatarError
from invertavatar.neural.config import PriorConfig, official_config
from invertavatar.neural.prior.generator import Next3DGenerator

FORMAT_NAME = "invertavatar.neural.prior"
FORMAT_VERSION = 1


def save_prior(path: str | Path, generator: Next3DGenerator, extra: dict[str, str] | None = None) -> Path:
    """Write the generator's state dict and configuration to ``path`` (atomically: temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {name: t.detach().cpu().contiguous().clone() for name, t in generator.state_dict().items()}
    metadata = {"format": FORMAT_NAME, "format_version": str(FORMAT_VERSION), "config": generator.config.to_json()}
    metadata.update(extra or {})
    return write_safetensors_atomic(path, tensors, metadata)


def write_safetensors_atomic(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> Path:
    """Write a safetensors file through a temporary sibling and a rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=metadata)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def read_prior_header(path: str | Path) -> tuple[PriorConfig, dict[str, str]]:
    """Configuration and raw metadata of a checkpoint, without reading the tensors."""
    path = Path(path)
    if not path.is_file():
        raise InvertAvatarError("missing_file", f"Neural prior checkpoint not found: {path}.",
                                "Check the path, or convert an official .pkl with 'invertavatar convert-checkpoint'.")
    try:
        with open(path, "rb") as f:
            size = int.from_bytes(f.read(8), "little")
            if size <= 0 or size > 100_000_000:
                raise ValueError("implausible header size")
            header = json.loads(f.read(size))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvertAvatarError("bad_checkpoint", f"{path} is not a safetensors checkpoint ({exc}).",
                                "Convert official .pkl files with 'invertavatar convert-checkpoint' first.") from exc
    metadata = header.get("__metadata__") or {}
    if metadata.get("format") != FORMAT_NAME:
        raise InvertAvatarError("bad_checkpoint", f"{path} is not an InvertAvatar neural prior checkpoint.",
                                "Use a file written by 'invertavatar convert-checkpoint' or by training.")
    version = int(metadata.get("format_version", "0"))
    if version > FORMAT_VERSION:
        raise InvertAvatarError("bad_checkpoint", f"{path} uses checkpoint format {version}; this version reads "
                                f"up to {FORMAT_VERSION}.", "Update InvertAvatar.")
    return PriorConfig.from_dict(json.loads(metadata["config"])), metadata


def load_prior(path: str | Path, device: torch.device | str = "cpu") -> Next3DGenerator:
    """Build the generator described by a checkpoint and load its tensors exactly (strict)."""
    config, _ = read_prior_header(path)
    try:
        tensors = load_file(str(path), device=str(device))
    except SafetensorError as exc:
        raise InvertAvatarError("bad_checkpoint", f"{path} is damaged ({exc}).", "Re-create or re-download it.") \
            from exc
    generator = Next3DGenerator(config)
    load_state_exact(generator, tensors, source=str(path))
    return generator.to(device).eval()


def describe_mismatch(expected: dict[str, torch.Tensor], tensors: dict[str, torch.Tensor]) -> str:
    """Empty when ``tensors`` has exactly the names and shapes of ``expected``; else a short list of problems."""
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = sorted(n for n in set(expected) & set(tensors) if tuple(expected[n].shape) != tuple(tensors[n].shape))

    def few(names: list[str]) -> str:
        return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")

    parts = [f"missing: {few(missing)}" if missing else "", f"unexpected: {few(unexpected)}" if unexpected else "",
             f"wrong shape: {few(wrong)}" if wrong else ""]
    return "; ".join(p for p in parts if p)


def load_state_exact(generator: Next3DGenerator, tensors: dict[str, torch.Tensor], source: str) -> None:
    """Copy ``tensors`` into the generator; any missing/unexpected name or shape mismatch is an error."""
    problem = describe_mismatch(generator.state_dict(), tensors)
    if problem:
        raise InvertAvatarError("bad_checkpoint", f"{source} does not match the prior ({problem}).",
                                "Use a checkpoint made for this configuration.")
    generator.load_state_dict(tensors, strict=True)


def convert_official(
    pkl_path: str | Path, out_path: str | Path, key: str = "G_ema", config: PriorConfig | None = None,
    network=None,
) -> tuple[Path, dict]:
    """Read an official ``.pkl`` safely, load it into the generator of ``config`` (default ``official``), write ours.

    ``network`` = an already read :class:`~invertavatar.neural.official_pickle.OfficialNetwork` (skips re-reading).
    Returns the output path and a report (tensor count, parameter count, init kwargs found in the pickle).
    """
    from invertavatar.neural.official_pickle import read_official_pickle

    network = network or read_official_pickle(pkl_path, key=key)
    generator = Next3DGenerator(config or official_config())
    load_state_exact(generator, network.state_dict, source=f"{pkl_path} [{key}]")
    extra = {"source": Path(pkl_path).name, "source_key": key,
             "source_init_kwargs": json.dumps(network.init_kwargs, default=str, sort_keys=True)}
    path = save_prior(out_path, generator, extra)
    return path, {"tensors": len(network.state_dict), "init_kwargs": network.init_kwargs,
                  "class_name": network.class_name,
                  "parameters": {"generator": sum(p.numel() for p in generator.parameters())}}


# The released files (authors' README) and what this version does with each.
OFFICIAL_FILES = {
    "ani3dgan512.pkl": "GAN prior: convert-checkpoint -> prior file",
    "FSInvertAvatar.pkl": "few-shot encoders + prior: convert-checkpoint -> prior and encoders files",
    "updatedOSInvertAvatar.pkl": "improved one-shot encoders: not supported (refused with a message)",
}


def official_files(directory: str | Path) -> list[dict]:
    """Which released official files are present in ``directory`` (name, present, path, what we do with it)."""
    directory = Path(directory)
    rows = []
    for name, note in OFFICIAL_FILES.items():
        path = directory / name
        rows.append({"name": name, "present": path.is_file(), "path": str(path), "note": note})
    return rows
