import numpy as np
import pytest
import tensorflow as tf

from mrcnn.data import masks
from mrcnn.data.augmentation import FlipCrop, ImgaugAugmentation, resize_like_tf


def _scene(height=120, width=160):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    full = np.zeros((height, width, 3), bool)
    full[10:50, 20:70, 0] = True
    full[60:110, 100:150, 1] = True
    full[5:20, 140:160, 2] = True  # at the right border
    return image, full


def _fixed(window, flip, **kw):
    aug = FlipCrop(**kw)
    aug.sample = lambda h, w: (tf.constant(window, tf.int32), tf.constant(flip))
    return aug


def test_flip_only_mirrors_image_and_masks():
    image, full = _scene()
    out_image, out_masks = _fixed([0, 0, 120, 160], True)(image, full)
    np.testing.assert_array_equal(out_image, image[:, ::-1])
    np.testing.assert_array_equal(out_masks, full[:, ::-1])


def test_crop_resizes_back_and_keeps_the_window_content():
    image, full = _scene()
    out_image, out_masks = _fixed([12, 16, 108, 144], False)(image, full)
    assert out_image.shape == image.shape and out_image.dtype == tf.uint8
    reference = tf.image.resize(image[12:108, 16:144], (120, 160)).numpy()
    np.testing.assert_array_equal(out_image, np.clip(np.round(reference), 0, 255))
    expected = tf.image.resize(full[12:108, 16:144].astype(np.uint8), (120, 160), "nearest")
    np.testing.assert_array_equal(out_masks, expected.numpy().astype(bool))


def test_instance_path_agrees_with_full_masks():
    image, full = _scene()
    boxes = masks.boxes_from_masks(full)
    mini = masks.mini_masks(full, boxes, (56, 56))
    aug = _fixed([12, 16, 108, 144], True)
    image_a, masks_a = aug(image, full)
    image_b, boxes_b, mini_b, keep = aug.apply_to_instances(image, boxes, mini)
    np.testing.assert_array_equal(image_a, image_b)
    assert keep.numpy().all()
    np.testing.assert_allclose(boxes_b, masks.boxes_from_masks(masks_a), atol=1.5)


def test_draws_follow_the_probabilities_and_keep_the_centre():
    aug = FlipCrop(flip=0.5, crop=0.5, max_crop=0.2, seed=3)
    draws = [aug.sample(100, 200) for _ in range(400)]
    windows = np.array([w.numpy() for w, _ in draws])
    flips = np.array([f.numpy() for _, f in draws])
    cropped = (windows != [0, 0, 100, 200]).any(1)
    assert 0.4 < flips.mean() < 0.6 and 0.4 < cropped.mean() < 0.6
    assert (windows[:, :2] <= [20, 40]).all() and (windows[:, 2:] >= [80, 160]).all()
    assert (windows[cropped, :2] + [100, 200] - windows[cropped, 2:]).sum(1).min() >= 0
    # Each side independently: some crops take more off the top than the bottom.
    top, bottom = windows[cropped, 0], 100 - windows[cropped, 2]
    assert (top > bottom).any() and (top < bottom).any()


def test_keep_aspect_takes_the_same_fraction_off_both_axes():
    aug = FlipCrop(flip=0.0, crop=1.0, max_crop=0.2, keep_aspect=True, seed=1)
    for _ in range(50):
        window, flip = aug.sample(500, 1000)
        y1, x1, y2, x2 = window.numpy()
        assert not flip.numpy()
        assert abs((y2 - y1) / 500 - (x2 - x1) / 1000) < 0.005
        assert min(y1, 500 - y2) >= 0 and max(y1, 500 - y2) <= 100 + 1
        assert max(x1, 1000 - x2) <= 200 + 1


def test_probabilities_zero_change_nothing():
    image, full = _scene()
    out_image, out_masks = FlipCrop(flip=0.0, crop=0.0)(image, full)
    np.testing.assert_array_equal(out_image, image)
    np.testing.assert_array_equal(out_masks, full)


def test_bad_arguments():
    with pytest.raises(ValueError, match="max_crop"):
        FlipCrop(max_crop=0.5)
    with pytest.raises(ValueError, match="flip probability"):
        FlipCrop(flip=2)


