"""A FaceVerse bundle (synthetic FaceVerse-v3.1-format file, backend pipeline) imports and exports with its 52 keys."""

import json
import struct

import numpy as np
import pytest

from blender_addon.core.arkit import ARKIT_NAMES


@pytest.fixture(scope="module")
def faceverse_bundle_dir(tmp_path_factory):
    from PIL import Image
    from skimage import data

    from invertavatar import paths
    from invertavatar.headmodel import load_head_model
    from invertavatar.headmodel.faceverse_synthetic import synthetic_faceverse_dict
    from invertavatar.pipeline import JobSpec, run_job

    folder = tmp_path_factory.mktemp("fvbundle")
    paths.faceverse_dir().mkdir(parents=True, exist_ok=True)
    model_file = paths.faceverse_dir() / "faceverse_v3_1.npy"
    np.save(model_file, synthetic_faceverse_dict(load_head_model("ict")), allow_pickle=True)
    load_head_model.cache_clear()
    photo = folder / "astronaut.png"
    Image.fromarray(data.astronaut()).resize((256, 256)).save(photo)
    try:
        result = run_job(JobSpec([photo], folder / "fv.avatar", head_model="faceverse", texture_size=128))
    finally:
        model_file.unlink()
        load_head_model.cache_clear()
    return result.bundle


def test_faceverse_bundle_imports_and_exports_with_its_keys(clean_scene, faceverse_bundle_dir, tmp_path):
    bpy = clean_scene
    bpy.context.scene.invertavatar.animate_on_import = False
    mesh_npz = np.load(faceverse_bundle_dir / "mesh.npz")
    assert bpy.ops.invertavatar.import_bundle(filepath=str(faceverse_bundle_dir / "manifest.json")) == {"FINISHED"}
    heads = [o for o in bpy.data.objects if o.type == "MESH" and o.data.shape_keys is not None]
    assert len(heads) == 1 and any(o.type == "ARMATURE" for o in bpy.data.objects)
    head = heads[0]
    assert head.invertavatar.head_model.startswith("faceverse")
    assert len(head.data.vertices) == len(mesh_npz["vertices"]) and len(head.data.polygons) == len(mesh_npz["faces"])
    assert [k.name for k in head.data.shape_keys.key_blocks][1:] == list(ARKIT_NAMES)
    jaw = head.data.shape_keys.key_blocks["jawOpen"]
    rest = head.data.shape_keys.key_blocks[0]
    moved = np.array([(np.array(a.co) - np.array(b.co)) for a, b in zip(jaw.data, rest.data)])
    assert np.abs(moved).max() > 0.002  # the fitted map gives the FaceVerse mesh a real jaw key
    for fmt in ("FBX", "GLB"):
        path = tmp_path / f"avatar.{fmt.lower()}"
        assert bpy.ops.invertavatar.export(filepath=str(path), format=fmt) == {"FINISHED"}
        assert path.stat().st_size > 100_000
    raw = (tmp_path / "avatar.glb").read_bytes()
    gltf = json.loads(raw[20:20 + struct.unpack("<I", raw[12:16])[0]])
    # The head is the mesh with morph targets (a bundle with hair also exports hair-card meshes).
    keyed = [m["extras"]["targetNames"] for m in gltf["meshes"] if "targetNames" in m.get("extras", {})]
    assert keyed == [list(ARKIT_NAMES)]
