"""Exact-value tests for mrcnn/data/masks.py: boxes from masks, mini-masks, pasting."""

import numpy as np
import tensorflow as tf

from mrcnn.data import masks


def _rect_mask(shape, *boxes):
    out = np.zeros((shape[0], shape[1], len(boxes)), bool)
    for i, (y1, x1, y2, x2) in enumerate(boxes):
        out[y1:y2, x1:x2, i] = True
    return out


def _disk(shape, cy, cx, r):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return ((yy + 0.5 - cy) ** 2 + (xx + 0.5 - cx) ** 2) <= r * r


def _iou(a, b):
    return np.logical_and(a, b).sum() / np.logical_or(a, b).sum()


# ------------------------------------------------------------ boxes_from_masks
def test_boxes_from_masks_rectangle():
    m = _rect_mask((12, 14), (3, 2, 7, 10))  # rows 3..6, cols 2..9
    out = masks.boxes_from_masks(m).numpy()
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, [[3, 2, 7, 10]])


def test_boxes_from_masks_several_and_empty():
    m = np.zeros((10, 12, 3), bool)
    m[0, 0, 0] = True  # single pixel at the corner
    m[[2, 8], [5, 11], 2] = True  # two separate pixels: the box spans both
    out = masks.boxes_from_masks(m).numpy()
    np.testing.assert_array_equal(out, [[0, 0, 1, 1], [0, 0, 0, 0], [2, 5, 9, 12]])


def test_boxes_from_masks_no_instances():
    out = masks.boxes_from_masks(np.zeros((10, 12, 0), bool)).numpy()
    assert out.shape == (0, 4)


def test_boxes_from_masks_accepts_uint8():
    m = _rect_mask((8, 8), (1, 2, 8, 8)).astype(np.uint8)
    np.testing.assert_array_equal(masks.boxes_from_masks(m).numpy(), [[1, 2, 8, 8]])


# --------------------------------------------------------------- resample_boxes
def _crop(image_hw, regions, out_size):
    image = tf.constant(image_hw, tf.float32)[None, :, :, None]
    boxes = masks.resample_boxes(np.asarray(regions, np.float32), image_hw.shape, out_size)
    return tf.image.crop_and_resize(image, boxes, [0] * len(regions), out_size).numpy()[..., 0]


def test_resample_boxes_identity_region():
    image = np.arange(7 * 9, dtype=np.float32).reshape(7, 9)
    out = _crop(image, [[0, 0, 7, 9]], (7, 9))
    np.testing.assert_allclose(out[0], image, atol=1e-4)


def test_resample_boxes_sub_region_is_a_plain_crop():
    image = np.arange(7 * 9, dtype=np.float32).reshape(7, 9)
    out = _crop(image, [[2, 3, 7, 9], [1, 1, 3, 2]], (5, 6))
    np.testing.assert_allclose(out[0], image[2:7, 3:9], atol=1e-4)
    out = _crop(image, [[1, 1, 3, 2]], (2, 1))
    np.testing.assert_allclose(out[0], image[1:3, 1:2], atol=1e-4)


