"""SimpleRNN, GRU and LSTM against NumPy transcriptions of Keras 3 (masks anywhere, go_backwards, states, initial
states), the ONNX nodes they compile to, their weights, configs and errors."""

import numpy as np
import pytest

import core as keras
from core import activations, layers
from core.errors import ConfigError, ShapeError
from core.graph import GraphBuilder, graph_scope
from rnn_reference import gru_step, lstm_step, run_rnn, simple_step

RNG = np.random.default_rng(7)
X = RNG.standard_normal((4, 6, 3)).astype(np.float32)
MASKS = {
    "right_padded": np.array([[1] * 6, [1] * 4 + [0] * 2, [1] + [0] * 5, [1] * 6], bool),
    "holes": np.array([[1, 0, 1, 0, 1, 1], [0, 0, 1, 1, 0, 1], [0] * 6, [1, 1, 1, 1, 1, 0]], bool),
    "left_padded": np.array([[0, 0, 1, 1, 1, 1], [0, 0, 0, 0, 0, 1], [1] * 6, [0] * 6], bool),
}


def _randomize(layer, scale=0.8):
    layer.set_weights([RNG.standard_normal(w.shape).astype(np.float32) * scale for w in layer.weights])
    return [w.numpy() for w in layer.weights]


def _reference(kind, weights, x, **kw):
    kernel, rec, bias = (weights + [None])[:3]
    act = kw.pop("act", np.tanh)
    if kind == "LSTM":
        step = lambda xt, s: lstm_step(xt, s, kernel, rec, bias, act=act)  # noqa: E731
        n = 2
    elif kind == "GRU":
        reset_after = kw.pop("reset_after", True)
        step = lambda xt, s: gru_step(xt, s, kernel, rec, bias, act=act, reset_after=reset_after)  # noqa: E731
        n = 1
    else:
        step = lambda xt, s: simple_step(xt, s, kernel, rec, bias, act=act)  # noqa: E731
        n = 1
    init = kw.pop("initial_state", None)
    states = init if init is not None else [np.zeros((x.shape[0], kernel.shape[1] // {"LSTM": 4, "GRU": 3}.get(
        kind, 1)), np.float32)] * n
    return run_rnn(step, x, list(states), **kw)


def _as_list(y):
    return [np.asarray(t) for t in (y if isinstance(y, (list, tuple)) else [y])]


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "SimpleRNN"])
@pytest.mark.parametrize("mask_name", [None, "right_padded", "holes", "left_padded"])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_matches_keras_rules_for_any_mask(kind, mask_name, go_backwards):
    mask = None if mask_name is None else MASKS[mask_name]
    for return_sequences in (False, True):
        layer = getattr(layers, kind)(5, return_sequences=return_sequences, return_state=True,
                                      go_backwards=go_backwards)
        layer.build(X.shape)
        weights = _randomize(layer)
        got = _as_list(layer(X) if mask is None else layer(X, mask=mask))
        want = _reference(kind, weights, X, mask=mask, go_backwards=go_backwards,
                          return_sequences=return_sequences, return_state=True)
        assert len(got) == len(want) == (3 if kind == "LSTM" else 2)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, atol=2e-5)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "SimpleRNN"])
@pytest.mark.parametrize("mask_name", [None, "holes"])
def test_initial_state_with_and_without_mask(kind, mask_name):
    mask = None if mask_name is None else MASKS[mask_name]
    n = 2 if kind == "LSTM" else 1
    init = [RNG.standard_normal((4, 5)).astype(np.float32) for _ in range(n)]
    layer = getattr(layers, kind)(5, return_sequences=True, return_state=True)
    layer.build(X.shape)
    weights = _randomize(layer)
    kwargs = {"initial_state": init} if mask is None else {"initial_state": init, "mask": mask}
    got = _as_list(layer(X, **kwargs))
    want = _reference(kind, weights, X, initial_state=init, mask=mask, return_sequences=True, return_state=True)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=2e-5)
    # An all-masked row keeps its initial state but outputs zeros, as Keras does.
    if mask is not None:
        np.testing.assert_allclose(got[0][2], 0.0)
        np.testing.assert_allclose(got[1][2], init[0][2], atol=1e-6)


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("use_bias", [True, False])
def test_gru_variants(reset_after, use_bias):
    layer = layers.GRU(4, reset_after=reset_after, use_bias=use_bias, return_sequences=True)
    layer.build(X.shape)
    expected_shapes = [(3, 12), (4, 12)] + ([(2, 12) if reset_after else (12,)] if use_bias else [])
    assert [w.shape for w in layer.weights] == expected_shapes
    weights = _randomize(layer)
    for mask in (None, MASKS["holes"]):
        got = np.asarray(layer(X) if mask is None else layer(X, mask=mask))
        want = _reference("GRU", weights, X, reset_after=reset_after, mask=mask, return_sequences=True)
        np.testing.assert_allclose(got, want, atol=2e-5)


