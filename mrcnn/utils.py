"""Matterport's `mrcnn.utils` names, as thin adapters over this library.

For projects written against Matterport (`from mrcnn import model as
modellib, utils`): the same public names and signatures, NumPy arrays in and
out, and the same values, with the math done once, where the library keeps
it (box_ops, anchors, data.image, data.masks, evaluation.mask_ap). Each
function's docstring says what it wraps and any deliberate difference;
docs/matterport.md ("mrcnn.utils") has the table.

Boxes are [N, (y1, x1, y2, x2)] with (y2, x2) outside the box, in pixels
unless said otherwise; masks are [H, W, N].
"""

import numpy as np
import tensorflow as tf

from mrcnn.checkpoint import pretrained
from mrcnn.data import image as imaging
from mrcnn.data import instances
from mrcnn.data import masks as instance_masks
from mrcnn.data.dataset import Dataset
from mrcnn.evaluation import mask_ap
from mrcnn.modeling import anchors, box_ops

__all__ = [
    "COCO_MODEL_URL", "Dataset", "apply_box_deltas", "batch_slice", "box_refinement",
    "box_refinement_graph", "compute_ap",
    "compute_ap_range", "compute_iou", "compute_matches", "compute_overlaps",
    "compute_overlaps_masks", "compute_recall", "denorm_boxes", "download_trained_weights",
    "expand_mask", "extract_bboxes", "generate_anchors", "generate_pyramid_anchors",
    "minimize_mask", "non_max_suppression", "norm_boxes", "resize", "resize_image",
    "resize_mask", "trim_zeros", "unmold_mask",
]

COCO_MODEL_URL = pretrained.COCO_WEIGHTS_URL

# Matterport's default IoU sweep of compute_ap_range (float64 steps, not rounded).
MATTERPORT_IOU_RANGE = np.arange(0.5, 1.0, 0.05)


# ----------------------------------------------------------------- boxes
def extract_bboxes(mask):
    """Tight box of each mask: mask [H, W, N] -> int32 [N, 4], (y2, x2)
    exclusive, a zero row for an empty mask. Wraps masks.boxes_from_masks."""
    return instance_masks.boxes_from_masks(np.asarray(mask)).numpy().astype(np.int32)


def compute_overlaps(boxes1, boxes2):
    """IoU of each box of boxes1 [N1, 4] with each of boxes2 [N2, 4] ->
    float64 [N1, N2]. Wraps box_ops.iou, computed in float32 when both
    inputs are float32 and in float64 otherwise (NumPy's promotion, so the
    values are Matterport's). Difference: 0 where the union is empty
    (Matterport: NaN)."""
    boxes1, boxes2 = np.asarray(boxes1), np.asarray(boxes2)
    dtype = tf.as_dtype(np.result_type(boxes1.dtype, boxes2.dtype, np.float32))
    return box_ops.iou(boxes1, boxes2, dtype).numpy().astype(np.float64)


def compute_iou(box, boxes, box_area, boxes_area):
    """IoU of one box [4] with each of boxes [N, 4] -> [N] (see
    compute_overlaps). `box_area` and `boxes_area` are accepted for
    Matterport's signature and not used: box_ops.iou computes the areas."""
    del box_area, boxes_area
    return compute_overlaps(np.asarray(box)[None], boxes)[0]


def compute_overlaps_masks(masks1, masks2):
    """Mask IoU: masks1 [H, W, N1], masks2 [H, W, N2] (values > 0.5 count)
    -> float32 [N1, N2]. Wraps mask_ap.mask_iou. Difference: 0 where the
    union is empty (Matterport: NaN, or a zero array shaped by the height
    when the images are empty)."""
    return mask_ap.mask_iou(np.asarray(masks1) > 0.5, np.asarray(masks2) > 0.5)


