"""Where pretrained weight files come from: a local cache, else a download.

Matterport's COCO-trained ``mask_rcnn_coco.h5`` (ResNet-101) and the
keras-applications ImageNet ResNet-50/101 "no top" files. They are looked
for in ``$MRCNN_WEIGHTS_DIR`` (default ``~/.keras/models``); a missing file is
downloaded there (atomically, checked to be HDF5) when the network allows,
otherwise the error says where to get it and where to put it.
"""

import os
import re
import shutil
import urllib.request

from mrcnn import files
from mrcnn.config import IMAGENET_BACKBONES

COCO_WEIGHTS_URL = (
    "https://github.com/matterport/Mask_RCNN/releases/download/v2.0/mask_rcnn_coco.h5"
)
IMAGENET_WEIGHTS_URL_TEMPLATE = (
    "https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
    "{backbone}_weights_tf_dim_ordering_tf_kernels_notop.h5"
)
# The classes of Matterport's COCO weights, by class id (0 is the background):
# the 80 COCO categories in the order of their COCO ids, numbered 1..80.
COCO_CLASS_NAMES = (
    "BG", "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck",
    "boat", "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird",
    "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack",
    "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball",
    "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket",
    "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair",
    "couch", "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse",
    "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
    "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier",
    "toothbrush",
)
WEIGHTS_DIR_ENV = "MRCNN_WEIGHTS_DIR"
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_IMAGENET_FILE_RE = re.compile(r"resnet(50|101)_weights_tf_dim_ordering_tf_kernels_notop\.h5")


def imagenet_weights_url(backbone):
    """URL of the keras-applications ImageNet no-top weights for ``backbone``."""
    if backbone not in IMAGENET_BACKBONES:
        raise ValueError(f"No published ImageNet weights for backbone {backbone!r}; "
                         f"they exist for {list(IMAGENET_BACKBONES)}")
    return IMAGENET_WEIGHTS_URL_TEMPLATE.format(backbone=backbone)


def is_imagenet_file(path):
    """Whether a file is a keras-applications ImageNet ResNet file (by its
    published name), whose layers load through `hdf5.imagenet_name_map`."""
    return bool(_IMAGENET_FILE_RE.fullmatch(os.path.basename(path)))


def default_cache_dir():
    """Folder for downloaded weights: ``$MRCNN_WEIGHTS_DIR``, else ~/.keras/models."""
    return os.environ.get(WEIGHTS_DIR_ENV) or os.path.join(
        os.path.expanduser("~"), ".keras", "models"
    )


def _weights_source(kind, backbone):
    """(file name, URL, description) of a known weights file."""
    if kind == "coco":
        if backbone != "resnet101":
            raise ValueError(
                f"COCO weights exist only for backbone 'resnet101' "
                f"(Matterport's mask_rcnn_coco.h5), not {backbone!r}"
            )
        return "mask_rcnn_coco.h5", COCO_WEIGHTS_URL, "COCO-trained Mask R-CNN weights"
    if kind == "imagenet":
        url = imagenet_weights_url(backbone)
        return url.rsplit("/", 1)[1], url, f"ImageNet {backbone} backbone weights"
    raise ValueError(f"Unknown weights kind {kind!r}; expected 'coco' or 'imagenet'")


def _download(url, dest, timeout):
    """Download ``url`` to ``dest`` atomically; check it is an HDF5 file."""
    with files.atomic_path(dest) as tmp:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
            shutil.copyfileobj(response, out)
            expected = response.headers.get("Content-Length")
            size = out.tell()
        if expected is not None and int(expected) != size:
            raise OSError(f"incomplete download: got {size} of {expected} bytes")
        with open(tmp, "rb") as fh:
            if fh.read(len(_HDF5_SIGNATURE)) != _HDF5_SIGNATURE:
                raise OSError("the downloaded data is not an HDF5 file")


def get_weights_file(kind, backbone="resnet101", cache_dir=None, download=True, timeout=60):
    """Path of a known weights file, from the cache or downloaded into it.

    Args:
        kind: "coco" (Matterport's mask_rcnn_coco.h5, resnet101 only) or
            "imagenet" (keras-applications ResNet no-top weights).
        backbone: "resnet50" or "resnet101".
        cache_dir: folder to look in and download to; default
            ``default_cache_dir()``.
        download: if False, only look in the cache.
        timeout: seconds for the download connection.

    Returns:
        str, path of the file in ``cache_dir``.

    Raises:
        ValueError: unknown kind/backbone, or coco with resnet50.
        FileNotFoundError: not cached and not downloaded; the message says
            where it was looked for, the URL, and where to put it.
    """
    filename, url, what = _weights_source(kind, backbone)
    cache_dir = os.fspath(cache_dir) if cache_dir is not None else default_cache_dir()
    dest = os.path.join(cache_dir, filename)
    if os.path.isfile(dest):
        return dest
    if not download:
        raise FileNotFoundError(
            _missing_message(what, filename, url, dest, "downloading is off (download=False)")
        )
    return download_weights(kind, dest, backbone, timeout)


def download_weights(kind, dest, backbone="resnet101", timeout=60):
    """Download a known weights file (see `get_weights_file`) to the path
    `dest`, whatever its file name, replacing a file there; -> dest.

    Raises FileNotFoundError with the how-to message when it fails.
    """
    filename, url, what = _weights_source(kind, backbone)
    try:
        _download(url, dest, timeout)
    except Exception as exc:  # any failure becomes the how-to message
        reason = f"the download failed ({type(exc).__name__}: {exc})"
        raise FileNotFoundError(_missing_message(what, filename, url, dest, reason)) from exc
    return dest


def _missing_message(what, filename, url, dest, reason):
    """Message for a weights file that is neither cached nor downloaded."""
    return (
        f"{what} not found: looked for {dest}, and {reason}. Download {filename} by "
        f"hand from {url} and put it at {dest} (or in the folder named by "
        f"${WEIGHTS_DIR_ENV}), or pass the path of the .h5 file directly."
    )
