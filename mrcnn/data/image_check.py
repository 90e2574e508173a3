"""Every image decoded once, in full, before training: bad files found at load time.

    report = verify(dataset, range(len(dataset.image_info)), cache="~/.cache/x/decoded.json")
    # -> {"images": 5, "decoded": 5, "cached": 0, "bad": [(image_id, path, reason)], "seconds": .1}

A header that reads proves little: a PNG with a valid header and half its
bytes opens and reports its size, and fails only when its pixels are
decoded (Pillow: "image file is truncated"), which in training happens
inside the input pipeline whenever the shuffle reaches the file, maybe
hours in. `verify` decodes every image of a Dataset in full
(`dataset.check_image`, by default its `load_image`) in threads (Pillow's
PNG decoder releases the GIL), and either raises `BadImageError` naming the
first bad file, or, with skip_bad, lists every bad one (the caller leaves
them out: `Dataset.verify_images`).

`DecodeCache` remembers the files that decoded fine by path, size and
mtime_ns, in one small JSON file, so a second run decodes only the files
that changed. Bad files are never remembered: they are decoded again (and
reported afresh) every time. Images without files (`dataset.image_files`
empty: generated in memory) are not checked.
"""

import json
import logging
import os
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

from mrcnn import files

logger = logging.getLogger(__name__)

# What reading a damaged or changed file raises (Pillow: OSError, SyntaxError,
# EOFError, zlib.error; a dataset's own checks: ValueError).
DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, zlib.error)
CACHE_VERSION = 1


class BadImageError(ValueError):
    """An image that cannot be decoded; the message names the file and the problem."""

    def __init__(self, path, reason):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def describe(error, path):
    """(file, reason) of a decode error: the file it names (a dataset's
    error may name the annotation rather than the image), else `path`, and
    the innermost message (Pillow's, under load_image's wording)."""
    named = getattr(error, "path", None) or getattr(error, "filename", None) or path
    reason = getattr(error, "reason", None)
    if reason is None:
        cause = error.__cause__ or error
        reason = getattr(cause, "strerror", None) or str(cause) or type(cause).__name__
        reason = f"cannot be decoded: {reason}"
    return str(named), reason


def stamps(paths):
    """{absolute path: (size, mtime_ns)} of files, or None when one is missing."""
    out = {}
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            return None
        out[os.path.abspath(path)] = (st.st_size, st.st_mtime_ns)
    return out


class DecodeCache:
    """The files that decoded fine, by path, size and mtime_ns, in a JSON file.

    path: the file (created on `save`; a damaged or other-version file is
    started afresh). Saving merges with what another process saved since,
    drops the entries of files that have gone or changed, and is atomic;
    a cache that cannot be written costs a warning (the next run decodes
    again), never the run.
    """

    def __init__(self, path):
        self.path = os.path.expanduser(os.fspath(path))
        self._files = self._read()
        self._added = {}

    def __repr__(self):
        return f"DecodeCache({self.path!r})"

    def _read(self):
        if not os.path.exists(self.path):
            return {}
        try:
            data = files.read_json(self.path)
            if data.get("version") != CACHE_VERSION:
                return {}
            return {p: tuple(s) for p, s in data["files"].items()}
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            logger.warning("decode cache %s unreadable (%s): starting it afresh", self.path, e)
            return {}

    def known(self, file_stamps):
        """Whether every file of `file_stamps` ({path: (size, mtime_ns)}) decoded fine before."""
        return all(self._files.get(p) == s for p, s in file_stamps.items())

    def add(self, file_stamps):
        """Remember files that decoded fine, with the stamps taken before decoding."""
        self._added.update(file_stamps)
        self._files.update(file_stamps)

    def save(self):
        """Write the cache (when something was added); OSError -> a warning."""
        if not self._added:
            return
        merged = {**self._read(), **self._added}
        kept = {p: s for p, s in merged.items() if stamps([p]) == {p: s}}
        try:
            record = {"version": CACHE_VERSION, "files": {p: list(s) for p, s in kept.items()}}
            files.write_text(self.path, json.dumps(record, separators=(",", ":")) + "\n")
        except OSError as e:
            logger.warning("decode cache %s not written (%s): the next run decodes again",
                           self.path, e)
            return
        self._added = {}


def verify(dataset, image_ids, cache=None, workers=None, skip_bad=False):
    """Decode the images `image_ids` of `dataset` in full, those the cache
    does not know.

    dataset: a Dataset (its `image_files(i)`: the files to stamp; its
    `check_image(i)`: decodes, raising a DECODE_ERRORS on a bad file).
    cache: None, a DecodeCache or the path of one. workers: threads
    (default: one per CPU). skip_bad: False raises BadImageError for the
    first bad image (in image order); True lists them all.
    -> {"images": checked (with files), "decoded": decoded now, "cached":
    known from the cache, "bad": [(image_id, path, reason)], "seconds"}
    """
    started = time.time()
    if cache is not None and not isinstance(cache, DecodeCache):
        cache = DecodeCache(cache)
    todo, images, cached = [], 0, 0
    for image_id in image_ids:
        paths = list(dataset.image_files(image_id))
        if not paths:
            continue
        images += 1
        found = stamps(paths)
        if found is not None and cache is not None and cache.known(found):
            cached += 1
            continue
        todo.append((image_id, paths, found))

    def check(item):
        image_id, paths, _ = item
        try:
            dataset.check_image(image_id)
        except DECODE_ERRORS as e:
            return describe(e, paths[0])
        return None

    bad = []
    pool = ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1)
    try:
        for (image_id, _, found), problem in zip(todo, pool.map(check, todo)):
            if problem is None:
                if cache is not None and found is not None:
                    cache.add(found)
                continue
            if not skip_bad:
                raise BadImageError(*problem)
            bad.append((image_id, *problem))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if cache is not None:
            cache.save()
    return {"images": images, "decoded": len(todo), "cached": cached, "bad": bad,
            "seconds": round(time.time() - started, 2)}
