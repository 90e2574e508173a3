import logging

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from mrcnn.config import Config
from mrcnn.data import masks, pipeline
from mrcnn.data.augmentation import FlipCrop
from mrcnn.data.dataset import Dataset
from mrcnn.data.feed_failures import FeedFailures
from mrcnn.data.shapes import ShapesDataset
from mrcnn.modeling import box_ops


class SmallConfig(Config):
    NAME = "small"
    NUM_CLASSES = 4
    IMAGES_PER_GPU = 2
    IMAGE_MIN_DIM = 64
    IMAGE_MAX_DIM = 128
    RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)
    MAX_GT_INSTANCES = 6


def shapes(count=4, size=(96, 128)):
    ds = ShapesDataset()
    ds.load_shapes(count, *size, seed=5)
    ds.prepare()
    return ds


def test_batches_have_the_documented_keys_shapes_and_dtypes():
    config = SmallConfig()
    batch = next(iter(pipeline.build_dataset(shapes(), config, shuffle=False)))
    expected = {
        "image": ([2, 128, 128, 3], tf.float32),
        "image_meta": ([2, config.IMAGE_META_SIZE], tf.float32),
        "gt_class_ids": ([2, 6], tf.int32),
        "gt_boxes": ([2, 6, 4], tf.float32),
        "gt_masks": ([2, 6, 56, 56], tf.uint8),
    }
    assert {k: (v.shape.as_list(), v.dtype) for k, v in batch.items()} == expected


def test_ground_truth_agrees_with_the_dataset():
    config = SmallConfig()
    ds = shapes()
    batch = next(iter(pipeline.build_dataset(ds, config, shuffle=False)))
    image, meta, class_ids, masks = pipeline.load_image_gt(ds, config, 0)
    n = len(class_ids)
    np.testing.assert_array_equal(batch["gt_class_ids"][0, :n], class_ids)
    assert (batch["gt_class_ids"][0, n:].numpy() == 0).all()
    np.testing.assert_allclose(batch["image"][0] + config.MEAN_PIXEL, image, atol=1e-4)
    np.testing.assert_array_equal(batch["image_meta"][0], meta)
    # Boxes are the masks' tight boxes, normalised.
    for k in range(n):
        ys, xs = np.nonzero(masks[..., k])
        tight = [ys.min(), xs.min(), ys.max() + 1, xs.max() + 1]
        np.testing.assert_allclose(
            box_ops.denormalize(batch["gt_boxes"][0, k], image.shape), tight
        )
    # Square mode: 96 x 128 -> 128 x 128 with 16 rows of padding above.
    np.testing.assert_array_equal(meta[7:11], [16, 0, 112, 128])


def test_augmentation_hook_transforms_image_and_masks_together():
    config = SmallConfig()

    def flip(image, masks):
        return image[:, ::-1], masks[:, ::-1]

    ds = shapes()
    plain = next(iter(pipeline.build_dataset(ds, config, shuffle=False)))
    flipped = next(iter(pipeline.build_dataset(ds, config, shuffle=False, augmentation=flip)))
    np.testing.assert_allclose(flipped["image"], plain["image"][:, :, ::-1])
    y1, x1, y2, x2 = np.moveaxis(plain["gt_boxes"].numpy(), -1, 0)
    valid = plain["gt_class_ids"].numpy() > 0
    # Normalised boxes (Matterport): x -> 1 - x maps x1 to 1 - x2 exactly.
    expected = np.stack([y1, 1 - x2, y2, 1 - x1], axis=-1)[valid]
    np.testing.assert_allclose(flipped["gt_boxes"].numpy()[valid], expected, atol=1e-6)
    np.testing.assert_array_equal(
        flipped["gt_masks"].numpy()[valid], plain["gt_masks"].numpy()[valid][:, :, ::-1]
    )


def test_more_instances_than_max_gt_instances_are_subsampled():
    class Tight(SmallConfig):
        MAX_GT_INSTANCES = 1

    batch = next(iter(pipeline.build_dataset(shapes(), Tight(), shuffle=False)))
    assert batch["gt_class_ids"].shape == (2, 1)
    assert (batch["gt_class_ids"].numpy() > 0).all()


def test_inconsistent_load_mask_names_the_image():
    class Broken(ShapesDataset):
        def load_mask(self, image_id):
            masks, class_ids = super().load_mask(image_id)
            return masks[:10], class_ids

    ds = Broken()
    ds.load_shapes(1, 64, 64)
    ds.prepare()
    with pytest.raises(ValueError, match="image 0 .*load_mask returned masks"):
        pipeline.load_image_gt(ds, SmallConfig(), 0)


class NoMini(SmallConfig):
    USE_MINI_MASK = False


