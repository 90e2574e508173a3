"""Tests for mrcnn/data/image.py: resize modes, masks, image meta, molding, validation."""

import numpy as np
import pytest

from mrcnn.data.image import (
    _resize,
    bilinear_taps,
    compose_image_meta,
    mold_image,
    parse_image_meta,
    parse_image_meta_graph,
    placement,
    resize_geometry,
    resize_image,
    resize_mask,
    resize_with_taps,
    unmold_image,
    validate_image,
)


# ---------------------------------------------------------------- resize_image
def test_square_mode_exact_values():
    image = np.full((100, 200, 3), 7, np.uint8)
    out, window, scale, padding, crop = resize_image(image, min_dim=64, max_dim=128,
                                                     mode="square")
    # min_dim asks for scale 1 (never shrink), max_dim limits it to 128 / 200.
    assert scale == pytest.approx(0.64)
    assert out.shape == (128, 128, 3) and out.dtype == np.uint8
    assert window == (32, 0, 96, 128)
    assert padding == [(32, 32), (0, 0), (0, 0)]
    assert crop is None
    assert (out[32:96] == 7).all()
    assert (out[:32] == 0).all() and (out[96:] == 0).all()


def test_square_mode_upscales_to_min_dim():
    image = np.zeros((50, 60, 3), np.uint8)
    out, window, scale, padding, _ = resize_image(image, min_dim=100, max_dim=128)
    assert scale == 2.0
    assert out.shape == (128, 128, 3)
    # 100 x 120 content, centred: top (128 - 100) // 2, left (128 - 120) // 2.
    assert window == (14, 4, 114, 124)
    assert padding == [(14, 14), (4, 4), (0, 0)]


def test_min_scale_raises_scale():
    image = np.zeros((40, 40, 3), np.uint8)
    out, window, scale, _, _ = resize_image(image, min_dim=40, max_dim=128, min_scale=2)
    assert scale == 2.0 and window == (24, 24, 104, 104)


def test_square_mode_pads_odd_sizes_centred():
    image = np.zeros((31, 64, 3), np.uint8)
    out, window, scale, padding, _ = resize_image(image, max_dim=64)
    assert scale == 1.0
    assert padding == [(16, 17), (0, 0), (0, 0)]
    assert window == (16, 0, 47, 64)


def test_pad64_mode_exact_values():
    image = np.ones((1000, 2000, 3), np.uint8)
    out, window, scale, padding, crop = resize_image(image, mode="pad64")
    assert scale == 1.0 and crop is None
    assert out.shape == (1024, 2048, 3)
    assert window == (12, 24, 1012, 2024)
    assert padding == [(12, 12), (24, 24), (0, 0)]
    assert out.sum() == image.sum()


def test_pad64_keeps_multiples_of_64():
    image = np.zeros((128, 192, 3), np.uint8)
    out, window, _, padding, _ = resize_image(image, min_dim=64, mode="pad64")
    assert out.shape == (128, 192, 3) and window == (0, 0, 128, 192)
    assert padding == [(0, 0), (0, 0), (0, 0)]


@pytest.mark.parametrize("shape, dims, scale, out_shape, window", [
    ((1024, 2048), (1024, 2048), 1.0, (1024, 2048), (0, 0, 1024, 2048)),   # as it is
    ((1024, 2048), (512, 1024), 0.5, (512, 1024), (0, 0, 512, 1024)),      # halved
    ((100, 150), (200, 1000), 2.0, (256, 320), (28, 10, 228, 310)),        # grown to min_dim
    ((100, 400), (200, 600), 1.5, (192, 640), (21, 20, 171, 620)),         # capped by max_dim
])
def test_fit64_mode_exact_values(shape, dims, scale, out_shape, window):
    image = np.ones(shape + (3,), np.uint8)
    out, win, s, padding, crop = resize_image(image, *dims, mode="fit64")
    assert s == pytest.approx(scale) and crop is None
    assert out.shape == out_shape + (3,) and win == window


