"""Build pickles that mimic the official EG3D/InvertAvatar snapshot format (reference §6.1-6.2), for tests.

Persistent classes pickle as ``torch_utils.persistence._reconstruct_persistent_obj(meta)`` with the module source
text in ``meta``; the fake reconstructor installed here behaves like the original one (it ``exec``s that source), so
a normal ``pickle.load`` of these files really runs the embedded code. The safe reader must never do so.
"""

from __future__ import annotations

import collections
import enum
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import torch
from torch import nn

from invertavatar.neural.ops.layers import FullyConnectedLayer
from invertavatar.neural.prior.generator import Next3DGenerator
from invertavatar.neural.prior.volume import TriPlaneDecoder, VolumeRenderer


def evil_source(marker: Path) -> str:
    """Module source that leaves evidence and fails if it is ever executed."""
    return (
        "import pathlib\n"
        f"pathlib.Path({str(marker)!r}).write_text('the embedded source was executed')\n"
        "raise RuntimeError('embedded module source executed')\n"
    )


def _reconstruct_persistent_obj(meta):  # the original reconstructor execs the stored module source
    module = types.ModuleType("_imported_module_mimic")
    exec(compile(meta["module_src"], "<persistent>", "exec"), module.__dict__)  # noqa: S102 - test of the danger
    return getattr(module, meta["class_name"])


class _EasyDict(dict):
    pass


class _OSGDecoder:
    pass


class _Renderer:
    pass


_FAKE = {
    "torch_utils": {},
    "torch_utils.persistence": {"_reconstruct_persistent_obj": _reconstruct_persistent_obj},
    "dnnlib": {},
    "dnnlib.util": {"EasyDict": _EasyDict},
    "training_avatar_texture": {},
    "training_avatar_texture.triplane_v20": {"OSGDecoder": _OSGDecoder},
    "training_avatar_texture.volumetric_rendering": {},
    "training_avatar_texture.volumetric_rendering.renderer": {"ImportanceRenderer_bsMotion": _Renderer},
}


class _ProgressiveStage(enum.Enum):  # the e4e training stage enum; 18 = "Inference" (all deltas)
    Delta12Training = 12
    Inference = 18


# The few-shot wrapper's own classes are not persistent: they pickle by reference with their __dict__ (§6.2).
_BY_REFERENCE = {
    "InversionNet": ("encoder_inversion.models.uvnet", "inversionNet"),
    "UNetPair": ("encoder_inversion.models.uvnet", "unet_encoder"),
    "WPlusEncoder": ("encoder_inversion.models.e4e", "Encoder4Editing"),
    "GradualStyleBlock": ("encoder_inversion.models.e4e", "GradualStyleBlock"),
    "FullyConnectedLayer": ("encoder_inversion.models.e4e", "EqualLinear"),
    "BottleneckIRSE": ("encoder_inversion.models.helpers", "bottleneck_IR_SE"),
    "SEModule": ("encoder_inversion.models.helpers", "SEModule"),
    "TextureUNet": ("encoder_inversion.models.unet_encoders", "TriPlanefeat_Encoder"),
    "TriPlaneUNet": ("encoder_inversion.models.unet_encoders", "TriPlaneSFTfeat_Encoder"),
    "RecurrentUp": ("encoder_inversion.models.unet_encoders", "recurrent_Up"),
    "DoubleConv": ("encoder_inversion.models.unet_encoders", "DoubleConv"),
    "ConvGRU": ("encoder_inversion.models.unet_encoders", "ConvGRU"),
}
for _module, _name in set(_BY_REFERENCE.values()):
    _FAKE.setdefault(_module, {})[_name] = type(_name, (), {})
_FAKE["encoder_inversion.models.e4e"]["ProgressiveStage"] = _ProgressiveStage
_FAKE["encoder_inversion.models.uvnet_new"] = {"inversionNet": type("inversionNet", (), {})}
for _parent in ("encoder_inversion", "encoder_inversion.models"):
    _FAKE.setdefault(_parent, {})


