"""`core.models`: Model, Functional, Sequential, and loading models from configs and files."""

from core.models.model import Model  # noqa: F401
from core.models.functional import Functional  # noqa: F401
from core.models.sequential import Sequential  # noqa: F401


def model_from_config(config, custom_objects=None):
    from core.models.model_config import deserialize_layer

    return deserialize_layer(config, custom_objects=custom_objects)


def model_from_json(json_string, custom_objects=None, safe_mode=True):
    from exporters.keras_config import model_from_json as _load

    return _load(json_string, custom_objects=custom_objects, safe_mode=safe_mode)


def model_from_yaml(yaml_string, custom_objects=None, safe_mode=True):
    from exporters.keras_config import model_from_yaml as _load

    return _load(yaml_string, custom_objects=custom_objects, safe_mode=safe_mode)


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):  # noqa: A002 - Keras's name
    from exporters.keras_model import load_model as _load

    return _load(filepath, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode)


def clone_model(model):
    from core.models.model_config import deserialize_layer, serialize_layer

    return deserialize_layer(serialize_layer(model))
