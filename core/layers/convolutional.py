"""Convolution layers: Conv1D, Conv2D (channels-last, as Keras)."""
