"""What `python train.py` does, as functions: options -> a finished run.

    options = resolve_options(explicit)     # flags > --hparams > resumed run > demo > defaults
    plan = prepare(options)                 # all checks, datasets, config (no model yet)
    summary = run(plan)                     # model, weights, stages, summary, evaluation

Every check on the user's input happens in `resolve_options` and
`prepare`, before a model is built, and fails with `UsageError` (train.py
prints it on one line and exits with 2). A NaN / Inf loss ends the run with
`mrcnn.callbacks.NonFiniteLossError` (exit 3); the last good checkpoint
stays.

Run folder ({logs}/{name}{YYYYmmddTHHMM}/, see mrcnn/training.py): the
checkpoints, history.csv, tensorboard/ and config.json written by
`MaskRCNN.train`, plus train_args.json (the resolved options, read back by
`--weights last`) and summary.json.
"""

import argparse
import contextlib
import json
import math
import os
import time

import numpy as np
from PIL import Image

from cityscapes import synthetic
from cityscapes.config import CityscapesConfig, DemoConfig
from cityscapes.dataset import ENV_VAR, CityscapesDataset
from cityscapes.labels import INSTANCE_CLASSES
from cityscapes.rasterize import CityscapesDataError
from mrcnn import (callbacks, evaluation, files, schedule, training, visualize,
                   weight_files, weights)
from mrcnn.augmentation import FlipCrop
from mrcnn.config import BACKBONES, IMAGENET_BACKBONES, OPTIMIZERS
from mrcnn.masks import boxes_from_masks
from mrcnn.training import LAYER_REGEX

# Defaults of every option (train.py's flags), and what --dataset demo changes.
DEFAULTS = {
    "dataset": None, "weights": "coco", "backbone": "resnet101", "optimizer": "sgd",
    "lr": 1e-3, "momentum": 0.9, "weight_decay": 1e-4, "epochs": 20,
    "steps_per_epoch": None, "validation_steps": None, "layers": "heads", "augment": "flip",
    "freeze": "", "images_per_gpu": 1, "image_min_dim": 1024, "image_max_dim": 2048,
    "classes": "all", "logs": "logs", "early_stopping": 0, "schedule": None,
    "hparams": None, "gpus": 1, "mixed_precision": False, "seed": None, "evaluate": False,
    "eval_images": None, "mask_cache": os.path.join("~", ".cache", "mrcnn-cityscapes",
                                                    "minimasks"),
}
# The demo: 900 steps of two images (ResNet-14 from scratch, narrow RPN and
# mask head: cityscapes/config.py DemoConfig), the last 180 at lr / 10; about
# half the compute of the 1600 one-image steps before it (val mask AP@0.5
# 0.55 / 0.52 on 22 / 200 scenes), at 0.52 / 0.50. With one image a step,
# 1200 steps of the same model reached 0.49 / 0.45; two images a step cost
# a fifth less per image. With ResNet-50, Adam at 2e-4 reached 0.43 where
# 1e-4 reached 0.38 in 800 steps; 5e-4 stalled (0.14 after 300 steps).
DEMO = {
    "weights": "none", "backbone": "resnet14", "optimizer": "adam", "lr": 3e-4,
    "epochs": 5, "steps_per_epoch": 180, "images_per_gpu": 2, "layers": "all",
    "image_min_dim": 128, "image_max_dim": 256, "schedule": "all:4,all:5x0.1", "seed": 0,
    "evaluate": True,
}
WEIGHT_KINDS = ("coco", "imagenet", "last", "none")
AUGMENTATIONS = {"none": (0.0, 0.0), "flip": (0.5, 0.0), "flip,crop": (0.5, 0.5),
                 "crop": (0.0, 0.5)}
FREEZABLE = ("rpn", "fpn")
# COCO's 81-class heads do not fit the Cityscapes classes: they are left out.
HEAD_LAYERS = ("mrcnn_class_logits", "mrcnn_bbox_fc", "mrcnn_bbox", "mrcnn_mask")
EXIT_USAGE, EXIT_NON_FINITE = 2, 3


