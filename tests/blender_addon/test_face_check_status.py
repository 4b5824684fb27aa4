"""The backend's human-face check in the add-on: the refusal and the artwork warning reach the status line; the
bundle reader turns the manifest's ``face_check`` into that note (stub backend, synchronous operator path)."""

import json
import shutil

import pytest

from stub_backend import StubBackend

from blender_addon.core.bundle import ARTWORK_NOTE, read_bundle

REFUSAL = {"code": "not_a_human_face",
           "message": "astronaut.png does not show a human face: an independent human-face detector does not "
                      "confirm the face that the face landmarker found.",
           "hint": "Use a photo or clip of a person's face. If this is a human face, run again with "
                   "--accept-any-face (API option accept_any_face)."}


def _bundle_with(ict_bundle_dir, tmp_path, face_check):
    folder = tmp_path / "art.avatar"
    shutil.copytree(ict_bundle_dir, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["face_check"] = face_check
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_face_note_from_the_manifest(ict_bundle_dir, tmp_path):
    assert read_bundle(ict_bundle_dir).face_note == ""  # made before the check existed
    art = read_bundle(_bundle_with(ict_bundle_dir, tmp_path, {"looks_like_artwork": True, "not_human": 0}))
    assert art.face_note == ARTWORK_NOTE
    shutil.rmtree(tmp_path / "art.avatar")
    forced = read_bundle(_bundle_with(ict_bundle_dir, tmp_path, {"accept_any_face": True, "not_human": 1}))
    assert "does not look human" in forced.face_note


class RefusingBackend(StubBackend):
    """The stub backend whose job fails the way the human-face check fails it."""

    def _advance(self, job: dict) -> None:
        if job["state"] == "queued":
            job.update(state="failed", stage="detect", message=REFUSAL["message"], error=REFUSAL)


def test_an_artwork_avatar_is_built_and_the_status_line_says_so(scene, ict_bundle_dir, tmp_path):
    bpy, prefs = scene
    bundle = _bundle_with(ict_bundle_dir, tmp_path, {"looks_like_artwork": True, "not_human": 0})
    with StubBackend(bundle) as stub:
        prefs.remote_url = stub.url
        assert bpy.ops.invertavatar.reconstruct() == {"FINISHED"}
    job = bpy.context.window_manager.invertavatar
    assert "ready" in job.status and ARTWORK_NOTE in job.status and not job.status_is_error


def test_a_refused_face_shows_the_error_and_its_hint(scene, ict_bundle_dir):
    bpy, prefs = scene
    with RefusingBackend(ict_bundle_dir) as stub:
        prefs.remote_url = stub.url
        with pytest.raises(RuntimeError, match="does not show a human face"):
            bpy.ops.invertavatar.reconstruct()
    job = bpy.context.window_manager.invertavatar
    assert job.status_is_error and not job.running
    assert "does not show a human face" in job.status and "--accept-any-face" in job.status


@pytest.mark.parametrize("prop, away_from_default, absent, sent", [
    ("accept_any_face", True, b"accept_any_face", b'"accept_any_face": true'),
    ("import_hair", False, b'"hair"', b'"hair": false'),
])
def test_options_older_backends_lack_are_sent_only_off_their_default(scene, ict_bundle_dir, prop, away_from_default,
                                                                      absent, sent):
    bpy, prefs = scene
    props = bpy.context.scene.invertavatar
    with StubBackend(ict_bundle_dir) as stub:
        prefs.remote_url = stub.url
        assert bpy.ops.invertavatar.reconstruct() == {"FINISHED"}
        setattr(props, prop, away_from_default)
        try:
            assert bpy.ops.invertavatar.reconstruct() == {"FINISHED"}
        finally:
            setattr(props, prop, not away_from_default)
    assert absent not in stub.uploads[0]["body"]
    assert sent in stub.uploads[1]["body"]
