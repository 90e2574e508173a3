"""mrcnn.utils: Matterport's utils names on small hand-made inputs whose
results are worked out in the comments. No network is used."""

import io
import math
import os

import numpy as np
import pytest
import tensorflow as tf

from mrcnn import utils
from mrcnn.checkpoint import pretrained
from mrcnn.data import image as imaging

MATTERPORT_NAMES = [
    "Dataset", "extract_bboxes", "compute_iou", "compute_overlaps", "compute_overlaps_masks",
    "non_max_suppression", "box_refinement", "compute_matches", "compute_ap", "compute_recall",
    "compute_ap_range", "resize_image", "resize_mask", "minimize_mask", "expand_mask",
    "unmold_mask", "generate_anchors", "generate_pyramid_anchors", "norm_boxes",
    "denorm_boxes", "batch_slice", "download_trained_weights", "COCO_MODEL_URL",
    # Not in the list, but public in Matterport's utils too:
    "apply_box_deltas", "box_refinement_graph", "trim_zeros", "resize",
]


def test_matterport_names_exist():
    missing = [n for n in MATTERPORT_NAMES if not hasattr(utils, n)]
    assert missing == []
    assert sorted(utils.__all__) == sorted(MATTERPORT_NAMES)
    assert utils.COCO_MODEL_URL.endswith("/v2.0/mask_rcnn_coco.h5")
    from mrcnn.data.dataset import Dataset
    assert utils.Dataset is Dataset


# ------------------------------------------------------------------ boxes
def test_extract_bboxes_exclusive_corners_and_empty_masks():
    mask = np.zeros((6, 8, 3), bool)
    mask[1:3, 2:5, 0] = True   # rows 1-2, cols 2-4 -> (1, 2, 3, 5)
    mask[5, 7, 2] = True       # one pixel in the corner -> (5, 7, 6, 8)
    boxes = utils.extract_bboxes(mask)
    assert boxes.dtype == np.int32
    np.testing.assert_array_equal(boxes, [[1, 2, 3, 5], [0, 0, 0, 0], [5, 7, 6, 8]])


A = [0, 0, 10, 10]      # area 100
HALF_A = [0, 0, 10, 5]  # inside A, area 50: IoU 50 / 100 = 0.5
CORNER = [5, 5, 15, 15]  # overlaps A on 5 x 5: IoU 25 / (100 + 100 - 25) = 1/7


def test_compute_overlaps_known_ious():
    overlaps = utils.compute_overlaps(np.array([A]), np.array([HALF_A, CORNER, [20, 20, 30, 30]]))
    assert overlaps.dtype == np.float64 and overlaps.shape == (1, 3)
    # Integer boxes: float64 arithmetic, as NumPy's int / int in Matterport.
    assert overlaps[0, 0] == 0.5 and overlaps[0, 1] == 25 / 175 and overlaps[0, 2] == 0.0
    # float32 boxes are computed in float32, as in Matterport.
    f32 = utils.compute_overlaps(np.array([A], np.float32), np.array([CORNER], np.float32))
    assert f32[0, 0] == float(np.float32(25) / np.float32(175)) != 25 / 175


def test_compute_iou_is_a_row_of_overlaps():
    boxes = np.array([HALF_A, CORNER])
    iou = utils.compute_iou(np.array(A), boxes, 100.0, np.array([50.0, 100.0]))
    np.testing.assert_array_equal(iou, [0.5, 25 / 175])


def test_compute_overlaps_masks():
    m1 = np.zeros((4, 4, 2), np.float32)
    m1[:2, :2, 0] = 1.0   # 4 pixels
    m1[:, :, 1] = 0.5     # not > 0.5: an empty mask
    m2 = np.zeros((4, 4, 1), np.float32)
    m2[:2, :, 0] = 0.6    # 8 pixels holding the 4 of m1[..., 0]: IoU 4 / 8
    np.testing.assert_array_equal(utils.compute_overlaps_masks(m1, m2), [[0.5], [0.0]])


