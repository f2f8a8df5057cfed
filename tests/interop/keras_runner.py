"""Run in a subprocess by the interop tests: load files Netweaver wrote in real Keras and predict.

    python keras_runner.py keras3|tf_keras2 JOBS.json OUT.npz

JOBS.json is a list of {"id", "kind": "json"|"json_v3weights"|"h5"|"keras"|"script"|"fixture", "model", "weights",
"inputs"}; OUT.npz gets `<id>__<i>` for each output of each job, and `<id>__error` (a string) for a job that failed.
A "fixture" job loads a file real Keras wrote, sets the weights listed in `weights` (an .npz of arr_0, arr_1, ... in
get_weights order) and predicts; it also gets `<id>__summary`, the text of Keras's `summary()` table of the file.
"""

import json
import os
import sys
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ["COLUMNS"] = "300"  # Keras 3 draws its summary with rich, which cuts lines at the terminal's width

import numpy as np  # noqa: E402


def write_nested(keras, target: str, folder: str, results: dict) -> None:
    """The other direction: a nested, shared-layer model made by real Keras, saved for Netweaver to read."""
    inner_in = keras.Input((4,), name="inner_in")
    inner = keras.Model(inner_in, keras.layers.Dense(3, activation="tanh", name="idense")(inner_in), name="inner")
    seq = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="sdense")], name="seqm")
    x = keras.Input((4,), name="x")
    a = inner(x)
    b = inner(keras.layers.Dense(4, name="pre")(x))
    shared = keras.layers.Dense(3, activation="relu", name="shared")
    model = keras.Model(x, seq(shared(shared(keras.layers.Add(name="add")([a, b])))), name="outer")
    data = np.random.default_rng(3).random((5, 4)).astype("float32")
    base = os.path.join(folder, f"keras_made_nested_{target}")
    open(base + ".json", "w").write(model.to_json())
    model.save_weights(base + (".weights.h5" if target == "keras3" else "_weights.h5"))
    model.save(base + ".h5")
    results["keras_made_nested__input"] = data
    results["keras_made_nested__output"] = np.asarray(model(data, training=False))


def summary_table(model, target: str) -> str:
    """Keras's own summary, wide enough that no cell wraps (tf.keras 2 still puts each item of a list on a line of
    its own); tf.keras 2's columns start at characters 0, 100, 200 and 230."""
    lines = []
    positions = [100, 200, 230, 300] if target == "tf_keras2" else None
    model.summary(line_length=300, positions=positions, print_fn=lambda line, *args, **kwargs: lines.append(line))
    return "\n".join(lines)


def main(target: str, jobs_path: str, out_path: str) -> None:
    if target == "keras3":
        import keras
    else:
        import tf_keras as keras
    jobs = json.load(open(jobs_path))
    results = {}
    try:
        write_nested(keras, target, os.path.dirname(out_path), results)
    except Exception:  # noqa: BLE001 - reported to the test, which fails with it
        results["keras_made_nested__error"] = np.array(traceback.format_exc())
    for job in jobs:
        try:
            if job["kind"].startswith("json"):
                model = keras.models.model_from_json(open(job["model"]).read())
                model.load_weights(job["weights"])
            elif job["kind"] == "fixture":
                model = keras.models.load_model(job["model"], compile=False)
                results[f"{job['id']}__summary"] = np.array(summary_table(model, target))
                with np.load(job["weights"]) as weights:
                    model.set_weights([weights[f"arr_{i}"] for i in range(len(weights.files))])
            elif job["kind"] == "script":
                namespace = {"__name__": "netweaver_export"}
                exec(compile(open(job["model"]).read(), job["model"], "exec"), namespace)
                model = namespace["build_model"](weights=job["weights"])
            else:
                # The files carry the compile arguments (training_config / compile_config): Keras compiles from them.
                model = keras.models.load_model(job["model"], compile=True)
                if getattr(model, "optimizer", None) is None:
                    raise AssertionError("the loaded model was not compiled")
            with np.load(job["inputs"]) as data:
                inputs = [data[k] for k in sorted(data.files)]
            # A direct call runs eagerly: the same numbers as predict without tracing a tf.function per model.
            out = model(inputs[0] if len(inputs) == 1 else inputs, training=False)
            outs = [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]
            for i, o in enumerate(outs):
                results[f"{job['id']}__{i}"] = np.asarray(o)
        except Exception:  # noqa: BLE001 - reported to the test, which fails with it
            results[f"{job['id']}__error"] = np.array(traceback.format_exc())
    np.savez(out_path, **results)


if __name__ == "__main__":
    main(*sys.argv[1:4])
