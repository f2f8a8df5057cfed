"""Run by tests/interop/test_endpoint_layer.py in a subprocess: the endpoint-layer pattern (a layer that adds its
loss with `add_loss` and updates a metric inside `call`; `compile()` gets no loss) trained in real Keras 3.

    python endpoint_runner.py OUT.npz

OUT.npz gets the data, the initial weights, the history, evaluate's results and the trained weights; the test trains
the same model in Netweaver from the same start and compares.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ["KERAS_BACKEND"] = "tensorflow"

import numpy as np  # noqa: E402


def endpoint_model(keras):
    """The same model in either library: `keras` is real Keras 3 or `core`."""
    ops = keras.ops

    class LogisticEndpoint(keras.layers.Layer):
        def __init__(self, name=None):
            super().__init__(name=name)
            self.loss_fn = keras.losses.BinaryCrossentropy(from_logits=True)
            self.accuracy_fn = keras.metrics.BinaryAccuracy(name="accuracy")

        def call(self, logits, targets=None, sample_weight=None):
            if targets is not None:
                self.add_loss(self.loss_fn(targets, logits, sample_weight))
                self.add_loss(0.01 * ops.mean(ops.square(logits)))
                self.accuracy_fn.update_state(targets, ops.sigmoid(logits), sample_weight)
            return ops.sigmoid(logits)

    inputs = keras.Input((6,), name="inputs")
    targets = keras.Input((1,), name="targets")
    sample_weight = keras.Input((1,), name="sample_weight")
    hidden = keras.layers.Dense(5, activation="tanh", name="hidden")(inputs)
    logits = keras.layers.Dense(1, name="logits")(hidden)
    preds = LogisticEndpoint(name="endpoint")(logits, targets, sample_weight)
    return keras.Model([inputs, targets, sample_weight], preds)


def endpoint_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 6)).astype("float32")
    y = (x[:, :1] + 0.5 * x[:, 1:2] > 0).astype("float32")
    return {"inputs": x, "targets": y, "sample_weight": rng.uniform(0.2, 1.0, size=(40, 1)).astype("float32")}


def main(out_path):
    import keras

    keras.utils.set_random_seed(1)
    model = endpoint_model(keras)
    data = endpoint_data()
    initial = [np.asarray(w) for w in model.get_weights()]
    model.compile(keras.optimizers.Adam(0.05))
    history = model.fit(data, epochs=3, batch_size=16, shuffle=False, verbose=0).history
    evaluated = model.evaluate(data, batch_size=16, verbose=0, return_dict=True)
    results = {f"initial_{i}": w for i, w in enumerate(initial)}
    results.update({f"trained_{i}": np.asarray(w) for i, w in enumerate(model.get_weights())})
    results.update({f"history_{k}": np.asarray(v) for k, v in history.items()})
    results.update({f"evaluate_{k}": np.asarray(v) for k, v in evaluated.items()})
    results["predict"] = model.predict(data, verbose=0)
    np.savez(out_path, **results)


if __name__ == "__main__":
    main(sys.argv[1])