@pytest.mark.parametrize("activation", ["relu", "hard_sigmoid", "linear", "selu", "gelu"])
def test_other_activations_fused_or_scanned_agree_with_reference(activation):
    layer = layers.SimpleRNN(4, activation=activation, return_sequences=True)
    layer.build(X.shape)
    weights = _randomize(layer, 0.3)
    act = lambda v: np.asarray(activations.get(activation)(v.astype(np.float32)))  # noqa: E731
    for mask in (None, MASKS["holes"]):
        got = np.asarray(layer(X) if mask is None else layer(X, mask=mask))
        want = _reference("SimpleRNN", weights, X, act=act, mask=mask, return_sequences=True)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_length_one_and_batch_of_one():
    layer = layers.LSTM(3, return_sequences=True)
    layer.build((None, None, 3))
    weights = _randomize(layer)
    for x, mask in ((X[:, :1], None), (X[:1], MASKS["holes"][:1]), (X[:1, :1], np.array([[False]]))):
        got = np.asarray(layer(x) if mask is None else layer(x, mask=mask))
        np.testing.assert_allclose(got, _reference("LSTM", weights, x, mask=mask, return_sequences=True), atol=2e-5)


def _op_types(graph) -> set:
    """Op types of a graph and of every subgraph (If branches, Scan bodies) inside it."""
    found = set()
    for n in graph.nodes:
        found.add(n.op_type)
        for v in n.attrs.values():
            if isinstance(v, GraphBuilder):
                found |= _op_types(v)
    return found


def test_which_recurrence_each_case_compiles_to():
    def graph_of_call(layer, with_mask, training_graph=False, initial_state=False):
        g = GraphBuilder("t", weights_as_inputs=training_graph)
        x = g.add_input("x", "float32", (None, None, 3))
        if with_mask:
            x._keras_mask = g.add_input("m", "bool", (None, None))
        states = [g.add_input("s", "float32", (None, 4)) for _ in range(layer.state_count)]
        with graph_scope(g):
            layer(x, initial_state=states if initial_state else None)
        return g

    for cls, onnx_op in ((layers.LSTM, "LSTM"), (layers.GRU, "GRU"), (layers.SimpleRNN, "RNN")):
        layer = cls(4)
        # Unmasked inference: the fused node alone.
        top = {n.op_type for n in graph_of_call(layer, False).nodes}
        assert onnx_op in top and "Scan" not in top and "If" not in top
        # Masked inference: an If that picks the fused node (right padding) or the exact Scan (any other mask).
        g = graph_of_call(layer, True)
        branch = next(n for n in g.nodes if n.op_type == "If")
        assert onnx_op in _op_types(branch.attrs["then_branch"]) and "Scan" not in _op_types(branch.attrs["then_branch"])
        assert "Scan" in _op_types(branch.attrs["else_branch"])
        # Masked with initial states, and training graphs: the Scan only.
        for g in (graph_of_call(layer, True, initial_state=True), graph_of_call(layer, False, training_graph=True)):
            assert "Scan" in {n.op_type for n in g.nodes} and onnx_op not in _op_types(g)
    # The input projection happens once, outside the loop.
    g = graph_of_call(layers.LSTM(4), True, initial_state=True)
    scan = next(n for n in g.nodes if n.op_type == "Scan")
    body_matmuls = [n for n in scan.attrs["body"].nodes if n.op_type == "MatMul"]
    assert len(body_matmuls) == 1  # only h·R


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("zero_output_for_mask", [False, True])
def test_right_padded_fast_path_and_general_path_agree_with_reference(go_backwards, zero_output_for_mask):
    """Right padding runs the fused node with sequence_lens (Keras's repeated last output restored), anything else
    (holes, left padding, empty rows) the Scan; the same graph handles both, chosen at run time."""
    layer = layers.LSTM(5, return_sequences=True, return_state=True, go_backwards=go_backwards,
                        zero_output_for_mask=zero_output_for_mask)
    layer.build(X.shape)
    weights = _randomize(layer)
    right = np.array([[1] * 6, [1] * 4 + [0] * 2, [1] + [0] * 5, [1] * 3 + [0] * 3], bool)
    for mask in (right, MASKS["holes"], MASKS["left_padded"], MASKS["right_padded"] & False):
        got = _as_list(layer(X, mask=mask))
        want = _reference("LSTM", weights, X, mask=mask, go_backwards=go_backwards, return_sequences=True,
                          return_state=True, zero_output_for_mask=zero_output_for_mask)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, atol=2e-5)