def test_non_max_suppression_threshold_is_strict_and_order_is_by_score():
    boxes = np.array([HALF_A, A, [20, 20, 30, 30]])
    scores = np.array([0.8, 0.9, 0.7])
    # IoU(A, HALF_A) = 0.5 is not > 0.5: all kept, best first.
    np.testing.assert_array_equal(utils.non_max_suppression(boxes, scores, 0.5), [1, 0, 2])
    keep = utils.non_max_suppression(boxes, scores, 0.4)
    assert keep.dtype == np.int32
    np.testing.assert_array_equal(keep, [1, 2])


def test_non_max_suppression_ties_keep_the_later_box():
    # Equal scores: Matterport's argsort()[::-1] looks at the later box first.
    np.testing.assert_array_equal(utils.non_max_suppression(np.array([A, A]), np.ones(2), 0.5), [1])


def test_box_refinement():
    # box: centre (5, 5), 10 x 10; gt: centre (15, 10), 20 high, 10 wide.
    deltas = utils.box_refinement(np.array([A]), np.array([[5, 5, 25, 15]]))
    assert deltas.dtype == np.float32
    np.testing.assert_allclose(deltas, [[1.0, 0.5, math.log(2), 0.0]], rtol=1e-6)


def test_norm_denorm_boxes():
    shape = (11, 21)  # scale (10, 20), (y2, x2) shifted by 1
    boxes = np.array([[0, 0, 11, 21], [5, 10, 6, 11]])
    normed = utils.norm_boxes(boxes, shape)
    assert normed.dtype == np.float32
    np.testing.assert_array_equal(normed, [[0, 0, 1, 1], [0.5, 0.5, 0.5, 0.5]])
    back = utils.denorm_boxes(normed, shape)
    assert back.dtype == np.int32
    np.testing.assert_array_equal(back, boxes)


# ---------------------------------------------------------------- anchors
def test_generate_anchors_count_and_order():
    anchors = utils.generate_anchors([32], [0.5, 1, 2], [2, 3], 4, 1)
    assert anchors.shape == (2 * 3 * 3, 4)
    # First: centre (0, 0), ratio 0.5 -> height 32 * sqrt(2), width 32 / sqrt(2).
    h, w = 32 * math.sqrt(2), 32 / math.sqrt(2)
    np.testing.assert_allclose(anchors[0], [-h / 2, -w / 2, h / 2, w / 2], rtol=1e-6)
    # Fifth: second position (y 0, x 4), ratio 1.
    np.testing.assert_array_equal(anchors[4], [-16, -12, 16, 20])
    # Anchor stride 2 on a 3 x 3 map: positions 0 and 2 (x 8 pixels) per axis.
    strided = utils.generate_anchors(16, [1], [3, 3], 4, 2)
    np.testing.assert_array_equal(strided[:, 0] + 8, [0, 0, 8, 8])
    np.testing.assert_array_equal(strided[:, 1] + 8, [0, 8, 0, 8])


def test_generate_anchors_several_scales_are_ratio_major():
    anchors = utils.generate_anchors([32, 64], [0.25, 4], [1, 1], 4, 1)
    # (32, 0.25), (64, 0.25), (32, 4), (64, 4): heights 64, 128, 16, 32.
    np.testing.assert_array_equal(anchors[:, 2] - anchors[:, 0], [64, 128, 16, 32])


def test_generate_pyramid_anchors_level_by_level():
    anchors = utils.generate_pyramid_anchors((32, 64), [1], np.array([[2, 2], [1, 1]]), [4, 8], 1)
    np.testing.assert_array_equal(anchors, [
        [-16, -16, 16, 16], [-16, -12, 16, 20], [-12, -16, 20, 16], [-12, -12, 20, 20],
        [-32, -32, 32, 32],
    ])


