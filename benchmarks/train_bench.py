"""Training throughput: Netweaver (one ONNX graph per step in ONNX Runtime) against Keras 3 on the same work.

Prints one JSON line per case: steps per second for both (Keras when TensorFlow is installed, the `bench` extra),
their ratio, and each step's arithmetic (the model's forward + backward matmul FLOPs, as Keras performs them) as a
fraction of numpy's float32 matmul peak measured in the same run. (For Embedding -> RNN, Netweaver projects the
embedding table instead of every looked-up row, so it does less arithmetic than the nominal figure.)
Timings are the best of several epochs after a warm-up epoch, so graph building, session creation and tf.function
tracing are excluded on both sides; the two sides take turns epoch by epoch.

    python benchmarks/train_bench.py [--epochs N] [--case NAME ...] [--load idle|busy|both] [--devices]

Cases (sizes kept small so the default run stays short; steps per epoch in brackets): mlp [32], lstm [16], gru [16],
conv_autoencoder [10], conv_classifier [20], mnist_convnet [10], text_cnn [20], bidirectional [10], transformer [20].

Every case runs twice (`--load both`, the default): on the machine as it is ("idle"), then with one core kept busy
by a spinning process, as when a GUI or a browser shares a laptop's cores ("one core busy").

With --devices, each case times Netweaver on CUDA against Netweaver on the CPU (benchmarks/device_check.sh).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import core as nw  # noqa: E402
from core import layers  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from predict_bench import load_keras, mlp_models  # noqa: E402  (the same models and Keras loader)


# A pause before each timed epoch: both runtimes keep their worker threads spinning for a while after a call, and on
# two cores the other side's spinning threads would otherwise take the first steps' cores.
SETTLE_S = 0.3


def matmul_peak(n: int = 1024, repeats: int = 5) -> float:
    """numpy's float32 matmul rate (FLOP/s) on this machine, now."""
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    b = np.random.default_rng(1).random((n, n), dtype=np.float32)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2.0 * n ** 3 / best


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def mlp_case(keras):
    nw.utils.set_random_seed(0)
    ours, theirs, x, batch = mlp_models(keras)
    y = np.random.default_rng(1).random((len(x), 10), dtype=np.float32)
    # forward 2*B*sum(weights) FLOPs; backward about twice that (dX and dW products).
    flops = 6.0 * batch * (32 * 64 + 64 * 64 + 64 * 10)
    return ours, theirs, x, y, batch, "categorical_crossentropy", flops


def recurrent_case(kind):
    def make(keras):
        if not hasattr(layers, kind):
            return None
        nw.utils.set_random_seed(0)
        ours = nw.Sequential([nw.Input(shape=(100,)), layers.Embedding(1000, 64), getattr(layers, kind)(128),
                              layers.Dense(10, activation="softmax")])
        theirs = None
        if keras is not None:
            theirs = keras.Sequential([keras.Input(shape=(100,)), keras.layers.Embedding(1000, 64),
                                       getattr(keras.layers, kind)(128), keras.layers.Dense(10, activation="softmax")])
            theirs.set_weights(ours.get_weights())
        rng = np.random.default_rng(0)
        x = rng.integers(1, 1000, size=(1024, 100)).astype(np.float32)
        y = rng.integers(0, 10, size=(1024,))
        gates = 4 if kind == "LSTM" else 3
        flops = 6.0 * 64 * 100 * gates * 128 * (64 + 128)
        return ours, theirs, x, y, 64, "sparse_categorical_crossentropy", flops
    return make


def _twins(keras, build, input_shape, input_dtype="float32"):
    """The same model in Netweaver and (when installed) Keras 3, built by `build(layers_module)` on an Input of
    `input_shape`, with Keras given Netweaver's initial weights."""
    nw.utils.set_random_seed(0)
    ours = nw.Sequential([nw.Input(shape=input_shape, dtype=input_dtype)] + build(layers))
    theirs = None
    if keras is not None:
        theirs = keras.Sequential([keras.Input(shape=input_shape, dtype=input_dtype)] + build(keras.layers))
        theirs.set_weights(ours.get_weights())
    return ours, theirs


def _conv_flops(batch, convs):
    """Forward + backward FLOPs of 1-D convolutions given as (positions the kernel visits, kernel, in, out): each
    visit is k*in*out multiply-adds forward and about twice that backward (dX and dW)."""
    return 6.0 * batch * sum(n * k * cin * cout for n, k, cin, cout in convs)


