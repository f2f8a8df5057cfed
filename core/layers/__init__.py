"""`core.layers`: every built-in layer, importable as `from core import layers`.

A layer class is found by its Keras class name for configs (see `layer_registry`), so adding a layer means adding
its class to one of these modules.
"""

from core.layers.base import Input, InputLayer, KerasTensor, Layer, Node, Variable  # noqa: F401
from core.layers.core import *  # noqa: F401,F403
from core.layers.reshaping import *  # noqa: F401,F403
from core.layers.merging import *  # noqa: F401,F403
from core.layers.normalization import *  # noqa: F401,F403
from core.layers.regularization import *  # noqa: F401,F403
from core.layers.convolutional import *  # noqa: F401,F403
from core.layers.pooling import *  # noqa: F401,F403
from core.layers.recurrent import *  # noqa: F401,F403
from core.layers.wrappers import *  # noqa: F401,F403
from core.layers.activation import *  # noqa: F401,F403
from core.layers.attention import *  # noqa: F401,F403
from core.layers.rnn_cells import *  # noqa: F401,F403
from core.layers.preprocessing import *  # noqa: F401,F403
from core.layers.text_preprocessing import *  # noqa: F401,F403


def layer_registry() -> dict[str, type]:
    """Keras class name -> layer class, for every built-in layer (and the models, which are layers too)."""
    import core.models as models

    reg = {}
    for obj in list(globals().values()) + [models.Model, models.Functional, models.Sequential]:
        if isinstance(obj, type) and issubclass(obj, Layer):
            reg[obj.__name__] = obj
    return reg
