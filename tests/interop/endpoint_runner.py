"""Run by tests/interop/test_endpoint_layer.py in a subprocess: the endpoint-layer pattern (a layer that adds its
loss with `add_loss` and reports metrics from inside `call`; `compile()` gets no loss) trained in real Keras.

    python endpoint_runner.py keras3|tf_keras2 functional|subclassed OUT.npz

OUT.npz gets the initial weights, the history, evaluate's results, predictions and the trained weights; the test
trains the same model in Netweaver from the same start and compares.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ["KERAS_BACKEND"] = "tensorflow"

import numpy as np  # noqa: E402


def endpoint_layer(keras, ops, keras2_metrics):
    """Keras 3 updates a metric held by the layer; tf.keras 2 reports values with `add_metric`."""

    mean = ops.reduce_mean if keras2_metrics else ops.mean  # TensorFlow's name under tf.keras 2

    class LogisticEndpoint(keras.layers.Layer):
        def __init__(self, name=None):
            super().__init__(name=name)
            self.loss_fn = keras.losses.BinaryCrossentropy(from_logits=True)
            self.accuracy_fn = keras.metrics.BinaryAccuracy(name="accuracy")

        def call(self, logits, targets=None, sample_weight=None):
            if targets is not None:
                self.add_loss(self.loss_fn(targets, logits, sample_weight))
                self.add_loss(0.01 * mean(ops.square(logits)))
                if keras2_metrics:
                    self.add_metric(self.accuracy_fn(targets, ops.sigmoid(logits), sample_weight))
                    self.add_metric(mean(ops.abs(logits)), name="mean_abs_logit")
                else:
                    self.accuracy_fn.update_state(targets, ops.sigmoid(logits), sample_weight)
            return ops.sigmoid(logits)

    return LogisticEndpoint


def endpoint_model(keras, style="functional", keras2_metrics=False, ops=None):
    """The same model in either library: `keras` is real Keras (3 or tf.keras 2) or `core`; `ops` the matching
    tensor functions (keras.ops or core.ops; with tf.keras 2, `tensorflow` or `core` under TensorFlow's names)."""
    ops = ops if ops is not None else keras.ops
    LogisticEndpoint = endpoint_layer(keras, ops, keras2_metrics)
    if style == "subclassed":
        class LogReg(keras.Model):
            def __init__(self):
                super().__init__()
                self.hidden = keras.layers.Dense(5, activation="tanh", name="hidden")
                self.dense = keras.layers.Dense(1, name="logits")
                self.endpoint = LogisticEndpoint(name="endpoint")

            def call(self, inputs):
                logits = self.dense(self.hidden(inputs["inputs"]))
                return self.endpoint(logits=logits, targets=inputs["targets"],
                                     sample_weight=inputs["sample_weight"])

        return LogReg()
    inputs = keras.Input((6,), name="inputs")
    targets = keras.Input((1,), name="targets")
    sample_weight = keras.Input((1,), name="sample_weight")
    hidden = keras.layers.Dense(5, activation="tanh", name="hidden")(inputs)
    logits = keras.layers.Dense(1, name="logits")(hidden)
    preds = LogisticEndpoint(name="endpoint")(logits, targets, sample_weight)
    return keras.Model([inputs, targets, sample_weight], preds)


# Batches of equal size for tf.keras 2: with only `add_loss` losses (no compiled loss) its epoch 'loss' is the
# unweighted mean of the batch losses, where Keras 3 (and Netweaver) weigh each batch by its size; a 40-sample epoch
# in batches of 16 shows the size weighting against Keras 3, and batches of 20 compare the rest with tf.keras 2.
BATCH_SIZE = {"keras3": 16, "tf_keras2": 20}


def endpoint_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 6)).astype("float32")
    y = (x[:, :1] + 0.5 * x[:, 1:2] > 0).astype("float32")
    return {"inputs": x, "targets": y, "sample_weight": rng.uniform(0.2, 1.0, size=(40, 1)).astype("float32")}


def main(target, style, out_path):
    if target == "keras3":
        import keras

        ops = keras.ops
    else:
        import tensorflow as tf
        import tf_keras as keras

        ops = tf
    keras.utils.set_random_seed(1)
    model = endpoint_model(keras, style, keras2_metrics=target == "tf_keras2", ops=ops)
    data = endpoint_data()
    if style == "subclassed":
        model({k: v[:2] for k, v in data.items()})  # build the weights before reading them
    initial = [np.asarray(w) for w in model.get_weights()]
    model.compile(keras.optimizers.Adam(0.05))
    history = model.fit(data, epochs=3, batch_size=BATCH_SIZE[target], shuffle=False, verbose=0).history
    evaluated = model.evaluate(data, batch_size=BATCH_SIZE[target], verbose=0, return_dict=True)
    results = {f"initial_{i}": w for i, w in enumerate(initial)}
    results.update({f"trained_{i}": np.asarray(w) for i, w in enumerate(model.get_weights())})
    results.update({f"history_{k}": np.asarray(v) for k, v in history.items()})
    results.update({f"evaluate_{k}": np.asarray(v) for k, v in evaluated.items()})
    results["predict"] = model.predict(data, verbose=0)
    np.savez(out_path, **results)


if __name__ == "__main__":
    main(*sys.argv[1:4])
