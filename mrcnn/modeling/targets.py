"""Training targets for the RPN (per anchor) and for the heads (per ROI).

Shape shorthand:
    B: images; A: anchors of the image; M: ground-truth instances (padded:
        rows with class id 0 are ignored)
    S: RPN_TRAIN_ANCHORS_PER_IMAGE; T: TRAIN_ROIS_PER_IMAGE
    Q: max_positives(T, positive_fraction), the rows that can be positive
    gt_class_ids: [B, M] int32, negative for crowd regions (Matterport's COCO
        convention: crowds are neither positives nor negatives)
    gt_boxes: [B, M, (y1, x1, y2, x2)]
    gt_masks: [B, M, h, w] instance masks on a grid that spans a frame box:
        the instance's own box for mini-masks (USE_MINI_MASK), the whole
        image (0, 0, 1, 1) for full-size masks

The `*_batch` functions are what the model's training step runs: keras.ops
with static shapes (padding and validity masks instead of lists of varying
length), vectorised over images, anchors and ROIs, so the step compiles
(XLA) and runs on every backend. `rpn_targets` and `detection_targets` are
the same for one image.
"""

from keras import ops

from mrcnn.modeling import box_ops, crop, kernels, matching

# Predictions touching a crowd box at least this much are never negatives.
CROWD_IOU = 0.001


def _ground_truth(gt_class_ids, gt_boxes):
    """-> class ids int32 [B, M'], boxes float32 [B, M', 4], is_instance,
    is_crowd bool [B, M']; M' = M, plus a padding row where M is 0 or not
    known statically (so there is always a row to gather)."""
    class_ids = with_padding_row(ops.cast(gt_class_ids, "int32"))
    boxes = with_padding_row(ops.cast(gt_boxes, "float32"))
    return class_ids, boxes, class_ids > 0, class_ids < 0


def _leading_columns(present, *columns):
    """The ground truth's first m columns, m = 1 + the last present column of
    the batch, where shapes may vary: TensorFlow outside XLA. Elsewhere
    (XLA, JAX) the columns as they are.

    present: bool [B, M] (instances and crowds); columns: [B, M, ...].
    Why: the RPN's IoU covers every anchor against every column; at 1024 x
    2048 (523,776 anchors) with MAX_GT_INSTANCES = 100 and 20 instances,
    TensorFlow's RPN targets take 0.93 s padded and 0.19 s trimmed. The
    trimmed columns are padding, so labels and deltas are the same.
    """
    if not kernels.tensorflow_op_by_op():
        return columns
    index = ops.arange(1, ops.shape(present)[1] + 1, dtype="int32")
    m = ops.maximum(ops.max(ops.where(present, index[None, :], 0)), 1)
    return tuple(c[:, :m] for c in columns)


def with_padding_row(x):
    """x: [B, M, ...] -> [B, M + 1, ...] with a zero row at the end where M
    is 0 or not known statically, else x."""
    if x.shape[1] not in (0, None):
        return x
    shape = ops.shape(x)
    return ops.concatenate([x, ops.zeros((shape[0], 1, *shape[2:]), x.dtype)], axis=1)


def _label(iou, is_instance, is_crowd, negative_below, positive_from, allow_low_quality,
           gt_axis=-1):
    """Match predictions to the instances; those touching a crowd are not
    negatives. iou: [B, N, M] (gt_axis -1) or [B, M, N] (gt_axis -2) ->
    matched [B, N], labels [B, N]"""
    def per_gt(x):  # [B, M] -> broadcastable against iou
        return x[:, None, :] if gt_axis == -1 else x[:, :, None]

    instance_iou = ops.where(per_gt(is_instance), iou, -1.0)
    matched, labels = matching.match(instance_iou, negative_below, positive_from,
                                      allow_low_quality, gt_axis=gt_axis)
    crowd_iou = ops.where(per_gt(is_crowd), iou, 0.0)
    near_crowd = ops.max(crowd_iou, axis=gt_axis) >= CROWD_IOU
    labels = ops.where((labels == matching.NEGATIVE) & near_crowd, matching.NEUTRAL, labels)
    return matched, labels


