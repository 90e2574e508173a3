import pytest

from cityscapes.labels import EVALUATED_CLASSES, INSTANCE_CLASSES, ClassMap, split_group


def test_instance_classes_and_label_ids():
    assert INSTANCE_CLASSES == ("person", "rider", "car", "truck", "bus", "caravan",
                                "trailer", "train", "motorcycle", "bicycle")
    assert EVALUATED_CLASSES == ("person", "rider", "car", "truck", "bus", "train",
                                 "motorcycle", "bicycle")
    cmap = ClassMap()
    assert cmap.label_ids == tuple(range(24, 34))
    assert [cmap.class_id(i) for i in (24, 26, 33, 7, 18)] == [1, 3, 10, 0, 0]
    assert cmap.label_id(3) == 26


def test_subset_is_contiguous_in_label_order():
    cmap = ClassMap(["bicycle", "person", "train"])
    assert cmap.names == ("person", "train", "bicycle")
    assert [cmap.class_id(i) for i in (24, 31, 33, 26)] == [1, 2, 3, 0]
    e = ClassMap(EVALUATED_CLASSES)
    assert len(e) == 8 and e.class_id(29) == 0 and e.class_id(31) == 6


def test_unknown_class_is_an_error():
    with pytest.raises(ValueError, match="pedestrian"):
        ClassMap(["pedestrian"])


def test_group_names():
    assert split_group("cargroup") == ("car", True)
    assert split_group("persongroup") == ("person", True)
    assert split_group("polegroup") == ("polegroup", False)  # a label of its own
    assert split_group("car") == ("car", False)
