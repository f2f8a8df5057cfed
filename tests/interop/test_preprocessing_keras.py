"""The numeric and integer preprocessing layers against real Keras 3: forward within 1e-5 (same dtype and shape) for
each layer and its main options, `adapt` on arrays, lists of batches, generators and `core.data.Dataset`s giving
Keras's statistics, bins and vocabularies, and an exported ONNX file that computes the same in a fresh session.
(Files in both directions: the "preprocessing" model of layer_models, run by test_activation_attention_keras.)"""

import numpy as np
import pytest

import core
from core.data import Dataset
from core.errors import ConfigError
from tests.core.keras_reference import keras3  # noqa: F401  (a fixture)

RNG = np.random.default_rng(0)
X = RNG.normal(size=(6, 4)).astype("float32") * 3 + 1
X3 = RNG.normal(size=(5, 3, 4)).astype("float32")
BIG = RNG.normal(size=(1000, 3)).astype("float32")
INTS = RNG.integers(0, 6, size=(5, 4))
TOKENS = RNG.integers(0, 12, size=(6, 5)) * 7 - 14
VOCAB = [7, 14, 21, -7]
# every length of decimal text FarmHash sees (1 to 20 bytes), int64's extremes and a mask value among them
BIG_INTS = np.concatenate([RNG.integers(-10 ** k, 10 ** k, size=4) for k in range(1, 19)]
                          + [[np.iinfo(np.int64).min, np.iinfo(np.int64).max, 0, 0]]).reshape(-1, 4)

# (case id, layer class, config, input, what adapt() gets or None; "batches" is handed over as a list of arrays)
CASES = [
    ("norm-adapt", "Normalization", {}, X, X),
    ("norm-axis-none", "Normalization", {"axis": None}, X, X),
    ("norm-given", "Normalization", {"mean": [1, 2, 3, 4.0], "variance": [1, 4, 9, 2.0]}, X, None),
    ("norm-invert-scalar", "Normalization", {"invert": True, "mean": 2.0, "variance": 3.0}, X, None),
    ("norm-axes", "Normalization", {"axis": (1, 2)}, X3, X3),
    ("norm-batches", "Normalization", {"axis": 1}, X3, "batches"),
    ("rescaling", "Rescaling", {"scale": 1 / 255.0, "offset": -1}, X, None),
    ("disc-given", "Discretization", {"bin_boundaries": [0.0, 1.0, 2.0]}, X, None),
    ("disc-adapt", "Discretization", {"num_bins": 4, "epsilon": 0.01}, X, X),
    ("disc-adapt-batches", "Discretization", {"num_bins": 5}, BIG, "batches"),
    ("disc-one-hot", "Discretization", {"bin_boundaries": [0.0, 1.0], "output_mode": "one_hot"}, X[:, :1], None),
    ("disc-multi-hot", "Discretization", {"bin_boundaries": [0.0, 1.0], "output_mode": "multi_hot"}, X, None),
    ("disc-count", "Discretization", {"bin_boundaries": [0.0, 1.0], "output_mode": "count"}, X, None),
    ("ce-multi-hot", "CategoryEncoding", {"num_tokens": 6}, INTS, None),
    ("ce-count", "CategoryEncoding", {"num_tokens": 6, "output_mode": "count"}, INTS, None),
    ("ce-one-hot", "CategoryEncoding", {"num_tokens": 6, "output_mode": "one_hot"}, INTS[:, :1], None),
    ("ce-one-hot-rank2", "CategoryEncoding", {"num_tokens": 6, "output_mode": "one_hot"}, INTS, None),
    ("ce-multi-hot-rank1", "CategoryEncoding", {"num_tokens": 6}, INTS[:, 0], None),
    ("ce-count-rank1", "CategoryEncoding", {"num_tokens": 6, "output_mode": "count"}, INTS[:, 0], None),
    ("il-adapt", "IntegerLookup", {}, TOKENS, TOKENS),
    ("il-adapt-max-tokens", "IntegerLookup", {"max_tokens": 5, "num_oov_indices": 2}, TOKENS, TOKENS),
    ("il-mask-oov3", "IntegerLookup", {"mask_token": 0, "num_oov_indices": 3, "vocabulary": VOCAB}, TOKENS, None),
    ("il-multi-hot", "IntegerLookup", {"output_mode": "multi_hot", "vocabulary": VOCAB}, TOKENS, None),
    ("il-multi-hot-mask", "IntegerLookup", {"output_mode": "multi_hot", "mask_token": 0, "vocabulary": VOCAB},
     TOKENS, None),
    ("il-count-padded", "IntegerLookup", {"output_mode": "count", "max_tokens": 9, "pad_to_max_tokens": True,
                                          "vocabulary": VOCAB}, TOKENS, None),
    ("il-one-hot", "IntegerLookup", {"output_mode": "one_hot", "vocabulary": VOCAB}, TOKENS[:, :1], None),
    ("il-tf-idf-adapt", "IntegerLookup", {"output_mode": "tf_idf"}, TOKENS, TOKENS),
    ("il-tf-idf-given", "IntegerLookup", {"output_mode": "tf_idf", "vocabulary": [7, 14, 21],
                                          "idf_weights": [0.5, 1.0, 2.0]}, TOKENS, None),
    ("il-count-mask-batches", "IntegerLookup", {"output_mode": "count", "mask_token": 0}, TOKENS, "batches"),
    ("il-farmhash-oov", "IntegerLookup", {"num_oov_indices": 3, "oov_method": "farmhash", "vocabulary": VOCAB},
     TOKENS, None),
    ("hash", "Hashing", {"num_bins": 3}, BIG_INTS, None),
    ("hash-many-bins", "Hashing", {"num_bins": 1000}, BIG_INTS, None),
    ("hash-mask", "Hashing", {"num_bins": 5, "mask_value": 0}, BIG_INTS, None),
    ("hash-floats", "Hashing", {"num_bins": 9}, X * 100, None),
    ("hash-multi-hot", "Hashing", {"num_bins": 4, "output_mode": "multi_hot"}, BIG_INTS, None),
    ("hash-count", "Hashing", {"num_bins": 4, "output_mode": "count"}, BIG_INTS, None),
    ("hash-one-hot", "Hashing", {"num_bins": 4, "output_mode": "one_hot"}, BIG_INTS[:, :1], None),
    ("il-invert", "IntegerLookup", {"invert": True, "mask_token": 0, "vocabulary": VOCAB},
     RNG.integers(0, 8, size=(3, 4)), None),
]


