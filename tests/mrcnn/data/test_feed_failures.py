"""Images that fail to load during training (files changed after the load-time
check): each feeder skips them with a counted warning and stops past 1 %."""

import logging

import numpy as np
import pytest
import tensorflow as tf

from mrcnn import model as modellib
from mrcnn.config import Config
from mrcnn.data import pipeline
from mrcnn.data.feed_failures import FeedFailures, TooManyFailuresError
from mrcnn.data.shapes import ShapesDataset
from mrcnn.engine import skipped


class SmallConfig(Config):
    NAME = "small"
    NUM_CLASSES = 4
    IMAGES_PER_GPU = 2
    IMAGE_MIN_DIM = 64
    IMAGE_MAX_DIM = 64
    RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)
    MAX_GT_INSTANCES = 4


class Changing(ShapesDataset):
    """Shapes images whose ids in `broken` fail to load, as a PNG truncated
    after the load-time check would."""

    def __init__(self, count, broken=()):
        super().__init__()
        self.load_shapes(count, 64, 64, seed=1)
        for i, info in enumerate(self.image_info):
            info["path"] = f"/data/{i}.png"
        self.prepare()
        self.broken = set(broken)

    def load_image(self, image_id):
        if image_id in self.broken:
            raise OSError(f"image {image_id}: cannot read image file /data/{image_id}.png") \
                from OSError("image file is truncated")
        return super().load_image(image_id)


def seen_ids(batches):
    return sorted(int(i) for b in batches for i in b["image_meta"][:, 0].numpy())


@pytest.mark.parametrize("config", [SmallConfig(), type("NoMini", (SmallConfig,),
                                                         {"USE_MINI_MASK": False})()],
                         ids=["instance path", "mask path"])
def test_one_bad_image_in_a_hundred_and_one_is_skipped_with_a_warning(config, caplog):
    ds = Changing(101, broken=[7])
    failures = FeedFailures("train", 101)
    batches = pipeline.build_dataset(ds, config, shuffle=False, repeat=False, failures=failures)
    with caplog.at_level(logging.WARNING, logger="mrcnn.data.feed_failures"):
        ids = seen_ids(batches)
    assert ids == [i for i in range(101) if i != 7]  # 100 images: 50 whole batches
    assert failures.entries() == [{"split": "train", "path": "/data/7.png", "times": 1,
                                   "reason": "cannot be decoded: image file is truncated"}]
    (warning,) = [r.getMessage() for r in caplog.records]
    assert warning == ("train image 7 skipped: /data/7.png: cannot be decoded: image file is "
                       "truncated (1 of 101 images failed to load so far; more than 1 stops "
                       "the run)")
    seen_ids(batches)  # the same file fails again: counted, still one image
    assert failures.entries()[0]["times"] == 2 and not failures.exceeded


def test_more_than_one_percent_stops_the_feeder():
    ds = Changing(101, broken=[3, 50])
    failures = FeedFailures("train", 101)
    batches = pipeline.build_dataset(ds, SmallConfig(), shuffle=False, repeat=False,
                                     failures=failures)
    with pytest.raises(tf.errors.OpError, match="2 of 101 train images failed to load"):
        seen_ids(batches)
    assert failures.exceeded and len(failures.failed) == 2
    assert "/data/3.png: cannot be decoded: image file is truncated; /data/50.png" in str(
        failures.error())


def test_validation_keeps_its_steps_when_an_image_fails():
    ds = Changing(101, broken=[0])
    failures = FeedFailures("val", 101)
    val, steps = pipeline.validation_dataset(ds, SmallConfig(), steps=50, seed=0,
                                             failures=failures)
    ids = seen_ids(val)
    assert steps == 50 and len(ids) == 100 and 0 not in ids and len(failures.failed) == 1


def test_data_generator_skips_and_stops_the_same_way(caplog):
    ds = Changing(101, broken=[4])
    gen = modellib.data_generator(ds, SmallConfig(), shuffle=False, batch_size=2)
    with caplog.at_level(logging.WARNING, logger="mrcnn.data.feed_failures"):
        batches = [next(gen) for _ in range(3)]
    metas = np.concatenate([b[0][1] for b in batches])
    assert list(metas[:, 0].astype(int)) == [0, 1, 2, 3, 5, 6]
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        "data_generator image 4 skipped"]
    ds.broken = {4, 8}
    again = modellib.data_generator(ds, SmallConfig(), shuffle=False, batch_size=2)
    with pytest.raises(TooManyFailuresError, match="2 of 101 data_generator images failed"):
        for _ in range(4):
            next(again)


def test_a_run_records_what_its_feeders_skipped(tmp_path):
    train, val = FeedFailures("train", 200), FeedFailures("val", 2)
    seen = []
    with modellib._recorded([train, val], str(tmp_path), seen):
        train.record(5, "/data/5.png", OSError("gone"))
    entries = skipped.read(tmp_path)
    assert [(e["path"], e["stage"], e["split"], e["reason"]) for e in entries] == [
        ("/data/5.png", "feed", "train", "cannot be decoded: gone")]
    assert seen == [{k: v for k, v in e.items() if k != "time"} for e in entries]
    # A fit that fails because a feeder stopped raises that feeder's error,
    # not TensorFlow's wrapping of it; the files are recorded all the same.
    with pytest.raises(TooManyFailuresError, match="1 of 2 val images"), \
            modellib._recorded([FeedFailures("train", 200), val], str(tmp_path), seen):
        try:
            val.record(0, "/data/v0.png", OSError("gone"))
        except TooManyFailuresError as e:
            raise tf.errors.UnknownError(None, None, f"PyFunc: {e}") from None
    assert [e["split"] for e in skipped.read(tmp_path)] == ["train", "val"]
    with pytest.raises(ValueError, match="not a feed failure"), \
            modellib._recorded([FeedFailures("train", 9)], str(tmp_path), []):
        raise ValueError("not a feed failure")  # other errors pass through