class FakeFliplr:
    """An imgaug-style augmenter: to_deterministic() -> augment_image()."""

    def __init__(self):
        self.calls = []

    def to_deterministic(self):
        return self

    def augment_image(self, image, hooks=None):
        self.calls.append(image.shape)
        return image[:, ::-1]


def test_imgaug_adapter_applies_one_draw_to_image_and_masks():
    image, full = _scene()
    fake = FakeFliplr()
    out_image, out_masks = ImgaugAugmentation(fake)(image, full)
    np.testing.assert_array_equal(out_image, image[:, ::-1])
    np.testing.assert_array_equal(out_masks, full[:, ::-1])
    assert fake.calls == [(120, 160, 3), (120, 160, 3)]


def test_imgaug_adapter_rejects_non_augmenters_and_shape_mismatch():
    with pytest.raises(TypeError, match="to_deterministic"):
        ImgaugAugmentation(lambda image: image)

    class Shrink(FakeFliplr):
        def augment_image(self, image, hooks=None):
            self.calls.append(image.shape)
            return image[:10] if len(self.calls) == 1 else image

    image, full = _scene()
    with pytest.raises(Exception, match="changed image and masks differently"):
        ImgaugAugmentation(Shrink())(image, full)


# ------------------------------------------------------------ NumPy twins
@pytest.mark.parametrize("size, out", [((96, 128), (120, 160)), ((37, 53), (120, 160)),
                                       ((120, 160), (61, 87)), ((5, 7), (64, 64))])
@pytest.mark.parametrize("method", ["bilinear", "nearest"])
def test_resize_like_tf_equals_tf_image_resize(size, out, method):
    image = np.random.default_rng(2).integers(0, 255, (*size, 3), dtype=np.uint8)
    expected = tf.image.resize(image, out, method).numpy()
    np.testing.assert_array_equal(resize_like_tf(image, out, method), expected)


@pytest.mark.parametrize("window, flip", [([12, 16, 108, 144], True), ([0, 0, 120, 160], True),
                                          ([3, 0, 117, 151], False), ([0, 0, 120, 160], False)])
def test_numpy_augmentation_equals_the_graphs_for_the_same_draw(window, flip):
    image, full = _scene()
    boxes = masks.boxes_from_masks(full).numpy()
    mini = masks.mini_masks(full, boxes, (56, 56)).numpy()
    aug = _fixed(window, flip)
    aug.draw = lambda h, w, rng: (np.array(window, np.int32), flip)
    graph_image, graph_masks = aug(image, full)
    numpy_image, numpy_masks = aug.augment_numpy(image, full, rng=None)
    np.testing.assert_array_equal(numpy_image, graph_image)
    np.testing.assert_array_equal(numpy_masks, graph_masks)
    graph = aug.apply_to_instances(image, boxes, mini)
    numpy = aug.apply_to_instances_numpy(image, boxes, mini, rng=None)
    for a, b in zip(numpy, graph):
        np.testing.assert_array_equal(a, b)


def test_numpy_draws_follow_the_probabilities_and_the_formula():
    aug = FlipCrop(flip=0.5, crop=0.5, max_crop=0.2, keep_aspect=True)
    rng = np.random.default_rng(0)
    draws = [aug.draw(100, 200, rng) for _ in range(400)]
    windows = np.array([w for w, _ in draws])
    cropped = (windows != [0, 0, 100, 200]).any(1)
    assert 0.4 < np.mean([f for _, f in draws]) < 0.6 and 0.4 < cropped.mean() < 0.6
    # keep 0.96 of each side (u[0]), 0.04 split 0.2 : 0.8 (top, u[1]) and 0.3 : 0.7
    # (left, u[2]); crop (u[5] < 0.5), no flip (u[6] >= 0.5).
    u = np.float32([0.1, 0.2, 0.3, 0.4, 0.5, 0.25, 0.75])
    window, flip = aug.window_of(u, 100, 200)
    assert window.tolist() == [0, 2, 97, 195] and window.dtype == np.int32 and flip is False