# ---------------------------------------------------------- images, masks
def test_resize_image_truncates_where_the_model_rounds():
    # A 2 x 2 image, columns 0 and 3, doubled: output column 1 samples input
    # column 0.25 -> 0.75 * 0 + 0.25 * 3 = 0.75; column 2 samples 0.75 -> 2.25.
    image = np.zeros((2, 2, 3), np.uint8)
    image[:, 1] = 3
    out, window, scale, padding, crop = utils.resize_image(image, min_dim=4, max_dim=4)
    ours = imaging.resize_image(image, min_dim=4, max_dim=4)[0]
    assert out.dtype == np.uint8 and out.shape == (4, 4, 3)
    assert (window, scale, padding, crop) == ((0, 0, 4, 4), 2.0, [(0, 0), (0, 0), (0, 0)], None)
    np.testing.assert_array_equal(out[1:3, 1:3, 0], [[0, 2], [0, 2]])   # truncated
    np.testing.assert_array_equal(ours[1:3, 1:3, 0], [[1, 2], [1, 2]])  # rounded


def test_resize_mask_follows_the_image_geometry():
    mask = np.zeros((2, 3, 1), bool)
    mask[0, 0, 0] = True
    image = np.zeros((2, 3, 3), np.uint8)
    out, _, scale, padding, _ = utils.resize_image(image, min_dim=4, max_dim=8)
    resized = utils.resize_mask(mask, scale, padding)
    assert resized.shape[:2] == out.shape[:2] == (8, 8)
    # Scale 2 -> 4 x 6, padded (2, 2) rows and (1, 1) columns: the pixel
    # becomes rows 2-3, columns 1-2.
    expected = np.zeros((8, 8), bool)
    expected[2:4, 1:3] = True
    np.testing.assert_array_equal(resized[..., 0], expected)


# A 4 x 4 mini-mask pattern of whole cells; doubled it is an 8 x 8 mask
# whose tight box is the whole 8 x 8 square.
PATTERN = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1], [1, 1, 1, 1]], bool)


def test_minimize_expand_round_trip():
    mask = np.zeros((16, 16, 1), bool)
    mask[4:12, 2:10, 0] = np.kron(PATTERN, np.ones((2, 2), bool))
    bbox = utils.extract_bboxes(mask)
    np.testing.assert_array_equal(bbox, [[4, 2, 12, 10]])
    mini = utils.minimize_mask(bbox, mask, (4, 4))
    # Each mini cell samples the centre of a uniform 2 x 2 block.
    assert mini.shape == (4, 4, 1) and mini.dtype == bool
    np.testing.assert_array_equal(mini[..., 0], PATTERN)
    np.testing.assert_array_equal(utils.expand_mask(bbox, mini, (16, 16, 3)), mask)


def test_minimize_mask_rejects_empty_boxes():
    with pytest.raises(ValueError, match="zero area"):
        utils.minimize_mask(np.array([[2, 2, 2, 5]]), np.ones((6, 6, 1), bool), (4, 4))


def test_unmold_mask():
    # A 2 x 2 mask with its top-left cell on, in a 4 x 4 box at (2, 2):
    # pixels 2 and 3 of each axis sit at cell coordinates 0.25 and 0.75,
    # interpolated 0.75 (x 0.75 = 0.5625 >= 0.5); pixels 4, 5 get <= 0.25.
    full = utils.unmold_mask(np.array([[1.0, 0.0], [0.0, 0.0]]), np.array([2, 2, 6, 6]), (8, 8, 3))
    expected = np.zeros((8, 8), bool)
    expected[2:4, 2:4] = True
    assert full.dtype == bool
    np.testing.assert_array_equal(full, expected)


# ------------------------------------------------------------- evaluation
def masks_of(*cells, shape=(4, 8)):
    """[H, W, N] masks; each instance given as a (rows, cols) slice pair."""
    out = np.zeros(shape + (len(cells),), bool)
    for i, (rows, cols) in enumerate(cells):
        out[rows, cols, i] = True
    return out


LEFT = (slice(0, 4), slice(0, 2))   # 8 pixels
RIGHT = (slice(0, 4), slice(6, 8))  # 8 pixels
MIDDLE = (slice(0, 4), slice(3, 5))  # touches neither
GT = {"gt_boxes": np.array([[0, 0, 4, 2], [0, 6, 4, 8]]), "gt_class_ids": np.array([1, 1]),
      "gt_masks": masks_of(LEFT, RIGHT)}


