"""mrcnn/modeling/serving.py: molding and un-molding as graph ops give what
the numpy path of MaskRCNN.detect gives."""

import numpy as np
import pytest
import tensorflow as tf

from mrcnn.data.image import mold_batch
from mrcnn.modeling import postprocess
from mrcnn.modeling.serving import Molding, mold_images, unmold_batch

MEAN = (123.7, 116.8, 103.9)
IMAGES = tf.TensorSpec([None, None, None, 3], tf.uint8)


@pytest.mark.parametrize("mode, min_dim, max_dim, min_scale", [
    ("square", 64, 128, 0), ("pad64", 64, 0, 0), ("pad64", 64, 0, 2.0), ("fit64", 64, 128, 0),
    ("none", 0, 0, 0),
])
def test_mold_images_is_mold_batch(mode, min_dim, max_dim, min_scale):
    molding = Molding(mode, min_dim, max_dim, min_scale, MEAN, 5)
    mold = tf.function(lambda x: mold_images(x, molding), input_signature=[IMAGES])
    rng = np.random.default_rng(0)
    differing = 0
    for shape in [(100, 150), (61, 203), (128, 96), (40, 40), (130, 260)]:
        image = rng.integers(0, 256, (*shape, 3), np.uint8)
        expected, metas, windows = mold_batch([image], min_dim, max_dim, min_scale, mode, MEAN, 5)
        molded, meta, window, _ = mold(image[None])
        assert molded.shape == expected.shape
        np.testing.assert_array_equal(meta.numpy(), metas)
        np.testing.assert_array_equal(window.numpy(), windows[0])
        # The bilinear resize equals skimage's but for rare rounding ties (one grey level).
        delta = np.abs(molded.numpy() - expected)
        assert delta.max() <= 1.0
        differing += int((delta > 0).sum())
    assert differing <= 3


def test_crop_mode_cannot_be_served():
    with pytest.raises(ValueError, match="cannot be served"):
        mold_images(np.zeros((1, 8, 8, 3), np.uint8), Molding("crop", 64, 64, 0, MEAN, 2))


def test_unmold_batch_is_unmold_detections():
    """Random detections of two images (zero-padded, one box empty once in
    the original pixels) give detect()'s boxes, classes, scores and masks."""
    rng = np.random.default_rng(1)
    d, c, molded_shape, window, original = 8, 4, (128, 128), np.array([32, 0, 96, 128]), (50, 100)
    detections = np.zeros((2, d, 6), np.float32)
    for b, n in enumerate((6, 3)):
        y1 = rng.uniform(0.25, 0.6, n)
        x1 = rng.uniform(0.0, 0.6, n)
        detections[b, :n] = np.stack([y1, x1, y1 + rng.uniform(0.05, 0.15, n),
                                      x1 + rng.uniform(0.05, 0.3, n),
                                      rng.integers(1, c, n), np.sort(rng.random(n))[::-1]], 1)
    detections[0, 2, 2] = detections[0, 2, 0] + 1e-4  # nothing left once rounded
    masks = rng.random((2, d, 7, 7, c)).astype(np.float32)
    out = unmold_batch(tf.constant(detections), tf.constant(masks), molded_shape, window,
                       original)
    out = {k: v.numpy() for k, v in out.items()}
    assert list(out["num_detections"]) == [5, 3]
    for b in range(2):
        r = postprocess.unmold_detections(detections[b], masks[b], (*original, 3),
                                          (*molded_shape, 3), window)
        n = out["num_detections"][b]
        np.testing.assert_array_equal(out["boxes"][b, :n], r["rois"])
        np.testing.assert_array_equal(out["class_ids"][b, :n], r["class_ids"])
        np.testing.assert_array_equal(out["scores"][b, :n], r["scores"])
        np.testing.assert_array_equal(np.moveaxis(out["masks"][b, :n], 0, -1), r["masks"])
        assert r["masks"].any()
        assert not out["masks"][b, n:].any() and not out["boxes"][b, n:].any()
