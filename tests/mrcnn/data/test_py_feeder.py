"""mrcnn/data/py_feeder.py: the PyDataset feeder gives build_dataset's batches,
in NumPy, without TensorFlow."""

import os

import numpy as np
import pytest

from mrcnn.data import pipeline
from mrcnn.data.augmentation import FlipCrop
from mrcnn.data.feed_failures import FeedFailures
from mrcnn.data.py_feeder import PyFeeder
from mrcnn.data.shapes import ShapesDataset
from tests.mrcnn.data.test_pipeline import NoMini, SmallConfig, shapes
from tests.mrcnn.modeling.tiny import CachedShapes

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))))


def first_batches(ds, config, **kwargs):
    """(PyFeeder's batch 0, build_dataset's first batch), unshuffled."""
    feeder = PyFeeder(ds, config, shuffle=False, **kwargs)
    graph = next(iter(pipeline.build_dataset(ds, config, shuffle=False, **kwargs)))
    return feeder[0], {key: value.numpy() for key, value in graph.items()}


@pytest.mark.parametrize("config", [SmallConfig(), NoMini()], ids=["instance path", "mask path"])
def test_batches_have_build_datasets_keys_shapes_and_dtypes(config):
    ours, theirs = first_batches(shapes(), config)
    assert {k: (v.shape, v.dtype) for k, v in ours.items()} == {
        k: (v.shape, v.dtype) for k, v in theirs.items()}


@pytest.mark.parametrize("config", [SmallConfig(), NoMini()], ids=["instance path", "mask path"])
@pytest.mark.parametrize("size", [(96, 128), (48, 64)], ids=["padded", "resized"])
def test_unaugmented_batches_equal_build_datasets(config, size):
    ours, theirs = first_batches(shapes(size=size), config)
    for key in ours:
        np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)


@pytest.mark.parametrize("config", [SmallConfig(), NoMini()], ids=["instance path", "mask path"])
def test_a_certain_flip_equals_build_datasets(config):
    ours, theirs = first_batches(shapes(size=(48, 64)), config,
                                 augmentation=FlipCrop(flip=1.0, crop=0.0))
    for key in ours:
        np.testing.assert_allclose(ours[key], theirs[key], atol=1e-6, err_msg=key)


def test_draws_follow_the_seed_and_the_epoch():
    ds, config = shapes(8, size=(48, 64)), SmallConfig()

    def epoch(feeder):
        return [feeder[i] for i in range(len(feeder))]

    a, b = (PyFeeder(ds, config, augmentation=FlipCrop(), seed=3) for _ in range(2))
    c = PyFeeder(ds, config, augmentation=FlipCrop(), seed=4)
    first, again = epoch(a), epoch(b)
    assert len(first) == 4
    for x, y in zip(first, again):
        for key in x:
            np.testing.assert_array_equal(x[key], y[key])
    ids = [int(i) for batch in first for i in batch["image_meta"][:, 0]]
    assert sorted(ids) == list(range(8))
    assert ids != [int(i) for batch in epoch(c) for i in batch["image_meta"][:, 0]]
    a.on_epoch_end()
    assert ids != [int(i) for batch in epoch(a) for i in batch["image_meta"][:, 0]]


def test_an_image_that_fails_is_counted_and_replaced():
    class Changing(ShapesDataset):
        def load_image(self, image_id):
            if image_id == 1:
                raise OSError(f"image {image_id}: cannot read image file 1.png") from OSError(
                    "image file is truncated")
            return super().load_image(image_id)

    ds = Changing()
    ds.load_shapes(4, 64, 64, seed=1)
    ds.prepare()
    failures = FeedFailures("train", 1000)
    feeder = PyFeeder(ds, SmallConfig(), shuffle=False, failures=failures)
    ids = [[int(i) for i in feeder[b]["image_meta"][:, 0]] for b in range(len(feeder))]
    assert ids == [[0, 2], [2, 3]]
    assert failures.entries()[0]["reason"] == "cannot be decoded: image file is truncated"


def test_numpy_augmentations_only():
    with pytest.raises(TypeError, match="no augment_numpy"):
        PyFeeder(shapes(), SmallConfig(), augmentation=lambda image, masks: (image, masks))


def test_pickles_for_spawned_workers(tmp_path):
    import pickle

    ds = CachedShapes()
    ds.load_shapes(4, 96, 128, seed=5)
    ds.prepare()
    feeder = PyFeeder(ds, SmallConfig(), augmentation=FlipCrop(), mask_cache=tmp_path, seed=1)
    batch = feeder[1]  # writes the records of its 2 images
    copy = pickle.loads(pickle.dumps(feeder))
    again = copy[1]
    for key, value in batch.items():
        np.testing.assert_array_equal(again[key], value)
    assert copy.mask_cache.hits == feeder.mask_cache.hits + 2
    assert copy.failures.entries() == []
