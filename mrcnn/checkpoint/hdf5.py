"""Reading, writing and loading weights in the legacy Keras-2 HDF5 layout.

Matterport's published ``mask_rcnn_coco.h5`` and the keras-applications
ImageNet files (``resnet{50,101}_weights_tf_dim_ordering_tf_kernels_notop.h5``)
are Keras-2 weight files. Keras 3 reads its own ``.weights.h5`` layout and,
for legacy files, silently skips layers it cannot match by name, so this
module reads and writes the legacy layout itself and fails loudly on any
mismatch.

The layout (``f`` is the open HDF5 file)::

    f.attrs["layer_names"]    array of bytes, one per layer, in model order
                              (weightless layers included, with an empty group)
    f.attrs["backend"]        b"tensorflow"
    f.attrs["keras_version"]  e.g. b"2.2.4" (the Keras version that wrote it)
    f[layer]                  one group per layer
    f[layer].attrs["weight_names"]
                              array of bytes such as b"conv1/kernel:0"
    f[layer][weight_name]     the array; a "/" in weight_name makes nested
                              groups: f["conv1"]["conv1"]["kernel:0"]

Files written by Keras-2 ``model.save()`` hold the same thing under a root
group ``model_weights``. An attribute too big for an HDF5 object header
(64 KiB) is split by Keras 2 into ``name0``, ``name1``, ...; both forms are
read and the split form is written when needed.

A layer's weights are stored in ``layer.weights`` order: kernel, bias; for
BatchNormalization gamma, beta, moving_mean, moving_variance. A nested model
may be stored as one group: Matterport's ``rpn_model`` group holds
``rpn_conv_shared/kernel:0``, ``rpn_conv_shared/bias:0``,
``rpn_class_raw/...``, ``rpn_bbox_pred/...``. ``weight_groups`` maps a
Keras 3 model onto such groups.

Public API:
    read_legacy_h5, write_legacy_h5, check_readable    the file format
    weight_groups, group_weights, save_weights, load_weights, LoadReport
    imagenet_name_map, load_imagenet_weights
    file_layer_names, file_backbone, file_num_classes, first_names
    WeightsFileError, WeightsLoadError, UnknownLayersError

Where the files come from (cache, download): mrcnn/checkpoint/pretrained.py.
"""

import dataclasses
import os

import h5py
import keras
import numpy as np

from mrcnn import files
from mrcnn.config import IMAGENET_BACKBONES
from mrcnn.modeling.backbone import RESNET_BLOCKS

# keras-applications block conv index -> Matterport branch name.
_RESNET_BRANCHES = {0: "1", 1: "2a", 2: "2b", 3: "2c"}

# Keras 2 splits attributes bigger than this (HDF5 object header limit).
_HDF5_ATTR_LIMIT = 64512


class WeightsFileError(ValueError):
    """A file is not a readable weights file in the legacy Keras-2 layout."""


class WeightsLoadError(ValueError):
    """A weights file does not fit the model (unknown layers, wrong shapes)."""


class UnknownLayersError(WeightsLoadError):
    """A file with weights for layers the model does not have (`names`).

    hint: how to skip them on purpose, in the caller's words (the Python
    API's `exclude=[...]`; train.py's `--exclude REGEX`)."""

    def __init__(self, path, names, hint="Pass them in exclude=[...] to skip them on purpose."):
        self.path, self.names = path, list(names)
        super().__init__(f"{path} has weights for layers the model does not have: "
                         f"{first_names(self.names)}. {hint}")


@dataclasses.dataclass
class LoadReport:
    """What ``load_weights`` / ``load_imagenet_weights`` did.

    Attributes:
        path: the weights file.
        loaded: model group names that received weights, in load order.
        excluded: file group names skipped because of ``exclude``.
        missing_in_file: model group names (not excluded) that the file has
            no weights for; they keep their current values.
        renamed: file group name -> model group name, for groups loaded under
            another name (ImageNet renaming, or order-based loading).
    """

    path: str
    loaded: list
    excluded: list
    missing_in_file: list
    renamed: dict = dataclasses.field(default_factory=dict)

    def __str__(self):
        missing = self.missing_in_file
        named = f": {first_names(missing, total=False)}" if missing else ""
        extra = f", {len(self.renamed)} renamed" if self.renamed else ""
        return (
            f"Loaded {len(self.loaded)} layers from {self.path} "
            f"({len(self.excluded)} excluded, {len(missing)} not in file{named}{extra})"
        )


