"""Search spaces of the sweeps: the built-in coarse and fine stages, file
overrides, and what a trial's hyperparameters mean as train.py options.

A space is a dict from hyperparameter name to a spec:

    "sgd"                                         fixed value (string or number)
    [1e-3, 1e-4, 1e-5, 1e-6]                      choice (one of the values)
    {"min": 1e-5, "max": 1e-4, "sampling": "log"} float range; sampling "linear"
                                                  (default) or "log"; optional "step"

Names are the train.py options a trial may set (`TUNABLE`, keys of
cityscapes.options.TrainOptions) plus "beta_1", Adam's name for the `momentum`
option ("SGD momentum, Adam beta_1"). A space file (JSON, or YAML when
PyYAML is installed) holds such a dict; its entries replace the stage's,
and `null` removes one (the option then comes from the sweep's base
options: flags, --hparams, defaults):

    {"weights": "none", "backbone": "resnet50", "lr": [1e-4, 1e-5]}

COCO weights exist for ResNet-101 only (cityscapes.options.check refuses
resnet50): when `weights` may be "coco" and `backbone` is a choice, the
backbone is declared conditional on the non-COCO weights, and a COCO trial
trains ResNet-101.
"""

import json
import math
import os

from cityscapes.options import AUGMENTATIONS, FIELDS
from cli import UsageError
from mrcnn.config import BACKBONES, OPTIMIZERS
from mrcnn.engine.schedule import LAYER_REGEX

STAGES = ("coarse", "fine")
# Float hyperparameters and the train.py option each one sets.
NUMERIC = {"lr": "lr", "momentum": "momentum", "beta_1": "momentum",
           "weight_decay": "weight_decay"}
# String hyperparameters and their allowed values (weights: also a .h5 path).
CATEGORICAL = {"weights": None, "backbone": BACKBONES, "optimizer": OPTIMIZERS,
               "layers": tuple(LAYER_REGEX), "augment": tuple(AUGMENTATIONS)}
TUNABLE = tuple(NUMERIC) + tuple(CATEGORICAL)
SAMPLINGS = ("linear", "log")
# --weights last (continue a train.py run) means nothing to a sweep.
WEIGHT_KINDS = ("coco", "imagenet", "none")
COCO_BACKBONE = "resnet101"

_LOG_LR = {"sgd": (1e-5, 1e-4), "adam": (1e-6, 1e-5)}


def _log_range(low, high):
    return {"min": low, "max": high, "sampling": "log"}


def fine_space(optimizer):
    """The fine stage for one optimizer: lr (log), SGD momentum or Adam
    beta_1 in [0.9, 0.99], weight decay (log) in [1e-4, 1e-2]."""
    if optimizer not in _LOG_LR:
        raise UsageError(f"--optimizer {optimizer}: expected one of {list(_LOG_LR)}")
    second = "momentum" if optimizer == "sgd" else "beta_1"
    return {"optimizer": optimizer, "lr": _log_range(*_LOG_LR[optimizer]),
            second: {"min": 0.9, "max": 0.99, "sampling": "linear"},
            "weight_decay": _log_range(1e-4, 1e-2)}


def coarse_space(optimizer=None):
    """The coarse stage: COCO vs ImageNet weights, ResNet-50 vs -101, SGD vs
    Adam (fixed when `optimizer` is given), lr in {1e-3, 1e-4, 1e-5, 1e-6}."""
    if optimizer is not None and optimizer not in OPTIMIZERS:
        raise UsageError(f"--optimizer {optimizer}: expected one of {list(OPTIMIZERS)}")
    return {"weights": ["coco", "imagenet"], "backbone": ["resnet50", "resnet101"],
            "optimizer": optimizer or ["sgd", "adam"], "lr": [1e-3, 1e-4, 1e-5, 1e-6]}


def stage_space(stage, optimizer):
    """The built-in space of a stage ("coarse" | "fine"). -> dict"""
    if stage == "coarse":
        return coarse_space(optimizer)
    if stage == "fine":
        return fine_space(optimizer)
    raise UsageError(f"--stage {stage}: expected one of {list(STAGES)}")


