"""mrcnn/data/samples.py: the NumPy steps of a training sample (the loaders are
also tested through both feeders: test_pipeline.py, test_py_feeder.py)."""

import numpy as np

from mrcnn.data import instances, samples
from mrcnn.data.dataset import Dataset
from tests.mrcnn.data.test_pipeline import SmallConfig


def test_subsample_keeps_a_sorted_random_subset():
    rng = np.random.default_rng(0)
    picks = [samples.subsample(10, 4, rng) for _ in range(50)]
    assert all(len(p) == 4 and (np.diff(p) > 0).all() for p in picks)
    assert len({tuple(p) for p in picks}) > 10
    np.testing.assert_array_equal(samples.subsample(3, 6, rng), [0, 1, 2])


def test_padded_targets_normalise_and_pad():
    config = SmallConfig()
    image = np.full((64, 128, 3), 200, np.uint8)
    out = samples.padded_targets(image, [3, -1], np.array([[0, 0, 64, 128], [1, 2, 3, 4]]),
                                 np.ones([2, 56, 56], bool), config)
    assert out["image"].shape == (64, 128, 3)
    np.testing.assert_array_equal(out["image"][5, 7], 200 - np.float32(config.MEAN_PIXEL))
    assert out["gt_class_ids"].tolist() == [3, -1, 0, 0, 0, 0]
    np.testing.assert_array_equal(out["gt_boxes"][:2], instances.normalize_boxes(
        [[0, 0, 64, 128], [1, 2, 3, 4]], image.shape))
    assert not out["gt_boxes"][2:].any() and out["gt_masks"].dtype == np.uint8
    assert out["gt_masks"][:2].all() and not out["gt_masks"][2:].any()


def test_instance_sample_drops_instances_smaller_than_a_pixel():
    # A 512 x 512 frame shown at 128 x 128: the 2-pixel-high instance would be
    # half a pixel high (pipeline.record_targets drops it too).
    class Drawn(Dataset):
        def load_image(self, image_id):
            return np.zeros((512, 512, 3), np.uint8)

        def load_mask(self, image_id):
            masks = np.zeros((512, 512, 3), bool)
            masks[16:200, 16:200, 0] = masks[300:302, 300:400, 1] = True
            masks[100:108, 300:308, 2] = True
            return masks, np.array([1, 2, 3], np.int32)

    ds = Drawn()
    ds.add_class("drawn", 1, "a")
    ds.add_image("drawn", 0, None)
    ds.prepare()
    out = samples.instance_sample(ds, SmallConfig(), 0, np.random.default_rng(0))
    assert out["gt_class_ids"].tolist() == [1, 3, 0, 0, 0, 0]
    np.testing.assert_allclose(out["gt_boxes"][:2], instances.normalize_boxes(
        [[4, 4, 50, 50], [25, 75, 27, 77]], (128, 128)), atol=1e-6)
