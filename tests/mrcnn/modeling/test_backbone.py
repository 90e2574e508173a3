"""Tests of mrcnn/modeling/backbone.py: Matterport weight layout, shapes, BatchNorm."""

import ast
import pathlib
import re

import keras
import numpy as np
import pytest

from mrcnn.modeling.backbone import BatchNorm, build_backbone, build_resnet
from mrcnn.modeling.heads import FpnClassifierHead, FpnMaskHead, build_rpn_model

DATA = pathlib.Path(__file__).resolve().parents[2] / "data"
NUM_CLASSES = 81
LAYOUTS = {
    "resnet50": DATA / "matterport_r50_coco81_layout.tsv",
    "resnet101": DATA / "matterport_r101_coco81_layout.tsv",
}
# Layers treated as one group, weights named `sublayer/var:0` (as in the .h5).
GROUPS = ("rpn_model",)


def to_np(x):
    """A tensor or Keras variable as a numpy array."""
    return np.asarray(x.numpy() if hasattr(x, "numpy") else x)


def read_layout(path):
    """Parses a layout tsv: rows (layer, weight, shape) and the totals."""
    rows, totals = [], {}
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        if line.startswith("#"):
            for item in line.lstrip("# ").split("\t")[0].split(" total "):
                key, value = item.replace("total ", "").split("=")
                totals[key.strip()] = int(value)
            continue
        layer, weight, shape = line.split("\t")
        rows.append((layer, weight, tuple(ast.literal_eval(shape))))
    return rows, totals


def weight_layout(layer):
    """(layer, weight, shape) rows of every weight-carrying leaf layer.

    Recurses through `_flatten_layers(include_self=False, recursive=False)`;
    a layer named in GROUPS is one entry whose weights are named after its
    sub-layers.
    """
    rows = []
    for sub in layer._flatten_layers(include_self=False, recursive=False):
        if sub.name in GROUPS:
            for leaf in _leaves(sub):
                for w in leaf.weights:
                    rows.append(
                        (sub.name, f"{leaf.name}/{w.name}:0", tuple(w.shape))
                    )
        elif list(sub._flatten_layers(include_self=False, recursive=False)):
            rows.extend(weight_layout(sub))
        else:
            for w in sub.weights:
                rows.append(
                    (sub.name, f"{sub.name}/{w.name}:0", tuple(w.shape))
                )
    return rows


def _leaves(layer):
    subs = list(layer._flatten_layers(include_self=False, recursive=False))
    if not subs:
        return [layer]
    return [leaf for sub in subs for leaf in _leaves(sub)]


def weights_per_layer(rows):
    per_layer = {}
    for layer, weight, _ in rows:
        per_layer.setdefault(layer, []).append(weight)
    return per_layer


def build_full_model(architecture):
    """Backbone + RPN (on every level) + both heads, 81 classes."""
    image = keras.Input(shape=(None, None, 3), name="input_image")
    pyramid = build_backbone(architecture, train_bn=False)(image)
    rpn = build_rpn_model(1, 3, 256)
    rpn_outputs = [rpn(p) for p in pyramid]
    rois = keras.Input(shape=(None, 7, 7, 256), name="pooled_rois")
    mask_rois = keras.Input(shape=(None, 14, 14, 256), name="pooled_mask_rois")
    class_outputs = FpnClassifierHead(NUM_CLASSES, name="classifier_head")(rois)
    masks = FpnMaskHead(NUM_CLASSES, name="mask_head")(mask_rois)
    outputs = [o for level in rpn_outputs for o in level]
    outputs += list(class_outputs) + [masks]
    return keras.Model([image, rois, mask_rois], outputs, name="full")


@pytest.fixture(scope="module", params=["resnet50", "resnet101"])
def full_model(request):
    return request.param, build_full_model(request.param)


def test_layout_matches_matterport(full_model):
    architecture, model = full_model
    expected, totals = read_layout(LAYOUTS[architecture])
    actual = weight_layout(model)

    assert len(actual) == len(expected) == totals["weight arrays"]
    assert len(set(actual)) == len(actual)
    assert set(actual) == set(expected)
    # Per layer, weights in the .h5 order (kernel, bias; gamma, beta,
    # moving_mean, moving_variance; rpn sub-layers in order).
    assert weights_per_layer(actual) == weights_per_layer(expected)
    params = sum(int(np.prod(shape)) for _, _, shape in actual)
    assert params == totals["params"]


def test_non_weight_layers_do_not_take_matterport_names(full_model):
    architecture, model = full_model
    expected, _ = read_layout(LAYOUTS[architecture])
    weight_layers = {layer for layer, _, _ in expected}
    backbone = model.get_layer("backbone")
    names = [layer.name for layer in backbone.layers]
    assert len(names) == len(set(names))
    for layer in backbone.layers:
        if not layer.weights:
            assert layer.name not in weight_layers, layer.name
    assert backbone.get_layer("fpn_p6").weights == []


