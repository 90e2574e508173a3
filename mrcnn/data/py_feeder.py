"""The training input as a `keras.utils.PyDataset`: NumPy batches from worker processes.

    feeder = PyFeeder(dataset, config, augmentation=FlipCrop(), mask_cache="cache/",
                      workers=8, use_multiprocessing=True)
    model.fit(feeder, ...)

The same batches as `mrcnn.data.pipeline.build_dataset` (the dict of its
docstring, as NumPy arrays, BATCH_SIZE images each), built from the same
NumPy steps (mrcnn/data/samples.py) and, where build_dataset works in the
TensorFlow graph, from their NumPy twins (mrcnn/data/instances.py, the
NumPy methods of mrcnn/data/augmentation.py), equal to the graph's for the
same random draws. Neither this module nor anything it runs imports
TensorFlow: it feeds the JAX backend, and TensorFlow too. Decoding,
resizing and augmenting hold the GIL here, so the work spreads over cores
as Keras' worker processes (`workers`, `use_multiprocessing=True`).

Each epoch reads `image_ids` in a new order (shuffle) in whole batches, the
last partial batch left out. Random draws (order, crop positions,
augmentation, the instances kept beyond MAX_GT_INSTANCES) come from `seed`,
the epoch and the batch index, so a batch is the same whichever worker
builds it. An image whose file fails to load is counted in `failures`
(mrcnn/data/feed_failures.py: a warning, and TooManyFailuresError past 1 %)
and replaced by the next image of the epoch's order, so batches stay
whole. With worker processes each process counts the failures it sees.
"""

import keras
import numpy as np

from mrcnn.data import samples
from mrcnn.data.feed_failures import FeedFailures
from mrcnn.data.image_check import DECODE_ERRORS
from mrcnn.data.mask_cache import MiniMaskCache


class PyFeeder(keras.utils.PyDataset):
    """Training batches of a prepared `mrcnn.data.dataset.Dataset`, as NumPy arrays.

    Arguments as `mrcnn.data.pipeline.build_dataset`'s (augmentation: None,
    FlipCrop, or another object with the NumPy methods its path needs:
    `apply_to_instances_numpy` on the instance path, `augment_numpy` on the
    mask path); workers, use_multiprocessing, max_queue_size: PyDataset's.
    """

    def __init__(self, dataset, config, shuffle=True, augmentation=None, seed=None,
                 mask_cache=None, image_ids=None, no_augmentation_sources=(), failures=None,
                 workers=1, use_multiprocessing=False, max_queue_size=10, steps=None):
        super().__init__(workers=workers, use_multiprocessing=use_multiprocessing,
                         max_queue_size=max_queue_size)
        self.dataset, self.config = dataset, config
        self.image_ids = np.asarray(dataset.image_ids if image_ids is None else image_ids)
        if len(self.image_ids) < config.BATCH_SIZE:
            raise ValueError(f"{type(dataset).__name__} has {len(self.image_ids)} images, "
                             f"fewer than a batch of {config.BATCH_SIZE} (did you call "
                             f"prepare()?)")
        self.shuffle, self.augmentation = shuffle, augmentation
        self.instance_path = samples.uses_instance_path(config, augmentation)
        _check_augmentation(augmentation, self.instance_path)
        if mask_cache is not None and not isinstance(mask_cache, MiniMaskCache):
            mask_cache = MiniMaskCache(mask_cache, config.MINI_MASK_SHAPE)
        self.mask_cache = mask_cache
        self.failures = failures or FeedFailures("images", len(self.image_ids))
        skipped = set(no_augmentation_sources or ())
        # [num images] True where the image's source is not to be augmented.
        self.plain = np.array([info["source"] in skipped for info in dataset.image_info], bool)
        self.seed = np.random.SeedSequence(seed).entropy
        self.steps = steps
        self.epoch = 0

    def __len__(self):
        """Batches per epoch: `steps` if given (Keras' steps_per_epoch:
        the images are read again, in a new order, after each pass), else
        one pass over the images."""
        return self.steps or self.batches_per_pass()

    def batches_per_pass(self):
        return len(self.image_ids) // self.config.BATCH_SIZE

    def on_epoch_end(self):
        self.epoch += 1

    def order(self, passes=0):
        """This epoch's image ids, in reading order (pass `passes` over them)."""
        if not self.shuffle:
            return self.image_ids
        key = [self.seed, self.epoch] + ([passes] if passes else [])
        return np.random.default_rng(key).permutation(self.image_ids)

    def __getitem__(self, index):
        """Batch `index` of this epoch: {key: array [BATCH_SIZE, ...]}."""
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} of {len(self)}")
        batch = self.config.BATCH_SIZE
        passes, index = divmod(index, max(1, self.batches_per_pass()))
        order = self.order(passes)
        rng = np.random.default_rng([self.seed, self.epoch, index] + ([passes] if passes else []))
        examples = []
        # The batch's images, then (replacing images that fail) the next ones.
        for position in range(index * batch, index * batch + len(order)):
            example = self.example(int(order[position % len(order)]), rng)
            if example is not None:
                examples.append(example)
            if len(examples) == batch:
                return {key: np.stack([e[key] for e in examples]) for key in examples[0]}
        raise self.failures.error()  # every image failed

    def example(self, image_id, rng):
        """One image's dict (pipeline.py's keys, no batch axis), or None when
        its file fails to load (counted in `failures`)."""
        augmentation = None if self.plain[image_id] else self.augmentation
        try:
            if self.instance_path:
                return samples.instance_sample(self.dataset, self.config, image_id, rng,
                                               self.mask_cache, augmentation)
            return samples.mask_sample(self.dataset, self.config, image_id, rng, augmentation)
        except DECODE_ERRORS as e:
            self.failures.record(image_id, self.dataset.image_info[image_id].get("path"), e)
            return None


def _check_augmentation(augmentation, instance_path):
    """TypeError unless `augmentation` has the NumPy method its path calls."""
    needed = "apply_to_instances_numpy" if instance_path else "augment_numpy"
    if augmentation is not None and not hasattr(augmentation, needed):
        raise TypeError(f"the PyDataset feeder runs augmentations in NumPy: "
                        f"{type(augmentation).__name__} has no {needed}() (FlipCrop and "
                        f"ImgaugAugmentation have)")
