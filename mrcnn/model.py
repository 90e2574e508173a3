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

import contextlib
import logging
import os
import re
import sys
from collections import OrderedDict

import keras
import numpy as np

from mrcnn import files
from mrcnn.checkpoint import hdf5 as weight_io
from mrcnn.checkpoint import pretrained
from mrcnn.config import LOSS_NAMES
from mrcnn.data import image as imaging
from mrcnn.data.feed_failures import FeedFailures
from mrcnn.data.image import (
    compose_image_meta,
    mold_batch,
    parse_image_meta,
    validate_image,
)
from mrcnn.data.image_check import DECODE_ERRORS
from mrcnn.engine import callbacks as run_callbacks
from mrcnn.engine import (
    devices,
    faults,
    optimizers,
    run_dir,
    run_record,
    skipped,
    trainable,
)
from mrcnn.modeling import anchors as anchor_boxes
from mrcnn.modeling import box_ops, postprocess, targets
from mrcnn.modeling.network import MODES, build_network
from mrcnn.modeling.postprocess import to_original_boxes

__all__ = ["MaskRCNN", "compose_image_meta", "data_generator", "load_image_gt", "log",
           "mold_image", "parse_image_meta", "unmold_image"]

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
        # None on other backends (one device).
        self.strategy = _current_strategy()
        self.keras_model = build_network(config, mode)
        self._infer = None
        self._compiled_setup = None  # what the last train() compiled for
        # Images the input pipeline skipped in train() calls (dicts as in
        # skipped.json: a file that failed to load during training).
        self.feed_skipped = []

        # Extra fields of this model's line in its run folder's runs.jsonl
        # (train.py: its options), and (log_dir, invocation number) once written.
        self.run_info = {}
        self._invocation = None

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
        no_augmentation_sources=None,
        freeze=(),
        mask_cache=None,
    ):
        """Train the selected layers up to epoch `epochs` (cumulative).

        train_dataset, val_dataset: prepared `mrcnn.data.dataset.Dataset`s.
        layers: "heads" | "3+" | "4+" | "5+" | "all" | a regex on layer names.
        augmentation: callable (image, masks) -> (image, masks) on tensors,
            e.g. `mrcnn.data.augmentation.FlipCrop()` (see mrcnn/data/pipeline.py),
            or an imgaug-style augmenter (Matterport's; run in Python by
            `ImgaugAugmentation`).
        custom_callbacks: Keras callbacks added to the run's own.
        no_augmentation_sources: dataset sources whose images are not
            augmented (Matterport's).
        mask_cache: None or a folder keeping each image's boxes and
            mini-masks on disk (`mrcnn.data.mask_cache`), for datasets that
            define `cache_version`.
        freeze: ("rpn", "fpn") keeps those layers fixed and drops the RPN
        losses (to continue from a checkpoint with a frozen proposal stage).
        Under a tf.distribute strategy (this object created in its scope),
        each batch of BATCH_SIZE images is split over the replicas, so
        BATCH_SIZE must be a multiple of their number.
        An image that fails to load during training (its file changed) is
        skipped with a counted warning, listed in the run folder's
        skipped.json and in `feed_skipped`; when more than 1 % of a
        dataset's images fail, training stops with
        `mrcnn.data.feed_failures.TooManyFailuresError` (the checkpoints of
        the epochs before stay).
        Returns the Keras History.
        """
        if self.mode != "training":
            raise ValueError("train() needs a model created with mode='training'")
        config = self.config
        replicas = self.strategy.num_replicas_in_sync if self.strategy else 1
        if config.BATCH_SIZE % replicas:
            raise ValueError(
                f"BATCH_SIZE = {config.BATCH_SIZE} (GPU_COUNT * IMAGES_PER_GPU) does not split "
                f"over the {replicas} replicas of the distribution strategy"
            )
        if hasattr(augmentation, "to_deterministic"):
            from mrcnn.data.augmentation import ImgaugAugmentation

            augmentation = ImgaugAugmentation(augmentation)
        if self.log_dir is None:
            self.set_log_dir()
        failures = [FeedFailures("train", len(train_dataset.image_ids)),
                    FeedFailures("val", len(val_dataset.image_ids))]
        train_ds, val_ds, val_steps = _feeders(
            train_dataset, val_dataset, config, augmentation, mask_cache,
            no_augmentation_sources, failures)

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
        # LossScaleOptimizer. XLA as config.JIT_COMPILE says ("auto": on a GPU).
        # A stage that trains the same weights as the previous call keeps its
        # compiled step and optimizer state; only the learning rate changes
        # (tracing the step costs 20-30 s on a CPU).
        setup = (tuple(names), tuple(sorted(model.loss_weights.items())))
        with self.strategy.scope() if self.strategy else contextlib.nullcontext():
            if setup == self._compiled_setup and model.optimizer is not None:
                model.optimizer.learning_rate.assign(learning_rate)
            else:
                model.compile(
                    optimizer=optimizers.make_optimizer(
                        config.OPTIMIZER, learning_rate, config.LEARNING_MOMENTUM,
                        config.GRADIENT_CLIP_NORM,
                    ),
                    jit_compile=devices.resolve_jit_compile(config.JIT_COMPILE),
                )
                # Slots made now, not in the first trace of the step: a
                # tf.function that creates variables is traced twice.
                model.optimizer.build(model.trainable_variables)
                self._compiled_setup = setup
            with _recorded(failures, self.log_dir, self.feed_skipped):
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
        keeps a NaN epoch from being saved. The first call in a run folder
        removes the partial files a killed process left there and appends
        this invocation to its runs.jsonl (engine/run_record.py; config.json
        too when the folder has none)."""
        name = self.config.NAME or "mrcnn"
        if self._invocation is None or self._invocation[0] != self.log_dir:
            os.makedirs(self.log_dir, exist_ok=True)
            for path in files.leftover_temp_files(self.log_dir):
                os.remove(path)
                print(f"Removed {path}, a partial file left by a write that was killed")
            number = run_record.start(self.log_dir, self.config, self.epoch, self.run_info)
            self._invocation = (self.log_dir, number)
        # TensorBoard logs are written by TensorFlow's summary writer: left
        # out where TensorFlow is not installed (history.csv has the figures).
        tensorboard = ([keras.callbacks.TensorBoard(os.path.join(self.log_dir, "tensorboard"),
                                                    write_graph=False, profile_batch=0)]
                       if _tensorflow_available() else [])
        return [
            *faults.callbacks(),  # a test hook; [] outside tests/faults/
            run_callbacks.StopOnNonFinite(),
            run_callbacks.HistoryCSV(os.path.join(self.log_dir, "history.csv"), self.epoch),
            *tensorboard,
            run_callbacks.EpochCheckpoint(self.log_dir, name),
            run_callbacks.RecordCheckpoint(self.log_dir, name, self._invocation[1]),
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
        verbose: 1 prints Matterport's `log` lines of the inputs.
        Returns one dict per image: rois int32 [N, (y1, x1, y2, x2)],
        class_ids int32 [N], scores float32 [N], masks bool [h, w, N], all in
        the original image's pixels; and proposals int32 [R, 4], the RPN's
        boxes in the same pixels, best first.
        """
        self._check_batch("detect", images)
        for image in images:
            validate_image(image)
        if verbose:
            log(f"Processing {len(images)} images")
            for image in images:
                log("image", image)
        molded, metas, windows = self.mold_inputs(images)
        return self._detect(molded, metas, [image.shape for image in images], windows, verbose)

    def detect_molded(self, molded_images, image_metas, verbose=0):
        """Detect instances in images already molded (e.g. from load_image_gt
        and mold_image); results in the molded images' pixels.

        molded_images: [BATCH_SIZE, H, W, 3] float32; image_metas: [BATCH_SIZE, 12 + C].
        """
        self._check_batch("detect_molded", molded_images)
        molded = np.asarray(molded_images, np.float32)
        if verbose:
            log(f"Processing {len(molded)} images")
            for image in molded:
                log("image", image)
        h, w = molded.shape[1:3]
        windows = np.tile([0, 0, h, w], (len(molded), 1))
        return self._detect(molded, np.asarray(image_metas, np.float32),
                            [molded.shape[1:]] * len(molded), windows, verbose)

    def _check_batch(self, method, images):
        if self.mode != "inference":
            raise ValueError(f"{method}() needs a model created with mode='inference'")
        if len(images) != self.config.BATCH_SIZE or isinstance(images, (str, bytes)):
            raise ValueError(
                f"{method}() takes a list of exactly BATCH_SIZE = {self.config.BATCH_SIZE} "
                f"images (GPU_COUNT * IMAGES_PER_GPU), got {len(images)}"
            )

    def _detect(self, molded, metas, original_shapes, windows, verbose):
        if verbose:
            log("molded_images", molded)
            log("image_metas", metas)
            anchors = self.get_anchors(molded.shape[1:])
            log("anchors", np.broadcast_to(anchors, (len(molded),) + anchors.shape))
        if self._infer is None:  # XLA as config.JIT_COMPILE says ("auto": on a GPU)
            self._infer = _inference_function(
                self.keras_model, devices.resolve_jit_compile(self.config.JIT_COMPILE))
        out = self._infer({"image": molded, "image_meta": metas})
        out = {k: keras.ops.convert_to_numpy(v) for k, v in out.items()}
        results = []
        for i, shape in enumerate(original_shapes):
            r = postprocess.unmold_detections(
                out["detections"][i], out["mrcnn_mask"][i], shape, molded.shape[1:], windows[i])
            r["proposals"] = to_original_boxes(out["rois"][i], shape, molded.shape[1:],
                                               windows[i])
            results.append(r)
        return results

    def unmold_detections(self, detections, mrcnn_mask, original_image_shape, image_shape,
                          window):
        """One image's detections [D, 6] and masks [D, h, w, C] in the original
        image's pixels, as Matterport's tuple: boxes, class_ids, scores, masks."""
        r = postprocess.unmold_detections(detections, mrcnn_mask, original_image_shape,
                                          image_shape, window)
        return r["rois"], r["class_ids"], r["scores"], r["masks"]

    def get_anchors(self, image_shape):
        """Normalised anchors [A, 4] of a molded image of `image_shape` (numpy).
        Kept for Matterport compatibility (its notebooks call it)."""
        return keras.ops.convert_to_numpy(self.keras_model.anchors(tuple(image_shape[:2])))

    # ------------------------------------------------ inspecting the network
    def run_graph(self, images, outputs, image_metas=None):
        """Run the inference graph and return the requested tensors.

        images: BATCH_SIZE images (uint8, any size), or molded images when
            `image_metas` is given (as in Matterport).
        outputs: list of (name, target) pairs; target is a layer name of the
            graph ("ROI", "rpn_class", "rpn_bbox", "mrcnn_class",
            "mrcnn_bbox", "mrcnn_detection", "mrcnn_mask", "fpn_p2" ..., see
            `MaskRCNNModel.inference_graph`), any backbone layer name
            ("res4w_out", "res2c_out", ...), or a backbone layer's output
            tensor (`model.keras_model.backbone.get_layer("res4w_out").output`).
        Returns an OrderedDict name -> numpy array (each also printed by `log`).
        """
        wanted = [(name, self._graph_name(target)) for name, target in outputs]
        if image_metas is None:
            molded, image_metas, _ = self.mold_inputs(images)
        else:
            molded = np.asarray(images, np.float32)
        inputs = {"image": np.asarray(molded, np.float32),
                  "image_meta": np.asarray(image_metas, np.float32)}
        graph = self.keras_model.inference_graph(inputs, training=False)
        backbone = self.keras_model.backbone
        missing = sorted({t for _, t in wanted if t not in graph})
        known = {layer.name for layer in backbone.layers}
        unknown = [t for t in missing if t not in known]
        if unknown:
            raise ValueError(f"run_graph: no layer {unknown} in the inference graph; known: "
                             f"{sorted(graph)} and the backbone's layer names")
        if missing:
            sub = keras.Model(backbone.input, [backbone.get_layer(t).output for t in missing])
            values = sub(inputs["image"], training=False)
            graph.update(zip(missing, values if len(missing) > 1 else [values]))
        result = OrderedDict()
        for name, target in wanted:
            result[name] = np.asarray(graph[target])
            log(name, result[name])
        return result

    @staticmethod
    def _graph_name(target):
        """A run_graph target: a layer name, or a Keras tensor's layer name."""
        if isinstance(target, str):
            return target
        history = getattr(target, "_keras_history", None)
        if history is None:
            raise TypeError(f"run_graph: a target is a layer name or a Keras layer output, "
                            f"got {type(target).__name__}")
        return history.operation.name

    def ancestor(self, tensor, name, checked=None):
        """The first tensor above `tensor` in the (functional) graph whose
        layer name fully matches the regular expression `name`, or None.

        tensor: a Keras tensor of a functional model, e.g.
        `model.keras_model.backbone.get_layer("fpn_p2").output`; the walk
        follows the layers' inbound nodes (Keras 3's form of Matterport's
        op inputs). checked: tensors already visited.
        """
        pattern = re.compile(name)
        checked = [] if checked is None else checked
        stack = [tensor]
        while stack:
            history = stack.pop()._keras_history
            node = history.operation._inbound_nodes[history.node_index]
            for parent in node.input_tensors:
                if any(parent is c for c in checked):
                    continue
                if pattern.fullmatch(parent._keras_history.operation.name):
                    return parent
                checked.append(parent)
                stack.append(parent)
        return None

    def find_trainable_layer(self, layer):
        """The layer holding the weights: a TimeDistributed wrapper's inner layer."""
        if isinstance(layer, keras.layers.TimeDistributed):
            return self.find_trainable_layer(layer.layer)
        return layer

    def get_trainable_layers(self):
        """The layers with weights, in weight-file order (the nested ones
        included, where Matterport lists the top level)."""
        return [self.find_trainable_layer(layer)
                for _, layer in weight_io.weight_groups(self.keras_model, grouped=())]


