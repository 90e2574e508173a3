"""Training augmentation in the TF graph: random flips and crops, imgaug adapter.

Shape shorthand:
    H, W: image height and width; N: instances; h, w: mini-mask size
    image: [H, W, 3] uint8
    masks: [H, W, N] bool, full-size instance masks
    boxes: [N, (y1, x1, y2, x2)] float32 pixels, mini: [N, h, w] bool

An augmentation for `mrcnn.data.pipeline.build_dataset` is a callable
`(image, masks) -> (image, masks)` on tensors; the pipeline recomputes the
boxes from the transformed masks and drops instances left empty. Geometric
augmentations that also define `apply_to_instances(image, boxes, mini)` can
run on boxes + mini-masks instead of full-size masks (the fast path with
USE_MINI_MASK): `FlipCrop` does both, from the same random draw.

`FlipCrop` draws, per image, a window of the source image and a flip:

- crop (probability `crop`): discard a random 0..`max_crop` of the rows at
  the top, and independently at the bottom, left and right (whole pixels;
  the centre always stays), then resize back to H x W (bilinear image,
  nearest masks), so the aspect ratio changes a little. With
  `keep_aspect=True` the same fraction is taken off both axes (split at
  random between the two sides), so objects keep their proportions.
- horizontal flip (probability `flip`).

Each augmentation here also runs on NumPy arrays, without TensorFlow, for
the PyDataset feeder (mrcnn/data/py_feeder.py): `FlipCrop.augment_numpy`,
`FlipCrop.apply_to_instances_numpy` (given a np.random.Generator) and
`ImgaugAugmentation.augment_numpy`, with the same results as the graph's
for the same draw. TensorFlow is imported only by the graph methods.
"""

import numpy as np

from mrcnn.data import instances


class FlipCrop:
    """Random horizontal flip and random crop resized back to the input size.

    flip: probability of a left-right flip. crop: probability of a crop.
    max_crop: the largest fraction of the image taken off one side (< 0.5).
    keep_aspect: crop the same fraction of height and width.
    seed: op-level seed of the random draws (None: unseeded).
    """

    def __init__(self, flip=0.5, crop=0.5, max_crop=0.2, keep_aspect=False, seed=None):
        for name, p in (("flip", flip), ("crop", crop)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"FlipCrop: {name} probability must be in [0, 1], got {p}")
        if not 0.0 <= max_crop < 0.5:
            raise ValueError(f"FlipCrop: max_crop must be in [0, 0.5), got {max_crop}")
        self.flip = float(flip)
        self.crop = float(crop)
        self.max_crop = float(max_crop)
        self.keep_aspect = bool(keep_aspect)
        self.seed = seed

    def get_config(self):
        return {"flip": self.flip, "crop": self.crop, "max_crop": self.max_crop,
                "keep_aspect": self.keep_aspect, "seed": self.seed}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"FlipCrop({args})"

    # ---------------------------------------------------------------- draws
    def window_of(self, u, height, width):
        """The window and flip that uniforms u (float32 [7] in [0, 1)) pick
        for an image of `height` x `width` -> (window int32 [4]: y1, x1, y2,
        x2, the rows / columns kept; flip bool)."""
        f32 = np.float32
        u = np.asarray(u, f32)
        size = np.array([height, width], f32)
        max_crop = f32(self.max_crop)
        if self.keep_aspect:
            kept = f32(1.0) - f32(2.0) * max_crop * u[0]  # fraction kept, both axes
            low = np.maximum(f32(0.0), f32(1.0) - kept - max_crop)
            high = np.minimum(max_crop, f32(1.0) - kept)
            before = low + (high - low) * u[1:3]  # [2] top, left fractions
            after = f32(1.0) - kept - before
        else:
            before = max_crop * u[1:3]
            after = max_crop * u[3:5]
        first = np.floor(before * size).astype(np.int32)
        last = np.maximum(np.ceil((f32(1.0) - after) * size).astype(np.int32), first + 1)
        window = np.array([0, 0, height, width], np.int32)
        if u[5] < self.crop:
            window = np.concatenate([first, last])
        return window, bool(u[6] < self.flip)

    def draw(self, height, width, rng):
        """window_of() uniforms drawn from np.random.Generator `rng`."""
        return self.window_of(rng.random(7, dtype=np.float32), height, width)

    def sample(self, height, width):
        """Draw a window and a flip in the graph (window_of() of 7 uniforms
        of tf.random, op seed `seed`) -> window int32 [4], flip bool []."""
        import tensorflow as tf

        u = tf.random.uniform([7], seed=self.seed)
        window, flip = tf.numpy_function(self._window_arrays, [u, height, width],
                                         [tf.int32, tf.bool], stateful=False)
        return tf.ensure_shape(window, [4]), tf.ensure_shape(flip, [])

    def _window_arrays(self, u, height, width):
        window, flip = self.window_of(u, height, width)
        return window, np.bool_(flip)

    # ----------------------------------------------------------- applying
    def __call__(self, image, masks):
        """Augment an image and its full-size masks together, in the graph.

        image: [H, W, C], masks: [H, W, N] bool -> same shapes and dtypes.
        """
        import tensorflow as tf

        shape = tf.shape(image)
        window, flip = self.sample(shape[0], shape[1])
        image = _crop_resize_flip(image, window, flip, "bilinear")
        masks = _crop_resize_flip(tf.cast(masks, tf.uint8), window, flip, "nearest")
        return image, tf.cast(masks, tf.bool)

    def apply_to_instances(self, image, boxes, mini):
        """Augment an image and its instances given as boxes + mini-masks, in the graph.

        image: [H, W, C], boxes: [N, 4] pixels, mini: [N, h, w] bool ->
        (image, boxes [N, 4] float32, mini [N, h, w] bool, keep [N] bool);
        see `mrcnn.data.masks.transform_instances`.
        """
        import tensorflow as tf

        from mrcnn.data import masks as mask_ops

        shape = tf.shape(image)
        window, flip = self.sample(shape[0], shape[1])
        image = _crop_resize_flip(image, window, flip, "bilinear")
        boxes, mini, keep = mask_ops.transform_instances(
            boxes, mini, tf.cast(window, tf.float32), shape[:2], flip)
        return image, boxes, mini, keep

    def augment_numpy(self, image, masks, rng):
        """__call__ on NumPy arrays, one draw from np.random.Generator `rng`."""
        window, flip = self.draw(image.shape[0], image.shape[1], rng)
        masks = crop_resize_flip(np.asarray(masks, np.uint8), window, flip, "nearest")
        return crop_resize_flip(image, window, flip, "bilinear"), masks.astype(bool)

    def apply_to_instances_numpy(self, image, boxes, mini, rng):
        """apply_to_instances on NumPy arrays, one draw from np.random.Generator
        `rng`; the instances move by `mrcnn.data.instances.transform_instances`."""
        height, width = image.shape[:2]
        window, flip = self.draw(height, width, rng)
        image = crop_resize_flip(image, window, flip, "bilinear")
        boxes, mini, keep = instances.transform_instances(boxes, mini, window, (height, width),
                                                          flip)
        return image, boxes, mini, keep


