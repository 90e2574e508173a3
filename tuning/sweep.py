"""A sweep from its settings: checks, datasets, the tuner, the search, results.

    settings = SweepSettings(stage="fine", optimizer="sgd", objective="val_loss",
                             max_epochs=20, factor=3, directory="sweeps",
                             options={"dataset": ...})
    summary = run(settings)

`options` are train.py options given on the command line (dataset,
hparams, gpus, image sizes, ...): cityscapes.options.resolve turns them
into the base options every trial starts from. The train / val subsets
default to 154 / 59 images (seeded), or the whole split when it has fewer
(the demo's 24 val scenes). All checks of the input happen
before the first trial, and raise UsageError (exit 2): the space, every
combination of its categorical values through train.py's own checks, the
COCO / ImageNet files it needs, the datasets (every image decoded once;
--skip_bad leaves bad ones out, listed in the project's skipped.json), and,
when the project folder already holds a sweep, that its settings
(sweep.json) are this one's.

Re-running the same command continues the sweep (Keras Tuner reloads the
oracle: finished trials stay, the interrupted one is retried from its
last checkpoint); --overwrite starts it again.
"""

import dataclasses
import itertools
import json
import os

import cli
from cityscapes import options as opts
from cityscapes import trainer
from cityscapes.dataset import split_size
from cityscapes.rasterize import CityscapesDataError
from cli import UsageError
from mrcnn import files
from mrcnn.engine import devices, skipped
from tuning import layout, objectives, results, spaces
from tuning.hypermodel import MaskRCNNHyperModel, SweepData
from tuning.tuner import SweepTuner, role

# Base options that change what a trial means: a re-run must keep them.
FINGERPRINT_OPTIONS = ("weights", "backbone", "optimizer", "lr", "momentum", "weight_decay",
                       "layers", "augment", "freeze", "images_per_gpu", "image_min_dim",
                       "image_max_dim", "classes", "steps_per_epoch", "validation_steps", "seed")
# Subset sizes when --train_images / --val_images are not given (capped at the split).
DEFAULT_SUBSETS = {"train": 154, "val": 59}
FINGERPRINT = ("stage", "objective", "max_epochs", "factor", "iterations", "train_images",
               "val_images", "space", "base")


@dataclasses.dataclass
class SweepSettings:
    """A sweep's settings (python -m tuning's flags); `options` are the
    train.py options given on the command line (cityscapes.options names)."""

    stage: str
    optimizer: str = None
    space: str = None
    objective: str = "val_loss"
    max_epochs: int = 20
    factor: int = 3
    iterations: int = 1
    max_trials: int = None
    max_consecutive_failures: int = 3
    train_images: int = None
    val_images: int = None
    directory: str = "sweeps"
    project: str = None
    overwrite: bool = False
    export_best: str = None
    top: int = 10
    oracle_seed: int = None
    options: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.project is None:
            self.project = "_".join(filter(None, (self.stage, self.optimizer)))


def settings_of(settings):
    """SweepSettings from SweepSettings or a dict of its fields."""
    return settings if isinstance(settings, SweepSettings) else SweepSettings(**settings)


class SweepError(RuntimeError):
    """The sweep could not go on or produced nothing to export (exit 1)."""


# ----------------------------------------------------------------- checks
def check_numbers(s):
    """UsageError for the first bad number among the sweep's settings."""
    if not (isinstance(s.max_epochs, int) and s.max_epochs >= 1):
        raise _bad("max_epochs", s, "must be a positive integer")
    if not (isinstance(s.factor, int) and s.factor >= 2):
        raise _bad("factor", s, "must be an integer >= 2 (Hyperband's reduction factor)")
    if not (isinstance(s.iterations, int) and s.iterations >= 1):
        raise _bad("iterations", s, "must be a positive integer")
    for name in ("train_images", "val_images"):
        value = getattr(s, name)
        if value is not None and not (isinstance(value, int) and value >= 0):
            raise _bad(name, s, "must be 0 (the whole split) or a positive integer")
    for name in ("max_trials", "max_consecutive_failures"):
        value = getattr(s, name)
        if value is not None and not (isinstance(value, int) and value >= 1):
            raise _bad(name, s, "must be a positive integer")
    if not (isinstance(s.top, int) and s.top >= 1):
        raise _bad("top", s, "must be a positive integer")


def _bad(name, settings, why):
    return UsageError(f"--{name} {getattr(settings, name)}: {why}")


def stage_optimizer(stage, flag, base):
    """The optimizer the stage's space is for: --optimizer; for the fine
    stage without it, the base options' (e.g. from the coarse --hparams)."""
    if flag is not None or stage == "coarse":
        return flag
    return base.optimizer


def resolve_space(settings, base):
    """The checked space: the stage's, with --space overrides."""
    optimizer = stage_optimizer(settings.stage, settings.optimizer, base)
    space = spaces.stage_space(settings.stage, optimizer)
    if settings.space:
        space = spaces.merge(space, spaces.read_space_file(settings.space))
    return spaces.check_space(space)


