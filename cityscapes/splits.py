"""Deterministic re-splits and subsets of the labelled Cityscapes images.

The official test split has no public labels, so work that reports test
numbers re-splits the 3475 labelled images (official train 2975 + val 500)
into new train / val / test sets, e.g. 1403 / 326 / 1746. `resplit` does
that, either by whole cities (no city in two splits, sizes approximate) or
with exact sizes (each city spread over the splits in proportion).
`subset` draws a fixed number of items for quick experiments.

Randomness comes from SHA-256 of (seed, name) rather than a random number
generator, so the result depends only on the names and the seed: the same
on every platform and NumPy / Python version, and independent of the order
the names are given in.
"""

import hashlib

SPLIT_NAMES = ("train", "val", "test")
# The sizes of the re-split we follow (train, val; test gets the rest).
DEFAULT_SIZES = (1403, 326)


def _key(seed, *parts):
    """A seeded pseudo-random sort key for `parts` (bytes, uniform)."""
    text = "\0".join([str(int(seed)), *map(str, parts)])
    return hashlib.sha256(text.encode("utf-8")).digest()


def _fraction(seed, *parts):
    """A seeded pseudo-random float in [0, 1) for `parts`."""
    return int.from_bytes(_key(seed, *parts)[:8], "big") / 2.0**64


def resplit(stems_by_city, sizes=DEFAULT_SIZES, seed=0, by_city=True):
    """Split images into new train / val / test sets.

    stems_by_city: {city: [image stems]} (e.g. the official train and val
        images pooled); stems must be unique.
    sizes: (train, val) target sizes; test gets every other image.
    seed: int; a different seed gives a different split.
    by_city:
        True: whole cities. Cities are taken in a seeded random order, and
            each goes to the first of train, val whose count it brings
            closer to that split's target (i.e. count + city / 2 < target),
            else to test. Greedy, so train and val end within about half a
            city of their targets when enough cities are left (not exact);
            no city is in two splits.
        False: exact sizes, stratified by city. Each city's images get
            evenly spaced positions in [0, 1) (a seeded offset per city,
            the images in seeded order); all images sorted by position go
            train first, then val, then test. Each split then holds each
            city's images in proportion (within about one image).

    Returns {"train": [...], "val": [...], "test": [...]}, each sorted.
    Raises ValueError when sizes are negative or add up to more images
    than there are, or a stem appears twice.
    """
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) != 2 or min(sizes) < 0:
        raise ValueError(f"sizes must be two non-negative (train, val) sizes, got {sizes}")
    stems_by_city = {str(c): sorted(map(str, s)) for c, s in stems_by_city.items()}
    all_stems = [s for stems in stems_by_city.values() for s in stems]
    if len(set(all_stems)) != len(all_stems):
        raise ValueError("resplit: a stem appears more than once")
    if sum(sizes) > len(all_stems):
        raise ValueError(
            f"resplit: sizes {sizes} need {sum(sizes)} images, only {len(all_stems)} given")
    split = _split_by_city if by_city else _split_stratified
    parts = split(stems_by_city, sizes, seed)
    return {name: sorted(part) for name, part in zip(SPLIT_NAMES, parts)}


def _split_by_city(stems_by_city, sizes, seed):
    """Whole cities greedily, in seeded order -> [train, val, test] lists."""
    parts = [[], [], []]
    for city in sorted(stems_by_city, key=lambda c: _key(seed, "city", c)):
        stems = stems_by_city[city]
        target = next(
            (i for i, size in enumerate(sizes) if len(parts[i]) + len(stems) / 2 < size), 2)
        parts[target].extend(stems)
    return parts


def _split_stratified(stems_by_city, sizes, seed):
    """Exact sizes, cities spread evenly -> [train, val, test] lists."""
    positioned = []
    for city, stems in stems_by_city.items():
        offset = _fraction(seed, "offset", city)
        ordered = sorted(stems, key=lambda s: _key(seed, "stem", s))
        n = len(ordered)
        positioned += [((j + offset) / n, _key(seed, "tie", s), s) for j, s in enumerate(ordered)]
    ordered = [s for _, _, s in sorted(positioned)]
    n_train, n_val = sizes
    return [ordered[:n_train], ordered[n_train:n_train + n_val], ordered[n_train + n_val:]]


def subset(items, n, seed=0):
    """A deterministic subset of n items, sorted.

    The items are ranked by a seeded hash of their string form and the
    first n kept, so subset(items, n) is contained in subset(items, n + 1)
    and does not depend on the order of `items`. Items must be distinct.
    Raises ValueError when n is negative or more than len(items).
    """
    items = list(items)
    n = int(n)
    if n < 0:
        raise ValueError(f"subset size must be >= 0, got {n}")
    if n > len(items):
        raise ValueError(f"subset of {n} items asked for, only {len(items)} available")
    ranked = sorted(items, key=lambda item: _key(seed, "subset", item))
    return sorted(ranked[:n])
