"""Exact-value tests for mrcnn/modeling/matching.py: IoU bands, low-quality rule, sampling."""

import numpy as np
import pytest
import tensorflow as tf

from mrcnn.modeling import matching


def _match(iou, neg=0.3, pos=0.7, low_quality=True):
    """match on iou [N, M]; the [M, N] layout (gt_axis=-2) must agree."""
    iou = np.asarray(iou, np.float32)
    matched, labels = (t.numpy() for t in matching.match(iou, neg, pos, low_quality))
    matched_t, labels_t = (t.numpy() for t in matching.match(iou.T, neg, pos, low_quality,
                                                              gt_axis=-2))
    np.testing.assert_array_equal(matched_t, matched)
    np.testing.assert_array_equal(labels_t, labels)
    return matched, labels


# ----------------------------------------------------------------------- match
@pytest.mark.parametrize("low_quality", [False, True])
def test_match_bands(low_quality):
    iou = [[0.2], [0.3], [0.5], [0.7], [0.0], [0.29999], [0.69999], [0.9]]
    matched, labels = _match(iou, low_quality=low_quality)
    # 0.3 is not negative (>= negative_below), 0.7 is positive (>= positive_from)
    np.testing.assert_array_equal(labels, [-1, 0, 0, 1, -1, -1, 0, 1])
    np.testing.assert_array_equal(matched, np.zeros(8))
    assert labels.dtype == np.int32 and matched.dtype == np.int32


def test_match_picks_best_gt_per_prediction():
    iou = [
        [0.1, 0.8, 0.05],
        [0.75, 0.2, 0.0],
        [0.0, 0.1, 0.45],
        [0.2, 0.25, 0.1],
    ]
    matched, labels = _match(iou, low_quality=False)
    np.testing.assert_array_equal(matched, [1, 0, 2, 1])
    np.testing.assert_array_equal(labels, [1, 1, 0, -1])


def test_low_quality_rule_with_ties():
    # gt 0's best IoU is 0.4 (reached by rows 0 and 2): both positive;
    # gt 1 overlaps nothing (best IoU 0): nobody becomes positive for it.
    iou = [
        [0.4, 0.0],
        [0.1, 0.0],
        [0.4, 0.0],
        [0.35, 0.0],
        [0.0, 0.0],
    ]
    matched, labels = _match(iou)
    np.testing.assert_array_equal(labels, [1, -1, 1, 0, -1])
    np.testing.assert_array_equal(matched, [0, 0, 0, 0, 0])
    # Without the rule these are neutral.
    _, labels = _match(iou, low_quality=False)
    np.testing.assert_array_equal(labels, [0, -1, 0, 0, -1])


def test_low_quality_rule_overrides_negative_band():
    # gt 1's best IoU is 0.2 (< negative_below): row 1 still becomes positive,
    # matched to its own argmax (gt 1).
    iou = [[0.9, 0.0], [0.1, 0.2], [0.0, 0.1]]
    matched, labels = _match(iou)
    np.testing.assert_array_equal(labels, [1, 1, -1])
    np.testing.assert_array_equal(matched, [0, 1, 1])


def test_match_empty_ground_truth():
    for low_quality in (True, False):
        matched, labels = _match(np.zeros((5, 0), np.float32), low_quality=low_quality)
        np.testing.assert_array_equal(labels, [-1] * 5)
        np.testing.assert_array_equal(matched, [0] * 5)