def preds(*cells, scores, class_ids=None):
    masks = masks_of(*cells)
    return {"pred_boxes": utils.extract_bboxes(masks),
            "pred_class_ids": np.ones(len(cells), int) if class_ids is None else class_ids,
            "pred_scores": np.array(scores), "pred_masks": masks}


def test_compute_ap_perfect_prediction():
    ap, precisions, recalls, overlaps = utils.compute_ap(
        **GT, **preds(RIGHT, LEFT, scores=[0.8, 0.9]))
    assert ap == 1.0
    np.testing.assert_array_equal(precisions, [1, 1, 1, 0])
    np.testing.assert_array_equal(recalls, [0, 0.5, 1, 1])
    # Rows in score order: LEFT (0.9), then RIGHT.
    np.testing.assert_array_equal(overlaps, [[1, 0], [0, 1]])


def test_compute_ap_with_a_false_positive_between_hits():
    # Hit, miss, hit: precision 1, 1/2, 2/3 -> envelope 1, 2/3, 2/3; recall
    # 0.5, 0.5, 1 -> AP = 0.5 * 1 + 0.5 * 2/3 = 5/6.
    ap, precisions, recalls, _ = utils.compute_ap(
        **GT, **preds(LEFT, MIDDLE, RIGHT, scores=[0.9, 0.8, 0.7]))
    assert ap == pytest.approx(5 / 6, abs=1e-12)
    np.testing.assert_allclose(precisions, [1, 1, 2 / 3, 2 / 3, 0])
    np.testing.assert_array_equal(recalls, [0, 0.5, 0.5, 1, 1])


def test_compute_ap_class_must_agree():
    ap, *_ = utils.compute_ap(**GT, **preds(LEFT, RIGHT, scores=[0.9, 0.8],
                                            class_ids=np.array([2, 1])))
    # Miss, then hit: precision 0, 1/2 -> AP = 0.5 * 0.5.
    assert ap == 0.25


def test_compute_matches_duplicate_of_the_top_prediction():
    # LEFT detected twice (0.9, 0.8), then RIGHT (0.7).
    p = preds(LEFT, LEFT, RIGHT, scores=[0.9, 0.8, 0.7])
    # Matterport: LEFT taken by prediction 0 stays free (gt_match 0 is not
    # > 0), so the duplicate is a second hit and overwrites gt_match.
    gt_match, pred_match, _ = utils.compute_matches(**GT, **p)
    np.testing.assert_array_equal(gt_match, [1, 2])
    np.testing.assert_array_equal(pred_match, [0, 0, 1])
    # Ours: each ground truth matched once; the duplicate is a false positive.
    gt_match, pred_match, _ = utils.compute_matches(**GT, **p, legacy_matterport=False)
    np.testing.assert_array_equal(gt_match, [0, 2])
    np.testing.assert_array_equal(pred_match, [0, -1, 1])
    # compute_ap keeps Matterport's rule: three hits, recall 0.5, 1, 1.5 -> 1.5.
    assert utils.compute_ap(**GT, **p)[0] == 1.5


def test_compute_matches_ties_and_padding():
    # Equal scores: the later prediction comes first in Matterport's order.
    p = preds(LEFT, RIGHT, scores=[0.5, 0.5])
    gt_match, pred_match, overlaps = utils.compute_matches(**GT, **p)
    np.testing.assert_array_equal(pred_match, [1, 0])  # sorted: RIGHT, LEFT
    np.testing.assert_array_equal(gt_match, [1, 0])
    np.testing.assert_array_equal(overlaps, [[0, 1], [1, 0]])
    # Zero rows padding the boxes (and their masks, scores) are dropped.
    padded_gt = {"gt_boxes": np.vstack([GT["gt_boxes"], [[0, 0, 0, 0]]]),
                 "gt_class_ids": np.array([1, 1, 0]),
                 "gt_masks": np.concatenate([GT["gt_masks"], np.zeros((4, 8, 1), bool)], -1)}
    p = preds(RIGHT, scores=[0.5])
    p = {"pred_boxes": np.vstack([p["pred_boxes"], [[0, 0, 0, 0]]]),
         "pred_class_ids": np.array([1, 0]), "pred_scores": np.array([0.5, 0.9]),
         "pred_masks": np.concatenate([p["pred_masks"], np.ones((4, 8, 1), bool)], -1)}
    gt_match, pred_match, overlaps = utils.compute_matches(**padded_gt, **p)
    np.testing.assert_array_equal(gt_match, [-1, 0])
    np.testing.assert_array_equal(pred_match, [1])
    assert overlaps.shape == (1, 2)


