"""Writes the example projects (the seed guides' architectures) with the engine's Keras API.

    python resources/examples/make_examples.py [NAME ...]

Each model is built as the guides write it, turned into an editor document (laid out left to right) and saved as
`<name>.nwproj` without weights, so opening an example starts from fresh initial values. A few examples also get
training settings and a small synthetic dataset (`<name>_data.npz`, drawn from a fixed seed), so that
`python main.py train resources/examples/mlp.nwproj` trains from a fresh clone; the last three train on the bundled
real sample datasets (`resources/datasets/`, referred to as `sample:FILE`). A model with preprocessing layers
(TextVectorization, Normalization, ...) is saved adapted on its dataset's training part, as the app's "Adapt on
training data" adapts it, so opening it and pressing Train is enough.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

import numpy as np  # noqa: E402

import core as keras  # noqa: E402
from core import layers  # noqa: E402
from app.adapting import adapt_node, is_adaptable  # noqa: E402
from core.document import Document, layered_layout  # noqa: E402
from exporters.datasets import load_dataset, sample_datasets  # noqa: E402
from exporters.project import save_project  # noqa: E402


def mlp():
    model = keras.Sequential([keras.Input(shape=(32,)), layers.Dense(64, activation="relu"),
                              layers.Dense(64, activation="relu"), layers.Dense(10, activation="softmax")], name="mlp")
    return model, "MLP (Sequential: 32 → 64 → 64 → 10)"


def functional_mlp():
    inputs = keras.Input(shape=(784,), name="digits")
    x = layers.Dense(64, activation="relu", name="dense_1")(inputs)
    x = layers.Dense(64, activation="relu", name="dense_2")(x)
    outputs = layers.Dense(10, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="functional_mlp"), "Functional MLP (784 → 64 → 64 → 10)"


def lstm_text_classifier():
    inputs = keras.Input(shape=(None,), dtype="int32", name="tokens")
    x = layers.Embedding(input_dim=1000, output_dim=64)(inputs)
    x = layers.LSTM(128)(x)
    outputs = layers.Dense(10, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="lstm_text_classifier"), "LSTM text classifier"


def gru_simplernn():
    inputs = keras.Input(shape=(None,), dtype="int32", name="tokens")
    x = layers.Embedding(input_dim=1000, output_dim=64)(inputs)
    x = layers.GRU(256, return_sequences=True)(x)
    x = layers.SimpleRNN(128)(x)
    outputs = layers.Dense(10, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="gru_simplernn"), "GRU + SimpleRNN"


def encoder_decoder():
    encoder_input = keras.Input(shape=(None,), dtype="int32", name="encoder_tokens")
    encoder_embedded = layers.Embedding(input_dim=1000, output_dim=64, name="encoder_embedding")(encoder_input)
    output, state_h, state_c = layers.LSTM(64, return_state=True, name="encoder")(encoder_embedded)
    decoder_input = keras.Input(shape=(None,), dtype="int32", name="decoder_tokens")
    decoder_embedded = layers.Embedding(input_dim=2000, output_dim=64, name="decoder_embedding")(decoder_input)
    decoder_output = layers.LSTM(64, name="decoder")(decoder_embedded, initial_state=[state_h, state_c])
    outputs = layers.Dense(10, activation="softmax", name="predictions")(decoder_output)
    return keras.Model([encoder_input, decoder_input], outputs, name="encoder_decoder"), \
        "Encoder–decoder (encoder LSTM states start the decoder)"


def bidirectional():
    inputs = keras.Input(shape=(5, 10), name="sequence")
    x = layers.Bidirectional(layers.LSTM(64, return_sequences=True))(inputs)
    x = layers.Bidirectional(layers.LSTM(32))(x)
    outputs = layers.Dense(10, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="bidirectional"), "Bidirectional LSTMs"


def masking():
    inputs = keras.Input(shape=(None,), dtype="int32", name="padded_tokens")
    x = layers.Embedding(input_dim=5000, output_dim=16, mask_zero=True)(inputs)
    x = layers.LSTM(32)(x)
    outputs = layers.Dense(3, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="masking"), "Masking (Embedding mask_zero=True into an LSTM)"


def masking_layer():
    inputs = keras.Input(shape=(8, 10), name="timesteps")
    x = layers.Masking(mask_value=0.0)(inputs)
    x = layers.LSTM(32)(x)
    outputs = layers.Dense(1)(x)
    return keras.Model(inputs, outputs, name="masking_layer"), "Masking layer (skips all-zero time steps)"


def timedistributed_tagger():
    inputs = keras.Input(shape=(10, 32), name="frames")
    x = layers.LSTM(16, return_sequences=True)(inputs)
    outputs = layers.TimeDistributed(layers.Dense(4))(x)
    return keras.Model(inputs, outputs, name="timedistributed_tagger"), "TimeDistributed tagger"


def conv1d_text_cnn():
    inputs = keras.Input(shape=(50,), dtype="int32", name="tokens")
    x = layers.Embedding(input_dim=500, output_dim=16)(inputs)
    x = layers.SpatialDropout1D(0.2)(x)
    x = layers.ZeroPadding1D(2)(x)
    x = layers.Conv1D(32, 5, activation="relu")(x)
    x = layers.GlobalMaxPooling1D()(x)
    outputs = layers.Dense(2, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="conv1d_text_cnn"), "Conv1D text CNN"


def iris_mlp():
    inputs = keras.Input(shape=(4,), name="measurements")
    x = layers.Dense(16, activation="relu")(inputs)
    outputs = layers.Dense(3, activation="softmax", name="species")(x)
    return keras.Model(inputs, outputs, name="iris_mlp"), "Iris flowers: an MLP on the sample table (4 → 16 → 3)"


def austen_lstm():
    inputs = keras.Input(shape=(50,), dtype="int32", name="tokens")
    x = layers.Embedding(input_dim=5000, output_dim=32, mask_zero=True)(inputs)
    x = layers.LSTM(32)(x)
    outputs = layers.Dense(3, activation="softmax", name="novel")(x)
    return keras.Model(inputs, outputs, name="austen_lstm"), \
        "Which Austen novel? An LSTM on the sample passages (Embedding → LSTM → 3)"


def austen_raw_text():
    # Raw text in: the model's own TextVectorization (adapted on the training passages) makes the token ids, so the
    # exported .onnx file takes strings.
    inputs = keras.Input(shape=(1,), dtype="string", name="text")
    x = layers.TextVectorization(max_tokens=5000, output_sequence_length=50, name="vectorize")(inputs)
    x = layers.Embedding(input_dim=5000, output_dim=32, mask_zero=True)(x)
    x = layers.GRU(32)(x)
    outputs = layers.Dense(3, activation="softmax", name="novel")(x)
    return keras.Model(inputs, outputs, name="austen_raw_text"), \
        "Which Austen novel, from raw text? TextVectorization → Embedding → GRU → 3"


def sunspots_lstm():
    inputs = keras.Input(shape=(20, 1), name="years")
    x = layers.LSTM(32)(inputs)
    outputs = layers.Dense(1, name="next_year")(x)
    return keras.Model(inputs, outputs, name="sunspots_lstm"), \
        "Sunspots: an LSTM forecasts the next year from the last 20 (sample series)"


def transformer_encoder():
    """keras-io's "Text classification with Transformer" block, drawn with layers: self-attention, a residual Add and
    LayerNormalization, a Dense feed-forward with its own residual and LayerNormalization (token embeddings only:
    the keras-io example adds a learned position embedding with a custom layer)."""
    embed_dim, num_heads, ff_dim, rate = 32, 2, 32, 0.1
    inputs = keras.Input(shape=(20,), dtype="int32", name="tokens")
    x = layers.Embedding(input_dim=1000, output_dim=embed_dim, name="embedding")(inputs)
    attention = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim, name="self_attention")(x, x)
    attention = layers.Dropout(rate, name="attention_dropout")(attention)
    x = layers.LayerNormalization(epsilon=1e-6, name="attention_norm")(layers.Add(name="attention_residual")(
        [x, attention]))
    ffn = layers.Dense(ff_dim, activation="relu", name="feed_forward")(x)
    ffn = layers.Dropout(rate, name="feed_forward_dropout")(layers.Dense(embed_dim, name="feed_forward_out")(ffn))
    x = layers.LayerNormalization(epsilon=1e-6, name="feed_forward_norm")(layers.Add(name="feed_forward_residual")(
        [x, ffn]))
    x = layers.GlobalAveragePooling1D(name="pool")(x)
    x = layers.Dropout(rate, name="pool_dropout")(x)
    x = layers.Dense(20, activation="relu", name="hidden")(x)
    outputs = layers.Dense(10, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="transformer_encoder"), "Transformer encoder block (text classifier)"


def siamese_text():
    """Two token sequences through one shared Embedding and one shared LSTM (each called twice, so both texts are
    encoded by the same weights), then a distance head: |a - b| and a * b into a small classifier that says whether
    the texts match."""
    left = keras.Input(shape=(20,), dtype="int32", name="left_tokens")
    right = keras.Input(shape=(20,), dtype="int32", name="right_tokens")
    embed = layers.Embedding(input_dim=1000, output_dim=32, name="shared_embedding")
    encode = layers.LSTM(32, name="shared_lstm")
    a, b = encode(embed(left)), encode(embed(right))
    distance = keras.ops.abs(layers.Subtract(name="difference")([a, b]))
    both = layers.Multiply(name="product")([a, b])
    x = layers.Concatenate(name="features")([distance, both])
    x = layers.Dense(16, activation="relu", name="hidden")(x)
    outputs = layers.Dense(1, activation="sigmoid", name="same")(x)
    return keras.Model([left, right], outputs, name="siamese_text"), "Siamese text matcher (shared Embedding and LSTM)"


EXAMPLES = [mlp, functional_mlp, lstm_text_classifier, gru_simplernn, encoder_decoder, bidirectional, masking,
            masking_layer, timedistributed_tagger, conv1d_text_cnn, iris_mlp, austen_lstm, sunspots_lstm,
            transformer_encoder, siamese_text, austen_raw_text]


# -- small synthetic datasets (train + validation split), each a learnable task for its example -----------------
def mlp_data(rng):
    """Ten Gaussian clusters in 32 dimensions, one per class."""
    centers = rng.normal(0.0, 1.0, (10, 32))
    y = rng.integers(0, 10, 1200)
    x = (centers[y] + rng.normal(0.0, 1.0, (1200, 32))).astype(np.float32)
    return x, y.astype(np.int32)


def lstm_text_classifier_data(rng):
    """Token sequences (length 20, vocabulary 1000) whose class is told by three keywords among filler tokens:
    class k's keywords are tokens 10k+1 ... 10k+10; the filler is drawn from 100 ... 999."""
    y = rng.integers(0, 10, 1000)
    x = rng.integers(100, 1000, (1000, 20))
    for row, label in zip(x, y):
        row[rng.choice(20, 3, replace=False)] = 10 * label + 1 + rng.integers(0, 10, 3)
    return x.astype(np.int32), y.astype(np.int32)


