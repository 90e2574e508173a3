"""One training sample in NumPy: an image and its instances, loaded and molded.

The parts of the input pipeline that need no TensorFlow, shared by the
tf.data feeder (mrcnn/data/pipeline.py, which runs them in its Python
steps) and the PyDataset feeder (mrcnn/data/py_feeder.py, which runs
everything here, in worker processes). Shapes as in pipeline.py's
docstring; H, W the molded size.
"""

import numpy as np

from mrcnn.data.image import (
    apply_geometry,
    compose_image_meta,
    placement,
    resize_geometry,
    resize_mask,
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
    Returns image uint8 [H, W, 3] (molded size), image_meta float32,
    class_ids int32 [N], boxes int32 [N, 4] and mini-masks bool [N, h, w]
    in original pixels, and `frame` float32 [4]: the region of the original
    image (y1, x1, y2, x2, pixel edges) that the molded image shows, for
    `mrcnn.data.masks.transform_instances`.
    """
    image = dataset.load_image(image_id)
    record = instance_record(dataset, config, image_id, image.shape, cache)
    size, window, scale, padding, crop = geometry(config, *image.shape[:2], rng)
    molded = apply_geometry(image, size, padding, crop)
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
