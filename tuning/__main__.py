"""Keras Tuner Hyperband sweeps of Mask R-CNN on Cityscapes.

    python -m tuning --dataset ROOT --stage coarse --directory sweeps --export_best coarse.json
    python -m tuning --dataset ROOT --stage fine --hparams coarse.json --export_best fine.json
    python train.py --hparams fine.json --epochs 40 ...

Re-running a command continues its sweep; KERASTUNER_TUNER_ID /
KERASTUNER_ORACLE_IP / KERASTUNER_ORACLE_PORT make it the chief or a
worker of a distributed sweep. Exit codes: 0 done; 2 bad input, found
before the first trial; 1 the sweep stopped (too many failed trials) or
had nothing to export. The work is in tuning/sweep.py.
"""

import sys

import cli
from cityscapes import options
from mrcnn.config import OPTIMIZERS
from tuning.objectives import DIRECTIONS
from tuning.spaces import STAGES

# train.py options a sweep takes from the command line (the base of every trial).
TRAIN_OPTIONS = ("dataset", "annotations", "hparams", "weights", "exclude", "allow_partial",
                 "backbone", "layers", "augment",
                 "freeze", "classes", "images_per_gpu", "image_min_dim", "image_max_dim",
                 "steps_per_epoch", "validation_steps", "gpus", "mixed_precision",
                 "jit_compile", "mask_cache", "seed", "skip_bad", "decode_cache")


def build_parser():
    p = cli.Parser("python -m tuning", __doc__,
                   epilog="Spaces (tuning/spaces.py): fine sgd: lr log [1e-5, 1e-4], momentum "
                          "[0.9, 0.99], weight_decay log [1e-4, 1e-2]; fine adam: lr log [1e-6, "
                          "1e-5], beta_1 [0.9, 0.99], weight_decay log [1e-4, 1e-2]; coarse: "
                          "weights coco|imagenet, backbone resnet50|resnet101, optimizer "
                          "sgd|adam, lr 1e-3|1e-4|1e-5|1e-6.")
    a = p.add_argument
    a("--stage", required=True, choices=STAGES, help="the built-in search space")
    a("--optimizer", choices=OPTIMIZERS,
      help="fine: the optimizer whose space to search [the --hparams one]; coarse: fix it "
           "[search sgd and adam]")
    a("--space", metavar="FILE", help="JSON / YAML overrides of the space, e.g. "
                                      "{\"weights\": \"imagenet\", \"lr\": [1e-4, 1e-5]}")
    a("--objective", default="val_loss", choices=list(DIRECTIONS),
      help="val_loss, or val_ap: mask AP@0.5 on the val subset [val_loss]")
    a("--max_epochs", type=int, default=20, help="most epochs of one model [20]")
    a("--factor", type=int, default=3, help="Hyperband's reduction factor [3]")
    a("--iterations", type=int, default=1, help="Hyperband iterations [1]")
    a("--max_trials", type=int, help="stop after this many trials [Hyperband's schedule]")
    a("--max_consecutive_failures", type=int, default=3,
      help="stop after this many crashed trials in a row (NaN trials do not count) [3]")
    a("--train_images", type=int,
      help="train subset, seeded; 0: all [154, or all when the split has fewer]")
    a("--val_images", type=int,
      help="val subset, seeded; 0: all [59, or all when the split has fewer]")
    a("--directory", default="sweeps", help="folder of the sweep projects [sweeps]")
    a("--project", help="the sweep's name [STAGE or STAGE_OPTIMIZER]")
    a("--overwrite", action="store_true", help="start the sweep again (deletes the project)")
    a("--export_best", metavar="FILE", help="write the best trial's options for "
                                            "train.py --hparams FILE")
    a("--top", type=int, default=10, help="rows of the results table [10]")
    g = p.add_argument_group("train.py options every trial starts from (see train.py --help)")
    options.add_flags(p, TRAIN_OPTIONS, group=g)
    cli.add_cpu_devices_flag(g)
    return p


def settings_of(args):
    """The SweepSettings of parsed arguments."""
    from tuning.sweep import SweepSettings

    return SweepSettings(
        stage=args.stage, optimizer=args.optimizer, space=args.space, objective=args.objective,
        max_epochs=args.max_epochs, factor=args.factor, iterations=args.iterations,
        max_trials=args.max_trials, max_consecutive_failures=args.max_consecutive_failures,
        train_images=args.train_images, val_images=args.val_images, directory=args.directory,
        project=args.project, overwrite=args.overwrite, export_best=args.export_best,
        top=args.top, oracle_seed=args.seed, options=options.given(args, TRAIN_OPTIONS))


def work(args):
    from tuning import sweep
    from tuning.tuner import TrialStoppedError, TrialUsageError

    try:
        sweep.run(settings_of(args))
    except TrialUsageError as e:
        raise cli.UsageError(str(e))
    except (sweep.SweepError, TrialStoppedError) as e:
        raise cli.StoppedError(str(e))


def main(argv=None):
    return cli.main(build_parser(), work, argv)


if __name__ == "__main__":
    sys.exit(main())
