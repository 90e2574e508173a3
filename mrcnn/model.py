"""Matterport's user API: `MaskRCNN` (train, detect, load_weights, find_last).

    model = MaskRCNN(mode="training", config=CityscapesConfig(), model_dir="logs")
    model.load_weights(COCO_PATH, by_name=True, exclude=[...])
    model.train(train_ds, val_ds, learning_rate=1e-3, epochs=10, layers="heads")

    infer = MaskRCNN(mode="inference", config=InferenceConfig(), model_dir="logs")
    infer.load_weights(infer.find_last(), by_name=True)
    r = infer.detect([image])[0]   # rois, class_ids, scores, masks, proposals

`MaskRCNN` wraps the Keras network (`keras_model`, a
`mrcnn.modeling.network.MaskRCNNModel` built from the Config) with the
methods of Matterport's `mrcnn.model.MaskRCNN`; the run folders, weights
files, input pipeline and un-molding live in engine/, checkpoint/, data/
and modeling/postprocess.py.

Several devices (`engine.devices.make_strategy`): create `MaskRCNN` under
`strategy.scope()`; `train` compiles and fits under the same strategy.
"""

import json
import logging
import os
import sys

import keras
import tensorflow as tf

from mrcnn import files
from mrcnn.checkpoint import hdf5 as weight_io
from mrcnn.checkpoint import pretrained
from mrcnn.config import LOSS_NAMES
from mrcnn.data import pipeline
from mrcnn.data.image import mold_batch, validate_image
from mrcnn.engine import callbacks as run_callbacks
from mrcnn.engine import optimizers, run_dir, trainable
from mrcnn.modeling.network import MODES, build_network
from mrcnn.modeling.postprocess import to_original_boxes, unmold_detections

logger = logging.getLogger(__name__)