def conv_autoencoder_case(keras):
    """keras-io "Timeseries anomaly detection using an Autoencoder": Conv1D x2 down, Conv1DTranspose x3 up."""
    def build(L):
        return [L.Conv1D(32, 7, padding="same", strides=2, activation="relu"), L.Dropout(0.2),
                L.Conv1D(16, 7, padding="same", strides=2, activation="relu"),
                L.Conv1DTranspose(16, 7, padding="same", strides=2, activation="relu"), L.Dropout(0.2),
                L.Conv1DTranspose(32, 7, padding="same", strides=2, activation="relu"),
                L.Conv1DTranspose(1, 7, padding="same")]
    ours, theirs = _twins(keras, build, (288, 1))
    x = np.random.default_rng(0).standard_normal((1280, 288, 1)).astype(np.float32)
    flops = _conv_flops(128, [(144, 7, 1, 32), (72, 7, 32, 16), (72, 7, 16, 16), (144, 7, 16, 32),
                              (288, 7, 32, 1)])
    return ours, theirs, x, x, 128, "mse", flops


def conv_classifier_case(keras):
    """keras-io "Timeseries classification from scratch": three Conv1D(64, 3) + BatchNormalization + ReLU blocks,
    global average pooling, softmax."""
    def build(L):
        blocks = []
        for _ in range(3):
            blocks += [L.Conv1D(64, 3, padding="same"), L.BatchNormalization(), L.Activation("relu")]
        return blocks + [L.GlobalAveragePooling1D(), L.Dense(2, activation="softmax")]
    ours, theirs = _twins(keras, build, (500, 1))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((640, 500, 1)).astype(np.float32)
    y = rng.integers(0, 2, size=(640,))
    flops = _conv_flops(32, [(500, 3, 1, 64), (500, 3, 64, 64), (500, 3, 64, 64)])
    return ours, theirs, x, y, 32, "sparse_categorical_crossentropy", flops


def mnist_convnet_case(keras):
    """keras-io "Simple MNIST convnet": Conv2D(32, 3) and Conv2D(64, 3) with ReLU, each followed by
    MaxPooling2D(2), then Flatten, Dropout(0.5), softmax over 10; batch 128, categorical crossentropy. Random images
    of MNIST's shape stand in for the dataset (the time per step does not depend on the pixels)."""
    def build(L):
        return [L.Conv2D(32, 3, activation="relu"), L.MaxPooling2D(2), L.Conv2D(64, 3, activation="relu"),
                L.MaxPooling2D(2), L.Flatten(), L.Dropout(0.5), L.Dense(10, activation="softmax")]
    ours, theirs = _twins(keras, build, (28, 28, 1))
    rng = np.random.default_rng(0)
    x = rng.random((1280, 28, 28, 1)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, size=1280)]
    # Forward + backward (dX and dW) of both convolutions as 3 x their multiply-adds, and the Dense layer's.
    flops = 6.0 * 128 * (26 * 26 * 9 * 1 * 32 + 11 * 11 * 9 * 32 * 64 + 1600 * 10)
    return ours, theirs, x, y, 128, "categorical_crossentropy", flops


def text_cnn_case(keras):
    """The seed example resources/examples/conv1d_text_cnn.nwproj, at its sizes (vocabulary 500, length 50)."""
    def build(L):
        return [L.Embedding(500, 16), L.SpatialDropout1D(0.2), L.ZeroPadding1D(2),
                L.Conv1D(32, 5, activation="relu"), L.GlobalMaxPooling1D(), L.Dense(2, activation="softmax")]
    ours, theirs = _twins(keras, build, (50,), "int32")
    rng = np.random.default_rng(0)
    x = rng.integers(1, 500, size=(640, 50)).astype(np.int32)
    y = rng.integers(0, 2, size=(640,))
    return ours, theirs, x, y, 32, "sparse_categorical_crossentropy", _conv_flops(32, [(50, 5, 16, 32)])


