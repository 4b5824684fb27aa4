"""Operators (``invertavatar.*``): connection, inputs, jobs, avatar tools."""

from . import avatar, connection, inputs, neural, reconstruct

classes = connection.classes + inputs.classes + reconstruct.classes + avatar.classes + neural.classes
