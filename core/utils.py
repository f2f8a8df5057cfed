"""`keras.utils`: seeding and small helpers."""

from __future__ import annotations

import random

import numpy as np


def set_random_seed(seed: int) -> None:
    """Seed Python, numpy and the unseeded initializers, as `keras.utils.set_random_seed`."""
    from core import initializers

    random.seed(seed)
    np.random.seed(seed)
    initializers.set_random_seed(seed)


def to_categorical(y, num_classes=None, dtype="float32"):
    y = np.asarray(y, dtype="int64")
    shape = y.shape
    if shape and shape[-1] == 1 and len(shape) > 1:
        shape = shape[:-1]
    y = y.reshape(-1)
    num_classes = int(num_classes or (y.max() + 1 if y.size else 0))
    out = np.zeros((y.shape[0], num_classes), dtype=dtype)
    out[np.arange(y.shape[0]), y] = 1
    return out.reshape(shape + (num_classes,))


class PyDataset:
    """Batches by index, for fit, evaluate and predict: subclass it with `__len__` (batches per epoch) and
    `__getitem__(i)` (batch i: x, (x, y) or (x, y, sample_weight)), as `keras.utils.PyDataset` / `Sequence`.
    The workers arguments are accepted and batches are made in the training thread."""

    def __init__(self, workers=1, use_multiprocessing=False, max_queue_size=10):
        self.workers, self.use_multiprocessing, self.max_queue_size = workers, use_multiprocessing, max_queue_size

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__(index) returning batch `index`.")

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __len__() returning the number of batches.")

    def on_epoch_begin(self):
        pass

    def on_epoch_end(self):
        pass

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]


Sequence = PyDataset


def pad_sequences(*args, **kwargs):
    """`keras.utils.pad_sequences`: see `core.preprocessing.sequence.pad_sequences`."""
    from core.preprocessing.sequence import pad_sequences as pad

    return pad(*args, **kwargs)


# -- pictures, as Keras 3 keeps them in keras.utils (see core.preprocessing.image) ---------------------------------
def load_img(path, color_mode="rgb", target_size=None, interpolation="nearest", keep_aspect_ratio=False):
    from core.preprocessing import image

    return image.load_img(path, color_mode=color_mode, target_size=target_size, interpolation=interpolation,
                          keep_aspect_ratio=keep_aspect_ratio)


def img_to_array(img, data_format=None, dtype=None):
    from core.preprocessing import image

    return image.img_to_array(img, data_format=data_format, dtype=dtype)


def array_to_img(x, data_format=None, scale=True, dtype=None):
    from core.preprocessing import image

    return image.array_to_img(x, data_format=data_format, scale=scale, dtype=dtype)


def save_img(path, x, data_format=None, file_format=None, scale=True, **kwargs):
    from core.preprocessing import image

    return image.save_img(path, x, data_format=data_format, file_format=file_format, scale=scale, **kwargs)


# -- datasets made from arrays and folders ------------------------------------------------------------------------
def timeseries_dataset_from_array(data, targets, sequence_length, sequence_stride=1, sampling_rate=1,
                                  batch_size=128, shuffle=False, seed=None, start_index=None, end_index=None):
    """Windows of `sequence_length` steps (every `sampling_rate`-th step) starting every `sequence_stride` steps,
    each with `targets[start]` when targets are given, batched, as `keras.utils.timeseries_dataset_from_array`.
    The windows are cut as they are read, so a long series is never copied once per window."""
    from core.data import _Generated
    from core.errors import InputDataError

    data = np.asarray(data)
    n = len(data)
    if start_index is not None and not 0 <= start_index < n:
        raise InputDataError(f"timeseries_dataset_from_array: start_index must be in [0, {n}) for data of length "
                             f"{n}, got {start_index}.")
    if end_index is not None and not (0 < end_index < n and (start_index is None or end_index > start_index)):
        raise InputDataError(f"timeseries_dataset_from_array: end_index must be above start_index ({start_index}) "
                             f"and below the data's length {n}, got {end_index}.")
    for name, value in (("sampling_rate", sampling_rate), ("sequence_stride", sequence_stride)):
        if not 0 < value < n:
            raise InputDataError(f"timeseries_dataset_from_array: {name} must be above 0 and below the data's "
                                 f"length {n}, got {value}.")
    start_index = start_index or 0
    end_index = n if end_index is None else end_index
    count = end_index - start_index - (sequence_length - 1) * sampling_rate
    series = data[start_index:end_index]
    if targets is not None:
        targets = np.asarray(targets)[start_index:end_index]
        count = min(count, len(targets))
    starts = np.arange(0, max(count, 0), sequence_stride, dtype="int32")
    if shuffle:
        np.random.RandomState(np.random.randint(1e6) if seed is None else seed).shuffle(starts)
    offsets = np.arange(sequence_length) * sampling_rate

    def windows():
        for start in starts:
            window = series[start + offsets]
            yield window if targets is None else (window, targets[start])

    dataset = _Generated(windows, len(starts), batched=False)
    if shuffle:
        dataset = dataset.shuffle(1024 if batch_size is None else batch_size * 8, seed=seed)
    return dataset if batch_size is None else dataset.batch(batch_size)


