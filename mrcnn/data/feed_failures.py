"""Images that fail to load during training: skipped, counted, and a stop above 1 %.

    failures = FeedFailures("train", total=len(image_ids))
    try:
        sample = load(image_id)
    except DECODE_ERRORS as e:
        failures.record(image_id, path, e)   # warns; raises TooManyFailuresError above 1 %

Every image is decoded once before training (mrcnn/data/image_check.py);
a file that changes afterwards (replaced, truncated by a copy still
running) fails inside the input pipeline. Rather than ending the run with
a traceback, the feeder skips that sample and logs a warning counting the
failures; once more than MAX_FRACTION of a feeder's images have failed
(distinct images: a file that fails at every epoch counts once), it raises
`TooManyFailuresError`, one message naming the files. Training stops in
the middle of an epoch, so no checkpoint of that epoch is written and the
earlier ones stay as they are. `entries()` lists what was skipped, for
the run's records (skipped.json, mrcnn/engine/skipped.py).
"""

import logging
import threading

from mrcnn.data.image_check import describe

logger = logging.getLogger(__name__)

MAX_FRACTION = 0.01
# Files the stop message names (then a count).
_NAMED = 5


class TooManyFailuresError(RuntimeError):
    """More than MAX_FRACTION of a feeder's images failed to load; the message names them."""


class FeedFailures:
    """The images of one feeder that failed to load, thread-safe.

    name: what the feeder reads ("train", "val"); total: its number of
    images; max_fraction: the share of them that may fail before the run
    stops (0.01: one image in 100; with fewer than 100 images, none).
    """

    def __init__(self, name, total, max_fraction=MAX_FRACTION):
        self.name, self.total, self.max_fraction = name, int(total), max_fraction
        self.failed = {}  # image_id -> {"path", "reason", "times"}
        self._lock = threading.Lock()

    def __getstate__(self):  # to worker processes (the PyDataset feeder): no lock
        return {key: value for key, value in self.__dict__.items() if key != "_lock"}

    def __setstate__(self, state):
        self.__dict__.update(state, _lock=threading.Lock())

    @property
    def limit(self):
        """How many distinct images may fail without stopping the run."""
        return int(self.max_fraction * self.total)

    @property
    def exceeded(self):
        return len(self.failed) > self.limit

    def record(self, image_id, path, error):
        """Count a failed load of `image_id` (its file `path`, the exception
        `error`) and warn; TooManyFailuresError once too many images failed."""
        path, reason = describe(error, path)
        with self._lock:
            if self.exceeded:  # stopping already: loads still under way end here
                raise self.error()
            entry = self.failed.setdefault(int(image_id), {"path": path, "reason": reason,
                                                           "times": 0})
            entry.update(path=path, reason=reason, times=entry["times"] + 1)
            count = len(self.failed)
        logger.warning("%s image %s skipped: %s: %s (%d of %d images failed to load so far; "
                       "more than %d stops the run)", self.name, image_id, path, reason, count,
                       self.total, self.limit)
        if count > self.limit:
            raise self.error()

    def error(self):
        """The TooManyFailuresError naming the failed files."""
        failed = list(self.failed.values())
        named = "; ".join(f"{f['path']}: {f['reason']}" for f in failed[:_NAMED])
        more = f" (and {len(failed) - _NAMED} more)" if len(failed) > _NAMED else ""
        return TooManyFailuresError(
            f"{len(failed)} of {self.total} {self.name} images failed to load during training "
            f"(more than {self.max_fraction:.0%} of them): {named}{more}; training stopped, the "
            f"checkpoints written so far are kept")

    def entries(self):
        """[{"split", "path", "reason", "times"}] of the failed images."""
        with self._lock:
            return [{"split": self.name, **f} for f in self.failed.values()]
