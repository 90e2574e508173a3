"""cityscapes.show_masks: mini-mask round trip, IoUs and the figure."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from cityscapes import show_masks
from cityscapes.dataset import CityscapesDataset
from cityscapes.synthetic import generate
from tests.commands import exit_code

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    # 128 x 256: some boxes are larger than 56 pixels, so mini-masks downsample.
    path = tmp_path_factory.mktemp("synthetic")
    generate(path, seed=0, height=128, width=256, images={"train": 4, "val": 2, "test": 0})
    return path


@pytest.fixture(scope="module")
def dataset(root):
    ds = CityscapesDataset()
    ds.load_cityscapes(root, split="train")
    ds.prepare()
    return ds


def test_mask_ious():
    a = np.zeros((4, 4, 3), bool)
    b = np.zeros((4, 4, 3), bool)
    a[:2, :, 0] = True      # 8 pixels, b has 4 of them
    b[:1, :, 0] = True
    a[:, :, 1] = b[:, :, 1] = True
    np.testing.assert_allclose(show_masks.mask_ious(a, b), [0.5, 1.0, 0.0])


def test_roundtrip_of_large_and_small_shapes():
    yy, xx = np.mgrid[:300, :400]
    masks = np.stack([((yy - 150) / 120) ** 2 + ((xx - 200) / 180) ** 2 <= 1,   # big ellipse
                      (yy >= 10) & (yy < 14) & (xx >= 5) & (xx < 9),            # 4 x 4 square
                      np.zeros_like(yy, bool)], axis=-1)                         # empty: dropped
    rt = show_masks.mini_mask_roundtrip(masks, np.array([1, -2, 3]), (56, 56))
    assert rt["masks"].shape == rt["rebuilt"].shape == (300, 400, 2)
    np.testing.assert_array_equal(rt["class_ids"], [1, -2])
    assert rt["ious"][0] > 0.97 and rt["ious"][1] == 1.0
    np.testing.assert_array_equal(rt["boxes"][1], [10, 5, 14, 9])


def test_figure_ious_on_synthetic_images(dataset):
    """Every image: one IoU per non-empty mask, > 0.8 above a few pixels."""
    downsampled = 0
    for i in dataset.image_ids:
        masks, class_ids = dataset.load_mask(i)
        fig, ious = show_masks.mini_mask_figure(dataset, i)
        assert isinstance(fig, Figure)
        areas = masks.sum(axis=(0, 1))
        areas = areas[areas > 0]
        assert len(ious) == len(areas)
        assert all(iou > 0.8 for iou, area in zip(ious, areas) if area >= 16)
        rt = show_masks.mini_mask_roundtrip(masks, class_ids)
        np.testing.assert_allclose(ious, rt["ious"])
        box_sizes = rt["boxes"][:, 2:] - rt["boxes"][:, :2]
        downsampled += int((box_sizes > 56).any(axis=1).sum())
    assert downsampled > 0  # the data exercises real downsampling, not only upsampling


def test_figure_of_an_image_without_instances(dataset, tmp_path):
    empty = [i for i in dataset.image_ids if not (dataset.load_mask(i)[1] > 0).any()]
    assert empty  # the synthetic data has one
    fig, ious = show_masks.mini_mask_figure(dataset, empty[0])
    assert all(iou > 0.8 for iou in ious)  # crowd regions only, if any
    fig.savefig(tmp_path / "empty.png")
    assert (tmp_path / "empty.png").read_bytes()[:8] == PNG


def test_overlay_later_mask_wins():
    image = np.full((2, 3, 3), 100, np.uint8)
    masks = np.zeros((2, 3, 2), bool)
    masks[0, :2, 0] = True
    masks[0, 1:, 1] = True
    colours = np.array([[1.0, 0, 0], [0, 0, 1.0]])
    out = show_masks.overlay(image, masks, colours, alpha=0.5)
    np.testing.assert_array_equal(out[0, 0], [178, 50, 50])
    np.testing.assert_array_equal(out[0, 1], [50, 50, 178])  # both masks: the later one
    np.testing.assert_array_equal(out[1], image[1])
    np.testing.assert_array_equal(show_masks.overlay(image, masks[:, :, :0], colours), image)


def test_cli(root, dataset, tmp_path, capsys):
    out = tmp_path / "fig" / "masks.png"
    assert show_masks.main(["--dataset", str(root), "--out", str(out), "--mini", "28"]) == 0
    printed = capsys.readouterr().out
    assert out.read_bytes()[:8] == PNG
    first = show_masks.find_image(dataset)
    assert (dataset.load_mask(first)[1] > 0).any()
    assert printed.startswith(dataset.image_info[first]["id"])
    assert "mean IoU over" in printed

    stem = dataset.image_info[2]["id"]
    assert show_masks.main(["--dataset", str(root), "--image", stem, "--out", str(out)]) == 0
    by_stem = capsys.readouterr().out
    assert show_masks.main(["--dataset", str(root), "--image", "2", "--out", str(out)]) == 0
    assert capsys.readouterr().out == by_stem
    with pytest.raises(SystemExit, match="no such stem"):
        show_masks.main(["--dataset", str(root), "--image", "nowhere", "--out", str(out)])


def test_cli_defaults_on_an_instance_ids_only_folder_without_train(tmp_path, capsys):
    root = tmp_path / "ids_only"
    generate(root, seed=0, height=64, width=128, images={"train": 0, "val": 2, "test": 0},
             polygons=False)
    out = tmp_path / "masks.png"
    assert show_masks.main(["--dataset", str(root), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert out.read_bytes()[:8] == PNG
    ds = CityscapesDataset()
    ds.load_cityscapes(root, split="val")
    ds.prepare()
    assert ds.load_report["annotations"] == "instanceIds"
    assert printed.startswith(ds.image_info[show_masks.find_image(ds)]["id"])
    argv = ["--dataset", str(root), "--split", "train", "--out", str(out)]
    assert exit_code(show_masks.main, argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'train'" in err and err.rstrip().endswith("splits found: val")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert exit_code(show_masks.main, ["--dataset", str(empty), "--out", str(out)]) == 2
    assert "no split with images and ground truth" in capsys.readouterr().err