# ------------------------------------------------- Matterport's functions
@contextlib.contextmanager
def _recorded(failures, log_dir, seen):
    """Around a fit: the images its feeders skipped go to the run folder's
    skipped.json (mrcnn/engine/skipped.py) and to `seen`; a fit ended by
    too many of them raises their TooManyFailuresError (not TensorFlow's
    wrapping of it)."""
    try:
        yield
    except Exception:
        stop = next((f for f in failures if f.exceeded), None)
        if stop is None:
            raise
        raise stop.error() from None
    finally:
        entries = [{**e, "stage": "feed"} for f in failures for e in f.entries()]
        seen.extend(entries)
        skipped.append(log_dir, entries)


def log(text, array=None):
    """Print `text`; with an array, padded to 25 characters and followed by
    the array's shape, min, max and dtype (Matterport's format)."""
    if array is not None:
        array = np.asarray(array)
        text = f"{text:<25}shape: {array.shape!s:20}  "
        if array.size:
            text += f"min: {array.min():10.5f}  max: {array.max():10.5f}"
        else:
            text += f"min: {'':10}  max: {'':10}"
        text += f"  {array.dtype}"
    print(text)


def mold_image(images, config):
    """Images as the network takes them: float32, config.MEAN_PIXEL subtracted."""
    return imaging.mold_image(images, config.MEAN_PIXEL)


