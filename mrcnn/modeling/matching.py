"""Matching predictions (anchors, proposals) to ground truth, and sampling.

Shape shorthand:
    ...: leading dims (e.g. images of a batch)
    N: anchors or proposals; M: ground-truth boxes (padding allowed)
    K: samples kept (RPN_TRAIN_ANCHORS_PER_IMAGE, TRAIN_ROIS_PER_IMAGE)
    iou: [..., N, M] IoU of every prediction with every ground-truth box;
        a column of -1 stands for a padding box, which nobody matches
        (`match` also takes the transpose, [..., M, N]: see its gt_axis)

Labels follow Matterport's `rpn_match`: 1 positive, -1 negative, 0 ignored.
Everything is keras.ops with static shapes (samples come as K indices and
a validity mask, not as lists of varying length), so it compiles (XLA) and
runs on every backend. Random choices draw from `seed` (an int, or a
`keras.random.SeedGenerator`, which a model must pass under JAX).
"""

import keras
from keras import ops

from mrcnn.modeling import kernels

POSITIVE, NEUTRAL, NEGATIVE = 1, 0, -1


def _columns(iou, axis=-1):
    """iou with at least one ground-truth entry along `axis`: a -1 one
    (nobody's match) is appended when M is 0 or not known statically."""
    if iou.shape[axis] in (None, 0):
        iou = ops.concatenate([iou, _minus_ones(iou, axis)], axis=axis)
    return iou


def _minus_ones(x, axis=-1):
    """x's shape with `axis` of size 1, filled with -1 (any size of that
    axis, 0 included): e.g. a column [..., 1] for x [..., N]."""
    return ops.zeros_like(ops.sum(x, axis=axis, keepdims=True)) - 1.0


def match(iou, negative_below, positive_from, allow_low_quality=True, gt_axis=-1):
    """Label each of N predictions against M ground-truth boxes by IoU.

    iou: [..., N, M] (gt_axis -1) or [..., M, N] (gt_axis -2) -> (matched
    [..., N] int32 index of the best ground truth, labels [..., N] int32):
    IoU < negative_below -> -1, IoU >= positive_from -> 1, in between -> 0.
    With `allow_low_quality`, the predictions that reach a ground-truth
    box's highest IoU (ties included, IoU > 0) are positive too, so every
    box gets at least one (Matterport's RPN rule). Without ground truth
    (M = 0, or only -1 entries) every prediction is negative. Both layouts
    give the same results; [..., M, N] is faster on TensorFlow's CPU
    kernels when N is large and M small (the RPN's anchors): reductions
    over M then run along rows of length N.
    """
    if gt_axis not in (-1, -2):
        raise ValueError(f"gt_axis must be -1 or -2, got {gt_axis!r}")
    iou = _columns(ops.cast(ops.convert_to_tensor(iou), "float32"), gt_axis)
    matched = kernels.argmax(iou, axis=gt_axis)
    best_iou = ops.max(iou, axis=gt_axis)
    labels = ops.where(best_iou >= positive_from, POSITIVE, NEUTRAL)
    labels = ops.where(best_iou < negative_below, NEGATIVE, labels)
    if allow_low_quality:
        # Each box's best IoU over the predictions: [..., 1, M] or [..., M, 1].
        gt_best = ops.max(iou, axis=-3 - gt_axis, keepdims=True)
        gt_best = ops.where(gt_best > 0.0, gt_best, 2.0)  # IoU 0 is nobody's best
        is_best = ops.any(ops.equal(iou, gt_best), axis=gt_axis)
        labels = ops.where(is_best, POSITIVE, labels)
    # A single -1 column (no ground truth) matches index 0, as before.
    matched = ops.where(best_iou < 0.0, 0, matched)
    return matched, ops.cast(labels, "int32")


def max_positives(num_samples, positive_fraction):
    """The most positives `sample_balanced` keeps out of `num_samples`."""
    return int(num_samples * positive_fraction)


