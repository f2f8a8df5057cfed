"""Keras's generic `RNN(cell)` layer and `StackedRNNCells`.

`RNN` runs any cell over the time axis: the built-in cells (SimpleRNNCell, GRUCell, LSTMCell), a list of cells
(stacked), or a custom cell written the way Keras's RNN guide writes one: a layer with `state_size` (an int or a list
of ints) and `call(inputs, states) -> (output, new_states)`, computing with `core.ops`. The recurrence is the same
ONNX Scan the built-in recurrent layers train through (`core.ops.rnn.scan_rnn` and its Scan gradient), with Keras's
masking for any mask; a built-in cell also gets their input projection outside the loop and their dropout.
"""

from __future__ import annotations

import inspect

from core import ops
from core.errors import ConfigError, ShapeError
from core.layers.base import Layer, flatten
from core.layers.recurrent import _RecurrentCell, _RecurrentLayer

__all__ = ["RNN", "StackedRNNCells"]


def _state_sizes(cell) -> list[int]:
    """The cell's state sizes, flattened (StackedRNNCells nests them per cell); Keras's error when it has none."""
    size = getattr(cell, "state_size", None)
    if size is None:
        raise ConfigError(f"The cell {type(cell).__name__} has no state_size. Keras's RNN needs a cell with a "
                          f"`state_size` attribute (an integer, or a list of integers, one per state) and a "
                          f"`call(inputs, states)` that returns `(output, new_states)`.")
    sizes = flatten([size])
    for s in sizes:
        if isinstance(s, bool) or not isinstance(s, int) or s <= 0:
            raise ConfigError(f"The cell {type(cell).__name__} has state_size {size!r}: each state's size must be a "
                              f"positive integer (states of shape (batch, size)).")
    return sizes


def _output_size(cell) -> int:
    size = getattr(cell, "output_size", None)
    return int(size) if isinstance(size, int) else _state_sizes(cell)[0]


def _takes_training(cell) -> bool:
    try:
        return "training" in inspect.signature(cell.call).parameters
    except (TypeError, ValueError):
        return False


def _cell_step(cell, inputs, states: list, training):
    """One step of a cell as Keras calls it: the states as a list; new states come back as a list."""
    kwargs = {"training": training} if _takes_training(cell) else {}
    result = cell.call(inputs, states, **kwargs)
    if not isinstance(result, (list, tuple)) or len(result) != 2:
        raise ConfigError(f"The cell {type(cell).__name__}'s call(inputs, states) must return (output, new_states), "
                          f"got {type(result).__name__}.")
    output, new_states = result
    new_states = flatten([new_states])
    if len(new_states) != len(states):
        raise ConfigError(f"The cell {type(cell).__name__} has {len(states)} state(s) (its state_size), but its call "
                          f"returned {len(new_states)}.")
    return output, new_states


def _nested_like(flat: list, state_size) -> list:
    """The final states grouped as Keras returns them: one entry per element of state_size, a list where that
    element is a list (a stacked LSTMCell's [h, c])."""
    if not isinstance(state_size, (list, tuple)):
        return flat
    out = []
    for size in state_size:
        n = len(flatten([size]))
        out.append(flat[:n] if isinstance(size, (list, tuple)) else flat[0])
        flat = flat[n:]
    return out


def _deserialize_cell(cell):
    from core.models.model_config import deserialize_layer

    return deserialize_layer(cell) if isinstance(cell, dict) else cell


class StackedRNNCells(Layer):
    """Several cells run as one: each step feeds the output of one cell to the next. Its states are every cell's
    states, in order.

    Args:
        cells: The cells, first to last.
    """

    def __init__(self, cells, **kwargs):
        super().__init__(**kwargs)
        cells = [_deserialize_cell(c) for c in (cells or [])]
        if not cells:
            raise ConfigError("StackedRNNCells needs at least one cell.")
        for c in cells:
            _state_sizes(c)
        self.cells = cells

    @property
    def state_size(self):
        return [c.state_size for c in self.cells]

    @property
    def output_size(self) -> int:
        return _output_size(self.cells[-1])

    def build(self, input_shape):
        shape = tuple(input_shape)
        for c in self.cells:
            if not c.built:
                c._build_input_shape = shape
                c.build(shape)
                c.built = True
            shape = shape[:-1] + (_output_size(c),)

    def call(self, inputs, states, training=None):
        flat = flatten([states])
        new_states = []
        for c in self.cells:
            n = len(_state_sizes(c))
            inputs, states_c = _cell_step(c, inputs, flat[:n], training)
            flat = flat[n:]
            new_states.append(states_c)
        return inputs, new_states

    def get_config(self):
        from core.models.model_config import serialize_layer

        config = super().get_config()
        config.pop("batch_input_shape", None)
        config["cells"] = [serialize_layer(c) for c in self.cells]
        return config