def unmold_image(normalized_images, config):
    """Inverse of mold_image: uint8 images."""
    return imaging.unmold_image(normalized_images, config.MEAN_PIXEL)


def load_image_gt(dataset, config, image_id, augment=False, augmentation=None,
                  use_mini_mask=False):
    """One image and its instances, resized as for training (Matterport's).

    augment: Matterport's deprecated left-right flip, half the time.
    augmentation: an imgaug-style augmenter, or a graph augmentation
    `(image, masks) -> (image, masks)` (e.g. FlipCrop). Instances that the
    augmentation empties are dropped. Returns image uint8 [H, W, 3],
    image_meta float32 [12 + C], class_ids int32 [N], bbox int32
    [N, (y1, x1, y2, x2)] in pixels, mask bool [H, W, N] or, with
    use_mini_mask, [MINI_MASK_SHAPE..., N].
    """
    import tensorflow as tf

    from mrcnn import utils
    from mrcnn.data import pipeline
    from mrcnn.data.augmentation import ImgaugAugmentation

    image, meta, class_ids, mask = pipeline.load_image_gt(dataset, config, image_id)
    if augment and np.random.random() < 0.5:
        image, mask = np.fliplr(image), np.fliplr(mask)
    if hasattr(augmentation, "to_deterministic"):
        image, mask = ImgaugAugmentation(augmentation).augment_numpy(image, mask)
    elif augmentation is not None:
        image, mask = (t.numpy() for t in augmentation(tf.constant(image), tf.constant(mask)))
    keep = mask.any(axis=(0, 1))
    class_ids, mask = class_ids[keep], mask[..., keep]
    bbox = utils.extract_bboxes(mask)
    if use_mini_mask:
        mask = utils.minimize_mask(bbox, mask, config.MINI_MASK_SHAPE)
    return np.ascontiguousarray(image), meta, class_ids, bbox, mask