def categorical_combinations(space):
    """Every combination of the space's categorical values, numbers at their
    first candidate; COCO combinations without the conditional backbone."""
    cat = {n: spaces.candidate_values(s) for n, s in space.items() if n in spaces.CATEGORICAL}
    num = {n: spaces.candidate_values(s)[0] for n, s in space.items() if n in spaces.NUMERIC}
    conditional = isinstance(space.get("weights"), list) and isinstance(space.get("backbone"), list)
    out = []
    for combo in itertools.product(*cat.values()):
        values = dict(zip(cat, combo), **num)
        if conditional and values.get("weights") == "coco":
            values.pop("backbone")
        if values not in out:
            out.append(values)
    return out


def numeric_variations(space, values):
    """`values` with each numeric hyperparameter at each of its candidates."""
    for name, spec in space.items():
        if name in spaces.NUMERIC:
            for v in spaces.candidate_values(spec):
                yield dict(values, **{name: v})


def check_trials(space, base):
    """train.py's checks on the options of every categorical combination
    and numeric bound. -> the combinations' options. UsageError names the
    values that fail."""
    combos = categorical_combinations(space)
    checked = []
    for values in combos + list(numeric_variations(space, combos[0])):
        options = opts.TrainOptions(**spaces.options_of(values, opts.record(base)))
        try:
            opts.check(options)
        except UsageError as e:
            shown = ", ".join(f"{k}={v}" for k, v in values.items())
            raise UsageError(f"space ({shown}): {e}")
        checked.append(options)
    if base.dataset == "demo" and any(o.weights == "coco" for o in checked):
        raise UsageError("weights coco: the demo's narrow heads (cityscapes/config.py "
                                 "DemoConfig) do not load Matterport's COCO weights; use "
                                 "imagenet or none (--weights, or a --space file)")
    return checked


def fetch_weights(checked_options):
    """The COCO / ImageNet files the trials need, found or downloaded now
    (UsageError saying where to get them otherwise). -> their paths"""
    from mrcnn.engine import initial_weights

    needed = sorted({(o.weights, o.backbone) for o in checked_options
                     if o.weights in ("coco", "imagenet")})
    paths = []
    for kind, backbone in needed:
        try:
            paths.append(initial_weights.weights_file(kind, backbone))
        except initial_weights.WeightsError as e:
            raise UsageError(f"--weights {kind}: {e} (the sweep's trials need {kind} weights for "
                                     f"{backbone}: give others with --weights or a --space "
                                     "file, e.g. {\"weights\": \"none\"})")
    return paths


def check_devices(gpus):
    """UsageError unless this machine has `gpus` devices (--gpus)."""
    try:
        devices.make_strategy(gpus)
    except ValueError as e:
        raise UsageError(f"--gpus {gpus}: {e}")


# -------------------------------------------------------------- settings
def fingerprint(settings, base, space):
    """What a re-run of the sweep must match (JSON-normalised dict)."""
    record = {k: getattr(settings, k) for k in FINGERPRINT if k not in ("space", "base")}
    record["space"] = space
    record["base"] = {k: getattr(base, k) for k in FINGERPRINT_OPTIONS}
    return json.loads(json.dumps(record))


def _differences(old, new):
    keys = sorted(set(old) | set(new))
    return [f"{k}: {json.dumps(old.get(k))} -> {json.dumps(new.get(k))}"
            for k in keys if old.get(k) != new.get(k)]


def check_fingerprint(project, record):
    """UsageError when the project holds a sweep with other settings."""
    path = layout.sweep_file(project)
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as f:
        old = {k: v for k, v in json.load(f).items() if k in FINGERPRINT}
    diff = _differences(old, record)
    if diff:
        raise UsageError(f"{project} holds a sweep with other settings ({'; '.join(diff)}):"
                                 " use another --project, or --overwrite to start again")


def write_meta(project, record, settings, base_hparams, train_options):
    """sweep.json: the fingerprint, plus what results need (project name,
    the --hparams base, and the train.py options every trial started from
    with the subsets' sizes: --export_best adds the best trial's values to
    them). -> the dict"""
    meta = dict(record, project=settings.project, hparams=base_hparams,
                train_options=train_options)
    files.write_text(layout.sweep_file(project), json.dumps(meta, indent=2) + "\n")
    return meta


# ------------------------------------------------------------------ data
def _subset(root, split, classes, base, size):
    """One split's seeded subset: `size` images (0: all; None: the default
    size, or the whole split when it has fewer)."""
    if size is None:
        try:
            size = min(DEFAULT_SUBSETS[split], split_size(root, split))
        except CityscapesDataError as e:
            raise UsageError(f"--dataset {root}: {e}")
    return trainer.load_split(root, split, classes, base.annotations, size or None,
                              base.seed or 0, base.skip_bad, opts.decode_cache(base))


def load_data(base, train_images, val_images):
    """The train / val subsets every trial uses (seeded by --seed, else 0). -> SweepData"""
    classes = opts.classes(base)
    root = cli.dataset_root(base.dataset)
    train = _subset(root, "train", classes, base, train_images)
    val = _subset(root, "val", classes, base, val_images)
    return SweepData(train, val, tuple(classes), root)


