"""From a training run to a model that detects: one helper for every command.

    model = inference_model("logs/demo20261121T2006/mask_rcnn_demo_0010.h5")
    model = inference_model(checkpoint, overrides={"DETECTION_MIN_CONFIDENCE": 0.5})
    model = inference_model(config)      # a Config: built, no weights loaded
    model = inference_model(config, weights=path)   # a Config and a weights file
    results = model.detect([image])
    path, config = model_source("last", logs="logs")   # a --weights value: PATH | last | coco

A checkpoint's model is described by the Config of the invocation that
wrote it, which training records in its run folder's runs.jsonl
(`MaskRCNN.train`, mrcnn/engine/run_record.py), else by the folder's
`config.json` (folders older than the journal); the inference model takes
one image per call on one device (IMAGES_PER_GPU = GPU_COUNT = 1), with
`overrides` (Config fields) on top.

The weights must fit the model entirely, as the weights policy wants
(mrcnn/engine/initial_weights.py `check_complete`): a file that lacks
layers of the model is refused, naming them, unless `allow_partial`.
"""

import os

from mrcnn import files
from mrcnn.config import Config
from mrcnn.engine import run_record

RUN_CONFIG = run_record.CONFIG
WEIGHTS_SPECS = ("last", "coco")


class RunRecordError(ValueError):
    """A checkpoint without a readable run record (the message names the file)."""


def run_config(checkpoint, overrides=None):
    """The Config recorded for a checkpoint (that of the invocation that
    wrote it, in runs.jsonl, else config.json), with overrides."""
    folder = os.path.dirname(os.path.abspath(checkpoint))
    try:
        entry = run_record.writer(checkpoint)
    except OSError as e:
        raise RunRecordError(f"{os.path.join(folder, run_record.RUNS)}: cannot read it ({e})")
    if entry is not None:
        path, values = os.path.join(folder, run_record.RUNS), entry.get("config")
    else:
        path = os.path.join(folder, RUN_CONFIG)
        if not os.path.isfile(path):
            raise RunRecordError(f"no {RUN_CONFIG} beside it in {folder} (training writes one, "
                                 f"and {run_record.RUNS}, in each run folder)")
        try:
            values = files.read_json(path)
        except ValueError as e:
            raise RunRecordError(str(e))
    try:
        return Config.from_dict({**values, **(overrides or {})})
    except (TypeError, ValueError) as e:
        raise RunRecordError(f"{path}: {e}")


def inference_config(config, overrides=None):
    """A Config for detection: `config`'s fields, one image on one device."""
    fields = {**config.to_dict(), "IMAGES_PER_GPU": 1, "GPU_COUNT": 1, **(overrides or {})}
    return type(config).from_dict(fields)


def inference_model(source, overrides=None, weights=None, model_dir=None, allow_partial=False):
    """An inference `MaskRCNN`: of a checkpoint (the Config its run folder
    records for it, `run_config`; its weights loaded) or of a Config (with `weights`, a file, loaded by name
    when given). `overrides`: Config fields set on top (e.g.
    DETECTION_MIN_CONFIDENCE); `allow_partial`: accept a file that lacks
    layers of the model (they keep random values). Raises RunRecordError,
    or ValueError for weights that do not fit (`initial_weights.WeightsError`
    naming the missing layers)."""
    from mrcnn.checkpoint import hdf5
    from mrcnn.engine import initial_weights
    from mrcnn.model import MaskRCNN

    if isinstance(source, Config):
        config, checkpoint = inference_config(source, overrides), weights
    else:
        checkpoint = os.path.expanduser(source)
        config = inference_config(run_config(checkpoint), overrides)
    folder = model_dir or (os.path.dirname(os.path.abspath(checkpoint)) if checkpoint else "logs")
    model = MaskRCNN("inference", config, folder)
    if checkpoint:
        try:
            report = model.load_weights(checkpoint, by_name=True)
        except hdf5.UnknownLayersError as e:
            raise hdf5.UnknownLayersError(e.path, e.names, "Is it a checkpoint of this "
                                          "configuration (backbone, classes, heads)?") from None
        initial_weights.check_complete(report, allow_partial)
    return model


def coco_config(overrides=None):
    """The Config of Matterport's COCO weights: its defaults (ResNet-101,
    "square" 800 / 1024 resize) and 81 classes."""
    return Config.from_dict({"NAME": "coco", "NUM_CLASSES": 81, **(overrides or {})})


def model_source(spec, logs="logs", overrides=None):
    """(weights file, Config) of a --weights value of the commands that
    detect: a checkpoint PATH (its run's config.json), "last" (the newest
    checkpoint of the newest run under `logs`, whatever its name) or
    "coco" (Matterport's COCO weights, found in the cache or downloaded).
    Raises ValueError (RunRecordError, WeightsError) or FileNotFoundError
    with the reason."""
    if spec == "coco":
        from mrcnn.engine import initial_weights

        return (initial_weights.weights_file("coco", initial_weights.COCO_BACKBONE),
                coco_config(overrides))
    if spec == "last":
        from mrcnn.engine import run_dir

        path = run_dir.find_last(os.path.expanduser(logs))
    else:
        path = os.path.expanduser(spec)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file, and not one of {list(WEIGHTS_SPECS)}")
    return path, run_config(path, overrides)
