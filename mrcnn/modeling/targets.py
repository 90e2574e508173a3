"""Training targets for the RPN (per anchor) and for the heads (per ROI).

Shape shorthand:
    A: anchors of the image; M: ground-truth instances (padding allowed:
        rows with class id 0 are ignored)
    S: RPN_TRAIN_ANCHORS_PER_IMAGE; T: TRAIN_ROIS_PER_IMAGE
    gt_class_ids: [M] int32, negative for crowd regions (Matterport's COCO
        convention: crowds are neither positives nor negatives)
    gt_boxes: [M, (y1, x1, y2, x2)]
    gt_masks: [M, h, w] instance masks on a grid that spans a frame box: the
        instance's own box for mini-masks (USE_MINI_MASK), the whole image
        (0, 0, 1, 1) for full-size masks

Both functions work on one image in the TF graph, vectorised over anchors
and ROIs; the input pipeline and the model map them over images.
"""

import tensorflow as tf

from mrcnn.data import masks
from mrcnn.modeling import box_ops, matching

# Predictions touching a crowd box at least this much are never negatives.
CROWD_IOU = 0.001


def _split_crowd(gt_class_ids, gt_boxes):
    """-> (class ids [K], boxes [K, 4]) of instances, crowd boxes [C, 4], keep mask"""
    gt_class_ids = tf.cast(gt_class_ids, tf.int32)
    gt_boxes = tf.cast(gt_boxes, tf.float32)
    is_instance = gt_class_ids > 0
    crowd = tf.boolean_mask(gt_boxes, gt_class_ids < 0)
    return (
        tf.boolean_mask(gt_class_ids, is_instance),
        tf.boolean_mask(gt_boxes, is_instance),
        crowd,
        is_instance,
    )


def _away_from_crowds(boxes, crowd_boxes):
    """bool [N]: True where a box overlaps no crowd box (IoU < CROWD_IOU)."""
    crowd_iou = box_ops.iou(boxes, crowd_boxes)
    return tf.reduce_all(crowd_iou < CROWD_IOU, axis=1)


def rpn_targets(
    anchors,
    gt_class_ids,
    gt_boxes,
    *,
    anchors_per_image,
    std_dev,
    negative_below=0.3,
    positive_from=0.7,
    seed=None,
    iou_fn=box_ops.iou,
):
    """Anchor labels and box deltas for the RPN losses (Matterport's rules).

    anchors: [A, 4], gt_boxes: [M, 4] in the same coordinates (pixels).
    iou_fn: (anchors, boxes [K, 4]) -> [A, K], e.g. a faster equivalent of
    box_ops.iou for pyramid anchors (`anchors.pyramid_iou`).
    Returns rpn_match [A] int32 (1 / -1 / 0, at most S labelled, at most
    half positive) and rpn_bbox [S, 4]: the deltas of the positive anchors,
    in increasing anchor order, zero-padded.
    """
    _, boxes, crowd, _ = _split_crowd(gt_class_ids, gt_boxes)
    iou = iou_fn(anchors, boxes)  # [A, K]
    matched, labels = matching.match(iou, negative_below, positive_from)
    not_crowd = _away_from_crowds(anchors, crowd)
    labels = tf.where((labels == matching.NEGATIVE) & ~not_crowd, matching.NEUTRAL, labels)
    labels = matching.subsample_labels(labels, anchors_per_image, 0.5, seed)

    positive = tf.cast(tf.where(labels == matching.POSITIVE)[:, 0], tf.int32)
    deltas = box_ops.encode(
        tf.gather(anchors, positive), tf.gather(boxes, tf.gather(matched, positive)), std_dev
    )
    deltas = tf.pad(deltas, [[0, anchors_per_image - tf.shape(deltas)[0]], [0, 0]])
    return labels, tf.reshape(deltas, [anchors_per_image, 4])