def test_models_export_valid_onnx_masked_or_not():
    import onnx

    inp = keras.Input(shape=(6, 3))
    layer = layers.LSTM(4, return_sequences=True)
    model = keras.Model(inp, layer(inp))
    proto = model.to_onnx()
    assert any(n.op_type == "LSTM" for n in proto.graph.node)
    np.testing.assert_allclose(model.predict(X), np.asarray(layer(X)), atol=1e-6)
    g = GraphBuilder("masked")
    x = g.add_input("x", "float32", (None, None, 3))
    x._keras_mask = g.add_input("m", "bool", (None, None))
    with graph_scope(g):
        y = layers.Bidirectional(layers.GRU(3, return_sequences=True))(x)
    g.set_outputs([y], ["y"])
    onnx.checker.check_model(g.to_model(), full_check=True)


def test_weights_shapes_names_and_param_counts():
    lstm = layers.LSTM(128)
    lstm.build((None, None, 64))
    assert [w.path for w in lstm.weights] == ["lstm/lstm_cell/kernel", "lstm/lstm_cell/recurrent_kernel",
                                              "lstm/lstm_cell/bias"]
    assert [w.shape for w in lstm.weights] == [(64, 512), (128, 512), (512,)]
    assert lstm.count_params() == 98816
    # unit_forget_bias: forget gate starts at one.
    np.testing.assert_array_equal(lstm.bias.numpy()[128:256], 1.0)
    np.testing.assert_array_equal(lstm.bias.numpy()[:128], 0.0)
    gru = layers.GRU(256)
    gru.build((None, None, 64))
    assert gru.count_params() == 247296
    rnn = layers.SimpleRNN(128)
    rnn.build((None, None, 256))
    assert rnn.count_params() == 49280


def test_output_shapes_and_masks_in_the_functional_api():
    inp = keras.Input(shape=(None, 8))
    seq, h, c = layers.LSTM(5, return_sequences=True, return_state=True)(inp)
    assert seq.shape == (None, None, 5) and h.shape == (None, 5) and c.shape == (None, 5)
    out, state = layers.GRU(3, return_state=True)(seq)
    assert out.shape == (None, 3) and state.shape == (None, 3)
    assert layers.SimpleRNN(2, return_sequences=True).compute_mask(None, "m") == "m"
    assert layers.SimpleRNN(2).compute_mask(None, "m") is None
    assert layers.LSTM(2, return_state=True).compute_mask(None, "m") == [None, None, None]


def test_config_round_trip_and_tf_keras2_keys():
    layer = layers.LSTM(7, activation="relu", recurrent_activation="hard_sigmoid", return_sequences=True,
                        go_backwards=True, dropout=0.25, recurrent_dropout=0.5, unit_forget_bias=False,
                        kernel_regularizer="l2", name="enc")
    config = layer.get_config()
    for key in ("units", "activation", "recurrent_activation", "return_sequences", "return_state", "go_backwards",
                "stateful", "unroll", "zero_output_for_mask", "unit_forget_bias", "dropout", "recurrent_dropout",
                "kernel_initializer", "recurrent_initializer", "bias_initializer"):
        assert key in config, key
    clone = layers.LSTM.from_config(config)
    assert clone.get_config() == config
    gru = layers.GRU.from_config({**layers.GRU(3, reset_after=False).get_config(), "name": "g2"})
    assert gru.reset_after is False
    # tf.keras 2 configs carry time_major and implementation.
    layers.LSTM(3, time_major=False, implementation=2)


def test_errors_name_what_was_wrong():
    with pytest.raises(ConfigError, match="stateful"):
        layers.LSTM(3, stateful=True)
    with pytest.raises(ConfigError, match="time_major"):
        layers.GRU(3, time_major=True)
    with pytest.raises(ConfigError, match="units"):
        layers.LSTM(0)
    with pytest.raises(ConfigError, match="bogus"):
        layers.LSTM(3, bogus=1)
    with pytest.raises(ConfigError, match="dropout"):
        layers.GRU(3, dropout=1.5)
    with pytest.raises(ShapeError, match=r"\(batch, time, features\)"):
        layers.LSTM(3)(keras.Input(shape=(4,)))
    with pytest.raises(ShapeError, match="initial_state"):
        layers.LSTM(3)(X, initial_state=[np.zeros((4, 3), np.float32)])
    with pytest.raises(ShapeError, match=r"initial_state\[0\]"):
        layers.GRU(3)(X, initial_state=[np.zeros((4, 5), np.float32)])
    layer = layers.SimpleRNN(2)
    layer(X)
    with pytest.raises(ShapeError, match="built for 3 input features"):
        layer(np.zeros((2, 4, 5), np.float32))


