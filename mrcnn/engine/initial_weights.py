"""Where a run's first weights come from: one policy for every command.

    choice = choose("coco", backbone="resnet101", num_classes=11)   # checks, finds the file
    load(model, choice)                                               # into a MaskRCNN

A weights spec is one of

    "coco"      Matterport's COCO-trained mask_rcnn_coco.h5 (ResNet-101 only)
    "imagenet"  the keras-applications ImageNet backbone (ResNet-50 / -101)
    "last"      the checkpoint a run continues (`resume_from`)
    "none"      random initial weights
    PATH        any Matterport-layout .h5 (ours or Matterport's)

and the rules are:

- a file of another backbone than the model's is refused (the error names
  both: `WeightsError`), as are COCO weights for anything but ResNet-101
  and ImageNet weights for a backbone without published ones (resnet14);
- a file whose class count differs from the model's (COCO's 81 heads for
  11 Cityscapes classes) loads everything but the heads (`HEAD_LAYERS`);
- COCO / ImageNet files are found in the cache or downloaded
  (mrcnn/checkpoint/pretrained.py); without a network the error says where
  to get them;
- loading a checkpoint of a run continues that run: its folder and epoch
  (`MaskRCNN.load_weights`).
"""

import dataclasses
import os

from mrcnn.checkpoint import hdf5, pretrained
from mrcnn.config import IMAGENET_BACKBONES

KINDS = ("coco", "imagenet", "last", "none")
COCO_BACKBONE = "resnet101"
# The layers whose shapes depend on the number of classes.
HEAD_LAYERS = ("mrcnn_class_logits", "mrcnn_bbox_fc", "mrcnn_bbox", "mrcnn_mask")


class WeightsError(ValueError):
    """Weights that cannot be used for the model (the message says why)."""


@dataclasses.dataclass(frozen=True)
class InitialWeights:
    """What to load: `path` (None: random weights), whether it is an
    ImageNet backbone file, and the layers left out."""

    spec: str
    path: str = None
    imagenet: bool = False
    exclude: tuple = ()


def check_spec(spec, backbone):
    """WeightsError when `spec` cannot serve `backbone` (no file access
    beyond reading a PATH's layer names)."""
    if spec not in KINDS and not os.path.isfile(os.path.expanduser(spec)):
        raise WeightsError(f"no such file, and not one of {list(KINDS)}")
    if spec == "coco" and backbone != COCO_BACKBONE:
        raise WeightsError("Matterport's COCO weights are ResNet-101: use --backbone "
                           "resnet101, or --weights imagenet")
    if spec == "imagenet" and backbone not in IMAGENET_BACKBONES:
        raise WeightsError(f"no published ImageNet weights for {backbone} (there are for "
                           f"{', '.join(IMAGENET_BACKBONES)}): use --weights none to train it "
                           "from scratch")
    if spec not in KINDS:
        _check_file_backbone(os.path.expanduser(spec), backbone)


def _check_file_backbone(path, backbone):
    try:
        found = hdf5.file_backbone(path)
    except (OSError, hdf5.WeightsFileError) as e:
        raise WeightsError(str(e))
    if found and found != backbone:
        raise WeightsError(f"the file holds {found} weights but --backbone is {backbone}; "
                           f"pass --backbone {found}")


def weights_file(spec, backbone, resume_from=None, timeout=60):
    """The file a spec names (COCO / ImageNet found or downloaded), or None
    for "none". WeightsError when it cannot be had."""
    if spec in ("coco", "imagenet"):
        try:
            return pretrained.get_weights_file(spec, backbone, timeout=timeout)
        except (FileNotFoundError, ValueError) as e:
            raise WeightsError(str(e))
    if spec == "last":
        if resume_from is None:
            raise WeightsError("no run to continue")
        return resume_from
    return None if spec == "none" else os.path.expanduser(spec)


def choose(spec, backbone, num_classes, resume_from=None, timeout=60):
    """The InitialWeights of a spec for a model of `backbone` and
    `num_classes` (background included). WeightsError when unusable."""
    check_spec(spec, backbone)
    path = weights_file(spec, backbone, resume_from, timeout)
    if path is None:
        return InitialWeights(spec)
    if spec == "imagenet" or pretrained.is_imagenet_file(path):
        return InitialWeights(spec, path, imagenet=True)
    if spec == "last":  # a PATH was checked by check_spec; COCO is ResNet-101
        _check_file_backbone(path, backbone)
    try:
        found = hdf5.file_num_classes(path)
    except (OSError, hdf5.WeightsFileError) as e:
        raise WeightsError(str(e))
    exclude = HEAD_LAYERS if found not in (None, num_classes) else ()
    return InitialWeights(spec, path, exclude=exclude)


def load(model, choice):
    """Load an InitialWeights into a `MaskRCNN` (nothing for random weights).
    -> the LoadReport or None. WeightsError for a file that does not fit."""
    if choice.path is None:
        return None
    try:
        if choice.imagenet:
            return model.load_weights(choice.path)
        return model.load_weights(choice.path, by_name=True, exclude=list(choice.exclude) or None)
    except (ValueError, hdf5.WeightsFileError) as e:
        raise WeightsError(f"{choice.path}: {e}")
