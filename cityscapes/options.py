"""The options of a training run, typed, with their flags, defaults and precedence.

    options = resolve({"dataset": "demo", "epochs": 1})   # flags given -> TrainOptions
    check(options)                                         # UsageError for a bad value
    fields = config_fields(options)                        # -> Config fields

`TrainOptions` is the one list of train.py's options: each field carries
its flag's help text and, where it sets one, the `Config` field it maps to
(`add_flags` builds train.py's and tuning's flags from it; `config_fields`
the Config). `resolve` applies the precedence the README gives, lowest
first:

    defaults < the demo's (`--dataset demo`) < the options of the invocation
    that wrote the checkpoint `--weights last` continues (`recorded_run`)
    < `--hparams FILE` < the command line

(`--exclude` and `--allow_partial` are not carried over: they say how one
invocation loads its --weights file, not how a later one continues.)
`changes` and `describe_changes` tell what a continued run changes.

A layer that sets `epochs` or `layers` without a `schedule` replaces the
schedule inherited from the layers below it (e.g. the demo's
"all:8,all:10x0.1") with that one stage; a `schedule` given in a layer
wins over `epochs` / `layers` of the same or lower layers.

Nothing here imports TensorFlow: options are parsed and checked before it
starts.
"""

import dataclasses
import math
import os

from cityscapes.config import CityscapesConfig, DemoConfig
from cityscapes.labels import INSTANCE_CLASSES
from cli import ANNOTATIONS, UsageError, csv, dataset_value
from mrcnn import files
from mrcnn.command import JIT_CHOICES, JIT_HELP, jit_value
from mrcnn.config import BACKBONES, OPTIMIZERS
from mrcnn.engine.schedule import FREEZABLE, LAYER_REGEX, Stage, parse_schedule

AUGMENTATIONS = {"none": (0.0, 0.0), "flip": (0.5, 0.0), "flip,crop": (0.5, 0.5),
                 "crop": (0.0, 0.5)}
CACHE_DIR = os.path.join("~", ".cache", "mrcnn-cityscapes")
MASK_CACHE = os.path.join(CACHE_DIR, "minimasks")
DECODE_CACHE = os.path.join(CACHE_DIR, "decoded_images.json")


def _option(default, help, config=None, to_config=None, **flag):
    """A TrainOptions field: default, flag help, the Config field it sets
    (and the function from the option's value to the field's, if not the
    same), and extra argparse settings (type, choices, metavar, action)."""
    return dataclasses.field(default=default, metadata={
        "help": help, "config": config, "to_config": to_config, "flag": flag})


