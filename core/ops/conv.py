"""Convolution and pooling ops (Conv, ConvTranspose, MaxPool, AveragePool) in Keras's channels-last layout."""