def build_rpn_targets(image_shape, anchors, gt_class_ids, gt_boxes, config):
    """RPN targets of one image (Matterport's name; the model's own rules,
    mrcnn/modeling/targets.py). anchors: [A, 4] and gt_boxes [N, 4] in
    pixels. Returns rpn_match int32 [A] (1, -1, 0) and rpn_bbox float32
    [RPN_TRAIN_ANCHORS_PER_IMAGE, 4]."""
    import tensorflow as tf

    match, deltas = targets.rpn_targets(
        tf.constant(anchors, tf.float32), tf.constant(gt_class_ids, tf.int32),
        tf.constant(gt_boxes, tf.float32),
        anchors_per_image=config.RPN_TRAIN_ANCHORS_PER_IMAGE,
        std_dev=np.asarray(config.RPN_BBOX_STD_DEV, np.float32).tolist())
    return match.numpy(), deltas.numpy()


def data_generator(dataset, config, shuffle=True, augment=False, augmentation=None,
                   random_rois=0, batch_size=1, detection_targets=False,
                   no_augmentation_sources=None):
    """Matterport's training inputs, batch after batch, forever (a generator).

    Yields (inputs, []) with inputs [images float32 [B, H, W, 3] (molded),
    image_meta [B, 12 + C], rpn_match int32 [B, A, 1], rpn_bbox [B, S, 4],
    gt_class_ids int32 [B, M], gt_boxes int32 [B, M, 4] (pixels), gt_masks
    bool [B, h, w, M]], M = MAX_GT_INSTANCES. Images without instances are
    skipped, as in Matterport; so are images whose files fail to load, with
    a counted warning, until more than 1 % of them raise TooManyFailuresError
    (mrcnn/data/feed_failures.py). For inspecting inputs: MaskRCNN.train
    reads the tf.data pipeline (mrcnn/data/pipeline.py), not this.

    random_rois > 0 appends rpn_rois int32 [B, random_rois, 4] (pixels,
    `generate_random_rois`). detection_targets=True (with random_rois)
    appends rois int32 [B, T, 4] and gives outputs [class_ids int32
    [B, T, 1], bbox deltas [B, T, C, 4], masks [B, T, mh, mw, C]] (T =
    TRAIN_ROIS_PER_IMAGE), sampled as the model's training step samples them
    (`mrcnn.modeling.targets.detection_targets`: ground-truth boxes join the
    proposals when PROPOSALS_INCLUDE_GT, crowds are neutral), not by
    Matterport's own Python copy of that sampling.
    """
    if detection_targets and not random_rois:
        raise ValueError("data_generator: detection_targets needs random_rois > 0 (the "
                         "proposals they are sampled from)")
    image_ids = np.copy(dataset.image_ids)
    if not image_ids.size:
        raise ValueError(f"{type(dataset).__name__} has no images (did you call prepare()?)")
    no_aug = set(no_augmentation_sources or ())
    anchor_cache = {}
    failures = FeedFailures("data_generator", len(image_ids))
    while True:
        if shuffle:
            np.random.shuffle(image_ids)
        batch, extras = [], []
        for image_id in image_ids:
            source = dataset.image_info[image_id]["source"]
            aug = None if source in no_aug else augmentation
            try:
                image, meta, class_ids, boxes, mask = load_image_gt(
                    dataset, config, image_id, augment=augment and source not in no_aug,
                    augmentation=aug, use_mini_mask=config.USE_MINI_MASK)
            except DECODE_ERRORS as e:
                failures.record(image_id, dataset.image_info[image_id].get("path"), e)
                continue
            if not np.any(class_ids > 0):
                continue
            shape = image.shape[:2]
            if shape not in anchor_cache:
                anchor_cache[shape] = config_anchors(config, shape)
            match, deltas = build_rpn_targets(image.shape, anchor_cache[shape], class_ids,
                                              boxes, config)
            batch.append((image, meta, match, deltas, class_ids, boxes, mask))
            if random_rois:
                rois = generate_random_rois(shape, random_rois, class_ids, boxes)
                heads = (build_detection_targets(rois, class_ids, boxes, mask, config, shape)
                         if detection_targets else ())
                extras.append((rois, *heads))
            if len(batch) == batch_size:
                inputs, outputs = _stack_batch(batch, config), []
                if random_rois:
                    inputs.append(np.stack([e[0] for e in extras]))
                if detection_targets:
                    inputs.append(np.stack([e[1] for e in extras]))
                    outputs = [np.stack([e[k] for e in extras]) for k in (2, 3, 4)]
                    outputs[0] = outputs[0][..., None]
                yield inputs, outputs
                batch, extras = [], []