@dataclasses.dataclass
class TrainOptions:
    """Every option of a training run (train.py's flags), with its default."""

    dataset: str = _option(None, "Cityscapes folder (leftImg8bit/, gtFine/) or 'demo' "
                                 "[$CITYSCAPES_DATASET]")
    annotations: str = _option("auto", "polygons | instanceIds | auto (polygons where the JSON "
                                       "exists)", choices=ANNOTATIONS)
    weights: str = _option("coco", "coco | imagenet | last | none | PATH to a .h5")
    exclude: str = _option(None, "do not load the layers whose whole name matches REGEX from "
                                 "--weights (Matterport's exclude=), e.g. 'mrcnn_mask.*'",
                           metavar="REGEX")
    allow_partial: bool = _option(False, "load a weights file that lacks some layers of the "
                                         "model (they keep random values)", action="store_true")
    backbone: str = _option("resnet101", "backbone", "BACKBONE", choices=BACKBONES)
    optimizer: str = _option("sgd", "optimizer", "OPTIMIZER", choices=OPTIMIZERS)
    lr: float = _option(1e-3, "base learning rate", "LEARNING_RATE", type=float)
    momentum: float = _option(0.9, "SGD momentum, Adam beta_1", "LEARNING_MOMENTUM", type=float)
    weight_decay: float = _option(1e-4, "L2 factor (Matterport's)", "WEIGHT_DECAY", type=float)
    epochs: int = _option(20, "last epoch, cumulative (one stage of --layers)", type=int)
    steps_per_epoch: int = _option(None, "training steps per epoch [one pass over train]",
                                   "STEPS_PER_EPOCH", type=int)
    validation_steps: int = _option(None, "validation steps per epoch [one pass over val]",
                                    "VALIDATION_STEPS", type=int)
    layers: str = _option("heads", "layers to train", choices=tuple(LAYER_REGEX))
    augment: str = _option("flip", "augmentation", choices=tuple(AUGMENTATIONS),
                           metavar="|".join(AUGMENTATIONS))
    freeze: str = _option("", "keep these fixed: rpn, fpn or rpn,fpn")
    images_per_gpu: int = _option(1, "images per GPU and step", "IMAGES_PER_GPU", type=int)
    image_min_dim: int = _option(1024, "shorter side", "IMAGE_MIN_DIM", type=int)
    image_max_dim: int = _option(2048, "longer side at most", "IMAGE_MAX_DIM", type=int)
    classes: str = _option("all", "comma-separated subset of the 10 instance classes")
    train_images: int = _option(None, "train on a seeded subset of N images (0: all) [all]",
                                type=int)
    val_images: int = _option(None, "validate on a seeded subset of N images (0: all) [all]",
                              type=int)
    logs: str = _option("logs", "folder of the run folders")
    early_stopping: int = _option(0, "stop after PATIENCE epochs without a better val loss "
                                     "(0: off)", type=int, metavar="PATIENCE")
    schedule: str = _option(None, "stages LAYERS:EPOCH[xLR_FACTOR],... or 'matterport' "
                                  "(heads:40,4+:120,all:160x0.1) [--layers to --epochs]")
    hparams: str = _option(None, "JSON of option values, e.g. from python -m tuning "
                                 "--export_best", metavar="FILE")
    gpus: int = _option(1, "train on N GPUs (MirroredStrategy)", "GPU_COUNT", type=int)
    mixed_precision: bool = _option(False, "mixed_float16 with loss scaling",
                                    action="store_true")
    jit_compile: str = _option("auto", JIT_HELP, "JIT_COMPILE", jit_value, choices=JIT_CHOICES)
    seed: int = _option(None, "random seed (training, subsets)", type=int)
    evaluate: bool = _option(False, "print val mask AP@0.5 of the best checkpoint at the end",
                             action="boolean")
    eval_images: int = _option(None, "evaluate on the first N val images [all]", type=int)
    mask_cache: str = _option(MASK_CACHE, "mini-mask cache folder or 'none'")
    skip_bad: bool = _option(False, "leave out images that fail the load-time checks (listed "
                                    "in skipped.json and the summary) instead of stopping",
                             action="store_true")
    decode_cache: str = _option(DECODE_CACHE, "file remembering the images that decoded in "
                                              "full (by path, size, mtime) or 'none'")


FIELDS = {f.name: f for f in dataclasses.fields(TrainOptions)}
DEFAULTS = {name: f.default for name, f in FIELDS.items()}

# The demo: 810 steps of two images (ResNet-14 from scratch with trained
# batch norm, narrow pyramid, RPN and mask head: cityscapes/config.py
# DemoConfig), the last 162 at lr / 10, Adam at 6e-4, no weight decay (the
# L2 term cost 16 % of each step). Val mask AP@0.5 0.55-0.58 / 0.53-0.56
# on 22 / 200 scenes in three runs of 3.5 minutes on 2 cores;
# the 900 steps before it (no BN, 128-channel pyramid, lr 3e-4, weight
# decay 1e-4) reached 0.51-0.58 / 0.53 in 4 min 45 s (docs/benchmarks.md).
# With ResNet-50 and frozen BN, Adam at 5e-4 stalled (0.14 after 300 steps).
DEMO = {
    "weights": "none", "backbone": "resnet14", "optimizer": "adam", "lr": 6e-4, "weight_decay": 0.0,
    "epochs": 5, "steps_per_epoch": 162, "images_per_gpu": 2, "layers": "all",
    "image_min_dim": 128, "image_max_dim": 256, "schedule": "all:4,all:5x0.1", "seed": 0,
    "evaluate": True,
}
RUN_RECORD = "train_args.json"
# Options about loading one invocation's --weights file, not carried over by --weights last.
NOT_RESUMED = ("exclude", "allow_partial")


def add_flags(parser, names=None, group=None):
    """One flag per option (`names`: those, in TrainOptions order; default
    all). Flags not given parse as None, so `given(args)` tells them apart."""
    target = group or parser
    for name, f in FIELDS.items():
        if names is not None and name not in names:
            continue
        flag = dict(f.metadata["flag"])
        default = f.default
        shown = "" if default in (None, "") or isinstance(default, bool) else f" [{default:g}]" if isinstance(
            default, float) else f" [{default}]"
        if flag.get("action") == "boolean":
            import argparse

            flag["action"] = argparse.BooleanOptionalAction
        target.add_argument(f"--{name}", default=None, help=f.metadata["help"] + shown, **flag)


def given(args, names=None):
    """The options given on a command line: {name: value} of the flags set."""
    values = vars(args)
    return {k: values[k] for k in (names or FIELDS) if k in FIELDS and values.get(k) is not None}


