"""Safe reader for the official InvertAvatar / EG3D ``.pkl`` snapshots (reference §6).

The official files are plain pickles. Their network classes are stored as a call to
``torch_utils.persistence._reconstruct_persistent_obj(meta)`` whose ``meta`` holds the *full source text* of the
defining module, which the original loader executes. This reader never does: a restricted unpickler resolves only
an allow-list of globals to our own inert functions, turns every class of the official code base into a data-only
placeholder, parses the legacy storage byte streams itself (no ``torch.load``), and refuses any other global
(``os.system``, ``builtins.eval``, ...) with an error. The parameter and buffer tensors are then collected by walking
the ``_parameters`` / ``_buffers`` / ``_modules`` dicts of the recorded module states.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from invertavatar.errors import InvertAvatarError

# Class namespaces of the official code base and of torch.nn: mapped to inert placeholders, never imported.
_PLACEHOLDER_PREFIXES = ("torch.nn.modules.", "training_avatar_texture.", "training.", "encoder_inversion.",
                         "torch_utils.", "dnnlib.")

_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool,
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle asked for a global outside the allow-list."""


@dataclasses.dataclass
class PersistentRecord:
    """What ``_reconstruct_persistent_obj(meta)`` stood for: class name, state, and the (unexecuted) source."""

    meta: dict

    @property
    def class_name(self) -> str:
        return str(self.meta.get("class_name", "?"))

    @property
    def state(self) -> dict:
        state = self.meta.get("state")
        return state if isinstance(state, dict) else {}


class Placeholder(dict):
    """Inert stand-in for a class of the official code base: stores constructor args and state, runs nothing."""

    class_path = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()  # the real class is never looked up, let alone called
        self.__dict__["_args"] = args

    def __setstate__(self, state: Any) -> None:
        self.__dict__["_state"] = state

    @property
    def state(self) -> dict:
        state = self.__dict__.get("_state")
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], dict):
            state = state[0]  # (dict state, slot state)
        return state if isinstance(state, dict) else {}


_placeholder_classes: dict[str, type] = {}


def _placeholder(module: str, name: str) -> type:
    path = f"{module}.{name}"
    if path not in _placeholder_classes:
        _placeholder_classes[path] = type(name, (Placeholder,), {"class_path": path})
    return _placeholder_classes[path]


@dataclasses.dataclass
class _Storage:
    """A flat tensor standing for one pickled storage."""

    data: torch.Tensor


def _rebuild_tensor(storage: _Storage, offset: int, size: tuple, stride: tuple, *_ignored: Any) -> torch.Tensor:
    if not isinstance(storage, _Storage):
        raise UnsafePickleError("tensor without a storage")
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if any(s < 0 for s in size + stride) or offset < 0:
        raise UnsafePickleError("negative tensor geometry")
    extent = offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1 if all(size) else offset
    if extent > storage.data.numel():
        raise UnsafePickleError("tensor reaches past its storage")
    return torch.as_strided(storage.data, size, stride, offset)


def _rebuild_parameter(data: torch.Tensor, *_ignored: Any) -> torch.Tensor:
    if not isinstance(data, torch.Tensor):
        raise UnsafePickleError("parameter without tensor data")
    return data


def _numpy_scalar(dtype: Any, data: Any = None) -> Any:
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, bytes):
        raise UnsafePickleError("only plain numpy scalars are allowed")
    return np.frombuffer(data, dtype=dtype)[0]


class _NdarrayName:
    """Stands for ``numpy.ndarray`` inside a pickle: usable only as the argument of ``_reconstruct`` (not callable,
    so a pickle cannot construct arrays over arbitrary buffers or sizes directly)."""


def _numpy_reconstruct(cls: Any, shape: Any, dtype_code: Any) -> np.ndarray:
    if cls is not _NdarrayName:
        raise UnsafePickleError("only numpy.ndarray may be reconstructed")
    return np.ndarray.__new__(np.ndarray, (0,), dtype_code)  # the real contents arrive through __setstate__


def _copyreg_reconstructor(cls: Any, base: Any, state: Any) -> Any:
    if not (isinstance(cls, type) and issubclass(cls, Placeholder)):
        raise UnsafePickleError("copyreg reconstruction of a non-placeholder class")
    return cls.__new__(cls)


def _persistent_record(meta: Any) -> PersistentRecord:
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise UnsafePickleError("unexpected persistent-object record")
    return PersistentRecord(meta)