def train_options(base, data):
    """What every trial starts from, as train.py options: the base options
    with the sizes of the subsets (known where the data is loaded; each
    trial also records the options it trained with). -> dict"""
    record = opts.record(base)
    record.pop("hparams")
    if data is not None:
        record["train_images"] = len(data.train.image_ids)
        record["val_images"] = len(data.val.image_ids)
    return record


# ------------------------------------------------------------------- run
def prepare(settings, log=None):
    """Every check, before any trial. -> dict(role, base, space, record, base_hparams, data)

    settings: SweepSettings, or a dict of its fields; log: where the
    start-up line goes (devices, precision, XLA of the base options)."""
    settings = settings_of(settings)
    check_numbers(settings)
    objectives.check(settings.objective)
    who = role()
    if who == "worker" and settings.overwrite:
        raise UsageError("--overwrite: only the chief (or a sweep without workers) may "
                                 "start a shared sweep again")
    explicit = dict(settings.options)
    if explicit.get("weights") == "last":
        raise UsageError("--weights last: a sweep starts every trial anew; give coco, "
                         "imagenet, none or a file")
    base, _ = opts.resolve(explicit)
    if log:
        log(cli.startup_line(base.jit_compile, base.mixed_precision, base.gpus))
    base_hparams = opts.read_hparams(explicit["hparams"]) if explicit.get("hparams") else {}
    space = resolve_space(settings, base)
    checked = check_trials(space, base)
    record = fingerprint(settings, base, space)
    data = None
    if who != "chief":  # the chief serves the oracle: no datasets, no models
        fetch_weights(checked)
        check_devices(base.gpus)
        data = load_data(base, settings.train_images, settings.val_images)
        if settings.objective == "val_ap" and data.val.num_without_instances == len(
                data.val.image_ids):
            raise UsageError("--objective val_ap: no image of the val subset has "
                             "instances to score")
    return {"role": who, "base": base, "space": space, "record": record,
            "base_hparams": base_hparams, "train_options": train_options(base, data),
            "data": data}


def make_tuner(settings, prepared):
    """The SweepTuner of a prepared sweep (reloads the project unless overwrite)."""
    settings = settings_of(settings)
    project = layout.project_dir(settings.directory, settings.project)
    if not settings.overwrite:
        check_fingerprint(project, prepared["record"])
    hypermodel = MaskRCNNHyperModel(prepared["space"], prepared["base"], prepared["data"],
                                    settings.objective)
    tuner = SweepTuner(hypermodel, settings.objective, settings.max_epochs,
                       settings.factor, iterations=settings.iterations,
                       seed=settings.oracle_seed, max_trials=settings.max_trials,
                       max_consecutive_failed_trials=settings.max_consecutive_failures,
                       directory=settings.directory, project_name=settings.project,
                       overwrite=bool(settings.overwrite))
    return tuner


def run(settings, log=print):
    """Run (or continue, or serve) a sweep; write results on the oracle's side.

    -> summary dict: role, project, trials (records), results (paths or
    None on a worker), export (the exported dict or None)."""
    settings = settings_of(settings)
    prepared = prepare(settings, log)
    tuner = make_tuner(settings, prepared)
    project = tuner.project_dir
    meta = write_meta(project, prepared["record"], settings, prepared["base_hparams"],
                      prepared["train_options"])
    data = prepared["data"]
    if data is not None:  # images --skip_bad left out of every trial
        left_out = (skipped.load_entries("train", data.train.skipped)
                    + skipped.load_entries("val", data.val.skipped))
        if skipped.append(project, left_out):
            log(f"{skipped.summary(left_out)} (listed in {skipped.path_of(project)})")
    stopped = None
    try:
        tuner.search()
    except RuntimeError as e:
        if "consecutive failures" not in str(e):
            raise
        stopped = SweepError(f"stopped after {settings.max_consecutive_failures} failed "
                             f"trials in a row ({str(e).strip().splitlines()[-1]}); the "
                             "results so far are written")
    records = results.collect(project)
    summary = {"role": prepared["role"], "project": project, "trials": records,
               "results": None, "export": None}
    if stopped and prepared["role"] != "worker":
        summary["results"] = results.write(project, meta, records, settings.top)
    if stopped:
        raise stopped
    if prepared["role"] == "worker":
        mine = [r["trial_id"] for r in records if r["worker"] == tuner.tuner_id]
        log(f"Worker {tuner.tuner_id} done: trials {', '.join(mine) or 'none'}; the chief "
            f"writes the results in {project}"
            + (" and --export_best" if settings.export_best else ""))
        return summary
    summary["results"] = results.write(project, meta, records, settings.top)
    log(f"Results: {summary['results'][0]}, {summary['results'][1]}")
    if settings.export_best:
        summary["export"] = results.export_best(settings.export_best, meta, records)
        if summary["export"] is None:
            raise SweepError("--export_best: no trial has finished with a finite score")
        log(f"Best trial {summary['export']['trial_id']} ({settings.objective} "
            f"{summary['export']['score']:.4g}) -> {settings.export_best} "
            f"(train.py --hparams {settings.export_best})")
    return summary
