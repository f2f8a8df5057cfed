"""The engine's errors.

Every error the engine raises on bad input is a `NetweaverError`, so callers (the GUI, the headless commands, the
fuzz tests) can tell "the input was wrong" from "the program is wrong". Each also derives from the built-in class a
Keras user would catch (`ValueError`, `TypeError`), so Keras code that catches those keeps working.
"""


class NetweaverError(Exception):
    """Base class of every error Netweaver raises on bad input."""


class ShapeError(NetweaverError, ValueError):
    """A tensor's shape does not fit what a layer or op expects."""


class GraphError(NetweaverError, ValueError):
    """A model graph is malformed: a cycle, an unreachable output, a missing input."""


class ConfigError(NetweaverError, ValueError):
    """A layer, model or object config is invalid or names something unknown."""


class WeightsError(NetweaverError, ValueError):
    """Weights do not fit the model: wrong count, names or shapes."""


class InputDataError(NetweaverError, ValueError):
    """Data passed to predict/fit/evaluate does not fit the model's inputs or outputs."""


class MaskError(NetweaverError, ValueError):
    """A mask reached a layer that cannot take one."""


class FileFormatError(NetweaverError, ValueError):
    """A file is not in the expected format, or is damaged."""


class DeviceError(NetweaverError, RuntimeError):
    """The requested device cannot be used."""


class OutputPathError(NetweaverError, OSError):
    """A file cannot be written where asked: its folder cannot be made, or the path is a folder or not writable."""


class KerasGenerationWarning(UserWarning):
    """A file did not say which Keras wrote it, and the two generations would read it into different numbers."""
