"""Command-line plumbing every command shares, Cityscapes or not.

Each command builds a `Parser` (argparse with one-line errors and exit code
2, and a --verbose flag), parses its arguments, calls `start(args)` (the
quiet TensorFlow start-up, before anything imports TensorFlow, and
--cpu_devices) and runs its work inside `run(parser, work)`, which turns
the errors every command shares into exit codes:

    0  done
    1  the work stopped on its own terms (e.g. a sweep after failed trials,
       a checkpoint that could not be written)
    2  bad input (`UsageError`), found before any long work starts
    3  a loss became NaN / Inf (training stops; the last good checkpoint stays)

The project's commands reach this through `cli.py` (which adds the
Cityscapes flags); `python -m mrcnn.export` uses it directly. This module
does not import TensorFlow: parsing and usage errors cost no TensorFlow
start-up. The commands that train or detect print `startup_line(...)`
first (Keras backend, devices, precision, XLA) and take --jit_compile
(`add_jit_flag`); those that accept --gpus take --cpu_devices
(`add_cpu_devices_flag`).
"""

import argparse
import sys

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NON_FINITE = 0, 1, 2, 3


class UsageError(ValueError):
    """Bad input found before the work starts (exit code 2)."""


class StoppedError(RuntimeError):
    """The work stopped on its own terms (exit code 1); the message says why."""


class Parser(argparse.ArgumentParser):
    """argparse whose errors are one line (`PROG: error: ...`) with exit 2.

    doc: the command's module docstring; its first paragraph is the
    description, the rest (usage examples) is shown as written.
    """

    def __init__(self, prog, doc="", **kwargs):
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(prog=prog, description=doc.strip().split("\n\n")[0] or None, **kwargs)
        self.add_argument("--verbose", action="store_true",
                          help="show TensorFlow's start-up and log lines")

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def start(args):
    """The quiet start-up: TensorFlow's banner hidden unless --verbose;
    then --cpu_devices N logical CPU devices, where the command has the
    flag. Call it after parsing and before anything imports TensorFlow,
    JAX or Keras. UsageError when the CPU devices cannot be set up."""
    from mrcnn.engine import devices
    from mrcnn.quiet import quiet_start

    quiet_start(verbose=bool(getattr(args, "verbose", False)))
    count = getattr(args, "cpu_devices", None)
    if count:
        try:
            devices.setup_cpu_devices(count)
        except (RuntimeError, ValueError) as e:
            raise UsageError(f"--cpu_devices {count}: {e}")


