"""Evaluation harness: self-reenactment quality of an avatar versus the number of frames it was built from.

See docs/evaluation.md for the protocol and the JSON schema (:data:`report.SCHEMA_VERSION`).
"""

from .metrics import face_mask, masked_psnr, masked_ssim
from .protocol import EvalSpec, evaluate_clip

__all__ = ["EvalSpec", "evaluate_clip", "face_mask", "masked_psnr", "masked_ssim"]
