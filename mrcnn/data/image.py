"""Image utilities: resizing and padding, masks, image meta, molding.

Everything here works on numpy arrays, except `parse_image_meta_graph`,
which slices tensors inside the model.

Resize modes (Config.IMAGE_RESIZE_MODE), as in Matterport:

- "none":   the image is returned unchanged.
- "square": scaled up so its shorter side is at least `min_dim` (and by at
            least `min_scale`), but so that its longer side is at most
            `max_dim`, then zero-padded to `max_dim` x `max_dim`, centred.
- "pad64":  scaled up as in "square" (no `max_dim` limit), then zero-padded
            so each side is a multiple of 64, centred.
- "crop":   scaled up as in "pad64", then a random `min_dim` x `min_dim`
            crop is taken (training only).
- "fit64":  (not in Matterport) scaled up or down so its shorter side is
            `min_dim`, but its longer side at most `max_dim` (detectron2's
            ResizeShortestEdge), then zero-padded as in "pad64". Keeps
            Cityscapes' 1:2 frames without square padding at any size:
            min 1024 / max 2048 leaves them as they are, 512 / 1024 halves them.

Image meta layout (one float32 row per image, length 12 + NUM_CLASSES):
image_id (1), original image shape (3), molded image shape (3), window
(4: y1, x1, y2, x2 of the image inside the molded one, in molded pixels),
scale (1), active class ids (NUM_CLASSES: 1 for the classes of the image's
dataset source).
"""

import numpy as np
import skimage.transform

from mrcnn.config import RESIZE_MODES