def generate_random_rois(image_shape, count, gt_class_ids, gt_boxes, rng=None):
    """`count` random pixel boxes int32 [count, (y1, x1, y2, x2)] in an image
    of `image_shape` (H, W): 90 % spread over the ground-truth boxes, each
    drawn inside its box grown by its own height and width on every side,
    the rest anywhere. Sides are at least 2 px. (Matterport's inspection
    helper; the distribution is the same in kind, not draw for draw.)"""
    rng = np.random.default_rng() if rng is None else rng
    h, w = image_shape[:2]
    boxes = np.asarray(gt_boxes, np.float64)[np.asarray(gt_class_ids) > 0]
    per_box = int(0.9 * count / len(boxes)) if len(boxes) else 0
    y1, x1, y2, x2 = boxes.T
    lo = np.stack([np.maximum(y1 - (y2 - y1), 0), np.maximum(x1 - (x2 - x1), 0)], -1)
    hi = np.stack([np.minimum(y2 + (y2 - y1), h), np.minimum(x2 + (x2 - x1), w)], -1)
    regions = np.concatenate([np.repeat(lo, per_box, 0), np.repeat(hi, per_box, 0)], -1)
    rest = count - len(regions)
    regions = np.concatenate([regions, np.tile([0.0, 0.0, h, w], (rest, 1))])  # [count, 4]
    # Two draws per axis, sorted; then each side grown to 2 px inside the region.
    ys = np.sort(rng.uniform(regions[:, None, 0], regions[:, None, 2], (count, 2)), -1)
    xs = np.sort(rng.uniform(regions[:, None, 1], regions[:, None, 3], (count, 2)), -1)
    rois = np.stack([ys[:, 0], xs[:, 0], ys[:, 1], xs[:, 1]], -1).astype(np.int32)
    rois[:, 2:] = np.minimum(np.maximum(rois[:, 2:], rois[:, :2] + 2), [h, w])
    rois[:, :2] = np.minimum(rois[:, :2], rois[:, 2:] - 2)
    return rois