def conv1d_text_cnn_data(rng):
    """Token sequences (length 50, vocabulary 500); class 1 holds the phrase 7 8 9 somewhere, class 0 does not."""
    y = rng.integers(0, 2, 800)
    x = rng.integers(10, 500, (800, 50))
    for row, label in zip(x, y):
        if label:
            at = rng.integers(0, 48)
            row[at:at + 3] = (7, 8, 9)
    return x.astype(np.int32), y.astype(np.int32)


_CLASSIFIER = {"optimizer": "adam", "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"],
               "batch_size": 32, "validation_split": 0.0, "shuffle": True}
TRAINING = {  # example -> (its data, its `training` settings)
    "mlp": (mlp_data, dict(_CLASSIFIER, epochs=10)),
    "lstm_text_classifier": (lstm_text_classifier_data, dict(_CLASSIFIER, epochs=5)),
    "conv1d_text_cnn": (conv1d_text_cnn_data, dict(_CLASSIFIER, epochs=5)),
    "transformer_encoder": (lstm_text_classifier_data, dict(_CLASSIFIER, epochs=5)),  # the same keyword task
}
VALIDATION = 200  # the last samples of each dataset are its validation set

# example -> (the bundled sample it trains on, its `training` settings). The sample's spec holds the validation
# split (the last 20% of its rows), so fit's own validation_split stays 0.
_SAMPLE_FIT = {"validation_split": 0.0, "shuffle": True, "seed": 1}
SAMPLE_TRAINING = {
    "iris_mlp": ("iris", dict(_SAMPLE_FIT, optimizer="adam", loss="sparse_categorical_crossentropy",
                              metrics=["accuracy"], batch_size=8, epochs=100)),
    "austen_lstm": ("austen_passages", dict(_SAMPLE_FIT, optimizer="adam", loss="sparse_categorical_crossentropy",
                                            metrics=["accuracy"], batch_size=32, epochs=8)),
    "sunspots_lstm": ("sunspots", dict(_SAMPLE_FIT, optimizer="adam", loss="mse", metrics=["mae"], batch_size=16,
                                       epochs=30)),
    "austen_raw_text": ("austen_passages", dict(_SAMPLE_FIT, optimizer="adam", loss="sparse_categorical_crossentropy",
                                                metrics=["accuracy"], batch_size=32, epochs=8)),
}
# example -> what its sample's spec changes: a model with a string Input takes the passages as raw text
SAMPLE_SPEC_CHANGES = {"austen_raw_text": {"texts_as": "strings"}}


