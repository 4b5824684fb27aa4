"""Blender-independent parts of the add-on: stdlib + numpy only, never bpy (so they are testable anywhere)."""