def bidirectional_case(keras):
    """keras-io "Bidirectional LSTM on IMDB": Embedding(20000, 128), two Bidirectional(LSTM(64)), sigmoid."""
    def build(L):
        return [L.Embedding(20000, 128), L.Bidirectional(L.LSTM(64, return_sequences=True)),
                L.Bidirectional(L.LSTM(64)), L.Dense(1, activation="sigmoid")]
    ours, theirs = _twins(keras, build, (200,), "int32")
    rng = np.random.default_rng(0)
    x = rng.integers(1, 20000, size=(320, 200)).astype(np.int32)
    y = rng.integers(0, 2, size=(320, 1)).astype(np.float32)
    flops = 6.0 * 32 * 200 * 2 * 2 * 4 * 64 * (128 + 64)  # 2 layers x 2 directions, inputs of 128 both times
    return ours, theirs, x, y, 32, "binary_crossentropy", flops


def transformer_case(keras):
    """The seed example resources/examples/transformer_encoder.nwproj (keras-io "Text classification with
    Transformer", token embeddings only): MultiHeadAttention(2 heads, key_dim 32) with a residual and
    LayerNormalization, a Dense(32) feed-forward with its own, pooling, Dense(20), softmax over 10 classes."""
    def build(lib):
        L = lib.layers
        inputs = lib.Input(shape=(20,), dtype="int32")
        x = L.Embedding(1000, 32)(inputs)
        attention = L.Dropout(0.1)(L.MultiHeadAttention(num_heads=2, key_dim=32)(x, x))
        x = L.LayerNormalization(epsilon=1e-6)(L.Add()([x, attention]))
        ffn = L.Dropout(0.1)(L.Dense(32)(L.Dense(32, activation="relu")(x)))
        x = L.LayerNormalization(epsilon=1e-6)(L.Add()([x, ffn]))
        x = L.Dropout(0.1)(L.GlobalAveragePooling1D()(x))
        outputs = L.Dense(10, activation="softmax")(L.Dense(20, activation="relu")(x))
        return lib.Model(inputs, outputs)

    nw.utils.set_random_seed(0)
    ours = build(nw)
    theirs = None
    if keras is not None:
        theirs = build(keras)
        theirs.set_weights(ours.get_weights())
    rng = np.random.default_rng(0)
    x = rng.integers(1, 1000, size=(640, 20)).astype(np.int32)
    y = rng.integers(0, 10, size=(640,))
    # per sample: Q, K, V projections (20 x 32 -> 2 x 32 each), scores and weighted values (2 heads x 20 x 20 x 32
    # each), the output projection (20 x 64 -> 32), the feed-forward (2 x 20 x 32 x 32), the head (32x20, 20x10)
    macs = 3 * 20 * 32 * 64 + 2 * 2 * 20 * 20 * 32 + 20 * 64 * 32 + 2 * 20 * 32 * 32 + 32 * 20 + 20 * 10
    return ours, theirs, x, y, 32, "sparse_categorical_crossentropy", 6.0 * 32 * macs


CASES = {"mlp": ("seed MLP 32-64-64-10, 1000 samples, batch 32", mlp_case),
         "lstm": ("Embedding(1000,64)-LSTM(128)-Dense(10), 1024 x 100, batch 64", recurrent_case("LSTM")),
         "gru": ("Embedding(1000,64)-GRU(128)-Dense(10), 1024 x 100, batch 64", recurrent_case("GRU")),
         "conv_autoencoder": ("Conv1D/Conv1DTranspose autoencoder (keras-io anomaly detection), 1280 x 288 x 1, "
                              "batch 128, mse", conv_autoencoder_case),
         "conv_classifier": ("3 x (Conv1D(64,3)-BatchNormalization-ReLU) classifier (keras-io timeseries "
                             "classification), 640 x 500 x 1, batch 32", conv_classifier_case),
         "mnist_convnet": ("2 x (Conv2D(3x3)-MaxPooling2D(2))-Dropout-Dense(10) (keras-io simple MNIST convnet), "
                           "1280 x 28 x 28 x 1, batch 128", mnist_convnet_case),
         "text_cnn": ("seed Conv1D text CNN Embedding(500,16)-Conv1D(32,5)-GlobalMaxPooling1D-Dense(2), 640 x 50, "
                      "batch 32", text_cnn_case),
         "bidirectional": ("Embedding(20000,128)-2 x Bidirectional(LSTM(64))-Dense(1) (keras-io IMDB), 320 x 200, "
                           "batch 32", bidirectional_case),
         "transformer": ("Embedding(1000,32)-MultiHeadAttention(2x32)-LayerNorm-Dense(32)x2-LayerNorm-pool-Dense "
                         "(seed transformer_encoder example), 640 x 20, batch 32", transformer_case)}