class RNN(_RecurrentLayer):
    """Runs a cell over the time axis of (batch, time, features) inputs: `RNN(LSTMCell(32))`, `RNN([cell, cell])`
    (stacked) or a custom cell with `state_size` and `call(inputs, states)`.

    Args:
        cell: The cell (its class and its config), or a list of cells to stack.
        return_sequences: Whether to return the output of every step, or only the last.
        return_state: Whether to return the final states after the output.
        go_backwards: Process the sequence backwards (and return the outputs reversed).
        zero_output_for_mask: Masked steps output zeros instead of repeating the previous output.
    """

    def __init__(self, cell, return_sequences=False, return_state=False, go_backwards=False, stateful=False,
                 unroll=False, zero_output_for_mask=False, time_major=False, **kwargs):
        if stateful:
            raise ConfigError("RNN: stateful=True is not supported (each batch starts from a fresh state); pass the "
                              "state with initial_state= and return_state=True instead.")
        if time_major:
            raise ConfigError("RNN: time_major=True is not supported; inputs are (batch, time, features).")
        Layer.__init__(self, **kwargs)  # the built-in layers make their cell from their arguments; this one is given
        if isinstance(cell, (list, tuple)):
            cell = StackedRNNCells(list(cell))
        cell = _deserialize_cell(cell)
        if not isinstance(cell, Layer) or not callable(getattr(cell, "call", None)):
            raise ConfigError(f"RNN: 'cell' must be a cell layer (e.g. LSTMCell(32)) with state_size and "
                              f"call(inputs, states), got {cell!r}.")
        _state_sizes(cell)
        self.cell = cell
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = False
        self.unroll = bool(unroll)  # a speed choice in Keras; the Scan computes the same numbers
        self.zero_output_for_mask = bool(zero_output_for_mask)

    @property
    def state_size(self):
        return self.cell.state_size

    def build(self, input_shape):
        super().build(input_shape)
        if getattr(self.cell, "_build_input_shape", None) is None:
            shape = input_shape[0] if isinstance(input_shape[0], (list, tuple)) else input_shape
            self.cell._build_input_shape = (shape[0], shape[-1])

    def _initial_states(self, sequences, initial_state):
        sizes = _state_sizes(self.cell)
        if initial_state is None:
            return [ops.zeros_state(sequences, s, sequences.dtype) for s in sizes]
        states = flatten([initial_state])
        if len(states) != len(sizes):
            raise ShapeError(f"RNN '{self.name}' has {len(sizes)} state(s) (its cell's state_size {self.state_size}),"
                             f" but initial_state has {len(states)} tensor(s).")
        out = []
        for i, (s, size) in enumerate(zip(states, sizes)):
            t = ops.cast(ops.convert_to_tensor(s), sequences.dtype)
            if t.ndim != 2 or t.shape[-1] not in (None, size):
                raise ShapeError(f"RNN '{self.name}': initial_state[{i}] must have shape (batch, {size}), got "
                                 f"{t.shape}.")
            out.append(t)
        return out

    def call(self, sequences, initial_state=None, mask=None, training=None):
        if isinstance(sequences, (list, tuple)):  # [sequences, *initial_state], as tf.keras 2 records the call
            sequences, initial_state = sequences[0], (list(sequences[1:]) or initial_state)
        mask = flatten([mask])[0] if mask is not None else None
        self._check_rank(sequences.shape)
        if not sequences.dtype.startswith("float"):
            sequences = ops.cast(sequences, self.dtype)
        states = self._initial_states(sequences, initial_state)
        training = bool(training)
        if isinstance(self.cell, _RecurrentCell):
            # A built-in cell: the built-in layers' recurrence (input projection outside the loop, dropout).
            last, seq, final = self._scan(sequences, states, mask, training)
        else:
            self._refuse_dropout_inside(training)

            def step(inputs_t, states_t, consts):
                return _cell_step(self.cell, inputs_t[0], list(states_t), training)

            last, seq, final = ops.scan_rnn(step, [sequences], states, output_size=_output_size(self.cell),
                                            mask=mask, go_backwards=self.go_backwards,
                                            return_sequences=self.return_sequences,
                                            zero_output_for_mask=self.zero_output_for_mask, name=self.name)
        output = seq if self.return_sequences else last
        if self.return_state:
            return [output] + _nested_like(list(final), self.cell.state_size)
        return output

    def _refuse_dropout_inside(self, training):
        cells = self.cell.cells if isinstance(self.cell, StackedRNNCells) else [self.cell]
        for c in cells:
            if training and isinstance(c, _RecurrentCell) and (c.dropout > 0 or c.recurrent_dropout > 0):
                raise ConfigError(f"RNN '{self.name}': dropout of a cell inside StackedRNNCells ({type(c).__name__} "
                                  f"'{c.name}') is not supported in training; stack RNN layers instead.")

    def get_config(self):
        from core.models.model_config import serialize_layer

        config = Layer.get_config(self)  # the built-in layers write their cell's arguments as their own
        config.update({key: getattr(self, key) for key in ("return_sequences", "return_state", "go_backwards",
                                                           "stateful", "unroll", "zero_output_for_mask")})
        config["cell"] = serialize_layer(self.cell)
        return config