@pytest.mark.parametrize("case,class_name,config,x,adapt_data", CASES, ids=[c[0] for c in CASES])
def test_preprocessing_layer_matches_keras3(keras3, case, class_name, config, x, adapt_data):
    ref, ours = getattr(keras3.layers, class_name)(**config), getattr(core.layers, class_name)(**config)
    if adapt_data is not None:
        if isinstance(adapt_data, str):  # Keras gets a list of batches; we the list, and a Dataset of them
            size = len(x) // 2
            batches = [x[i:i + size] for i in range(0, len(x), size)]
            ref.adapt(batches)
            ours.adapt(batches)
            twin = getattr(core.layers, class_name)(**config)
            twin.adapt(Dataset.from_tensor_slices(x).batch(size))
            np.testing.assert_allclose(np.asarray(twin(x)), np.asarray(ours(x)), atol=0)
        else:
            ref.adapt(adapt_data)
            ours.adapt(adapt_data)
    expected, got = np.asarray(ref(x)), np.asarray(ours(x))
    assert (got.dtype, got.shape) == (expected.dtype, expected.shape)
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    # inside a model, whose batch size is unknown when its graph is built
    inputs = core.Input(x.shape[1:], dtype=x.dtype.name)
    np.testing.assert_allclose(core.Model(inputs, ours(inputs)).predict(x, verbose=0), expected, atol=1e-5, rtol=0)
    # the config that Keras writes, key by key (an adapted lookup also writes its vocabulary, see below)
    theirs_config, ours_config = ref.get_config(), ours.get_config()
    for key, value in theirs_config.items():
        if key in ("dtype", "name", "vocabulary", "vocabulary_size", "idf_weights", "num_bins", "axis"):
            continue
        assert ours_config[key] == value, (key, ours_config[key], value)


def test_count_weights_match_keras3(keras3):
    weights = RNG.random(INTS.shape).astype("float32")
    expected = keras3.layers.CategoryEncoding(6, output_mode="count")(INTS, count_weights=weights)
    got = core.layers.CategoryEncoding(6, output_mode="count")(INTS, count_weights=weights)
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), atol=1e-6)


