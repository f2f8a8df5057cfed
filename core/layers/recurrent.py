"""Recurrent layers: SimpleRNN, GRU, LSTM."""