# --------------------------------------------------------------------------
# File format
# --------------------------------------------------------------------------


def _decode_names(values):
    """Attribute value (bytes/str array, possibly empty) -> list of str."""
    return [
        v.decode("utf8") if isinstance(v, bytes) else str(v)
        for v in np.atleast_1d(values)
    ]


def _read_name_attr(attrs, name):
    """Read a list-of-names attribute, joining Keras-2 chunks ``name0..N``.

    Returns None when the attribute is absent.
    """
    if name in attrs:
        return _decode_names(attrs[name])
    if f"{name}0" not in attrs:
        return None
    names, chunk = [], 0
    while f"{name}{chunk}" in attrs:
        names.extend(_decode_names(attrs[f"{name}{chunk}"]))
        chunk += 1
    return names


def _write_name_attr(attrs, name, names):
    """Write a list of str as a bytes array, chunked like Keras 2 if too big."""
    data = np.array([n.encode("utf8") for n in names], dtype=bytes)
    if data.size == 0:
        attrs[name] = np.array([], dtype="S1")
        return
    if data.itemsize > _HDF5_ATTR_LIMIT:
        raise ValueError(f"Name too long for an HDF5 attribute in {name!r}")
    num_chunks = 1
    chunks = [data]
    while any(c.nbytes > _HDF5_ATTR_LIMIT for c in chunks):
        num_chunks += 1
        chunks = np.array_split(data, num_chunks)
    if num_chunks == 1:
        attrs[name] = data
    else:
        for i, chunk in enumerate(chunks):
            attrs[f"{name}{i}"] = chunk


def _open_h5(path):
    """An h5py.File for reading, or FileNotFoundError / WeightsFileError."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"Weights file not found: {path}")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise WeightsFileError(f"{path} is not a readable HDF5 file: {exc}") from exc


def _layer_names(f, path):
    """(group holding the layers, their names) of an open Keras-2 weights file."""
    root = f
    if _read_name_attr(f.attrs, "layer_names") is None and "model_weights" in f:
        root = f["model_weights"]
    layer_names = _read_name_attr(root.attrs, "layer_names")
    if layer_names is None:
        hint = ""
        if "layers" in f or "vars" in f:
            hint = (
                " It looks like a Keras 3 '.weights.h5' file: load it with "
                "keras' model.load_weights()."
            )
        raise WeightsFileError(
            f"{path} is not a Keras-2 HDF5 weights file: no 'layer_names' "
            f"attribute at the root or under 'model_weights'.{hint}"
        )
    return root, layer_names


def file_layer_names(path):
    """Names of the layers of a weights file that hold weights, in file
    order. Reads the names only (quick even for a 250 MB file)."""
    path = os.fspath(path)
    with _open_h5(path) as f:
        root, names = _layer_names(f, path)
        return [n for n in names
                if n in root and _read_name_attr(root[n].attrs, "weight_names")]


def file_backbone(path):
    """The ResNet of a Matterport-layout weights file, from its layer names.

    -> "resnet14" | "resnet50" | "resnet101" (by the number of stage-4
    blocks, res4a...), or None when the file has no stage-4 layers (e.g.
    heads only). Reads the names only, so it is quick even for a 250 MB file.
    """
    path = os.fspath(path)
    with _open_h5(path) as f:
        _, names = _layer_names(f, path)
    blocks = {n[4] for n in names if n.startswith("res4") and n.endswith("_branch2a")}
    for backbone, counts in RESNET_BLOCKS.items():
        if len(blocks) == counts[2]:
            return backbone
    return None


def file_num_classes(path):
    """NUM_CLASSES of a weights file's classifier (mrcnn_class_logits), or None."""
    path = os.fspath(path)
    with _open_h5(path) as f:
        root, names = _layer_names(f, path)
        if "mrcnn_class_logits" not in names:
            return None
        group = root["mrcnn_class_logits"]
        kernels = [n for n in _read_name_attr(group.attrs, "weight_names") or []
                   if "kernel" in n]
        return int(group[kernels[0]].shape[-1]) if kernels else None