def test_instance_path_and_mask_path_give_the_same_batch():
    ds = shapes()
    config = SmallConfig()
    assert pipeline.uses_instance_path(config)
    fast = next(iter(pipeline.build_dataset(ds, config, shuffle=False)))
    # A plain callable augmentation forces the mask path.
    slow = next(iter(pipeline.build_dataset(ds, config, shuffle=False,
                                            augmentation=lambda i, m: (i, m))))
    for key in ("image", "image_meta", "gt_class_ids", "gt_masks"):
        np.testing.assert_array_equal(fast[key], slow[key], err_msg=key)
    np.testing.assert_allclose(fast["gt_boxes"], slow["gt_boxes"], atol=1e-6)


def test_instance_path_with_resize_flip_crop_and_disk_cache(tmp_path):
    from mrcnn.data.augmentation import FlipCrop

    class Cached(ShapesDataset):
        def cache_version(self, image_id):
            return "1"

    ds = Cached()
    ds.load_shapes(4, 48, 64, seed=5)  # square mode scales these up by 4/3
    ds.prepare()
    config = SmallConfig()
    aug = FlipCrop(flip=1.0, crop=0.0)
    batches = pipeline.build_dataset(ds, config, shuffle=False, augmentation=aug,
                                     mask_cache=tmp_path, repeat=False)
    batch = next(iter(batches))
    assert len(list(tmp_path.iterdir())) >= 2  # prefetching may have loaded more
    image, meta, class_ids, full = pipeline.load_image_gt(ds, config, 0)
    n = len(class_ids)
    assert_resized_alike(batch["image"][0] + config.MEAN_PIXEL, image[:, ::-1])
    expected = masks.boxes_from_masks(full[:, ::-1]).numpy()
    got = box_ops.denormalize(batch["gt_boxes"][0, :n], image.shape, rounded=False)
    np.testing.assert_allclose(got, expected, atol=1.0)


def assert_resized_alike(graph, numpy):
    """The graph's resize (float32) against resize_image's (float64): values
    that fall within rounding of a half may round the other way."""
    diff = np.abs(np.asarray(graph, np.float32) - np.asarray(numpy, np.float32))
    assert diff.max() <= 1.0 + 1e-4 and (diff > 1e-4).mean() < 1e-3


def test_without_mini_masks_the_mask_path_gives_full_masks():
    config = NoMini()
    assert not pipeline.uses_instance_path(config)
    batch = next(iter(pipeline.build_dataset(shapes(), config, shuffle=False)))
    assert batch["gt_masks"].shape == (2, 6, 128, 128)


def test_instances_smaller_than_a_pixel_after_resizing_are_dropped():
    # A 512 x 512 frame shown at 64 x 64: the 4-pixel-high instance would be
    # half a pixel high, which box_ops.normalize turns into an inverted box.
    config = SmallConfig()
    image = tf.zeros([64, 64, 3], tf.uint8)
    boxes = tf.constant([[16, 16, 200, 200], [300, 300, 304, 400], [100, 300, 108, 308]])
    mini = tf.ones([3, *config.MINI_MASK_SHAPE], tf.bool)
    out = pipeline.record_targets(image, tf.constant([1, 2, 3]), boxes, mini,
                                  tf.constant([0.0, 0.0, 512.0, 512.0]), config)
    assert out["gt_class_ids"].numpy().tolist() == [1, 3, 0, 0, 0, 0]
    gt = out["gt_boxes"].numpy()[:2]
    assert (gt[:, 2:] >= gt[:, :2]).all()
    np.testing.assert_allclose(box_ops.denormalize(gt, (64, 64), rounded=False),
                               [[2, 2, 25, 25], [12.5, 37.5, 13.5, 38.5]], atol=1e-5)


def _image_ids(batches):
    return [int(i) for b in batches for i in b["image_meta"][:, 0].numpy()]


def test_validation_reads_the_same_whole_batches_every_epoch():
    ds = shapes(7)
    val, steps = pipeline.validation_dataset(ds, SmallConfig(), steps=10, seed=3)
    assert steps == 3  # all whole batches of 2 among 7 images
    first, second = _image_ids(val), _image_ids(val)
    assert first == second and len(first) == 6 == len(set(first))
    fewer, steps = pipeline.validation_dataset(ds, SmallConfig(), steps=2, seed=3)
    assert steps == 2 and len(set(_image_ids(fewer))) == 4
    again, _ = pipeline.validation_dataset(ds, SmallConfig(), steps=2, seed=3)
    assert _image_ids(again) == _image_ids(fewer)  # seeded


def test_validation_of_less_than_a_batch_repeats_images():
    val, steps = pipeline.validation_dataset(shapes(1), SmallConfig(), steps=5)
    assert steps == 1 and _image_ids(val) == [0, 0]