def test_fit64_needs_both_dims():
    with pytest.raises(ValueError, match="fit64.*needs min_dim and max_dim"):
        resize_image(np.zeros((10, 10, 3), np.uint8), min_dim=64, mode="fit64")


def test_none_mode_is_identity():
    image = np.random.default_rng(0).integers(0, 256, (33, 47, 3), dtype=np.uint8)
    out, window, scale, padding, crop = resize_image(image, 800, 1024, mode="none")
    assert out is image
    assert window == (0, 0, 33, 47) and scale == 1
    assert padding == [(0, 0), (0, 0), (0, 0)] and crop is None


def test_crop_mode():
    image = np.random.default_rng(0).integers(0, 256, (100, 150, 3), dtype=np.uint8)
    out, window, scale, padding, crop = resize_image(
        image, min_dim=64, mode="crop", rng=np.random.default_rng(3))
    assert out.shape == (64, 64, 3) and scale == 1.0
    assert window == (0, 0, 64, 64) and padding == [(0, 0), (0, 0), (0, 0)]
    y, x, h, w = crop
    assert (h, w) == (64, 64)
    assert 0 <= y <= 100 - 64 and 0 <= x <= 150 - 64
    np.testing.assert_array_equal(out, image[y:y + 64, x:x + 64])
    # Same generator seed, same crop.
    again = resize_image(image, min_dim=64, mode="crop", rng=np.random.default_rng(3))
    assert again[4] == crop


def test_crop_mode_upscales_small_images():
    image = np.zeros((32, 48, 3), np.uint8)
    out, _, scale, _, (y, x, h, w) = resize_image(image, min_dim=64, mode="crop",
                                                  rng=np.random.default_rng(0))
    assert scale == 2.0 and out.shape == (64, 64, 3)
    assert y == 0 and 0 <= x <= 32


def test_resize_keeps_float_dtype_and_range():
    image = np.full((10, 20, 3), 200.5, np.float32)
    out, *_ = resize_image(image, min_dim=20, max_dim=64)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[out > 0], 200.5)


@pytest.mark.parametrize("kwargs, message", [
    (dict(mode="fancy"), "unknown resize mode 'fancy'"),
    (dict(mode="square"), "needs max_dim"),
    (dict(mode="crop"), "needs min_dim"),
    (dict(mode="pad64", min_dim=100), "divisible by 64"),
    (dict(min_dim=-1, max_dim=64), "min_dim must not be negative"),
])
def test_resize_image_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        resize_image(np.zeros((10, 10, 3), np.uint8), **kwargs)


def test_resize_image_needs_three_dims():
    with pytest.raises(ValueError, match=r"\[H, W, C\], got shape \[10, 10\]"):
        resize_image(np.zeros((10, 10), np.uint8), max_dim=64)


# ----------------------------------------------------------------- resize_mask
@pytest.mark.parametrize("shape, box, kwargs", [
    ((100, 200), (10, 30, 61, 143), dict(min_dim=64, max_dim=128)),   # shrink 0.64
    ((50, 70), (5, 9, 33, 50), dict(min_dim=150, max_dim=256)),       # grow 3
    ((37, 41), (3, 4, 20, 33), dict(min_dim=60, max_dim=128)),        # grow 60 / 37
    ((60, 90), (7, 11, 50, 70), dict(min_dim=64, mode="pad64")),
    ((40, 50), (7, 11, 30, 45), dict(min_dim=64, mode="crop")),
    ((90, 180), (7, 11, 50, 70), dict(min_dim=64, max_dim=128, mode="fit64")),  # shrink
])
def test_resize_mask_matches_image_geometry(shape, box, kwargs):
    y1, x1, y2, x2 = box
    # Channel 0: the rectangle's rows; channel 1: its columns (full stripes,
    # so bilinear resizing acts along one axis only).
    image = np.zeros(shape + (3,), np.uint8)
    image[y1:y2, :, 0] = 255
    image[:, x1:x2, 1] = 255
    mask = np.zeros(shape + (2,), bool)
    mask[y1:y2, x1:x2, 0] = True
    mask[..., 1] = True
    out, window, scale, padding, crop = resize_image(image, rng=np.random.default_rng(1),
                                                     **kwargs)
    out_mask = resize_mask(mask, scale, padding, crop)
    assert out_mask.dtype == bool and out_mask.shape == out.shape[:2] + (2,)
    # Along one axis, bilinear past half-way is the nearest-neighbour rule:
    # the resized rectangle mask covers exactly the resized rows x columns.
    np.testing.assert_array_equal(out_mask[..., 0], (out[..., 0] > 127) & (out[..., 1] > 127))
    assert out_mask[..., 0].any()
    # An all-true mask covers exactly the window.
    wy1, wx1, wy2, wx2 = window
    expected = np.zeros(out.shape[:2], bool)
    expected[wy1:wy2, wx1:wx2] = True
    np.testing.assert_array_equal(out_mask[..., 1], expected)