def non_max_suppression(boxes, scores, threshold):
    """Greedy NMS: indices (int32, best first) of the boxes kept; a box is
    dropped when its IoU with a kept one is > threshold.

    Wraps tf.image.non_max_suppression (whose choice the model's NMS,
    mrcnn/modeling/nms.py, reproduces with static shapes), given the boxes
    in Matterport's order: by decreasing score, equal scores later index
    first (`argsort()[::-1]` of a stable sort). IoU in float32 (Matterport:
    in float64 for float64 boxes). Differences: no boxes give no indices
    (Matterport asserts); boxes with y2 < y1 or x2 < x1 have their corners
    swapped by TensorFlow.
    """
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    order = np.argsort(np.asarray(scores), kind="stable")[::-1]
    rank = np.arange(len(order), 0, -1, dtype=np.float32)  # strictly decreasing
    keep = tf.image.non_max_suppression(boxes[order], rank, len(order), float(threshold))
    return order[keep.numpy()].astype(np.int32)


def box_refinement(box, gt_box):
    """Deltas (dy, dx, log(dh), log(dw)) that move box [N, 4] onto gt_box
    [N, 4] -> float32 [N, 4], not divided by a std dev. Wraps box_ops.encode
    (TensorFlow's float32 log: equal to Matterport's to float32 precision)."""
    return box_ops.encode(np.asarray(box, np.float32), np.asarray(gt_box, np.float32)).numpy()


def box_refinement_graph(box, gt_box):
    """`box_refinement` on tensors: float32 [N, 4] deltas. Wraps box_ops.encode."""
    return box_ops.encode(tf.cast(box, tf.float32), tf.cast(gt_box, tf.float32))


def apply_box_deltas(boxes, deltas):
    """Move boxes [N, 4] by deltas [N, (dy, dx, log(dh), log(dw))] (not
    scaled by a std dev) -> float32 [N, 4]. Wraps box_ops.decode."""
    return box_ops.decode(np.asarray(boxes, np.float32), np.asarray(deltas, np.float32)).numpy()


def trim_zeros(x):
    """The rows of x [N, ...] that are not all zero (padding dropped)."""
    x = np.asarray(x)
    return x[np.any(x.reshape(len(x), -1) != 0, axis=1)]


def norm_boxes(boxes, shape):
    """Pixel boxes -> normalised float32 [N, 4] ((y2, x2) inclusive once
    normalised) of an image of shape (height, width). Wraps
    box_ops.normalize, in float32 (the same values for integer pixels)."""
    return box_ops.normalize(np.asarray(boxes), tuple(shape)[:2]).numpy()


def denorm_boxes(boxes, shape):
    """Normalised boxes -> int32 pixel boxes, rounded half to even. Wraps
    box_ops.denormalize, in float32 (Matterport: float64, so a coordinate
    within float32 rounding of a .5 can round the other way)."""
    return box_ops.denormalize(np.asarray(boxes), tuple(shape)[:2]).numpy().astype(np.int32)


# ---------------------------------------------------------------- anchors
def generate_anchors(scales, ratios, shape, feature_stride, anchor_stride):
    """Anchors of one feature map of `shape` (height, width) in pixels ->
    [H * W * S * R, 4], positions row-major, then every (ratio, scale) pair,
    ratio-major, as Matterport orders them.

    scales: one anchor side or several [S]; ratios [R] width / height.
    Wraps anchors.level_anchors, given the pairs as flat scales and ratios.
    Difference: float32 values (Matterport: float64).
    """
    scales = np.atleast_1d(np.asarray(scales, np.float32))
    ratios = np.atleast_1d(np.asarray(ratios, np.float32))
    return anchors.level_anchors(
        tf.constant(np.tile(scales, len(ratios))), np.repeat(ratios, len(scales)),
        [int(shape[0]), int(shape[1])], int(feature_stride), int(anchor_stride)).numpy()


