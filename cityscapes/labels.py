"""The Cityscapes instance classes, from cityscapesscripts' label table.

Cityscapes annotates individual instances for 10 of its labels (the table's
`hasInstances`); 8 of them are scored by the official instance benchmark
(caravan and trailer are `ignoreInEval`). Our models number the classes we
train on 1..K (0 is the background) in label-id order:

    person 24, rider 25, car 26, truck 27, bus 28, caravan 29, trailer 30,
    train 31, motorcycle 32, bicycle 33      (official label ids)

`ClassMap(EVALUATED_CLASSES)` trains on the 8 evaluated classes only, as
detectron2 does; instances of the classes left out are then background.
"""

from cityscapesscripts.helpers.labels import labels as _LABELS
from cityscapesscripts.helpers.labels import name2label

# The 10 labels with instance annotations, in label-id order.
INSTANCE_CLASSES = tuple(label.name for label in _LABELS if label.hasInstances)
# The 8 of them that the official instance-level evaluation scores.
EVALUATED_CLASSES = tuple(
    label.name for label in _LABELS if label.hasInstances and not label.ignoreInEval
)
GROUP_SUFFIX = "group"


def label_by_name(name):
    """The cityscapesscripts Label tuple of `name`, or None when unknown."""
    return name2label.get(name)


def split_group(label_name):
    """("cargroup") -> ("car", True); ("car") -> ("car", False).

    Follows json2instanceImg: only a name the table does not know and that
    ends in "group" is a group (the table itself has "polegroup").
    """
    if label_name not in name2label and label_name.endswith(GROUP_SUFFIX):
        return label_name[: -len(GROUP_SUFFIX)], True
    return label_name, False


class ClassMap:
    """Contiguous class ids 1..K for a subset of the instance classes.

    classes: names from INSTANCE_CLASSES (default all 10), kept in label-id
    order whatever order they are given in.
    """

    def __init__(self, classes=INSTANCE_CLASSES):
        unknown = [c for c in classes if c not in INSTANCE_CLASSES]
        if unknown:
            raise ValueError(
                f"not Cityscapes instance classes: {unknown}; choose from {list(INSTANCE_CLASSES)}"
            )
        if not classes:
            raise ValueError("ClassMap needs at least one class")
        self.names = tuple(c for c in INSTANCE_CLASSES if c in set(classes))
        self.label_ids = tuple(name2label[c].id for c in self.names)
        self._by_label_id = {lid: i + 1 for i, lid in enumerate(self.label_ids)}

    def __len__(self):
        return len(self.names)

    def __repr__(self):
        return f"ClassMap({list(self.names)})"

    def class_id(self, label_id):
        """Our class id (1..K) of an official label id, 0 if not trained on."""
        return self._by_label_id.get(int(label_id), 0)

    def label_id(self, class_id):
        """The official label id of our class id 1..K."""
        return self.label_ids[class_id - 1]