def _take_rows(x, index):
    """x: [B, N, ...], index: int32 [B, K] -> [B, K, ...]"""
    for _ in range(len(x.shape) - 2):
        index = index[..., None]
    return ops.take_along_axis(x, index, axis=1)


def rpn_targets_batch(anchors, gt_class_ids, gt_boxes, *, anchors_per_image, std_dev,
                      negative_below=0.3, positive_from=0.7, seed=None, iou_fn=box_ops.iou):
    """Anchor labels and box deltas for the RPN losses (Matterport's rules).

    anchors: [A, 4], gt_boxes: [B, M, 4] in the same coordinates (pixels).
    iou_fn: (anchors, boxes [B, M, 4]) -> [B, A, M], e.g. a faster
    equivalent of box_ops.iou for pyramid anchors (`anchors.pyramid_iou`).
    Returns rpn_match [B, A] int32 (1 / -1 / 0, at most S labelled, at most
    half positive) and rpn_bbox [B, S, 4]: the deltas of the positive
    anchors, in increasing anchor order, zero-padded.
    """
    _, boxes, is_instance, is_crowd = _ground_truth(gt_class_ids, gt_boxes)
    boxes, is_instance, is_crowd = _leading_columns(is_instance | is_crowd, boxes, is_instance,
                                                    is_crowd)
    anchors = ops.cast(anchors, "float32")
    # Labelled in the [B, M, A] layout: its reductions over M run along rows
    # of A (on TensorFlow's CPU kernels 3-5x faster than over rows of M).
    iou = ops.transpose(iou_fn(anchors, boxes), (0, 2, 1))
    matched, labels = _label(iou, is_instance, is_crowd, negative_below, positive_from, True,
                             gt_axis=-2)
    labels = matching.subsample_labels(labels, anchors_per_image, 0.5, seed)

    index, valid = matching.first_true(labels == matching.POSITIVE, anchors_per_image)
    positive_anchors = ops.take(anchors, index, axis=0)  # [B, S, 4]
    positive_boxes = _take_rows(boxes, ops.take_along_axis(matched, index, axis=1))
    # Padding rows encode a unit box onto itself (finite), then become 0.
    unit = ops.convert_to_tensor([0.0, 0.0, 1.0, 1.0])
    deltas = box_ops.encode(ops.where(valid[..., None], positive_anchors, unit),
                            ops.where(valid[..., None], positive_boxes, unit), std_dev)
    return labels, ops.where(valid[..., None], deltas, 0.0)


def detection_targets_batch(proposals, gt_class_ids, gt_boxes, gt_masks, *, rois_per_image,
                            positive_fraction, std_dev, mask_shape, include_gt, mini_masks,
                            seed=None):
    """Sample ROIs and give each its class, box deltas and mask target.

    proposals: [B, P, 4] normalised (zero rows are padding, boxes without
    area are never sampled); gt_boxes normalised; gt_masks: [B, M, h, w],
    mini-masks when `mini_masks`, else full-image masks. Positives have
    IoU >= 0.5 with an instance, negatives IoU < 0.5 and no overlap with a
    crowd. With `include_gt` the instance boxes join the proposals
    (detectron2, Model Garden). Returns, positives first, then negatives,
    then zero padding:
        rois [B, T, 4], class_ids [B, T] int32 (0 for negatives and
        padding), deltas [B, T, 4] (divided by std_dev), masks [B, Q, mh,
        mw] float in {0, 1} (the first Q rows: the only ones that can be
        positive), valid [B, T] bool (False for padding rows).
    """
    class_ids, boxes, is_instance, is_crowd = _ground_truth(gt_class_ids, gt_boxes)
    proposals = ops.cast(proposals, "float32")
    usable = box_ops.area(proposals) > 0.0  # [B, P]
    if include_gt:
        proposals = ops.concatenate([proposals, boxes], axis=1)
        usable = ops.concatenate([usable, is_instance], axis=1)

    iou = box_ops.iou(proposals, boxes)  # [B, P, M]
    matched, labels = _label(iou, is_instance, is_crowd, 0.5, 0.5, False)
    index, is_positive, valid = matching.sample_balanced(
        (labels == matching.POSITIVE) & usable, (labels == matching.NEGATIVE) & usable,
        rois_per_image, positive_fraction, seed)

    rois = ops.where(valid[..., None], _take_rows(proposals, index), 0.0)
    gt_index = ops.take_along_axis(matched, index, axis=1)  # [B, T]
    target_boxes = _take_rows(boxes, gt_index)
    unit = ops.convert_to_tensor([0.0, 0.0, 1.0, 1.0])
    deltas = box_ops.encode(ops.where(is_positive[..., None], rois, unit),
                            ops.where(is_positive[..., None], target_boxes, unit), std_dev)
    deltas = ops.where(is_positive[..., None], deltas, 0.0)
    roi_class_ids = ops.where(is_positive, ops.take_along_axis(class_ids, gt_index, axis=1), 0)

    q = matching.max_positives(rois_per_image, positive_fraction)
    masks = _mask_targets(rois[:, :q], target_boxes[:, :q], gt_index[:, :q], gt_masks,
                          mask_shape, mini_masks)
    masks = ops.where(is_positive[:, :q, None, None], masks, 0.0)
    return rois, roi_class_ids, deltas, masks, valid