class _StorageStreamUnpickler(pickle.Unpickler):
    """Inner unpickler for one legacy ``torch.save`` stream: storage-type names and OrderedDict only."""

    def __init__(self, f: io.BytesIO, storages: dict) -> None:
        super().__init__(f)
        self.storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        raise UnsafePickleError(f"global '{module}.{name}' is not allowed in a storage stream")

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and isinstance(pid[1], torch.dtype)):
            raise UnsafePickleError("unexpected persistent id in a storage stream")
        _, dtype, key, _location, numel = pid[:5]
        view = pid[5] if len(pid) > 5 else None
        self.storages.setdefault(str(key), (dtype, int(numel)))
        return ("ref", str(key), view)


def _load_storage_stream(blob: Any) -> _Storage:
    """Parse ``torch.storage._load_from_bytes`` input: the legacy (non-zip) serialisation of one storage."""
    if not isinstance(blob, (bytes, bytearray)):
        raise UnsafePickleError("storage payload is not bytes")
    f = io.BytesIO(blob)
    storages: dict[str, tuple[torch.dtype, int]] = {}

    def load() -> Any:
        return _StorageStreamUnpickler(f, storages).load()

    if load() != _LEGACY_MAGIC or load() != _LEGACY_PROTOCOL:
        raise UnsafePickleError("storage stream has an unknown header")
    load()  # system info (byte order, type sizes): little-endian data is assumed and checked below
    root = load()
    keys = load()
    if not (isinstance(root, tuple) and root[0] == "ref") or not isinstance(keys, list):
        raise UnsafePickleError("storage stream has an unexpected layout")
    flat: dict[str, torch.Tensor] = {}
    for key in keys:
        dtype, numel = storages[str(key)]
        count = int.from_bytes(f.read(8), "little", signed=True)
        itemsize = torch.empty((), dtype=dtype).element_size()
        raw = f.read(count * itemsize)
        if count != numel or len(raw) != count * itemsize:
            raise UnsafePickleError("truncated storage data")
        flat[str(key)] = torch.frombuffer(bytearray(raw), dtype=dtype) if count else torch.empty(0, dtype=dtype)
    data = flat[root[1]]
    if root[2] is not None:  # old-style storage view: (view key, offset, size)
        _, view_offset, view_size = root[2]
        data = data[int(view_offset) : int(view_offset) + int(view_size)]
    return _Storage(data)


_ALLOWED = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _persistent_record,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_storage_stream,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("numpy", "dtype"): np.dtype,
    ("numpy", "ndarray"): _NdarrayName,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("copyreg", "_reconstructor"): _copyreg_reconstructor,
    ("builtins", "object"): object,  # the base-class argument of copyreg._reconstructor (protocols 0 and 1)
}


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the allow-list above; classes of the official code base become placeholders."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if (module + ".").startswith(_PLACEHOLDER_PREFIXES) and name.isidentifier() and not name.startswith("__"):
            return _placeholder(module, name)
        raise UnsafePickleError(f"global '{module}.{name}' is not allowed")

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("persistent ids are not used by the official snapshots")


@dataclasses.dataclass
class OfficialNetwork:
    """Tensors and plain settings recovered from one network of an official pickle."""

    class_name: str
    state_dict: dict[str, torch.Tensor]
    init_kwargs: dict[str, Any]
    attributes: dict[str, Any]
    source_chars: int  # length of the embedded module source text (kept as text, never executed)
    states: dict[str, dict] = dataclasses.field(default_factory=dict)  # recorded state of every sub-module, by path
    class_paths: dict[str, str] = dataclasses.field(default_factory=dict)  # class of every sub-module, by path

    def child_init_kwargs(self, path: str) -> dict[str, Any]:
        """Plain constructor kwargs recorded for the sub-module at dotted ``path`` (empty if none)."""
        return to_plain(self.states.get(path, {}).get("_init_kwargs") or {})


def _node_state(node: Any) -> dict | None:
    if isinstance(node, PersistentRecord):
        return node.state
    if isinstance(node, Placeholder):
        return node.state
    return None


def collect_tensors(node: Any, prefix: str = "") -> dict[str, torch.Tensor]:
    """Parameters and persistent buffers of a recorded module tree, by dotted name (like ``state_dict``)."""
    state = _node_state(node)
    if state is None:
        raise UnsafePickleError(f"'{prefix or 'root'}' is not a recorded module")
    tensors: dict[str, torch.Tensor] = {}
    skip = state.get("_non_persistent_buffers_set") or set()
    for group in ("_parameters", "_buffers"):
        for name, value in (state.get(group) or {}).items():
            if value is None or (group == "_buffers" and name in skip):
                continue
            if not isinstance(value, torch.Tensor):
                raise UnsafePickleError(f"'{prefix}{name}' is not a tensor")
            tensors[prefix + name] = value
    for name, child in (state.get("_modules") or {}).items():
        if child is not None:
            tensors.update(collect_tensors(child, f"{prefix}{name}."))
    return tensors