def test_adapted_lookup_and_bins_travel_in_the_config_to_keras3(keras3):
    """An adapted vocabulary and adapted bins are written into the config, so real Keras rebuilds the same layer."""
    lookup = core.layers.IntegerLookup(output_mode="tf_idf", max_tokens=8)
    lookup.adapt(TOKENS)
    bins = core.layers.Discretization(num_bins=4)
    bins.adapt(BIG)
    for ours, x in ((lookup, TOKENS), (bins, BIG[:5])):
        rebuilt = getattr(keras3.layers, type(ours).__name__).from_config(ours.get_config())
        np.testing.assert_allclose(np.asarray(rebuilt(x)), np.asarray(ours(x)), atol=1e-6)
        again = type(ours).from_config(ours.get_config())
        np.testing.assert_allclose(np.asarray(again(x)), np.asarray(ours(x)), atol=0)


def test_exported_onnx_computes_the_preprocessing_in_a_fresh_session(tmp_path):
    from exporters.onnx_export import export_onnx, run_onnx

    norm = core.layers.Normalization()
    norm.adapt(X)
    bins = core.layers.Discretization(num_bins=3)
    bins.adapt(X)
    lookup = core.layers.IntegerLookup(output_mode="multi_hot")
    lookup.adapt(TOKENS)
    x, t = core.Input((4,), name="x"), core.Input((5,), dtype="int64", name="t")
    model = core.Model([x, t], [core.layers.Rescaling(2.0)(norm(x)),
                                core.layers.CategoryEncoding(3, output_mode="count")(bins(x)), lookup(t),
                                core.layers.Hashing(11, mask_value=0)(t)])
    export_onnx(model, tmp_path / "pre.onnx")
    for got, expected in zip(run_onnx(tmp_path / "pre.onnx", [X, TOKENS]), model.predict([X, TOKENS], verbose=0)):
        np.testing.assert_allclose(got, expected, atol=0)


def test_layers_without_what_they_need_say_what_to_call():
    with pytest.raises(ConfigError, match=r"IntegerLookup 'ids' has no vocabulary yet: call layer.adapt\(data\)"):
        core.layers.IntegerLookup(name="ids")(TOKENS)
    with pytest.raises(ConfigError, match=r"Discretization 'bins' has no bin boundaries yet: call layer.adapt"):
        core.layers.Discretization(num_bins=3, name="bins")(X)
    with pytest.raises(ConfigError, match=r"Normalization 'norm' has no statistics yet: call layer.adapt\(data\)"):
        core.layers.Normalization(name="norm")(X)
    assert core.layers.IntegerLookup(name="ids").compute_output_shape((None, 3)) == (None, 3)  # as in Keras
    with pytest.raises(ConfigError, match="Discretization needs 'bin_boundaries', or 'num_bins'"):
        core.layers.Discretization()
    with pytest.raises(ConfigError, match="num_tokens"):
        core.layers.CategoryEncoding()
    with pytest.raises(ConfigError, match="both 'mean' and 'variance'"):
        core.layers.Normalization(mean=[1.0])
    with pytest.raises(ConfigError, match="was given its vocabulary; it cannot adapt"):
        core.layers.IntegerLookup(vocabulary=[1, 2]).adapt(TOKENS)
    with pytest.raises(ConfigError, match="repeats"):
        core.layers.IntegerLookup(vocabulary=[1, 2, 1])
    with pytest.raises(ConfigError, match="needs idf_weights"):
        core.layers.IntegerLookup(output_mode="tf_idf", vocabulary=[1, 2])
    with pytest.raises(ValueError, match="adapt\\(\\) got no data"):
        core.layers.Normalization().adapt([])


def test_hashing_refuses_what_it_cannot_compute_exactly():
    with pytest.raises(ConfigError, match="SipHash"):
        core.layers.Hashing(num_bins=4, salt=3)
    with pytest.raises(ConfigError, match="string inputs are not supported"):
        core.layers.Hashing(num_bins=4, mask_value="")


def test_preprocessing_palette_group_and_generated_inspector():
    from core import layer_schema

    group = layer_schema.palette()["Preprocessing"]
    assert {"Normalization", "Rescaling", "Discretization", "CategoryEncoding", "IntegerLookup"} <= set(group)
    fields = {f.name: f for f in layer_schema.schema("IntegerLookup").fields}
    assert fields["output_mode"].choices == ("int", "one_hot", "multi_hot", "count", "tf_idf")
    assert "vocabulary_size" not in fields
    for name in group:  # a freshly dropped layer is valid
        layer_schema.layer_class(name).from_config(layer_schema.default_config(name))


