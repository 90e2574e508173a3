"""mrcnn.data.image_check and Dataset.verify_images: every image decoded once
before training, bad files named or skipped, good ones remembered."""

import json
import logging
import os

import numpy as np
import pytest
from PIL import Image

from mrcnn.data import image_check
from mrcnn.data.dataset import Dataset
from mrcnn.data.image_check import BadImageError, DecodeCache

TRUNCATED = "cannot be decoded: image file is truncated"


def write_png(path, seed=0):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(path)
    return str(path)


def truncate(path):
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])


class Counting(Dataset):
    """Files plus one image generated in memory (no path); counts decodes."""

    def __init__(self, paths):
        super().__init__()
        self.decoded = []
        for i, path in enumerate(paths):
            self.add_image("files", i, path)
        self.add_image("files", len(paths), None)

    def check_image(self, image_id):
        self.decoded.append(image_id)
        super().check_image(image_id)


@pytest.fixture
def pngs(tmp_path):
    return [write_png(tmp_path / f"{i}.png", i) for i in range(4)]


def test_a_truncated_png_is_named_or_skipped(pngs):
    truncate(pngs[2])
    with pytest.raises(BadImageError, match=f"^{pngs[2]}: {TRUNCATED}$"):
        Counting(pngs).verify_images()
    ds = Counting(pngs)
    ds.prepare()
    report = ds.verify_images(skip_bad=True, workers=2)
    assert sorted(ds.decoded) == [0, 1, 2, 3]  # not the image without a file
    assert report["skipped"] == ds.skipped == [(pngs[2], TRUNCATED)]
    assert (report["images"], report["decoded"], report["cached"]) == (4, 4, 0)
    # Left out, and prepare() ran again: the ids are contiguous.
    assert [info["path"] for info in ds.image_info] == [pngs[0], pngs[1], pngs[3], None]
    assert ds.num_images == 4 - 1 + 1 and list(ds.image_ids) == [0, 1, 2, 3]


def test_missing_and_undecodable_files(pngs):
    os.remove(pngs[0])
    with open(pngs[1], "wb") as f:
        f.write(b"not an image")
    ds = Counting(pngs)
    ds.verify_images(skip_bad=True)
    assert [p for p, _ in ds.skipped] == pngs[:2]
    assert "No such file" in ds.skipped[0][1] and "cannot identify" in ds.skipped[1][1]


def test_the_cache_remembers_good_files_by_size_and_mtime(pngs, tmp_path):
    cache = tmp_path / "cache" / "decoded.json"
    truncate(pngs[3])
    first = Counting(pngs)
    first.verify_images(skip_bad=True, cache=cache)
    second = Counting(pngs)
    report = second.verify_images(skip_bad=True, cache=str(cache))
    assert sorted(first.decoded) == [0, 1, 2, 3] and second.decoded == [3]  # bad: again
    assert (report["decoded"], report["cached"]) == (1, 3)
    os.utime(pngs[1], ns=(5, 5))
    third = Counting(pngs)
    third.verify_images(skip_bad=True, cache=cache)
    assert sorted(third.decoded) == [1, 3]
    saved = json.loads(cache.read_text())["files"]
    assert sorted(saved) == sorted(os.path.abspath(p) for p in pngs[:3])


def test_saving_merges_other_writers_and_drops_gone_files(pngs, tmp_path):
    path = tmp_path / "decoded.json"
    a, b = DecodeCache(path), DecodeCache(path)
    a.add(image_check.stamps(pngs[:2]))
    a.save()
    b.add(image_check.stamps(pngs[2:]))
    os.remove(pngs[0])
    b.save()
    assert DecodeCache(path).known(image_check.stamps(pngs[1:]))
    assert sorted(json.loads(path.read_text())["files"]) == sorted(
        os.path.abspath(p) for p in pngs[1:])


def test_a_damaged_or_unwritable_cache_costs_a_warning(pngs, tmp_path, caplog):
    path = tmp_path / "decoded.json"
    path.write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="mrcnn.data.image_check"):
        cache = DecodeCache(path)
        assert not cache.known(image_check.stamps(pngs))
        blocked = DecodeCache(tmp_path / "a-file" / "decoded.json")
        (tmp_path / "a-file").write_text("")
        Counting(pngs).verify_images(cache=blocked)
    messages = [r.getMessage() for r in caplog.records]
    assert any("unreadable" in m and "starting it afresh" in m for m in messages)
    assert any("not written" in m and "the next run decodes again" in m for m in messages)