def test_resample_boxes_halving_averages_2x2_blocks():
    image = np.arange(8 * 8, dtype=np.float32).reshape(8, 8) ** 1.0
    out = _crop(image, [[0, 0, 8, 8]], (4, 4))
    expected = image.reshape(4, 2, 4, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(out[0], expected, atol=1e-4)


def test_resample_boxes_formula():
    # region (2, 4, 6, 12) of a 11 x 21 grid into 4 x 8: one source pixel per
    # output pixel, centres at 2.5 .. 5.5 and 4.5 .. 11.5 -> pixel indices
    # 2 .. 5 and 4 .. 11, divided by (size - 1).
    out = masks.resample_boxes([[2.0, 4.0, 6.0, 12.0]], (11, 21), (4, 8)).numpy()
    np.testing.assert_allclose(out, [[2 / 10, 4 / 20, 5 / 10, 11 / 20]], rtol=1e-6)


# ------------------------------------------------------------------ mini_masks
def test_mini_mask_of_rectangle_in_its_box_is_all_true():
    # Boxes at least as large as the mini-mask (downsampling).
    m = _rect_mask((128, 128), (10, 20, 110, 90), (30, 5, 100, 125))
    boxes = masks.boxes_from_masks(m)
    mini = masks.mini_masks(m, boxes, (56, 56)).numpy()
    assert mini.shape == (2, 56, 56) and mini.dtype == bool
    assert mini.all()


def test_mini_mask_of_small_rectangle_is_true_but_for_corners():
    # Upsampling a 4 x 8 box to 56 x 56 bilinearly rounds off the corners only
    # (as Matterport's skimage resize does); edges stay in.
    m = _rect_mask((16, 16), (3, 2, 7, 10))
    mini = masks.mini_masks(m, masks.boxes_from_masks(m), (56, 56)).numpy()[0]
    assert mini[5:51, :].all() and mini[:, 3:53].all()
    assert mini[28, 0] and mini[0, 28] and mini[55, 28] and mini[28, 55]


def test_mini_mask_of_half_box():
    # The left half of the box is set: the left half of the mini-mask.
    m = np.zeros((100, 100, 1), bool)
    m[10:90, 20:60, 0] = True
    m[10:90, 60:100, 0] = False
    boxes = np.array([[10, 20, 90, 100]], np.int32)
    mini = masks.mini_masks(m, boxes, (20, 20)).numpy()[0]
    expected = np.zeros((20, 20), bool)
    expected[:, :10] = True
    np.testing.assert_array_equal(mini, expected)


# ----------------------------------------------------------------- paste_masks
def test_paste_mini_mask_reproduces_rectangle():
    for shape, box in [((16, 16), (3, 2, 7, 10)), ((64, 80), (5, 7, 40, 60))]:
        m = _rect_mask(shape, box)
        boxes = masks.boxes_from_masks(m)
        back = masks.paste_masks(masks.mini_masks(m, boxes, (56, 56)), boxes, shape).numpy()
        assert back.shape == (shape[0], shape[1], 1) and back.dtype == bool
        np.testing.assert_array_equal(back, m)


def test_paste_mini_mask_reproduces_disk():
    shape = (64, 64)
    m = _disk(shape, 30.0, 34.0, 18.0)[..., None]
    boxes = masks.boxes_from_masks(m)
    back = masks.paste_masks(masks.mini_masks(m, boxes, (56, 56)), boxes, shape).numpy()
    assert _iou(back, m) > 0.9


def test_paste_at_box_scaled_2x():
    m = _rect_mask((16, 16), (3, 2, 7, 10))
    boxes = masks.boxes_from_masks(m)
    mini = masks.mini_masks(m, boxes, (56, 56))
    back = masks.paste_masks(mini, tf.cast(boxes, tf.float32) * 2.0, (32, 32)).numpy()
    np.testing.assert_array_equal(back, _rect_mask((32, 32), (6, 4, 14, 20)))


def test_paste_all_ones_into_a_box_smaller_than_the_mask():
    ones = np.ones((1, 28, 28), np.float32)
    back = masks.paste_masks(ones, [[10.0, 12.0, 24.0, 19.0]], (40, 40)).numpy()
    np.testing.assert_array_equal(back, _rect_mask((40, 40), (10, 12, 24, 19)))


def test_paste_threshold_and_probabilities():
    mini = np.zeros((2, 4, 4), np.float32)
    mini[0, :, :2] = 0.9  # left half likely
    mini[0, :, 2:] = 0.2
    mini[1] = 0.4  # below 0.5 everywhere
    boxes = np.array([[0, 0, 4, 4], [2, 2, 6, 6]], np.float32)
    back = masks.paste_masks(mini, boxes, (8, 8)).numpy()
    np.testing.assert_array_equal(back[..., 0], _rect_mask((8, 8), (0, 0, 4, 2))[..., 0])
    assert not back[..., 1].any()
    back = masks.paste_masks(mini, boxes, (8, 8), threshold=0.3).numpy()
    np.testing.assert_array_equal(back[..., 1], _rect_mask((8, 8), (2, 2, 6, 6))[..., 0])


def test_paste_no_instances_and_chunks():
    assert masks.paste_masks(np.zeros((0, 28, 28)), np.zeros((0, 4)), (10, 12)).shape == (
        10,
        12,
        0,
    )
    # More instances than one chunk: results are the same as one chunk.
    rng = np.random.default_rng(0)
    mini = rng.uniform(size=(5, 6, 6)).astype(np.float32)
    y1x1 = rng.uniform(0, 10, (5, 2))
    boxes = np.concatenate([y1x1, y1x1 + rng.uniform(2, 8, (5, 2))], 1).astype(np.float32)
    one = masks.paste_masks(mini, boxes, (20, 20)).numpy()
    chunked = masks.paste_masks(mini, boxes, (20, 20), chunk=2).numpy()
    np.testing.assert_array_equal(one, chunked)


def test_paste_in_a_graph_with_a_count_known_at_run_time():
    """Inside a tf.function whose instance count and image size are unknown
    when traced, pasting gives the eager values, instances first."""
    paste = tf.function(
        lambda m, b, size: masks.paste_masks_first(m, b, (size[0], size[1]), chunk=2),
        input_signature=[tf.TensorSpec([None, 6, 6]), tf.TensorSpec([None, 4]),
                         tf.TensorSpec([2], tf.int32)])
    rng = np.random.default_rng(1)
    mini = rng.uniform(size=(5, 6, 6)).astype(np.float32)
    y1x1 = rng.uniform(0, 10, (5, 2))
    boxes = np.concatenate([y1x1, y1x1 + rng.uniform(2, 8, (5, 2))], 1).astype(np.float32)
    for n in (5, 1, 0):
        got = paste(mini[:n], boxes[:n], tf.constant([20, 24])).numpy()
        assert got.shape == (n, 20, 24)
        expected = masks.paste_masks(mini[:n], boxes[:n], (20, 24)).numpy()
        np.testing.assert_array_equal(got, np.moveaxis(expected, -1, 0))


# ---------------------------------------------- borders of boxes and images
def test_paste_all_ones_into_a_box_larger_than_the_mask():
    ones = np.ones((1, 28, 28), np.float32)
    back = masks.paste_masks(ones, [[10.0, 10.0, 66.0, 66.0]], (80, 80)).numpy()
    np.testing.assert_array_equal(back, _rect_mask((80, 80), (10, 10, 66, 66)))


def test_round_trip_of_a_rectangle_larger_than_the_mini_mask():
    m = _rect_mask((128, 128), (10, 10, 110, 110))
    boxes = masks.boxes_from_masks(m)
    back = masks.paste_masks(masks.mini_masks(m, boxes, (56, 56)), boxes, (128, 128)).numpy()
    np.testing.assert_array_equal(back, m)


def test_mini_mask_does_not_depend_on_image_border():
    inner = _rect_mask((16, 16), (4, 4, 8, 12))
    corner = _rect_mask((16, 16), (0, 0, 4, 8))
    mini_inner = masks.mini_masks(inner, masks.boxes_from_masks(inner), (56, 56)).numpy()
    mini_corner = masks.mini_masks(corner, masks.boxes_from_masks(corner), (56, 56)).numpy()
    np.testing.assert_array_equal(mini_corner, mini_inner)


# ----------------------------------------------------------- transform_instances
def _ellipses(height, width, specs):
    yy, xx = np.mgrid[:height, :width]
    return np.stack([((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
                     for cy, cx, ry, rx in specs], axis=-1)


ELLIPSES = [(50, 60, 30, 40), (150, 250, 40, 60), (100, 150, 20, 20), (10, 290, 15, 15)]


def _instances(full):
    boxes = masks.boxes_from_masks(full)
    return boxes, masks.mini_masks(full, boxes, (56, 56))


def test_transform_identity_keeps_boxes_and_mini_masks():
    boxes, mini = _instances(_ellipses(200, 300, ELLIPSES))
    out, out_mini, keep = masks.transform_instances(boxes, mini, [0, 0, 200, 300], (200, 300))
    np.testing.assert_allclose(out, boxes, atol=1e-4)
    np.testing.assert_array_equal(out_mini, mini)
    assert keep.numpy().all()


def test_transform_flip_mirrors_boxes_and_mini_masks_exactly():
    boxes, mini = _instances(_ellipses(200, 300, ELLIPSES))
    out, out_mini, _ = masks.transform_instances(boxes, mini, [0, 0, 200, 300], (200, 300),
                                                 flip=True)
    b = boxes.numpy()
    np.testing.assert_allclose(out, np.stack([b[:, 0], 300 - b[:, 3], b[:, 2], 300 - b[:, 1]], 1),
                               atol=1e-4)
    np.testing.assert_array_equal(out_mini, mini.numpy()[:, :, ::-1])


def test_transform_scale_and_pad_moves_boxes_only():
    # The molded frame shows original rows -10..210 at twice the size.
    boxes, mini = _instances(_ellipses(200, 300, ELLIPSES))
    out, out_mini, keep = masks.transform_instances(boxes, mini, [-10, -20, 210, 330],
                                                    (440, 700))
    b = boxes.numpy().astype(np.float32)
    np.testing.assert_allclose(out, (b - [-10, -20, -10, -20]) * 2, atol=1e-4)
    np.testing.assert_array_equal(out_mini, mini)


def test_transform_crop_agrees_with_cropping_full_masks():
    full = _ellipses(200, 300, ELLIPSES)
    boxes, mini = _instances(full)
    window = [20, 30, 180, 280]
    out, out_mini, keep = masks.transform_instances(boxes, mini, window, (200, 300), flip=True)
    crop = tf.image.resize(full[20:180, 30:280].astype(np.uint8), [200, 300], "nearest")
    reference = crop.numpy().astype(bool)[:, ::-1]
    ref_boxes = masks.boxes_from_masks(reference).numpy()
    assert keep.numpy().all()
    # Boxes of the visible parts within a pixel or two (mini-mask resolution).
    np.testing.assert_allclose(out.numpy()[:3], ref_boxes[:3], atol=1.5)
    pasted = masks.paste_masks(out_mini, out, (200, 300)).numpy()
    for k in range(3):
        inter = (pasted[..., k] & reference[..., k]).sum()
        assert inter / (pasted[..., k] | reference[..., k]).sum() > 0.95


def test_transform_cut_box_is_trimmed_to_the_remaining_pixels():
    # An L shape: the long arm lies below row 50. Keeping rows < 50 leaves the
    # vertical bar only, and the box shrinks to it.
    full = np.zeros((100, 100, 1), bool)
    full[10:90, 10:20] = True
    full[80:90, 10:90] = True
    boxes, mini = _instances(full)
    out, out_mini, keep = masks.transform_instances(boxes, mini, [0, 0, 50, 100], (50, 100))
    np.testing.assert_allclose(out[0], [10, 10, 50, 20], atol=1.5)
    assert keep.numpy().all() and out_mini.numpy()[0].mean() > 0.9


def test_transform_drops_instances_outside_the_window():
    boxes, mini = _instances(_ellipses(200, 300, ELLIPSES))
    out, out_mini, keep = masks.transform_instances(boxes, mini, [0, 0, 100, 120], (100, 120))
    assert keep.numpy().tolist() == [True, False, False, False]
    assert not out_mini.numpy()[1:].any() and not out.numpy()[1:].any()


def test_transform_no_instances():
    out, out_mini, keep = masks.transform_instances(
        tf.zeros([0, 4]), tf.zeros([0, 56, 56], tf.bool), [0, 0, 10, 10], (20, 20), flip=True)
    assert out.shape == (0, 4) and out_mini.shape == (0, 56, 56) and keep.shape == (0,)