def generate_pyramid_anchors(scales, ratios, feature_shapes, feature_strides, anchor_stride):
    """Anchors of every pyramid level, level by level: scales[i] at level i
    of feature_shapes[i] and feature_strides[i], every ratio at every level.
    -> float32 [A, 4] pixels. See generate_anchors."""
    return np.concatenate([
        generate_anchors(scale, ratios, shape, stride, anchor_stride)
        for scale, shape, stride in zip(scales, feature_shapes, feature_strides)
    ], axis=0)


# ----------------------------------------------------------- images, masks
def resize(image, output_shape, order=1, mode="constant", cval=0, clip=True,
           preserve_range=False, anti_aliasing=False, anti_aliasing_sigma=None):
    """scikit-image's `transform.resize` with Matterport's defaults (no
    anti-aliasing), the one Matterport's `resize` wraps."""
    import skimage.transform

    return skimage.transform.resize(
        image, output_shape, order=order, mode=mode, cval=cval, clip=clip,
        preserve_range=preserve_range, anti_aliasing=anti_aliasing,
        anti_aliasing_sigma=anti_aliasing_sigma)


def resize_image(image, min_dim=None, max_dim=None, min_scale=None, mode="square"):
    """Matterport's resize: -> (image, window, scale, padding, crop).

    Wraps data.image.resize_image with `round_values=False`: interpolated
    integer pixels are truncated, as Matterport's `astype` does (the model's
    own molding rounds them). Differences: the "crop" mode draws its
    position from NumPy's generator (Matterport: `random`); the "fit64" mode
    is ours; bad arguments raise ValueError (Matterport: assert / Exception).
    """
    return imaging.resize_image(image, min_dim, max_dim, min_scale, mode, round_values=False)


def resize_mask(mask, scale, padding, crop=None):
    """Masks [H, W, N] resized, padded or cropped like resize_image() did
    the image -> bool [h, w, N], the same size as Matterport's. Wraps
    data.image.resize_mask. Difference: nearest-neighbour samples at the
    pixel centres of the image resize (Matterport's scipy zoom aligns the
    corner pixels instead), so masks stay on their resized image."""
    return imaging.resize_mask(mask, scale, padding, crop)


def minimize_mask(bbox, mask, mini_shape):
    """Each mask of mask [H, W, N] inside its box bbox [N, 4+] resampled to
    mini_shape (h, w) -> bool [h, w, N].

    Wraps masks.mini_masks (bilinear at pixel centres, kept where >= 0.5;
    Matterport's np.around drops exactly 0.5). Raises ValueError for a box
    of zero area, as Matterport raises.
    """
    boxes = np.asarray(bbox)[:, :4]
    empty = (boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])
    if np.any(empty):
        raise ValueError(f"minimize_mask: boxes of zero area at {np.flatnonzero(empty).tolist()}")
    mini = instance_masks.mini_masks(np.asarray(mask), boxes, tuple(mini_shape)[:2])
    return np.transpose(mini.numpy(), (1, 2, 0))


def expand_mask(bbox, mini_mask, image_shape):
    """Inverse of minimize_mask: mini_mask [h, w, N] pasted into the boxes
    bbox [N, 4+] of an image of image_shape -> bool [H, W, N]. Wraps
    instances.paste_masks (the same >= 0.5 rule as minimize_mask)."""
    mini = np.transpose(np.asarray(mini_mask), (2, 0, 1))
    return instances.paste_masks(mini, np.asarray(bbox)[:, :4], tuple(image_shape)[:2])


def unmold_mask(mask, bbox, image_shape):
    """A head's mask [h, w] float pasted into its box bbox (y1, x1, y2, x2)
    of an image of image_shape -> bool [H, W], kept where >= 0.5. Wraps
    instances.paste_masks, as the model's detect() does."""
    mini = np.asarray(mask, np.float32)[None]
    box = np.asarray(bbox)[None, :4]
    return instances.paste_masks(mini, box, tuple(image_shape)[:2])[..., 0]


