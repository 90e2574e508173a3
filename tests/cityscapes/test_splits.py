"""cityscapes.splits: deterministic re-splits and subsets."""

import pytest

from cityscapes.splits import DEFAULT_SIZES, SPLIT_NAMES, resplit, subset

# Image counts per city of the official train (18 cities) and val (3) splits.
CITY_SIZES = {
    "aachen": 174, "bochum": 96, "bremen": 316, "cologne": 154, "darmstadt": 85,
    "dusseldorf": 221, "erfurt": 109, "hamburg": 248, "hanover": 196, "jena": 119,
    "krefeld": 99, "monchengladbach": 94, "strasbourg": 365, "stuttgart": 196,
    "tubingen": 144, "ulm": 95, "weimar": 142, "zurich": 122,
    "frankfurt": 267, "lindau": 59, "munster": 174,
}


def fake_stems(city_sizes=CITY_SIZES):
    return {city: [f"{city}_{i // 50:06d}_{i:06d}" for i in range(n)]
            for city, n in city_sizes.items()}


def city_of(stem):
    return stem.split("_")[0]


def test_cityscapes_counts():
    assert sum(CITY_SIZES.values()) == 3475


@pytest.mark.parametrize("by_city", [True, False])
def test_partition_and_determinism(by_city):
    stems = fake_stems()
    parts = resplit(stems, seed=0, by_city=by_city)
    assert tuple(parts) == SPLIT_NAMES
    everything = [s for part in parts.values() for s in part]
    assert sorted(everything) == sorted(s for v in stems.values() for s in v)  # a partition
    assert all(part == sorted(part) for part in parts.values())
    assert resplit(stems, seed=0, by_city=by_city) == parts
    # Input order does not matter.
    shuffled = {c: list(reversed(v)) for c, v in reversed(list(stems.items()))}
    assert resplit(shuffled, seed=0, by_city=by_city) == parts
    assert resplit(stems, seed=1, by_city=by_city) != parts


def test_by_city_keeps_cities_whole_and_sizes_close():
    for seed in range(5):
        parts = resplit(fake_stems(), sizes=DEFAULT_SIZES, seed=seed, by_city=True)
        cities = {name: {city_of(s) for s in part} for name, part in parts.items()}
        assert not cities["train"] & cities["val"]
        assert not cities["train"] & cities["test"]
        assert not cities["val"] & cities["test"]
        # Greedy: within half the largest city (365) of the targets.
        for name, size in zip(("train", "val"), DEFAULT_SIZES):
            assert abs(len(parts[name]) - size) <= 365 / 2, (seed, name, len(parts[name]))


def test_exact_sizes_stratified_by_city():
    parts = resplit(fake_stems(), sizes=(1403, 326), seed=3, by_city=False)
    assert [len(parts[n]) for n in SPLIT_NAMES] == [1403, 326, 3475 - 1729]
    for name, part in parts.items():
        for city, n in CITY_SIZES.items():
            share = n * len(part) / 3475
            count = sum(city_of(s) == city for s in part)
            assert abs(count - share) <= 2, (name, city, count, share)


def test_small_and_edge_sizes():
    stems = fake_stems({"a": 3, "b": 4, "c": 5})
    assert {len(v) for v in resplit(stems, sizes=(0, 0), by_city=False).values()} == {0, 12}
    parts = resplit(stems, sizes=(12, 0), by_city=False)
    assert len(parts["train"]) == 12 and not parts["test"]
    parts = resplit(stems, sizes=(5, 3), by_city=True)
    assert all(len({city_of(s) for s in p}) <= 3 for p in parts.values())


@pytest.mark.parametrize("sizes", [(3000, 476), (-1, 3), (1, 2, 3)])
def test_bad_sizes(sizes):
    with pytest.raises(ValueError, match="sizes"):
        resplit(fake_stems(), sizes=sizes)


def test_duplicate_stem():
    with pytest.raises(ValueError, match="more than once"):
        resplit({"a": ["x"], "b": ["x"]}, sizes=(1, 0))


def test_subset():
    items = [f"img{i:03d}" for i in range(100)]
    s10 = subset(items, 10, seed=0)
    assert len(s10) == 10 and s10 == sorted(s10) and set(s10) <= set(items)
    assert subset(list(reversed(items)), 10, seed=0) == s10
    assert subset(items, 10, seed=1) != s10
    assert set(s10) <= set(subset(items, 11, seed=0))  # nested
    assert subset(items, 100) == items
    assert subset(items, 0) == []


@pytest.mark.parametrize("n", [101, -1])
def test_subset_bad_size(n):
    with pytest.raises(ValueError, match="subset"):
        subset(range(100), n)