def test_resize_mask_without_instances():
    _, _, scale, padding, _ = resize_image(np.zeros((100, 200, 3), np.uint8), max_dim=128)
    out = resize_mask(np.zeros((100, 200, 0), bool), scale, padding)
    assert out.shape == (128, 128, 0) and out.dtype == bool


# ------------------------------------------------------------------ image meta
def sample_meta():
    return compose_image_meta(17, (480, 640, 3), (1024, 1024, 3), (128, 0, 896, 1024),
                              1.6, np.array([1, 1, 0, 1]))


def test_compose_image_meta_layout():
    meta = sample_meta()
    assert meta.dtype == np.float32 and meta.shape == (1 + 3 + 3 + 4 + 1 + 4,)
    np.testing.assert_allclose(
        meta, [17, 480, 640, 3, 1024, 1024, 3, 128, 0, 896, 1024, 1.6, 1, 1, 0, 1], rtol=1e-6)


def check_parsed(parsed, batch):
    np.testing.assert_array_equal(parsed["image_id"], [17] * batch)
    np.testing.assert_array_equal(parsed["original_image_shape"], [[480, 640, 3]] * batch)
    np.testing.assert_array_equal(parsed["image_shape"], [[1024, 1024, 3]] * batch)
    np.testing.assert_array_equal(parsed["window"], [[128, 0, 896, 1024]] * batch)
    np.testing.assert_allclose(parsed["scale"], [1.6] * batch, rtol=1e-6)
    np.testing.assert_array_equal(parsed["active_class_ids"], [[1, 1, 0, 1]] * batch)


def test_parse_image_meta_round_trip():
    meta = np.stack([sample_meta()] * 2)
    parsed = parse_image_meta(meta)
    check_parsed(parsed, 2)
    assert parsed["window"].dtype == np.int32 and parsed["scale"].dtype == np.float32
    assert parse_image_meta(sample_meta())["window"].shape == (4,)


def test_parse_image_meta_graph_round_trip():
    tf = pytest.importorskip("tensorflow")
    meta = tf.constant(np.stack([sample_meta()] * 3))
    check_parsed({k: v.numpy() for k, v in parse_image_meta_graph(meta).items()}, 3)

    @tf.function(input_signature=[tf.TensorSpec([None, 16], tf.float32)])
    def windows(m):
        return parse_image_meta_graph(m)["window"]

    np.testing.assert_array_equal(windows(meta).numpy(), [[128, 0, 896, 1024]] * 3)


# --------------------------------------------------------------------- molding
def test_mold_unmold_round_trip():
    mean = np.array([123.7, 116.8, 103.9])
    images = np.random.default_rng(0).integers(0, 256, (2, 5, 6, 3), dtype=np.uint8)
    molded = mold_image(images, mean)
    assert molded.dtype == np.float32
    np.testing.assert_allclose(molded[0, 0, 0], images[0, 0, 0] - mean, rtol=1e-6)
    restored = unmold_image(molded, mean)
    assert restored.dtype == np.uint8
    np.testing.assert_array_equal(restored, images)
    np.testing.assert_array_equal(unmold_image(np.array([[-500.0, 0, 500]]), mean),
                                  [[0, 117, 255]])


