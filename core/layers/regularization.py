"""Regularization layers: Dropout, SpatialDropout1D/2D, GaussianNoise (active only in training)."""
