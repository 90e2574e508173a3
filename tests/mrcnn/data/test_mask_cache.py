import os

import numpy as np

from mrcnn.data import masks
from mrcnn.data.mask_cache import MiniMaskCache, dataset_record, instance_record
from mrcnn.data.shapes import ShapesDataset


class VersionedShapes(ShapesDataset):
    """Shapes with a cache version and a count of load_mask calls."""

    version = "v1"

    def __init__(self):
        super().__init__()
        self.mask_loads = 0

    def cache_version(self, image_id):
        return self.version

    def load_mask(self, image_id):
        self.mask_loads += 1
        return super().load_mask(image_id)


def shapes(cls=VersionedShapes, count=3):
    ds = cls()
    ds.load_shapes(count, 64, 96, seed=2)
    ds.prepare()
    return ds


def test_record_is_boxes_and_mini_masks_of_the_nonempty_masks():
    full = np.zeros((40, 50, 3), bool)
    full[5:15, 10:30, 0] = True
    full[20:38, 2:9, 2] = True
    record = instance_record(full, [3, 1, -2], (28, 28))
    np.testing.assert_array_equal(record["class_ids"], [3, -2])
    np.testing.assert_array_equal(record["boxes"], [[5, 10, 15, 30], [20, 2, 38, 9]])
    assert record["mini"].shape == (2, 28, 28) and record["mini"].all()
    np.testing.assert_array_equal(record["shape"], [40, 50])
    empty = instance_record(np.zeros((8, 9, 0), bool), [], (28, 28))
    assert empty["boxes"].shape == (0, 4) and empty["mini"].shape == (0, 28, 28)


def test_cache_returns_what_load_mask_gives_and_reads_it_back(tmp_path):
    ds = shapes()
    cache = MiniMaskCache(tmp_path, (56, 56))
    first = [cache.get(ds, i) for i in ds.image_ids]
    assert ds.mask_loads == 3 and cache.misses == 3 and cache.hits == 0
    second = [cache.get(ds, i) for i in ds.image_ids]
    assert ds.mask_loads == 3 and cache.hits == 3
    for a, b, i in zip(first, second, ds.image_ids):
        direct = dataset_record(ds, i, (56, 56))
        for key in direct:
            np.testing.assert_array_equal(a[key], direct[key])
            np.testing.assert_array_equal(b[key], direct[key])
    assert sorted(os.listdir(tmp_path)) == ["shapes-0.npz", "shapes-1.npz", "shapes-2.npz"]


def test_a_new_version_or_mini_shape_recomputes(tmp_path):
    ds = shapes()
    MiniMaskCache(tmp_path, (56, 56)).get(ds, 0)
    ds.version = "v2"
    cache = MiniMaskCache(tmp_path, (56, 56))
    cache.get(ds, 0)
    assert cache.misses == 1
    other = MiniMaskCache(tmp_path, (28, 28))
    assert other.get(ds, 0)["mini"].shape[1:] == (28, 28) and other.misses == 1
    assert len(os.listdir(tmp_path)) == 1  # replaced, not accumulated


def test_damaged_file_is_recomputed(tmp_path):
    ds = shapes()
    cache = MiniMaskCache(tmp_path)
    good = cache.get(ds, 1)
    with open(cache.path(ds, 1), "wb") as f:
        f.write(b"not a zip")
    again = MiniMaskCache(tmp_path).get(ds, 1)
    np.testing.assert_array_equal(again["mini"], good["mini"])
    assert MiniMaskCache(tmp_path).get(ds, 1)["boxes"].tolist() == good["boxes"].tolist()


def test_datasets_without_version_are_not_cached(tmp_path):
    ds = ShapesDataset()
    ds.load_shapes(2, 64, 64)
    ds.prepare()
    cache = MiniMaskCache(tmp_path)
    cache.get(ds, 0)
    cache.get(ds, 0)
    assert cache.misses == 2 and os.listdir(tmp_path) == []


def test_mini_masks_paste_back_onto_the_masks(tmp_path):
    ds = shapes()
    record = MiniMaskCache(tmp_path).get(ds, 0)
    full, class_ids = ds.load_mask(0)
    pasted = masks.paste_masks(record["mini"], record["boxes"], full.shape[:2]).numpy()
    for k in range(full.shape[2]):
        iou = (pasted[..., k] & full[..., k]).sum() / (pasted[..., k] | full[..., k]).sum()
        assert iou > 0.9