def _check_validation_split(validation_split, subset, shuffle, seed):
    from core.errors import InputDataError

    if validation_split and not 0 < validation_split < 1:
        raise InputDataError(f"validation_split must be between 0 and 1, got {validation_split}.")
    if bool(validation_split) != bool(subset):
        raise InputDataError("subset and validation_split go together: give both or neither.")
    if subset not in ("training", "validation", "both", None):
        raise InputDataError(f"subset must be 'training', 'validation' or 'both', got {subset!r}.")
    if validation_split and shuffle and seed is None:
        raise InputDataError("With validation_split and shuffle, give a seed so that the training and validation "
                             "subsets do not overlap.")


def _split_subset(samples, labels, validation_split, subset):
    if not validation_split:
        return samples, labels
    n_val = int(validation_split * len(samples))
    if subset == "training":
        print(f"Using {len(samples) - n_val} files for training.")
        return samples[:len(samples) - n_val], None if labels is None else labels[:len(samples) - n_val]
    print(f"Using {n_val} files for validation.")
    return samples[len(samples) - n_val:], None if labels is None else labels[len(samples) - n_val:]


def _index_directory(directory, labels, formats, class_names, shuffle, seed, follow_links, verbose):
    """(file paths, integer labels or None, class names) as Keras's `index_directory` finds and orders them."""
    import os

    from core.errors import InputDataError

    if not os.path.isdir(directory):
        raise InputDataError(f"No such directory: {directory!r}.")
    if labels == "inferred":
        subdirs = [d for d in sorted(os.listdir(directory))
                   if os.path.isdir(os.path.join(directory, d)) and not d.startswith(".")]
        if class_names is not None:
            if not set(class_names) <= set(subdirs):
                raise InputDataError(f"class_names {list(class_names)} do not match the subdirectories of "
                                     f"{directory!r}: {subdirs} (or a subset of them).")
            subdirs = list(class_names)
    else:
        if class_names is not None:
            raise InputDataError("class_names can only be given with labels='inferred'.")
        subdirs = [""]
    filenames, found_labels = [], []
    for index, subdir in enumerate(subdirs):
        folder = os.path.join(directory, subdir)
        for root, _, files in sorted(os.walk(folder, followlinks=follow_links), key=lambda w: w[0]):
            for name in sorted(files):
                if name.lower().endswith(formats):
                    filenames.append(os.path.join(subdir, os.path.relpath(os.path.join(root, name), folder)))
                    found_labels.append(index)
    if labels == "inferred":
        labels, class_names = np.asarray(found_labels, dtype="int32"), subdirs
    elif labels is None:
        class_names = None
    else:
        if len(labels) != len(filenames):
            raise InputDataError(f"{len(labels)} labels were given for the {len(filenames)} files in {directory!r}.")
        class_names = [str(label) for label in sorted(set(labels))]
    if verbose:
        print(f"Found {len(filenames)} files." if labels is None else
              f"Found {len(filenames)} files belonging to {len(class_names)} classes.")
    paths = [os.path.join(directory, name) for name in filenames]
    if shuffle:
        np.random.RandomState(seed).shuffle(paths)
        if labels is not None:
            labels = np.array(labels)
            np.random.RandomState(seed).shuffle(labels)
    return paths, labels, class_names


def _labels_for(labels, label_mode, num_classes):
    labels = np.asarray(labels)
    if label_mode == "binary":
        return labels.astype("float32")[:, None]
    if label_mode == "categorical":
        return to_categorical(labels, num_classes)
    return labels.astype("int32")


