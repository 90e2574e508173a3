"""Tests for mrcnn.checkpoint.hdf5: the legacy Keras-2 HDF5 layout and strict loading.

Reference files are written here with raw h5py (not with mrcnn.checkpoint.hdf5), so
the reader is checked against the format itself. Models are small toys with
Matterport layer names; the ImageNet tests build keras-applications ResNets
with random weights (no download).
"""

import os
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

from mrcnn.checkpoint import hdf5 as W

DATA = Path(__file__).resolve().parents[2] / "data"

# TensorFlow tensors' __array__ predates numpy 2's copy keyword; not ours.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def make_toy_model():
    """conv1 -> bn_conv1 -> rpn_model(rpn_conv_shared, rpn_class_raw) -> logits."""
    rpn_in = keras.Input((None, None, 8))
    shared = keras.layers.Conv2D(16, 3, padding="same", name="rpn_conv_shared")(rpn_in)
    rpn_out = keras.layers.Conv2D(6, 1, name="rpn_class_raw")(shared)
    rpn = keras.Model(rpn_in, rpn_out, name="rpn_model")

    inp = keras.Input((16, 16, 3), name="input_image")
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv1")(inp)
    x = keras.layers.BatchNormalization(name="bn_conv1")(x)
    x = rpn(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    out = keras.layers.Dense(5, name="mrcnn_class_logits")(x)
    return keras.Model(inp, out, name="toy")


# The toy model's layout as Keras 2 / Matterport store it, written by hand.
TOY_LAYOUT = [
    ("input_image", []),
    ("conv1", [("conv1/kernel:0", (3, 3, 3, 8)), ("conv1/bias:0", (8,))]),
    (
        "bn_conv1",
        [
            ("bn_conv1/gamma:0", (8,)),
            ("bn_conv1/beta:0", (8,)),
            ("bn_conv1/moving_mean:0", (8,)),
            ("bn_conv1/moving_variance:0", (8,)),
        ],
    ),
    (
        "rpn_model",
        [
            ("rpn_conv_shared/kernel:0", (3, 3, 8, 16)),
            ("rpn_conv_shared/bias:0", (16,)),
            ("rpn_class_raw/kernel:0", (1, 1, 16, 6)),
            ("rpn_class_raw/bias:0", (6,)),
        ],
    ),
    ("pool", []),
    (
        "mrcnn_class_logits",
        [("mrcnn_class_logits/kernel:0", (6, 5)), ("mrcnn_class_logits/bias:0", (5,))],
    ),
]


def random_layout(layout, seed=0):
    """Fill a [(layer, [(weight_name, shape)])] layout with random float32."""
    rng = np.random.default_rng(seed)
    return [
        (layer, [(n, rng.standard_normal(shape).astype(np.float32)) for n, shape in ws])
        for layer, ws in layout
    ]


def write_raw_legacy(path, layers, under_model_weights=False):
    """Write a Keras-2 weights file with plain h5py, the way Keras 2 does."""
    with h5py.File(path, "w") as f:
        root = f.create_group("model_weights") if under_model_weights else f
        root.attrs["layer_names"] = np.array([n.encode("utf8") for n, _ in layers])
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.2.4"
        for name, ws in layers:
            g = root.create_group(name)
            # Keras 2 stores an empty float array for weightless layers.
            g.attrs["weight_names"] = (
                np.array([w.encode("utf8") for w, _ in ws]) if ws else np.asarray([])
            )
            for w, value in ws:
                g.create_dataset(w, data=value)


def toy_variables(model):
    """Model variables keyed by the Keras-2 stored names of TOY_LAYOUT."""
    rpn = model.get_layer("rpn_model")
    bn = model.get_layer("bn_conv1")
    layers = {
        "conv1": model.get_layer("conv1"),
        "rpn_conv_shared": rpn.get_layer("rpn_conv_shared"),
        "rpn_class_raw": rpn.get_layer("rpn_class_raw"),
        "mrcnn_class_logits": model.get_layer("mrcnn_class_logits"),
    }
    out = {}
    for name, layer in layers.items():
        out[f"{name}/kernel:0"] = layer.kernel
        out[f"{name}/bias:0"] = layer.bias
    for attr in ("gamma", "beta", "moving_mean", "moving_variance"):
        out[f"bn_conv1/{attr}:0"] = getattr(bn, attr)
    return out


def values_of(model):
    return [np.array(v) for v in model.weights]


def tsv_layer_names(name):
    names = set()
    for line in (DATA / name).read_text().splitlines():
        if line and not line.startswith("#"):
            names.add(line.split("\t")[0])
    return names


@pytest.fixture(scope="module")
def resnet50():
    return keras.applications.ResNet50(weights=None, include_top=False)


@pytest.fixture(scope="module")
def resnet101():
    return keras.applications.ResNet101(weights=None, include_top=False)


# --------------------------------------------------------------------------
# weight_groups
# --------------------------------------------------------------------------


def test_weight_groups_toy_model_order_and_names():
    model = make_toy_model()
    groups = W.weight_groups(model)
    assert [name for name, _ in groups] == [
        "conv1",
        "bn_conv1",
        "rpn_model",
        "mrcnn_class_logits",
    ]
    stored = {name: [w for w, _ in W.group_weights(layer)] for name, layer in groups}
    expected = {layer: [w for w, _ in ws] for layer, ws in TOY_LAYOUT if ws}
    assert stored == expected


def test_weight_groups_flattens_nested_models_subclasses_and_wrappers():
    class Block(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.a = keras.layers.Dense(4, name="res2a_branch2a")
            self.b = keras.layers.Dense(4, name="res2a_branch2b")

        def call(self, x):
            return self.b(self.a(x))

    inner_in = keras.Input((4,))
    inner = keras.Model(
        inner_in, keras.layers.Dense(4, name="fpn_c5p5")(inner_in), name="backbone"
    )
    inp = keras.Input((3, 4))
    x = keras.layers.TimeDistributed(keras.layers.Dense(4), name="mrcnn_bbox_fc")(inp)
    y = inner(keras.layers.Flatten()(x[:, :1]))
    y = Block(name="block")(y)
    model = keras.Model(inp, y)

    groups = W.weight_groups(model)
    names = [n for n, _ in groups]
    assert names == ["mrcnn_bbox_fc", "fpn_c5p5", "res2a_branch2a", "res2a_branch2b"]
    stored = dict((n, [w for w, _ in W.group_weights(layer)]) for n, layer in groups)
    # A wrapper is stored under its own name, as Keras 2 did.
    assert stored["mrcnn_bbox_fc"] == ["mrcnn_bbox_fc/kernel:0", "mrcnn_bbox_fc/bias:0"]
    assert stored["res2a_branch2a"] == ["res2a_branch2a/kernel:0", "res2a_branch2a/bias:0"]


def test_weight_groups_duplicate_names_raise():
    def sub(name):
        i = keras.Input((2,))
        return keras.Model(i, keras.layers.Dense(2, name="dup")(i), name=name)

    inp = keras.Input((2,))
    model = keras.Model(inp, sub("m2")(sub("m1")(inp)))
    with pytest.raises(ValueError, match="dup"):
        W.weight_groups(model)


# --------------------------------------------------------------------------
# Loading files written with raw h5py
# --------------------------------------------------------------------------


def test_load_by_name_raw_file_with_exclude(tmp_path):
    path = tmp_path / "coco_like.h5"
    layers = random_layout(TOY_LAYOUT)
    write_raw_legacy(path, layers)
    model = make_toy_model()
    variables = toy_variables(model)
    before_logits = np.array(variables["mrcnn_class_logits/kernel:0"])

    report = W.load_weights(model, path, by_name=True, exclude=["mrcnn_class_logits"])

    for layer, ws in layers:
        if layer == "mrcnn_class_logits":
            continue
        for name, value in ws:
            np.testing.assert_array_equal(np.array(variables[name]), value)
    np.testing.assert_array_equal(
        np.array(variables["mrcnn_class_logits/kernel:0"]), before_logits
    )
    assert report.loaded == ["conv1", "bn_conv1", "rpn_model"]
    assert report.excluded == ["mrcnn_class_logits"]
    assert report.missing_in_file == []
    assert str(report) == f"Loaded 3 layers from {path} (1 excluded, 0 not in file)"


def test_load_from_model_weights_root_group(tmp_path):
    path = tmp_path / "full_model.h5"
    layers = random_layout(TOY_LAYOUT, seed=1)
    write_raw_legacy(path, layers, under_model_weights=True)
    model = make_toy_model()
    W.load_weights(model, path, by_name=True)
    variables = toy_variables(model)
    for _, ws in layers:
        for name, value in ws:
            np.testing.assert_array_equal(np.array(variables[name]), value)


def test_model_groups_absent_from_file_are_reported(tmp_path):
    path = tmp_path / "backbone_only.h5"
    write_raw_legacy(path, random_layout(TOY_LAYOUT[:3]))
    report = W.load_weights(make_toy_model(), path, by_name=True)
    assert report.loaded == ["conv1", "bn_conv1"]
    assert report.missing_in_file == ["rpn_model", "mrcnn_class_logits"]
    assert str(report).endswith("(0 excluded, 2 not in file: 'rpn_model', 'mrcnn_class_logits')")


def test_renamed_layer_raises_and_loads_nothing(tmp_path):
    path = tmp_path / "renamed.h5"
    layers = random_layout(TOY_LAYOUT)
    layers[2] = ("bn_conv1_renamed", layers[2][1])
    write_raw_legacy(path, layers)
    model = make_toy_model()
    before = values_of(model)
    with pytest.raises(W.WeightsLoadError) as err:
        W.load_weights(model, path, by_name=True)
    assert "bn_conv1_renamed" in str(err.value)
    assert str(path) in str(err.value)
    for a, b in zip(before, values_of(model)):
        np.testing.assert_array_equal(a, b)


def test_many_unknown_layers_are_listed_with_a_count(tmp_path):
    path = tmp_path / "other_model.h5"
    layers = [(f"other_{i}", [(f"other_{i}/bias:0", np.zeros(2, np.float32))]) for i in range(15)]
    write_raw_legacy(path, layers)
    with pytest.raises(W.WeightsLoadError) as err:
        W.load_weights(make_toy_model(), path, by_name=True)
    msg = str(err.value)
    assert "'other_0'" in msg and "'other_9'" in msg and "'other_10'" not in msg
    assert "5 more" in msg and "15 in all" in msg


def test_shape_mismatch_raises_naming_layer_weight_and_shapes(tmp_path):
    path = tmp_path / "wrong_shape.h5"
    layout = [list(x) for x in TOY_LAYOUT]
    layout[5] = (
        "mrcnn_class_logits",
        [("mrcnn_class_logits/kernel:0", (6, 81)), ("mrcnn_class_logits/bias:0", (81,))],
    )
    write_raw_legacy(path, random_layout(layout))
    model = make_toy_model()
    before = values_of(model)
    with pytest.raises(W.WeightsLoadError) as err:
        W.load_weights(model, path, by_name=True)
    msg = str(err.value)
    assert str(path) in msg
    assert "mrcnn_class_logits/kernel:0" in msg
    assert "(6, 81)" in msg and "(6, 5)" in msg
    assert "(81,)" in msg and "(5,)" in msg
    for a, b in zip(before, values_of(model)):
        np.testing.assert_array_equal(a, b)
    # Excluding the head makes the same file load.
    W.load_weights(model, path, by_name=True, exclude=["mrcnn_class_logits"])


def test_weight_count_mismatch_raises(tmp_path):
    path = tmp_path / "no_bias.h5"
    layers = random_layout(TOY_LAYOUT)
    layers[1] = ("conv1", layers[1][1][:1])
    write_raw_legacy(path, layers)
    with pytest.raises(W.WeightsLoadError, match=r"'conv1'.*1 weights"):
        W.load_weights(make_toy_model(), path, by_name=True)


def test_float64_file_values_are_cast(tmp_path):
    path = tmp_path / "f64.h5"
    layers = [
        (layer, [(n, v.astype(np.float64)) for n, v in ws])
        for layer, ws in random_layout(TOY_LAYOUT)
    ]
    write_raw_legacy(path, layers)
    model = make_toy_model()
    W.load_weights(model, path, by_name=True)
    got = model.get_layer("conv1").kernel
    assert str(got.dtype) == "float32"
    np.testing.assert_array_equal(np.array(got), layers[1][1][0][1].astype(np.float32))


# --------------------------------------------------------------------------
# Reader errors
# --------------------------------------------------------------------------


def test_missing_file_raises_file_not_found_naming_path(tmp_path):
    path = tmp_path / "nope.h5"
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        W.read_legacy_h5(path)
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        W.load_weights(make_toy_model(), path)


def test_not_hdf5_raises_weights_file_error(tmp_path):
    path = tmp_path / "page.h5"
    path.write_text("<html>Not Found</html>")
    with pytest.raises(W.WeightsFileError, match="page.h5.*not a readable HDF5"):
        W.read_legacy_h5(path)


def test_keras3_weights_file_is_rejected_with_hint(tmp_path):
    path = tmp_path / "toy.weights.h5"
    make_toy_model().save_weights(path)
    with pytest.raises(W.WeightsFileError) as err:
        W.read_legacy_h5(path)
    assert str(path) in str(err.value) and "layer_names" in str(err.value)
    assert "Keras 3" in str(err.value)


def test_listed_weight_without_dataset_raises(tmp_path):
    path = tmp_path / "broken.h5"
    write_raw_legacy(path, random_layout(TOY_LAYOUT[:2]))
    with h5py.File(path, "a") as f:
        del f["conv1"]["conv1"]["bias:0"]
    with pytest.raises(W.WeightsFileError, match=r"broken.h5.*'conv1/bias:0'.*'conv1'"):
        W.read_legacy_h5(path)


def test_read_keeps_file_order_and_weightless_layers(tmp_path):
    path = tmp_path / "toy.h5"
    layers = random_layout(TOY_LAYOUT)
    write_raw_legacy(path, layers)
    got = W.read_legacy_h5(path)
    assert [n for n, _ in got] == [n for n, _ in layers]
    assert got[0] == ("input_image", [])
    for (_, ws_got), (_, ws) in zip(got, layers):
        assert [n for n, _ in ws_got] == [n for n, _ in ws]
        for (_, a), (_, b) in zip(ws_got, ws):
            assert a.dtype == np.float32
            np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------
# Writing, saving, round trips
# --------------------------------------------------------------------------


def randomize(model, seed):
    rng = np.random.default_rng(seed)
    for v in model.weights:
        v.assign(rng.standard_normal(v.shape).astype(np.float32))


def test_save_writes_the_legacy_layout(tmp_path):
    path = tmp_path / "saved.h5"
    model = make_toy_model()
    randomize(model, 3)
    W.save_weights(model, path)
    variables = toy_variables(model)
    with h5py.File(path, "r") as f:
        assert [n.decode() for n in f.attrs["layer_names"]] == [
            "conv1", "bn_conv1", "rpn_model", "mrcnn_class_logits"
        ]
        assert f.attrs["backend"] in (b"tensorflow", "tensorflow")
        assert "keras_version" in f.attrs
        for layer, ws in TOY_LAYOUT:
            if not ws:
                continue
            names = [n.decode() for n in f[layer].attrs["weight_names"]]
            assert names == [n for n, _ in ws]
            for n, shape in ws:
                assert f[layer][n].shape == shape
                np.testing.assert_array_equal(f[layer][n][()], np.array(variables[n]))


@pytest.mark.parametrize("by_name", [True, False])
def test_save_load_round_trip(tmp_path, by_name):
    path = tmp_path / "round_trip.h5"
    src = make_toy_model()
    randomize(src, 4)
    W.save_weights(src, path)
    dst = make_toy_model()
    report = W.load_weights(dst, path, by_name=by_name)
    assert report.loaded == ["conv1", "bn_conv1", "rpn_model", "mrcnn_class_logits"]
    assert report.renamed == {}
    for a, b in zip(values_of(src), values_of(dst)):
        np.testing.assert_array_equal(a, b)


def test_load_by_order_matches_positions_and_honours_exclude(tmp_path):
    path = tmp_path / "other_names.h5"
    layers = [
        (f"layer_{i}", [(f"layer_{i}/{n}", v) for n, v in ws])
        for i, (_, ws) in enumerate(random_layout(TOY_LAYOUT))
    ]
    write_raw_legacy(path, layers)
    model = make_toy_model()
    report = W.load_weights(model, path, exclude=["layer_5", "mrcnn_class_logits"])
    assert report.renamed == {"layer_1": "conv1", "layer_2": "bn_conv1", "layer_3": "rpn_model"}
    np.testing.assert_array_equal(np.array(model.get_layer("conv1").kernel), layers[1][1][0][1])
    with pytest.raises(W.WeightsLoadError, match="3 weighted layers.*model has 4"):
        W.load_weights(model, path, exclude=["layer_5"])


def test_atomic_write_leaves_no_temp_file(tmp_path):
    path = tmp_path / "ckpt.h5"
    W.write_legacy_h5(path, [("a", [("a/kernel:0", np.ones((2, 2), np.float32))])])
    assert os.listdir(tmp_path) == ["ckpt.h5"]
    assert W.read_legacy_h5(path)[0][0] == "a"


def test_interrupted_write_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.h5"
    model = make_toy_model()
    randomize(model, 5)
    W.save_weights(model, path)
    before = W.read_legacy_h5(path)

    real_create = h5py.Group.create_dataset
    calls = []

    def failing_create(self, *args, **kwargs):
        calls.append(args)
        if len(calls) == 3:
            raise OSError("disk full (simulated)")
        return real_create(self, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", failing_create)
    randomize(model, 6)
    with pytest.raises(OSError, match="simulated"):
        W.save_weights(model, path)
    monkeypatch.undo()

    assert os.listdir(tmp_path) == ["ckpt.h5"]
    after = W.read_legacy_h5(path)
    for (n1, ws1), (n2, ws2) in zip(before, after):
        assert n1 == n2
        for (_, a), (_, b) in zip(ws1, ws2):
            np.testing.assert_array_equal(a, b)


def test_write_rejects_duplicates(tmp_path):
    with pytest.raises(ValueError, match="Duplicate layer names"):
        W.write_legacy_h5(tmp_path / "x.h5", [("a", []), ("a", [])])
    with pytest.raises(ValueError, match="Duplicate weight names in layer 'a'"):
        W.write_legacy_h5(
            tmp_path / "x.h5", [("a", [("a/bias:0", np.zeros(1)), ("a/bias:0", np.zeros(1))])]
        )
    assert os.listdir(tmp_path) == []


def test_big_name_attributes_are_chunked_like_keras2(tmp_path, monkeypatch):
    monkeypatch.setattr(W, "_HDF5_ATTR_LIMIT", 64)
    path = tmp_path / "chunked.h5"
    groups = [(f"layer_{i:03d}", [(f"layer_{i:03d}/bias:0", np.full(2, i, np.float32))]) for i in range(20)]
    W.write_legacy_h5(path, groups)
    with h5py.File(path, "r") as f:
        assert "layer_names" not in f.attrs and "layer_names0" in f.attrs
    got = W.read_legacy_h5(path)
    assert [n for n, _ in got] == [n for n, _ in groups]
    np.testing.assert_array_equal(got[7][1][0][1], groups[7][1][0][1])


def test_save_unbuilt_model_raises(tmp_path):
    model = keras.Sequential([keras.layers.Dense(2, name="d")])
    with pytest.raises(ValueError, match="no weights"):
        W.save_weights(model, tmp_path / "x.h5")


# --------------------------------------------------------------------------
# ImageNet
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "backbone,fixture,tsv",
    [
        ("resnet50", "resnet50", "matterport_r50_coco81_layout.tsv"),
        ("resnet101", "resnet101", "matterport_r101_coco81_layout.tsv"),
    ],
)
def test_imagenet_map_covers_keras_applications_and_lands_in_matterport(
    backbone, fixture, tsv, request
):
    model = request.getfixturevalue(fixture)
    name_map = W.imagenet_name_map(backbone)
    weighted = [layer.name for layer in model.layers if layer.weights]
    assert sorted(weighted) == sorted(name_map)
    assert len(set(name_map.values())) == len(name_map)
    matterport = tsv_layer_names(tsv)
    assert set(name_map.values()) <= matterport
    # ...and covers every backbone layer of the Matterport layout.
    backbone_layers = {n for n in matterport if n.startswith(("res", "bn")) or n == "conv1"}
    assert set(name_map.values()) == backbone_layers
    if backbone == "resnet101":
        assert name_map["conv4_block23_3_bn"] == "bn4w_branch2c"
        assert name_map["conv4_block1_0_conv"] == "res4a_branch1"


def test_imagenet_map_unknown_backbone():
    with pytest.raises(ValueError, match="resnet152"):
        W.imagenet_name_map("resnet152")


def keras_app_file(model, path, seed=7):
    """Write a keras-applications style no-top file (its layer names) via h5py."""
    rng = np.random.default_rng(seed)
    layers = []
    for layer in model.layers:
        ws = [
            (f"{layer.name}/{v.name}:0", rng.standard_normal(v.shape).astype(np.float32))
            for v in layer.weights
        ]
        layers.append((layer.name, ws))
    write_raw_legacy(path, layers)
    return layers


def test_load_imagenet_weights_into_matterport_named_resnet50(tmp_path, resnet50):
    path = tmp_path / "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    layers = keras_app_file(resnet50, path)
    name_map = W.imagenet_name_map("resnet50")
    # Same architecture with Matterport layer names.
    target = keras.models.clone_model(
        resnet50,
        clone_function=lambda layer: layer.__class__.from_config(
            {**layer.get_config(), "name": name_map.get(layer.name, layer.name)}
        ),
    )
    report = W.load_imagenet_weights(target, path, "resnet50")
    assert len(report.loaded) == 106 and report.missing_in_file == []
    assert report.renamed == name_map
    for name, ws in layers:
        if ws:
            got = target.get_layer(name_map[name]).weights
            for (_, value), var in zip(ws, got):
                np.testing.assert_array_equal(np.array(var), value)


def test_load_imagenet_weights_is_strict(tmp_path):
    # A model with only part of the backbone: the rest of the file is unknown.
    inp = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(64, 7, name="conv1")(inp)
    x = keras.layers.BatchNormalization(name="bn_conv1")(x)
    x = keras.layers.Conv2D(64, 1, name="res2a_branch2a")(x)
    model = keras.Model(inp, x)
    path = tmp_path / "imagenet.h5"
    rng = np.random.default_rng(0)

    def group(name, shapes, kinds):
        return (name, [(f"{name}/{k}:0", rng.standard_normal(s).astype(np.float32))
                       for k, s in zip(kinds, shapes)])

    conv1 = group("conv1_conv", [(7, 7, 3, 64), (64,)], ["kernel", "bias"])
    bn1 = group("conv1_bn", [(64,)] * 4, ["gamma", "beta", "moving_mean", "moving_variance"])
    res = group("conv2_block1_1_conv", [(1, 1, 64, 64), (64,)], ["kernel", "bias"])
    extra = group("conv2_block1_1_bn", [(64,)] * 4, ["gamma", "beta", "moving_mean", "moving_variance"])

    write_raw_legacy(path, [("input_1", []), conv1, bn1, res])
    report = W.load_imagenet_weights(model, path, "resnet50")
    assert report.loaded == ["conv1", "bn_conv1", "res2a_branch2a"]
    np.testing.assert_array_equal(np.array(model.get_layer("bn_conv1").moving_variance), bn1[1][3][1])

    write_raw_legacy(path, [conv1, bn1, res, extra])
    with pytest.raises(W.WeightsLoadError, match="bn2a_branch2a"):
        W.load_imagenet_weights(model, path, "resnet50")

    write_raw_legacy(path, [conv1, group("fc1000", [(2048, 1000)], ["kernel"])])
    with pytest.raises(W.WeightsLoadError, match="fc1000"):
        W.load_imagenet_weights(model, path, "resnet50")


# --------------------------------------------------------------------------
# file_backbone / file_num_classes (names and one shape, read without arrays)
# --------------------------------------------------------------------------


def small_matterport_file(path, tsv):
    """A file with the layer and weight names of a published Matterport file;
    tiny arrays except the classifier's kernel, which keeps its real shape."""
    layers = {}
    for line in (DATA / tsv).read_text().splitlines():
        if line and not line.startswith("#"):
            layer, weight, shape = line.split("\t")
            real = layer == "mrcnn_class_logits" and "kernel" in weight
            shape = tuple(int(d) for d in shape.strip("()").split(",") if d.strip())
            layers.setdefault(layer, []).append(
                (weight, np.zeros(shape if real else (1,), np.float32)))
    write_raw_legacy(path, list(layers.items()))
    return path


@pytest.mark.parametrize("tsv, backbone", [
    ("matterport_r101_coco81_layout.tsv", "resnet101"),
    ("matterport_r50_coco81_layout.tsv", "resnet50"),
])
def test_file_backbone_and_classes_of_matterport_files(tmp_path, tsv, backbone):
    path = small_matterport_file(tmp_path / "w.h5", tsv)
    assert W.file_backbone(path) == backbone
    assert W.file_num_classes(path) == 81


def test_file_backbone_of_a_resnet14_checkpoint(tmp_path):
    from mrcnn.modeling.backbone import build_backbone

    path = tmp_path / "r14.h5"
    W.save_weights(build_backbone("resnet14", train_bn=False, pyramid_size=8), path)
    assert W.file_backbone(path) == "resnet14"


def test_no_imagenet_weights_for_resnet14():
    with pytest.raises(ValueError, match="No keras-applications ImageNet ResNet for backbone "
                                         "'resnet14'"):
        W.imagenet_name_map("resnet14")


def test_file_backbone_without_resnet_layers_is_none(tmp_path):
    path = tmp_path / "heads.h5"
    write_raw_legacy(path, [("mrcnn_mask", [("mrcnn_mask/kernel:0", np.zeros((1,)))])])
    assert W.file_backbone(path) is None and W.file_num_classes(path) is None
    with pytest.raises(FileNotFoundError):
        W.file_backbone(tmp_path / "missing.h5")
