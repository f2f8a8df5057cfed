"""Running step graphs in ONNX Runtime with the state kept in two buffer sets (ping-pong).

A training step reads weights and slots from one set of OrtValues and writes the new values into the other; the
next step swaps. An output is never bound to the buffer of an input (that silently corrupts training: a later node
would read an overwritten weight). Both directions are prepared once as IOBindings, so a step binds only the batch
and the two scalars (learning rate, step count) and copies out only the results (loss, metric statistics).
"""

from __future__ import annotations

import time

import numpy as np

from core import runtime
from core.training import host_dropout
from core.training.step_graph import StepProgram


def _ortvalue(arr: np.ndarray, device: str):
    import onnxruntime as ort

    arr = np.array(arr, order="C")  # (ascontiguousarray would make 0-d values 1-d)
    if device == "cuda":
        return ort.OrtValue.ortvalue_from_numpy(arr, "cuda", 0)
    return ort.OrtValue.ortvalue_from_numpy(arr)


class StateBuffers:
    """Two sets of OrtValues holding every persistent value (by StateSlot key); `current` is the readable one."""

    def __init__(self, values: dict, device: str):
        self.device = device
        self.sets = [{k: _ortvalue(np.asarray(v), device) for k, v in values.items()},
                     {k: _ortvalue(np.array(v, copy=True), device) for k, v in values.items()}]
        self.current = 0

    def read(self, key) -> np.ndarray:
        return self.sets[self.current][key].numpy()

    def write(self, key, value) -> None:
        """Replace a value from the host (e.g. weights a callback restored)."""
        for s in self.sets:
            s[key] = _ortvalue(np.asarray(value, dtype=s[key].numpy().dtype), self.device)

    def keys(self):
        return self.sets[0].keys()