def read_legacy_h5(path):
    """Read a legacy Keras-2 HDF5 weights file.

    Args:
        path: str or os.PathLike, a Keras-2 ``save_weights`` file, or a
            Keras-2 ``model.save`` file (weights under ``model_weights``).

    Returns:
        list of ``(layer_name, [(weight_name, array), ...])`` in file order.
        Layers without weights are included with an empty list (Keras 2
        stores every layer); loaders ignore them. ``weight_name`` is the name
        as stored, e.g. ``"conv1/kernel:0"``; arrays keep the file dtype.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        WeightsFileError: not an HDF5 file, not this layout, or damaged
            (truncated, or an array whose checksum does not match).
    """
    return list(_iter_legacy_h5(os.fspath(path)))


def check_readable(path):
    """Read every array of a weights file once (checksums verified), keeping
    none. FileNotFoundError / WeightsFileError as ``read_legacy_h5``."""
    for _ in _iter_legacy_h5(os.fspath(path)):
        pass


def _iter_legacy_h5(path):
    """``read_legacy_h5``'s groups, one at a time."""
    with _open_h5(path) as f:
        root, layer_names = _layer_names(f, path)
        for layer in layer_names:
            if layer not in root or not isinstance(root[layer], h5py.Group):
                raise WeightsFileError(
                    f"{path}: layer {layer!r} is listed in 'layer_names' but has "
                    f"no group in the file."
                )
            group = root[layer]
            weight_names = _read_name_attr(group.attrs, "weight_names")
            if weight_names is None:
                raise WeightsFileError(
                    f"{path}: layer group {layer!r} has no 'weight_names' attribute."
                )
            weights = []
            for name in weight_names:
                if name not in group or not isinstance(group[name], h5py.Dataset):
                    raise WeightsFileError(
                        f"{path}: weight {name!r} of layer {layer!r} is listed in "
                        f"'weight_names' but has no dataset in the file."
                    )
                try:
                    value = np.asarray(group[name][()])
                except OSError as exc:  # a checksum mismatch, a read past the end
                    raise WeightsFileError(
                        f"{path}: weight {name!r} of layer {layer!r} cannot be read, the "
                        f"file is damaged ({exc})") from exc
                weights.append((name, value))
            yield layer, weights


def write_legacy_h5(path, groups, progress=None):
    """Write weights in the legacy Keras-2 HDF5 layout, atomically.

    Through ``files.atomic_path``: an interrupted write leaves any previous
    file at ``path`` untouched and no temporary file behind. Every array
    (but scalars and empty ones) is stored with HDF5's Fletcher-32 checksum,
    so damaged bytes make a read fail (``check_readable``) rather than load
    garbage; any HDF5 reader (Keras 2's included) verifies it transparently.

    Args:
        path: str or os.PathLike, destination file.
        groups: iterable of ``(layer_name, [(weight_name, array), ...])`` in
            the order to store; ``weight_name`` like ``"conv1/kernel:0"``.
        progress: None, or ``progress(written, total)`` called after each
            layer group is written and flushed to the temporary file (the
            fault-injection test hook, mrcnn/engine/faults.py).

    Raises:
        ValueError: duplicate layer names, or duplicate weight names in a layer.
    """
    path = os.fspath(path)
    groups = [(layer, list(weights)) for layer, weights in groups]
    _check_unique([layer for layer, _ in groups], "layer names", path)
    for layer, weights in groups:
        _check_unique([n for n, _ in weights], f"weight names in layer {layer!r}", path)

    with files.atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        _write_name_attr(f.attrs, "layer_names", [layer for layer, _ in groups])
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = keras.__version__.encode("utf8")
        for done, (layer, weights) in enumerate(groups, 1):
            group = f.create_group(layer)
            _write_name_attr(group.attrs, "weight_names", [n for n, _ in weights])
            for name, value in weights:
                value = np.asarray(value)
                group.create_dataset(name, data=value, fletcher32=bool(value.ndim and value.size))
            if progress is not None:
                f.flush()
                progress(done, len(groups))


def _check_unique(names, what, path):
    """Raise ValueError naming the duplicates in ``names``."""
    seen, dups = set(), []
    for n in names:
        if n in seen and n not in dups:
            dups.append(n)
        seen.add(n)
    if dups:
        raise ValueError(f"Duplicate {what} for {path}: {dups}")


# --------------------------------------------------------------------------
# Model side
# --------------------------------------------------------------------------


def _sublayers(layer):
    """Direct sub-layers of a Keras 3 layer/model, in tracking order."""
    return layer._flatten_layers(include_self=False, recursive=False)


