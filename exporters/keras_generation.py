"""Which Keras wrote a file: Keras 2 (tf.keras 2 and the standalone Keras 2 before it) or Keras 3.

The answer changes numbers, not only spellings: 'hard_sigmoid' is 0.2x + 0.5 in Keras 2 and x / 6 + 0.5 in Keras 3,
and Keras 2.2 and older defaulted LSTM and GRU to it. So the file's own word (`keras_version` in an .h5's attributes,
a .keras archive's metadata.json, a JSON's own field) is trusted first, then a form only one generation writes; only
then is the answer a guess, and the readers say so where the guess can change a prediction.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from core.errors import FileFormatError


class Generation(NamedTuple):
    """Which Keras wrote a config: `name` is 'tf_keras2' or 'keras3'; `evidence` says how that is known, and is None
    when nothing in the file said so and the name is a guess."""

    name: str
    evidence: str | None


def generation_of_version(keras_version: str, source: str = "The file") -> str | None:
    """'tf_keras2' or 'keras3' for a `keras_version` string ('2.2.4', '2.4.0-tf', '3.15.1'); None when it is not a
    version. Keras 1 wrote other layer arguments (`output_dim`, `init`, ...) and other weight layouts: refused."""
    match = re.match(r"\s*(\d+)\.", str(keras_version))
    if match is None:
        return None
    major = int(match.group(1))
    if major < 2:
        raise FileFormatError(f"{source} was written by Keras {keras_version}. Netweaver reads files of Keras 2.0 and "
                              f"later; Keras 1 named layer arguments and weights differently. Load it in Keras 2 and "
                              f"save it again.")
    return "tf_keras2" if major == 2 else "keras3"


def config_generation(config, keras_version: str | None = None, source: str = "The file") -> Generation:
    """Which Keras wrote a model config: the file's `keras_version` (given, or the config's own) when there is one,
    else a form only one generation writes, else a guess of Keras 3 (with `evidence` None)."""
    for version, where in ((keras_version, "the file's keras_version"),
                           (config.get("keras_version") if isinstance(config, dict) else None,
                            "the config's keras_version")):
        if isinstance(version, bytes):
            version = version.decode("utf8", errors="replace")
        if isinstance(version, str) and version:
            name = generation_of_version(version, source)
            if name is not None:
                return Generation(name, f"{where} is {version!r}")
    if isinstance(config, dict) and config.get("class_name") == "Sequential" and isinstance(config.get("config"), list):
        return Generation("tf_keras2", "its Sequential config is a bare list of layers, as Keras 2.1 and older wrote")
    stack = [config]
    while stack:
        x = stack.pop()
        if isinstance(x, dict):
            cfg = x.get("config")
            if isinstance(cfg, dict):
                name = cfg.get("name", "?")
                if "batch_input_shape" in cfg:
                    return Generation("tf_keras2", f"layer '{name}' has batch_input_shape, which only Keras 2 wrote")
                if x.get("class_name") == "InputLayer" and "batch_shape" in cfg:
                    return Generation("keras3", f"InputLayer '{name}' has batch_shape, which only Keras 3 writes")
                if isinstance(cfg.get("dtype"), dict):
                    return Generation("keras3", f"layer '{name}' has a dtype policy object, which only Keras 3 "
                                                f"writes")
                if "time_major" in cfg:
                    return Generation("tf_keras2", f"layer '{name}' has time_major, which only Keras 2 wrote")
            nodes = x.get("inbound_nodes")
            if isinstance(nodes, list) and nodes:
                if isinstance(nodes[0], dict):
                    return Generation("keras3", f"layer '{x.get('name', '?')}' lists its calls as Keras 3 does")
                if isinstance(nodes[0], list):
                    return Generation("tf_keras2", f"layer '{x.get('name', '?')}' lists its calls as Keras 2 did")
            stack.extend(v for v in x.values() if isinstance(v, (dict, list)))
        elif isinstance(x, list):
            stack.extend(v for v in x if isinstance(v, (dict, list)))
    return Generation("keras3", None)