class UsageError(ValueError):
    """Bad input found before training starts (train.py exits with 2)."""


# ------------------------------------------------------------------ options
def _read_json(path, what):
    try:
        data = files.read_json(path)
    except ValueError as e:
        raise UsageError(f"{what} {e}")
    if not isinstance(data, dict):
        raise UsageError(f"{what} {path}: expected a JSON object of option names to values")
    return data


def read_hparams(path):
    """Options from a JSON file ({"lr": 1e-4, "momentum": 0.95, ...}, as
    `python -m tuning --export_best` writes); unknown names are an error."""
    data = _read_json(path, "--hparams")
    data = data.get("hparams", data)
    unknown = sorted(set(data) - set(DEFAULTS) - {"hparams"})
    if unknown:
        raise UsageError(f"--hparams {path}: unknown option names {unknown}; "
                         f"known: {sorted(DEFAULTS)}")
    return data


def run_name(dataset):
    """Config NAME (run folder prefix) for a --dataset value."""
    return DemoConfig.NAME if dataset == "demo" else CityscapesConfig.NAME


def last_checkpoint(logs, name):
    """Latest checkpoint of the latest run named `name` under `logs`."""
    try:
        return training.find_last(os.path.expanduser(logs), name)
    except FileNotFoundError as e:
        raise UsageError(f"--weights last: {e}")


def resolve_options(explicit):
    """All options, from the flags given (`explicit`: name -> value, only
    those on the command line) over --hparams, over the options of the run
    that --weights last continues, over the demo's, over DEFAULTS."""
    dataset = explicit.get("dataset") or os.environ.get(ENV_VAR)
    layers = [DEFAULTS]
    if dataset == "demo":
        layers.append(DEMO)
    resumed = None
    if explicit.get("weights") == "last":
        logs = explicit.get("logs", DEFAULTS["logs"])
        resumed = last_checkpoint(logs, run_name(dataset))
        saved = os.path.join(os.path.dirname(resumed), "train_args.json")
        if os.path.exists(saved):
            layers.append(_read_json(saved, "run options").get("options", {}))
    if explicit.get("hparams"):
        layers.append(read_hparams(explicit["hparams"]))
    layers.append(explicit)
    options = {}
    for layer in layers:
        options.update({k: v for k, v in layer.items() if k in DEFAULTS})
    options["dataset"] = dataset
    options["resume_from"] = resumed
    return options


def _csv(value):
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [v.strip() for v in str(value or "").split(",") if v.strip()]


def check_options(o):
    """UsageError for the first bad option value (flags or files)."""
    def bad(flag, why):
        raise UsageError(f"--{flag} {o[flag]}: {why}")

    if not o["dataset"]:
        raise UsageError(f"no dataset: pass --dataset ROOT (the folder holding leftImg8bit/ "
                         f"and gtFine/) or --dataset demo, or set {ENV_VAR}")
    if o["backbone"] not in BACKBONES:
        bad("backbone", f"expected one of {list(BACKBONES)}")
    if o["optimizer"] not in OPTIMIZERS:
        bad("optimizer", f"expected one of {list(OPTIMIZERS)}")
    if o["layers"] not in LAYER_REGEX:
        bad("layers", f"expected one of {list(LAYER_REGEX)}")
    if o["augment"] not in AUGMENTATIONS:
        bad("augment", f"expected one of {list(AUGMENTATIONS)}")
    unknown = sorted(set(_csv(o["freeze"])) - set(FREEZABLE))
    if unknown:
        bad("freeze", f"unknown parts {unknown}; expected a subset of {list(FREEZABLE)}")
    if not (isinstance(o["lr"], (int, float)) and o["lr"] > 0 and math.isfinite(o["lr"])):
        bad("lr", "must be a positive number")
    if not 0 <= o["momentum"] < 1:
        bad("momentum", "must lie in [0, 1)")
    if o["weight_decay"] < 0:
        bad("weight_decay", "must not be negative")
    for flag in ("epochs", "images_per_gpu", "gpus"):
        if not isinstance(o[flag], int) or o[flag] < 1:
            bad(flag, "must be a positive integer")
    for flag in ("steps_per_epoch", "validation_steps", "eval_images"):
        if o[flag] is not None and (not isinstance(o[flag], int) or o[flag] < 1):
            bad(flag, "must be a positive integer")
    if o["early_stopping"] < 0:
        bad("early_stopping", "must be 0 (off) or a number of epochs")
    if o["classes"] != "all":
        unknown = sorted(set(_csv(o["classes"])) - set(INSTANCE_CLASSES))
        if unknown or not _csv(o["classes"]):
            bad("classes", f"unknown classes {unknown}; expected names from "
                           f"{list(INSTANCE_CLASSES)} or 'all'")
    weights_spec = o["weights"]
    if weights_spec not in WEIGHT_KINDS and not os.path.isfile(weights_spec):
        bad("weights", f"no such file, and not one of {list(WEIGHT_KINDS)}")
    if weights_spec == "coco" and o["backbone"] != "resnet101":
        bad("weights", "Matterport's COCO weights are ResNet-101: use --backbone resnet101, "
                       "or --weights imagenet")
    if weights_spec == "imagenet" and o["backbone"] not in IMAGENET_BACKBONES:
        bad("weights", f"no published ImageNet weights for {o['backbone']} (there are for "
                       f"{', '.join(IMAGENET_BACKBONES)}): use --weights none to train it "
                       "from scratch")
    if os.path.isfile(weights_spec):
        try:
            found = weights.file_backbone(weights_spec)
        except (OSError, weights.WeightsFileError) as e:
            bad("weights", str(e))
        if found and found != o["backbone"]:
            bad("weights", f"the file holds {found} weights but --backbone is "
                           f"{o['backbone']}; pass --backbone {found}")


