"""InvertAvatar backend: photos or clips of a face to a rigged, textured, animatable head avatar."""

__version__ = "0.1.0"
API_VERSION = "1"
