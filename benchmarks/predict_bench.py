"""Predict throughput: Netweaver (ONNX Runtime) against Keras 3 on the same model, weights and data.

Prints one JSON line per case. Keras's figures (and the ratio) appear when TensorFlow is installed (the `bench` extra).
Each timing is the best of several repeats after a warm-up, so session creation and tf.function tracing are excluded
on both sides.

    python benchmarks/predict_bench.py [--repeats N] [--case mlp|lstm]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import core as nw  # noqa: E402
from core import layers  # noqa: E402


def best_time(fn, repeats: int) -> float:
    fn()  # warm-up: builds sessions / traces functions
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def load_keras():
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        import keras
    except ImportError:
        return None
    return keras


def mlp_models(keras):
    ours = nw.Sequential([layers.Dense(64, activation="relu", input_shape=(32,)),
                          layers.Dense(64, activation="relu"),
                          layers.Dense(10, activation="softmax")])
    theirs = None
    if keras is not None:
        theirs = keras.Sequential([keras.Input(shape=(32,)), keras.layers.Dense(64, activation="relu"),
                                   keras.layers.Dense(64, activation="relu"),
                                   keras.layers.Dense(10, activation="softmax")])
        theirs.set_weights(ours.get_weights())
    x = np.random.default_rng(0).random((1000, 32), dtype=np.float32)
    return ours, theirs, x, 32


def lstm_models(keras):
    if not hasattr(layers, "LSTM"):
        return None
    ours = nw.Sequential([nw.Input(shape=(100,)), layers.Embedding(1000, 64), layers.LSTM(128),
                          layers.Dense(10, activation="softmax")])
    theirs = None
    if keras is not None:
        theirs = keras.Sequential([keras.Input(shape=(100,)), keras.layers.Embedding(1000, 64),
                                   keras.layers.LSTM(128), keras.layers.Dense(10, activation="softmax")])
        theirs.set_weights(ours.get_weights())
    x = np.random.default_rng(0).integers(1, 1000, size=(2048, 100)).astype(np.float32)
    return ours, theirs, x, 64


CASES = {"mlp": ("seed MLP 32-64-64-10, 1000 samples, batch 32", mlp_models),
         "lstm": ("Embedding(1000,64)-LSTM(128)-Dense(10), 2048 x 100, batch 64", lstm_models)}


def run_case(name: str, keras, repeats: int) -> dict | None:
    title, make = CASES[name]
    built = make(keras)
    if built is None:
        return {"case": name, "skipped": "layer not available in this build"}
    ours, theirs, x, batch = built
    n = x.shape[0]
    t_ours = best_time(lambda: ours.predict(x, batch_size=batch), repeats)
    result = {"case": name, "work": title, "netweaver_samples_per_s": round(n / t_ours, 1),
              "netweaver_s": round(t_ours, 5)}
    if theirs is not None:
        t_keras = best_time(lambda: theirs.predict(x, batch_size=batch, verbose=0), repeats)
        diff = float(np.max(np.abs(ours.predict(x, batch_size=batch) - theirs.predict(x, batch_size=batch,
                                                                                        verbose=0))))
        result.update({"keras_samples_per_s": round(n / t_keras, 1), "keras_s": round(t_keras, 5),
                       "ratio_vs_keras": round(t_keras / t_ours, 2), "max_abs_diff": diff,
                       "keras_version": keras.__version__})
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--case", choices=sorted(CASES), action="append")
    args = p.parse_args(argv)
    keras = load_keras()
    for name in args.case or list(CASES):
        print(json.dumps(run_case(name, keras, args.repeats)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