def detection_targets(
    proposals,
    gt_class_ids,
    gt_boxes,
    gt_masks,
    *,
    rois_per_image,
    positive_fraction,
    std_dev,
    mask_shape,
    include_gt,
    mini_masks,
    seed=None,
):
    """Sample ROIs and give each its class, box deltas and mask target.

    proposals: [P, 4] normalised (zero rows are padding, boxes without area
    are dropped); gt_boxes normalised;
    gt_masks: [M, h, w], mini-masks when `mini_masks`, else full-image masks.
    Positives have IoU >= 0.5 with an
    instance, negatives IoU < 0.5 and no overlap with a crowd. With
    `include_gt` the instance boxes join the proposals (detectron2, Model
    Garden). Returns, zero-padded to T rows:
        rois [T, 4], class_ids [T] int32 (0 for negatives and padding),
        deltas [T, 4] (divided by std_dev), masks [T, mask_h, mask_w] float
        in {0, 1}, valid [T] bool (False for padding rows).
    """
    # Padding rows and proposals clipped down to nothing have no area.
    proposals = tf.boolean_mask(proposals, box_ops.area(proposals) > 0.0)
    class_ids, boxes, crowd, is_instance = _split_crowd(gt_class_ids, gt_boxes)
    gt_masks = tf.boolean_mask(tf.cast(gt_masks, tf.float32), is_instance)
    if include_gt:
        proposals = tf.concat([proposals, boxes], axis=0)

    iou = box_ops.iou(proposals, boxes)  # [P, K]
    matched, labels = matching.match(iou, 0.5, 0.5, allow_low_quality=False)
    negative = (labels == matching.NEGATIVE) & _away_from_crowds(proposals, crowd)
    pos_idx, neg_idx = matching.sample_balanced(
        labels == matching.POSITIVE, negative, rois_per_image, positive_fraction, seed
    )

    pos_rois = tf.gather(proposals, pos_idx)
    gt_idx = tf.gather(matched, pos_idx)
    pos_boxes = tf.gather(boxes, gt_idx)
    pos_deltas = box_ops.encode(pos_rois, pos_boxes, std_dev)

    # Each positive ROI, in the frame that its instance's mask grid spans,
    # cut out of that mask: the instance's box for mini-masks; for full-size
    # masks the whole image, in pixel edges (the masks give its size).
    grid_h, grid_w = tf.shape(gt_masks)[1], tf.shape(gt_masks)[2]
    fh, fw = tf.cast(grid_h, tf.float32), tf.cast(grid_w, tf.float32)
    if mini_masks:
        rois_f, frames = pos_rois, pos_boxes
    else:
        rois_f = box_ops.denormalize(pos_rois, (grid_h, grid_w), rounded=False)
        frames = tf.zeros_like(pos_rois) + tf.stack([0.0, 0.0, fh, fw])
    y1, x1, y2, x2 = tf.unstack(frames, axis=1)
    h, w = y2 - y1, x2 - x1
    ry1, rx1, ry2, rx2 = tf.unstack(rois_f, axis=1)
    regions = tf.stack(
        [(ry1 - y1) / h * fh, (rx1 - x1) / w * fw, (ry2 - y1) / h * fh, (rx2 - x1) / w * fw],
        axis=1,
    )
    pos_masks = tf.image.crop_and_resize(
        gt_masks[..., None],
        masks.resample_boxes(regions, (grid_h, grid_w), mask_shape),
        gt_idx,
        mask_shape,
    )[..., 0]
    pos_masks = tf.round(pos_masks)

    num_pos = tf.shape(pos_idx)[0]
    num_neg = tf.shape(neg_idx)[0]
    rois = tf.concat([pos_rois, tf.gather(proposals, neg_idx)], axis=0)

    def fill(x):
        """x's rows, then zero rows: exactly rois_per_image rows."""
        zeros = tf.zeros(tf.concat([[rois_per_image], tf.shape(x)[1:]], axis=0), x.dtype)
        return tf.concat([x, zeros], axis=0)[:rois_per_image]

    return (
        tf.ensure_shape(fill(rois), [rois_per_image, 4]),
        tf.ensure_shape(fill(tf.gather(class_ids, gt_idx)), [rois_per_image]),
        tf.ensure_shape(fill(pos_deltas), [rois_per_image, 4]),
        tf.ensure_shape(fill(pos_masks), [rois_per_image, *mask_shape]),
        tf.ensure_shape(tf.range(rois_per_image) < num_pos + num_neg, [rois_per_image]),
    )
