"""The training script exporters.python_source writes runs in real Keras 3 (a subprocess, as the other interop
tests): it reads the project's data, compiles and fits with the project's settings, and saves a model that learned."""

import os
import subprocess
import sys

import numpy as np

import core as keras
from core import layers
from exporters.datasets import LoadedData
from exporters.python_source import export_training_script


def test_the_training_script_trains_in_real_keras_3(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64") + (x[:, 2] > 1).astype("int64")  # three classes
    inputs = keras.Input((4,), name="features")
    hidden = layers.Dense(16, activation="relu", name="hidden")(inputs)
    model = keras.Model(inputs, layers.Dense(3, activation="softmax", name="species")(hidden), name="mlp")
    settings = {"optimizer": "adam", "learning_rate": 0.02, "loss": "sparse_categorical_crossentropy",
                "metrics": ["accuracy"], "epochs": 15, "batch_size": 16, "seed": 4,
                "callbacks": [{"class_name": "EarlyStopping", "config": {"monitor": "val_loss", "patience": 20}}]}
    data = LoadedData(x=[x[:160]], y=[y[:160]], validation=([x[160:]], [y[160:]]))
    script = export_training_script(model, tmp_path / "train_mlp.py", settings, data, dataset_note="test arrays")
    source = script.read_text()
    assert "optimizer=keras.optimizers.Adam(learning_rate=0.02)" in source and "validation_data=validation" in source
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="", KERAS_BACKEND="tensorflow")
    run = subprocess.run([sys.executable, str(script), "--train"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Epoch 15/15" in run.stdout
    trained = keras.models.load_model(tmp_path / "mlp.trained.keras", compile=False)  # our reader, Keras's file
    accuracy = np.mean(np.argmax(trained.predict(x[160:], verbose=0), axis=-1) == y[160:])
    assert accuracy > 0.8, accuracy  # it learned (chance is about 0.45 here)