def _is_single_group(layer, grouped):
    """True if ``layer`` is stored as one group rather than flattened."""
    if layer.name in grouped or isinstance(layer, keras.layers.Wrapper):
        return True
    subs = [s for s in _sublayers(layer) if s.weights]
    if not subs:
        return True
    sub_ids = {id(v) for s in subs for v in s.weights}
    # Own variables besides sub-layers' ones: cannot be split off, keep whole.
    return any(id(v) not in sub_ids for v in layer.weights)


def weight_groups(model, grouped=("rpn_model",)):
    """The weight groups of a model, in the order they are stored.

    Sub-layers are walked recursively in tracking order (functional models:
    layer order). A layer whose name is in ``grouped`` is one group holding
    all its sub-layers' weights (Matterport's nested ``rpn_model``). Other
    layers with weighted sub-layers are recursed into (nested functional
    models, Layer subclasses holding named sub-layers). Layers without
    weighted sub-layers are one group each, as are wrappers such as
    TimeDistributed (named after the wrapper, as Keras 2 did) and layers that
    own variables besides their sub-layers' ones. Shared layers count once.

    Args:
        model: a built keras Model (or Layer).
        grouped: names of sub-layers to keep whole.

    Returns:
        list of ``(group_name, layer)``; weightless layers are left out. The
        stored weight names of a group are given by ``group_weights``.

    Raises:
        ValueError: two different groups have the same name.
    """
    grouped = tuple(grouped)
    groups, seen = [], set()

    def visit(layer):
        if id(layer) in seen or not layer.weights:
            return
        seen.add(id(layer))
        if _is_single_group(layer, grouped):
            groups.append((layer.name, layer))
            return
        for sub in _sublayers(layer):
            visit(sub)

    for sub in _sublayers(model):
        visit(sub)
    _check_unique([name for name, _ in groups], "weight group names", model.name)
    return groups


def group_weights(layer):
    """Stored weight names and variables of one group from ``weight_groups``.

    Each variable is named ``f"{leaf.name}/{variable.name}:0"`` after the
    leaf layer owning it, e.g. ``"rpn_conv_shared/kernel:0"`` inside the
    ``rpn_model`` group; a wrapper such as TimeDistributed counts as the leaf,
    as in Keras 2. Order follows ``layer.weights``: own variables, then each
    weighted sub-layer's, recursively.

    Args:
        layer: the layer of a ``(group_name, layer)`` pair.

    Returns:
        list of ``(weight_name, keras.Variable)``.
    """
    subs = [s for s in _sublayers(layer) if s.weights]
    if isinstance(layer, keras.layers.Wrapper) or not subs:
        return [(f"{layer.name}/{v.name}:0", v) for v in layer.weights]
    sub_ids = {id(v) for s in subs for v in s.weights}
    named = [(f"{layer.name}/{v.name}:0", v) for v in layer.weights if id(v) not in sub_ids]
    for sub in subs:
        named.extend(group_weights(sub))
    seen, unique = set(), []
    for name, v in named:
        if id(v) not in seen:
            seen.add(id(v))
            unique.append((name, v))
    return unique


def save_weights(model, path, progress=None):
    """Save ``model``'s weights to ``path`` in the legacy Keras-2 layout.

    Groups come from ``weight_groups(model)``; the write is atomic (see
    ``write_legacy_h5``, also for ``progress``). Files written here load
    into Matterport's Keras-2 code and back with ``load_weights``.

    Raises:
        ValueError: the model has no weights (not built yet).
    """
    groups = weight_groups(model)
    if not groups:
        raise ValueError(
            f"Model {model.name!r} has no weights to save to {os.fspath(path)} "
            f"(is it built?)"
        )
    write_legacy_h5(
        path,
        [
            (name, [(w, keras.ops.convert_to_numpy(v)) for w, v in group_weights(layer)])
            for name, layer in groups
        ],
        progress,
    )


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------


def first_names(names, n=10, total=True):
    """'a, b, c' for up to n names, with a count when there are more (and
    the total when `total`)."""
    shown = ", ".join(repr(x) for x in names[:n])
    more = f" ... and {len(names) - n} more" if len(names) > n else ""
    return f"{shown}{more} ({len(names)} in all)" if total else f"{shown}{more}"


