"""Matching predictions (anchors, proposals) to ground truth, and sampling.

Shape shorthand:
    N: anchors or proposals; M: ground-truth boxes
    iou: [N, M] IoU of every anchor with every ground-truth box

Labels follow Matterport's `rpn_match`: 1 positive, -1 negative, 0 ignored.
"""

import tensorflow as tf

POSITIVE, NEUTRAL, NEGATIVE = 1, 0, -1


def match(iou, negative_below, positive_from, allow_low_quality=True):
    """Label each of N predictions against M ground-truth boxes by IoU.

    iou: [N, M] -> (matched [N] int32 index of the best ground truth,
    labels [N] int32): IoU < negative_below -> -1, IoU >= positive_from -> 1,
    in between -> 0. With `allow_low_quality`, the predictions that reach a
    ground-truth box's highest IoU (ties included, IoU > 0) are positive too,
    so every box gets at least one (Matterport's RPN rule). With M = 0 every
    prediction is negative and `matched` is 0.
    """
    iou = tf.convert_to_tensor(iou, tf.float32)
    n = tf.shape(iou)[0]
    has_gt = tf.shape(iou)[1] > 0
    matched = tf.cond(
        has_gt,
        lambda: tf.argmax(iou, axis=1, output_type=tf.int32),
        lambda: tf.zeros([n], tf.int32),
    )
    best_iou = tf.cond(
        has_gt,
        lambda: tf.gather(iou, matched[:, None], batch_dims=1)[:, 0],
        lambda: tf.zeros([n], tf.float32),
    )
    labels = tf.where(best_iou >= positive_from, POSITIVE, NEUTRAL)
    labels = tf.where(best_iou < negative_below, NEGATIVE, labels)
    if allow_low_quality:
        gt_best = tf.reduce_max(iou, axis=0, keepdims=True)  # [1, M]
        gt_best = tf.where(gt_best > 0.0, gt_best, 2.0)  # IoU 0 is nobody's best
        is_best = tf.reduce_any(tf.equal(iou, gt_best), axis=1)
        labels = tf.where(is_best, POSITIVE, labels)
    return matched, tf.cast(labels, tf.int32)


def max_positives(num_samples, positive_fraction):
    """The most positives `sample_balanced` keeps out of `num_samples`."""
    return int(num_samples * positive_fraction)


def sample_balanced(positive, negative, num_samples, positive_fraction, seed=None):
    """Random subsample of at most `num_samples` indices.

    Up to `int(num_samples * positive_fraction)` positives, negatives filling
    the rest (detectron2's rule, so an image without objects still gives
    `num_samples` negatives).
    positive, negative: bool [N] -> (pos_idx [P] int32, neg_idx [Q] int32),
    P + Q <= num_samples, each in random order.
    """
    pos = tf.random.shuffle(tf.cast(tf.where(positive)[:, 0], tf.int32), seed=seed)
    neg = tf.random.shuffle(tf.cast(tf.where(negative)[:, 0], tf.int32), seed=seed)
    pos = pos[: max_positives(num_samples, positive_fraction)]
    neg = neg[: num_samples - tf.shape(pos)[0]]
    return pos, neg


def subsample_labels(labels, num_samples, positive_fraction, seed=None):
    """Keep a balanced random subset of labelled predictions; the rest -> 0.

    labels: [N] int32 in {1, 0, -1} -> [N] int32
    """
    pos, neg = sample_balanced(
        labels == POSITIVE, labels == NEGATIVE, num_samples, positive_fraction, seed
    )
    n = tf.shape(labels)[:1]
    out = tf.scatter_nd(pos[:, None], tf.fill(tf.shape(pos), POSITIVE), n)
    return out + tf.scatter_nd(neg[:, None], tf.fill(tf.shape(neg), NEGATIVE), n)