def _mask_targets(rois, frames, gt_index, gt_masks, mask_shape, mini_masks):
    """Each ROI, in the frame that its instance's mask grid spans, cut out
    of that mask: the instance's box for mini-masks; for full-size masks
    the whole image, in pixel edges (the masks give its size).

    rois, frames: [B, Q, 4] normalised; gt_index: int32 [B, Q];
    gt_masks: [B, M, h, w] -> [B, Q, mh, mw] float32 in {0, 1}
    """
    gt_masks = with_padding_row(gt_masks)
    m, grid_h, grid_w = ops.shape(gt_masks)[1:]
    if mini_masks:
        y1, x1, y2, x2 = (frames[..., i] for i in range(4))
        h, w = y2 - y1, x2 - x1
        regions = ops.stack([(rois[..., 0] - y1) / h * grid_h, (rois[..., 1] - x1) / w * grid_w,
                             (rois[..., 2] - y1) / h * grid_h, (rois[..., 3] - x1) / w * grid_w],
                            axis=-1)
    else:
        regions = box_ops.denormalize(rois, (grid_h, grid_w), rounded=False)
    boxes = crop.resample_boxes(regions, (grid_h, grid_w), mask_shape)
    # Rows that are not positives have no frame (0 / 0): any finite box will do.
    boxes = ops.where(ops.isfinite(boxes), boxes, 0.0)
    batch = ops.shape(gt_index)[0]
    image_of_row = ops.arange(batch, dtype="int32")[:, None] * m + gt_index
    masks = ops.reshape(gt_masks, (-1, grid_h, grid_w, 1))
    masks = crop.crop_and_resize(masks, boxes, image_of_row, mask_shape)[..., 0]
    return ops.round(masks)


def _one_image(batch_fn, *args, **kwargs):
    """batch_fn on one image: args get a batch axis, results lose it."""
    args = [ops.convert_to_tensor(a)[None] for a in args]
    return [out[0] for out in batch_fn(*args, **kwargs)]


def rpn_targets(anchors, gt_class_ids, gt_boxes, **kwargs):
    """`rpn_targets_batch` for one image: gt [M], [M, 4] -> rpn_match [A],
    rpn_bbox [S, 4]. iou_fn, if given, takes (anchors, boxes [1, M, 4])."""
    anchors = ops.convert_to_tensor(anchors)
    return tuple(_one_image(lambda c, b: rpn_targets_batch(anchors, c, b, **kwargs),
                            gt_class_ids, gt_boxes))


def detection_targets(proposals, gt_class_ids, gt_boxes, gt_masks, *, rois_per_image,
                      **kwargs):
    """`detection_targets_batch` for one image: proposals [P, 4], gt [M],
    [M, 4], [M, h, w] -> rois [T, 4], class_ids [T], deltas [T, 4], masks
    [T, mh, mw] (zero beyond the first Q rows), valid [T]."""
    rois, class_ids, deltas, masks, valid = _one_image(
        detection_targets_batch, proposals, gt_class_ids, gt_boxes, gt_masks,
        rois_per_image=rois_per_image, **kwargs)
    masks = ops.pad(masks, [(0, rois_per_image - masks.shape[0]), (0, 0), (0, 0)])
    return rois, class_ids, deltas, masks, valid
