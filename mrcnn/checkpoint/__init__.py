"""Weight files: the legacy Keras-2 HDF5 layout read, written and loaded by
name (hdf5.py); where the COCO and ImageNet files come from (pretrained.py)."""
