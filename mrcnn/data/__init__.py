"""Data: Matterport's Dataset base class, image resizing and molding,
masks and mini-masks, the mini-mask cache, augmentation and the tf.data
input pipeline."""
