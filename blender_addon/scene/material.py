"""Material with the albedo texture; the coverage map is loaded as a second, unconnected image node."""

from __future__ import annotations

from pathlib import Path

import bpy


def _load_image(path: Path, name: str, non_color: bool) -> bpy.types.Image:
    image = bpy.data.images.load(str(path), check_existing=False)
    image.name = name
    if non_color:
        image.colorspace_settings.name = "Non-Color"
    # Packed into the .blend: the downloaded bundle folder is a cache and may be cleaned up.
    image.pack()
    return image


def build_material(name: str, textures: dict[str, Path]) -> bpy.types.Material:
    """A node material: albedo → Principled BSDF base colour; coverage (and neural bake) as extra image nodes."""
    material = bpy.data.materials.new(name)
    material.use_nodes = True
    nodes, links = material.node_tree.nodes, material.node_tree.links
    bsdf = next(n for n in nodes if n.type == "BSDF_PRINCIPLED")
    bsdf.inputs["Roughness"].default_value = 0.6
    albedo = nodes.new("ShaderNodeTexImage")
    albedo.name = albedo.label = "Albedo"
    albedo.image = _load_image(textures["albedo"], f"{name}_albedo", non_color=False)
    albedo.location = (-400, 300)
    links.new(albedo.outputs["Color"], bsdf.inputs["Base Color"])
    nodes.active = albedo
    extra = (("coverage", "Coverage", True), ("neural_baked", "Neural bake", False))
    for row, (key, label, non_color) in enumerate(extra):
        if key in textures:
            node = nodes.new("ShaderNodeTexImage")
            node.name = node.label = label
            node.image = _load_image(textures[key], f"{name}_{key}", non_color=non_color)
            node.location = (-400, -row * 300)
    return material