def test_a_model_with_preprocessing_inside_trains_like_keras3(keras3):
    """Normalization (adapted), Discretization, CategoryEncoding, IntegerLookup and Hashing in front of Dense and
    Embedding layers: the integer ops have no gradient and need none; the trajectory follows Keras 3's."""
    from tests.interop import layer_models

    x = RNG.normal(size=(40, 4)).astype("float32") * 2 + 1
    y = RNG.normal(size=(40, 2)).astype("float32")

    def build(lib):
        L = lib.layers
        norm = L.Normalization()
        norm.adapt(x)
        bins = L.Discretization(bin_boundaries=[0.0, 1.0, 2.0])
        inp = lib.Input((4,))
        ids = L.IntegerLookup(vocabulary=[3, 1, 2, 0])(bins(inp))
        hashed = L.Hashing(6)(bins(inp))
        h = L.Concatenate()([L.Dense(5)(norm(inp)), L.CategoryEncoding(4, output_mode="count")(bins(inp)),
                             L.Flatten()(L.Embedding(6, 2)(ids)), L.Flatten()(L.Embedding(6, 2)(hashed))])
        return lib.Model(inp, L.Dense(2)(h))

    layer_models.train_both_like_keras(keras3, build, x, y)


def test_keras3_archive_with_adapted_lookups_loads_here(keras3, tmp_path):
    """Keras 3 keeps an adapted vocabulary in the .keras archive's assets and tf_idf weights among its variables,
    not in the config: both are read."""
    t = keras3.Input((5,), dtype="int64")
    outputs = []
    for mode in ("int", "tf_idf", "count"):
        lookup = keras3.layers.IntegerLookup(output_mode=mode, mask_token=0 if mode == "count" else None)
        lookup.adapt(TOKENS)
        outputs.append(lookup(t))
    model = keras3.Model(t, outputs)
    model.save(tmp_path / "lookups.keras")
    ours = core.models.load_model(str(tmp_path / "lookups.keras"), compile=False)
    for got, expected in zip(ours.predict(TOKENS, verbose=0), model.predict(TOKENS, verbose=0)):
        np.testing.assert_allclose(got, expected, atol=1e-6)


def test_a_layer_wired_before_it_is_adapted():
    """Drawn first and adapted afterwards (as Keras allows): wiring needs only the output's shape, running needs
    the adapted state, and a vocabulary that would change a wired vector output's length is refused."""
    t = core.Input((5,), dtype="int64")
    x = core.Input((4,))
    lookup, bins = core.layers.IntegerLookup(), core.layers.Discretization(num_bins=3, output_mode="one_hot")
    norm = core.layers.Normalization()
    model = core.Model([t, x], [lookup(t), bins(x), norm(x)])
    assert model.output_shape == [(None, 5), (None, 4, 3), (None, 4)]
    with pytest.raises(ConfigError, match="no vocabulary yet"):
        model.predict([TOKENS, X], verbose=0)
    lookup.adapt(TOKENS)
    bins.adapt(X)
    with pytest.raises(ConfigError, match="Normalization .* has no statistics yet"):
        model.predict([TOKENS, X], verbose=0)
    norm.adapt(X)
    expected = [core.layers.IntegerLookup(vocabulary=lookup.get_vocabulary(False))(TOKENS),
                core.layers.Discretization(bin_boundaries=bins.bin_boundaries, output_mode="one_hot")(X),
                (X - X.mean(0)) / X.std(0)]
    for got, want in zip(model.predict([TOKENS, X], verbose=0), expected):
        np.testing.assert_allclose(got, np.asarray(want), atol=0)
    wired = core.layers.IntegerLookup(output_mode="multi_hot", vocabulary_size=4)
    core.Model(t, wired(t))
    with pytest.raises(ConfigError, match="wired 4 long"):
        wired.adapt(TOKENS)
    with pytest.raises(ConfigError, match="length of its multi_hot output is unknown"):
        core.layers.IntegerLookup(output_mode="multi_hot")(t)


def test_adapting_again_changes_what_a_model_that_already_ran_computes():
    """The vocabulary and the bins are constants of the compiled graph: adapting anew must not leave a stale one."""
    t, x = core.Input((5,), dtype="int64"), core.Input((4,))
    lookup, bins = core.layers.IntegerLookup(), core.layers.Discretization(num_bins=3)
    lookup.adapt(TOKENS)
    bins.adapt(X)
    model = core.Model([t, x], [lookup(t), bins(x)])
    model.predict([TOKENS, X], verbose=0)
    lookup.adapt(TOKENS[::-1] * 2)
    bins.adapt(X * 3)
    for got, layer, data in zip(model.predict([TOKENS, X], verbose=0), (lookup, bins), (TOKENS, X)):
        np.testing.assert_array_equal(got, np.asarray(layer(data)))
