"""Label images: one integer per pixel (instance ids, class ids).

Shape shorthand:
    H, W: image height and width (any shape works); U: distinct values

The distinct values of a label image, their pixel counts, and a lookup
from each pixel to the index of its value. Small non-negative labels (the
usual case: Cityscapes instance ids stay below 34,000) use a bincount and a
direct lookup table, which is several times faster than sorting the
pixels; other labels fall back on `np.unique`.
"""

import numpy as np

# Labels below this use a direct lookup table; others np.unique.
MAX_LUT_VALUE = 1 << 22


def present_values(ids):
    """Sorted distinct values of ids, their pixel counts, and a remap function.

    ids: [H, W] int. Returns (values [U] int64 sorted, counts [U] int64,
    remap) where remap(table [U]) -> [H, W] table[index of each pixel's value].
    """
    ids = np.asarray(ids)
    lo, hi = (int(ids.min()), int(ids.max())) if ids.size else (0, 0)
    if lo >= 0 and hi < MAX_LUT_VALUE:
        all_counts = np.bincount(ids.ravel(), minlength=1)
        values = np.flatnonzero(all_counts)

        def remap(table):
            full = np.zeros(hi + 1, dtype=np.asarray(table).dtype)
            full[values] = table
            return full[ids]

        return values.astype(np.int64), all_counts[values].astype(np.int64), remap
    values, index, counts = np.unique(ids, return_inverse=True, return_counts=True)
    return (values.astype(np.int64), counts.astype(np.int64),
            lambda table: np.asarray(table)[index.reshape(ids.shape)])