def text_dataset_from_directory(directory, labels="inferred", label_mode="int", class_names=None, batch_size=32,
                                max_length=None, shuffle=True, seed=None, validation_split=None, subset=None,
                                follow_links=False, verbose=True):
    """(text, label) batches from `.txt` files in one folder per class, as `keras.utils.text_dataset_from_directory`:
    the same files, order, shuffle and split as Keras. Texts are Python strings (TensorFlow gives bytes);
    `max_length` keeps that many characters of each text."""
    from core.data import Dataset
    from core.errors import InputDataError

    if labels not in ("inferred", None) and not isinstance(labels, (list, tuple)):
        raise InputDataError(f"labels must be 'inferred', None or a list of integer labels, got {labels!r}.")
    if label_mode not in ("int", "categorical", "binary", None):
        raise InputDataError(f"label_mode must be 'int', 'categorical', 'binary' or None, got {label_mode!r}.")
    if labels is None or label_mode is None:
        labels = label_mode = None
    _check_validation_split(validation_split, subset, shuffle, seed)
    seed = np.random.randint(1e6) if seed is None else seed
    paths, labels, class_names = _index_directory(directory, labels, (".txt",), class_names, shuffle, seed,
                                                  follow_links, verbose)
    if label_mode == "binary" and len(class_names) != 2:
        raise InputDataError(f"label_mode='binary' needs exactly 2 classes, found {class_names}.")
    buffer = 1024 if batch_size is None else batch_size * 8

    def make(subset_paths, subset_labels, shuffled):
        if not subset_paths:
            raise InputDataError(f"No text files found in directory {directory!r} (allowed format: .txt).")
        ds = Dataset.from_tensor_slices(np.array(subset_paths))
        if label_mode:
            ds = Dataset.zip((ds, Dataset.from_tensor_slices(_labels_for(subset_labels, label_mode,
                                                                        len(class_names)))))
        if shuffled:
            ds = ds.shuffle(buffer, seed=seed)
        ds = ds.map(lambda path, *label: (_read_text(path, max_length),) + label if label else
                    _read_text(path, max_length))
        if batch_size is not None:
            ds = ds.batch(batch_size)
        ds.class_names = class_names
        return ds

    if subset == "both":
        return [make(*_split_subset(paths, labels, validation_split, "training"), shuffle),
                make(*_split_subset(paths, labels, validation_split, "validation"), False)]
    return make(*_split_subset(paths, labels, validation_split, subset), shuffle)


def _read_text(path, max_length):
    with open(str(path), encoding="utf-8", errors="replace") as f:
        text = f.read()
    return np.array(text if max_length is None else text[:max_length])


def split_dataset(dataset, left_size=None, right_size=None, shuffle=False, seed=None):
    """Two datasets from one (a Dataset, an array, or a tuple/list of arrays), as `keras.utils.split_dataset`:
    sizes are counts (int) or fractions (float); with shuffle the samples are shuffled by Python's `random` with
    the seed first, as Keras does, so the same seed splits the same way."""
    import random as _random

    from core.data import Dataset, _Batch
    from core.errors import InputDataError

    if left_size is None and right_size is None:
        raise InputDataError("split_dataset needs left_size or right_size (a count or a fraction).")
    batch_size = None
    if isinstance(dataset, Dataset):
        if dataset._batched:
            batch_size = dataset.size if isinstance(dataset, _Batch) else None
            dataset = dataset.unbatch()
        samples = list(dataset.as_numpy_iterator())
    elif isinstance(dataset, (tuple, list)):
        arrays = [np.asarray(a) for a in dataset]
        if len({len(a) for a in arrays}) != 1:
            raise InputDataError(f"split_dataset: the arrays have different lengths {[len(a) for a in arrays]}.")
        samples = list(zip(*arrays))
    elif isinstance(dataset, np.ndarray):
        samples = list(dataset)
    else:
        raise InputDataError(f"split_dataset takes a Dataset, an array, or a tuple/list of arrays, got "
                             f"{type(dataset).__name__}.")
    if shuffle:
        _random.seed(_random.randint(0, int(1e6)) if seed is None else seed)
        _random.shuffle(samples)
    left, right = _split_sizes(left_size, right_size, len(samples))
    halves = []
    for part in (samples[:left], samples[len(samples) - right:]):
        if isinstance(part[0], tuple):
            arrays = tuple(np.stack([s[i] for s in part]) for i in range(len(part[0])))
        elif isinstance(part[0], dict):
            arrays = {k: np.stack([s[k] for s in part]) for k in part[0]}
        else:
            arrays = np.stack(part)
        half = Dataset.from_tensor_slices(arrays)
        halves.append(half.batch(batch_size) if batch_size else half)
    return tuple(halves)


def _split_sizes(left, right, total):
    from core.errors import InputDataError

    for name, size in (("left_size", left), ("right_size", right)):
        if size is None:
            continue
        if type(size) not in (int, float):
            raise InputDataError(f"split_dataset: {name} must be an int or a float, got {size!r}.")
        if (type(size) is int and not 0 < size < total) or (type(size) is float and not 0 < size < 1):
            raise InputDataError(f"split_dataset: {name} must be a count in (0, {total}) or a fraction in (0, 1), "
                                 f"got {size!r}.")
    if type(left) is float and type(right) is float and left + right > 1:
        raise InputDataError(f"split_dataset: the fractions {left} and {right} add up to more than 1.")
    left = round(left * total) if type(left) is float else left
    right = round(right * total) if type(right) is float else right
    left = total - right if left is None else left
    right = total - left if right is None else right
    if left + right > total:
        raise InputDataError(f"split_dataset: the sizes {left} + {right} exceed the {total} samples.")
    if left == 0 or right == 0:
        raise InputDataError(f"split_dataset: one of the splits would be empty ({left} and {right} of {total}).")
    return int(left), int(right)