def write_dataset(name: str) -> list[dict]:
    """Write `<name>_data.npz` and return the project's `datasets` list referring to it."""
    make, _ = TRAINING[name]
    x, y = make(np.random.default_rng(1234))
    n = len(x) - VALIDATION
    file = f"{name}_data.npz"
    np.savez_compressed(HERE / file, x_train=x[:n], y_train=y[:n], x_val=x[n:], y_val=y[n:])
    return [{"name": "synthetic", "path": file, "x": ["x_train"], "y": ["y_train"],
             "validation": {"x": ["x_val"], "y": ["y_val"]}}]


def adapt_preprocessing(doc: Document) -> None:
    """Adapt every preprocessing layer of an example on the training part of its dataset, inputs first."""
    adaptable = [nid for nid in doc.topological_order() if is_adaptable(doc.nodes[nid].class_name)]
    if not adaptable:
        return
    if not doc.datasets:
        raise SystemExit(f"{doc.name}: its preprocessing layers need a dataset to adapt on.")
    data = load_dataset(doc.datasets[0], HERE)
    for nid in adaptable:
        adapted = adapt_node(doc, nid, data)
        adapted.command.do(doc)
        print(f"  {adapted.summary}")


def main(names=None) -> None:
    """Write every example, or only those named (so one new example does not rewrite the others)."""
    unknown = set(names or ()) - {make.__name__ for make in EXAMPLES}
    if unknown:
        raise SystemExit(f"No such example: {sorted(unknown)}; known: {[make.__name__ for make in EXAMPLES]}")
    for make in EXAMPLES:
        if names and make.__name__ not in names:
            continue
        keras.backend.clear_session()
        model, title = make()
        doc = Document.from_model(model)
        for node in doc.nodes.values():
            node.weights = None
        for nid, pos in layered_layout(doc, dx=280, dy=100).items():
            doc.nodes[nid].position = pos
        doc.extra["title"] = title
        if make.__name__ in TRAINING:
            doc.training = dict(TRAINING[make.__name__][1])
            doc.datasets = write_dataset(make.__name__)
        if make.__name__ in SAMPLE_TRAINING:
            sample, doc.training = SAMPLE_TRAINING[make.__name__]
            spec = next(s["spec"] for s in sample_datasets() if s["name"] == sample)
            doc.datasets = [dict(spec, **SAMPLE_SPEC_CHANGES.get(make.__name__, {}))]
        adapt_preprocessing(doc)
        path = save_project(doc, HERE / f"{make.__name__}.nwproj")
        print(f"{path.name}: {len(doc.nodes)} layers, {doc.total_params():,} params")


if __name__ == "__main__":
    main(sys.argv[1:])
