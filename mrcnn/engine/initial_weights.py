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
- `exclude` (train.py's `--exclude REGEX`, matched against whole layer
  names) leaves more layers out, as Matterport's `exclude=[...]`; a regex
  that matches no layer of the model or of the file is an error;
- a file must hold every other layer of the model (`check_complete`): one
  that lacks some (e.g. a deleted `mrcnn_mask` head) is refused, naming
  them, unless `allow_partial` (a deliberate partial load); the ImageNet
  files, which hold a backbone only, are exempt. Checkpoints to detect with
  (mrcnn/engine/inference.py) follow the same rule;
- COCO / ImageNet files are found in the cache or downloaded
  (mrcnn/checkpoint/pretrained.py); without a network the error says where
  to get them;
- loading a checkpoint of a run continues that run: its folder and epoch
  (`MaskRCNN.load_weights`).
"""

import dataclasses
import os
import re

from mrcnn.checkpoint import hdf5, pretrained
from mrcnn.config import IMAGENET_BACKBONES

KINDS = ("coco", "imagenet", "last", "none")
COCO_BACKBONE = "resnet101"
# The layers whose shapes depend on the number of classes.
HEAD_LAYERS = ("mrcnn_class_logits", "mrcnn_bbox_fc", "mrcnn_bbox", "mrcnn_mask")


class WeightsError(ValueError):
    """Weights that cannot be used for the model (the message says why)."""


class PartialWeightsError(WeightsError):
    """A weights file without weights for some layers of the model."""


@dataclasses.dataclass(frozen=True)
class InitialWeights:
    """What to load: `path` (None: random weights), whether it is an
    ImageNet backbone file, the layers the policy leaves out (`exclude`),
    the user's regex of more (`exclude_regex`), and whether layers may be
    missing from the file (`allow_partial`)."""

    spec: str
    path: str = None
    imagenet: bool = False
    exclude: tuple = ()
    exclude_regex: str = None
    allow_partial: bool = False


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


def check_exclude(spec, regex):
    """WeightsError when `regex` (--exclude) is not a regex or `spec` loads
    no Matterport-layout file to exclude layers from."""
    if not regex:
        return
    if spec in ("none", "imagenet"):
        raise WeightsError(f"--weights {spec} loads no Matterport-layout file to exclude layers "
                           "from (--exclude is for coco, last or a PATH)")
    try:
        re.compile(regex)
    except re.error as e:
        raise WeightsError(f"not a regular expression: {e}")


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


def choose(spec, backbone, num_classes, resume_from=None, timeout=60, exclude=None,
           allow_partial=False):
    """The InitialWeights of a spec for a model of `backbone` and
    `num_classes` (background included); `exclude`: a regex of layer names
    not to load; `allow_partial`: accept a file that lacks layers of the
    model. WeightsError when unusable."""
    check_spec(spec, backbone)
    check_exclude(spec, exclude)
    path = weights_file(spec, backbone, resume_from, timeout)
    if path is None:
        return InitialWeights(spec)
    if spec == "imagenet" or pretrained.is_imagenet_file(path):
        if exclude:
            raise WeightsError(f"{path} is an ImageNet backbone file: --exclude is for "
                               "Matterport-layout files")
        return InitialWeights(spec, path, imagenet=True)
    if spec == "last":  # a PATH was checked by check_spec; COCO is ResNet-101
        _check_file_backbone(path, backbone)
    try:
        found = hdf5.file_num_classes(path)
    except (OSError, hdf5.WeightsFileError) as e:
        raise WeightsError(str(e))
    heads = HEAD_LAYERS if found not in (None, num_classes) else ()
    return InitialWeights(spec, path, exclude=heads, exclude_regex=exclude or None,
                          allow_partial=bool(allow_partial))


def excluded_layers(model, path, regex):
    """The weighted layers of `model` (a MaskRCNN) and of the file at `path`
    whose whole name matches `regex`. WeightsError when there are none."""
    names = [n for n, _ in hdf5.weight_groups(model.keras_model)]
    try:
        names += hdf5.file_layer_names(path)
    except (OSError, hdf5.WeightsFileError) as e:
        raise WeightsError(str(e))
    matched = [n for n in dict.fromkeys(names) if re.fullmatch(regex, n)]
    if not matched:
        raise WeightsError(f"--exclude {regex}: matches no layer of the model or of {path} "
                           "(the regex must match whole layer names, e.g. 'mrcnn_mask.*')")
    return matched


def check_complete(report, allow_partial=False):
    """PartialWeightsError when a load (`report`, a LoadReport) left layers
    of the model without weights from the file, unless `allow_partial`."""
    missing = report.missing_in_file
    if missing and not allow_partial:
        raise PartialWeightsError(
            f"{report.path} has no weights for {len(missing)} layers of the model: "
            f"{hdf5.first_names(missing)}; they would keep their initial (random) values. "
            "Pass --allow_partial to load it anyway")


def _exclude_hint(names):
    example = "|".join(re.escape(n) for n in names) if len(names) <= 3 else "REGEX"
    return f"Pass --exclude '{example}' (a regex of layer names) to skip them on purpose."


def load(model, choice):
    """Load an InitialWeights into a `MaskRCNN` (nothing for random weights).
    -> the LoadReport or None. WeightsError for a file that does not fit,
    PartialWeightsError for one that lacks layers (see `check_complete`)."""
    if choice.path is None:
        return None
    exclude = list(choice.exclude)
    if choice.exclude_regex:
        exclude += excluded_layers(model, choice.path, choice.exclude_regex)
    try:
        if choice.imagenet:
            return model.load_weights(choice.path)
        report = model.load_weights(choice.path, by_name=True, exclude=exclude or None)
    except hdf5.UnknownLayersError as e:
        raise WeightsError(str(hdf5.UnknownLayersError(e.path, e.names, _exclude_hint(e.names))))
    except (ValueError, hdf5.WeightsFileError) as e:
        raise WeightsError(f"{choice.path}: {e}")
    check_complete(report, choice.allow_partial)
    return report