def build_detection_targets(rpn_rois, gt_class_ids, gt_boxes, gt_masks, config,
                            image_shape=None):
    """The heads' targets for pixel proposals, in Matterport's layout:
    rois int32 [T, 4] pixels, class_ids int32 [T], bbox float32 [T, C, 4]
    (deltas / BBOX_STD_DEV in the row of the ROI's class), masks float32
    [T, mh, mw, C] (in the channel of its class); T = TRAIN_ROIS_PER_IMAGE.
    gt_masks: [h, w, M] mini-masks (USE_MINI_MASK) or full masks;
    image_shape: the molded image's (H, W), default config.IMAGE_SHAPE.
    Sampled by the model's own `targets.detection_targets`."""
    import tensorflow as tf

    image_shape = tuple(image_shape or config.IMAGE_SHAPE)[:2]
    rois, class_ids, deltas, masks, _ = targets.detection_targets(
        box_ops.normalize(np.asarray(rpn_rois, np.float32), image_shape),
        tf.constant(gt_class_ids, tf.int32),
        box_ops.normalize(np.asarray(gt_boxes, np.float32), image_shape),
        tf.constant(np.moveaxis(np.asarray(gt_masks), -1, 0)),
        rois_per_image=config.TRAIN_ROIS_PER_IMAGE,
        positive_fraction=config.ROI_POSITIVE_RATIO,
        std_dev=config.BBOX_STD_DEV, mask_shape=config.MASK_SHAPE,
        include_gt=config.PROPOSALS_INCLUDE_GT, mini_masks=config.USE_MINI_MASK)
    class_ids = class_ids.numpy()
    rows = np.arange(len(class_ids))
    bbox = np.zeros([len(class_ids), config.NUM_CLASSES, 4], np.float32)
    bbox[rows, class_ids] = deltas.numpy()
    bbox[:, 0] = 0.0  # background and padding rows have no box target
    full = np.zeros([len(class_ids), *config.MASK_SHAPE, config.NUM_CLASSES], np.float32)
    full[rows, :, :, class_ids] = masks.numpy()
    full[..., 0] = 0.0
    pixels = box_ops.denormalize(rois, image_shape).numpy().astype(np.int32)
    return pixels, class_ids, bbox, full