def test_match_empty_ground_truth_in_graph():
    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32)])
    def f(iou):
        return matching.match(iou, 0.3, 0.7)

    matched, labels = f(tf.zeros([4, 0]))
    np.testing.assert_array_equal(labels.numpy(), [-1] * 4)
    np.testing.assert_array_equal(matched.numpy(), [0] * 4)
    matched, labels = f(tf.constant([[0.8], [0.1]]))
    np.testing.assert_array_equal(labels.numpy(), [1, -1])

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32)])
    def f_t(iou):  # [M, N]
        return matching.match(iou, 0.3, 0.7, gt_axis=-2)

    matched, labels = f_t(tf.zeros([0, 4]))
    np.testing.assert_array_equal(labels.numpy(), [-1] * 4)
    np.testing.assert_array_equal(matched.numpy(), [0] * 4)
    matched, labels = f_t(tf.constant([[0.8, 0.1]]))
    np.testing.assert_array_equal(labels.numpy(), [1, -1])


def test_match_layouts_agree_on_random_batches_with_ties():
    # IoUs on a coarse grid (many ties), padding columns of -1, a batch axis.
    rng = np.random.default_rng(3)
    iou = rng.integers(0, 8, (3, 50, 6)).astype(np.float32) / 8.0
    iou[1, :, 4:] = -1.0
    iou[2] = -1.0
    for low_quality in (True, False):
        matched, labels = matching.match(iou, 0.3, 0.7, low_quality)
        matched_t, labels_t = matching.match(np.swapaxes(iou, 1, 2), 0.3, 0.7, low_quality,
                                             gt_axis=-2)
        np.testing.assert_array_equal(np.asarray(matched_t), np.asarray(matched))
        np.testing.assert_array_equal(np.asarray(labels_t), np.asarray(labels))
        # matched is the first best column, as NumPy's argmax picks it.
        np.testing.assert_array_equal(np.asarray(matched)[:2], iou[:2].argmax(axis=-1))
    with pytest.raises(ValueError, match="gt_axis"):
        matching.match(iou, 0.3, 0.7, gt_axis=0)


# ------------------------------------------------------------- sample_balanced
def _sample(positive, negative, num_samples, fraction, seed):
    """sample_balanced as two index lists (positives, negatives), checking
    the layout: positives first, then negatives, then padding."""
    index, is_pos, valid = (np.asarray(t) for t in matching.sample_balanced(
        positive, negative, num_samples, fraction, seed=seed))
    assert index.shape == is_pos.shape == valid.shape == (num_samples,)
    assert index.dtype == np.int32
    n_pos, n_valid = is_pos.sum(), valid.sum()
    assert is_pos[:n_pos].all() and valid[:n_valid].all() and not valid[n_valid:].any()
    assert (index[n_valid:] == 0).all()
    return index[:n_pos], index[n_pos:n_valid]


def _flags(n, idx):
    out = np.zeros(n, bool)
    out[idx] = True
    return out


@pytest.mark.parametrize(
    "num_pos, num_neg, expect_pos, expect_neg",
    [
        (200, 1000, 128, 128),
        (100, 1000, 100, 156),  # fewer positives than the cap: negatives fill up
        (10, 1000, 10, 246),
        (0, 1000, 0, 256),
        (100, 20, 100, 20),  # not enough of either
        (300, 50, 128, 50),
    ],
)
def test_sample_balanced_counts(num_pos, num_neg, expect_pos, expect_neg):
    n = 2000
    rng = np.random.default_rng(num_pos + num_neg)
    perm = rng.permutation(n)
    pos_set, neg_set = perm[:num_pos], perm[num_pos : num_pos + num_neg]
    positive, negative = _flags(n, pos_set), _flags(n, neg_set)
    pos, neg = _sample(positive, negative, 256, 0.5, seed=1)
    assert len(pos) == expect_pos and len(neg) == expect_neg
    assert len(set(pos)) == len(pos) and len(set(neg)) == len(neg)
    assert set(pos) <= set(pos_set)
    assert set(neg) <= set(neg_set)


def test_sample_balanced_fraction_is_floored():
    positive = _flags(500, np.arange(100))
    negative = _flags(500, np.arange(100, 500))
    pos, neg = _sample(positive, negative, 200, 0.33, seed=3)
    assert len(pos) == 66 and len(neg) == 134  # int(200 * 0.33) = 66