class StepRunner:
    """One step graph bound to the state buffers, in both ping-pong directions.

    With `adaptive` (CPU training steps big enough for several threads), the runner may also make sessions of the
    same graph whose pool does not spin, or with one thread, and runs whichever is fastest now (`ThreadChoice`):
    on an idle machine the spinning pool wins, but when another process keeps a core busy (a GUI, a browser, a
    second training) its spinning workers fight that process for the core."""

    def __init__(self, program: StepProgram, buffers: StateBuffers, device: str, threads: int | None = None,
                 adaptive: bool = False):
        self.program = program
        self.buffers = buffers
        options = runtime.session_options(threads=threads, training=True)  # see runtime.session_options
        session, self.device = runtime.create_session(program.model_proto, device, options=options)
        self.writes = any(s.output_name for s in program.state)
        self._results = []
        for shape in program.result_shapes:
            self._results.append(_ortvalue(np.zeros(shape, dtype=np.float32), "cpu")
                                 if all(d is not None for d in shape) else None)
        self.sessions = [session]
        self._bindings = [self._bind(session, 0), self._bind(session, 1)]
        self.choice = ThreadChoice(pool_threads()) if adaptive and self.device == "cpu" and not threads else None
        self._dropout_rngs = [np.random.default_rng(b.seed) for b in program.dropout_bits]

    @property
    def session(self):
        """The session the next step runs in."""
        return self.sessions[self.choice.current if self.choice else 0]

    def replace_session(self, session) -> None:
        """Run every step in `session` (a session of the same graph, e.g. one that profiles)."""
        self.sessions, self.choice = [session], None
        self.rebind()

    def _bind(self, session, parity: int):
        b = session.io_binding()
        src = self.buffers.sets[parity]
        dst = self.buffers.sets[1 - parity]
        for slot in self.program.state:
            b.bind_ortvalue_input(slot.input_name, src[slot.key])
            if slot.output_name:
                b.bind_ortvalue_output(slot.output_name, dst[slot.key])
        for name, ov in zip(self.program.result_names, self._results):
            if ov is not None:
                b.bind_ortvalue_output(name, ov)
            else:
                b.bind_output(name, "cpu")
        return b

    def rebind(self):
        """After the host replaced state values (`StateBuffers.write`), point the bindings at the new buffers."""
        self._bindings = [self._bind(s, parity) for s in self.sessions for parity in (0, 1)]

    def _session_index(self) -> int:
        if self.choice is None:
            return 0
        index = self.choice.next_index()
        while index >= len(self.sessions):  # a way's first probe: make its session now
            way = len(self.sessions)
            options = runtime.session_options(training=True, spinning=False) if way == 1 else \
                runtime.session_options(threads=1, training=True)
            session, _ = runtime.create_session(self.program.model_proto, "cpu", options=options)
            self.sessions.append(session)
            self._bindings += [self._bind(session, 0), self._bind(session, 1)]
        return index

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        if self._dropout_rngs:
            rows = len(feeds[self.program.x_inputs[0]])
            feeds = dict(feeds)
            for bits, rng in zip(self.program.dropout_bits, self._dropout_rngs):
                feeds[bits.input_name] = host_dropout.draw(rng, rows, bits.row_shape)
        if any(arr.dtype == object for arr in feeds.values()):
            return self._run_with_text(feeds)
        index = self._session_index()
        b = self._bindings[2 * index + self.buffers.current]
        for name, arr in feeds.items():
            b.bind_cpu_input(name, arr)
        started, cpu_started = time.perf_counter(), time.process_time()
        self.sessions[index].run_with_iobinding(b)
        if self.choice is not None:
            rows = len(feeds[self.program.x_inputs[0]]) if self.program.x_inputs else 1
            wall = time.perf_counter() - started
            self.choice.record(index, wall / max(rows, 1), (time.process_time() - cpu_started) / wall if wall else None)
        if self.writes:
            self.buffers.current ^= 1
        out = []
        fetched = None
        for i, ov in enumerate(self._results):
            if ov is not None:
                out.append(ov.numpy())
            else:
                if fetched is None:
                    fetched = b.get_outputs()
                out.append(fetched[i].numpy())
        return out

    def _run_with_text(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """A step whose batch holds text: ONNX Runtime binds no string tensor (IOBinding and OrtValue refuse
        them), so the batch and the state's OrtValues go in as run()'s feeds, and the new state is copied into the
        other buffer set."""
        src = self.buffers.sets[self.buffers.current]
        dst = self.buffers.sets[1 - self.buffers.current]
        written = [slot for slot in self.program.state if slot.output_name]
        inputs = dict(feeds)
        inputs.update({slot.input_name: src[slot.key] for slot in self.program.state})
        values = self.session.run([slot.output_name for slot in written] + list(self.program.result_names), inputs)
        for slot, value in zip(written, values):
            dst[slot.key].update_inplace(np.ascontiguousarray(value))
        if self.writes:
            self.buffers.current ^= 1
        return values[len(written):]


def pool_threads() -> int | None:
    """The threads of ONNX Runtime's default pool (one per physical core) that this process may use, where the
    system says (Linux's CPU topology); None elsewhere."""
    import os

    try:
        cpus = os.sched_getaffinity(0)
        cores = set()
        for cpu in cpus:
            topology = f"/sys/devices/system/cpu/cpu{cpu}/topology"
            with open(f"{topology}/physical_package_id") as package, open(f"{topology}/core_id") as core:
                cores.add((package.read().strip(), core.read().strip()))
    except (AttributeError, OSError):
        return None
    return len(cores) or None


class ThreadChoice:
    """Which of three ways to run a CPU training step runs the next one, by the time per sample each took lately:
    0 the thread pool with spinning workers, 1 the pool without spinning, 2 one thread. The current way runs; while
    the spinning pool is starved of its cores (`starved`), or while another way runs, every `period` steps another
    way (each in turn) runs `PROBE` steps, the first `WARMUP` of which warm it up and are not counted, and takes over
    if even the slower of its counted steps was clearly faster. A probe that loses doubles the period (up to
    `MAX_PERIOD`), so a settled choice costs little; a switch starts again from `PERIOD`. The load on a laptop comes
    and goes, so the choice is never final.

    Why three: a spinning worker never leaves its core between the hundreds of parallel pieces of a step, which
    wins on idle cores (the seed LSTM 29.3 against 25.3 steps/s without spinning, the Conv1D classifier 31.7
    against 25.7) and loses when another process wants that core too, as it then competes with it for the core
    even while it has nothing to do. With a core busy, the pool without spinning was the fastest for the MNIST
    convnet (32.9 steps/s, one thread 25.5, spinning 19.5), the Conv1D classifier (25.9, 21.6, 14.7) and the seed
    LSTM (24.8, 20.5, 17.4), and one thread for the Conv1D autoencoder, whose steps are many small ops (37.3,
    42.5, 25.4; each the median of 3 fits in turns). With both cores busy the two are close (MNIST 16.4 and
    15.3)."""

    WAYS = 3
    FIRST = 12  # steps before the first probe: short fits (and tests) never make a second session
    PERIOD = 40
    MAX_PERIOD = 640
    PROBE = 4
    # A step binds one of two buffer sets, and a session's first run on each set is slow (the Conv1D autoencoder
    # with a core busy: a fresh one-thread session took 363 and 303 us a sample, then 171), so the first two
    # steps of a probe are not counted. With one of them counted, the first probe lost on its second cold step and
    # the fit stayed on the starved pool: 22.4 steps/s against one thread's 37.7.
    WARMUP = 2
    MARGIN = 0.9  # the other must take under 90% of the current's time per sample
    STARVED = 0.85  # the spinning pool is tried against the others only while it gets under 85% of its cores

    def __init__(self, pool_threads: int | None = None):
        # The pool's workers spin through a step, so a pool of n threads that has its cores uses n seconds of CPU
        # per second of the step (the seed LSTM: 1.97 on two idle cores) and less when another process takes one
        # (1.47 with a core busy). While it has its cores no other way wins, so none is tried: the tries and
        # the other sessions were what the choice cost on an idle machine. Unknown (None): tried on the timer.
        self.pool_threads = pool_threads
        self.cpu_share: float | None = None  # the pool's CPU seconds per second of its steps, smoothed
        self.current = 0
        self.trial = 0  # the way the latest probe ran
        self.period = self.FIRST
        self.since = 0  # steps on the current session since the last probe
        self.probing = 0  # probe steps still to run on the way on trial
        self.probe_times: list[float] = []
        self.recent: float | None = None  # the current session's time per sample, smoothed

    def starved(self) -> bool:
        """Whether the pool lately got less of its cores than it would on an idle machine (or that is unknown)."""
        if self.pool_threads is None or self.cpu_share is None:
            return True
        return self.cpu_share < self.STARVED * self.pool_threads

    def next_index(self) -> int:
        if self.probing:
            return self.trial
        if self.since >= self.period and (self.current != 0 or self.starved()):
            self.trial = next(w for w in ((self.trial + k) % self.WAYS for k in range(1, self.WAYS + 1))
                              if w != self.current)
            self.probing, self.probe_times = self.PROBE, []
            return self.trial
        return self.current

    def record(self, index: int, seconds_per_sample: float, cpu_share: float | None = None) -> None:
        if index == 0 and cpu_share is not None:
            self.cpu_share = cpu_share if self.cpu_share is None else 0.7 * self.cpu_share + 0.3 * cpu_share
        if index == self.current:
            self.since += 1
            if self.since > 1:  # the first step after a probe may find the pool's threads asleep
                self.recent = seconds_per_sample if self.recent is None else \
                    0.7 * self.recent + 0.3 * seconds_per_sample
            return
        self.probing -= 1
        if self.probing < self.PROBE - self.WARMUP:
            self.probe_times.append(seconds_per_sample)
        if self.probing:
            return
        self.since = 0
        other = max(self.probe_times) if self.probe_times else None  # the slower of its counted steps
        if other is not None and self.recent is not None and other < self.MARGIN * self.recent:
            self.current, self.recent, self.period = self.trial, other, self.PERIOD
        else:
            self.period = min(2 * self.period if self.period >= self.PERIOD else self.PERIOD, self.MAX_PERIOD)