# ------------------------------------------------------------- evaluation
def _at_least(threshold):
    """The least float32 >= threshold: a float32 IoU v is >= this exactly
    when v >= threshold in float64, Matterport's comparison under NumPy 1."""
    f = np.float32(threshold)
    return np.nextafter(f, np.float32(np.inf)) if float(f) < float(threshold) else f


def compute_matches(gt_boxes, gt_class_ids, gt_masks, pred_boxes, pred_class_ids, pred_scores,
                    pred_masks, iou_threshold=0.5, score_threshold=0.0, legacy_matterport=True):
    """Match predictions to ground truth by mask IoU, greedily by score.

    All-zero box rows (padding) are dropped with their masks, class ids and
    scores; predictions are sorted by decreasing score (equal scores: later
    first, as Matterport). Each prediction takes the unmatched ground truth
    of its class with the highest IoU (equal IoUs: later first), if that
    IoU is >= iou_threshold and >= score_threshold (a threshold on IoU, as
    in Matterport).

    Returns gt_match [G] float64 (the sorted prediction that took each
    ground truth, or -1), pred_match [D] float64 (the ground truth each
    prediction took, or -1), overlaps [D, G] float32 mask IoU.

    legacy_matterport=True (the default) keeps Matterport's behaviour, the
    one its published numbers were computed with: a ground truth taken by
    the top prediction (index 0) stays free, so a duplicate of the top
    prediction is a second true positive (gt_match then holds the later
    one). Our evaluation (mask_ap, legacy_matterport=False) matches each
    ground truth once. Wraps mask_ap.sweep_matches.
    """
    gt_keep = box_ops.nonzero_rows(np.asarray(gt_boxes, np.float32)).numpy()
    pred_keep = box_ops.nonzero_rows(np.asarray(pred_boxes, np.float32)).numpy()
    gt_class_ids = np.asarray(gt_class_ids)[gt_keep]
    gt_masks = np.asarray(gt_masks)[..., gt_keep]
    pred_scores = np.asarray(pred_scores)[pred_keep]
    order = np.argsort(pred_scores, kind="stable")[::-1]
    pred_class_ids = np.asarray(pred_class_ids)[pred_keep][order]
    overlaps = compute_overlaps_masks(np.asarray(pred_masks)[..., pred_keep][..., order], gt_masks)

    num_pred, num_gt = overlaps.shape
    pred_match = np.full(num_pred, -1.0)
    gt_match = np.full(num_gt, -1.0)
    if num_pred and num_gt:
        same = pred_class_ids[:, None] == gt_class_ids[None, :]
        # Ground truth reversed, so that argmax's first of equal IoUs is the last.
        iou = np.where(same, overlaps, -1.0).T[None, ::-1]  # [1, G, D]
        threshold = max(_at_least(iou_threshold), np.float32(score_threshold))
        _, _, taken = mask_ap.sweep_matches(iou, [threshold], legacy_matterport)
        taken = taken[0, 0]
        hits = np.flatnonzero(taken >= 0)
        pred_match[hits] = num_gt - 1 - taken[hits]
        # The last prediction to take a ground truth (two under the legacy rule).
        np.maximum.at(gt_match, pred_match[hits].astype(np.int64), hits.astype(np.float64))
    return gt_match, pred_match, overlaps


