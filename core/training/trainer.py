"""`compile`, `fit`, `evaluate`: the Keras training API, mixed into `Model`."""

from __future__ import annotations


class TrainerMixin:
    """Mixed into `Model`; holds the compiled training configuration and the ONNX Runtime training session."""
