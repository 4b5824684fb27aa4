"""Face detection: box, landmarks, ARKit blendshape scores and head pose per frame, behind one interface.

`make_detector("mediapipe")` (default, offline with the Face Landmarker asset) or `make_detector("fan")`
(face-alignment, when its weights are installed). Backends are imported lazily by `make_detector`.
"""

from invertavatar.detect.base import Detection, Detector, make_detector

__all__ = ["Detection", "Detector", "make_detector"]
