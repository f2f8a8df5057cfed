"""Recurrent ops: ONNX's LSTM, GRU and RNN nodes, and the Scan-based recurrence used where they cannot express Keras."""
