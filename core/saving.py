"""The Keras calls that read and write files (`save`, `save_weights`, `load_weights`, `to_json`, ...).

They are the front door; the formats themselves live in `exporters/`, imported when a call needs one. `target`
("keras3" or "tf_keras2") picks which Keras the written file is for. Left out, it is the generation that wrote the
file the model was loaded from (`keras_generation`), else Keras 3; a `.keras` archive is always Keras 3's.
"""

from __future__ import annotations

import os


class SavingMixin:
    """Mixed into `Model`."""

    keras_generation = None  # set by the loaders: 'tf_keras2' or 'keras3'

    def _target(self, target, filepath=None) -> str:
        if target is not None:
            return target
        if filepath is not None and os.fspath(filepath).lower().endswith(".keras"):
            return "keras3"
        return self.keras_generation or "keras3"

    def save(self, filepath, overwrite=True, save_format=None, include_optimizer=True, *, target=None,
             **kwargs):
        """`.keras` (Keras 3 archive) or `.h5`/`.hdf5` (legacy full model, for `target`)."""
        from exporters import keras_model

        keras_model.save_model(self, filepath, overwrite=overwrite, save_format=save_format,
                               include_optimizer=include_optimizer,
                               target=self._target(target, filepath))

    def save_weights(self, filepath, overwrite=True, save_format=None, *, target=None, **kwargs):
        from exporters import weights_io

        weights_io.save_weights(self, filepath, overwrite=overwrite, save_format=save_format,
                                target=self._target(target))

    def load_weights(self, filepath, by_name=False, skip_mismatch=False, **kwargs):
        from exporters import weights_io

        weights_io.load_weights(self, filepath, by_name=by_name, skip_mismatch=skip_mismatch)
        self._invalidate()

    def to_json(self, target=None, **kwargs) -> str:
        from exporters import keras_config

        return keras_config.to_json(self, target=self._target(target), **kwargs)

    def to_yaml(self, target=None, **kwargs) -> str:
        from exporters import keras_config

        return keras_config.to_yaml(self, target=self._target(target), **kwargs)
