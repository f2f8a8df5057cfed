"""Running step graphs in ONNX Runtime with the state kept in two buffer sets (ping-pong).

A training step reads weights and slots from one set of OrtValues and writes the new values into the other; the
next step swaps. An output is never bound to the buffer of an input (that silently corrupts training: a later node
would read an overwritten weight). Both directions are prepared once as IOBindings, so a step binds only the batch
and the two scalars (learning rate, step count) and copies out only the results (loss, metric statistics).
"""

from __future__ import annotations

import numpy as np

from core import runtime
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
    """One step graph bound to the state buffers, in both ping-pong directions."""

    def __init__(self, program: StepProgram, buffers: StateBuffers, device: str, threads: int | None = None):
        self.program = program
        self.buffers = buffers
        options = runtime.session_options(threads=threads, training=True)  # see runtime.session_options
        self.session, self.device = runtime.create_session(program.model_proto, device, options=options)
        self.writes = any(s.output_name for s in program.state)
        self._results = []
        for shape in program.result_shapes:
            self._results.append(_ortvalue(np.zeros(shape, dtype=np.float32), "cpu")
                                 if all(d is not None for d in shape) else None)
        self._bindings = [self._bind(0), self._bind(1)]

    def _bind(self, parity: int):
        b = self.session.io_binding()
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
        self._bindings = [self._bind(0), self._bind(1)]

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        if any(arr.dtype == object for arr in feeds.values()):
            return self._run_with_text(feeds)
        b = self._bindings[self.buffers.current]
        for name, arr in feeds.items():
            b.bind_cpu_input(name, arr)
        self.session.run_with_iobinding(b)
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
