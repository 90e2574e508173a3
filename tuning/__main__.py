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

import argparse
import sys

from mrcnn.quiet import quiet_start

quiet_start()

from cityscapes import trainer  # noqa: E402
from tuning import objectives, spaces, sweep  # noqa: E402
from tuning.tuner import TrialUsageError  # noqa: E402

EXIT_FAILED = 1
# train.py options a sweep takes from the command line (the base of every trial).
TRAIN_OPTIONS = ("dataset", "hparams", "weights", "backbone", "layers", "augment", "freeze",
                 "classes", "images_per_gpu", "image_min_dim", "image_max_dim",
                 "steps_per_epoch", "validation_steps", "gpus", "mixed_precision",
                 "mask_cache", "seed")



def build_parser():
    p = trainer.UsageParser(prog="python -m tuning", description=__doc__.split("\n\n")[0],
               formatter_class=argparse.RawDescriptionHelpFormatter,
               epilog="Spaces (tuning/spaces.py): fine sgd: lr log [1e-5, 1e-4], momentum "
                      "[0.9, 0.99], weight_decay log [1e-4, 1e-2]; fine adam: lr log [1e-6, "
                      "1e-5], beta_1 [0.9, 0.99], weight_decay log [1e-4, 1e-2]; coarse: "
                      "weights coco|imagenet, backbone resnet50|resnet101, optimizer sgd|adam, "
                      "lr 1e-3|1e-4|1e-5|1e-6.")
    a = p.add_argument
    a("--dataset", help=f"Cityscapes folder or 'demo' [${trainer.ENV_VAR}]")
    a("--stage", required=True, choices=spaces.STAGES, help="the built-in search space")
    a("--optimizer", choices=trainer.OPTIMIZERS,
      help="fine: the optimizer whose space to search [the --hparams one]; coarse: fix it "
           "[search sgd and adam]")
    a("--space", metavar="FILE", help="JSON / YAML overrides of the space, e.g. "
                                      "{\"weights\": \"imagenet\", \"lr\": [1e-4, 1e-5]}")
    a("--objective", default="val_loss", choices=list(objectives.DIRECTIONS),
      help="val_loss, or val_ap: mask AP@0.5 on the val subset [val_loss]")
    a("--max_epochs", type=int, default=20, help="most epochs of one model [20]")
    a("--factor", type=int, default=3, help="Hyperband's reduction factor [3]")
    a("--iterations", type=int, default=1, help="Hyperband iterations [1]")
    a("--max_trials", type=int, help="stop after this many trials [Hyperband's schedule]")
    a("--max_consecutive_failures", type=int, default=3,
      help="stop after this many crashed trials in a row (NaN trials do not count) [3]")
    a("--train_images", type=int, default=154, help="train subset, seeded; 0: all [154]")
    a("--val_images", type=int, default=59, help="val subset, seeded; 0: all [59]")
    a("--directory", default="sweeps", help="folder of the sweep projects [sweeps]")
    a("--project", help="the sweep's name [STAGE or STAGE_OPTIMIZER]")
    a("--overwrite", action="store_true", help="start the sweep again (deletes the project)")
    a("--export_best", metavar="FILE", help="write the best trial's options for "
                                            "train.py --hparams FILE")
    a("--top", type=int, default=10, help="rows of the results table [10]")
    g = p.add_argument_group("train.py options every trial starts from (see train.py --help)")
    g.add_argument("--hparams", metavar="FILE",
                   help="options from a file, e.g. the coarse stage's --export_best")
    g.add_argument("--weights", help="coco | imagenet | none | PATH (when not in the space)")
    g.add_argument("--backbone", choices=trainer.BACKBONES)
    g.add_argument("--layers", choices=list(trainer.LAYER_REGEX))
    g.add_argument("--augment", choices=list(trainer.AUGMENTATIONS))
    g.add_argument("--freeze")
    g.add_argument("--classes")
    for flag in ("images_per_gpu", "image_min_dim", "image_max_dim", "steps_per_epoch",
                 "validation_steps"):
        g.add_argument(f"--{flag}", type=int)
    g.add_argument("--gpus", type=int, help="GPUs of this worker (MirroredStrategy) [1]")
    g.add_argument("--mixed_precision", action="store_true", default=None)
    g.add_argument("--mask_cache")
    g.add_argument("--seed", type=int,
                   help="training, subset and oracle seed (Keras Tuner takes an oracle seed "
                        "of 0 as none) [none; demo: 0 for training]")
    return p


def settings_of(args):
    """The settings dict tuning.sweep.run takes, from parsed arguments."""
    given = vars(args)
    options = {k: given[k] for k in TRAIN_OPTIONS if given.get(k) is not None}
    project = args.project or "_".join(filter(None, (args.stage, args.optimizer)))
    return {"stage": args.stage, "optimizer": args.optimizer, "space": args.space,
            "objective": args.objective, "max_epochs": args.max_epochs, "factor": args.factor,
            "iterations": args.iterations, "max_trials": args.max_trials,
            "max_consecutive_failures": args.max_consecutive_failures,
            "train_images": args.train_images, "val_images": args.val_images,
            "directory": args.directory, "project": project, "overwrite": args.overwrite,
            "export_best": args.export_best, "top": args.top, "oracle_seed": args.seed,
            "options": options}


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        sweep.run(settings_of(args))
    except (trainer.UsageError, TrialUsageError) as e:
        parser.error(str(e))
    except sweep.SweepError as e:
        print(f"{parser.prog}: stopped: {e}", file=sys.stderr)
        return EXIT_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
