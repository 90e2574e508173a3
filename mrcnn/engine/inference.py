"""From a training run to a model that detects: one helper for every command.

    model = inference_model("logs/demo20261121T2006/mask_rcnn_demo_0010.h5")
    model = inference_model(checkpoint, overrides={"DETECTION_MIN_CONFIDENCE": 0.5})
    model = inference_model(config)      # a Config: built, no weights loaded
    model = inference_model(config, weights=path)   # a Config and a weights file
    results = model.detect([image])

A checkpoint's model is described by the `config.json` that training
writes into its run folder (`MaskRCNN.train`); the inference model takes
one image per call on one device (IMAGES_PER_GPU = GPU_COUNT = 1), with
`overrides` (Config fields) on top.
"""

import json
import os

from mrcnn.config import Config

RUN_CONFIG = "config.json"


class RunRecordError(ValueError):
    """A checkpoint without a readable run record (the message names the file)."""


def run_config(checkpoint, overrides=None):
    """The Config recorded beside a checkpoint (config.json), with overrides."""
    folder = os.path.dirname(os.path.abspath(checkpoint))
    path = os.path.join(folder, RUN_CONFIG)
    if not os.path.isfile(path):
        raise RunRecordError(f"no {RUN_CONFIG} beside it in {folder} (training writes one in "
                             "each run folder)")
    try:
        with open(path, encoding="utf-8") as f:
            values = json.load(f)
        return Config.from_dict({**values, **(overrides or {})})
    except ValueError as e:
        raise RunRecordError(f"{path}: {e}")


def inference_config(config, overrides=None):
    """A Config for detection: `config`'s fields, one image on one device."""
    fields = {**config.to_dict(), "IMAGES_PER_GPU": 1, "GPU_COUNT": 1, **(overrides or {})}
    return type(config).from_dict(fields)


def inference_model(source, overrides=None, weights=None, model_dir=None):
    """An inference `MaskRCNN`: of a checkpoint (its run's config.json, its
    weights loaded) or of a Config (with `weights`, a file, loaded by name
    when given). `overrides`: Config fields set on top (e.g.
    DETECTION_MIN_CONFIDENCE). Raises RunRecordError, or ValueError for
    weights that do not fit."""
    from mrcnn.model import MaskRCNN

    if isinstance(source, Config):
        config, checkpoint = inference_config(source, overrides), weights
    else:
        checkpoint = os.path.expanduser(source)
        config = inference_config(run_config(checkpoint), overrides)
    folder = model_dir or (os.path.dirname(os.path.abspath(checkpoint)) if checkpoint else "logs")
    model = MaskRCNN("inference", config, folder)
    if checkpoint:
        model.load_weights(checkpoint, by_name=True)
    return model