def test_compute_matches_equal_ious_take_the_later_ground_truth():
    # The prediction covers 2 pixels of each 2-pixel ground truth: IoU 2/4 each.
    gt = {"gt_boxes": np.array([[0, 0, 1, 2], [1, 0, 2, 2]]), "gt_class_ids": np.array([1, 1]),
          "gt_masks": masks_of((slice(0, 1), slice(0, 2)), (slice(1, 2), slice(0, 2)))}
    gt_match, pred_match, _ = utils.compute_matches(**gt, **preds((slice(0, 2), slice(0, 2)),
                                                                  scores=[0.9]))
    np.testing.assert_array_equal(pred_match, [1])
    np.testing.assert_array_equal(gt_match, [-1, 0])


def test_compute_matches_thresholds_compare_in_float64():
    # IoU 7 / 10 is float32(0.7) = 0.69999999, below the float64 0.7.
    gt = {"gt_boxes": np.array([[0, 0, 1, 10]]), "gt_class_ids": np.array([1]),
          "gt_masks": masks_of((slice(0, 1), slice(0, 10)), shape=(1, 10))}
    p = {"pred_boxes": np.array([[0, 0, 1, 7]]), "pred_class_ids": np.array([1]),
         "pred_scores": np.array([0.9]),
         "pred_masks": masks_of((slice(0, 1), slice(0, 7)), shape=(1, 10))}
    assert float(np.float32(7) / np.float32(10)) < 0.7
    assert utils.compute_matches(**gt, **p, iou_threshold=0.7)[1][0] == -1
    assert utils.compute_matches(**gt, **p, iou_threshold=0.69)[1][0] == 0
    # score_threshold is a second bound on the IoU.
    assert utils.compute_matches(**gt, **p, iou_threshold=0.5, score_threshold=0.8)[1][0] == -1


def test_compute_ap_range(capsys):
    # The prediction on LEFT covers its 8 pixels and 4 more: IoU 8 / 12 = 2/3.
    p = preds((slice(0, 4), slice(0, 3)), RIGHT, scores=[0.9, 0.8])
    # compute_ap_range names its arguments gt_box, ...: positional here.
    args = [*GT.values(), *p.values()]
    mean = utils.compute_ap_range(*args, verbose=0)
    # At 0.5, 0.55, 0.6, 0.65 both hit (AP 1); at 0.7 ... 0.95 only RIGHT,
    # second: precision 1/2 at recall 1/2 (AP 0.25). Mean (4 + 6 * 0.25) / 10.
    assert mean == pytest.approx(0.55, abs=1e-12)
    assert capsys.readouterr().out == ""
    assert utils.compute_ap_range(*args, iou_thresholds=[0.5, 0.75]) == 0.625
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("AP @0.50:") and out[-1].startswith("AP @0.50-0.75:")
    assert len(out) == 3


def test_compute_recall():
    gt = np.array([A, [20, 20, 30, 30], [40, 40, 50, 50]])
    pred = np.array([A, HALF_A, [20, 20, 30, 25], [60, 60, 70, 70]])
    # Best IoUs: 1 (gt 0), 0.5 (gt 0), 0.5 (gt 1), 0: two of three found at 0.5.
    recall, positive_ids = utils.compute_recall(pred, gt, 0.5)
    assert recall == 2 / 3
    np.testing.assert_array_equal(positive_ids, [0, 1, 2])
    recall, positive_ids = utils.compute_recall(pred, gt, 0.6)
    assert recall == 1 / 3
    np.testing.assert_array_equal(positive_ids, [0])


