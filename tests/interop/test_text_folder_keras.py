"""A text folder is split as Keras's `text_dataset_from_directory(shuffle=True, seed=S, validation_split=f)` splits
it: the same files train and the same files validate, in the same order, with the same labels (real Keras 3 runs
in a subprocess, as the other interop tests do)."""

import json
import os
import subprocess
import sys

import numpy as np

from core.preprocessing.sequence import pad_sequences
from core.preprocessing.text import Tokenizer
from exporters.datasets import load_dataset

KERAS_SPLIT = """
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
os.environ["CUDA_VISIBLE_DEVICES"] = ""
os.environ["KERAS_BACKEND"] = "tensorflow"
import keras
folder, seed, split = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
train, val = keras.utils.text_dataset_from_directory(folder, batch_size=None, shuffle=True, seed=seed,
                                                     validation_split=split, subset="both", verbose=False)
rows = lambda ds: [[t.numpy().decode(), int(y.numpy())] for t, y in ds]
print(json.dumps({"train": rows(train), "val": rows(val), "class_names": train.class_names}))
"""


def test_text_folder_split_matches_keras_text_dataset_from_directory(tmp_path):
    folder = tmp_path / "texts"
    for c, count in (("ham", 8), ("eggs", 6), ("spam", 7)):  # 21 files: Keras validates int(0.3 * 21) = 6 of them
        for i in range(count):
            sub = folder / c / ("more" if i % 3 == 0 else "")
            sub.mkdir(parents=True, exist_ok=True)
            (sub / f"{i:02d}.{'TXT' if i == 4 else 'txt'}").write_text(f"{c} text number {i} word{c}{i}")
        (folder / c / "notes.md").write_text("not a text sample")
    seed, split = 123, 0.3
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run([sys.executable, "-c", KERAS_SPLIT, str(folder), str(seed), str(split)],
                         capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    keras_split = json.loads(run.stdout.strip().splitlines()[-1])

    data = load_dataset({"kind": "text", "path": str(folder), "num_words": 100, "maxlen": 6, "seed": seed,
                         "validation_split": split}, None)
    assert data.class_names == keras_split["class_names"] == ["eggs", "ham", "spam"]
    # Keras shuffles its training dataset again as it is read: the same files, in another order
    assert sorted(zip(data.texts, data.y[0].tolist())) == sorted(map(tuple, keras_split["train"]))
    val_texts, val_labels = zip(*keras_split["val"])  # the validation dataset is read in its file order
    assert data.validation[1][0].tolist() == list(val_labels)
    tokenizer = Tokenizer(num_words=100)
    tokenizer.fit_on_texts(data.texts)
    np.testing.assert_array_equal(data.validation[0][0],
                                  pad_sequences(tokenizer.texts_to_sequences(list(val_texts)), maxlen=6))