def test_the_feeder_runs_without_the_autotuner():
    # Keras drops iterators at each validation and each fit's end; with the
    # autotuner on, that waited for its thread to wake (stalls of 5-60 s).
    batches = pipeline.build_dataset(shapes(), SmallConfig())
    assert batches.options().autotune.enabled is False


def _mirror(image, masks):  # a plain callable: the mask path
    return image[:, ::-1], masks[:, ::-1]


@pytest.mark.parametrize("augmentation", [FlipCrop(flip=1.0, crop=0.0), _mirror],
                         ids=["instance path", "mask path"])
def test_no_augmentation_sources_are_left_unaugmented(augmentation):
    config = SmallConfig()
    ds = shapes()

    def first(**kwargs):
        return next(iter(pipeline.build_dataset(ds, config, shuffle=False, **kwargs)))["image"]

    plain, mirrored = first(), first(augmentation=augmentation)
    np.testing.assert_allclose(mirrored, plain[:, :, ::-1])
    np.testing.assert_array_equal(
        first(augmentation=augmentation, no_augmentation_sources=["shapes"]), plain)
    np.testing.assert_array_equal(
        first(augmentation=augmentation, no_augmentation_sources=["other"]), mirrored)


# ------------------------------------------------- PNG files decoded in the graph
class PngShapes(ShapesDataset):
    """Shapes images saved as PNG files, read by the base Dataset.load_image."""

    load_image = Dataset.load_image

    def __init__(self, folder, count=4, size=(96, 128)):
        super().__init__()
        self.load_shapes(count, *size, seed=5)
        for i, info in enumerate(self.image_info):
            info["path"] = str(folder / f"{i}.png")
            Image.fromarray(ShapesDataset.load_image(self, i)).save(info["path"])
        self.prepare()


@pytest.mark.parametrize("size", [(96, 128), (48, 64)], ids=["padded", "resized"])
def test_png_files_decoded_in_the_graph_give_the_same_batches(tmp_path, size):
    files, drawn = PngShapes(tmp_path, size=size), shapes(size=size)
    assert files.load_image_file(0) is not None and drawn.load_image_file(0) is None
    config = SmallConfig()
    a = next(iter(pipeline.build_dataset(files, config, shuffle=False)))
    b = next(iter(pipeline.build_dataset(drawn, config, shuffle=False)))
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


@pytest.mark.parametrize("mode, dims", [("square", (64, 128)), ("pad64", (64, 0)),
                                        ("crop", (64, 0)), ("fit64", (40, 96)), ("none", (0, 0))])
def test_mold_in_graph_equals_load_image_instances(tmp_path, mode, dims):
    class Config_(SmallConfig):
        IMAGE_RESIZE_MODE = mode
        IMAGE_MIN_DIM, IMAGE_MAX_DIM = dims

    config, ds = Config_(), PngShapes(tmp_path, 1, size=(37, 71))
    graph = pipeline.load_instances_for_graph(ds, config, 0, rng=np.random.default_rng(2))
    image, meta, *instances = pipeline.load_image_instances(ds, config, 0,
                                                            rng=np.random.default_rng(2))
    molded = pipeline.mold_in_graph(*graph[:7]).numpy()
    assert molded.shape == image.shape and tuple(graph[6][2:]) == image.shape[:2]
    np.testing.assert_array_equal(molded, image)  # both resize_with_taps' float32
    assert_resized_alike(molded, pipeline.load_image_gt(ds, config, 0,
                                                        rng=np.random.default_rng(2))[0])
    np.testing.assert_array_equal(graph[7], meta)
    for got, expected in zip(graph[8:], instances):
        np.testing.assert_array_equal(got, expected)


def test_png_files_damaged_after_the_check_are_skipped_with_a_warning(tmp_path, caplog):
    ds = PngShapes(tmp_path, 6)
    cut = tmp_path / "1.png"
    cut.write_bytes(cut.read_bytes()[:-100])
    broken = bytearray((tmp_path / "4.png").read_bytes())
    broken[200] ^= 1
    (tmp_path / "4.png").write_bytes(bytes(broken))
    failures = FeedFailures("train", 1000)
    batches = pipeline.build_dataset(ds, SmallConfig(), shuffle=False, repeat=False,
                                     failures=failures)
    with caplog.at_level(logging.WARNING, logger="mrcnn.data.feed_failures"):
        ids = _image_ids(batches)
    assert ids == [0, 2, 3, 5]
    assert [(e["path"], e["reason"]) for e in failures.entries()] == [
        (str(cut), "cannot be decoded: image file is truncated"),
        (str(tmp_path / "4.png"), "cannot be decoded: broken PNG file (CRC error in chunk "
                                  "'IDAT')")]
    assert len(caplog.records) == 2