def _fake_class(module_name: str, name: str) -> type:
    return getattr(sys.modules[module_name], name)


def install_fake_modules() -> list[str]:
    """Register the official module paths so ``pickle.dump`` can reference them; returns the names added."""
    added = []
    for name, members in _FAKE.items():
        if name in sys.modules:
            continue
        module = types.ModuleType(name)
        for attr, obj in members.items():
            obj.__module__ = name
            obj.__qualname__ = attr
            obj.__name__ = attr
            setattr(module, attr, obj)
        sys.modules[name] = module
        added.append(name)
    return added


def remove_fake_modules(names: list[str]) -> None:
    for name in names:
        sys.modules.pop(name, None)


class _Persistent:
    """Pickles exactly like an object of a ``persistent_class``."""

    def __init__(self, meta: dict) -> None:
        self.meta = meta

    def __reduce__(self):
        return (sys.modules["torch_utils.persistence"]._reconstruct_persistent_obj, (self.meta,))


def _module_state(module: nn.Module, children: dict, extra: dict) -> dict:
    state = {
        "training": False,
        "_parameters": collections.OrderedDict((k, v) for k, v in module._parameters.items()),
        "_buffers": collections.OrderedDict((k, v) for k, v in module._buffers.items()),
        "_non_persistent_buffers_set": set(),
        "_backward_hooks": collections.OrderedDict(),
        "_forward_hooks": collections.OrderedDict(),
        "_forward_pre_hooks": collections.OrderedDict(),
        "_state_dict_hooks": collections.OrderedDict(),
        "_load_state_dict_pre_hooks": collections.OrderedDict(),
        "_modules": collections.OrderedDict(children),
    }
    state.update(extra)
    return state


OFFICIAL_CLASS_NAMES = {"Next3DGenerator": "TriPlaneGenerator", "StyleGenerator": "Generator",
                        "SuperResolution": "SuperresolutionHybrid8XDC"}


def _torch_class(module: nn.Module) -> type:
    """The stock torch.nn class of a module (our BatchNorm subclass pickles as nn.BatchNorm2d)."""
    for cls in type(module).__mro__:
        if cls.__module__.startswith("torch.nn.modules."):
            return cls
    raise TypeError(type(module))


def mimic_module(module: nn.Module, source: str, persistent: bool = True) -> object:
    """Convert our module tree into the object graph the official snapshot pickles.

    ``persistent``: inside the GAN, classes are persistent (they carry ``source``); the few-shot wrapper's own
    classes pickle by reference.
    """
    name = type(module).__name__
    if isinstance(module, Next3DGenerator):
        persistent = True
    elif name in _BY_REFERENCE and (not persistent or name != "FullyConnectedLayer"):
        persistent = False
    children = {n: mimic_module(child, source, persistent) for n, child in module._modules.items()}
    if not persistent and name in _BY_REFERENCE:
        obj = _fake_class(*_BY_REFERENCE[name])()
        extra: dict = {}
        if name == "WPlusEncoder":
            extra = {"progressive_stage": _ProgressiveStage(module.stage if module.stage < 13 else 18),
                     "style_count": module.num_ws}
        obj.__dict__.update(_module_state(module, children, extra))
        return obj
    if type(module).__module__.startswith(("torch.nn.", "invertavatar.neural.inversion.batchnorm")):
        cls = _torch_class(module)
        obj = cls.__new__(cls)
        obj.__dict__.update({k: v for k, v in module.__dict__.items() if k != "batch_stats"})
        obj.__dict__["_modules"] = collections.OrderedDict(children)
        obj.__dict__["training"] = False
        return obj
    if isinstance(module, nn.Sequential):
        seq = nn.Sequential()
        seq.__dict__["_modules"] = collections.OrderedDict(children)
        return seq
    if isinstance(module, nn.Softplus):
        return nn.Softplus()
    if isinstance(module, TriPlaneDecoder):
        obj = _OSGDecoder()
        obj.__dict__.update(_module_state(module, children, {"hidden_dim": 64}))
        return obj
    if isinstance(module, VolumeRenderer):
        obj = _Renderer()
        axes = torch.tensor([[[1, 0, 0], [0, 1, 0], [0, 0, 1]], [[1, 0, 0], [0, 0, 1], [0, 1, 0]],
                             [[0, 0, 1], [0, 1, 0], [1, 0, 0]]], dtype=torch.float32).transpose(1, 2)
        obj.__dict__.update(_module_state(module, children, {"plane_axes": axes}))
        return obj
    extra: dict = {"_init_args": (), "_init_kwargs": {}}
    if isinstance(module, Next3DGenerator):
        rendering = _EasyDict(depth_resolution=48, box_warp=1, avg_camera_radius=np.float64(2.7),
                              avg_camera_pivot=np.array([0.0, 0.0, 0.2]), superresolution_noise_mode="none")
        extra = {"_init_args": (), "_init_kwargs": _EasyDict(c_dim=25, img_resolution=512, z_dim=512, w_dim=512,
                                                              rendering_kwargs=rendering),
                 "rendering_kwargs": rendering, "neural_rendering_resolution": 128}
    if isinstance(module, FullyConnectedLayer):
        extra["activation"] = module.activation
    meta = {"type": "class", "version": 6, "module_src": source,
            "class_name": OFFICIAL_CLASS_NAMES.get(type(module).__name__, type(module).__name__),
            "state": _module_state(module, children, extra)}
    return _Persistent(meta)


