"""The person's hair: per-keyframe hair regions, a scalp-attached volume carved by them, guide curves and
Principled Hair BSDF colour (docs/hair.md). `HairStage` is what a job uses."""

from .stage import HairResult, HairStage

__all__ = ["HairResult", "HairStage"]
