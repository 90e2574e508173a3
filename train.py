"""Train Mask R-CNN on Cityscapes (or the built-in synthetic demo).

    python train.py --dataset demo                       # CPU, minutes, prints val AP@0.5
    python train.py --weights coco --backbone resnet101  # $CITYSCAPES_DATASET
    python train.py --weights last                       # continue the latest run
    python train.py --schedule heads:40,4+:120,all:160x0.1 --early_stopping 3

Exit codes: 0 done (early stop included); 2 bad input, found before
training starts; 3 a loss became NaN / Inf (the last good checkpoint stays).
Options: cityscapes/options.py; the run: cityscapes/trainer.py and mrcnn/engine/.
"""

import sys

import cli
from cityscapes import options

EPILOG = ("Defaults in brackets; --dataset demo changes some (cityscapes/options.py DEMO: "
          + ", ".join(f"{k} {v}" for k, v in options.DEMO.items())
          + "). Precedence: flags > --hparams > the run continued by --weights last > demo > "
            "defaults; --epochs or --layers replace a schedule from a lower layer.")


def build_parser():
    parser = cli.Parser("train.py", __doc__, epilog=EPILOG)
    options.add_flags(parser)
    cli.add_cpu_devices_flag(parser)
    return parser


def work(args):
    from cityscapes import trainer
    from mrcnn.engine.devices import matmul_text
    from mrcnn.engine.run import summary_line

    o, resumed = options.resolve(options.given(args))
    options.check(o)
    print(f"{cli.startup_line(o.jit_compile, o.mixed_precision, o.gpus)}; {matmul_text()}",
          flush=True)
    summary = trainer.run(trainer.prepare(o, resumed))
    print(summary_line(summary))


def main(argv=None):
    return cli.main(build_parser(), work, argv)


if __name__ == "__main__":
    sys.exit(main())
