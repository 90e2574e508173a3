"""Keras Tuner Hyperband sweeps of Mask R-CNN on Cityscapes (`python -m tuning`).

tuning/ builds on cityscapes/ and mrcnn/ (never the other way round):

    spaces.py      search spaces: coarse and fine stages, file overrides, trial -> options
    objectives.py  val_loss (min) or val_ap (max), the worst score of a diverged trial
    hypermodel.py  MaskRCNNHyperModel: build(hp) -> MaskRCNN; fit(hp, model, epochs=,
                   initial_epoch=, callbacks=) trains it and returns the trial's metrics
    callbacks.py   per-trial callbacks: val AP, epochs.jsonl, checkpoint pruning
    oracle.py      Keras Tuner's Hyperband oracle with atomic state files
    tuner.py       SweepTuner: Hyperband continuation from checkpoints, resume, chief / worker
    layout.py      where a sweep's files live
    results.py     best trials -> results.md / results.json, --export_best for train.py --hparams
    sweep.py       settings -> checks, datasets, tuner, search, results
    __main__.py    the command line
"""
