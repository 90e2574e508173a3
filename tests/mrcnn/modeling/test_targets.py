"""Exact-value tests for mrcnn/modeling/targets.py: RPN targets and detection targets."""

import numpy as np
import tensorflow as tf

from mrcnn.data import masks
from mrcnn.modeling import anchors as anchors_lib
from mrcnn.modeling import box_ops, targets

STD = np.array([0.1, 0.1, 0.2, 0.2], np.float32)


def _encode(boxes, gt):
    return box_ops.encode(np.asarray(boxes, np.float32), np.asarray(gt, np.float32)).numpy() / STD


# ----------------------------------------------------------------- rpn_targets
# Matterport's Config values, given explicitly: the functions have no defaults.
MATTERPORT_RPN_TARGETS = {"anchors_per_image": 256, "std_dev": STD}
MATTERPORT_HEAD_TARGETS = {"positive_fraction": 0.33, "std_dev": STD, "mask_shape": (28, 28),
                           "include_gt": True, "mini_masks": True}


def rpn_targets(anchors, class_ids, boxes, **kw):
    return targets.rpn_targets(anchors, class_ids, boxes, **{**MATTERPORT_RPN_TARGETS, **kw})


GT = [10.0, 10.0, 40.0, 40.0]
SMALL_ANCHORS = np.array(
    [
        [100, 100, 130, 130],  # far away -> negative
        GT,  # equal to the gt -> positive
        [12, 12, 42, 42],  # IoU 784 / 1016 = 0.77 -> positive
        [20, 20, 50, 50],  # IoU 400 / 1400 = 0.29 -> negative
        [10, 16, 40, 46],  # IoU 720 / 1080 = 0.67 -> neutral
        [200, 10, 230, 40],  # far away -> negative
    ],
    np.float32,
)


