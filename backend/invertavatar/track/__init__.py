"""Multi-frame head-model fitting: one shared identity, per-frame expression, pose and gaze, incremental."""

from .state import TrackerState
from .tracker import FrameFit, Tracker, TrackerConfig, expression_to_arkit

__all__ = ["FrameFit", "Tracker", "TrackerConfig", "TrackerState", "expression_to_arkit"]
