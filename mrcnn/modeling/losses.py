"""Matterport's five Mask R-CNN losses.

Shape shorthand:
    B: images; A: anchors; S: RPN_TRAIN_ANCHORS_PER_IMAGE
    T: ROIs per image (TRAIN_ROIS_PER_IMAGE); C: classes; h, w: MASK_SHAPE

Every loss is a mean over the elements it covers, and 0 (never NaN) when it
covers none: an image without instances, or without positive anchors.
"""

import tensorflow as tf


def smooth_l1(y_true, y_pred):
    """Elementwise smooth L1 (Huber with delta 1)."""
    diff = tf.abs(y_true - y_pred)
    return tf.where(diff < 1.0, 0.5 * tf.square(diff), diff - 0.5)


def _mean(values, weights=None):
    """Weighted mean that is 0 when the weights sum to 0."""
    if weights is None:
        weights = tf.ones_like(values)
    return tf.math.divide_no_nan(tf.reduce_sum(values * weights), tf.reduce_sum(weights))


def rpn_class_loss(rpn_match, rpn_logits):
    """Object / background cross-entropy over the labelled anchors.

    rpn_match: [B, A] int (1, -1, 0 = ignored); rpn_logits: [B, A, 2]
    """
    labelled = tf.cast(tf.not_equal(rpn_match, 0), tf.float32)
    labels = tf.cast(tf.equal(rpn_match, 1), tf.int32)
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=rpn_logits)
    return _mean(ce, labelled)


def rpn_bbox_loss(rpn_bbox, rpn_match, rpn_deltas):
    """Smooth L1 between target and predicted deltas of positive anchors.

    rpn_bbox: [B, S, 4] targets of each image's positives, in anchor order,
    zero-padded; rpn_match: [B, A]; rpn_deltas: [B, A, 4] predictions.
    """
    positive = tf.equal(rpn_match, 1)
    predicted = tf.boolean_mask(rpn_deltas, positive)  # [P, 4], image by image
    counts = tf.reduce_sum(tf.cast(positive, tf.int32), axis=1)
    target = tf.boolean_mask(rpn_bbox, tf.sequence_mask(counts, tf.shape(rpn_bbox)[1]))
    return _mean(smooth_l1(target, predicted))


def mrcnn_class_loss(target_class_ids, class_logits, active_class_ids, valid):
    """Classifier cross-entropy over sampled ROIs.

    target_class_ids: [B, T]; class_logits: [B, T, C];
    active_class_ids: [B, C] (1 for classes of the image's dataset);
    valid: [B, T] bool, False for padding ROIs. Predictions of classes not
    in the image's dataset are not penalised (Matterport).
    """
    target = tf.cast(target_class_ids, tf.int32)
    predicted = tf.argmax(class_logits, axis=2, output_type=tf.int32)
    active = tf.gather(tf.cast(active_class_ids, tf.float32), predicted, batch_dims=1)
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=target, logits=class_logits)
    return _mean(ce, active * tf.cast(valid, tf.float32))


def mrcnn_bbox_loss(target_deltas, target_class_ids, pred_deltas):
    """Smooth L1 on the deltas of each positive ROI's own class.

    target_deltas: [B, T, 4]; target_class_ids: [B, T]; pred_deltas: [B, T, C, 4]
    """
    target_class_ids = tf.cast(target_class_ids, tf.int32)
    positive = target_class_ids > 0
    predicted = tf.gather(pred_deltas, tf.maximum(target_class_ids, 0), batch_dims=2)
    return _mean(
        smooth_l1(tf.boolean_mask(target_deltas, positive), tf.boolean_mask(predicted, positive))
    )


def mrcnn_mask_loss(target_masks, target_class_ids, pred_masks):
    """Binary cross-entropy of each positive ROI's mask for its own class.

    target_masks: [B, T, h, w] in {0, 1}; target_class_ids: [B, T];
    pred_masks: [B, T, h, w, C] sigmoid probabilities.
    """
    target_class_ids = tf.cast(target_class_ids, tf.int32)
    positive = target_class_ids > 0
    pred = tf.transpose(pred_masks, [0, 1, 4, 2, 3])  # [B, T, C, h, w]
    pred = tf.gather(pred, tf.maximum(target_class_ids, 0), batch_dims=2)  # [B, T, h, w]
    target = tf.boolean_mask(tf.cast(target_masks, tf.float32), positive)
    pred = tf.clip_by_value(tf.boolean_mask(pred, positive), 1e-7, 1.0 - 1e-7)
    bce = -(target * tf.math.log(pred) + (1.0 - target) * tf.math.log(1.0 - pred))
    return _mean(bce)


def weight_decay_loss(variables, weight_decay):
    """Matterport's L2 term: sum over kernels of wd * sum(w^2) / size(w).

    BatchNorm gamma and beta are left out, as in Matterport.
    """
    terms = [
        weight_decay * tf.reduce_sum(tf.square(v)) / tf.cast(tf.size(v), tf.float32)
        for v in variables
        if not (v.path.endswith("gamma") or v.path.endswith("beta"))
    ]
    return tf.add_n(terms) if terms else tf.constant(0.0)