# ------------------------------------------------------------------ resizing
def resize_image(image, min_dim=None, max_dim=None, min_scale=None, mode="square",
                 rng=None, round_values=True):
    """Resize and pad (or crop) an image, keeping its aspect ratio and dtype.

    image: [H, W, C]. min_dim, max_dim, min_scale: None or 0 for unset.
    rng: np.random.Generator for the "crop" mode (default: a fresh one).
    round_values: integer images get the interpolated values rounded to the
        nearest integer (the model's molding); False truncates them towards
        zero, as Matterport's `utils.resize_image` does (`astype` of the
        float result). Float images are unaffected.

    Returns:
        image: [h, w, C] resized image, same dtype.
        window: (y1, x1, y2, x2) of the image content inside the result.
        scale: the factor applied to the image before padding / cropping.
        padding: [(top, bottom), (left, right), (0, 0)] zero padding added.
        crop: (y, x, h, w) of the crop taken, or None.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"expected an image of shape [H, W, C], got shape {list(image.shape)}")
    size, window, scale, padding, crop = resize_geometry(
        image.shape[0], image.shape[1], min_dim, max_dim, min_scale, mode, rng)
    return apply_geometry(image, size, padding, crop, round_values), window, scale, padding, crop


def apply_geometry(image, size, padding, crop, round_values=True, resize=None):
    """Resize image [H, W, C] to `size`, then pad or crop it (resize_geometry's
    results; round_values as resize_image's) -> [h, w, C], same dtype.
    resize: None (scikit-image's, `_resize`) or a function (image, size) -> image."""
    if tuple(size) != image.shape[:2]:
        image = _resize(image, size, round_values) if resize is None else resize(image, size)
    if crop is not None:
        y, x, h, w = crop
        return image[y:y + h, x:x + w]
    return np.pad(image, padding) if np.any(padding) else image


def resize_geometry(height, width, min_dim=None, max_dim=None, min_scale=None, mode="square",
                    rng=None):
    """What `resize_image` does to an image of `height` x `width`, without the image.

    Arguments as resize_image's (rng draws the "crop" position, the same
    draws as resize_image). Returns (size, window, scale, padding, crop):
    size (h, w) after scaling and before padding / cropping, the others as
    resize_image returns them.
    """
    if mode not in RESIZE_MODES:
        raise ValueError(f"unknown resize mode {mode!r}; expected one of {RESIZE_MODES}")
    for name, value in (("min_dim", min_dim), ("max_dim", max_dim), ("min_scale", min_scale)):
        if value is not None and value < 0:
            raise ValueError(f"{name} must not be negative, got {value}")
    h, w = int(height), int(width)
    padding = [(0, 0), (0, 0), (0, 0)]
    if mode == "none":
        return (h, w), (0, 0, h, w), 1.0, padding, None
    if mode == "square" and not max_dim:
        raise ValueError("resize mode 'square' needs max_dim")
    if mode == "pad64" and min_dim and min_dim % 64:
        raise ValueError(f"resize mode 'pad64' needs min_dim divisible by 64, got {min_dim}")
    if mode == "crop" and not min_dim:
        raise ValueError("resize mode 'crop' needs min_dim")

    if mode == "fit64" and not (min_dim and max_dim):
        raise ValueError("resize mode 'fit64' needs min_dim and max_dim")
    scale = max(1.0, min_dim / min(h, w)) if min_dim else 1.0
    if mode == "fit64":
        scale = min_dim / min(h, w)
    if min_scale and scale < min_scale:
        scale = float(min_scale)
    if mode in ("square", "fit64") and round(max(h, w) * scale) > max_dim:
        scale = max_dim / max(h, w)
    if scale != 1:
        h, w = scaled_size(h, w, scale)
    size = (h, w)

    if mode == "crop":
        rng = np.random.default_rng() if rng is None else rng
        y = int(rng.integers(0, h - min_dim + 1))
        x = int(rng.integers(0, w - min_dim + 1))
        return size, (0, 0, min_dim, min_dim), scale, padding, (y, x, min_dim, min_dim)

    if mode == "square":
        out_h, out_w = max_dim, max_dim
    else:  # pad64, fit64
        out_h, out_w = -(-h // 64) * 64, -(-w // 64) * 64
    top, left = (out_h - h) // 2, (out_w - w) // 2
    padding = [(top, out_h - h - top), (left, out_w - w - left), (0, 0)]
    return size, (top, left, top + h, left + w), scale, padding, None


def placement(size, padding, crop):
    """Where the molded image lies on the scaled one: (y, x, h, w).

    size, padding, crop: as resize_geometry returns them. Molded pixel
    (i, j) is scaled pixel (y + i, x + j), zero where that is outside the
    scaled image (padding gives y, x <= 0); the molded image is h x w.
    """
    if crop is not None:
        return tuple(int(v) for v in crop)
    (top, bottom), (left, right) = padding[0], padding[1]
    return -top, -left, size[0] + top + bottom, size[1] + left + right


def resize_mask(mask, scale, padding, crop=None):
    """Resize, then pad or crop, masks with the geometry of resize_image().

    mask: [H, W, N] bool. scale, padding, crop: as returned by resize_image().
    Nearest-neighbour sampling at the same pixel centres as the image resize,
    so a mask stays aligned with the image. Returns [h, w, N] bool.
    """
    mask = np.asarray(mask, dtype=bool)
    h, w = mask.shape[:2]
    if scale != 1:
        new_h, new_w = scaled_size(h, w, scale)
        rows = _nearest_indices(h, new_h)
        cols = _nearest_indices(w, new_w)
        mask = mask[rows[:, None], cols]
    if crop is not None:
        y, x, ch, cw = crop
        return mask[y:y + ch, x:x + cw]
    return np.pad(mask, padding)


def scaled_size(h, w, scale):
    """(round(h * scale), round(w * scale)), at least 1 pixel each."""
    return max(1, round(h * scale)), max(1, round(w * scale))


def _resize(image, size, round_values=True):
    """Bilinear resize of [H, W, C] to `size` (h, w), keeping value range and
    dtype; integer results are rounded, or truncated if not `round_values`."""
    out = skimage.transform.resize(image, size, order=1, mode="constant", cval=0,
                                   clip=True, preserve_range=True, anti_aliasing=False)
    if round_values and np.issubdtype(image.dtype, np.integer):
        out = np.rint(out)
    return out.astype(image.dtype)


def bilinear_taps(n_in, n_out):
    """One axis of `_resize` as two taps per output pixel.

    Output pixel i is centred at source position (i + 0.5) * n_in / n_out
    - 0.5 and interpolated from its two neighbours, with zeros beyond the
    source's edges (scikit-image's order=1, mode="constant"). Returns
    indices int32 [n_out, 2] (clipped into range) and weights float32
    [n_out, 2] (0 for a neighbour beyond an edge). Resizing an image is
    `sum_k w[:, k] * image[idx[:, k]]` along each axis in turn.
    """
    position = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    low = np.floor(position)
    frac = position - low
    idx = low[:, None].astype(np.int64) + np.arange(2)
    weights = np.stack([1.0 - frac, frac], axis=1)
    weights[(idx < 0) | (idx >= n_in)] = 0.0
    return np.clip(idx, 0, n_in - 1).astype(np.int32), weights.astype(np.float32)


def resize_with_taps(image, size):
    """`_resize` of uint8 [H, W, C] to `size` (h, w) by bilinear_taps, in
    float32 as the input pipeline's graph computes it (rounding of values
    within float error of a half may differ from _resize's) -> uint8."""
    (rows, row_w), (cols, col_w) = bilinear_taps(image.shape[0], size[0]), bilinear_taps(
        image.shape[1], size[1])
    out = image.astype(np.float32)
    out = out[rows[:, 0]] * row_w[:, 0, None, None] + out[rows[:, 1]] * row_w[:, 1, None, None]
    out = out[:, cols[:, 0]] * col_w[None, :, 0, None] + out[:, cols[:, 1]] * col_w[None, :, 1, None]
    # scikit-image's clip=True: within the image's own value range.
    return np.rint(np.clip(out, image.min(), image.max())).astype(np.uint8)


def _nearest_indices(n_in, n_out):
    """[n_out] source index of each output pixel, matching pixel centres."""
    centres = (np.arange(n_out) + 0.5) * (n_in / n_out)
    return np.minimum(np.floor(centres).astype(np.int64), n_in - 1)


# --------------------------------------------------------------- image meta
def compose_image_meta(image_id, original_image_shape, image_shape, window, scale,
                       active_class_ids):
    """Pack an image's attributes into one float32 row [12 + NUM_CLASSES].

    original_image_shape, image_shape: (H, W, C) before / after molding.
    window: (y1, x1, y2, x2) in molded pixels. active_class_ids: [NUM_CLASSES].
    """
    return np.concatenate([
        [image_id],
        np.asarray(original_image_shape).ravel(),
        np.asarray(image_shape).ravel(),
        np.asarray(window).ravel(),
        [scale],
        np.asarray(active_class_ids).ravel(),
    ]).astype(np.float32)


def parse_image_meta(meta):
    """Unpack image meta rows.

    meta: [B, 12 + NUM_CLASSES] (or one row [12 + NUM_CLASSES]).
    Returns a dict of arrays with the leading batch shape: image_id [B] int32,
    original_image_shape [B, 3] int32, image_shape [B, 3] int32,
    window [B, 4] int32, scale [B] float32, active_class_ids [B, NUM_CLASSES] int32.
    """
    meta = np.asarray(meta)
    parts = _split_meta(meta)
    return {key: value.astype(np.float32 if key == "scale" else np.int32)
            for key, value in parts.items()}


def parse_image_meta_graph(meta):
    """parse_image_meta() for tensors, inside the model: same keys, no casts.

    meta: [B, 12 + NUM_CLASSES] float32 tensor. Returns a dict of float32
    tensors: image_id [B], original_image_shape [B, 3], image_shape [B, 3],
    window [B, 4], scale [B], active_class_ids [B, NUM_CLASSES].
    """
    return _split_meta(meta)


def _split_meta(meta):
    """Slice the meta fields along the last axis (numpy arrays or tensors)."""
    return {
        "image_id": meta[..., 0],
        "original_image_shape": meta[..., 1:4],
        "image_shape": meta[..., 4:7],
        "window": meta[..., 7:11],
        "scale": meta[..., 11],
        "active_class_ids": meta[..., 12:],
    }


# ----------------------------------------------------------------- molding
def mold_image(images, mean_pixel):
    """Network input from images: float32, mean pixel subtracted.

    images: [..., C] uint8 or float. mean_pixel: [C] (Config.MEAN_PIXEL).
    """
    return np.asarray(images, dtype=np.float32) - np.asarray(mean_pixel, dtype=np.float32)


def mold_batch(images, min_dim, max_dim, min_scale, mode, mean_pixel, num_classes):
    """Resize and mold images for the network, as one batch.

    images: list of uint8 [h, w, 3], any sizes; the other arguments are
    `resize_image`'s and `mold_image`'s (IMAGE_MIN_DIM, ...). Returns molded
    [B, H, W, 3] float32 (padded at the bottom / right to the largest
    image's size, in multiples of 64), image_metas [B, 12 + C], windows [B, 4].
    """
    molded, metas, windows = [], [], []
    for image in images:  # one resize per image of the batch
        resized, window, scale, _, _ = resize_image(image, min_dim, max_dim, min_scale, mode)
        molded.append(mold_image(resized, mean_pixel))
        windows.append(window)
        metas.append((image.shape, window, scale))
    height = max(-(-m.shape[0] // 64) * 64 for m in molded)
    width = max(-(-m.shape[1] // 64) * 64 for m in molded)
    batch = np.zeros([len(images), height, width, 3], np.float32)
    for i, m in enumerate(molded):
        batch[i, : m.shape[0], : m.shape[1]] = m
    image_metas = np.stack([
        compose_image_meta(0, shape, batch.shape[1:], window, scale, np.ones(num_classes))
        for shape, window, scale in metas
    ])
    return batch, image_metas, np.array(windows)


def unmold_image(normalized_images, mean_pixel):
    """Inverse of mold_image(): add the mean pixel back, round, clip to uint8."""
    images = np.asarray(normalized_images, dtype=np.float32) + np.asarray(mean_pixel, np.float32)
    return np.clip(np.rint(images), 0, 255).astype(np.uint8)


# -------------------------------------------------------------- validation
def validate_image(image):
    """Check an image given to detect(); return it unchanged.

    Expected: a numpy array [H, W, 3], dtype uint8, or a float dtype with
    values in [0, 255]. Raises ValueError saying what was given otherwise.
    """
    expected = "expected an RGB image as a uint8 array of shape [H, W, 3]"
    if not isinstance(image, np.ndarray):
        raise ValueError(f"{expected}, got {type(image).__name__}")
    given = f"{image.dtype} {list(image.shape)}"
    if image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
        hint = ""
        if image.ndim == 2:
            hint = " (a gray image: convert it with np.stack([image] * 3, axis=-1))"
        elif image.ndim == 3 and image.shape[2] == 4:
            hint = " (RGBA: drop the alpha channel with image[..., :3])"
        raise ValueError(f"{expected}, got {given}{hint}")
    if image.dtype == np.uint8:
        return image
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"{expected} (or float in [0, 255]), got {given}")
    low, high = image.min(), image.max()
    if not (low >= 0 and high <= 255):  # also catches NaN
        raise ValueError(
            f"{expected} (or float in [0, 255]), got {given} with values in [{low}, {high}]"
        )
    return image