def _random_top(mask, k, seed):
    """k random indices among the True entries of mask [..., N], padded:
    -> (index int32 [..., k], valid bool [..., k]), valid ones first."""
    keys = keras.random.uniform(ops.shape(mask), seed=seed)
    return _top(ops.where(mask, keys, -1.0), k)


def _top(scores, k):
    """The k best of scores [..., N] (N may be < k: -1 padding) with
    scores >= 0 -> (index int32 [..., k], valid bool [..., k])"""
    n = scores.shape[-1]
    if n is None or n < k:  # unknown N is padded with k columns
        pads = k if n is None else k - n
        scores = ops.concatenate([scores] + [_minus_ones(scores)] * pads, axis=-1)
    values, index = ops.top_k(scores, k, sorted=True)
    valid = values >= 0.0
    return ops.where(valid, ops.cast(index, "int32"), 0), valid


def first_true(mask, k):
    """Indices of the first k True entries of mask [..., N], in order:
    -> (index int32 [..., k], valid bool [..., k]), padded with 0 / False."""
    n = mask.shape[-1] if mask.shape[-1] is not None else ops.shape(mask)[-1]
    rank = ops.cast(n - ops.arange(n), "float32")  # earlier -> higher
    return _top(ops.where(mask, rank, -1.0), k)


def sample_balanced(positive, negative, num_samples, positive_fraction, seed=None):
    """Random subsample of at most K = `num_samples` predictions.

    Up to `int(K * positive_fraction)` positives, negatives filling the
    rest (detectron2's rule, so an image without objects still gives K
    negatives). positive, negative: bool [..., N] ->
    index int32 [..., K] (positives first, then negatives, each in random
    order, then padding), is_positive bool [..., K], valid bool [..., K].
    """
    p = max_positives(num_samples, positive_fraction)
    pos, pos_valid = _random_top(positive, p, seed)
    neg, neg_valid = _random_top(negative, num_samples, seed)
    num_pos = ops.sum(ops.cast(pos_valid, "int32"), axis=-1, keepdims=True)
    # Row r holds positive r while r < num_pos, then negative r - num_pos.
    row = ops.arange(num_samples, dtype="int32")
    from_neg = ops.clip(row - num_pos, 0, num_samples - 1)
    neg = ops.take_along_axis(neg, from_neg, axis=-1)
    neg_valid = ops.take_along_axis(neg_valid, from_neg, axis=-1)
    pad = [(0, 0)] * (len(pos.shape) - 1) + [(0, num_samples - p)]
    pos, pos_valid = ops.pad(pos, pad), ops.pad(pos_valid, pad)
    is_positive = row < num_pos
    index = ops.where(is_positive, pos, neg)
    valid = ops.where(is_positive, pos_valid, neg_valid)
    return ops.where(valid, index, 0), is_positive & valid, valid


def subsample_labels(labels, num_samples, positive_fraction, seed=None):
    """Keep a balanced random subset of labelled predictions; the rest -> 0.

    labels: [N] or [B, N] int32 in {1, 0, -1} -> the same shape
    """
    labels = ops.convert_to_tensor(labels)
    index, is_positive, valid = sample_balanced(
        labels == POSITIVE, labels == NEGATIVE, num_samples, positive_fraction, seed)
    kept = ops.where(valid, ops.where(is_positive, POSITIVE, NEGATIVE), NEUTRAL)
    return scatter_rows(index, ops.cast(kept, "int32"), ops.shape(labels))


def scatter_rows(index, values, shape):
    """Zeros of `shape` ([N] or [B, N]) with values [..., K] added at
    index [..., K] along the last axis (duplicates add up)."""
    if len(index.shape) == 1:
        return ops.scatter(index[:, None], values, shape)
    batch, k = index.shape[0] or ops.shape(index)[0], index.shape[1]
    rows = ops.repeat(ops.arange(batch, dtype="int32")[:, None], k, axis=1)
    coords = ops.reshape(ops.stack([rows, index], axis=-1), (-1, 2))
    return ops.scatter(coords, ops.reshape(values, (-1,)), shape)
