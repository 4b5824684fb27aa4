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
    # The as-photographed texture (shading baked in) is kept for reference; Base Color takes the de-lit albedo so
    # the head is lit by Blender's lights, not the photo's.
    extra = (("coverage", "Coverage", True), ("neural_baked", "Neural bake", False),
             ("photographed", "As photographed", False))
    for row, (key, label, non_color) in enumerate(extra):
        if key in textures:
            node = nodes.new("ShaderNodeTexImage")
            node.name = node.label = label
            node.image = _load_image(textures[key], f"{name}_{key}", non_color=non_color)
            node.location = (-400, -row * 300)
    return material


# The head model's thin shells over the eyes (shadow, tear film, blend) are see-through layers meant for a shader
# with transparency; drawn opaque with the skin texture they would cover the eyes. The eyelash cards are left out
# the same way: drawn as opaque cards they read as a thick black eyeliner. The material's alpha is 0, which the
# glTF exporter writes as alphaMode MASK with a base-colour alpha of 0 and the FBX exporter as Opacity 0.
OVERLAY_PARTS = ("M_EyeOcclusion", "M_LacrimalFluid", "M_EyeBlend", "M_EyeLashes")


def assign_overlay_material(mesh: bpy.types.Mesh, bundle, name: str) -> bpy.types.Material | None:
    """Give the eye overlay polygons a fully transparent material (slot 1); None when the model has none."""
    overlay_ids = [i for i, part in enumerate(bundle.material_names) if part in OVERLAY_PARTS]
    if not overlay_ids:
        return None
    material = bpy.data.materials.new(name)
    material.use_nodes = True
    bsdf = next(n for n in material.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
    bsdf.inputs["Alpha"].default_value = 0.0
    if hasattr(material, "surface_render_method"):  # Blender 4.2+ (EEVEE Next)
        material.surface_render_method = "DITHERED"
    else:
        material.blend_method = "HASHED"
    mesh.materials.append(material)
    import numpy as np

    slots = np.isin(bundle.face_material, overlay_ids).astype(np.int32)
    mesh.polygons.foreach_set("material_index", slots)
    return material


# The two textures the skin material can show; FBX/glTF exporters take the image linked to Base Color.
TEXTURE_NODES = {"PHOTO": "Albedo", "NEURAL": "Neural bake"}


def set_texture_source(material: bpy.types.Material, source: str) -> bool:
    """Link the *Photo texture* (``PHOTO``) or the *Neural bake* (``NEURAL``) image to Base Color.

    False (and nothing changed) when the material has no node for that source, e.g. a fit-only avatar.
    """
    if material is None or not material.use_nodes or source not in TEXTURE_NODES:
        return False
    nodes, links = material.node_tree.nodes, material.node_tree.links
    node = nodes.get(TEXTURE_NODES[source])
    bsdf = next((n for n in nodes if n.type == "BSDF_PRINCIPLED"), None)
    if node is None or node.image is None or bsdf is None:
        return False
    links.new(node.outputs["Color"], bsdf.inputs["Base Color"])
    nodes.active = node  # what texture-paint and the viewport's texture shading show
    return True


def replace_neural_bake(material: bpy.types.Material, path: Path) -> None:
    """Load a (re-)baked ``neural_baked.png`` into the material's *Neural bake* node (made if missing)."""
    nodes = material.node_tree.nodes
    node = nodes.get(TEXTURE_NODES["NEURAL"])
    if node is None:
        node = nodes.new("ShaderNodeTexImage")
        node.name = node.label = TEXTURE_NODES["NEURAL"]
        node.location = (-400, -300)
    old = node.image
    node.image = _load_image(path, f"{material.name}_neural_baked", non_color=False)
    if old is not None and old.users == 0:
        bpy.data.images.remove(old)
