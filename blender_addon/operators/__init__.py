"""Operators (``invertavatar.*``): connection, inputs, jobs, avatar tools."""

from . import avatar, connection, inputs, reconstruct

classes = connection.classes + inputs.classes + reconstruct.classes + avatar.classes
