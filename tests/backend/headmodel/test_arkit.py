"""ARKit mapping: Apple's 52 names, ICT's L/R shapes, the documented exceptions."""

from __future__ import annotations

import numpy as np

from invertavatar.headmodel.arkit import ARKIT_NAMES, map_sided_names


def test_52_unique_apple_names():
    assert len(ARKIT_NAMES) == 52 == len(set(ARKIT_NAMES))
    assert ARKIT_NAMES[0] == "eyeBlinkLeft" and ARKIT_NAMES[-1] == "tongueOut"


def test_ict_maps_one_to_one_except_documented_pairs_and_tongue(ict_model):
    arkit = ict_model.arkit
    assert arkit.missing == ("tongueOut",)
    names = ict_model.expression_names
    for k, name in enumerate(ARKIT_NAMES):
        sources = [names[e] for e in np.nonzero(arkit.to_arkit[k])[0]]
        if name in ("browInnerUp", "cheekPuff"):
            assert sorted(sources) == [f"{name}_L", f"{name}_R"]
        elif name == "tongueOut":
            assert sources == []
        else:
            assert len(sources) == 1
            assert sources[0].replace("_L", "Left").replace("_R", "Right") == name


def test_paired_arkit_delta_is_sum_of_halves(ict_model):
    deltas = ict_model.arkit_deltas()
    names = ict_model.expression_names
    expected = (ict_model.expression_basis[names.index("cheekPuff_L")]
                + ict_model.expression_basis[names.index("cheekPuff_R")])
    np.testing.assert_allclose(deltas[ARKIT_NAMES.index("cheekPuff")], expected, atol=1e-7)
    assert not deltas[ARKIT_NAMES.index("tongueOut")].any()
    left = deltas[ARKIT_NAMES.index("eyeBlinkLeft")]
    moved = np.linalg.norm(left, axis=1) > 1e-4
    assert ict_model.vertices[moved, 0].mean() > 0  # the subject's left eye is on +X


def test_arkit_weights_drive_model_shapes():
    arkit = map_sided_names(["browInnerUp_L", "browInnerUp_R", "jawOpen"])
    weights = np.zeros(52, np.float32)
    weights[ARKIT_NAMES.index("browInnerUp")] = 0.7
    weights[ARKIT_NAMES.index("jawOpen")] = 0.2
    np.testing.assert_allclose(arkit.matrix @ weights, [0.7, 0.7, 0.2])
