"""One training sample in NumPy: an image and its instances, loaded and molded.

The parts of the input pipeline that need no TensorFlow, shared by the
tf.data feeder (mrcnn/data/pipeline.py, which runs them in its Python
steps) and the PyDataset feeder (mrcnn/data/py_feeder.py, which runs
everything here, in worker processes). Shapes as in pipeline.py's
docstring; H, W the molded size.
"""

import numpy as np

from mrcnn.data import instances
from mrcnn.data.image import (
    apply_geometry,
    compose_image_meta,
    placement,
    resize_geometry,
    resize_mask,
    resize_with_taps,
)
from mrcnn.data.mask_cache import dataset_record


def geometry(config, height, width, rng):
    """resize_geometry() of an image of height x width under `config`."""
    return resize_geometry(
        height, width,
        min_dim=config.IMAGE_MIN_DIM,
        max_dim=config.IMAGE_MAX_DIM,
        min_scale=config.IMAGE_MIN_SCALE,
        mode=config.IMAGE_RESIZE_MODE,
        rng=rng,
    )


def image_meta(dataset, image_id, original_shape, image_shape, window, scale):
    active = np.zeros([dataset.num_classes], np.int32)
    active[dataset.source_class_ids[dataset.image_info[image_id]["source"]]] = 1
    return compose_image_meta(image_id, original_shape, image_shape, window, scale, active)


def load_image_gt(dataset, config, image_id, rng=None):
    """Load and resize one image and its instances (no augmentation).

    Returns image uint8 [H, W, 3], image_meta float32 [12 + NUM_CLASSES],
    class_ids int32 [N], masks bool [H, W, N]; H, W the molded size.
    """
    image = dataset.load_image(image_id)
    mask, class_ids = dataset.load_mask(image_id)
    if mask.shape[:2] != image.shape[:2] or mask.ndim != 3 or len(class_ids) != mask.shape[2]:
        raise ValueError(
            f"image {image_id} ({dataset.image_reference(image_id)}): load_mask returned "
            f"masks {list(mask.shape)} and {len(class_ids)} class ids for an image of shape "
            f"{list(image.shape)}; expected bool [H, W, N] and int32 [N]"
        )
    size, window, scale, padding, crop = geometry(config, *image.shape[:2], rng)
    molded = apply_geometry(image, size, padding, crop)
    mask = resize_mask(mask, scale, padding, crop)
    meta = image_meta(dataset, image_id, image.shape, molded.shape, window, scale)
    return molded, meta, np.asarray(class_ids, np.int32), mask.astype(bool)


def load_image_instances(dataset, config, image_id, cache=None, rng=None):
    """Load and resize one image; its instance record at the original size.

    cache: a MiniMaskCache, or None to compute the record from load_mask.
    The image is resized as the tf.data graph resizes it (resize_with_taps).
    Returns image uint8 [H, W, 3] (molded size), image_meta float32,
    class_ids int32 [N], boxes int32 [N, 4] and mini-masks bool [N, h, w]
    in original pixels, and `frame` float32 [4]: the region of the original
    image (y1, x1, y2, x2, pixel edges) that the molded image shows, for
    `mrcnn.data.masks.transform_instances`.
    """
    image = dataset.load_image(image_id)
    record = instance_record(dataset, config, image_id, image.shape, cache)
    size, window, scale, padding, crop = geometry(config, *image.shape[:2], rng)
    molded = apply_geometry(image, size, padding, crop, resize=resize_with_taps)
    meta = image_meta(dataset, image_id, image.shape, molded.shape, window, scale)
    return (molded, meta, record["class_ids"], record["boxes"], record["mini"],
            frame(image.shape, size, padding, crop))


def instance_record(dataset, config, image_id, shape, cache):
    """The image's instance record (mask_cache), checked against its shape."""
    if cache is not None:
        record = cache.get(dataset, image_id)
    else:
        record = dataset_record(dataset, image_id, config.MINI_MASK_SHAPE)
    if tuple(record["shape"]) != tuple(shape[:2]):
        raise ValueError(
            f"image {image_id} ({dataset.image_reference(image_id)}): load_mask returned "
            f"masks of size {list(record['shape'])} for an image of shape {list(shape)}"
        )
    return record