def test_sample_balanced_is_random_subset():
    positive = _flags(1000, np.arange(0, 1000, 2))
    negative = ~positive
    pos, _ = _sample(positive, negative, 20, 0.5, seed=7)
    assert (pos % 2 == 0).all()
    # Not simply the first ten positives.
    assert sorted(pos) != list(range(0, 20, 2))


# ------------------------------------------------------------- subsample_labels
def test_subsample_labels_keeps_labels_only_on_sampled_rows():
    rng = np.random.default_rng(5)
    labels = np.zeros(3000, np.int32)
    perm = rng.permutation(3000)
    labels[perm[:100]] = 1
    labels[perm[100:1100]] = -1
    out = matching.subsample_labels(labels, 256, 0.5, seed=2).numpy()
    assert out.shape == (3000,) and out.dtype == np.int32
    assert (out == 1).sum() == 100 and (out == -1).sum() == 156
    kept = out != 0
    # every kept label equals the input label; neutral rows stay neutral
    np.testing.assert_array_equal(out[kept], labels[kept])
    assert (out[labels == 0] == 0).all()


def test_subsample_labels_under_budget_keeps_everything():
    labels = np.array([1, -1, 0, -1, 1, 0, -1], np.int32)
    out = matching.subsample_labels(labels, 256, 0.5, seed=0).numpy()
    np.testing.assert_array_equal(out, labels)


def test_subsample_labels_caps_positives():
    labels = np.array([1] * 10 + [-1] * 10 + [0] * 5, np.int32)
    out = matching.subsample_labels(labels, 8, 0.5, seed=0).numpy()
    assert (out == 1).sum() == 4 and (out == -1).sum() == 4
    assert (out[:10] != -1).all() and (out[10:20] != 1).all() and (out[20:] == 0).all()


def test_subsample_labels_batched_rows_are_independent():
    labels = np.zeros((2, 50), np.int32)
    labels[0, :5], labels[0, 5:30] = 1, -1
    labels[1, 40:], labels[1, :3] = -1, 1
    out = np.asarray(matching.subsample_labels(labels, 8, 0.5, seed=0))
    assert out.shape == (2, 50)
    assert ((out == 1).sum(axis=1) == [4, 3]).all() and ((out == -1).sum(axis=1) == [4, 5]).all()
    kept = out != 0
    np.testing.assert_array_equal(out[kept], labels[kept])


def test_first_true_in_order_padded():
    mask = np.array([[0, 1, 0, 1, 1, 0], [0, 0, 0, 0, 0, 1]], bool)
    index, valid = (np.asarray(t) for t in matching.first_true(mask, 4))
    np.testing.assert_array_equal(index, [[1, 3, 4, 0], [5, 0, 0, 0]])
    np.testing.assert_array_equal(valid, [[1, 1, 1, 0], [1, 0, 0, 0]])


def test_match_padding_columns_are_never_matched():
    iou = np.array([[0.8, -1.0], [0.1, -1.0], [0.0, -1.0]], np.float32)
    matched, labels = _match(iou)
    np.testing.assert_array_equal(labels, [1, -1, -1])
    np.testing.assert_array_equal(matched, [0, 0, 0])
    _, labels = _match(np.full((3, 2), -1.0, np.float32))
    np.testing.assert_array_equal(labels, [-1, -1, -1])


def test_sampling_compiles_under_xla_with_a_seed_generator():
    import keras

    seed = keras.random.SeedGenerator(4)
    labels = np.array([1] * 10 + [-1] * 10 + [0] * 5, np.int32)
    f = tf.function(lambda x: matching.subsample_labels(x, 8, 0.5, seed=seed), jit_compile=True)
    first, second = f(labels).numpy(), f(labels).numpy()
    for out in (first, second):
        assert (out == 1).sum() == 4 and (out == -1).sum() == 4
    assert (first != second).any()  # the generator moves on
