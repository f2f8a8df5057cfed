"""The Keras calls that read and write files (`save`, `save_weights`, `load_weights`, `to_json`, ...).

They are the front door; the formats themselves live in `exporters/`, imported when a call needs one. `target`
("keras3", the default, or "tf_keras2") picks which Keras the written file is for.
"""

from __future__ import annotations


class SavingMixin:
    """Mixed into `Model`."""

    def save(self, filepath, overwrite=True, save_format=None, include_optimizer=True, *, target="keras3",
             **kwargs):
        """`.keras` (Keras 3 archive) or `.h5`/`.hdf5` (legacy full model, for `target`)."""
        from exporters import keras_model

        keras_model.save_model(self, filepath, overwrite=overwrite, save_format=save_format,
                               include_optimizer=include_optimizer, target=target)

    def save_weights(self, filepath, overwrite=True, save_format=None, *, target="keras3", **kwargs):
        from exporters import weights_io

        weights_io.save_weights(self, filepath, overwrite=overwrite, save_format=save_format, target=target)

    def load_weights(self, filepath, by_name=False, skip_mismatch=False, **kwargs):
        from exporters import weights_io

        weights_io.load_weights(self, filepath, by_name=by_name, skip_mismatch=skip_mismatch)
        self._invalidate()

    def to_json(self, target="keras3", **kwargs) -> str:
        from exporters import keras_config

        return keras_config.to_json(self, target=target, **kwargs)

    def to_yaml(self, target="keras3", **kwargs) -> str:
        from exporters import keras_config

        return keras_config.to_yaml(self, target=target, **kwargs)
