"""Command-line plumbing shared by every command of the project.

    train.py, evaluate.py, predict.py, python -m tuning, python -m cityscapes.stats,
    python -m cityscapes.show_masks, python -m cityscapes.synthetic

Each command builds a `Parser` (argparse with one-line errors and exit code
2, and a --verbose flag), parses its arguments, calls `start(args)` (the
quiet TensorFlow start-up, before anything imports TensorFlow) and runs its
work inside `run(parser, work)`, which turns the errors every command
shares into exit codes (these live in mrcnn/command.py, which knows nothing
of Cityscapes, and are re-exported here):

    0  done
    1  the work stopped on its own terms (e.g. a sweep after failed trials,
       a checkpoint that could not be written)
    2  bad input (`UsageError`), found before any long work starts
    3  a loss became NaN / Inf (training stops; the last good checkpoint stays)

`--dataset ROOT|demo` resolves once here (`dataset_value`, `dataset_root`):
a Cityscapes folder, the synthetic demo (generated once, cached), or
$CITYSCAPES_DATASET when the flag is not given. This module does not
import TensorFlow: parsing and usage errors cost no TensorFlow start-up.
"""

import os

from cityscapes.dataset import ANNOTATION_CHOICES as ANNOTATIONS
from cityscapes.dataset import ENV_VAR as DATASET_ENV
from mrcnn.command import (  # noqa: F401  every command's plumbing, re-exported
    EXIT_FAILED,
    EXIT_NON_FINITE,
    EXIT_OK,
    EXIT_USAGE,
    Parser,
    StoppedError,
    UsageError,
    add_cpu_devices_flag,
    add_jit_flag,
    jit_value,
    main,
    run,
    start,
    startup_line,
)

DATASET_HELP = (f"Cityscapes folder (leftImg8bit/, gtFine/) or 'demo' (synthetic scenes, "
                f"generated once) [${DATASET_ENV}]")
ANNOTATIONS_HELP = ("ground truth: polygons (*_gtFine_polygons.json), instanceIds "
                    "(*_gtFine_instanceIds.png) or auto (polygons where the JSON exists) [auto]")


def add_dataset_flags(parser, annotations=True):
    """--dataset ROOT|demo (and --annotations) on a parser."""
    parser.add_argument("--dataset", help=DATASET_HELP)
    if annotations:
        parser.add_argument("--annotations", choices=ANNOTATIONS, help=ANNOTATIONS_HELP)


def dataset_value(given):
    """--dataset's value, else $CITYSCAPES_DATASET, else None."""
    return given or os.environ.get(DATASET_ENV) or None


def dataset_root(value):
    """The folder of a --dataset value: the demo's (generated on first use)
    or the given folder. UsageError when there is none or it is missing."""
    if not value:
        raise UsageError(f"no dataset: pass --dataset ROOT (the folder holding leftImg8bit/ "
                         f"and gtFine/) or --dataset demo, or set ${DATASET_ENV}")
    if value == "demo":
        from cityscapes import synthetic

        return synthetic.ensure_demo()
    root = os.path.expanduser(value)
    if not os.path.isdir(root):
        raise UsageError(f"--dataset {value}: no such folder")
    return root


def csv(value):
    """"a, b,c" (or a list) -> ["a", "b", "c"]."""
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [v.strip() for v in str(value or "").split(",") if v.strip()]