def write_mimic_fewshot(path: Path, net: nn.Module, marker: Path) -> None:
    """Write a snapshot dict {training_set_kwargs, G, D} mimicking ``FSInvertAvatar.pkl`` (G = the wrapper)."""
    generator = net.generator
    wrapper = mimic_module(net, evil_source(marker), persistent=False)
    # The official generator records its constructor kwargs; ours are derived from the configuration.
    gen_state = wrapper.__dict__["_modules"]["generator"].meta["state"]
    gen_state["_init_kwargs"] = _EasyDict(z_dim=512, c_dim=25, w_dim=512, img_resolution=512, img_channels=3,
                                          mapping_kwargs=_EasyDict(num_layers=generator.config.mapping_layers),
                                          channel_base=generator.config.channel_base,
                                          channel_max=generator.config.channel_max,
                                          rendering_kwargs=_EasyDict(depth_resolution=48, box_warp=1))
    snapshot = {"training_set_kwargs": _EasyDict(resolution=512), "G": wrapper, "D": None}
    with open(path, "wb") as f:
        pickle.dump(snapshot, f, protocol=4)


def write_mimic_one_shot(path: Path) -> None:
    """A snapshot whose ``G`` is the improved one-shot wrapper (``uvnet_new.inversionNet``), with one tensor."""
    wrapper = _fake_class("encoder_inversion.models.uvnet_new", "inversionNet")()
    holder = nn.Module()
    holder.register_buffer("latent_avg", torch.zeros(1, 512))
    wrapper.__dict__.update(_module_state(holder, {}, {}))
    with open(path, "wb") as f:
        pickle.dump({"training_set_kwargs": None, "G": wrapper, "D": None}, f, protocol=4)


def write_mimic_snapshot(path: Path, generator: Next3DGenerator, marker: Path, extra_top: dict | None = None) -> None:
    """Write a GAN snapshot dict {training_set_kwargs, G, D, G_ema, augment_pipe} mimicking ``ani3dgan512.pkl``."""
    snapshot = {"training_set_kwargs": _EasyDict(resolution=512, use_labels=True), "G": None, "D": None,
                "G_ema": mimic_module(generator, evil_source(marker)), "augment_pipe": None}
    snapshot.update(extra_top or {})
    with open(path, "wb") as f:
        pickle.dump(snapshot, f, protocol=4)
