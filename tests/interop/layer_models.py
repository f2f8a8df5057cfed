"""Small models of the activation and attention layers, written once for any Keras-like module.

`build(lib, generation, name)` makes model `name` with `lib` (`core`, `keras` or `tf_keras`), so the same
architecture is built here and in real Keras; `layer_models_runner.py` builds them in real Keras, and the tests build
them here. Each entry: (builder, input shapes without the batch, generations that have its layers).
"""

import numpy as np

BOTH = ("keras3", "tf_keras2")


def _activations(lib, generation):
    L = lib.layers
    x = lib.Input((6, 4), name="x")
    h = L.Dense(8, name="d1")(x)
    a = L.ReLU(max_value=1.5, negative_slope=0.1, threshold=0.2, name="relu")(h)
    b = L.LeakyReLU(**({"alpha": 0.2} if generation == "tf_keras2" else {"negative_slope": 0.2}), name="leaky")(h)
    c = L.PReLU(alpha_initializer="random_normal", shared_axes=[1], name="prelu")(h)
    d = L.ELU(alpha=0.7, name="elu")(h)
    e = L.Softmax(axis=1, name="softmax")(h)
    f = L.Softmax(axis=[1, 2], name="softmax_2d")(h)
    return lib.Model(x, L.Concatenate(name="cat")([a, b, c, d, e, f]), name="activations")


def _thresholded(lib, generation):
    # Keras 3 has no ThresholdedReLU; ours is written there as the ReLU(threshold=theta) that Keras 3 builds here.
    x = lib.Input((5,), name="x")
    thr = lib.layers.ThresholdedReLU(theta=0.3, name="thr") if hasattr(lib.layers, "ThresholdedReLU") else \
        lib.layers.ReLU(threshold=0.3, name="thr")
    return lib.Model(x, thr(lib.layers.Dense(4, name="d")(x)), name="thresholded")


MODELS = {
    "activations": (_activations, [(6, 4)], BOTH),
    "thresholded": (_thresholded, [(5,)], BOTH),
}


def build(lib, generation, name):
    return MODELS[name][0](lib, generation)


def inputs_for(name, seed=5):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(3,) + tuple(s)).astype("float32") * 2 for s in MODELS[name][1]]


def randomize(model, seed=9):
    """Random weights (so a zero-initialized weight, e.g. PReLU's alpha, matters); the same values in any Keras."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.5, np.shape(w)).astype("float32") for w in model.get_weights()])
