"""A CPU training step runs in a thread pool or on one thread, whichever is faster now (core.training.session)."""

import os

import numpy as np

import core as nw
from core import layers
from core.training.session import ThreadChoice


def _drive(choice, seconds):
    """Run `choice` for len(seconds) steps, the step on session i taking seconds[i] per sample; the indices run."""
    ran = []
    for _ in range(len(seconds[0])):
        i = choice.next_index()
        choice.record(i, seconds[i][len(ran)])
        ran.append(i)
    return ran


def test_the_fastest_way_takes_over_and_the_spinning_pool_wins_back_when_the_load_goes():
    """Another process holds a core for 300 steps: the pool without spinning (1) is tried first and takes over,
    one thread (2), slower still, is tried and loses, and the spinning pool (0) wins back when the load goes."""
    busy, idle = 300, 600
    spinning = [3.0] * busy + [1.0] * idle
    quiet = [1.5] * (busy + idle)
    solo = [2.0] * (busy + idle)
    choice = ThreadChoice()
    ran = _drive(choice, [spinning, quiet, solo])
    first, probe = ThreadChoice.FIRST, ThreadChoice.PROBE
    assert ran[:first] == [0] * first and ran[first:first + probe] == [1] * probe
    assert 2 in ran[first + probe:busy] and ran[first + probe:busy].count(1) > 0.9 * (busy - first - probe)
    assert choice.current == 0 and ran[-50:].count(0) >= 50 - probe


def test_one_thread_is_tried_when_the_quiet_pool_loses_too():
    choice = ThreadChoice()
    ran = _drive(choice, [[3.0] * 200, [3.0] * 200, [1.0] * 200])
    assert choice.current == 2 and ran[-50:].count(2) >= 50 - ThreadChoice.PROBE


def test_a_probe_does_not_count_the_cold_runs_of_a_new_session():
    """A fresh session's first run on each of the two buffer sets is slow (arenas, first binding); a quiet pool
    that is then twice as fast as the starved spinning one still takes over at the first probe."""
    choice = ThreadChoice(pool_threads=2)
    runs_of_quiet_pool = 0
    ran = []
    for _ in range(60):
        i = choice.next_index()
        if i == 1:
            runs_of_quiet_pool += 1
            seconds = 4.0 if runs_of_quiet_pool <= ThreadChoice.WARMUP else 1.0
        else:
            seconds = 2.0
        choice.record(i, seconds, 1.2 if i == 0 else 1.0)
        ran.append(i)
    first = ThreadChoice.FIRST
    assert ran[first:first + ThreadChoice.PERIOD] == [1] * ThreadChoice.PERIOD and choice.current == 1


def test_a_losing_probe_backs_off():
    choice = ThreadChoice()
    ran = _drive(choice, [[1.0] * 3000, [1.05] * 3000, [1.05] * 3000])  # no other way clearly faster
    probes = [k for k in range(1, len(ran)) if ran[k] != 0 and ran[k - 1] == 0]
    gaps = np.diff(probes)
    assert choice.current == 0 and all(b >= a for a, b in zip(gaps, gaps[1:]))
    assert gaps[-1] == ThreadChoice.MAX_PERIOD + ThreadChoice.PROBE
    assert {ran[k] for k in probes} == {1, 2}  # each way in turn
    assert len(ran) - ran.count(0) < 0.03 * len(ran)


def test_a_pool_that_has_its_cores_is_not_tried_against_the_other_ways():
    """Two threads using two CPU seconds per second are not starved: no try, no second session, until another
    process takes a core (1.4 CPU seconds per second) and the pool without spinning, faster then, takes over."""
    choice = ThreadChoice(pool_threads=2)
    ran = []
    for step in range(600):
        starved = step >= 300
        i = choice.next_index()
        seconds = {0: 3.0 if starved else 1.0, 1: 1.5, 2: 2.0}[i]
        choice.record(i, seconds, (1.4 if starved else 1.98) if i == 0 else 1.0)
        ran.append(i)
    assert ran[:300] == [0] * 300
    assert ran[300:].count(1) > 250 and choice.current == 1


class _Alternating(ThreadChoice):
    """Switches session every step, so every session reads and writes both buffer sets."""

    def next_index(self):
        self.current = (self.current + 1) % self.WAYS
        return self.current

    def record(self, index, seconds_per_sample, cpu_share=None):
        pass


def test_switching_sessions_mid_training_keeps_the_state():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((96, 8)).astype("float32")
    y = rng.integers(0, 3, size=(96,))

    def model():
        nw.utils.set_random_seed(3)
        m = nw.Sequential([nw.Input(shape=(8,)), layers.Dense(16, activation="relu"),
                           layers.Dense(3, activation="softmax")])
        m.compile(optimizer=nw.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
        return m

    plain, switching = model(), model()
    plain.fit(x[:16], y[:16], batch_size=16, epochs=1, verbose=0, shuffle=False)
    switching.fit(x[:16], y[:16], batch_size=16, epochs=1, verbose=0, shuffle=False)
    runner = switching._train_state["train"]
    runner.choice = _Alternating()
    expected = plain.fit(x, y, batch_size=16, epochs=3, verbose=0, shuffle=False).history["loss"]
    got = switching.fit(x, y, batch_size=16, epochs=3, verbose=0, shuffle=False).history["loss"]
    assert len(runner.sessions) == ThreadChoice.WAYS
    options = [session.get_session_options() for session in runner.sessions]
    assert [o.get_session_config_entry("session.intra_op.allow_spinning") for o in options] == ["1", "0", "1"]
    assert options[2].intra_op_num_threads == 1
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    for a, b in zip(switching.get_weights(), plain.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_the_thread_rule_counts_a_convolution_at_every_position():
    """Two Conv1D(64, 3) on 500 steps hold 12,000 weights but 6.2 million multiply-adds per sample: their steps
    get the thread pool (and the choice against one thread); a small MLP's steps run on one thread."""
    rng = np.random.default_rng(0)
    conv = nw.Sequential([nw.Input(shape=(500, 1)), layers.Conv1D(64, 3, padding="same"),
                          layers.Conv1D(64, 3, padding="same"), layers.GlobalAveragePooling1D(), layers.Dense(2)])
    mlp = nw.Sequential([nw.Input(shape=(8,)), layers.Dense(16), layers.Dense(2)])
    for model, shape in ((conv, (4, 500, 1)), (mlp, (4, 8))):
        model.compile(optimizer="sgd", loss="mse")
        model.fit(rng.standard_normal(shape).astype("float32"), np.zeros((4, 2), "float32"), batch_size=32,
                  epochs=1, verbose=0)
    runner = conv._train_state["train"]
    assert runner.program.macs_per_sample == 500 * 64 * 3 + 500 * 64 * 64 * 3 + 64 * 2
    assert conv._threads_for(32, runner.program.macs_per_sample) is None
    assert (runner.choice is not None) == ((os.cpu_count() or 1) > 1)
    assert mlp._threads_for(32, mlp._train_state["train"].program.macs_per_sample) == 1
    assert mlp._train_state["train"].choice is None