# ---------------------------------------------------------------- layers
def read_hparams(path):
    """Option values from a JSON file ({"lr": 1e-4, ...} or {"hparams": {...}},
    as `python -m tuning --export_best` writes). Unknown names are an error."""
    data = _read_object(path, "--hparams")
    data = data.get("hparams", data)
    if not isinstance(data, dict):
        raise UsageError(f"--hparams {path}: expected an object of option names to values")
    unknown = sorted(set(data) - set(FIELDS) - {"hparams"})
    if unknown:
        raise UsageError(f"--hparams {path}: unknown option names {unknown}; "
                         f"known: {sorted(FIELDS)}")
    return {k: v for k, v in data.items() if k != "hparams"}


def _read_object(path, what):
    try:
        data = files.read_json(path)
    except ValueError as e:
        raise UsageError(f"{what} {e}")
    if not isinstance(data, dict):
        raise UsageError(f"{what} {path}: expected a JSON object of option names to values")
    return data


def config_class(dataset):
    """The Config class of a --dataset value: the demo's or Cityscapes'."""
    return DemoConfig if dataset == "demo" else CityscapesConfig


def run_name(dataset):
    """The run folder prefix (Config NAME) of a --dataset value."""
    return config_class(dataset).NAME


def last_checkpoint(logs, name):
    """Latest checkpoint of the latest run named `name` under `logs`."""
    from mrcnn.engine import run_dir

    try:
        return run_dir.find_last(os.path.expanduser(logs), name)
    except FileNotFoundError as e:
        raise UsageError(f"--weights last: {e}")


def recorded_run(checkpoint):
    """What train.py recorded for the invocation that wrote `checkpoint`:
    its runs.jsonl line (invocation, options, stages, dataset_root,
    classes, config; mrcnn/engine/run_record.py), else the run folder's
    train_args.json (folders older than runs.jsonl, tuning trials), else {}."""
    from mrcnn.engine import run_record

    entry = run_record.writer(checkpoint)
    if entry is not None and "options" in entry:
        return entry
    saved = os.path.join(os.path.dirname(os.path.abspath(checkpoint)), RUN_RECORD)
    return _read_object(saved, "run record") if os.path.exists(saved) else {}


def run_record_options(checkpoint):
    """The options --weights last takes from the run it continues: those
    recorded for `checkpoint` (`recorded_run`), less NOT_RESUMED."""
    options = recorded_run(checkpoint).get("options", {})
    return {k: v for k, v in options.items() if k in FIELDS and k not in NOT_RESUMED}


def changes(before, after):
    """{name: [before, after]} of the options that differ between a
    recorded options dict (a missing name: its default) and TrainOptions."""
    now = record(after)
    return {k: [before.get(k, DEFAULTS[k]), now[k]] for k in FIELDS
            if before.get(k, DEFAULTS[k]) != now[k]}


def describe_changes(changed):
    """"lr 0.001 -> 1e+30, epochs 2 -> 3" (or "nothing") of `changes`."""
    def shown(value):
        return f"{value:g}" if isinstance(value, float) else str(value)

    return ", ".join(f"{k} {shown(a)} -> {shown(b)}" for k, (a, b) in changed.items()) or "nothing"


def run_record_classes(checkpoint):
    """The class names (ids 1..K) recorded for the invocation that wrote
    `checkpoint` (`recorded_run`'s "classes"), or None."""
    classes = recorded_run(checkpoint).get("classes")
    return list(classes) if classes is not None else None


def merge(layers):
    """Options from layers of {name: value}, lowest first (see the module
    docstring for the schedule rule). -> dict of every option"""
    merged = dict(DEFAULTS)
    for layer in layers:
        layer = {k: v for k, v in layer.items() if k in FIELDS}
        if ("epochs" in layer or "layers" in layer) and "schedule" not in layer:
            merged["schedule"] = None
        merged.update(layer)
    return merged


def resolve(explicit):
    """TrainOptions from the flags given (`explicit`: name -> value, only
    those on the command line) over --hparams, over the run --weights last
    continues, over the demo's, over the defaults; the dataset falls back
    on $CITYSCAPES_DATASET. -> (TrainOptions, the checkpoint --weights last
    continues or None)"""
    explicit = dict(explicit)
    hparams = read_hparams(explicit["hparams"]) if explicit.get("hparams") else {}
    dataset = dataset_value(explicit.get("dataset") or hparams.get("dataset"))
    layers = [DEMO] if dataset == "demo" else []
    resumed = None
    if explicit.get("weights") == "last":
        logs = explicit.get("logs") or hparams.get("logs") or DEFAULTS["logs"]
        resumed = last_checkpoint(logs, run_name(dataset))
        layers.append(run_record_options(resumed))
    layers += [hparams, explicit]
    merged = merge(layers)
    merged["dataset"] = dataset_value(merged["dataset"])
    return TrainOptions(**merged), resumed