def _match_group(file_name, file_weights, model_name, model_weights):
    """Pair file arrays with model variables; return (pairs, problems)."""
    if len(file_weights) != len(model_weights):
        return [], [
            f"layer {model_name!r}: the file group {file_name!r} has "
            f"{len(file_weights)} weights {[n for n, _ in file_weights]}, the model "
            f"has {len(model_weights)} {[n for n, _ in model_weights]}"
        ]
    pairs, problems = [], []
    for (fname, value), (mname, var) in zip(file_weights, model_weights):
        var_dtype = np.dtype(var.dtype)
        if tuple(value.shape) != tuple(var.shape):
            problems.append(
                f"layer {model_name!r}: weight {fname!r} has shape {tuple(value.shape)} "
                f"in the file but {mname!r} has shape {tuple(var.shape)} in the model"
            )
        elif not np.can_cast(value.dtype, var_dtype, casting="same_kind"):
            problems.append(
                f"layer {model_name!r}: weight {fname!r} has dtype {value.dtype} in "
                f"the file, which cannot be cast to {mname!r}'s dtype {var_dtype}"
            )
        else:
            pairs.append((var, value.astype(var_dtype, copy=False)))
    return pairs, problems


def _load_groups(model, file_groups, path, by_name, exclude, renamed=None):
    """Check ``file_groups`` against ``model``, then assign all or nothing."""
    exclude = {exclude} if isinstance(exclude, str) else set(exclude or ())
    file_groups = [(n, w) for n, w in file_groups if w]
    model_groups = [
        (name, group_weights(layer)) for name, layer in weight_groups(model)
    ]
    if not model_groups:
        raise WeightsLoadError(
            f"Cannot load {path}: model {model.name!r} has no weights (is it built?)"
        )
    excluded = [n for n, _ in file_groups if n in exclude]
    file_groups = [(n, w) for n, w in file_groups if n not in exclude]
    model_groups = [(n, w) for n, w in model_groups if n not in exclude]
    renamed = dict(renamed or {})

    if by_name:
        model_by_name = dict(model_groups)
        unknown = [n for n, _ in file_groups if n not in model_by_name]
        if unknown:
            raise UnknownLayersError(path, unknown)
        pairs_of = [(n, w, n, model_by_name[n]) for n, w in file_groups]
    else:
        if len(file_groups) != len(model_groups):
            raise WeightsLoadError(
                f"{path} has {len(file_groups)} weighted layers (after exclude) but the "
                f"model has {len(model_groups)}; loading by order needs equal counts. "
                f"Use by_name=True to load matching names only."
            )
        pairs_of = [
            (fn, fw, mn, mw) for (fn, fw), (mn, mw) in zip(file_groups, model_groups)
        ]
        renamed.update({fn: mn for fn, _, mn, _ in pairs_of if fn != mn})

    assignments, problems = [], []
    for fname, fweights, mname, mweights in pairs_of:
        pairs, errs = _match_group(fname, fweights, mname, mweights)
        assignments.extend(pairs)
        problems.extend(errs)
    if problems:
        shown = "\n  ".join(problems[:10])
        more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
        raise WeightsLoadError(
            f"{path} does not fit model {model.name!r} ({len(problems)} problems, "
            f"nothing was loaded):\n  {shown}{more}"
        )
    for var, value in assignments:
        var.assign(value)
    loaded = [mname for _, _, mname, _ in pairs_of]
    loaded_set = set(loaded)
    return LoadReport(
        path=path,
        loaded=loaded,
        excluded=excluded,
        missing_in_file=[n for n, _ in model_groups if n not in loaded_set],
        renamed=renamed,
    )