class MaskRCNN:
    """Matterport's user API around `MaskRCNNModel`.

    mode: "training" or "inference"; config: a `Config`; model_dir: where
    run folders (checkpoints, logs) go.
    """

    def __init__(self, mode, config, model_dir):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if mode == "inference" and config.IMAGE_RESIZE_MODE == "crop":
            raise ValueError(
                "IMAGE_RESIZE_MODE 'crop' is for training only (random crops); "
                "use 'pad64' or 'square' in the inference config"
            )
        self.mode = mode
        self.config = config
        self.model_dir = model_dir
        self.epoch = 0
        self.log_dir = None
        # The tf.distribute strategy whose scope this is created in (the
        # default one outside any scope): `train` compiles and fits under it.
        self.strategy = tf.distribute.get_strategy()
        self.keras_model = build_network(config, mode)
        self._infer = None
        self._compiled_setup = None  # what the last train() compiled for

    # --------------------------------------------------------------- weights
    def load_weights(self, filepath, by_name=False, exclude=None):
        """Load Matterport / this project's .h5 weights, or ImageNet ones.

        filepath: a .h5 file; "imagenet" or a keras-applications ImageNet
        file (``resnet{50,101}_weights_tf_dim_ordering_tf_kernels_notop.h5``)
        loads the backbone through Matterport's layer names. Fails loudly
        when a layer of the file cannot be loaded (see mrcnn/checkpoint/hdf5.py).
        Loading a checkpoint of a run (`.../name20240101T1200/
        mask_rcnn_name_0003.h5`) continues that run: its folder and epochs.
        Returns the LoadReport (also printed).
        """
        if filepath == "imagenet":
            filepath = self.get_imagenet_weights()
        if pretrained.is_imagenet_file(filepath):
            report = weight_io.load_imagenet_weights(
                self.keras_model, filepath, self.config.BACKBONE
            )
        else:
            report = weight_io.load_weights(self.keras_model, filepath, by_name, exclude)
            self.set_log_dir(filepath)
        logger.info("%s", report)
        print(report)
        return report

    def get_imagenet_weights(self):
        """Path of the ImageNet weights of this config's backbone (cached or
        downloaded; a clear error says where to get them otherwise)."""
        return pretrained.get_weights_file("imagenet", self.config.BACKBONE)

    def save_weights(self, filepath):
        """Write the weights in the legacy Keras-2 HDF5 layout, atomically."""
        weight_io.save_weights(self.keras_model, filepath)

    def set_log_dir(self, model_path=None):
        """Run folder and epoch: continue the run of `model_path` if it is a
        checkpoint of ours, else start a new run at epoch 0."""
        parsed = run_dir.parse_checkpoint_path(model_path) if model_path else None
        if parsed:
            self.log_dir, self.epoch = parsed
        else:
            self.log_dir = run_dir.new_log_dir(self.model_dir, self.config.NAME or "mrcnn")
            self.epoch = 0

    def find_last(self):
        """Path of the last checkpoint of the last run of this config's NAME."""
        return run_dir.find_last(self.model_dir, self.config.NAME or "mrcnn")

    # -------------------------------------------------------------- training
    def train(
        self,
        train_dataset,
        val_dataset,
        learning_rate,
        epochs,
        layers,
        augmentation=None,
        custom_callbacks=None,
        freeze=(),
        mask_cache=None,
    ):
        """Train the selected layers up to epoch `epochs` (cumulative).

        train_dataset, val_dataset: prepared `mrcnn.data.dataset.Dataset`s.
        layers: "heads" | "3+" | "4+" | "5+" | "all" | a regex on layer names.
        augmentation: callable (image, masks) -> (image, masks) on tensors,
            e.g. `mrcnn.data.augmentation.FlipCrop()` (see mrcnn/data/pipeline.py).
        mask_cache: None or a folder keeping each image's boxes and
            mini-masks on disk (`mrcnn.data.mask_cache`), for datasets that
            define `cache_version`.
        freeze: ("rpn", "fpn") keeps those layers fixed and drops the RPN
        losses (to continue from a checkpoint with a frozen proposal stage).
        Under a tf.distribute strategy (this object created in its scope),
        each batch of BATCH_SIZE images is split over the replicas, so
        BATCH_SIZE must be a multiple of their number.
        Returns the Keras History.
        """
        if self.mode != "training":
            raise ValueError("train() needs a model created with mode='training'")
        config = self.config
        replicas = self.strategy.num_replicas_in_sync
        if config.BATCH_SIZE % replicas:
            raise ValueError(
                f"BATCH_SIZE = {config.BATCH_SIZE} (GPU_COUNT * IMAGES_PER_GPU) does not split "
                f"over the {replicas} replicas of the distribution strategy"
            )
        if self.log_dir is None:
            self.set_log_dir()
        train_ds = pipeline.build_dataset(train_dataset, config, augmentation=augmentation,
                                          mask_cache=mask_cache)
        val_ds, val_steps = pipeline.validation_dataset(val_dataset, config,
                                                        config.VALIDATION_STEPS, mask_cache)

        model = self.keras_model
        names = trainable.set_trainable(model, layers, freeze)
        logger.info("Training %d weight layers (%s) from epoch %d to %d, lr %g",
                    len(names), layers, self.epoch, epochs, learning_rate)
        model.loss_weights = dict.fromkeys(LOSS_NAMES, 1.0)
        model.loss_weights.update(config.LOSS_WEIGHTS)
        if "rpn" in freeze:
            model.loss_weights.update(rpn_class_loss=0.0, rpn_bbox_loss=0.0)
        callbacks = self._run_callbacks() + list(custom_callbacks or [])
        # The optimizer's variables must belong to the model's strategy.
        # Under the mixed_float16 policy, compile wraps the optimizer in a
        # LossScaleOptimizer.
        # A stage that trains the same weights as the previous call keeps its
        # compiled step and optimizer state; only the learning rate changes
        # (tracing the step costs 20-30 s on a CPU).
        setup = (tuple(names), tuple(sorted(model.loss_weights.items())))
        with self.strategy.scope():
            if setup == self._compiled_setup and model.optimizer is not None:
                model.optimizer.learning_rate.assign(learning_rate)
            else:
                model.compile(
                    optimizer=optimizers.make_optimizer(
                        config.OPTIMIZER, learning_rate, config.LEARNING_MOMENTUM,
                        config.GRADIENT_CLIP_NORM,
                    ),
                    jit_compile=False,
                )
                # Slots made now, not in the first trace of the step: a
                # tf.function that creates variables is traced twice.
                model.optimizer.build(model.trainable_variables)
                self._compiled_setup = setup
            history = model.fit(
                train_ds,
                initial_epoch=self.epoch,
                epochs=epochs,
                steps_per_epoch=config.STEPS_PER_EPOCH,
                validation_data=val_ds,
                validation_steps=val_steps,
                callbacks=callbacks,
                shuffle=False,  # the tf.data pipeline shuffles
                # A progress bar on a terminal; one line per epoch in a log file.
                verbose=1 if sys.stdout.isatty() else 2,
            )
        self.epoch = max(self.epoch, epochs)
        return history

    def _run_callbacks(self):
        """The run folder's callbacks (mrcnn/engine/callbacks.py), in the order that
        keeps a NaN epoch from being saved. Also writes config.json."""
        name = self.config.NAME or "mrcnn"
        os.makedirs(self.log_dir, exist_ok=True)
        files.write_text(os.path.join(self.log_dir, "config.json"),
                         json.dumps(self.config.to_dict(), indent=2, sort_keys=True) + "\n")
        return [
            run_callbacks.StopOnNonFinite(),
            run_callbacks.HistoryCSV(os.path.join(self.log_dir, "history.csv"), self.epoch),
            keras.callbacks.TensorBoard(os.path.join(self.log_dir, "tensorboard"),
                                        write_graph=False, profile_batch=0),
            run_callbacks.EpochCheckpoint(self.log_dir, name),
        ]

    # ------------------------------------------------------------- inference
    def mold_inputs(self, images):
        """Resize and mold images for the network.

        images: list of uint8 [h, w, 3]. Returns molded [B, H, W, 3] float32
        (padded at the bottom / right to a common size when the images
        differ), image_metas [B, 12 + C], windows [B, 4].
        """
        c = self.config
        return mold_batch(images, c.IMAGE_MIN_DIM, c.IMAGE_MAX_DIM, c.IMAGE_MIN_SCALE,
                          c.IMAGE_RESIZE_MODE, c.MEAN_PIXEL, c.NUM_CLASSES)

    def detect(self, images, verbose=0):
        """Detect instances in a batch of images.

        images: list of BATCH_SIZE uint8 RGB arrays [h, w, 3], any sizes.
        Returns one dict per image: rois int32 [N, (y1, x1, y2, x2)],
        class_ids int32 [N], scores float32 [N], masks bool [h, w, N], all in
        the original image's pixels; and proposals int32 [R, 4], the RPN's
        boxes in the same pixels, best first.
        """
        if self.mode != "inference":
            raise ValueError("detect() needs a model created with mode='inference'")
        if not isinstance(images, (list, tuple)) or len(images) != self.config.BATCH_SIZE:
            got = len(images) if isinstance(images, (list, tuple)) else type(images).__name__
            raise ValueError(
                f"detect() takes a list of exactly BATCH_SIZE = {self.config.BATCH_SIZE} "
                f"images (GPU_COUNT * IMAGES_PER_GPU), got {got}"
            )
        for image in images:
            validate_image(image)
        molded, metas, windows = self.mold_inputs(images)
        if self._infer is None:
            self._infer = tf.function(
                lambda inputs: self.keras_model(inputs, training=False),
                reduce_retracing=True, jit_compile=False,
            )
        out = self._infer({"image": tf.constant(molded), "image_meta": tf.constant(metas)})
        results = []
        for i, image in enumerate(images):
            r = unmold_detections(out["detections"][i].numpy(), out["mrcnn_mask"][i].numpy(),
                                  image.shape, molded.shape[1:], windows[i])
            if "rois" in out:
                r["proposals"] = to_original_boxes(out["rois"][i].numpy(), image.shape,
                                                   molded.shape[1:], windows[i])
            results.append(r)
        if verbose:
            for image, r in zip(images, results):
                print(f"image {list(image.shape)}: {len(r['class_ids'])} detections")
        return results

    def get_anchors(self, image_shape):
        """Normalised anchors [A, 4] of a molded image of `image_shape` (numpy).
        Kept for Matterport compatibility (its notebooks call it)."""
        return self.keras_model.anchors(image_shape[:2]).numpy()