@pytest.mark.parametrize("height,width", [(128, 128), (64, 192)])
def test_backbone_output_shapes(height, width):
    backbone = build_backbone("resnet50", train_bn=False)
    images = np.random.default_rng(0).normal(
        size=(2, height, width, 3)).astype("float32")
    pyramid = backbone(images)
    assert len(pyramid) == 5
    for p, stride in zip(pyramid, (4, 8, 16, 32, 64)):
        assert tuple(p.shape) == (2, height // stride, width // stride, 256)
    assert backbone.name == "backbone"


def test_backbone_pyramid_size():
    backbone = build_backbone("resnet50", train_bn=False, pyramid_size=64)
    pyramid = backbone(np.zeros((1, 64, 64, 3), "float32"))
    assert [tuple(p.shape) for p in pyramid] == [
        (1, 16, 16, 64), (1, 8, 8, 64), (1, 4, 4, 64), (1, 2, 2, 64),
        (1, 1, 1, 64),
    ]


def test_resnet_output_shapes():
    resnet = build_resnet("resnet50", train_bn=False)
    c2, c3, c4, c5 = resnet(np.zeros((1, 64, 128, 3), "float32"))
    assert tuple(c2.shape) == (1, 16, 32, 256)
    assert tuple(c3.shape) == (1, 8, 16, 512)
    assert tuple(c4.shape) == (1, 4, 8, 1024)
    assert tuple(c5.shape) == (1, 2, 4, 2048)


def test_resnet14_is_resnet50_with_only_the_first_block_of_each_stage():
    small, r50 = build_resnet("resnet14", train_bn=False), build_resnet("resnet50", train_bn=False)
    c2, c3, c4, c5 = small(np.zeros((1, 64, 128, 3), "float32"))
    assert [tuple(c.shape) for c in (c2, c3, c4, c5)] == [
        (1, 16, 32, 256), (1, 8, 16, 512), (1, 4, 8, 1024), (1, 2, 4, 2048)]
    shapes = {w.path: tuple(w.shape) for w in small.weights}
    first = re.compile(r"conv1|bn_conv1|(res|bn)[2-5]a_branch.*")
    first_blocks = {w.path: tuple(w.shape) for w in r50.weights
                    if first.fullmatch(w.path.split("/")[0])}
    assert shapes == first_blocks
    assert {w.path.split("/")[0][:5] for w in small.weights if w.path.startswith("res")} == {
        "res2a", "res3a", "res4a", "res5a"}


def test_unknown_architecture_raises():
    with pytest.raises(ValueError, match="architecture"):
        build_backbone("resnet18", train_bn=False)


def test_frozen_backbone_ignores_training_flag():
    backbone = build_backbone("resnet50", train_bn=False)
    images = np.random.default_rng(1).normal(
        size=(2, 64, 64, 3)).astype("float32")
    bn = backbone.get_layer("bn_conv1")
    bn.moving_mean.assign(np.full((64,), 0.5, "float32"))
    before = [to_np(w) for w in backbone.non_trainable_weights]
    train_out = backbone(images, training=True)
    infer_out = backbone(images, training=False)
    for a, b in zip(train_out, infer_out):
        np.testing.assert_array_equal(to_np(a), to_np(b))
    after = [to_np(w) for w in backbone.non_trainable_weights]
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)


def _bn_input(seed=0):
    return np.random.default_rng(seed).normal(
        3.0, 2.0, size=(8, 4, 4, 16)).astype("float32")


def test_batchnorm_frozen():
    bn = BatchNorm(train_bn=False)
    x = _bn_input()
    bn.build(x.shape)
    bn.moving_mean.assign(np.full((16,), 1.0, "float32"))
    bn.moving_variance.assign(np.full((16,), 4.0, "float32"))
    out_train = to_np(bn(x, training=True))
    out_infer = to_np(bn(x, training=False))
    np.testing.assert_array_equal(out_train, out_infer)
    np.testing.assert_allclose(
        out_infer, (x - 1.0) / np.sqrt(4.0 + 1e-3), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(to_np(bn.moving_mean), 1.0)
    np.testing.assert_array_equal(to_np(bn.moving_variance), 4.0)


def test_batchnorm_trainable():
    bn = BatchNorm(train_bn=True)
    x = _bn_input()
    bn.build(x.shape)
    out_train = to_np(bn(x, training=True))
    out_infer = to_np(bn(x, training=False))
    assert not np.allclose(out_train, out_infer)
    # Batch statistics: normalized output has ~zero mean, unit variance.
    np.testing.assert_allclose(out_train.mean(axis=(0, 1, 2)), 0.0, atol=1e-4)
    assert np.all(to_np(bn.moving_mean) > 0.0)
    assert not np.allclose(to_np(bn.moving_variance), 1.0)


def test_batchnorm_matches_matterport_defaults_and_config():
    bn = BatchNorm(train_bn=True, name="bn_conv1")
    assert bn.epsilon == pytest.approx(1e-3)
    assert bn.momentum == pytest.approx(0.99)
    config = bn.get_config()
    assert config["train_bn"] is True
    clone = BatchNorm.from_config(config)
    assert clone.train_bn is True and clone.name == "bn_conv1"
    assert BatchNorm().train_bn is False


def test_zero_init_residual_starts_each_block_as_its_shortcut():
    plain = build_backbone("resnet50", False, 32)
    zero = build_backbone("resnet50", False, 32, zero_init_residual=True)
    for model, gamma in ((plain, 1.0), (zero, 0.0)):
        bn = model.get_layer("bn2a_branch2c")
        assert float(np.max(np.abs(bn.gamma.numpy() - gamma))) == 0.0
        assert float(np.min(model.get_layer("bn2a_branch2b").gamma.numpy())) == 1.0
    # Identity blocks then pass their input through (before the final ReLU).
    x = np.random.default_rng(0).random((1, 64, 64, 3)).astype(np.float32) * 100
    c2 = keras.Model(zero.inputs, zero.get_layer("res2b_out").output)
    before = keras.Model(zero.inputs, zero.get_layer("res2a_out").output)
    np.testing.assert_allclose(c2(x), np.maximum(before(x), 0), rtol=1e-6)
