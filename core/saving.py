"""The Keras calls that read and write files (`save`, `save_weights`, `load_weights`, `to_json`, ...).

They are the front door; the formats themselves live in `exporters/`, imported when a call needs one.
"""

from __future__ import annotations


class SavingMixin:
    """Mixed into `Model`."""

    def save_weights(self, filepath, overwrite=True, save_format=None, **kwargs):
        from exporters import weights_io

        weights_io.save_weights(self, filepath, overwrite=overwrite, save_format=save_format)

    def load_weights(self, filepath, by_name=False, skip_mismatch=False, **kwargs):
        from exporters import weights_io

        weights_io.load_weights(self, filepath, by_name=by_name, skip_mismatch=skip_mismatch)
        self._invalidate()
