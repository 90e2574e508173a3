"""Tests for mrcnn/evaluation/mask_ap.py: exact AP values on hand-made masks."""

import numpy as np
import pytest

from mrcnn.evaluation import mask_ap


def boxes_to_masks(boxes, shape=(20, 20)):
    masks = np.zeros(shape + (len(boxes),), bool)
    for i, (y1, x1, y2, x2) in enumerate(boxes):
        masks[y1:y2, x1:x2, i] = True
    return masks


GT = boxes_to_masks([(0, 0, 4, 4), (10, 10, 14, 14)])


def test_perfect_prediction_scores_one():
    ap = mask_ap.image_ap(GT, np.array([1, 2]), GT, np.array([1, 2]), np.array([0.9, 0.8]),
                             mask_ap.IOU_THRESHOLDS)
    np.testing.assert_array_equal(ap, np.ones(10))


def test_wrong_class_and_duplicates_and_ranking():
    # Detections by score: a duplicate of GT 0 first (scores 0.9, 0.8), then GT 1
    # with the wrong class, then GT 1 right. Each GT is matched once only.
    pred = boxes_to_masks([(0, 0, 4, 4), (0, 0, 4, 4), (10, 10, 14, 14), (10, 10, 14, 14)])
    ap = mask_ap.image_ap(GT, np.array([1, 2]), pred, np.array([1, 1, 1, 2]),
                             np.array([0.9, 0.8, 0.7, 0.6]))
    # Precision 1, 1/2, 1/3, 2/4 at recall 1/2, 1/2, 1/2, 1: envelope 1 then 1/2.
    assert ap[0] == pytest.approx(0.5 * 1 + 0.5 * 0.5)


def test_iou_threshold_sweep():
    # IoU of a 4x4 box with a 4x3 one: 12 / 16 = 0.75.
    pred = boxes_to_masks([(0, 0, 4, 3)])
    ap = mask_ap.image_ap(GT[..., :1], np.array([1]), pred, np.array([1]), np.array([0.5]),
                             mask_ap.IOU_THRESHOLDS)
    np.testing.assert_array_equal(ap, (mask_ap.IOU_THRESHOLDS <= 0.75).astype(float))


def test_no_prediction_zero_no_ground_truth_none_crowds_ignored():
    empty = np.zeros((20, 20, 0), bool)
    ap = mask_ap.image_ap(GT, np.array([1, 2]), empty, np.zeros(0, int), np.zeros(0))
    assert ap.tolist() == [0.0]
    assert mask_ap.image_ap(GT, np.array([-1, -2]), GT, np.array([1, 2]),
                               np.array([0.9, 0.8])) is None


def _reference_matches(iou, gt_class, det_class, scores, thresholds):
    """Plain loops: detections by score, each takes the best free same-class
    ground truth at IoU >= t."""
    order = np.argsort(-scores, kind="stable")
    out = np.zeros((len(thresholds), len(scores)), bool)
    for ti, t in enumerate(thresholds):
        free = np.ones(len(gt_class), bool)
        for rank, d in enumerate(order):
            best, best_iou = -1, -1.0
            for g in range(len(gt_class)):
                if free[g] and gt_class[g] == det_class[d] and iou[g, d] > best_iou:
                    best, best_iou = g, iou[g, d]
            if best >= 0 and best_iou >= t:
                free[best] = False
                out[ti, rank] = True
    return out


def test_sweep_equals_plain_loops_on_random_images():
    rng = np.random.default_rng(0)
    ev = mask_ap.MatterportEval(["BG", "a", "b", "c"])
    expected = {}
    for key in range(40):
        g, d = rng.integers(0, 8), rng.integers(0, 12)
        gt = rng.integers(1, 4, g)
        det = rng.integers(1, 4, d)
        scores = rng.random(d)
        iou = (rng.random((g, d)) * (rng.random((g, d)) < 0.4)).astype(np.float32)
        ev.add_image(key, gt, det, scores, iou)
        expected[key] = _reference_matches(iou, gt, det, scores, mask_ap.IOU_THRESHOLDS)
    for key, _, _, _, matched, gt_matched, _ in ev.matches():
        np.testing.assert_array_equal(matched, expected[key])
        np.testing.assert_array_equal(gt_matched.sum(1), matched.sum(1))


def test_cap_averages_over_images_with_the_class():
    # Image 0: class 1 found, class 2 missed. Image 1: class 2 found, plus a
    # class-1 false positive (no class-1 ground truth there: not counted in cAP).
    ev = mask_ap.MatterportEval(["BG", "one", "two", "three"])
    ev.add_image("a", [1, 2], [1], [0.9], np.array([[0.8], [0.0]]))
    ev.add_image("b", [2], [1, 2], [0.9, 0.8], np.array([[0.0, 0.7]]))
    r = ev.result()
    assert r["cap50"] == {"one": 1.0, "two": 0.5, "three": None}
    # Image a: AP 0.5 (one of two found at precision 1); image b: 1/2 precision at recall 1.
    assert r["ap50"] == pytest.approx((0.5 + 0.5) / 2)
    assert r["ap_by_iou"]["0.75"] == pytest.approx((0.5 + 0.0) / 2)
    assert r["rap"] == pytest.approx(np.mean(r["ap"]))


def test_legacy_matterport_rematches_the_top_detections_ground_truth():
    # Two detections on one ground truth: ours counts one hit; Matterport's
    # compute_matches (gt_match > 0 test) lets the second match it again.
    iou = np.array([[0.9, 0.8]])
    ours = mask_ap.MatterportEval(["BG", "a"])
    ours.add_image(0, [1], [1, 1], [0.9, 0.8], iou)
    legacy = mask_ap.MatterportEval(["BG", "a"], legacy_matterport=True)
    legacy.add_image(0, [1], [1, 1], [0.9, 0.8], iou)
    assert ours.result()["ap50"] == 1.0
    assert ours.matches()[0][4][0].tolist() == [True, False]
    assert legacy.matches()[0][4][0].tolist() == [True, True]


def test_images_without_ground_truth_are_skipped_and_crowds_dropped():
    ev = mask_ap.MatterportEval(["BG", "a"])
    ev.add_image("empty", [], [1], [0.9], np.zeros((0, 1)))
    ev.add_image("crowd", [-1], [1], [0.9], np.array([[1.0]]))
    ev.add_image("one", [1], [], [], np.zeros((1, 0)))
    r = ev.result()
    assert r["skipped"] == ["empty", "crowd"]
    assert r["ap50"] == 0.0 and list(r["per_image"]) == ["one"]


def test_pooled_pr_curve():
    ev = mask_ap.MatterportEval(["BG", "a"], thresholds=(0.5,))
    ev.add_image(0, [1, 1], [1, 1], [0.9, 0.3], np.array([[0.9, 0.0], [0.0, 0.2]]))
    ev.add_image(1, [1], [1], [0.6], np.array([[0.7]]))
    precision, recall = ev.result()["pr_curve"]["0.50"]
    np.testing.assert_allclose(precision, [1, 1, 2 / 3])
    np.testing.assert_allclose(recall, [1 / 3, 2 / 3, 2 / 3])


def test_iou_from_overlaps_equals_mask_iou():
    pred = boxes_to_masks([(0, 0, 4, 3), (9, 9, 14, 14), (0, 0, 0, 0)])
    inter = (GT[..., :, None] & pred[..., None, :]).sum((0, 1))
    iou = mask_ap.iou_from_overlaps(inter, GT.sum((0, 1)), pred.sum((0, 1)))
    np.testing.assert_allclose(iou, mask_ap.mask_iou(GT, pred))
