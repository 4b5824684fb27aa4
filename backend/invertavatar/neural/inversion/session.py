"""Incremental inversion sessions: start empty or from saved state, add frames, render the avatar.

Grouping (how added frames are split into fine-stage calls):

* ``"stream"``: every frame is its own call (T = 1), in the order given. Adding frames one at a time or as a list
  gives identical states.
* ``"official"``: the reference's grouping. Each ``add_frames`` call with n frames is padded by repetition to 4 (if
  n < 4) or to a multiple of 4, cut into n/4 interleaved groups (group i = frames i, i + g, i + 2g, ...) and each
  group is one call. Inside a call each decoder stage aggregates all frames before the next stage runs, so this
  is *not* numerically equal to streaming the same frames; it equals calling ``add_frames`` once per interleaved
  group (tested).

The W+ code comes from the first frame ever added and never changes; the residuals of later frames are taken
against its coarse render. The state is the W+ code plus the 8 ConvGRU states (the avatar's texture offsets and
SFT maps are functions of these states, so they are recomputed rather than stored twice).
"""

from __future__ import annotations

import json

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_bytes
from safetensors.torch import save as save_bytes

from invertavatar.errors import InvertAvatarError
from invertavatar.neural.inversion.model import FrameBatch, InversionNet, hidden_shapes
from invertavatar.neural.prior.generator import AvatarFeatures, Synthesis

STATE_FORMAT = "invertavatar.neural.session"
STATE_VERSION = 1
GROUP = 4


