"""Fixtures shared by the cityscapes/ tests."""

import pytest

from cityscapes.synthetic import generate


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """A small synthetic Cityscapes folder: 3 train and 2 val scenes of 128 x 256."""
    out = tmp_path_factory.mktemp("cs")
    generate(out, seed=1, height=128, width=256, images={"train": 3, "val": 2, "test": 0})
    return str(out)