def load_weights(model, path, by_name=False, exclude=None):
    """Load a legacy Keras-2 HDF5 weights file into ``model``, strictly.

    Nothing is assigned unless the whole file fits. Weightless file groups
    are ignored; file groups named in ``exclude`` are skipped.

    by_name=True: every other file group must be a group of the model (see
        ``weight_groups``) with the same number of weights and the same
        shapes. Unlike Keras' ``load_weights(by_name=True)``, unknown names
        are an error. Model groups absent from the file keep their values and
        are listed in ``report.missing_in_file`` (e.g. heads when loading a
        backbone).
    by_name=False: file groups and model groups (both minus ``exclude``) are
        paired in order; counts and shapes must match. Only shapes are
        checked, so use this only for files written from the same model code.

    Args:
        model: a built keras Model.
        path: str or os.PathLike of the .h5 file.
        by_name: match groups by name rather than by order.
        exclude: iterable of group names to skip (e.g. the class-specific
            heads ``["mrcnn_class_logits", "mrcnn_bbox_fc", "mrcnn_bbox",
            "mrcnn_mask"]`` when training on other classes).

    Returns:
        LoadReport.

    Raises:
        FileNotFoundError: no file at ``path``.
        WeightsFileError: the file is not in the legacy layout.
        WeightsLoadError: the file does not fit the model; the message names
            the file, the layers and, for shapes, file and model shapes.
    """
    path = os.fspath(path)
    return _load_groups(model, read_legacy_h5(path), path, by_name, exclude)


# --------------------------------------------------------------------------
# ImageNet backbone
# --------------------------------------------------------------------------


def _check_backbone(backbone):
    if backbone not in IMAGENET_BACKBONES:
        raise ValueError(
            f"No keras-applications ImageNet ResNet for backbone {backbone!r}; "
            f"expected one of {list(IMAGENET_BACKBONES)}"
        )


def imagenet_name_map(backbone):
    """keras-applications ResNet v1 layer names -> Matterport layer names.

    ``conv1_conv`` -> ``conv1``, ``conv1_bn`` -> ``bn_conv1``,
    ``conv{s}_block{b}_{k}_conv`` -> ``res{s}{letter}_branch{br}`` and
    ``..._bn`` -> ``bn{s}{letter}_branch{br}``, letter = a, b, c, ... for
    block 1, 2, 3, ... and br = 1 (k=0, shortcut), 2a, 2b, 2c (k=1, 2, 3).

    Args:
        backbone: "resnet50" or "resnet101".

    Returns:
        dict covering every weighted layer of
        ``keras.applications.ResNet50/ResNet101(include_top=False)``.
    """
    _check_backbone(backbone)
    names = {"conv1_conv": "conv1", "conv1_bn": "bn_conv1"}
    for stage, blocks in enumerate(RESNET_BLOCKS[backbone], start=2):
        for block in range(1, blocks + 1):
            letter = chr(ord("a") + block - 1)
            # Only the first block of a stage has a shortcut conv (k=0).
            for k in range(0 if block == 1 else 1, 4):
                branch = _RESNET_BRANCHES[k]
                src = f"conv{stage}_block{block}_{k}"
                names[f"{src}_conv"] = f"res{stage}{letter}_branch{branch}"
                names[f"{src}_bn"] = f"bn{stage}{letter}_branch{branch}"
    return names


def load_imagenet_weights(model, path, backbone):
    """Load keras-applications ImageNet ResNet weights into a Matterport model.

    The file's weighted groups are renamed with ``imagenet_name_map`` (groups
    already named the Matterport way, as in the older fchollet
    deep-learning-models files, are kept) and loaded strictly by name: every
    renamed group must exist in the model with matching shapes; the heads
    (model groups not in the file) are reported in ``missing_in_file``.

    Args:
        model: a built keras Model with Matterport layer names.
        path: str or os.PathLike of
            ``resnet{50,101}_weights_tf_dim_ordering_tf_kernels_notop.h5``.
        backbone: "resnet50" or "resnet101".

    Returns:
        LoadReport, ``renamed`` mapping file names to model names.

    Raises:
        FileNotFoundError, WeightsFileError: as ``read_legacy_h5``.
        WeightsLoadError: a weighted file layer has no Matterport name, or the
            file does not fit the model.
    """
    path = os.fspath(path)
    name_map = imagenet_name_map(backbone)
    matterport_names = set(name_map.values())
    groups, renamed, unmapped = [], {}, []
    for name, weights in read_legacy_h5(path):
        if not weights:
            continue
        if name in name_map:
            renamed[name] = name_map[name]
            groups.append((name_map[name], weights))
        elif name in matterport_names:
            groups.append((name, weights))
        else:
            unmapped.append(name)
    if unmapped:
        raise WeightsLoadError(
            f"{path} has weighted layers that are not {backbone} ImageNet layers "
            f"(no Matterport name for them): {first_names(unmapped)}"
        )
    _check_unique([n for n, _ in groups], "layer names after renaming", path)
    return _load_groups(model, groups, path, by_name=True, exclude=None, renamed=renamed)

