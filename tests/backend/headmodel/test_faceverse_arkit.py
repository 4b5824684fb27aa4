"""The ARKit map of a FaceVerse file without exBase_52, fitted through ICT's shapes on a synthetic file."""

from __future__ import annotations

import numpy as np
import pytest

from invertavatar.headmodel.arkit import ARKIT_NAMES
from invertavatar.headmodel.faceverse import faceverse_from_dict
from invertavatar.headmodel.faceverse_arkit import MAX_RESIDUAL, cached_transfer, with_arkit_transfer
from invertavatar.headmodel.faceverse_synthetic import (UNREPRESENTABLE, synthetic_expression_truth,
                                                        synthetic_faceverse_dict)


@pytest.fixture(scope="module")
def faceverse(ict_model):
    return faceverse_from_dict(synthetic_faceverse_dict(ict_model), checksum="synthetic-faceverse-test")


@pytest.fixture(scope="module")
def transfer(ict_model, faceverse):
    return cached_transfer(ict_model, faceverse)


def test_left_out_shapes_are_named_and_the_rest_fit(transfer):
    assert set(UNREPRESENTABLE) == {"cheekPuff_L", "cheekPuff_R", "noseSneer_L", "noseSneer_R"}
    # ARKit's cheekPuff is ICT's two halves; tongueOut: ICT has no shape to transfer.
    assert set(transfer.missing) == {"cheekPuff", "noseSneerLeft", "noseSneerRight", "tongueOut"}
    assert "ICT has no such shape" in transfer.reasons["tongueOut"]
    for k, name in enumerate(ARKIT_NAMES):
        if name not in transfer.missing:
            assert transfer.residual[k] < MAX_RESIDUAL, name
    assert transfer.matched_vertices > 5000


def test_a_shape_in_the_basis_maps_to_its_own_component(ict_model, transfer):
    mix = synthetic_expression_truth(ict_model)
    for name, ict_name in (("jawOpen", "jawOpen"), ("mouthSmileLeft", "mouthSmile_L"), ("browInnerUp", None)):
        weights = transfer.weights[ARKIT_NAMES.index(name)]
        if ict_name is None:  # ICT splits browInnerUp in halves: both components carry it
            columns = {int(np.argmax(mix[ict_model.expression_names.index(f"browInnerUp_{s}")])) for s in "LR"}
            assert set(np.argsort(weights)[-2:].tolist()) == columns
        else:
            column = int(np.argmax(mix[ict_model.expression_names.index(ict_name)]))
            assert int(np.argmax(weights)) == column and weights[column] > 0.6
    assert (transfer.weights >= 0).all()  # FaceVerse coefficients stay non-negative


def test_the_map_is_cached_and_drives_52_keys(ict_model, faceverse, transfer):
    again = cached_transfer(ict_model, faceverse)  # from the cache file this time
    np.testing.assert_array_equal(again.weights, transfer.weights)
    assert again.missing == transfer.missing and again.reasons == transfer.reasons
    model = with_arkit_transfer(faceverse, ict_model)
    deltas = model.arkit_deltas()
    assert deltas.shape == (52, model.n_vertices, 3)
    assert not deltas[~model.arkit.available].any() and deltas[model.arkit.available].any(axis=(1, 2)).all()
    # Reading ARKit weights back from FaceVerse coefficients inverts the map.
    arkit = np.zeros(52, np.float32)
    arkit[ARKIT_NAMES.index("jawOpen")] = 0.7
    back = model.arkit.from_model @ (model.arkit.matrix @ arkit)
    assert abs(back[ARKIT_NAMES.index("jawOpen")] - 0.7) < 0.05
