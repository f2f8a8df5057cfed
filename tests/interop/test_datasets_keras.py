"""Data read from a spec is what real Keras makes of the same files: a text folder is split as
`text_dataset_from_directory(shuffle=True, seed=S, validation_split=f)` splits it (the same files train, the same
files validate, in the same order, with the same labels), and CSV standardization equals a `Normalization` layer
adapted on the training part. Keras 3 runs once, in a subprocess, as in the other interop tests."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from core.preprocessing.sequence import pad_sequences
from core.preprocessing.text import Tokenizer
from exporters.datasets import load_dataset

SEED, SPLIT = 123, 0.3
KERAS_SCRIPT = """
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
os.environ["CUDA_VISIBLE_DEVICES"] = ""
os.environ["KERAS_BACKEND"] = "tensorflow"
import numpy as np
import keras
folder, seed, split, table = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
train, val = keras.utils.text_dataset_from_directory(folder, batch_size=None, shuffle=True, seed=seed,
                                                     validation_split=split, subset="both", verbose=False)
rows = lambda ds: [[t.numpy().decode(), int(y.numpy())] for t, y in ds]
x = np.loadtxt(table, delimiter=",", skiprows=1)[:, :-1]
cut = int(np.floor(len(x) * (1 - split)))
norm = keras.layers.Normalization()
norm.adapt(x[:cut])
print(json.dumps({"train": rows(train), "val": rows(val), "class_names": train.class_names,
                  "normalized": np.asarray(norm(x)).tolist()}))
"""


@pytest.fixture(scope="module")
def keras_made(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("keras_data")
    folder = tmp / "texts"
    for c, count in (("ham", 8), ("eggs", 6), ("spam", 7)):  # 21 files: Keras validates int(0.3 * 21) = 6 of them
        for i in range(count):
            sub = folder / c / ("more" if i % 3 == 0 else "")
            sub.mkdir(parents=True, exist_ok=True)
            (sub / f"{i:02d}.{'TXT' if i == 4 else 'txt'}").write_text(f"{c} text number {i} word{c}{i}")
        (folder / c / "notes.md").write_text("not a text sample")
    rng = np.random.default_rng(4)
    table = np.column_stack([rng.normal(5, 3, 23), rng.normal(-100, 0.5, 23), rng.integers(0, 2, 23)])
    np.savetxt(tmp / "t.csv", table, delimiter=",", header="a,b,label", comments="", fmt="%.6f")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run([sys.executable, "-c", KERAS_SCRIPT, str(folder), str(SEED), str(SPLIT), str(tmp / "t.csv")],
                         capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    return tmp, json.loads(run.stdout.strip().splitlines()[-1])


def test_text_folder_split_matches_keras_text_dataset_from_directory(keras_made):
    tmp, made = keras_made
    data = load_dataset({"kind": "text", "path": str(tmp / "texts"), "num_words": 100, "maxlen": 6, "seed": SEED,
                         "validation_split": SPLIT}, None)
    assert data.class_names == made["class_names"] == ["eggs", "ham", "spam"]
    # Keras shuffles its training dataset again as it is read: the same files, in another order
    assert sorted(zip(data.texts, data.y[0].tolist())) == sorted(map(tuple, made["train"]))
    val_texts, val_labels = zip(*made["val"])  # the validation dataset is read in its file order
    assert data.validation[1][0].tolist() == list(val_labels)
    tokenizer = Tokenizer(num_words=100)
    tokenizer.fit_on_texts(data.texts)
    np.testing.assert_array_equal(data.validation[0][0],
                                  pad_sequences(tokenizer.texts_to_sequences(list(val_texts)), maxlen=6))


def test_standardization_equals_a_normalization_layer_adapted_on_the_training_part(keras_made):
    tmp, made = keras_made
    data = load_dataset({"kind": "csv", "path": str(tmp / "t.csv"), "label": "label", "standardize": True,
                         "validation_split": SPLIT}, None)
    ours = np.concatenate([data.x[0], data.validation[0][0]])
    np.testing.assert_allclose(ours, np.array(made["normalized"]), rtol=1e-4, atol=1e-4)