# ------------------------------------------------------------------- misc
def test_batch_slice_over_a_batch_of_three():
    x = tf.reshape(tf.range(6, dtype=tf.float32), [3, 2])  # rows (0, 1), (2, 3), (4, 5)
    y = tf.constant([10.0, 20.0, 30.0])

    @tf.function
    def per_item(row, offset):
        return tf.reduce_sum(row) + offset, row * 2

    sums, doubled = utils.batch_slice([x, y], per_item, 3, names=["sums", "doubled"])
    np.testing.assert_array_equal(sums, [11, 25, 39])
    np.testing.assert_array_equal(doubled, x.numpy() * 2)
    # One input, one output: a tensor, not a list.
    single = utils.batch_slice(x, lambda row: tf.reduce_max(row), 3)
    np.testing.assert_array_equal(single, [1, 3, 5])


def test_download_trained_weights_offline_error(tmp_path, monkeypatch):
    def offline(url, timeout):
        raise OSError(f"no network for {url}")

    monkeypatch.setattr(pretrained.urllib.request, "urlopen", offline)
    target = tmp_path / "my_coco.h5"
    with pytest.raises(FileNotFoundError) as err:
        utils.download_trained_weights(str(target), verbose=0)
    msg = str(err.value)
    assert utils.COCO_MODEL_URL in msg and str(target) in msg and "no network" in msg
    assert os.listdir(tmp_path) == []


def test_download_trained_weights_to_any_file_name(tmp_path, monkeypatch, capsys):
    payload = b"\x89HDF\r\n\x1a\n" + b"\0" * 8

    urls = []

    def fake_urlopen(url, timeout):
        urls.append(url)
        response = io.BytesIO(payload)
        response.headers = {"Content-Length": str(len(payload))}
        return response

    monkeypatch.setattr(pretrained.urllib.request, "urlopen", fake_urlopen)
    target = tmp_path / "weights" / "coco.h5"
    assert utils.download_trained_weights(str(target)) == str(target)
    assert urls == [utils.COCO_MODEL_URL] and target.read_bytes() == payload
    assert str(target) in capsys.readouterr().out


def test_apply_box_deltas_inverts_box_refinement():
    box = np.array([[10.0, 20.0, 30.0, 60.0]])
    gt = np.array([[12.0, 10.0, 36.0, 70.0]])
    deltas = utils.box_refinement(box, gt)
    # centre (20, 40) size (20, 40) -> centre (24, 40) size (24, 60)
    np.testing.assert_allclose(deltas, [[0.2, 0.0, np.log(1.2), np.log(1.5)]], rtol=1e-6)
    np.testing.assert_allclose(utils.box_refinement_graph(box, gt).numpy(), deltas)
    np.testing.assert_allclose(utils.apply_box_deltas(box, deltas), gt, rtol=1e-6)


def test_trim_zeros_drops_padding_rows():
    x = np.array([[0, 0, 0, 0], [1, 2, 3, 4], [0, 0, 0, 0], [0, 0, 0, 5]])
    np.testing.assert_array_equal(utils.trim_zeros(x), [[1, 2, 3, 4], [0, 0, 0, 5]])


def test_resize_is_skimage_resize_without_anti_aliasing():
    image = np.zeros((4, 4), np.float64)
    image[:2, :2] = 1.0
    out = utils.resize(image, (2, 2), order=0)
    np.testing.assert_array_equal(out, [[1.0, 0.0], [0.0, 0.0]])
    # Samples at x = -0.25, 0.25, 0.75, 1.25; mode "constant" reads cval 0
    # beyond the edges (Matterport's default), so the ends blend with 0.
    up = utils.resize(np.array([[0.0, 1.0]]), (1, 4), order=1)
    np.testing.assert_allclose(up, [[0.0, 0.25, 0.75, 0.75]])
