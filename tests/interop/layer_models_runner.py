"""Run in a subprocess by tests/interop/test_activation_attention_keras.py, in one real Keras:

    python layer_models_runner.py keras3|tf_keras2 WORKDIR JOBS.json

1. builds every model of `layer_models.MODELS` that this Keras has, with `randomize`d weights, saves it as
   WORKDIR/<name>_<target>_theirs.h5 (and .keras for Keras 3) and records its predictions;
2. loads each of our files listed in JOBS.json ({"id", "path", "name"}, and "weights" beside a .py script that
   rebuilds the model) and predicts.
Everything lands in WORKDIR/out_<target>.npz: `theirs__<name>__<i>`, `ours__<id>__<i>`, and `...__error` strings.
"""

import os
import sys
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ["KERAS_BACKEND"] = "tensorflow"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import json  # noqa: E402

import numpy as np  # noqa: E402

import layer_models  # noqa: E402


def _outputs(model, name):
    out = model(layer_models.model_input(name), training=False)
    return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]


def main(target, workdir, jobs_path):
    if target == "keras3":
        import keras
    else:
        import tf_keras as keras
    results = {}
    for name, (_, _, generations) in layer_models.MODELS.items():
        if target not in generations:
            continue
        try:
            keras.utils.set_random_seed(1)
            model = layer_models.build(keras, target, name)
            layer_models.randomize(model)
            for i, o in enumerate(_outputs(model, name)):
                results[f"theirs__{name}__{i}"] = o
            model.save(os.path.join(workdir, f"{name}_{target}_theirs.h5"))
            if target == "keras3":
                model.save(os.path.join(workdir, f"{name}_{target}_theirs.keras"))
        except Exception:  # noqa: BLE001 - reported to the test, which fails with it
            results[f"theirs__{name}__error"] = np.array(traceback.format_exc())
    for job in json.load(open(jobs_path)):
        try:
            if job["path"].endswith(".py"):  # exporters.python_source: a script that rebuilds the model
                namespace = {"__name__": "netweaver_export"}
                exec(compile(open(job["path"]).read(), job["path"], "exec"), namespace)
                model = namespace["build_model"](weights=job["weights"])
            else:
                model = keras.models.load_model(job["path"], compile=False)
            for i, o in enumerate(_outputs(model, job["name"])):
                results[f"ours__{job['id']}__{i}"] = o
        except Exception:  # noqa: BLE001
            results[f"ours__{job['id']}__error"] = np.array(traceback.format_exc())
    np.savez(os.path.join(workdir, f"out_{target}.npz"), **results)


if __name__ == "__main__":
    main(*sys.argv[1:4])