# -- pictures of models ------------------------------------------------------------------------------------------
def plot_model(model, to_file="model.png", show_shapes=False, show_dtype=False, show_layer_names=False,
               rankdir="TB", expand_nested=False, dpi=200, show_layer_activations=False, show_trainable=False,
               **kwargs):
    """Write a picture of a Functional or Sequential model to `to_file`, as `keras.utils.plot_model`.

    With the desktop app's Qt installed, the picture is the app's own canvas (nodes with shapes and parameter
    counts, drawn left to right whatever `rankdir` says). Without Qt it is drawn by pydot and Graphviz as Keras
    draws it (show_shapes, show_dtype, show_layer_names, rankdir, dpi and show_layer_activations apply there).
    With neither, an ImportError says what to install."""
    import importlib

    try:
        renderer = importlib.import_module("app.model_picture").render_model
        return renderer(model, to_file, dpi=dpi)
    except ImportError as exc:
        if "PySide6" not in str(exc) and getattr(exc, "name", None) not in ("app", "app.model_picture",
                                                                            "PySide6", "shiboken6"):
            raise
        qt_missing = exc
    dot = model_to_dot(model, show_shapes=show_shapes, show_dtype=show_dtype, show_layer_names=show_layer_names,
                       rankdir=rankdir, dpi=dpi, show_layer_activations=show_layer_activations,
                       show_trainable=show_trainable, _why_not_qt=qt_missing)
    from pathlib import Path

    extension = Path(to_file).suffix.lstrip(".") or "png"
    dot.write(str(to_file), format=extension)
    return to_file


def model_to_dot(model, show_shapes=False, show_dtype=False, show_layer_names=True, rankdir="TB", dpi=200,
                 show_layer_activations=False, show_trainable=False, subgraph=False, _why_not_qt=None, **kwargs):
    """The model's layers and connections as a `pydot.Dot` graph, as `keras.utils.model_to_dot`."""
    from core.errors import GraphError
    from core.layers.base import InputLayer

    try:
        import pydot
    except ImportError:
        pydot = None
    graphviz = False
    if pydot is not None:
        try:
            pydot.Dot.create(pydot.Dot())
            graphviz = True
        except (OSError, Exception):  # noqa: BLE001 - pydot raises several kinds when the `dot` program is missing
            graphviz = False
    if not graphviz:
        why = "" if _why_not_qt is None else f" The app's own renderer is not available either ({_why_not_qt})."
        raise ImportError("plot_model needs a picture renderer: install the desktop app's Qt "
                          "(pip install PySide6-Essentials) to draw with Netweaver's canvas, or pydot (pip install "
                          "pydot) and Graphviz (https://graphviz.org/download/) to draw as Keras does." + why)
    nodes = getattr(model, "_nodes_in_order", None)
    if nodes is None:
        raise GraphError(f"Model '{model.name}' is a subclassed model: its graph lives in Python code, so it "
                         f"cannot be drawn. Build it with the Functional API or Sequential.")
    dot = pydot.Dot()
    dot.set("rankdir", rankdir)
    dot.set("concentrate", True)
    dot.set("dpi", dpi)
    dot.set_node_defaults(shape="record")
    for node in nodes:
        layer = node.layer
        label = type(layer).__name__
        if show_layer_names:
            label = f"{layer.name} ({label})"
        activation = getattr(layer, "activation", None)
        if show_layer_activations and activation is not None:
            label += f" | {getattr(activation, '__name__', activation)}"
        if show_shapes or show_dtype:
            inputs = [t.shape for t in node.input_tensors] if not isinstance(layer, InputLayer) else \
                [t.shape for t in node.outputs]
            outputs = [t.shape for t in node.outputs]
            label += f" | {{input: {inputs[0] if len(inputs) == 1 else inputs} | output: " \
                     f"{outputs[0] if len(outputs) == 1 else outputs}}}"
            if show_dtype:
                label += f" | {node.outputs[0].dtype}"
        if show_trainable:
            label += f" | trainable: {layer.trainable}"
        dot.add_node(pydot.Node(str(id(layer)), label=label))
    for node in nodes:
        for t in node.input_tensors:
            dot.add_edge(pydot.Edge(str(id(t._keras_history[0])), str(id(node.layer))))
    return dot