def record(options):
    """The options as a JSON-able dict (train_args.json, --export_best)."""
    return dataclasses.asdict(options)


# ---------------------------------------------------------------- checks
def check(o):
    """UsageError for the first bad option value."""
    def bad(flag, why):
        raise UsageError(f"--{flag} {getattr(o, flag)}: {why}")

    if not o.dataset:
        raise UsageError("no dataset: pass --dataset ROOT (the folder holding leftImg8bit/ "
                         "and gtFine/) or --dataset demo, or set $CITYSCAPES_DATASET")
    for name, f in FIELDS.items():
        choices = f.metadata["flag"].get("choices")
        if choices and getattr(o, name) not in choices:
            bad(name, f"expected one of {list(choices)}")
    unknown = sorted(set(csv(o.freeze)) - set(FREEZABLE))
    if unknown:
        bad("freeze", f"unknown parts {unknown}; expected a subset of {list(FREEZABLE)}")
    if not (isinstance(o.lr, (int, float)) and o.lr > 0 and math.isfinite(o.lr)):
        bad("lr", "must be a positive number")
    if not 0 <= o.momentum < 1:
        bad("momentum", "must lie in [0, 1)")
    if o.weight_decay < 0:
        bad("weight_decay", "must not be negative")
    for flag in ("epochs", "images_per_gpu", "gpus"):
        if not isinstance(getattr(o, flag), int) or getattr(o, flag) < 1:
            bad(flag, "must be a positive integer")
    for flag in ("steps_per_epoch", "validation_steps", "eval_images"):
        value = getattr(o, flag)
        if value is not None and (not isinstance(value, int) or value < 1):
            bad(flag, "must be a positive integer")
    for flag in ("train_images", "val_images"):
        value = getattr(o, flag)
        if value is not None and (not isinstance(value, int) or value < 0):
            bad(flag, "must be 0 (the whole split) or a positive integer")
    if o.early_stopping < 0:
        bad("early_stopping", "must be 0 (off) or a number of epochs")
    if o.classes != "all":
        unknown = sorted(set(csv(o.classes)) - set(INSTANCE_CLASSES))
        if unknown or not csv(o.classes):
            bad("classes", f"unknown classes {unknown}; expected names from "
                           f"{list(INSTANCE_CLASSES)} or 'all'")
    from mrcnn.engine import initial_weights

    try:
        initial_weights.check_spec(o.weights, o.backbone)
    except initial_weights.WeightsError as e:
        raise UsageError(f"--weights {o.weights}: {e}")
    try:
        initial_weights.check_exclude(o.weights, o.exclude)
    except initial_weights.WeightsError as e:
        raise UsageError(f"--exclude {o.exclude}: {e}")
    stages(o)


def stages(o):
    """The training stages: --schedule, or one stage of --layers to --epochs."""
    if not o.schedule:
        return [Stage(o.layers, o.epochs)]
    try:
        return parse_schedule(o.schedule)
    except ValueError as e:
        raise UsageError(f"--schedule {o.schedule}: {e}")


def classes(o):
    """The chosen instance classes, in label-id order."""
    if o.classes == "all":
        return INSTANCE_CLASSES
    wanted = set(csv(o.classes))
    return tuple(c for c in INSTANCE_CLASSES if c in wanted)


def augmentation(o):
    """(flip probability, crop probability) of --augment."""
    return AUGMENTATIONS[o.augment]


def freeze(o):
    """--freeze "rpn,fpn" -> ("rpn", "fpn")."""
    return tuple(csv(o.freeze))


def mask_cache(o):
    """The mini-mask cache folder of --mask_cache, or None."""
    return None if o.mask_cache in (None, "none") else os.path.expanduser(o.mask_cache)


def decode_cache(o):
    """The decode cache file of --decode_cache (also evaluate.py's), or None."""
    return None if o.decode_cache in (None, "none") else os.path.expanduser(o.decode_cache)


# ---------------------------------------------------------------- Config
def _same(value):
    return value


def config_fields(o, num_classes, num_train, num_val):
    """The Config fields the options set (each option's `config` field;
    steps default to one pass over each split)."""
    fields = {f.metadata["config"]: (f.metadata["to_config"] or _same)(getattr(o, name))
              for name, f in FIELDS.items()
              if f.metadata["config"] and getattr(o, name) is not None}
    batch = o.images_per_gpu * o.gpus
    fields.setdefault("STEPS_PER_EPOCH", max(1, -(-num_train // batch)))
    fields.setdefault("VALIDATION_STEPS", max(1, -(-num_val // batch)))
    fields["NUM_CLASSES"] = num_classes
    return fields