def crop_resize_flip(image, window, flip, method):
    """_crop_resize_flip on a NumPy array [H, W, C] (window int [4], flip bool),
    with tf.image.resize's values (resize_like_tf)."""
    height, width = image.shape[:2]
    if tuple(window) != (0, 0, height, width):
        y1, x1, y2, x2 = (int(v) for v in window)
        resized = resize_like_tf(image[y1:y2, x1:x2], (height, width), method)
        if method != "nearest" and np.issubdtype(image.dtype, np.integer):
            info = np.iinfo(image.dtype)
            resized = np.clip(np.rint(resized), info.min, info.max)
        image = resized.astype(image.dtype)
    return image[:, ::-1] if flip else image


def resize_like_tf(image, size, method):
    """tf.image.resize of [H, W, C] to `size` (half-pixel centres, edges
    repeated) in NumPy, float32 as its kernels compute: "bilinear" -> float32,
    "nearest" -> the input's dtype."""
    (rows, row_lerp), (cols, col_lerp) = (_tf_taps(n_in, n_out, method)
                                          for n_in, n_out in zip(image.shape[:2], size))
    if method == "nearest":
        return np.take(np.take(image, rows[:, 0], axis=0), cols[:, 0], axis=1)
    # The kernel's top = top_left + (top_right - top_left) * x_lerp (and
    # bottom) is one interpolation across the columns of the input rows,
    # then out = top + (bottom - top) * y_lerp: the same float32 operations.
    across = np.take(image, cols[:, 0], axis=1).astype(np.float32)
    right = np.take(image, cols[:, 1], axis=1).astype(np.float32)
    right -= across
    right *= col_lerp[None, :, None]
    across += right
    top = np.take(across, rows[:, 0], axis=0)
    bottom = np.take(across, rows[:, 1], axis=0)
    bottom -= top
    bottom *= row_lerp[:, None, None]
    top += bottom
    return top


