"""Tests for mrcnn/evaluation.py: exact AP values on hand-made masks."""

import numpy as np
import pytest

from mrcnn import evaluation


def boxes_to_masks(boxes, shape=(20, 20)):
    masks = np.zeros(shape + (len(boxes),), bool)
    for i, (y1, x1, y2, x2) in enumerate(boxes):
        masks[y1:y2, x1:x2, i] = True
    return masks


GT = boxes_to_masks([(0, 0, 4, 4), (10, 10, 14, 14)])


def test_perfect_prediction_scores_one():
    ap = evaluation.image_ap(GT, np.array([1, 2]), GT, np.array([1, 2]), np.array([0.9, 0.8]),
                             evaluation.IOU_THRESHOLDS)
    np.testing.assert_array_equal(ap, np.ones(10))


def test_wrong_class_and_duplicates_and_ranking():
    # Detections by score: a duplicate of GT 0 first (scores 0.9, 0.8), then GT 1
    # with the wrong class, then GT 1 right. Each GT is matched once only.
    pred = boxes_to_masks([(0, 0, 4, 4), (0, 0, 4, 4), (10, 10, 14, 14), (10, 10, 14, 14)])
    ap = evaluation.image_ap(GT, np.array([1, 2]), pred, np.array([1, 1, 1, 2]),
                             np.array([0.9, 0.8, 0.7, 0.6]))
    # Precision 1, 1/2, 1/3, 2/4 at recall 1/2, 1/2, 1/2, 1: envelope 1 then 1/2.
    assert ap[0] == pytest.approx(0.5 * 1 + 0.5 * 0.5)


def test_iou_threshold_sweep():
    # IoU of a 4x4 box with a 4x3 one: 12 / 16 = 0.75.
    pred = boxes_to_masks([(0, 0, 4, 3)])
    ap = evaluation.image_ap(GT[..., :1], np.array([1]), pred, np.array([1]), np.array([0.5]),
                             evaluation.IOU_THRESHOLDS)
    np.testing.assert_array_equal(ap, (evaluation.IOU_THRESHOLDS <= 0.75).astype(float))


def test_no_prediction_zero_no_ground_truth_none_crowds_ignored():
    empty = np.zeros((20, 20, 0), bool)
    ap = evaluation.image_ap(GT, np.array([1, 2]), empty, np.zeros(0, int), np.zeros(0))
    assert ap.tolist() == [0.0]
    assert evaluation.image_ap(GT, np.array([-1, -2]), GT, np.array([1, 2]),
                               np.array([0.9, 0.8])) is None
