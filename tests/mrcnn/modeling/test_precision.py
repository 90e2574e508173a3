"""Mixed precision that keeps accuracy (issue 16): under mixed_float16 and
mixed_bfloat16 the layers compute in 16 bits, but the softmaxes, the mask
sigmoid, the losses and every ranked score are float32, and ground-truth
boxes and image meta are never cast to 16 bits.
"""

import keras
import numpy as np
import pytest

from mrcnn.modeling import box_ops, network
from tests.mrcnn.modeling.tiny import TinyConfig, small_box_regressions, tiny_inputs

POLICIES = ("mixed_float16", "mixed_bfloat16")


def _build(config, mode, policy, weights=None):
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = network.build_network(config, mode)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    if weights is not None:
        model.set_weights(weights)
    return model


@pytest.fixture(scope="module")
def reference():
    """A float32 inference network and its outputs. Random weights, tamed
    as trained ones are: small box regressions (proposals and detections
    near the anchors, not slivers whose IoU any rounding changes) and
    inputs that do not saturate the softmaxes (scores tied at 1.0)."""
    keras.utils.set_random_seed(7)
    config = TinyConfig()
    model = _build(config, "inference", "float32")
    small_box_regressions(model)
    inputs = {k: v for k, v in tiny_inputs(config).items() if k in ("image", "image_meta")}
    inputs["image"] = inputs["image"] / 10.0
    return config, model.get_weights(), inputs, _named(model, inputs)


def _named(model, inputs):
    return {k: keras.ops.convert_to_numpy(v)
            for k, v in model.inference_graph(inputs, training=False).items()}


@pytest.mark.parametrize("policy", POLICIES)
def test_scores_and_probabilities_are_float32(reference, policy):
    config, weights, inputs, _ = reference
    model = _build(config, "inference", policy, weights)
    assert model.backbone.compute_dtype == policy.split("_")[1]
    named = _named(model, inputs)
    for name in ("rpn_class", "mrcnn_class", "mrcnn_detection", "mrcnn_mask", "ROI"):
        assert named[name].dtype == np.float32, name
    # Scores not quantised to 16 bits: float16 has 11 significant bits.
    scores = named["mrcnn_class"].max(axis=-1).ravel()
    assert (np.round(scores * 2 ** 11) != scores * 2 ** 11).any()


@pytest.mark.parametrize("policy", POLICIES)
def test_top_detections_agree_with_float32(reference, policy):
    config, weights, inputs, expected = reference
    got = _named(_build(config, "inference", policy, weights), inputs)["mrcnn_detection"]
    for image in range(len(got)):
        for a, b in zip(got[image][:3], expected["mrcnn_detection"][image][:3]):  # the top 3
            assert b[5] > 0 and a[4] == b[4]
            assert float(box_ops.iou(a[None, :4], b[None, :4])[0, 0]) > 0.95
            assert a[5] == pytest.approx(b[5], abs=1e-2)


def test_ground_truth_and_meta_are_not_autocast():
    config = TinyConfig()
    model = _build(config, "training", "mixed_float16")
    seen = {}
    original = network.targets.detection_targets_batch

    def spy(proposals, gt_class_ids, gt_boxes, *args, **kwargs):
        seen["gt_boxes"] = gt_boxes.dtype
        return original(proposals, gt_class_ids, gt_boxes, *args, **kwargs)

    network.targets.detection_targets_batch = spy
    try:
        inputs = tiny_inputs(config)
        inputs["gt_boxes"][0, 0] = [0.1, 0.1, 0.5, 1999.0 / 2047.0]  # not a float16
        model(inputs, training=True)
    finally:
        network.targets.detection_targets_batch = original
    assert "float32" in str(seen["gt_boxes"])


class OneImageConfig(TinyConfig):
    IMAGES_PER_GPU = 1  # TensorFlow's float16 convolutions are slow on a CPU


@pytest.mark.parametrize("policy", POLICIES)
def test_trains_20_steps_with_finite_losses(policy):
    keras.utils.set_random_seed(8)
    config = OneImageConfig()
    model = _build(config, "training", policy)
    keras.mixed_precision.set_global_policy(policy)
    try:
        model.compile(optimizer=keras.optimizers.SGD(1e-3, momentum=0.9, clipnorm=5.0))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    if policy == "mixed_float16":
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    inputs = {k: v[:1] for k, v in tiny_inputs(config).items()}  # two instances
    history = [model.train_on_batch(inputs, return_dict=True) for _ in range(20)]
    for logs in history:
        assert all(np.isfinite(v) for v in logs.values()), logs
    assert history[-1]["loss"] < history[0]["loss"]
