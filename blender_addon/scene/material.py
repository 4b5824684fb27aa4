"""The skin material: a Principled BSDF an artist would build for skin, from the bundle's textures.

* Base colour: the de-lit albedo (at a physical level: the backend bounds it by measured skin reflectance).
* Subsurface scattering: Random Walk (Skin), per-channel radii from the diffuse mean free paths Jensen et al. (2001,
  "A Practical Model for Subsurface Light Transport", table of measured materials: skin1 3.67 / 1.37 / 0.68 mm for
  R / G / B) — the ratios Blender's own default radius (1.0, 0.2, 0.1) approximates — with skin's IOR 1.4 and a
  forward-scattering phase function (anisotropy 0.8, the dermis' g in Jacques' 2013 review of tissue optics).
* Roughness and Specular IOR Level from ``textures/roughness.png`` / ``specular.png`` (an oilier T-zone), and the
  fine detail of ``textures/normal.png`` through a tangent-space Normal Map node, when the bundle has them.

The images are linked straight into the BSDF's inputs, the form Blender's glTF and FBX exporters recognise: glTF
gets the base colour, a metallicRoughness texture, the normal texture, KHR_materials_specular and
KHR_materials_ior; FBX gets the diffuse, roughness (as shininess), specular and normal-map textures (it has no
subsurface). The coverage map and the other references are loaded as unconnected image nodes.
"""

from __future__ import annotations

from pathlib import Path

import bpy

SKIN_MEAN_FREE_PATH_MM = (3.67, 1.37, 0.68)  # Jensen et al. 2001, skin1, R/G/B
SKIN_IOR = 1.4
SKIN_ANISOTROPY = 0.8
DEFAULT_ROUGHNESS = 0.5  # without a roughness map
DETAIL_STRENGTH = 1.0  # Normal Map strength: the map itself is scaled to the photographed detail


def _load_image(path: Path, name: str, non_color: bool) -> bpy.types.Image:
    image = bpy.data.images.load(str(path), check_existing=False)
    image.name = name
    if non_color:
        image.colorspace_settings.name = "Non-Color"
    # Packed into the .blend: the downloaded bundle folder is a cache and may be cleaned up.
    image.pack()
    return image


def _image_node(nodes, label: str, image: bpy.types.Image, location: tuple[float, float]):
    node = nodes.new("ShaderNodeTexImage")
    node.name = node.label = label
    node.image = image
    node.location = location
    return node


def _skin_shading(bsdf) -> None:
    """Subsurface scattering and specular settings of skin (see the module docstring for the sources)."""
    longest = max(SKIN_MEAN_FREE_PATH_MM)
    bsdf.subsurface_method = "RANDOM_WALK_SKIN"
    bsdf.inputs["Subsurface Weight"].default_value = 1.0
    bsdf.inputs["Subsurface Radius"].default_value = [c / longest for c in SKIN_MEAN_FREE_PATH_MM]
    bsdf.inputs["Subsurface Scale"].default_value = longest / 1000.0  # metres: the scene is in metres
    bsdf.inputs["Subsurface IOR"].default_value = SKIN_IOR
    bsdf.inputs["Subsurface Anisotropy"].default_value = SKIN_ANISOTROPY
    bsdf.inputs["IOR"].default_value = SKIN_IOR
    bsdf.inputs["Roughness"].default_value = DEFAULT_ROUGHNESS
    bsdf.inputs["Specular IOR Level"].default_value = 0.5


def build_material(name: str, textures: dict[str, Path]) -> bpy.types.Material:
    """The skin node material (module docstring); ``textures`` maps a bundle texture's stem to its file."""
    material = bpy.data.materials.new(name)
    material.use_nodes = True
    nodes, links = material.node_tree.nodes, material.node_tree.links
    bsdf = next(n for n in nodes if n.type == "BSDF_PRINCIPLED")
    _skin_shading(bsdf)
    albedo = _image_node(nodes, "Albedo", _load_image(textures["albedo"], f"{name}_albedo", non_color=False),
                         (-400, 300))
    links.new(albedo.outputs["Color"], bsdf.inputs["Base Color"])
    nodes.active = albedo
    if "roughness" in textures:
        node = _image_node(nodes, "Roughness", _load_image(textures["roughness"], f"{name}_roughness", True),
                           (-700, 100))
        links.new(node.outputs["Color"], bsdf.inputs["Roughness"])
    if "specular" in textures:
        node = _image_node(nodes, "Specular", _load_image(textures["specular"], f"{name}_specular", True),
                           (-700, -150))
        links.new(node.outputs["Color"], bsdf.inputs["Specular IOR Level"])
    if "normal" in textures:
        node = _image_node(nodes, "Detail normal", _load_image(textures["normal"], f"{name}_normal", True),
                           (-700, -400))
        normal_map = nodes.new("ShaderNodeNormalMap")
        normal_map.name = normal_map.label = "Detail normal map"
        normal_map.space = "TANGENT"
        normal_map.inputs["Strength"].default_value = DETAIL_STRENGTH
        normal_map.location = (-400, -400)
        links.new(node.outputs["Color"], normal_map.inputs["Color"])
        links.new(normal_map.outputs["Normal"], bsdf.inputs["Normal"])
    # The as-photographed texture (shading baked in) is kept for reference; Base Color takes the de-lit albedo so
    # the head is lit by Blender's lights, not the photo's.
    extra = (("coverage", "Coverage", True), ("neural_baked", "Neural bake", False),
             ("photographed", "As photographed", False))
    for row, (key, label, non_color) in enumerate(extra):
        if key in textures:
            _image_node(nodes, label, _load_image(textures[key], f"{name}_{key}", non_color=non_color),
                        (-1000, 300 - row * 300))
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