def _tf_taps(n_in, n_out, method):
    """TensorFlow's resize sampling along one axis -> indices int [n_out, 2]
    (below, above; nearest: both the one taken) and float32 [n_out] the
    weight of the one above."""
    f32 = np.float32
    scale = f32(n_in) / f32(n_out)
    centres = (np.arange(n_out, dtype=f32) + f32(0.5)) * scale
    if method == "nearest":
        taken = np.minimum(np.floor(centres).astype(np.int64), n_in - 1)
        return np.stack([taken, taken], axis=1), np.zeros(n_out, f32)
    position = centres - f32(0.5)
    below = np.floor(position)
    indices = np.stack([np.maximum(below, 0), np.minimum(np.ceil(position), n_in - 1)], axis=1)
    return indices.astype(np.int64), position - below


def _crop_resize_flip(image, window, flip, method):
    """Keep rows / columns `window` of [H, W, C], resize back to H x W, flip."""
    import tensorflow as tf

    image = tf.convert_to_tensor(image)
    shape = tf.shape(image)
    dtype = image.dtype

    def crop_resize():
        part = image[window[0]:window[2], window[1]:window[3]]
        resized = tf.image.resize(part, shape[:2], method=method)
        if method != "nearest" and dtype.is_integer:
            resized = tf.clip_by_value(tf.round(resized), dtype.min, dtype.max)
        return tf.cast(resized, dtype)

    cropped = tf.reduce_any(tf.not_equal(window, tf.stack([0, 0, shape[0], shape[1]])))
    image = tf.cond(cropped, crop_resize, lambda: image)
    image = tf.cond(flip, lambda: tf.reverse(image, axis=[1]), lambda: image)
    return tf.ensure_shape(image, [None, None, None])


# Geometric imgaug augmenters that are also applied to the masks (the rest,
# e.g. colour changes and blur, touch only the image), as Matterport did.
MASK_AUGMENTERS = ("Sequential", "SomeOf", "OneOf", "Sometimes", "Fliplr", "Flipud",
                   "CropAndPad", "Crop", "Pad", "Affine", "PiecewiseAffine")


class ImgaugAugmentation:
    """Use an imgaug-style augmenter (Matterport's `augmentation=`) in the pipeline.

    augmenter: an object with `to_deterministic()` whose result has
    `augment_image(array, hooks=None)`, e.g. `imgaug.augmenters.Fliplr(0.5)`.
    Each image draws one deterministic augmenter, applied to the image and
    to the masks; with imgaug importable only MASK_AUGMENTERS touch the
    masks. Runs in Python (`tf.numpy_function`), on full-size masks.
    """

    def __init__(self, augmenter):
        if not hasattr(augmenter, "to_deterministic"):
            raise TypeError(
                f"ImgaugAugmentation needs an imgaug-style augmenter with to_deterministic(), "
                f"got {type(augmenter).__name__}"
            )
        self.augmenter = augmenter

    def __repr__(self):
        return f"ImgaugAugmentation({self.augmenter!r})"

    def augment_numpy(self, image, masks, rng=None):
        """One draw on numpy arrays: image uint8 [H, W, 3], masks bool [H, W, N]
        (rng: unused, imgaug draws from its own generator)."""
        det = self.augmenter.to_deterministic()
        out_image = det.augment_image(image)
        out_masks = det.augment_image(masks.astype(np.uint8), hooks=_mask_hooks())
        if out_image.shape[:2] != out_masks.shape[:2] or out_masks.shape[2:] != masks.shape[2:]:
            raise ValueError(
                f"augmentation {self.augmenter!r} changed image and masks differently: image "
                f"{list(image.shape)} -> {list(out_image.shape)}, masks {list(masks.shape)} -> "
                f"{list(out_masks.shape)}"
            )
        return np.ascontiguousarray(out_image, np.uint8), np.ascontiguousarray(out_masks) > 0

    def __call__(self, image, masks):
        import tensorflow as tf

        image, masks = tf.numpy_function(
            self.augment_numpy, [image, masks], [tf.uint8, tf.bool], stateful=True)
        return tf.ensure_shape(image, [None, None, 3]), tf.ensure_shape(masks, [None, None, None])


def _mask_hooks():
    """imgaug hooks restricting mask augmentation to MASK_AUGMENTERS, or None."""
    try:
        import imgaug
    except Exception:  # imgaug 0.4 does not import under NumPy 2
        return None

    def activator(images, augmenter, parents, default):
        return augmenter.__class__.__name__ in MASK_AUGMENTERS

    return imgaug.HooksImages(activator=activator)
