"""The only place that builds bpy data: mesh, shape keys, armature and weights, material, actions, export."""
