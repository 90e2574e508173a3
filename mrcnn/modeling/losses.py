"""Matterport's five Mask R-CNN losses, in keras.ops.

Shape shorthand:
    B: images; A: anchors; S: RPN_TRAIN_ANCHORS_PER_IMAGE
    T: ROIs per image (TRAIN_ROIS_PER_IMAGE); C: classes; h, w: MASK_SHAPE
    Q: rows of the mask targets (the first Q ROIs, where positives are)

Every loss is a mean over the elements it covers, and 0 (never NaN) when it
covers none: an image without instances, or without positive anchors. The
elements are chosen by weights (0 / 1), not by boolean masks, so the shapes
stay static (XLA, every backend). Losses are computed in float32 whatever
dtype the predictions come in (mixed precision).
"""

import math

from keras import ops

from mrcnn.modeling import matching


def _float(x):
    return ops.cast(ops.convert_to_tensor(x), "float32")


def smooth_l1(y_true, y_pred):
    """Elementwise smooth L1 (Huber with delta 1)."""
    diff = ops.abs(_float(y_true) - _float(y_pred))
    return ops.where(diff < 1.0, 0.5 * ops.square(diff), diff - 0.5)


def _mean(values, weights=None):
    """Weighted mean (weights broadcast against values) that is 0 when the
    weights sum to 0, with a zero gradient then."""
    if weights is None:
        return ops.mean(values)
    weights = ops.broadcast_to(_float(weights), ops.shape(values))
    total = ops.sum(weights)
    return ops.sum(values * weights) / ops.maximum(total, 1.0) * ops.cast(total > 0, "float32")


def _cross_entropy(labels, logits):
    """Softmax cross-entropy: labels int [...], logits [..., K] -> [...]"""
    return ops.sparse_categorical_crossentropy(ops.cast(labels, "int32"), _float(logits),
                                               from_logits=True)


def rpn_class_loss(rpn_match, rpn_logits):
    """Object / background cross-entropy over the labelled anchors.

    rpn_match: [B, A] int (1, -1, 0 = ignored); rpn_logits: [B, A, 2]
    """
    rpn_match = ops.convert_to_tensor(rpn_match)
    ce = _cross_entropy(ops.equal(rpn_match, 1), rpn_logits)
    return _mean(ce, ops.not_equal(rpn_match, 0))


def rpn_bbox_loss(rpn_bbox, rpn_match, rpn_deltas):
    """Smooth L1 between target and predicted deltas of positive anchors.

    rpn_bbox: [B, S, 4] targets of each image's positives, in anchor order,
    zero-padded; rpn_match: [B, A]; rpn_deltas: [B, A, 4] predictions.
    """
    rpn_bbox = _float(rpn_bbox)
    positive = ops.equal(ops.convert_to_tensor(rpn_match), 1)
    index, valid = matching.first_true(positive, rpn_bbox.shape[1])  # [B, S]
    predicted = ops.take_along_axis(_float(rpn_deltas), index[..., None], axis=1)
    return _mean(smooth_l1(rpn_bbox, predicted), valid[..., None])


def mrcnn_class_loss(target_class_ids, class_logits, active_class_ids, valid):
    """Classifier cross-entropy over sampled ROIs.

    target_class_ids: [B, T]; class_logits: [B, T, C];
    active_class_ids: [B, C] (1 for classes of the image's dataset);
    valid: [B, T] bool, False for padding ROIs. Predictions of classes not
    in the image's dataset are not penalised (Matterport).
    """
    class_logits = _float(class_logits)
    predicted = ops.argmax(class_logits, axis=-1)
    active = ops.take_along_axis(_float(active_class_ids), predicted, axis=1)
    ce = _cross_entropy(target_class_ids, class_logits)
    return _mean(ce, active * _float(valid))


def _own_class(values, class_ids, axis):
    """The entry of each ROI's own class: values [B, T, ...] with classes on
    `axis`, class_ids [B, T] -> values without that axis."""
    index = ops.maximum(ops.cast(class_ids, "int32"), 0)
    for _ in range(len(values.shape) - 2):
        index = index[..., None]
    return ops.squeeze(ops.take_along_axis(values, index, axis=axis), axis)


def mrcnn_bbox_loss(target_deltas, target_class_ids, pred_deltas):
    """Smooth L1 on the deltas of each positive ROI's own class.

    target_deltas: [B, T, 4]; target_class_ids: [B, T]; pred_deltas: [B, T, C, 4]
    """
    positive = ops.convert_to_tensor(target_class_ids) > 0
    predicted = _own_class(_float(pred_deltas), target_class_ids, axis=2)  # [B, T, 4]
    return _mean(smooth_l1(target_deltas, predicted), positive[..., None])


def mrcnn_mask_loss(target_masks, target_class_ids, mask_logits):
    """Binary cross-entropy of each positive ROI's mask for its own class.

    target_masks: [B, Q, h, w] in {0, 1}; target_class_ids: [B, Q];
    mask_logits: [B, Q, h, w, C], logits (the mask head's, before the
    sigmoid). From the logits, in float32: Matterport's BCE on clipped
    probabilities equals it until a probability reaches the clip (1e-7),
    where its gradient vanishes; this one's does not (and a float16
    sigmoid reaches 1.0 already at a logit of about 7.6).
    """
    positive = ops.convert_to_tensor(target_class_ids) > 0
    logits = _own_class(_float(mask_logits), target_class_ids, axis=4)  # [B, Q, h, w]
    bce = ops.binary_crossentropy(_float(target_masks), logits, from_logits=True)
    return _mean(bce, positive[..., None, None])


def weight_decay_loss(variables, weight_decay):
    """Matterport's L2 term: sum over kernels of wd * sum(w^2) / size(w).

    BatchNorm gamma and beta are left out, as in Matterport.
    """
    total = ops.convert_to_tensor(0.0)
    for v in variables:
        if not (v.path.endswith("gamma") or v.path.endswith("beta")):
            size = max(1, math.prod(v.shape))
            total = total + weight_decay * ops.sum(ops.square(_float(v))) / float(size)
    return total
