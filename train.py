"""Train Mask R-CNN on Cityscapes (or the built-in synthetic demo).

    python train.py --dataset demo                       # CPU, minutes, prints val AP@0.5
    python train.py --weights coco --backbone resnet101  # $CITYSCAPES_DATASET
    python train.py --weights last                       # continue the latest run
    python train.py --schedule heads:40,4+:120,all:160x0.1 --early_stopping 3

Exit codes: 0 done (early stop included); 2 bad input, found before
training starts; 3 a loss became NaN / Inf (the last good checkpoint stays).
The work is in cityscapes/trainer.py.
"""

import argparse
import sys

from mrcnn.quiet import quiet_start

quiet_start()

from cityscapes import trainer  # noqa: E402
from mrcnn.callbacks import NonFiniteLossError  # noqa: E402

D = trainer.DEFAULTS



def build_parser():
    p = trainer.UsageParser(prog="train.py", description=__doc__.split("\n\n")[0],
               formatter_class=argparse.RawDescriptionHelpFormatter,
               epilog="Defaults in brackets; --dataset demo changes some of them (see "
                      "cityscapes/trainer.py DEMO). Precedence: flags > --hparams > the run "
                      "continued by --weights last > demo > defaults.")
    a = p.add_argument
    a("--dataset", help=f"Cityscapes folder (leftImg8bit/, gtFine/) or 'demo' "
                        f"[${trainer.ENV_VAR}]")
    a("--weights", help="coco | imagenet | last | none | PATH to a .h5 [coco; demo: none]")
    a("--backbone", choices=trainer.BACKBONES, help=f"[{D['backbone']}; demo: {trainer.DEMO['backbone']}]")
    a("--optimizer", choices=trainer.OPTIMIZERS, help=f"[{D['optimizer']}; demo: adam]")
    a("--lr", type=float, help=f"base learning rate [{D['lr']:g}]")
    a("--momentum", type=float, help=f"SGD momentum, Adam beta_1 [{D['momentum']}]")
    a("--weight_decay", type=float, help=f"L2 factor [{D['weight_decay']:g}]")
    a("--epochs", type=int, help=f"last epoch, cumulative [{D['epochs']}]")
    a("--steps_per_epoch", type=int, help="[one pass over train]")
    a("--validation_steps", type=int, help="[one pass over val]")
    a("--layers", choices=list(trainer.LAYER_REGEX), help=f"layers to train [{D['layers']}]")
    a("--augment", choices=list(trainer.AUGMENTATIONS), help=f"[{D['augment']}]")
    a("--freeze", help="keep these fixed: rpn, fpn or rpn,fpn [none]")
    a("--images_per_gpu", type=int, help=f"[{D['images_per_gpu']}]")
    a("--image_min_dim", type=int, help=f"shorter side [{D['image_min_dim']}]")
    a("--image_max_dim", type=int, help=f"longer side at most [{D['image_max_dim']}]")
    a("--classes", help="comma-separated subset of the 10 instance classes [all]")
    a("--logs", help=f"folder of the run folders [{D['logs']}]")
    a("--early_stopping", type=int, metavar="PATIENCE",
      help="stop after PATIENCE epochs without a better val loss [0: off]")
    a("--schedule", help="stages LAYERS:EPOCH[xLR_FACTOR],... or 'matterport' "
                         "(heads:40,4+:120,all:160x0.1) [--layers to --epochs]")
    a("--hparams", metavar="FILE", help="JSON of option values, e.g. from python -m tuning")
    a("--gpus", type=int, help="train on N GPUs (MirroredStrategy) [1]")
    a("--mixed_precision", action="store_true", default=None,
      help="mixed_float16 with loss scaling")
    a("--seed", type=int, help="random seed [none; demo: 0]")
    a("--evaluate", action=argparse.BooleanOptionalAction, default=None,
      help="print val mask AP@0.5 of the best checkpoint at the end [demo only]")
    a("--eval_images", type=int, help="evaluate on the first N val images [all]")
    a("--mask_cache", help=f"mini-mask cache folder or 'none' [{D['mask_cache']}]")
    return p


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    explicit = {k: v for k, v in vars(args).items() if v is not None}
    try:
        plan = trainer.prepare(trainer.resolve_options(explicit))
        summary = trainer.run(plan)
    except trainer.UsageError as e:
        parser.error(str(e))
    except NonFiniteLossError as e:
        print(f"{parser.prog}: stopped: {e}", file=sys.stderr)
        return trainer.EXIT_NON_FINITE
    print(trainer.summary_line(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
