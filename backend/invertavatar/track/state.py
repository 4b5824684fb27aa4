"""The tracker's compact state: Gaussian belief over the shared parameters (identity coefficients, log focal ratio)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TrackerState:
    """Mean (S,) and information matrix (S, S) of the shared parameters, and how many keyframes shaped them."""

    mean: np.ndarray
    information: np.ndarray
    keyframes: int = 0

    @classmethod
    def initial(cls, n_identity: int, config) -> "TrackerState":
        """The prior before any frame: identity ~ N(0, 1/prior), focal ratio around the configured value."""
        mean = np.zeros(n_identity + 1)
        mean[-1] = math.log(config.focal_ratio_prior)
        information = np.diag(np.r_[np.full(n_identity, config.identity_prior), config.focal_prior])
        return cls(mean, information, 0)

    def updated(self, mean: np.ndarray, frame_information: np.ndarray) -> "TrackerState":
        """The state after one more keyframe whose fit gave ``mean`` and carried ``frame_information``."""
        information = self.information + 0.5 * (frame_information + frame_information.T)
        return TrackerState(np.asarray(mean, np.float64), information, self.keyframes + 1)

    def to_bytes(self) -> bytes:
        """Serialise for the bundle's ``state/tracker.json`` (float64 written exactly via hex)."""
        return json.dumps({"mean": [float.hex(float(x)) for x in self.mean],
                           "information": [float.hex(float(x)) for x in self.information.ravel()],
                           "keyframes": self.keyframes}).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> "TrackerState":
        raw = json.loads(data)
        mean = np.array([float.fromhex(x) for x in raw["mean"]])
        information = np.array([float.fromhex(x) for x in raw["information"]]).reshape(len(mean), len(mean))
        return cls(mean, information, int(raw["keyframes"]))