def stages_of(o):
    """The training stages: --schedule, or one stage of --layers to --epochs."""
    if not o["schedule"]:
        return [schedule.Stage(o["layers"], o["epochs"])]
    try:
        return schedule.parse_schedule(o["schedule"])
    except ValueError as e:
        raise UsageError(f"--schedule {o['schedule']}: {e}")


# ------------------------------------------------------------------ planning
def dataset_root(o):
    """The dataset folder: the demo's (generated once) or --dataset."""
    if o["dataset"] == "demo":
        return synthetic.ensure_demo()
    return os.path.expanduser(o["dataset"])


def load_split(root, split, classes, **kwargs):
    """A prepared CityscapesDataset of one split, or UsageError for a bad folder."""
    dataset = CityscapesDataset(classes)
    try:
        dataset.load_cityscapes(root, split, **kwargs)
    except CityscapesDataError as e:
        raise UsageError(f"--dataset {root}: {e}")
    dataset.prepare()
    return dataset


def build_config(o, num_classes, num_train, num_val):
    """The Config of a run from its options (UsageError for a bad value)."""
    base = DemoConfig if o["dataset"] == "demo" else CityscapesConfig
    batch = o["images_per_gpu"] * o["gpus"]
    fields = {
        "NUM_CLASSES": num_classes, "BACKBONE": o["backbone"], "OPTIMIZER": o["optimizer"],
        "LEARNING_RATE": o["lr"], "LEARNING_MOMENTUM": o["momentum"],
        "WEIGHT_DECAY": o["weight_decay"], "IMAGES_PER_GPU": o["images_per_gpu"],
        "GPU_COUNT": o["gpus"], "IMAGE_MIN_DIM": o["image_min_dim"],
        "IMAGE_MAX_DIM": o["image_max_dim"],
        # Default: one pass over each split per epoch.
        "STEPS_PER_EPOCH": o["steps_per_epoch"] or max(1, -(-num_train // batch)),
        "VALIDATION_STEPS": o["validation_steps"] or max(1, -(-num_val // batch)),
    }
    try:
        return base.from_dict(fields)
    except ValueError as e:
        raise UsageError(str(e))


def prepare(options):
    """Check everything and load the datasets; -> plan dict (no model yet)."""
    check_options(options)
    stages = stages_of(options)
    classes = INSTANCE_CLASSES if options["classes"] == "all" else tuple(
        c for c in INSTANCE_CLASSES if c in _csv(options["classes"]))
    root = dataset_root(options)
    train = load_split(root, "train", classes)
    val = load_split(root, "val", classes)
    config = build_config(options, 1 + len(classes), len(train.image_ids), len(val.image_ids))
    return {"options": options, "stages": stages, "classes": classes, "root": root,
            "train": train, "val": val, "config": config}


# ----------------------------------------------------------------------- run
def weights_path(o, backbone):
    """The file --weights names (downloading COCO / ImageNet when missing)."""
    spec = o["weights"]
    if spec in ("coco", "imagenet"):
        try:
            return weight_files.get_weights_file(spec, backbone, timeout=60)
        except (FileNotFoundError, ValueError) as e:
            raise UsageError(f"--weights {spec}: {e}")
    if spec == "last":
        return o["resume_from"]
    return None if spec == "none" else spec


def load_initial_weights(model, o):
    """Load --weights into a training MaskRCNN; continue a run's checkpoint."""
    path = weights_path(o, model.config.BACKBONE)
    if path is None:
        return
    if o["weights"] == "imagenet":
        model.load_weights(path)
        return
    # A file with other classes (COCO's 81) keeps everything but the heads.
    exclude = HEAD_LAYERS if weights.file_num_classes(path) not in (None, model.config.NUM_CLASSES) else None
    try:
        model.load_weights(path, by_name=True, exclude=exclude)
    except (ValueError, weights.WeightsFileError) as e:
        raise UsageError(f"--weights {path}: {e}")


def augmentation_of(o):
    """The FlipCrop of --augment (None for "none")."""
    flip, crop = AUGMENTATIONS[o["augment"]]
    return FlipCrop(flip=flip, crop=crop, seed=o["seed"]) if flip or crop else None


def freeze_of(o):
    """--freeze "rpn,fpn" -> ("rpn", "fpn")."""
    return tuple(_csv(o["freeze"]))


def mask_cache_of(o):
    """The mini-mask cache folder of --mask_cache, or None."""
    return None if o["mask_cache"] in (None, "none") else os.path.expanduser(o["mask_cache"])


class UsageParser(argparse.ArgumentParser):
    """argparse whose errors are one line and exit with 2, as UsageError's."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _strategy_scope(strategy):
    return strategy.scope() if strategy else contextlib.nullcontext()


def build_model(plan):
    """The training MaskRCNN of a plan, with --gpus / --mixed_precision set up."""
    import keras

    from mrcnn.model import MaskRCNN

    o = plan["options"]
    if o["seed"] is not None:
        keras.utils.set_random_seed(o["seed"])
    training.set_mixed_precision(o["mixed_precision"])
    try:
        strategy = training.make_strategy(o["gpus"])
    except ValueError as e:
        raise UsageError(f"--gpus {o['gpus']}: {e}")
    with _strategy_scope(strategy):
        model = MaskRCNN("training", plan["config"], os.path.expanduser(o["logs"]))
    load_initial_weights(model, o)
    if model.log_dir is None:
        model.set_log_dir()
    return model


def write_run_options(model, plan):
    """train_args.json: the resolved options, stages and dataset of the run."""
    o = dict(plan["options"])
    record = {"options": {k: o[k] for k in DEFAULTS},
              "stages": [str(s) for s in plan["stages"]],
              "dataset_root": plan["root"], "classes": list(plan["classes"])}
    files.write_text(os.path.join(model.log_dir, "train_args.json"),
                     json.dumps(record, indent=2) + "\n")


def run(plan, log=print):
    """Train a plan's stages; evaluate if asked. -> summary dict (also
    summary.json in the run folder). NonFiniteLossError propagates."""
    o = plan["options"]
    model = build_model(plan)
    write_run_options(model, plan)
    history_path = os.path.join(model.log_dir, "history.csv")
    best = callbacks.BestEpoch(o["early_stopping"], history=callbacks.read_history(history_path))
    start_epoch, started = model.epoch, time.time()
    todo = schedule.remaining(plan["stages"], model.epoch)
    if start_epoch:
        log(f"Continuing {model.log_dir} after epoch {start_epoch}")
    mask_cache = mask_cache_of(o)
    for stage in todo:
        if best.stopped:
            break
        log(f"Stage {stage}: layers {stage.layers} to epoch {stage.epochs}, "
            f"lr {o['lr'] * stage.lr_factor:g}")
        model.train(plan["train"], plan["val"], o["lr"] * stage.lr_factor, stage.epochs,
                    stage.layers, augmentation=augmentation_of(o), custom_callbacks=[best],
                    freeze=freeze_of(o), mask_cache=mask_cache)
    summary = {
        "run": model.log_dir, "epochs_run": [start_epoch + 1, model.epoch]
        if model.epoch > start_epoch else [], "last_epoch": model.epoch,
        "seconds": round(time.time() - started, 1), "early_stopped": best.stopped,
        "best_epoch": best.best_epoch, "best_val_loss": None if best.best_epoch is None
        else best.best, "last_checkpoint": _checkpoint(model, model.epoch),
        "best_checkpoint": _checkpoint(model, best.best_epoch),
    }
    if o["evaluate"]:
        summary["evaluation"] = evaluate(plan, summary["best_checkpoint"]
                                         or summary["last_checkpoint"], o["eval_images"])
    files.write_text(os.path.join(model.log_dir, "summary.json"),
                     json.dumps(summary, indent=2) + "\n")
    return summary


def _checkpoint(model, epoch):
    if not epoch:
        return None
    path = training.checkpoint_path(model.log_dir, model.config.NAME, epoch)
    return path if os.path.exists(path) else None


def evaluate(plan, checkpoint, limit=None):
    """Mask AP@0.5 (Matterport's per-image protocol) of a checkpoint on val."""
    from mrcnn.model import MaskRCNN

    if checkpoint is None:
        return None
    config = type(plan["config"]).from_dict(
        {**plan["config"].to_dict(), "IMAGES_PER_GPU": 1, "GPU_COUNT": 1})
    model = MaskRCNN("inference", config, os.path.dirname(checkpoint))
    model.load_weights(checkpoint, by_name=True)
    val = plan["val"]
    ids = val.image_ids[:limit] if limit else val.image_ids
    result = evaluation.evaluate_model(model, val, ids)
    picture = os.path.join(os.path.dirname(checkpoint), "val_examples.png")
    save_examples(model, val, list(result["per_image"])[:3], picture)
    return {"checkpoint": checkpoint, "mask_ap50": float(result["ap"][0]),
            "images": len(result["per_image"]), "without_instances": len(result["skipped"]),
            "examples": picture}


def save_examples(model, dataset, image_ids, path):
    """Ground truth (left) next to detections (right), one row per image."""
    rows = []
    for image_id in image_ids:
        image = dataset.load_image(image_id)
        masks, class_ids = dataset.load_mask(image_id)
        boxes = boxes_from_masks(masks).numpy()
        r = model.detect([image])[0]
        rows.append(visualize.side_by_side(
            visualize.draw_instances(image, boxes, masks, class_ids, dataset.class_names),
            visualize.draw_instances(image, r["rois"], r["masks"], r["class_ids"],
                                     dataset.class_names, r["scores"])))
    if rows:
        with files.atomic_path(path) as tmp:
            Image.fromarray(np.concatenate(rows)).save(tmp, format="PNG")


def summary_line(summary):
    """The one-line summary printed at the end of a run."""
    epochs = summary["epochs_run"]
    text = (f"Run {summary['run']}: epochs {epochs[0]}-{epochs[1]} in {summary['seconds']:.0f} s"
            if epochs else f"Run {summary['run']}: nothing left to train")
    if summary["early_stopped"]:
        text += " (early stop)"
    if summary["best_epoch"]:
        text += (f"; best epoch {summary['best_epoch']} (val loss "
                 f"{summary['best_val_loss']:.4f})")
    text += f"; last checkpoint {summary['last_checkpoint']}"
    ev = summary.get("evaluation")
    if ev:
        text += (f"; val mask AP@0.5 {ev['mask_ap50']:.3f} over {ev['images']} images "
                 f"({ev['without_instances']} without instances not scored)")
    return text

