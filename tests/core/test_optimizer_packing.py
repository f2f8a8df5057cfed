"""Small weights update as one flat vector and large ones on their own (step_graph.PACKED_WEIGHT_MAX): the packing
changes how the step is laid out, never a number, whether the optimizer clips, reads sparse rows, or both."""

import numpy as np
import pytest

import core as keras
from core import layers
from core.training import step_graph

IDS = np.random.default_rng(3).integers(0, 5000, size=(64, 12)).astype(np.int32)
IDS[:, :3] = 7  # repeated rows in one batch: Adam's sparse parts sum their squares
Y = np.random.default_rng(4).integers(0, 2, size=(64, 1)).astype(np.float32)


def _trained(monkeypatch, packed_max, optimizer):
    monkeypatch.setattr(step_graph, "PACKED_WEIGHT_MAX", packed_max)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((12,), dtype="int32"), layers.Embedding(5000, 64),
                              layers.GlobalAveragePooling1D(), layers.Dense(8, activation="relu"),
                              layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer(), "binary_crossentropy")
    history = model.fit(IDS, Y, batch_size=16, epochs=2, verbose=0, shuffle=False)
    program = model._train_state["train"].program
    opt = model.optimizer
    slots = [np.concatenate([np.ravel(s) for _, s in sorted(opt.slots_for(v).items())]) for v in model.weights]
    return history.history["loss"], model.get_weights(), slots, program


@pytest.mark.parametrize("optimizer", [lambda: keras.optimizers.Adam(1e-2),
                                       lambda: keras.optimizers.Adam(1e-2, global_clipnorm=0.5),
                                       lambda: keras.optimizers.RMSprop(1e-2),
                                       lambda: keras.optimizers.SGD(0.1, momentum=0.9)],
                         ids=["adam", "adam global_clipnorm", "rmsprop", "sgd momentum"])
def test_a_large_weight_alone_trains_exactly_as_packed(monkeypatch, optimizer):
    loss_a, weights_a, slots_a, program = _trained(monkeypatch, 1 << 18, optimizer)
    loss_b, weights_b, slots_b, packed_program = _trained(monkeypatch, 1 << 30, optimizer)
    # The 5000 x 64 table (320,000 values) has slots of its own; the Dense weights share the flat ones.
    assert [len(layout) for layout in (program.flat_layout, packed_program.flat_layout)] == [4, 5]
    assert any(s.key[0] == "s" for s in program.state)
    assert not any(s.key[0] == "s" for s in packed_program.state)
    assert loss_a == loss_b
    for a, b in zip(weights_a + slots_a, weights_b + slots_b):
        np.testing.assert_array_equal(a, b)


def test_one_small_weight_with_a_large_one_updates_each_on_its_own(monkeypatch):
    monkeypatch.setattr(step_graph, "PACKED_WEIGHT_MAX", 1 << 18)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((12,), dtype="int32"), layers.Embedding(5000, 64),
                              layers.GlobalAveragePooling1D(), layers.Dense(1, use_bias=False)])
    model.compile("adam", "mse")
    model.fit(IDS, Y, batch_size=16, epochs=1, verbose=0)
    program = model._train_state["train"].program
    assert program.flat_layout is None  # nothing to pack one weight with
    assert sorted(s.key[2] for s in program.state if s.key[0] == "s") == ["momentum"] * 2 + ["velocity"] * 2
