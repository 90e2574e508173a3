"""Tests of mrcnn/modeling/heads.py: RPN and ROI heads (shapes, names, order)."""

import ast
import pathlib

import keras
import numpy as np
import pytest

from mrcnn.modeling.backbone import BatchNorm
from mrcnn.modeling.heads import FpnClassifierHead, FpnMaskHead, build_rpn_model

LAYOUT = (
    pathlib.Path(__file__).resolve().parents[2]
    / "data" / "matterport_r101_coco81_layout.tsv"
)
NUM_CLASSES = 81


def to_np(x):
    """A tensor or Keras variable as a numpy array."""
    return np.asarray(x.numpy() if hasattr(x, "numpy") else x)


def read_layout_rows(prefixes):
    """(layer, weight, shape) rows of the tsv for layers named prefixes*."""
    rows = []
    for line in LAYOUT.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        layer, weight, shape = line.split("\t")
        if layer.startswith(prefixes):
            rows.append((layer, weight, tuple(ast.literal_eval(shape))))
    return rows


def leaf_layers(layer):
    """Leaf layers, by recursive `_flatten_layers(recursive=False)`."""
    leaves = []
    for sub in layer._flatten_layers(include_self=False, recursive=False):
        if list(sub._flatten_layers(include_self=False, recursive=False)):
            leaves.extend(leaf_layers(sub))
        else:
            leaves.append(sub)
    return leaves


def layout_rows(layer):
    return [
        (leaf.name, f"{leaf.name}/{w.name}:0", tuple(w.shape))
        for leaf in leaf_layers(layer)
        for w in leaf.weights
    ]


def by_layer(rows):
    out = {}
    for layer, weight, shape in rows:
        out.setdefault(layer, []).append((weight, shape))
    return out