# ------------------------------------------------------------------ validation
def test_validate_image_accepts_uint8_and_float():
    image = np.zeros((4, 5, 3), np.uint8)
    assert validate_image(image) is image
    floats = np.full((4, 5, 3), 255.0)
    assert validate_image(floats) is floats


@pytest.mark.parametrize("image, message", [
    (np.zeros((480, 640)), "expected an RGB image as a uint8 array of shape [H, W, 3], "
                           "got float64 [480, 640] (a gray image"),
    (np.zeros((4, 5, 4), np.uint8), "got uint8 [4, 5, 4] (RGBA"),
    (np.zeros((4, 5, 3), np.int64), "got int64 [4, 5, 3]"),
    (np.full((4, 5, 3), 300.0, np.float32), "got float32 [4, 5, 3] with values in [300.0, 300.0]"),
    (np.full((4, 5, 3), np.nan), "with values in [nan, nan]"),
    (np.zeros((0, 5, 3), np.uint8), "got uint8 [0, 5, 3]"),
    ([[1, 2, 3]], "got list"),
])
def test_validate_image_messages(image, message):
    with pytest.raises(ValueError) as info:
        validate_image(image)
    assert message in str(info.value)


# ------------------------------------------------ geometry without the image
@pytest.mark.parametrize("kwargs", [
    {"min_dim": 64, "max_dim": 128}, {"min_dim": 64, "mode": "pad64"},
    {"min_dim": 64, "mode": "crop"}, {"min_dim": 40, "max_dim": 96, "mode": "fit64"},
    {"mode": "none"}])
def test_resize_geometry_is_resize_image_without_the_image(kwargs):
    image = np.zeros((37, 71, 3), np.uint8)
    out, *rest = resize_image(image, rng=np.random.default_rng(4), **kwargs)
    size, *geometry = resize_geometry(37, 71, rng=np.random.default_rng(4), **kwargs)
    assert geometry == rest
    _, scale, padding, crop = rest
    assert size == ((37, 71) if scale == 1 else (round(37 * scale), round(71 * scale)))
    y, x, h, w = placement(size, padding, crop)
    assert (h, w) == out.shape[:2]
    assert (y, x) == (crop[:2] if crop else (-padding[0][0], -padding[1][0]))


@pytest.mark.parametrize("shape, size, exact", [
    ((48, 64), (96, 128), True), ((96, 128), (48, 64), True), ((5, 7), (64, 64), False),
    ((48, 64), (64, 85), False), ((37, 53), (81, 117), False)])
def test_resize_with_taps_gives_resize_images_values(shape, size, exact):
    image = np.random.default_rng(1).integers(20, 200, (*shape, 3), dtype=np.uint8)
    out = resize_with_taps(image, size)
    assert out.dtype == np.uint8 and out.shape == (*size, 3)
    diff = np.abs(out.astype(int) - _resize(image, size))
    # float32: a value within rounding of a half may round the other way.
    assert diff.max() == 0 if exact else (diff.max() <= 1 and (diff > 0).mean() < 1e-3)


def test_bilinear_taps_weigh_two_neighbours_with_zeros_beyond_the_edges():
    idx, weights = bilinear_taps(4, 8)  # 2x: centres at -0.25, 0.25, 0.75, ...
    np.testing.assert_array_equal(idx[:3], [[0, 0], [0, 1], [0, 1]])
    np.testing.assert_array_equal(weights[:3], [[0, 0.75], [0.75, 0.25], [0.25, 0.75]])
    np.testing.assert_array_equal(idx[-1], [3, 3])
    np.testing.assert_array_equal(weights[-1], [0.75, 0])
