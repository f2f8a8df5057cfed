"""Training in ONNX Runtime: one ONNX graph per step (forward, loss, reverse-mode gradient, optimizer update)."""