def features(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


# ---------------------------------------------------------------------------
# RPN


def test_rpn_model_layout():
    rpn = build_rpn_model(1, 3, 256)
    assert rpn.name == "rpn_model"
    assert rpn.inputs[0].name == "input_rpn_feature_map"
    rows = [
        ("rpn_model", f"{leaf.name}/{w.name}:0", tuple(w.shape))
        for leaf in leaf_layers(rpn)
        for w in leaf.weights
    ]
    assert rows == read_layout_rows(("rpn_model",))


def test_rpn_conv_filters_set_the_shared_width():
    rpn = build_rpn_model(1, 3, 32, conv_filters=24)
    assert rpn.get_layer("rpn_conv_shared").kernel.shape == (3, 3, 32, 24)
    assert rpn.get_layer("rpn_class_raw").kernel.shape == (1, 1, 24, 6)


@pytest.mark.parametrize("height,width", [(32, 32), (16, 48)])
def test_rpn_output_shapes(height, width):
    rpn = build_rpn_model(1, 3, 256)
    logits, probs, deltas = rpn(features((2, height, width, 256)))
    k = height * width * 3
    assert tuple(logits.shape) == (2, k, 2)
    assert tuple(probs.shape) == (2, k, 2)
    assert tuple(deltas.shape) == (2, k, 4)
    np.testing.assert_allclose(to_np(probs).sum(-1), 1.0, rtol=1e-5)


def test_rpn_anchor_stride():
    rpn = build_rpn_model(2, 3, 64)
    logits, _, deltas = rpn(features((1, 16, 8, 64)))
    assert tuple(logits.shape) == (1, 8 * 4 * 3, 2)
    assert tuple(deltas.shape) == (1, 8 * 4 * 3, 4)


def test_rpn_order_is_y_x_anchor():
    rpn = build_rpn_model(1, 3, 32)
    x = features((2, 5, 7, 32), seed=3)
    raw = keras.Model(
        rpn.input,
        [rpn.get_layer("rpn_class_raw").output,
         rpn.get_layer("rpn_bbox_pred").output],
    )
    class_raw, bbox_raw = (to_np(t) for t in raw(x))
    logits, probs, deltas = (to_np(t) for t in rpn(x))
    # [B, H, W, A * 2] -> [B, H * W * A, 2], row-major (y, x, anchor).
    np.testing.assert_allclose(
        logits, class_raw.reshape(2, -1, 2), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        deltas, bbox_raw.reshape(2, -1, 4), rtol=1e-5, atol=1e-5)
    y, xx, a = 3, 4, 2
    index = (y * 7 + xx) * 3 + a
    np.testing.assert_allclose(
        logits[1, index], class_raw[1, y, xx, 2 * a:2 * a + 2], rtol=1e-5)
    e = np.exp(logits - logits.max(-1, keepdims=True))
    np.testing.assert_allclose(
        probs, e / e.sum(-1, keepdims=True), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------
# Classifier head


def test_classifier_head_layout():
    head = FpnClassifierHead(NUM_CLASSES)
    head.build((None, None, 7, 7, 256))
    expected = read_layout_rows(("mrcnn_class", "mrcnn_bbox"))
    actual = layout_rows(head)
    assert set(actual) == set(expected)
    assert by_layer(actual) == by_layer(expected)


@pytest.mark.parametrize("num_rois", [5, 0])
def test_classifier_head_shapes(num_rois):
    head = FpnClassifierHead(NUM_CLASSES)
    logits, probs, deltas = head(features((2, num_rois, 7, 7, 256)))
    assert tuple(logits.shape) == (2, num_rois, NUM_CLASSES)
    assert tuple(probs.shape) == (2, num_rois, NUM_CLASSES)
    assert tuple(deltas.shape) == (2, num_rois, NUM_CLASSES, 4)
    if num_rois:
        np.testing.assert_allclose(to_np(probs).sum(-1), 1.0, rtol=1e-5)


def test_classifier_head_rois_are_independent():
    head = FpnClassifierHead(5, pool_size=3, fc_layers_size=16)
    x = features((2, 4, 3, 3, 8), seed=1)
    logits, _, deltas = (to_np(t) for t in head(x))
    single_logits, _, single_deltas = (
        to_np(t) for t in head(x[1:2, 2:3])
    )
    np.testing.assert_allclose(
        logits[1, 2], single_logits[0, 0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        deltas[1, 2], single_deltas[0, 0], rtol=1e-4, atol=1e-5)


def test_classifier_head_in_functional_model_with_unknown_rois():
    rois = keras.Input(shape=(None, 7, 7, 256))
    outputs = FpnClassifierHead(NUM_CLASSES)(rois)
    assert [tuple(o.shape) for o in outputs] == [
        (None, None, NUM_CLASSES), (None, None, NUM_CLASSES),
        (None, None, NUM_CLASSES, 4),
    ]
    model = keras.Model(rois, list(outputs))
    for n in (3, 0):
        logits, _, deltas = model(features((1, n, 7, 7, 256)))
        assert tuple(logits.shape) == (1, n, NUM_CLASSES)
        assert tuple(deltas.shape) == (1, n, NUM_CLASSES, 4)


def test_classifier_head_config_round_trip():
    head = FpnClassifierHead(
        7, pool_size=5, fc_layers_size=32, train_bn=True, name="cls")
    config = head.get_config()
    for key, value in dict(
        num_classes=7, pool_size=5, fc_layers_size=32, train_bn=True
    ).items():
        assert config[key] == value
    clone = FpnClassifierHead.from_config(config)
    assert clone.name == "cls" and clone.train_bn is True
    assert clone.class_bn1.train_bn is True
    logits, _, _ = clone(features((1, 2, 5, 5, 8)))
    assert tuple(logits.shape) == (1, 2, 7)


# ---------------------------------------------------------------------------
# Mask head


def test_mask_head_layout():
    head = FpnMaskHead(NUM_CLASSES)
    head.build((None, None, 14, 14, 256))
    expected = read_layout_rows(("mrcnn_mask",))
    actual = layout_rows(head)
    assert set(actual) == set(expected)
    assert by_layer(actual) == by_layer(expected)


@pytest.mark.parametrize("num_rois", [5, 0])
def test_mask_head_shapes(num_rois):
    head = FpnMaskHead(NUM_CLASSES)
    masks = to_np(head(features((2, num_rois, 14, 14, 256))))
    assert masks.shape == (2, num_rois, 28, 28, NUM_CLASSES)
    assert np.isfinite(masks).all()  # logits: the model takes the sigmoid


def test_mask_head_in_functional_model_and_config():
    rois = keras.Input(shape=(None, 14, 14, 256))
    masks = FpnMaskHead(NUM_CLASSES, name="mask_head")(rois)
    assert tuple(masks.shape) == (None, None, 28, 28, NUM_CLASSES)
    config = FpnMaskHead(3, train_bn=True, conv_filters=16, name="m").get_config()
    assert config["num_classes"] == 3 and config["train_bn"] is True
    assert config["conv_filters"] == 16
    clone = FpnMaskHead.from_config(config)
    assert clone.mask_bn4.train_bn is True
    assert tuple(clone(features((1, 2, 6, 6, 4))).shape) == (1, 2, 12, 12, 3)
    # MASK_CONV_DIM: the width of every convolution but the last
    assert clone.mask_conv1.kernel.shape == (3, 3, 4, 16)
    assert clone.mask_deconv.kernel.shape[-1] == 16  # (2, 2, out, in)
    assert clone.mask_out.kernel.shape == (1, 1, 16, 3)


# ---------------------------------------------------------------------------
# train_bn in the heads


def _bn_layers(head):
    return [leaf for leaf in leaf_layers(head) if isinstance(leaf, BatchNorm)]


@pytest.mark.parametrize(
    "make_head,shape",
    [
        (lambda bn: FpnClassifierHead(4, pool_size=3, fc_layers_size=16,
                                      train_bn=bn), (2, 3, 3, 3, 8)),
        (lambda bn: FpnMaskHead(4, train_bn=bn), (1, 3, 4, 4, 8)),
    ],
)
def test_heads_train_bn(make_head, shape):
    x = features(shape, seed=2) * 3.0 + 1.0

    frozen = make_head(False)
    out_train = keras.tree.flatten(frozen(x, training=True))
    out_infer = keras.tree.flatten(frozen(x, training=False))
    for a, b in zip(out_train, out_infer):
        np.testing.assert_array_equal(to_np(a), to_np(b))
    bns = _bn_layers(frozen)
    assert bns and all(not bn.train_bn for bn in bns)
    for bn in bns:
        np.testing.assert_array_equal(to_np(bn.moving_mean), 0.0)

    trainable = make_head(True)
    out_train = keras.tree.flatten(trainable(x, training=True))
    out_infer = keras.tree.flatten(trainable(x, training=False))
    assert not np.allclose(to_np(out_train[0]), to_np(out_infer[0]))
    bns = _bn_layers(trainable)
    assert any(
        not np.allclose(to_np(bn.moving_mean), 0.0) for bn in bns)


@pytest.mark.parametrize("layer, shape", [("class_conv1", (6, 3, 3, 8)),
                                          ("class_conv2", (6, 1, 1, 16))])
def test_classifier_whole_window_conv_equals_the_convolution(layer, shape):
    """The classifier's S x S conv and its 1 x 1 conv run as one matmul
    each (heads.py says why): the same values and gradients as the Conv2D
    layer's own call, to float rounding."""
    import tensorflow as tf

    from mrcnn.modeling.heads import _whole_window_conv

    head = FpnClassifierHead(5, pool_size=3, fc_layers_size=16)
    head.build((None, None, 3, 3, 8))
    conv = getattr(head, layer)
    conv.bias.assign(np.linspace(-1.0, 1.0, 16, dtype=np.float32))
    x = tf.constant(features(shape, seed=2))
    grads = []
    for fn in (conv, lambda t: _whole_window_conv(conv, t)):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x)
            loss = tf.reduce_sum(y * tf.range(16, dtype=tf.float32))
        grads.append([to_np(y)] + [to_np(g) for g in tape.gradient(loss, [x, conv.kernel,
                                                                         conv.bias])])
    for by_conv, by_matmul in zip(*grads):
        assert by_conv.shape == by_matmul.shape
        np.testing.assert_allclose(by_matmul, by_conv, rtol=1e-5, atol=1e-5)
