"""Training throughput: Netweaver (one ONNX graph per step in ONNX Runtime) against Keras 3 on the same work.

Prints one JSON line per case: steps per second for both (Keras when TensorFlow is installed, the `bench` extra),
their ratio, and each step's arithmetic (the model's forward + backward matmul FLOPs, as Keras performs them) as a
fraction of numpy's float32 matmul peak measured in the same run. (For Embedding -> RNN, Netweaver projects the
embedding table instead of every looked-up row, so it does less arithmetic than the nominal figure.)
Timings are the best of several epochs after a warm-up epoch, so graph building, session creation and tf.function
tracing are excluded on both sides; the two sides take turns epoch by epoch.

    python benchmarks/train_bench.py [--epochs N] [--case mlp|lstm|gru] [--devices]

With --devices, each case times Netweaver on CUDA against Netweaver on the CPU (benchmarks/device_check.sh).
"""

from __future__ import annotations

import argparse
import json
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


CASES = {"mlp": ("seed MLP 32-64-64-10, 1000 samples, batch 32", mlp_case),
         "lstm": ("Embedding(1000,64)-LSTM(128)-Dense(10), 1024 x 100, batch 64", recurrent_case("LSTM")),
         "gru": ("Embedding(1000,64)-GRU(128)-Dense(10), 1024 x 100, batch 64", recurrent_case("GRU"))}


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


def run_case(name, keras, epochs, peak):
    title, make = CASES[name]
    made = make(keras)
    if made is None:
        return {"case": name, "skipped": f"layers.{name.upper()} is not available in this build"}
    ours, theirs, x, y, batch, loss, flops = made
    ours.compile(optimizer=nw.optimizers.Adam(1e-3), loss=loss, metrics=["accuracy"])
    models = [ours]
    if theirs is not None:
        theirs.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, metrics=["accuracy"])
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
        model.compile(optimizer=nw.optimizers.Adam(1e-3), loss=loss, metrics=["accuracy"])
    cpu_sps, cuda_sps = steps_per_second([on_cpu, on_gpu], x, y, batch, epochs, devices=["cpu", "cuda"])
    return {"case": name, "what": title, "devices": "cuda vs cpu", "cuda_usable": runtime.cuda_usable(),
            "cpu_steps_per_s": round(cpu_sps, 1), "cuda_steps_per_s": round(cuda_sps, 1),
            "cuda_over_cpu": round(cuda_sps / cpu_sps, 2)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8, help="timed epochs per side (best is kept)")
    parser.add_argument("--case", choices=sorted(CASES), action="append")
    parser.add_argument("--devices", action="store_true", help="time Netweaver on CUDA against the CPU instead of "
                                                               "against Keras")
    args = parser.parse_args(argv)
    if args.devices:
        for name in args.case or list(CASES):
            print(json.dumps(run_device_case(name, args.epochs)), flush=True)
        return
    keras = load_keras()
    peak = matmul_peak()
    for name in args.case or list(CASES):
        print(json.dumps(run_case(name, keras, args.epochs, peak)), flush=True)


if __name__ == "__main__":
    main()