def steps_per_second(models, x, y, batch, epochs, devices=None) -> list[float]:
    """Best steps/s of each model over `epochs` timed epochs, after one warm-up epoch each (graph building,
    session creation, tracing). The models take turns epoch by epoch, so a shared machine whose speed drifts during
    the run (other tenants, frequency scaling) slows both sides alike and the ratio stays fair. `devices` gives
    each (Netweaver) model's device."""
    where = dict(zip(map(id, models), devices or []))

    def epoch(model):
        time.sleep(SETTLE_S)
        kwargs = {"device": where[id(model)]} if id(model) in where else {}
        return _timed(lambda: model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False, **kwargs))

    for model in models:
        epoch(model)
    best = [min(times) for times in zip(*[[epoch(m) for m in models] for _ in range(epochs)])]
    steps = -(-len(x) // batch)
    return [steps / t for t in best]


def _metrics(loss):
    return [] if loss == "mse" else ["accuracy"]  # keras-io's autoencoder compiles without metrics


def run_case(name, keras, epochs, peak):
    title, make = CASES[name]
    made = make(keras)
    if made is None:
        return {"case": name, "skipped": f"layers.{name.upper()} is not available in this build"}
    ours, theirs, x, y, batch, loss, flops = made
    metrics = _metrics(loss)
    ours.compile(optimizer=nw.optimizers.Adam(1e-3), loss=loss, metrics=metrics)
    models = [ours]
    if theirs is not None:
        theirs.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, metrics=metrics)
        models.append(theirs)
    rates = steps_per_second(models, x, y, batch, epochs)
    ours_sps = rates[0]
    out = {"case": name, "what": title, "optimizer": "Adam", "netweaver_steps_per_s": round(ours_sps, 1),
           "step_mflop": round(flops / 1e6, 3), "numpy_matmul_peak_gflops": round(peak / 1e9, 1),
           "netweaver_fraction_of_peak": round(flops * ours_sps / peak, 4)}
    if theirs is not None:
        keras_sps = rates[1]
        out.update(keras_steps_per_s=round(keras_sps, 1), speedup_vs_keras=round(ours_sps / keras_sps, 2),
                   keras_fraction_of_peak=round(flops * keras_sps / peak, 4))
    return out


def run_device_case(name, epochs):
    """Netweaver on CUDA against Netweaver on the CPU, same model, weights and data, taking turns."""
    from core import runtime

    title, make = CASES[name]
    on_cpu, _, x, y, batch, loss, _ = make(None)
    on_gpu = make(None)[0]
    for model in (on_cpu, on_gpu):
        model.compile(optimizer=nw.optimizers.Adam(1e-3), loss=loss, metrics=_metrics(loss))
    cpu_sps, cuda_sps = steps_per_second([on_cpu, on_gpu], x, y, batch, epochs, devices=["cpu", "cuda"])
    return {"case": name, "what": title, "devices": "cuda vs cpu", "cuda_usable": runtime.cuda_usable(),
            "cpu_steps_per_s": round(cpu_sps, 1), "cuda_steps_per_s": round(cuda_sps, 1),
            "cuda_over_cpu": round(cuda_sps / cpu_sps, 2)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8, help="timed epochs per side (best is kept)")
    parser.add_argument("--case", choices=sorted(CASES), action="append")
    parser.add_argument("--load", choices=("idle", "busy", "both"), default="both",
                        help="run on the machine as it is, with one core kept busy, or both (default)")
    parser.add_argument("--devices", action="store_true", help="time Netweaver on CUDA against the CPU instead of "
                                                               "against Keras")
    args = parser.parse_args(argv)
    if args.devices:
        for name in args.case or list(CASES):
            print(json.dumps(run_device_case(name, args.epochs)), flush=True)
        return
    keras = load_keras()
    loads = {"idle": [False], "busy": [True], "both": [False, True]}[args.load]
    for busy in loads:
        with one_core_busy(busy):
            peak = matmul_peak()
            for name in args.case or list(CASES):
                out = run_case(name, keras, args.epochs, peak)
                print(json.dumps(dict(out, load="one core busy" if busy else "idle")), flush=True)


@contextlib.contextmanager
def one_core_busy(busy: bool):
    """With `busy`, another process spins on one core while the block runs."""
    if not busy:
        yield
        return
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        yield
    finally:
        spinner.terminate()
        spinner.wait()


if __name__ == "__main__":
    main()