def class_path(node: Any) -> str:
    """Official class of a recorded module: persistent records carry a name, by-reference classes a full path."""
    if isinstance(node, PersistentRecord):
        return node.class_name
    return getattr(node, "class_path", type(node).__name__)


def collect_states(node: Any, prefix: str = "") -> tuple[dict[str, dict], dict[str, str]]:
    """Recorded state dict and class of every module of the tree, by dotted path ('' = root)."""
    state = _node_state(node) or {}
    states, classes = {prefix.rstrip("."): state}, {prefix.rstrip("."): class_path(node)}
    for name, child in (state.get("_modules") or {}).items():
        if child is not None and _node_state(child) is not None:
            more_states, more_classes = collect_states(child, f"{prefix}{name}.")
            states.update(more_states)
            classes.update(more_classes)
    return states, classes


def to_plain(value: Any, depth: int = 0) -> Any:
    """Convert recovered settings into JSON-friendly data (dicts, lists, numbers, strings)."""
    if depth > 20:
        return repr(value)
    if isinstance(value, dict):
        return {str(k): to_plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_plain(v, depth + 1) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist() if value.size <= 64 and value.dtype != object else f"array{value.shape}"
    if isinstance(value, torch.Tensor):
        return value.tolist() if value.numel() <= 64 else f"tensor{tuple(value.shape)}"
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def load_official_pickle(path: str | Path) -> dict:
    """Unpickle an official snapshot with the restricted unpickler; returns its top-level dict."""
    path = Path(path)
    if not path.is_file():
        raise InvertAvatarError("missing_file", f"Official checkpoint not found: {path}.",
                                "Download ani3dgan512.pkl as described in docs/neural.md and pass its path.")
    try:
        with open(path, "rb") as f:
            data = RestrictedUnpickler(f).load()
    except UnsafePickleError as exc:
        raise InvertAvatarError("unsafe_checkpoint", f"Refused to load {path}: {exc}.",
                                "Only official InvertAvatar/EG3D snapshots are accepted; get the file from the "
                                "authors' release.") from exc
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
        raise InvertAvatarError("bad_checkpoint", f"{path} is not a readable official snapshot ({exc}).",
                                "The file may be truncated; download it again.") from exc
    if not isinstance(data, dict):
        raise InvertAvatarError("bad_checkpoint", f"{path} does not hold a snapshot dict.",
                                "Pass an official .pkl such as ani3dgan512.pkl.")
    return data


def read_official_pickle(path: str | Path, key: str = "G_ema") -> OfficialNetwork:
    """Recover the tensors and settings of network ``key`` (``G_ema`` for the GAN; ``G`` for encoder snapshots)."""
    return network_from_snapshot(load_official_pickle(path), key, path)


def default_key(data: dict) -> str:
    """The network inference uses: ``G_ema`` in GAN snapshots, ``G`` in encoder snapshots."""
    return "G_ema" if data.get("G_ema") is not None else "G"


def network_from_snapshot(data: dict, key: str, path: str | Path = "snapshot") -> OfficialNetwork:
    """Network ``key`` of an already (safely) unpickled snapshot dict."""
    if key not in data or data[key] is None:
        raise InvertAvatarError("bad_checkpoint", f"{path} has no network '{key}' (keys: {', '.join(map(str, data))}).",
                                "Use --key to pick one of the keys listed.")
    node = data[key]
    try:
        tensors = collect_tensors(node)
    except UnsafePickleError as exc:
        raise InvertAvatarError("bad_checkpoint", f"{path} [{key}] has an unexpected structure: {exc}.",
                                "Use an official InvertAvatar snapshot.") from exc
    state = _node_state(node) or {}
    attributes = {k: to_plain(state[k]) for k in ("rendering_kwargs", "neural_rendering_resolution") if k in state}
    meta = node.meta if isinstance(node, PersistentRecord) else {}
    source = meta.get("module_src", "")
    class_name = node.class_name if isinstance(node, PersistentRecord) else getattr(node, "class_path", "?")
    init_kwargs = to_plain(state.get("_init_kwargs") or {})
    states, classes = collect_states(node)
    return OfficialNetwork(class_name, tensors, init_kwargs, attributes, len(source) if isinstance(source, str) else 0,
                           states, classes)
