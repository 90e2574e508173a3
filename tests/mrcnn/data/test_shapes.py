"""Tests for mrcnn/data/shapes.py: the synthetic shapes dataset."""


import numpy as np
import pytest

from mrcnn.data.shapes import CLASS_NAMES, ShapesDataset


def make_dataset(count=20, height=128, width=96, seed=0, **kwargs):
    ds = ShapesDataset()
    ds.load_shapes(count, height, width, seed=seed, **kwargs)
    ds.prepare()
    return ds


def test_classes_and_info():
    ds = make_dataset(count=5)
    assert ds.class_names == ["BG", "square", "circle", "triangle"]
    assert ds.source_class_ids["shapes"] == [0, 1, 2, 3]
    assert ds.num_images == 5
    info = ds.image_info[0]
    assert (info["height"], info["width"]) == (128, 96)
    assert 1 <= len(info["shapes"]) <= 4
    name, color, (y, x, size) = info["shapes"][0]
    assert name in CLASS_NAMES and len(color) == 3
    assert 0.1 * 96 - 1 <= size <= 0.25 * 96
    assert 0 <= y - size and y + size < 128 and 0 <= x - size and x + size < 96
    assert ds.image_reference(0) == info["shapes"]


def test_deterministic_from_seed():
    a, b, c = make_dataset(seed=1), make_dataset(seed=1), make_dataset(seed=2)
    assert [i["shapes"] for i in a.image_info] == [i["shapes"] for i in b.image_info]
    assert [i["shapes"] for i in a.image_info] != [i["shapes"] for i in c.image_info]
    np.testing.assert_array_equal(a.load_image(3), b.load_image(3))
    np.testing.assert_array_equal(a.load_mask(3)[0], b.load_mask(3)[0])


def test_images_and_masks():
    ds = make_dataset(count=30, max_shapes=6)
    counts = []
    for image_id in ds.image_ids:
        info = ds.image_info[image_id]
        image = ds.load_image(image_id)
        mask, class_ids = ds.load_mask(image_id)
        assert image.shape == (128, 96, 3) and image.dtype == np.uint8
        assert mask.dtype == bool and class_ids.dtype == np.int32
        n = mask.shape[-1]
        counts.append(n)
        assert mask.shape == (128, 96, n) and class_ids.shape == (n,) and n >= 1
        assert set(class_ids) <= {1, 2, 3}
        assert mask.any(axis=(0, 1)).all(), "masks must be non-empty"
        assert mask.sum(axis=-1).max() <= 1, "visible masks must be pairwise disjoint"
        # Background colour exactly where no shape is visible.
        background = ~mask.any(axis=-1)
        assert (image[background] == info["bg_color"]).all()
    assert max(counts) > 1


def test_occlusion_later_shapes_on_top():
    ds = ShapesDataset()
    ds.add_class("shapes", 1, "square")
    shapes = [("square", (255, 0, 0), (30, 30, 10)),   # hidden by the next one
              ("square", (0, 255, 0), (30, 30, 20)),
              ("circle", (0, 0, 255), (50, 50, 8))]    # on top of the big square
    ds.add_image("shapes", 0, None, height=64, width=64, bg_color=(0, 0, 0), shapes=shapes)
    mask, class_ids = ds.load_mask(0)
    image = ds.load_image(0)
    np.testing.assert_array_equal(class_ids, [1, 2])
    big, circle = mask[..., 0], mask[..., 1]
    assert not (big & circle).any()
    assert (image[circle] == (0, 0, 255)).all()
    assert (image[big] == (0, 255, 0)).all()
    assert big[10:51, 10:51].sum() + circle[10:51, 10:51].sum() == 41 * 41
    assert not (image == (255, 0, 0)).all(axis=-1).any()


def test_bad_arguments():
    with pytest.raises(ValueError, match="at least 16"):
        ShapesDataset().load_shapes(1, 8, 64)
    with pytest.raises(ValueError, match="max_shapes"):
        ShapesDataset().load_shapes(1, 64, 64, max_shapes=0)

