"""The model learns: it overfits a handful of shape images on the CPU."""

import numpy as np
import pytest

from samples.shapes import best_mask_ious, train_and_check


@pytest.mark.slow
def test_overfits_a_few_images_and_recovers_their_masks(tmp_path):
    ious = train_and_check(images=4, epochs=4, model_dir=str(tmp_path))
    # Every ground-truth instance is found with its class and a good mask.
    assert len(ious) >= 4
    assert (ious > 0.5).all(), ious


def test_best_mask_ious_matches_by_class():
    gt = np.zeros((4, 4, 2), bool)
    gt[:2, :2, 0] = True
    gt[2:, 2:, 1] = True
    det = np.zeros((4, 4, 2), bool)
    det[:2, :1, 0] = True  # half of instance 0, right class
    det[2:, 2:, 1] = True  # all of instance 1, wrong class
    result = {"masks": det, "class_ids": np.array([1, 3])}
    np.testing.assert_allclose(best_mask_ious(gt, np.array([1, 2]), result), [0.5, 0.0])
