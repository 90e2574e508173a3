"""Tests for mrcnn/data/dataset.py: registration, prepare(), lookups, loading."""

import logging

import numpy as np
import pytest
from PIL import Image

from mrcnn.data.dataset import Dataset


def make_dataset():
    ds = Dataset()
    ds.add_class("coco", 1, "person, human")
    ds.add_class("coco", 3, "car")
    ds.add_class("balloon", 1, "balloon")
    ds.add_class("coco", 1, "duplicate is ignored")
    ds.add_image("coco", image_id=139, path="a.jpg", height=4, width=5)
    ds.add_image("balloon", image_id="b7", path="b.jpg", polygons=[1, 2])
    ds.prepare()
    return ds


def test_background_class_added_first():
    ds = Dataset()
    assert ds.class_info == [{"source": "", "id": 0, "name": "BG"}]
    assert ds.image_info == []


def test_prepare_tables():
    ds = make_dataset()
    assert ds.num_classes == 4
    np.testing.assert_array_equal(ds.class_ids, [0, 1, 2, 3])
    assert ds.class_names == ["BG", "person", "car", "balloon"]
    assert ds.num_images == 2
    np.testing.assert_array_equal(ds.image_ids, [0, 1])
    assert ds.class_from_source_map == {".0": 0, "coco.1": 1, "coco.3": 2, "balloon.1": 3}
    assert ds.image_from_source_map == {"coco.139": 0, "balloon.b7": 1}
    assert ds.sources == ["", "balloon", "coco"]
    assert ds.source_class_ids == {"": [0], "balloon": [0, 3], "coco": [0, 1, 2]}


def test_add_image_keeps_extra_fields():
    ds = make_dataset()
    assert ds.image_info[1] == {"id": "b7", "source": "balloon", "path": "b.jpg",
                                "polygons": [1, 2]}
    assert ds.source_image_link(1) == "b.jpg"
    assert ds.image_reference(1) == ""


def test_class_id_mapping():
    ds = make_dataset()
    assert ds.map_source_class_id("coco.3") == 2
    assert ds.map_source_class_id("balloon.1") == 3
    assert ds.get_source_class_id(2, "coco") == 3
    with pytest.raises(ValueError, match="from source 'coco', not 'balloon'"):
        ds.get_source_class_id(2, "balloon")
    with pytest.raises(KeyError):
        ds.map_source_class_id("coco.99")


def test_source_with_dot_rejected():
    with pytest.raises(ValueError, match="dot"):
        Dataset().add_class("my.source", 1, "x")


@pytest.mark.parametrize("mode, shape", [("RGB", (6, 7, 3)), ("L", (6, 7)),
                                         ("RGBA", (6, 7, 4)), ("P", (6, 7))])
def test_load_image_converts_to_rgb(tmp_path, mode, shape):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=shape, dtype=np.uint8)
    path = tmp_path / f"img_{mode}.png"
    Image.fromarray(pixels).convert(mode).save(path)
    ds = Dataset()
    ds.add_image("x", 0, str(path))
    ds.prepare()
    image = ds.load_image(0)
    assert image.dtype == np.uint8 and image.shape == (6, 7, 3)
    if mode == "RGB":
        np.testing.assert_array_equal(image, pixels)
    elif mode == "L":
        np.testing.assert_array_equal(image, np.stack([pixels] * 3, axis=-1))
    elif mode == "RGBA":
        np.testing.assert_array_equal(image, pixels[..., :3])


def test_load_image_missing_file_names_it(tmp_path):
    ds = Dataset()
    path = tmp_path / "nope.jpg"
    ds.add_image("x", 0, str(path))
    with pytest.raises(FileNotFoundError, match="nope.jpg"):
        ds.load_image(0)


def test_load_image_unreadable_file_names_it(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"not an image at all")
    ds = Dataset()
    ds.add_image("x", 0, str(path))
    with pytest.raises(OSError, match="broken.png"):
        ds.load_image(0)


def test_base_load_mask_is_empty(tmp_path, caplog):
    ds = make_dataset()
    with caplog.at_level(logging.WARNING):
        mask, class_ids = ds.load_mask(0)
    assert "not overridden" in caplog.text
    assert mask.shape == (4, 5, 0) and mask.dtype == bool
    assert class_ids.shape == (0,) and class_ids.dtype == np.int32

    path = tmp_path / "im.png"
    Image.fromarray(np.zeros((3, 8, 3), np.uint8)).save(path)
    ds = Dataset()
    ds.add_image("x", 0, str(path))
    mask, _ = ds.load_mask(0)
    assert mask.shape == (3, 8, 0)


def test_load_image_file_only_where_load_image_reads_the_file_as_stored(tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray(np.full((4, 5, 3), 9, np.uint8)).save(path)

    class Drawn(Dataset):
        def load_image(self, image_id):
            return np.zeros((4, 5, 3), np.uint8)

    plain, drawn, patched = Dataset(), Drawn(), Dataset()
    patched.load_image = lambda image_id: np.zeros((4, 5, 3), np.uint8)
    for ds in (plain, drawn, patched):
        ds.add_image("files", 0, str(path))
        ds.add_image("memory", 1, None)
        ds.prepare()
    png = plain.load_image_file(0)
    assert png.contents == path.read_bytes() and (png.height, png.width) == (4, 5)
    assert plain.load_image_file(1) is None  # no file
    assert drawn.load_image_file(0) is None and patched.load_image_file(0) is None


def test_load_image_file_names_the_image_of_a_bad_file(tmp_path):
    ds = Dataset()
    ds.add_image("files", 0, str(tmp_path / "gone.png"))
    ds.add_image("files", 1, str(tmp_path / "cut.png"))
    ds.prepare()
    Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(tmp_path / "cut.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "cut.png").read_bytes()[:60])
    with pytest.raises(FileNotFoundError, match="image 0: no such file: .*gone.png"):
        ds.load_image_file(0)
    with pytest.raises(OSError, match="image 1: cannot read image file .*cut.png: image file is "
                                      "truncated"):
        ds.load_image_file(1)