def frame(shape, size, padding, crop):
    """float32 [4]: the region of the original image (y1, x1, y2, x2, pixel
    edges) that the molded image shows; resize_geometry's size, padding, crop."""
    # Per-axis scale of the resize (sizes are rounded).
    sy, sx = size[0] / shape[0], size[1] / shape[1]
    y, x, h, w = placement(size, padding, crop)
    return np.asarray([y / sy, x / sx, (y + h) / sy, (x + w) / sx], np.float32)


# ------------------------------------------------------- whole samples, NumPy
def uses_instance_path(config, augmentation=None):
    """True when the feeders take the instance path (pipeline.py's docstring)."""
    return bool(config.USE_MINI_MASK) and (
        augmentation is None or hasattr(augmentation, "apply_to_instances"))


def instance_sample(dataset, config, image_id, rng, cache=None, augmentation=None):
    """The instance path of pipeline.py for one image, in NumPy -> the dict of
    pipeline.py's docstring without batch axis.

    rng: np.random.Generator (crop position, augmentation, subsampling);
    cache: a MiniMaskCache or None; augmentation: None or an object with
    `apply_to_instances_numpy` (FlipCrop).
    """
    image, meta, class_ids, boxes, mini, region = load_image_instances(
        dataset, config, image_id, cache, rng)
    boxes, mini, keep = instances.transform_instances(boxes, mini, region, image.shape[:2])
    if augmentation is not None:
        image, boxes, mini, kept = augmentation.apply_to_instances_numpy(image, boxes, mini, rng)
        keep &= kept
    # Instances shrunk below one pixel have no mask left (pipeline.record_targets).
    keep &= (boxes[:, 2:] - boxes[:, :2] >= 1.0).all(axis=1)
    order = subsample(int(keep.sum()), config.MAX_GT_INSTANCES, rng)
    return {**padded_targets(image, class_ids[keep][order], boxes[keep][order],
                             mini[keep][order], config), "image_meta": meta}


def mask_sample(dataset, config, image_id, rng, augmentation=None):
    """The mask path of pipeline.py for one image, in NumPy -> the dict of
    pipeline.py's docstring without batch axis. augmentation: None or an
    object with `augment_numpy(image, masks, rng)` (FlipCrop, ImgaugAugmentation).
    """
    image, meta, class_ids, masks = load_image_gt(dataset, config, image_id, rng)
    if augmentation is not None:
        image, masks = augmentation.augment_numpy(image, masks, rng)
    boxes = instances.boxes_from_masks(masks)
    keep = (boxes != 0).any(axis=1)
    order = subsample(int(keep.sum()), config.MAX_GT_INSTANCES, rng)
    boxes, masks = boxes[keep][order], masks[:, :, keep][:, :, order]
    if config.USE_MINI_MASK:
        gt_masks = instances.mini_masks(masks, boxes, config.MINI_MASK_SHAPE)
    else:
        gt_masks = masks.transpose(2, 0, 1)
    return {**padded_targets(image, class_ids[keep][order], boxes, gt_masks, config),
            "image_meta": meta}


def subsample(n, limit, rng):
    """Indices of a random subset of at most `limit` of n instances, in order."""
    return np.sort(rng.permutation(n)[:limit])


def padded_targets(image, class_ids, boxes, gt_masks, config):
    """Normalise, pad (pipeline._targets in NumPy): image uint8 [H, W, 3],
    class_ids [N], boxes [N, 4] pixels, gt_masks [N, h, w] -> the dict of
    pipeline.py's docstring without image_meta and batch axis."""
    pad = config.MAX_GT_INSTANCES - len(class_ids)
    return {
        "image": image.astype(np.float32) - np.asarray(config.MEAN_PIXEL, np.float32),
        "gt_class_ids": np.pad(np.asarray(class_ids, np.int32), [(0, pad)]),
        "gt_boxes": np.pad(instances.normalize_boxes(boxes, image.shape), [(0, pad), (0, 0)]),
        "gt_masks": np.pad(np.asarray(gt_masks, np.uint8), [(0, pad), (0, 0), (0, 0)]),
    }