def test_rpn_targets_small_case():
    match, bbox = rpn_targets(SMALL_ANCHORS, [1], [GT], anchors_per_image=8, seed=0)
    match, bbox = match.numpy(), bbox.numpy()
    assert match.dtype == np.int32 and match.shape == (6,)
    np.testing.assert_array_equal(match, [-1, 1, 1, -1, 0, -1])
    assert bbox.shape == (8, 4)
    # positives in increasing anchor order: anchor 1 (zero deltas), anchor 2
    np.testing.assert_allclose(bbox[0], [0, 0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(bbox[1], _encode([SMALL_ANCHORS[2]], [GT])[0], rtol=1e-5)
    # hand computed: centre shift -2 px on a 30 px anchor, same size
    np.testing.assert_allclose(bbox[1], [-2 / 30 / 0.1, -2 / 30 / 0.1, 0, 0], atol=1e-5)
    np.testing.assert_array_equal(bbox[2:], 0)


def test_rpn_targets_single_offset_positive():
    anchors = np.array([[0, 0, 20, 20], [50, 50, 90, 90], [12, 10, 42, 40]], np.float32)
    match, bbox = rpn_targets(anchors, [3], [GT], anchors_per_image=4)
    np.testing.assert_array_equal(match.numpy(), [-1, -1, 1])
    np.testing.assert_allclose(bbox.numpy()[0], _encode([anchors[2]], [GT])[0], rtol=1e-5)
    np.testing.assert_allclose(bbox.numpy()[0], [-2 / 30 / 0.1, 0, 0, 0], atol=1e-5)
    np.testing.assert_array_equal(bbox.numpy()[1:], 0)


def test_rpn_targets_low_quality_positive():
    # The only overlapping anchor has IoU 0.25 < 0.3: it still is the gt's best.
    anchors = np.array([[0, 0, 20, 20], [10, 10, 70, 70], [200, 200, 230, 230]], np.float32)
    gt = [10.0, 10.0, 40.0, 40.0]  # 900 / 3600 with anchor 1
    match, bbox = rpn_targets(anchors, [1], [gt], anchors_per_image=4)
    np.testing.assert_array_equal(match.numpy(), [-1, 1, -1])
    np.testing.assert_allclose(bbox.numpy()[0], _encode([anchors[1]], [gt])[0], rtol=1e-5)


def test_rpn_targets_large_random_case_is_capped():
    anchors = anchors_lib.pyramid_anchors(
        (256, 256), (32, 64, 128, 256, 512), (0.5, 1, 2), (4, 8, 16, 32, 64), normalized=False
    ).numpy()
    rng = np.random.default_rng(0)
    # 300 gt boxes equal to random anchors: far more than 128 positives
    gt = anchors[rng.choice(len(anchors) // 2, 300, replace=False)]
    match, bbox = rpn_targets(anchors, np.ones(300, np.int32), gt, seed=3)
    match, bbox = match.numpy(), bbox.numpy()
    assert (match == 1).sum() == 128 and (match == -1).sum() == 128
    assert bbox.shape == (256, 4)
    # rows of the 128 positives, in anchor order, then zero padding
    pos = np.where(match == 1)[0]
    iou = box_ops.iou(anchors[pos], gt).numpy()
    expected = _encode(anchors[pos], gt[iou.argmax(1)])
    np.testing.assert_allclose(bbox[:128], expected, atol=1e-4)
    np.testing.assert_array_equal(bbox[128:], 0)

    # Few gt boxes: at most 256 labelled, at most half positive.
    gt = np.array([[30, 40, 120, 100], [150, 150, 250, 230]], np.float32)
    match, bbox = rpn_targets(anchors, [1, 2], gt, seed=4)
    match = match.numpy()
    assert (match != 0).sum() == 256
    assert 0 < (match == 1).sum() <= 128
    n_pos = (match == 1).sum()
    assert np.any(bbox.numpy()[:n_pos] != 0, axis=1).all()
    np.testing.assert_array_equal(bbox.numpy()[n_pos:], 0)


def test_rpn_targets_no_gt():
    anchors = SMALL_ANCHORS
    for class_ids, boxes in [
        (np.zeros([0], np.int32), np.zeros([0, 4], np.float32)),
        ([0, 0], np.zeros([2, 4], np.float32)),  # padding rows only
    ]:
        match, bbox = rpn_targets(anchors, class_ids, boxes, anchors_per_image=8)
        np.testing.assert_array_equal(match.numpy(), [-1] * 6)
        np.testing.assert_array_equal(bbox.numpy(), np.zeros((8, 4)))


def test_rpn_targets_padding_gt_rows_ignored():
    gt = np.array([GT, [0, 0, 0, 0], [0, 0, 0, 0]], np.float32)
    match, bbox = rpn_targets(SMALL_ANCHORS, [1, 0, 0], gt, anchors_per_image=8)
    np.testing.assert_array_equal(match.numpy(), [-1, 1, 1, -1, 0, -1])


def test_rpn_targets_crowd_never_negative():
    anchors = np.array(
        [
            [100, 100, 130, 130],  # overlaps the crowd box a little -> neutral
            [125, 125, 140, 140],  # inside the crowd box -> neutral (not positive)
            [300, 300, 330, 330],  # far from everything -> negative
            GT,  # the instance -> positive
        ],
        np.float32,
    )
    crowd = [120.0, 120.0, 200.0, 200.0]
    match, bbox = rpn_targets(anchors, [1, -1], [GT, crowd], anchors_per_image=8)
    np.testing.assert_array_equal(match.numpy(), [0, 0, -1, 1])
    np.testing.assert_array_equal(bbox.numpy(), np.zeros((8, 4)))
    # Crowd only: no positives at all, and overlapping anchors are not negative.
    match, _ = rpn_targets(anchors, [-1], [crowd], anchors_per_image=8)
    np.testing.assert_array_equal(match.numpy(), [0, 0, -1, -1])


# ------------------------------------------------------------ detection_targets
def _mini(mask_fn, shape=(56, 56)):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return mask_fn(yy, xx)


GT_BOXES = np.array([[0.1, 0.1, 0.4, 0.5], [0.6, 0.5, 0.9, 0.9]], np.float32)
GT_IDS = np.array([3, 7], np.int32)
GT_MASKS = np.stack(
    [
        _mini(lambda y, x: (x < 28) & (y >= 8)),  # left part, rows 8.. of the box
        _mini(lambda y, x: (y - 27.5) ** 2 + (x - 27.5) ** 2 < 20**2),  # disk
    ]
)


def _resample(mini, out=(28, 28)):
    """28 x 28 resample of a whole 56 x 56 mini-mask, rounded."""
    box = masks.resample_boxes([[0.0, 0.0, 56.0, 56.0]], (56, 56), out)
    crop = tf.image.crop_and_resize(
        tf.constant(mini, tf.float32)[None, :, :, None], box, [0], out
    )
    return np.round(crop.numpy()[0, ..., 0])


def _find_rows(rois, box):
    return np.where(np.all(np.abs(rois - box) < 1e-6, axis=1))[0]


def _detection_targets(proposals, ids=GT_IDS, boxes=GT_BOXES, gt_masks=GT_MASKS, **kw):
    kw = {**MATTERPORT_HEAD_TARGETS, "rois_per_image": 12, "seed": 0, **kw}
    out = targets.detection_targets(
        np.asarray(proposals, np.float32), ids, boxes, gt_masks, **kw
    )
    return [t.numpy() for t in out]


PROPOSALS = np.array(
    [
        [0.1, 0.1, 0.4, 0.5],  # equals gt 0
        [0.12, 0.1, 0.42, 0.5],  # IoU ~0.88 with gt 0
        [0.6, 0.52, 0.9, 0.92],  # IoU ~0.9 with gt 1
        [0.0, 0.6, 0.05, 0.7],  # background
        [0.45, 0.0, 0.55, 0.2],  # background
        [0.7, 0.0, 0.8, 0.3],  # background
        [0.0, 0.0, 0.0, 0.0],  # padding
        [0.0, 0.0, 0.0, 0.0],  # padding
    ],
    np.float32,
)


def test_detection_targets_shapes_and_order():
    rois, ids, deltas, tmasks, valid = _detection_targets(PROPOSALS, include_gt=False)
    assert rois.shape == (12, 4) and ids.shape == (12,) and deltas.shape == (12, 4)
    assert tmasks.shape == (12, 28, 28) and valid.shape == (12,)
    assert ids.dtype == np.int32 and valid.dtype == bool
    # 3 positives (int(12 * 0.33) = 3), then the 3 negatives, then padding
    np.testing.assert_array_equal(valid, [True] * 6 + [False] * 6)
    assert sorted(ids[:3].tolist()) == [3, 3, 7]
    np.testing.assert_array_equal(ids[3:], 0)
    np.testing.assert_array_equal(rois[6:], 0)
    np.testing.assert_array_equal(deltas[3:], 0)
    np.testing.assert_array_equal(tmasks[3:], 0)
    # positives are proposals 0..2, negatives proposals 3..5 (any order)
    for k in range(6):
        rows = _find_rows(rois, PROPOSALS[k])
        assert len(rows) == 1 and (rows[0] < 3) == (k < 3)
    assert set(np.unique(tmasks)) <= {0.0, 1.0}


def test_detection_targets_class_ids_and_deltas():
    rois, ids, deltas, _, _ = _detection_targets(PROPOSALS, include_gt=False)
    for row in range(3):
        gt = int(box_ops.iou(rois[row : row + 1], GT_BOXES).numpy().argmax())
        assert ids[row] == GT_IDS[gt]
        np.testing.assert_allclose(
            deltas[row], _encode(rois[row : row + 1], GT_BOXES[gt : gt + 1])[0], atol=1e-5
        )
    row = _find_rows(rois, PROPOSALS[1])[0]
    # dy = 0.02 / 0.3 / 0.1, dh = 0
    np.testing.assert_allclose(deltas[row], [-0.02 / 0.3 / 0.1, 0, 0, 0], atol=1e-5)


def test_detection_targets_mask_of_roi_equal_to_gt():
    rois, ids, deltas, tmasks, _ = _detection_targets(PROPOSALS, include_gt=False)
    row = _find_rows(rois, GT_BOXES[0])[0]
    np.testing.assert_array_equal(deltas[row], 0)
    expected = _resample(GT_MASKS[0])
    np.testing.assert_array_equal(tmasks[row], expected)
    # left half of the box, rows 4.. of 28
    hand = np.zeros((28, 28))
    hand[4:, :14] = 1
    np.testing.assert_array_equal(expected, hand)


def test_detection_targets_mask_of_shifted_roi():
    # ROI = gt 0's box without its top quarter (IoU 0.75): mini-mask rows
    # 14..55, 1.5 mini rows per target row. The mask is set from mini row 35,
    # i.e. from target row (35 - 14) / 1.5 = 14.
    roi = np.array([[0.175, 0.1, 0.4, 0.5]], np.float32)
    gt_masks = np.stack([_mini(lambda y, x: y >= 35), GT_MASKS[1]])
    rois, ids, deltas, tmasks, _ = _detection_targets(
        roi, gt_masks=gt_masks, include_gt=False, rois_per_image=4
    )
    assert ids[0] == 3
    np.testing.assert_allclose(rois[0], roi[0])
    np.testing.assert_allclose(deltas[0], _encode(roi, GT_BOXES[:1])[0], atol=1e-5)
    expected = np.zeros((28, 28))
    expected[14:] = 1
    np.testing.assert_array_equal(tmasks[0], expected)


def test_detection_targets_include_gt():
    background = PROPOSALS[3:6]
    rois, ids, deltas, tmasks, valid = _detection_targets(background, include_gt=True)
    np.testing.assert_array_equal(valid, [True] * 5 + [False] * 7)
    assert sorted(ids[:2].tolist()) == [3, 7]
    np.testing.assert_array_equal(deltas[:2], 0)
    for gt in range(2):
        row = _find_rows(rois[:2], GT_BOXES[gt])[0]
        assert ids[row] == GT_IDS[gt]
        np.testing.assert_array_equal(tmasks[row], _resample(GT_MASKS[gt]))
    # without include_gt there are no positives
    rois, ids, _, _, valid = _detection_targets(background, include_gt=False)
    np.testing.assert_array_equal(ids, 0)
    np.testing.assert_array_equal(valid, [True] * 3 + [False] * 9)


def test_detection_targets_crowd_not_negative():
    crowd = np.array([0.0, 0.55, 0.1, 0.75], np.float32)  # touches proposal 3
    ids = np.array([3, 7, -1], np.int32)
    boxes = np.concatenate([GT_BOXES, crowd[None]])
    gt_masks = np.concatenate([GT_MASKS, np.ones((1, 56, 56), bool)])
    rois, tids, _, tmasks, valid = _detection_targets(
        PROPOSALS, ids=ids, boxes=boxes, gt_masks=gt_masks, include_gt=True
    )
    assert len(_find_rows(rois, PROPOSALS[3])) == 0
    assert len(_find_rows(rois, crowd)) == 0  # crowd boxes never join the proposals
    for k in (4, 5):
        assert len(_find_rows(rois[valid], PROPOSALS[k])) == 1
    # positives: proposals 0, 1, 2 and the 2 gt boxes -> capped at 3
    assert (tids > 0).sum() == 3 and (valid & (tids == 0)).sum() == 2


def test_detection_targets_no_instances():
    for ids, boxes, gt_masks in [
        (np.zeros([0], np.int32), np.zeros([0, 4], np.float32), np.zeros([0, 56, 56], bool)),
        (np.zeros([2], np.int32), np.zeros([2, 4], np.float32), np.zeros([2, 56, 56], bool)),
    ]:
        rois, tids, deltas, tmasks, valid = _detection_targets(
            PROPOSALS, ids=ids, boxes=boxes, gt_masks=gt_masks, rois_per_image=8
        )
        np.testing.assert_array_equal(tids, 0)
        np.testing.assert_array_equal(valid, [True] * 6 + [False] * 2)
        np.testing.assert_array_equal(deltas, 0)
        np.testing.assert_array_equal(tmasks, 0)
        for k in range(6):
            assert len(_find_rows(rois[:6], PROPOSALS[k])) == 1
        np.testing.assert_array_equal(rois[6:], 0)


def test_detection_targets_full_size_masks():
    # mini_masks=False: masks span the whole image; normalised boxes follow
    # Matterport's convention (pixel (y1, x1, y2, x2) -> y1 / (H - 1), ...).
    full = np.zeros((2, 40, 40), bool)
    full[0, 4:16, 4:20] = True
    full[1, 24:36, 20:36] = True
    boxes = box_ops.normalize([[4, 4, 16, 20], [24, 20, 36, 36]], (40, 40)).numpy()
    rois, ids, _, tmasks, _ = _detection_targets(
        boxes[:1], boxes=boxes, gt_masks=full, include_gt=False, mini_masks=False,
        rois_per_image=4,
    )
    assert ids[0] == 3
    np.testing.assert_array_equal(tmasks[0], np.ones((28, 28)))
    # The top half of the same box samples the top half of the instance.
    half = box_ops.normalize([[4, 4, 12, 20]], (40, 40)).numpy()  # IoU 2/3
    rois, ids, _, tmasks, _ = _detection_targets(
        half, boxes=boxes, gt_masks=full & (np.arange(40) < 8)[None, :, None],
        include_gt=False, mini_masks=False, rois_per_image=4,
    )
    expected = np.zeros((28, 28))
    expected[:14] = 1
    np.testing.assert_array_equal(tmasks[0], expected)


def test_batch_targets_with_unknown_instance_count_in_graph():
    """M not known statically (and 0 at run time): the graph still runs."""
    anchors = SMALL_ANCHORS

    @tf.function(input_signature=[tf.TensorSpec([1, None], tf.int32),
                                  tf.TensorSpec([1, None, 4], tf.float32),
                                  tf.TensorSpec([1, None, 6, 6], tf.uint8)])
    def f(class_ids, boxes, gt_masks):
        match, _ = targets.rpn_targets_batch(anchors, class_ids, boxes, anchors_per_image=8,
                                             std_dev=STD)
        proposals = tf.constant([[[0.1, 0.1, 0.3, 0.3], [0.5, 0.5, 0.9, 0.9]]])
        heads = targets.detection_targets_batch(
            proposals, class_ids, boxes / 100.0, gt_masks, rois_per_image=4,
            **{**MATTERPORT_HEAD_TARGETS, "mask_shape": (4, 4)})
        return match, heads

    match, (_, class_ids, deltas, masks, valid) = f(
        tf.zeros([1, 0], tf.int32), tf.zeros([1, 0, 4]), tf.zeros([1, 0, 6, 6], tf.uint8))
    np.testing.assert_array_equal(match.numpy(), [[-1] * 6])
    assert masks.shape == (1, 1, 4, 4) and valid.numpy().sum() == 2
    assert (class_ids.numpy() == 0).all() and (deltas.numpy() == 0).all()
    match, (_, class_ids, *_) = f(
        tf.constant([[1]]), tf.constant([[GT]]), tf.ones([1, 1, 6, 6], tf.uint8))
    np.testing.assert_array_equal(match.numpy(), [[-1, 1, 1, -1, 0, -1]])
    assert class_ids.numpy()[0, 0] == 1


def test_rpn_targets_trim_padding_columns_outside_xla_only():
    """TensorFlow outside XLA drops the trailing padding columns of the
    ground truth before the anchors' IoU (targets.py says why); XLA keeps
    them. Same labels and deltas either way, a crowd after a gap included."""
    shape = (64, 64)
    spec = anchors_lib.Anchors((8, 16, 32, 64, 128), (0.5, 1, 2), (4, 8, 16, 32, 64), 1)
    anchors = spec.boxes(shape, normalized=False)
    class_ids = np.zeros([2, 12], np.int32)
    boxes = np.zeros([2, 12, 4], np.float32)
    class_ids[0, :3] = [1, 2, 3]
    boxes[0, :3] = [[4, 4, 20, 30], [30, 10, 60, 40], [8, 40, 40, 62]]
    class_ids[1, [0, 1, 5]] = [2, 1, -1]  # a crowd after two padding rows
    boxes[1, [0, 1, 5]] = [[10, 10, 50, 30], [0, 30, 20, 64], [40, 0, 64, 24]]

    def run(ids, gt):
        # More anchors labelled than there are: nothing is left to chance.
        return targets.rpn_targets_batch(anchors, ids, gt, anchors_per_image=2048, std_dev=STD,
                                         iou_fn=lambda _, b: spec.iou(shape, b))

    present = tf.constant(class_ids != 0)
    assert targets._leading_columns(present, tf.constant(boxes))[0].shape[1] == 6
    results = [f(tf.constant(class_ids), tf.constant(boxes)) for f in (
        run, tf.function(run), tf.function(run, jit_compile=True))]
    assert (results[0][0].numpy() == 1).sum() > 3
    for labels, deltas in results[1:]:
        np.testing.assert_array_equal(labels.numpy(), results[0][0].numpy())
        np.testing.assert_allclose(deltas.numpy(), results[0][1].numpy(), atol=1e-6)