def official_groups(count: int) -> list[list[int]]:
    """Frame indices of each call for ``count`` frames under the official grouping."""
    if count <= 0:
        return []
    padded = GROUP if count <= GROUP else -(-count // GROUP) * GROUP
    order = [i % count for i in range(padded)]
    n = padded // GROUP
    return [[order[i + k * n] for k in range(GROUP)] for i in range(n)]


class InversionSession:
    """One avatar being inverted from a growing set of frames (batch size 1)."""

    def __init__(self, net: InversionNet, grouping: str = "stream") -> None:
        if grouping not in ("stream", "official"):
            raise InvertAvatarError("bad_option", f"Unknown grouping '{grouping}'.", "Use 'stream' or 'official'.")
        self.net, self.grouping = net, grouping
        self.ws: torch.Tensor | None = None
        self.hidden: list[torch.Tensor] | None = None
        self.frames_seen = 0
        self._coarse: AvatarFeatures | None = None
        self._avatar: AvatarFeatures | None = None

    @property
    def device(self) -> torch.device:
        return self.net.latent_avg.device

    def zero_state(self) -> list[torch.Tensor]:
        """The documented initial ConvGRU states: zeros of the stage sizes."""
        return [torch.zeros(s, device=self.device) for s in hidden_shapes(self.net)]

    @torch.no_grad()
    def add_frames(self, frames: FrameBatch) -> None:
        """Add T >= 1 frames (B must be 1); updates the state."""
        if frames.image.ndim != 5 or frames.image.shape[0] != 1 or frames.length < 1:
            raise InvertAvatarError("bad_input", f"Expected frames of shape (1, T, 3, S, S), got "
                                    f"{tuple(frames.image.shape)}.", "Add the frames of one person at a time.")
        size = self.net.prior_config.output_resolution
        if tuple(frames.image.shape[-2:]) != (size, size):
            raise InvertAvatarError("bad_input", f"Frames must be {size}x{size}, got {tuple(frames.image.shape[-2:])}.",
                                    "Crop and resize the face images to the prior's output resolution first.")
        frames = frames.to(self.device)
        if self.ws is None:
            self.ws = self.net.coarse_ws(frames.image[:, 0])
            self.hidden = self.zero_state()
        coarse = self.coarse()
        calls = [[i] for i in range(frames.length)] if self.grouping == "stream" else official_groups(frames.length)
        for indices in calls:
            self.hidden = self.net.fine_step(frames.select(indices), self.ws, coarse, self.hidden)
        self.frames_seen += frames.length
        self._avatar = None

    def coarse(self) -> AvatarFeatures:
        if self.ws is None:
            raise InvertAvatarError("empty_session", "No frame has been added to this session.",
                                    "Call add_frames() with at least one frame first.")
        if self._coarse is None:
            with torch.no_grad():
                self._coarse = self.net.coarse_features(self.ws)
        return self._coarse

    def avatar(self, use_fine: bool = True) -> AvatarFeatures:
        """The current avatar (``use_fine=False``: the coarse W+ result only)."""
        coarse = self.coarse()
        if not use_fine:
            return coarse
        if self._avatar is None:
            with torch.no_grad():
                self._avatar = self.net.avatar(self.ws, coarse, self.hidden)
        return self._avatar

    @torch.no_grad()
    def render(self, camera: torch.Tensor, condition: torch.Tensor, use_fine: bool = True,
               seed: int = 0) -> Synthesis:
        """Render the avatar for camera labels (N, 25) and mesh conditions (N, P, P, 3) (fixed ray jitter)."""
        features = self.avatar(use_fine)
        n = camera.shape[0]
        expand = AvatarFeatures([x.expand(n, *x.shape[1:]) for x in features.texture_levels],
                                [x.expand(n, *x.shape[1:]) for x in features.static_levels],
                                features.static_planes.expand(n, *features.static_planes.shape[1:]))
        jitter = torch.Generator(device=self.device).manual_seed(seed)
        return self.net.render(expand, self.ws.expand(n, -1, -1), camera.to(self.device), condition.to(self.device),
                               jitter)

    # ------------------------------------------------------------------ state
    def state_bytes(self) -> bytes:
        """The session state as safetensors bytes (for the bundle's ``state/``)."""
        self.coarse()
        tensors = {"ws": self.ws.detach().cpu().contiguous()}
        for i, h in enumerate(self.hidden):
            tensors[f"hidden.{i}"] = h.detach().cpu().contiguous()
        metadata = {"format": STATE_FORMAT, "format_version": str(STATE_VERSION), "grouping": self.grouping,
                    "frames_seen": str(self.frames_seen), "prior": self.net.prior_config.name,
                    "encoder": json.dumps(self.net.encoder_config.to_dict()), "use_gru": str(self.net.use_gru)}
        return save_bytes(tensors, metadata=metadata)

    @classmethod
    def from_bytes(cls, net: InversionNet, data: bytes) -> "InversionSession":
        """Restore a session saved by :meth:`state_bytes` for the same networks."""
        try:
            tensors = load_bytes(data)
            size = int.from_bytes(data[:8], "little")
            metadata = json.loads(data[8 : 8 + size]).get("__metadata__") or {}
        except (SafetensorError, ValueError, UnicodeDecodeError) as exc:
            raise InvertAvatarError("bad_state", f"The saved inversion state is unreadable ({exc}).",
                                    "Re-run the neural inversion to rebuild it.") from exc
        if metadata.get("format") != STATE_FORMAT:
            raise InvertAvatarError("bad_state", "This is not an inversion session state.",
                                    "Pass the bytes written by InversionSession.state_bytes().")
        session = cls(net, metadata.get("grouping", "stream"))
        shapes = hidden_shapes(net)
        hidden = [tensors.get(f"hidden.{i}") for i in range(len(shapes))]
        ws = tensors.get("ws")
        expected_ws = (1, net.generator.num_ws, net.prior_config.w_dim)
        if ws is None or tuple(ws.shape) != expected_ws or any(
                h is None or tuple(h.shape) != s for h, s in zip(hidden, shapes)):
            raise InvertAvatarError("bad_state", "The saved inversion state does not fit these networks "
                                    f"(saved for prior '{metadata.get('prior')}').",
                                    "Load the encoder checkpoint the state was made with.")
        session.ws = ws.to(session.device)
        session.hidden = [h.to(session.device) for h in hidden]
        session.frames_seen = int(metadata.get("frames_seen", "0"))
        return session