def test_dropout_only_in_training_and_scales_as_inverted_dropout():
    layer = layers.LSTM(4, dropout=0.5, recurrent_dropout=0.5, return_sequences=True)
    layer.build(X.shape)
    weights = _randomize(layer)
    # Inference: dropout off, fused node, exact.
    np.testing.assert_allclose(np.asarray(layer(X)), _reference("LSTM", weights, X, return_sequences=True),
                               atol=2e-5)
    # Training: different from inference, finite, and still deterministic in shape.
    y = np.asarray(layer(X, training=True))
    assert y.shape == (4, 6, 4) and np.isfinite(y).all()
    assert np.abs(y - np.asarray(layer(X))).max() > 1e-3


def test_cell_is_a_one_step_layer():
    cell = layers.LSTMCell(3)
    h, (h2, c) = cell(X[:, 0], [np.zeros((4, 3), np.float32), np.zeros((4, 3), np.float32)])
    k, r, b = [w.numpy() for w in cell.weights]
    want_h, want = lstm_step(X[:, 0], [np.zeros((4, 3)), np.zeros((4, 3))], k, r, b)
    np.testing.assert_allclose(np.asarray(h), want_h, atol=1e-5)
    np.testing.assert_allclose(np.asarray(c), want[1], atol=1e-5)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "SimpleRNN"])
def test_training_graphs_scan_reads_weights_from_outside(kind):
    """Training graphs feed weights as graph inputs; the Scan's step reads them from the outer scope by name (so
    reverse mode sees the dependency, and no step copies them) and computes what inference computes."""
    import onnxruntime as ort

    from core.graph import node_inputs

    layer = getattr(layers, kind)(4, return_sequences=True)
    layer.build(X.shape)
    _randomize(layer)
    g = GraphBuilder("train", weights_as_inputs=True)
    x = g.add_input("x", "float32", (None, None, 3))
    m = g.add_input("m", "bool", (None, None))
    with graph_scope(g):
        y = layer(x, mask=m)
    g.set_outputs([y], ["y"])
    scan = next(n for n in g.nodes if n.op_type == "Scan")
    weight_inputs = {t.name for _, t in g.variable_inputs}
    assert any("recurrent_kernel" in name for name in weight_inputs)
    kernels = {name for name in weight_inputs if "recurrent_kernel" in name}
    assert kernels <= set(node_inputs(scan))
    body = scan.attrs["body"]
    assert not [n for n in body.nodes if n.op_type == "Identity" and n.inputs[0] in kernels]
    feeds = {"x": X, "m": MASKS["holes"]}
    feeds.update({t.name: var.numpy() for var, t in g.variable_inputs})
    sess = ort.InferenceSession(g.to_model().SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(None, feeds)[0], np.asarray(layer(X, mask=MASKS["holes"])), atol=1e-6)


def test_right_padding_detection():
    from core.ops.dispatch import run_eagerly

    def check(mask):
        lengths, ok = run_eagerly(keras.ops.right_padding_lengths, (mask,), {})
        return np.asarray(lengths).tolist(), bool(ok)

    assert check(np.array([[1, 1, 0], [1, 0, 0], [1, 1, 1]], bool)) == ([2, 1, 3], True)
    assert check(np.array([[1, 0, 1], [1, 1, 1]], bool))[1] is False  # a hole
    assert check(np.array([[0, 1, 1], [1, 1, 1]], bool))[1] is False  # left padding
    assert check(np.array([[0, 0, 0], [1, 1, 1]], bool))[1] is False  # an empty row: ORT refuses length 0


@pytest.mark.parametrize("make", [
    lambda: layers.GRU(3, reset_after=False, dropout=0.3, recurrent_dropout=0.3, return_sequences=True),
    lambda: layers.GRU(3, dropout=0.3, recurrent_dropout=0.3),
    lambda: layers.GRU(3, recurrent_dropout=0.5, reset_after=False),
    lambda: layers.SimpleRNN(3, dropout=0.2, recurrent_dropout=0.4),
    lambda: layers.LSTM(3, dropout=0.5),
])
def test_every_dropout_variant_runs_in_training_and_is_off_in_inference(make):
    layer = make()
    layer.build(X.shape)
    weights = _randomize(layer, 0.5)
    kind = type(layer).__name__
    kw = {"reset_after": layer.reset_after} if kind == "GRU" else {}
    want = _reference(kind, weights, X, return_sequences=layer.return_sequences, **kw)
    np.testing.assert_allclose(np.asarray(layer(X)), want, atol=2e-5)
    y = np.asarray(layer(X, training=True))
    assert y.shape == want.shape and np.isfinite(y).all() and np.abs(y - want).max() > 1e-4