def run(parser, work, args):
    """work(args) -> exit code (None: 0), with the shared errors turned
    into one line on stderr and their exit codes."""
    try:
        return work(args) or EXIT_OK
    except UsageError as e:
        parser.error(str(e))
    except StoppedError as e:
        print(f"{parser.prog}: stopped: {e}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as e:
        # Training's NaN stop and failed checkpoint write (only raised once
        # the engine is loaded).
        engine = sys.modules.get("mrcnn.engine.callbacks")
        if engine is None or not isinstance(e, (engine.NonFiniteLossError,
                                                engine.CheckpointWriteError)):
            raise
        print(f"{parser.prog}: stopped: {e}", file=sys.stderr)
        return EXIT_NON_FINITE if isinstance(e, engine.NonFiniteLossError) else EXIT_FAILED


def main(parser, work, argv=None):
    """Parse argv, start quietly, run `work(args)`. -> exit code. (Commands
    that do not use TensorFlow call `run` without `start`.)"""
    args = parser.parse_args(argv)
    try:
        start(args)
    except UsageError as e:
        parser.error(str(e))
    return run(parser, work, args)


# ------------------------------------------------------ devices, precision, XLA
JIT_FLAGS = {"on": True, "off": False, "auto": "auto"}  # -> Config.JIT_COMPILE
JIT_CHOICES = tuple(JIT_FLAGS)
JIT_HELP = ("XLA compilation (jit_compile) of the training step and of detect: on, off, or "
            "auto: on where a GPU is present (Config.JIT_COMPILE)")


def positive_int(text):
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: must be a positive integer")
    return value


def add_cpu_devices_flag(parser):
    """--cpu_devices N (set up by `start`), for the commands that take --gpus."""
    parser.add_argument("--cpu_devices", type=positive_int, metavar="N",
                        help="split the CPU into N logical devices before the backend starts, "
                             "so that --gpus N mirrors over them on a machine without GPUs "
                             "(tests, CI) [one device]")


def add_jit_flag(parser):
    """--jit_compile on|off|auto (`JIT_HELP`), for the commands that only detect."""
    parser.add_argument("--jit_compile", choices=JIT_CHOICES, help=JIT_HELP + " [auto]")


def jit_value(flag):
    """--jit_compile on / off / auto -> Config.JIT_COMPILE True / False / "auto"
    (UsageError for another value)."""
    if flag not in JIT_FLAGS:
        raise UsageError(f"--jit_compile {flag}: expected one of {list(JIT_FLAGS)}")
    return JIT_FLAGS[flag]


def startup_line(jit_compile=None, mixed_precision=False, replicas=1):
    """The line a command prints first (`mrcnn.engine.devices.startup_line`)
    of its flags: --jit_compile on|off|auto (None: auto), --mixed_precision,
    --gpus (the replicas)."""
    from mrcnn.engine import devices

    return devices.startup_line(devices.precision_policy(mixed_precision),
                                jit_value(jit_compile or "auto"), replicas)


# ------------------------------------------------- the commands that detect
MODEL_FLAGS = {"min_confidence": "DETECTION_MIN_CONFIDENCE", "image_min_dim": "IMAGE_MIN_DIM",
               "image_max_dim": "IMAGE_MAX_DIM"}


def add_model_flags(parser):
    """--weights PATH|last|coco, --logs and the Config fields a detecting
    command may override (predict.py, python -m mrcnn.export)."""
    a = parser.add_argument
    a("--weights", required=True,
      help="checkpoint PATH (its run folder's config.json describes the model), 'last' (the "
           "newest checkpoint of the newest run under --logs) or 'coco' (Matterport's COCO "
           "model, downloaded once)")
    a("--logs", default="logs", help="folder of the run folders, for --weights last [logs]")
    a("--min_confidence", type=float,
      help="keep detections scoring at least this (DETECTION_MIN_CONFIDENCE) [the model's]")
    a("--image_min_dim", type=int, help="resize as with this IMAGE_MIN_DIM [the model's]")
    a("--image_max_dim", type=int, help="resize as with this IMAGE_MAX_DIM [the model's]")
    a("--allow_partial", action="store_true", default=None,
      help="load a weights file that lacks some layers of the model (they keep random "
           "values) instead of stopping")


def model_overrides(args):
    """The Config fields the model flags set. UsageError for a bad value."""
    fields = {field: getattr(args, flag) for flag, field in MODEL_FLAGS.items()
              if getattr(args, flag, None) is not None}
    confidence = fields.get("DETECTION_MIN_CONFIDENCE")
    if confidence is not None and not 0 <= confidence <= 1:
        raise UsageError(f"--min_confidence {confidence}: must lie in [0, 1]")
    for flag in ("image_min_dim", "image_max_dim"):
        if getattr(args, flag, None) is not None and getattr(args, flag) < 1:
            raise UsageError(f"--{flag} {getattr(args, flag)}: must be a positive integer")
    return fields


def model_source(args):
    """(weights file, Config) of the model flags (`inference.model_source`),
    or UsageError naming the problem."""
    from mrcnn.engine.inference import model_source as source

    try:
        return source(args.weights, args.logs, model_overrides(args))
    except (ValueError, FileNotFoundError) as e:
        raise UsageError(f"--weights {args.weights}: {e}")


def detection_model(path, config, overrides=None, allow_partial=False):
    """The inference MaskRCNN of `model_source`'s answer, `overrides`
    (Config fields, e.g. IMAGES_PER_GPU) on top (UsageError when the
    weights do not fit the model; a file that lacks layers of the model
    only with allow_partial)."""
    from mrcnn.engine.inference import inference_model

    try:
        return inference_model(config, overrides=overrides, weights=path,
                               allow_partial=allow_partial)
    except (ValueError, OSError) as e:
        raise UsageError(f"--weights {path}: {e}")