def compute_ap(gt_boxes, gt_class_ids, gt_masks, pred_boxes, pred_class_ids, pred_scores,
               pred_masks, iou_threshold=0.5):
    """AP of one image at one mask IoU threshold, matched by compute_matches.

    Returns (mAP, precisions, recalls, overlaps): precisions and recalls
    after each prediction, padded with a leading 0 / 0 and a closing 0 / 1,
    precisions made non-increasing (Matterport's arrays); overlaps [D, G].
    The AP is mask_ap.average_precision's, the same area under the curve
    summed as precision / G per hit in float64 (Matterport: recall steps in
    float32, so the two can differ by about 1e-8).
    """
    gt_match, pred_match, overlaps = compute_matches(
        gt_boxes, gt_class_ids, gt_masks, pred_boxes, pred_class_ids, pred_scores, pred_masks,
        iou_threshold)
    matched = (pred_match > -1)[None]
    every = np.ones(len(pred_match), bool)
    _, true_positives, envelope = mask_ap.precision_envelope(matched, every)
    num_gt = len(gt_match)
    precisions = np.concatenate([[0.0], envelope[0], [0.0]])
    precisions[0] = precisions.max()
    recalls = np.concatenate([[0.0], true_positives[0].astype(np.float32) / num_gt, [1.0]])
    ap = float(mask_ap.average_precision(matched, every, num_gt)[0])
    return ap, precisions, recalls, overlaps


def compute_ap_range(gt_box, gt_class_id, gt_mask, pred_box, pred_class_id, pred_score,
                     pred_mask, iou_thresholds=None, verbose=1):
    """Mean of compute_ap over IoU thresholds (default 0.5, 0.55, ..., 0.95,
    as Matterport's np.arange steps); prints each AP and the mean when
    verbose. -> float"""
    thresholds = MATTERPORT_IOU_RANGE if iou_thresholds is None else iou_thresholds
    aps = []
    for t in thresholds:
        ap = compute_ap(gt_box, gt_class_id, gt_mask, pred_box, pred_class_id, pred_score,
                        pred_mask, iou_threshold=t)[0]
        if verbose:
            print(f"AP @{t:.2f}:\t {ap:.3f}")
        aps.append(ap)
    mean = float(np.mean(aps))
    if verbose:
        print(f"AP @{thresholds[0]:.2f}-{thresholds[-1]:.2f}:\t {mean:.3f}")
    return mean


def compute_recall(pred_boxes, gt_boxes, iou):
    """Box recall: the share of ground truth that is the best match (highest
    box IoU) of some prediction with IoU >= iou. -> (recall, positive_ids:
    the predictions whose best IoU is >= iou). Overlaps by compute_overlaps."""
    overlaps = compute_overlaps(pred_boxes, gt_boxes)  # [P, G]
    positive_ids = np.flatnonzero(overlaps.max(axis=1) >= iou)
    found = np.unique(overlaps.argmax(axis=1)[positive_ids])
    return len(found) / overlaps.shape[1], positive_ids


# ------------------------------------------------------------------ misc
def batch_slice(inputs, graph_fn, batch_size, names=None):
    """Run graph_fn on each of the first batch_size items of inputs (a
    tensor or a list of tensors, sliced along axis 0 together) and stack its
    outputs: one tensor, or a list when graph_fn returns several (named by
    `names` in a graph)."""
    inputs = inputs if isinstance(inputs, list) else [inputs]
    per_item = []
    for i in range(batch_size):
        out = graph_fn(*[x[i] for x in inputs])
        per_item.append(list(out) if isinstance(out, (list, tuple)) else [out])
    outputs = list(zip(*per_item))
    names = names if names is not None else [None] * len(outputs)
    stacked = [tf.stack(list(parts), axis=0, name=name) for parts, name in zip(outputs, names)]
    return stacked[0] if len(stacked) == 1 else stacked


def download_trained_weights(coco_model_path, verbose=1):
    """Download Matterport's mask_rcnn_coco.h5 (COCO_MODEL_URL) to
    coco_model_path. Wraps pretrained.download_weights: written atomically
    and checked to be HDF5; without a network, FileNotFoundError says where
    to get the file and where to put it. -> coco_model_path"""
    if verbose > 0:
        print(f"Downloading the COCO weights to {coco_model_path} ...")
    pretrained.download_weights("coco", coco_model_path)
    if verbose > 0:
        print("... done")
    return coco_model_path
