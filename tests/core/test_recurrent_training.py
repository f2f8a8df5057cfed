"""Training through the recurrence (the Scan's reverse-mode rule) reproduces a real Keras 3 run: the
Bidirectional(GRU) -> SimpleRNN trajectory in fixtures/keras/trajectories, history to 1e-4 and final weights to 1e-3."""

import json

import numpy as np
import pytest

import core as keras
from core import layers


def test_bidirectional_gru_simple_rnn_trajectory(fixtures_dir):
    case = "traj_gru_bidir_adam"
    folder = fixtures_dir / "trajectories"
    meta = json.loads((folder / "trajectories.json").read_text())["cases"][case]
    config = json.loads((folder / f"{case}.json").read_text())["config"]["layers"]
    assert [c["class_name"] for c in config] == ["InputLayer", "Bidirectional", "SimpleRNN", "Dense"]
    gru = config[1]["config"]["layer"]["config"]
    rnn, dense = config[2]["config"], config[3]["config"]
    model = keras.Sequential([
        layers.Input(shape=tuple(config[0]["config"]["batch_shape"][1:])),
        layers.Bidirectional(layers.GRU(gru["units"], return_sequences=gru["return_sequences"],
                                        reset_after=gru["reset_after"]),
                             merge_mode=config[1]["config"]["merge_mode"]),
        layers.SimpleRNN(rnn["units"], activation=rnn["activation"]),
        layers.Dense(dense["units"], activation=dense["activation"]),
    ])
    w0 = np.load(folder / f"{case}.initial_weights.npz")
    w1 = np.load(folder / f"{case}.final_weights.npz")
    model.set_weights([w0[f"arr_{i}"] for i in range(len(w0.files))])
    data = np.load(folder / f"{case}_data.npz")
    c = meta["compile"]
    model.compile(optimizer=keras.optimizers.get(c["optimizer"]), loss=c["loss"], metrics=c["metrics"])
    history = model.fit(data["x0"], data["y0"], shuffle=False, verbose=0, **meta["fit"])
    for key, expected in meta["history"].items():
        np.testing.assert_allclose(history.history[key], expected, rtol=1e-4, err_msg=key)
    for i, w in enumerate(model.get_weights()):
        np.testing.assert_allclose(w, w1[f"arr_{i}"], rtol=1e-3, atol=1e-5, err_msg=f"weight {i}")


def _trained_model(rnn):
    """Input(6, 3) -> rnn -> Dense(2), trained one step with Adam (so that its step graphs exist)."""
    model = keras.Sequential([layers.Input(shape=(6, 3)), rnn, layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    rng = np.random.default_rng(0)
    model.fit(rng.standard_normal((4, 6, 3)).astype(np.float32), rng.standard_normal((4, 2)).astype(np.float32),
              verbose=0)
    return model


def _scans(graph):
    """The forward Scan, its body and the backward Scan of a step graph."""
    forward, backward = [n for n in graph.node if n.op_type == "Scan"]
    return forward, next(a.g for a in forward.attribute if a.name == "body"), backward


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_the_forward_step_computes_and_records_the_derivative_factors(kind):
    """On the CPU the forward step computes the backward step's derivative factors (LSTM: o - h·tanh(c),
    h·(1 - o), i - (i·g)·g, (f·c₋₁)(1 - f), (i·g)(1 - i)) and records them instead of the gates: no elementwise
    math runs on whole sequences between the loops, and only h₋₁ (for dR = sum_t h₋₁ᵀ dZ after the loop) is
    copied out of the step; the LSTM's backward step is six nodes. (The gradient itself is checked against Keras and
    finite differences elsewhere.)"""
    graph = _trained_model(getattr(layers, kind)(4))._train_state["train"].program.model_proto.graph
    forward, body, backward = _scans(graph)
    assert [n.input[0] for n in body.node if n.op_type == "Identity"] == [body.input[0].name]
    n_state = len(body.input) - next(a.i for a in forward.attribute if a.name == "num_scan_inputs")
    records = set(forward.output[n_state:])
    readers = {n.op_type for n in graph.node if n is not forward and set(n.input) & records}
    assert readers <= {"Scan", "Reshape"}  # the backward Scan, and the dR product's reshape of h₋₁
    if kind == "LSTM":
        c_in = body.input[1].name
        assert [n.op_type for n in body.node if c_in in n.input] == ["Mul"]  # only f·c₋₁ reads c₋₁
        # The backward step forms dZ = [dc, dc, dc, dh] · [i', f', g', o'] with the factors joined forward.
        back = next(a.g for a in backward.attribute if a.name == "body")
        producer = {o: n for n in back.node for o in n.output}
        dz = producer[next(n for n in back.node if n.op_type == "Gemm").input[0]]
        assert dz.op_type == "Mul" and sorted(getattr(producer.get(i), "op_type", "input") for i in dz.input) == \
            ["Concat", "input"]
        assert len(back.node) == 6


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_on_cuda_the_factors_are_whole_sequence_ops_and_the_step_computes_the_same(kind):
    """For CUDA, where every node in a loop is a kernel launch per step, the factors are computed between the
    loops from recorded gates instead; both graphs compute the same step (run here on the CPU)."""
    import onnxruntime as ort

    from core.training.step_graph import build_step

    model = _trained_model(getattr(layers, kind)(4))
    st = model._train_state
    cpu = st["train"].program
    cuda = build_step(model, st["x_specs"], st["y_specs"], st["targets"], optimizer=model.optimizer, device="cuda")
    forward, body, _ = _scans(cuda.model_proto.graph)
    assert len(body.node) < len(_scans(cpu.model_proto.graph)[1].node)
    between = list(cuda.model_proto.graph.node)
    between = between[between.index(forward) + 1:]
    assert any(n.op_type in ("Mul", "Sub") and any(i in forward.output for i in n.input) for n in between)
    rng = np.random.default_rng(1)
    sessions = [ort.InferenceSession(p.model_proto.SerializeToString(), providers=["CPUExecutionProvider"])
                for p in (cpu, cuda)]
    feeds = {}
    for i in sessions[0].get_inputs():
        shape = [4 if not isinstance(d, int) else d for d in i.shape]
        feeds[i.name] = (np.ones(shape) if "sample_weight" in i.name else
                         rng.standard_normal(shape) * 0.5).astype(np.float32)
    feeds["iterations"] = np.array(3, np.float32)
    feeds["learning_rate"] = np.array(0.01, np.float32)
    got = [dict(zip([o.name for o in s.get_outputs()], s.run(None, feeds))) for s in sessions]
    for slot in cpu.state:
        if slot.output_name:
            other = next(c for c in cuda.state if c.key == slot.key)
            np.testing.assert_allclose(got[0][slot.output_name], got[1][other.output_name], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[0][cpu.result_names[0]], got[1][cuda.result_names[0]], rtol=1e-6)


def test_optimizers_that_read_an_embeddings_per_lookup_rows():
    """The step graph builds an embedding's per-lookup rows (and takes its gradient from them) only for an
    optimizer that reads them: not SGD, and not where clipping or gradient accumulation make the gradient dense."""
    opt = keras.optimizers
    assert opt.Adam().reads_lookup_rows and opt.RMSprop().reads_lookup_rows and opt.Adamax().reads_lookup_rows
    assert not opt.SGD().reads_lookup_rows
    assert not opt.Adam(clipnorm=1.0).reads_lookup_rows
    assert not opt.Adam(gradient_accumulation_steps=2).reads_lookup_rows
