"""Pooling layers: Max/Average pooling 1D/2D and their global variants."""