def config_anchors(config, shape):
    """Pixel anchors [A, 4] of a molded image of `shape` (H, W) for `config`."""
    return anchor_boxes.pyramid_anchors(
        shape, config.RPN_ANCHOR_SCALES, config.RPN_ANCHOR_RATIOS, config.BACKBONE_STRIDES,
        config.RPN_ANCHOR_STRIDE, normalized=False).numpy()


def _stack_batch(batch, config):
    """Matterport's input arrays from per-image tuples; instances beyond
    MAX_GT_INSTANCES are dropped at random, the rest zero-padded."""
    m = config.MAX_GT_INSTANCES
    b = len(batch)
    images = np.stack([mold_image(x[0], config) for x in batch])
    metas = np.stack([x[1] for x in batch])
    matches = np.stack([x[2] for x in batch])[..., None]
    deltas = np.stack([x[3] for x in batch])
    mask_hw = batch[0][6].shape[:2]
    class_ids = np.zeros([b, m], np.int32)
    boxes = np.zeros([b, m, 4], np.int32)
    masks = np.zeros([b, *mask_hw, m], bool)
    for i, (_, _, _, _, ids, bbox, mask) in enumerate(batch):
        keep = np.sort(np.random.permutation(len(ids))[:m])
        class_ids[i, :len(keep)] = ids[keep]
        boxes[i, :len(keep)] = bbox[keep]
        masks[i, ..., :len(keep)] = mask[..., keep]
    return [images, metas, matches, deltas, class_ids, boxes, masks]


def _current_strategy():
    """The tf.distribute strategy in force on the TensorFlow backend (the
    default one outside any scope); None on other backends."""
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    return tf.distribute.get_strategy()


def _inference_function(model, jit_compile):
    """inputs dict of NumPy arrays -> the inference model's outputs, as one
    compiled function: tf.function on TensorFlow (XLA if jit_compile),
    Keras' predict step elsewhere (jax.jit when jit_compile). The function's
    `jit_compile` attribute says which."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        graph = tf.function(lambda inputs: model(inputs, training=False),
                            reduce_retracing=True, jit_compile=jit_compile)

        def infer(inputs):
            return graph({k: tf.constant(v) for k, v in inputs.items()})
    else:
        if not model.compiled:
            model.compile(jit_compile=jit_compile)

        def infer(inputs):
            return model.predict_on_batch(inputs)
    infer.jit_compile = jit_compile
    return infer


def _feeders(train_dataset, val_dataset, config, augmentation, mask_cache,
             no_augmentation_sources, failures):
    """Training and validation input: the tf.data pipeline on TensorFlow
    (mrcnn/data/pipeline.py), Keras PyDatasets from worker processes on
    other backends (mrcnn/data/py_feeder.py: the same batches, no
    TensorFlow). -> train, val, validation steps"""
    if keras.backend.backend() == "tensorflow":
        from mrcnn.data import pipeline

        train = pipeline.build_dataset(train_dataset, config, augmentation=augmentation,
                                       mask_cache=mask_cache,
                                       no_augmentation_sources=no_augmentation_sources,
                                       failures=failures[0])
        val, val_steps = pipeline.validation_dataset(val_dataset, config,
                                                     config.VALIDATION_STEPS, mask_cache,
                                                     failures=failures[1])
        return train, val, val_steps
    from mrcnn.data.py_feeder import PyFeeder

    workers = max(1, min(8, len(os.sched_getaffinity(0))))
    train = PyFeeder(train_dataset, config, augmentation=augmentation, mask_cache=mask_cache,
                     no_augmentation_sources=no_augmentation_sources, failures=failures[0],
                     steps=config.STEPS_PER_EPOCH, workers=workers,
                     use_multiprocessing=workers > 1)
    val = PyFeeder(val_dataset, config, shuffle=False, mask_cache=mask_cache,
                   failures=failures[1])
    return train, val, min(config.VALIDATION_STEPS, len(val))


def _tensorflow_available():
    """Whether TensorFlow can be imported here (it is, with its backend)."""
    if keras.backend.backend() == "tensorflow":
        return True
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return False
    return True