def read_space_file(path):
    """The dict of a JSON / YAML space file (UsageError when unreadable)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise UsageError(f"--space {path}: cannot read it ({e.strerror or e})")
    if os.path.splitext(path)[1].lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise UsageError(f"--space {path}: YAML files need PyYAML (pip install pyyaml); "
                             "or write the space as JSON")
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise UsageError(f"--space {path}: not valid YAML ({' '.join(str(e).split())})")
    else:
        try:
            data = json.loads(text)
        except ValueError as e:
            raise UsageError(f"--space {path}: not valid JSON ({e})")
    if not isinstance(data, dict):
        raise UsageError(f"--space {path}: expected an object of hyperparameter names to "
                         "specs (value, [choices] or {\"min\", \"max\", \"sampling\"})")
    return data


def merge(space, overrides):
    """`space` with the entries of `overrides` replaced; None removes one."""
    merged = dict(space)
    for name, spec in overrides.items():
        if spec is None:
            merged.pop(name, None)
        else:
            merged[name] = spec
    return merged


def _kind(spec):
    if isinstance(spec, dict):
        return "range"
    if isinstance(spec, list):
        return "choice"
    return "fixed"


def _check_value(name, value):
    """The value as the hyperparameter holds it (float for NUMERIC), or UsageError."""
    where = f"space {name}={value!r}"
    if name in NUMERIC:
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not math.isfinite(value)):
            raise UsageError(f"{where}: expected a finite number")
        return float(value)
    if not isinstance(value, str):
        raise UsageError(f"{where}: expected a string")
    allowed = CATEGORICAL[name]
    if allowed is None and value not in WEIGHT_KINDS and not os.path.isfile(value):
        raise UsageError(f"{where}: no such file, and not one of {list(WEIGHT_KINDS)}")
    if allowed is not None and value not in allowed:
        raise UsageError(f"{where}: expected one of {list(allowed)}")
    return value


def _check_range(name, spec):
    if name not in NUMERIC:
        raise UsageError(f"space {name}: a range needs a numeric hyperparameter "
                         f"({list(NUMERIC)}); give a value or a list of choices")
    unknown = sorted(set(spec) - {"min", "max", "sampling", "step"})
    if unknown or "min" not in spec or "max" not in spec:
        raise UsageError(f"space {name}: a range is {{\"min\": a, \"max\": b, \"sampling\": "
                         f"\"linear\"|\"log\", \"step\": s (optional)}}; got {spec}")
    low, high = _check_value(name, spec["min"]), _check_value(name, spec["max"])
    sampling = spec.get("sampling", "linear")
    if sampling not in SAMPLINGS:
        raise UsageError(f"space {name}: sampling {sampling!r}: expected one of {list(SAMPLINGS)}")
    if not low < high:
        raise UsageError(f"space {name}: min {low:g} must be below max {high:g}")
    if sampling == "log" and low <= 0:
        raise UsageError(f"space {name}: log sampling needs min > 0, got {low:g}")
    out = {"min": low, "max": high, "sampling": sampling}
    if spec.get("step") is not None:
        step = _check_value(name, spec["step"])
        if step <= 0:
            raise UsageError(f"space {name}: step must be positive, got {step:g}")
        out["step"] = step
    return out


def _weights_values(space):
    spec = space.get("weights")
    return [] if spec is None else spec if isinstance(spec, list) else [spec]


def check_space(space):
    """A validated, normalised copy of `space` (floats for numbers, ranges
    with their sampling). UsageError names the first bad entry."""
    unknown = sorted(set(space) - set(TUNABLE))
    if unknown:
        raise UsageError(f"space: unknown hyperparameters {unknown}; tunable: {list(TUNABLE)} "
                         "(the other options are flags of python -m tuning)")
    if "momentum" in space and "beta_1" in space:
        raise UsageError("space: momentum and beta_1 are the same option (SGD momentum, "
                         "Adam beta_1); give one of them")
    checked = {}
    for name, spec in space.items():
        kind = _kind(spec)
        if kind == "range":
            checked[name] = _check_range(name, spec)
        elif kind == "choice":
            if not spec:
                raise UsageError(f"space {name}: an empty list of choices")
            values = [_check_value(name, v) for v in spec]
            if len(set(values)) != len(values):
                raise UsageError(f"space {name}: repeated choices in {spec}")
            checked[name] = values
        else:
            checked[name] = _check_value(name, spec)
    backbone = checked.get("backbone")
    if "coco" in _weights_values(checked) and backbone is not None:
        non_coco = [w for w in _weights_values(checked) if w != "coco"]
        backbones = backbone if isinstance(backbone, list) else [backbone]
        if not non_coco and backbones != [COCO_BACKBONE]:
            raise UsageError(f"space backbone={backbone!r}: Matterport's COCO weights are "
                             f"ResNet-101 only; weights coco trains {COCO_BACKBONE}")
        if not isinstance(backbone, list) and backbone != COCO_BACKBONE:
            raise UsageError(f"space backbone={backbone!r}: weights may be coco, whose "
                             f"weights are ResNet-101 only; make backbone a choice or drop coco")
    return checked


def candidate_values(spec):
    """Values a spec can take, for checks: the value, the choices, or a range's ends."""
    kind = _kind(spec)
    if kind == "range":
        return [spec["min"], spec["max"]]
    return list(spec) if kind == "choice" else [spec]


def declare(hp, space):
    """Register a checked space in a keras_tuner HyperParameters. -> hp"""
    non_coco = [w for w in _weights_values(space) if w != "coco"]
    conditional_backbone = ("coco" in _weights_values(space)
                            and isinstance(space.get("weights"), list)
                            and isinstance(space.get("backbone"), list))
    for name, spec in space.items():
        kind = _kind(spec)
        if kind == "range":
            hp.Float(name, spec["min"], spec["max"], step=spec.get("step"),
                     sampling=spec["sampling"])
        elif kind == "choice" and name == "backbone" and conditional_backbone:
            hp.Choice(name, spec, parent_name="weights", parent_values=non_coco)
        elif kind == "choice":
            hp.Choice(name, spec, ordered=False)
        else:
            hp.Fixed(name, spec)
    return hp


def hyperparameters(values):
    """A trial's own hyperparameters: its values without Hyperband's tuner/* entries."""
    return {k: v for k, v in values.items() if not k.startswith("tuner/")}


def options_of(values, base):
    """A trial's options: `base` (a dict of option values) updated by its
    hyperparameters (beta_1 sets momentum; a trial that picks COCO weights
    trains ResNet-101, the only COCO backbone). -> dict"""
    options = dict(base)
    for name, value in hyperparameters(values).items():
        options[NUMERIC.get(name, name)] = value
    if values.get("weights") == "coco" and "backbone" not in values:
        options["backbone"] = COCO_BACKBONE
    return options


def exported_options(values, base):
    """The option values to hand to `train.py --hparams`: the sweep's base
    options (a dict of TrainOptions names) updated by the trial's. -> dict"""
    options = options_of(values, dict(base or {}))
    return {k: v for k, v in options.items() if k in FIELDS and k != "hparams"}