@pytest.mark.parametrize("vocab,folded", [(50, True), (5000, False)])
def test_embedding_table_folds_into_the_input_projection_when_small(vocab, folded):
    """Embedding -> LSTM in a training graph looks rows up in the projected table E·W + b when the table has at
    most 32 rows per time step; a larger vocabulary projects the looked-up rows. Both compute the same thing."""
    import onnxruntime as ort

    model = keras.Sequential([keras.Input((10,)), layers.Embedding(vocab, 3), layers.LSTM(4)])
    g = model.inference_graph(training=True, weights_as_inputs=True)
    kernel = next(t.name for v, t in g.variable_inputs if "lstm" in v.path and v.path.endswith("/kernel"))
    table = next(t.name for v, t in g.variable_inputs if "embeddings" in v.path)
    projects_table = any(n.op_type == "MatMul" and n.inputs == [table, kernel] for n in g.nodes)
    assert projects_table == folded
    ids = RNG.integers(0, vocab, (3, 10)).astype(np.float32)
    feeds = {g.inputs[0].name: ids, **{t.name: v.numpy() for v, t in g.variable_inputs}}
    got = ort.InferenceSession(g.to_model().SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    np.testing.assert_allclose(got[0], np.asarray(model.predict(ids, verbose=0)), atol=1e-5)


def _scan_lookup_model(extra_reader: bool):
    """A Scan summing the rows table[ids[t]] over t, written from a GraphBuilder; with `extra_reader` the looked-up
    sequence is also a graph output."""
    from core import ops

    g = GraphBuilder("lookup_scan")
    with graph_scope(g):
        table = g.add_input("table", "float32", (5, 3))
        ids = g.add_input("ids", "int64", (4, None))  # time-major: (steps, batch)
        rows = ops.take(table, ids, axis=0)
        total = ops.scan_rnn(lambda x, s, c: (ops.add(s[0], x[0]), [ops.add(s[0], x[0])]), [rows],
                             [ops.zeros_state(rows, 3, batch_axis=1)], output_size=3, time_major=True)[0]
        g.set_outputs([total, rows] if extra_reader else [total], ["total", "rows"] if extra_reader else ["total"])
    return g.to_model()


@pytest.mark.parametrize("extra_reader", [False, True])
def test_a_scan_looks_up_its_rows_itself_when_nothing_else_reads_the_lookup(extra_reader):
    """Writing a graph moves a row lookup feeding a Scan into the loop (each step gathers its own rows from the
    small table) unless something else reads the whole looked-up sequence; either way the results are the same."""
    import onnxruntime as ort

    model = _scan_lookup_model(extra_reader)
    scan = next(n for n in model.graph.node if n.op_type == "Scan")
    body = next(a.g for a in scan.attribute if a.name == "body")
    assert (scan.input[-1] == "ids") is not extra_reader
    assert (body.node[0].op_type == "Gather" and body.node[0].input[0] == "table") is not extra_reader
    assert sum(n.op_type == "Gather" and n.input[0] == "table" for n in model.graph.node) == int(extra_reader)
    table = RNG.standard_normal((5, 3)).astype(np.float32)
    ids = RNG.integers(-5, 5, (4, 2))  # negative ids count from the end, inside the loop too
    got = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        ["total"], {"table": table, "ids": ids})[0]
    np.testing.assert_allclose(got, table[ids].sum(axis=0), atol=1e-6)


def test_a_folded_embedding_is_looked_up_step_by_step_and_the_full_lookup_is_not_computed():
    """Embedding -> LSTM training graph: the Scan takes the ids and gathers rows of the projected table per step;
    the embedding lookup E[ids] the fold replaced is not run (the zero state takes its batch size from the ids)."""
    model = keras.Sequential([keras.Input((10,)), layers.Embedding(50, 3), layers.LSTM(4)])
    g = model.inference_graph(training=True, weights_as_inputs=True)
    proto = g.to_model()
    table = next(t.name for v, t in g.variable_inputs if "embeddings" in v.path)
    assert not any(n.op_type == "Gather" and n.input[0] == table for n in proto.graph.node)
    scan = next(n for n in proto.graph.node if n.op_type == "Scan")
    body = next(a.g for a in scan.attribute if a.name == "body")
    assert body.node[0].op_type == "Gather" and body.input[-1].type.tensor_type.elem_type == 7  # int64 ids
