"""Recurrent layers: SimpleRNN, GRU, LSTM, and their cells.

As in Keras 3, each layer owns a cell (`layer.cell`) that holds the weights (kernel (I, G*H), recurrent_kernel
(H, G*H), bias) and knows one step of the recurrence; the layer runs the cell over time. Unmasked inference compiles
to ONNX's fused LSTM / GRU / RNN node; masks, dropout in training, training graphs and activations ONNX cannot name
run the cell's step in a Scan (`core.ops.rnn`), which reproduces Keras's masking for any mask.
"""

from __future__ import annotations

import numpy as np

from core import activations, constraints, initializers, ops, regularizers
from core.errors import ConfigError, ShapeError
from core.layers.base import Layer, flatten
from core.layers.core import check_positive_int
from core.ops.dispatch import graph_of

__all__ = ["SimpleRNNCell", "GRUCell", "LSTMCell", "SimpleRNN", "GRU", "LSTM"]


def _check_dropout(owner: str, name: str, value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{owner}: '{name}' must be a number between 0 and 1, got {value!r}.") from None
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{owner}: '{name}' must be between 0 and 1, got {value}.")
    return value


def _dropout_mask(like, rate: float, noise_shape):
    """A scaled Bernoulli keep-mask (1/(1-rate) or 0), one draw per sample and feature, as Keras's RNN cells use."""
    keep = ops.bernoulli_like(like, 1.0 - rate, noise_shape)
    return ops.divide(ops.cast(keep, like.dtype), 1.0 - rate)


# An embedding table is folded into the input projection when it has at most this many rows per time step (a
# batch of this size would project as many rows as the table has).
_FOLD_ROWS_PER_STEP = 32


def _embedding_lookup(sequences):
    """(table, ids) when `sequences` is a row lookup `table[ids]` (an Embedding's output) into a 2-D table small
    enough that projecting the whole table costs no more than projecting a batch of its rows; else None."""
    from core.graph import is_row_lookup, lookup, producer

    g = getattr(sequences, "graph", None)
    steps = sequences.shape[1] if len(sequences.shape) == 3 else None
    if g is None or steps is None:
        return None
    gather = producer(sequences)
    if not is_row_lookup(gather):
        return None
    table, ids = lookup(g, gather.inputs[0]), lookup(g, gather.inputs[1])
    if table.ndim != 2 or ids.ndim != 2 or table.shape[0] is None or \
            table.shape[0] > _FOLD_ROWS_PER_STEP * steps:
        return None
    return table, ids


class _RecurrentCell(Layer):
    """What the three cells share: config, weights, the input projection and the one-step call."""

    gates = 1
    _default_name = "rnn_cell"

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal", bias_initializer="zeros",
                 kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout=0.0, recurrent_dropout=0.0, seed=None,
                 implementation=2, **kwargs):
        kwargs.setdefault("name", None)
        super().__init__(**kwargs)
        owner = type(self).__name__
        self.units = check_positive_int(owner, "units", units)
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.dropout = _check_dropout(owner, "dropout", dropout)
        self.recurrent_dropout = _check_dropout(owner, "recurrent_dropout", recurrent_dropout)
        self.seed = seed
        self.implementation = implementation
        self._owner = None

    # Inside a layer, a cell's weights are named 'layer/cell/kernel' as in Keras ('lstm/lstm_cell/kernel').
    @property
    def name(self) -> str:
        owner = self.__dict__.get("_owner")
        return f"{owner.name}/{self._name}" if owner is not None else self._name

    @name.setter
    def name(self, value: str) -> None:
        self._name = value

    @property
    def state_size(self):
        return self.units

    @property
    def output_size(self) -> int:
        return self.units

    def _bias_shape(self):
        return (self.gates * self.units,)

    def _bias_initializer(self):
        return self.bias_initializer

    def build(self, input_shape):
        in_dim = input_shape[-1]
        if in_dim is None:
            raise ShapeError(f"{type(self).__name__} '{self.name}' needs a known last input dimension, got input "
                             f"shape {tuple(input_shape)}.")
        gh = self.gates * self.units
        self.kernel = self.add_weight(name="kernel", shape=(in_dim, gh), initializer=self.kernel_initializer,
                                      regularizer=self.kernel_regularizer, constraint=self.kernel_constraint)
        self.recurrent_kernel = self.add_weight(name="recurrent_kernel", shape=(self.units, gh),
                                                initializer=self.recurrent_initializer,
                                                regularizer=self.recurrent_regularizer,
                                                constraint=self.recurrent_constraint)
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=self._bias_shape(), initializer=self._bias_initializer(),
                                        regularizer=self.bias_regularizer, constraint=self.bias_constraint)
        self.built = True

    # -- pieces the recurrence is made of ----------------------------------------------------------------------
    def input_bias(self):
        return self.bias

    def recurrent_bias(self):
        return None

    def project(self, x, input_masks=()):
        """x·W + input bias for all steps at once. `input_masks`: none, one, or one per gate (dropout)."""
        if len(input_masks) > 1:
            kernels = ops.split_last(self.kernel, [self.units] * self.gates)
            parts = [ops.matmul(ops.multiply(x, m), k) for k, m in zip(kernels, input_masks)]
            z = ops.concatenate(parts, axis=-1)
        else:
            z = ops.matmul(ops.multiply(x, input_masks[0]) if input_masks else x, self.kernel)
        b = self.input_bias()
        return ops.add(z, b) if b is not None else z

    def recurrent_parts(self, R, rec_masks=()):
        """The blocks of the recurrent kernel a step multiplies by, cut once outside the loop: the whole kernel,
        or one block per gate when each gate has its own recurrent dropout mask."""
        return ops.split_last(R, [self.units] * self.gates) if rec_masks else [R]

    def recurrent_projection(self, h, parts, rec_bias=None, rec_masks=()):
        """h·R (+ recurrent bias) for every gate, with per-gate recurrent dropout masks."""
        if rec_masks:
            z = ops.concatenate([ops.matmul(ops.multiply(h, m), p) for m, p in zip(rec_masks, parts)], axis=-1)
        else:
            z = ops.matmul(h, parts[0])
        return ops.add(z, rec_bias) if rec_bias is not None else z

    def gates_of(self, z):
        return ops.split_last(z, [self.units] * self.gates)

    def step(self, xp, states, parts, rec_bias=None, rec_masks=()):
        """One step from the projected input `xp` and the recurrent kernel's `parts`; returns (output,
        new_states)."""
        raise NotImplementedError

    def onnx_activations(self):
        """ONNX (name, alpha, beta) for the fused node's activation slots, or None if one cannot be named."""
        raise NotImplementedError

    def call(self, inputs, states, training=False):
        """One step, as a Keras cell: `cell(x_t, states) -> (output, new_states)`."""
        states = list(states) if isinstance(states, (list, tuple)) else [states]
        rec_bias = self.recurrent_bias()
        return self.step(self.project(inputs), states, self.recurrent_parts(self.recurrent_kernel), rec_bias)

    def get_config(self):
        config = super().get_config()
        config.pop("batch_input_shape", None)
        config["name"] = self._name
        config.update({
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "recurrent_regularizer": regularizers.serialize(self.recurrent_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "recurrent_constraint": constraints.serialize(self.recurrent_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
        })
        # Keras 3 writes seed (null by default); tf.keras 2's recurrent layers reject the key, so leave it out
        # unless it was set.
        if self.seed is not None:
            config["seed"] = self.seed
        return config


class SimpleRNNCell(_RecurrentCell):
    """h = activation(x·W + b + h_prev·R)."""

    gates = 1

    def __init__(self, units, activation="tanh", **kwargs):
        kwargs.pop("recurrent_activation", None)
        super().__init__(units, activation=activation, recurrent_activation=None, **kwargs)

    def step(self, xp, states, parts, rec_bias=None, rec_masks=()):
        h = self.activation(ops.add(xp, self.recurrent_projection(states[0], parts, None, rec_masks)))
        return h, [h]

    def onnx_activations(self):
        act = _onnx_act(self.activation)
        return None if act is None else [act]


class GRUCell(_RecurrentCell):
    """Gates z, r, h (Keras's order, also ONNX's). reset_after=True applies the reset gate after the recurrent
    matmul and keeps separate input and recurrent biases (bias shape (2, 3H))."""

    gates = 3

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", reset_after=True, **kwargs):
        super().__init__(units, activation=activation, recurrent_activation=recurrent_activation, **kwargs)
        self.reset_after = bool(reset_after)

    def _bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def input_bias(self):
        if self.bias is None:
            return None
        return self.bias[0] if self.reset_after else self.bias

    def recurrent_bias(self):
        if self.bias is None or not self.reset_after:
            return None
        return self.bias[1]

    def recurrent_parts(self, R, rec_masks=()):
        if self.reset_after or rec_masks:
            return super().recurrent_parts(R, rec_masks)
        return ops.split_last(R, [2 * self.units, self.units])  # z and r together, h apart (r·h comes first)

    def step(self, xp, states, parts, rec_bias=None, rec_masks=()):
        h, H = states[0], self.units
        x_z, x_r, x_h = self.gates_of(xp)
        if self.reset_after:
            r_z, r_r, r_h = self.gates_of(self.recurrent_projection(h, parts, rec_bias, rec_masks))
            z = self.recurrent_activation(ops.add(x_z, r_z))
            r = self.recurrent_activation(ops.add(x_r, r_r))
            hh = self.activation(ops.add(x_h, ops.multiply(r, r_h)))
        else:
            if rec_masks:
                r_z = ops.matmul(ops.multiply(h, rec_masks[0]), parts[0])
                r_r = ops.matmul(ops.multiply(h, rec_masks[1]), parts[1])
                R_h, h_h = parts[2], ops.multiply(h, rec_masks[2])
            else:
                r_z, r_r = ops.split_last(ops.matmul(h, parts[0]), [H, H])
                R_h, h_h = parts[1], h
            z = self.recurrent_activation(ops.add(x_z, r_z))
            r = self.recurrent_activation(ops.add(x_r, r_r))
            hh = self.activation(ops.add(x_h, ops.matmul(ops.multiply(r, h_h), R_h)))
        new_h = ops.add(ops.multiply(z, h), ops.multiply(ops.subtract(1.0, z), hh))
        return new_h, [new_h]

    def onnx_activations(self):
        acts = [_onnx_act(self.recurrent_activation), _onnx_act(self.activation)]
        return None if None in acts else acts

    def get_config(self):
        config = super().get_config()
        config["recurrent_activation"] = activations.serialize(self.recurrent_activation)
        config["reset_after"] = self.reset_after
        return config


class LSTMCell(_RecurrentCell):
    """Gates i, f, c, o (Keras's order). `unit_forget_bias` starts the forget gate's bias at 1."""

    gates = 4

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", unit_forget_bias=True, **kwargs):
        super().__init__(units, activation=activation, recurrent_activation=recurrent_activation, **kwargs)
        self.unit_forget_bias = bool(unit_forget_bias)

    def _bias_initializer(self):
        if not self.unit_forget_bias:
            return self.bias_initializer
        base, units = self.bias_initializer, self.units

        def init(shape, dtype="float32"):
            return np.concatenate([np.asarray(base((units,), dtype=dtype)), np.ones((units,), dtype=dtype),
                                   np.asarray(base((2 * units,), dtype=dtype))]).astype(dtype)

        return init

    def step(self, xp, states, parts, rec_bias=None, rec_masks=()):
        h, c = states
        z_i, z_f, z_c, z_o = self.gates_of(ops.add(xp, self.recurrent_projection(h, parts, None, rec_masks)))
        i = self.recurrent_activation(z_i)
        f = self.recurrent_activation(z_f)
        g = self.activation(z_c)
        o = self.recurrent_activation(z_o)
        new_c = ops.add(ops.multiply(f, c), ops.multiply(i, g))
        new_h = ops.multiply(o, self.activation(new_c))
        return new_h, [new_h, new_c]

    @property
    def state_size(self):
        return [self.units, self.units]

    def onnx_activations(self):
        acts = [_onnx_act(self.recurrent_activation), _onnx_act(self.activation), _onnx_act(self.activation)]
        return None if None in acts else acts

    def get_config(self):
        config = super().get_config()
        config["recurrent_activation"] = activations.serialize(self.recurrent_activation)
        config["unit_forget_bias"] = self.unit_forget_bias
        return config


def _onnx_act(fn):
    return ops.onnx_activation(fn)


class _RecurrentLayer(Layer):
    """Runs a cell over the time axis of (batch, time, features) inputs, with Keras's RNN arguments."""

    supports_masking = True
    cell_class: type = _RecurrentCell
    cell_name = "rnn_cell"
    onnx_op = "RNN"
    # For each ONNX gate, the Keras gate that goes there.
    onnx_gate_order: tuple = (0,)

    def __init__(self, cell_kwargs: dict, return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, unroll=False, zero_output_for_mask=False, time_major=False, use_cudnn="auto",
                 **kwargs):
        owner = type(self).__name__
        if stateful:
            raise ConfigError(f"{owner}: stateful=True is not supported (Netweaver runs each batch from a fresh "
                              f"state); pass the state explicitly with initial_state= and return_state=True instead.")
        if time_major:
            raise ConfigError(f"{owner}: time_major=True is not supported; inputs are (batch, time, features).")
        if use_cudnn not in ("auto", True, False):
            raise ConfigError(f"{owner}: use_cudnn must be 'auto', True or False, got {use_cudnn!r}.")
        kwargs.pop("input_length", None)  # old configs carry it; the input shape says the same
        cell_kwargs.update({k: kwargs.pop(k) for k in list(kwargs) if k in _CELL_KEYS})
        super().__init__(**kwargs)
        cell = self.cell_class(**cell_kwargs, name=self.cell_name, dtype=self.dtype, trainable=self.trainable)
        object.__setattr__(cell, "_owner", self)
        self.cell = cell
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = False
        self.unroll = bool(unroll)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.use_cudnn = use_cudnn

    # Keras exposes the cell's config and weights on the layer.
    units = property(lambda self: self.cell.units)
    activation = property(lambda self: self.cell.activation)
    use_bias = property(lambda self: self.cell.use_bias)
    dropout = property(lambda self: self.cell.dropout)
    recurrent_dropout = property(lambda self: self.cell.recurrent_dropout)
    kernel = property(lambda self: self.cell.kernel)
    recurrent_kernel = property(lambda self: self.cell.recurrent_kernel)
    bias = property(lambda self: self.cell.bias)

    @property
    def state_count(self) -> int:
        return len(flatten([self.cell.state_size]))

    def build(self, input_shape):
        if isinstance(input_shape, list) and input_shape and isinstance(input_shape[0], (list, tuple)):
            input_shape = input_shape[0]  # [sequences, *initial_state]
        input_shape = tuple(input_shape)
        self._check_rank(input_shape)
        if not self.cell.built:
            self.cell.build((input_shape[0], input_shape[-1]))
        self.built = True

    def _check_rank(self, shape):
        if len(shape) != 3:
            raise ShapeError(f"{type(self).__name__} '{self.name}' expects inputs of shape (batch, time, features), "
                             f"got shape {tuple(shape)}.")
        if shape[-1] is None:
            raise ShapeError(f"{type(self).__name__} '{self.name}' needs a known feature dimension, got input shape "
                             f"{tuple(shape)}.")

    def _initial_states(self, sequences, initial_state):
        """The initial states as tensors; None for each when none were given (zeros, made where needed)."""
        n = self.state_count
        if initial_state is None:
            return [None] * n
        states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
        if len(states) != n:
            raise ShapeError(f"{type(self).__name__} '{self.name}' has {n} state(s), but initial_state has "
                             f"{len(states)} tensor(s).")
        g = graph_of(sequences)
        out = []
        for i, s in enumerate(states):
            t = ops.cast(g.as_tensor(s), sequences.dtype)
            if len(t.shape) != 2 or t.shape[-1] not in (None, self.units):
                raise ShapeError(f"{type(self).__name__} '{self.name}': initial_state[{i}] must have shape "
                                 f"(batch, {self.units}), got {t.shape}.")
            out.append(t)
        return out

    def call(self, sequences, initial_state=None, mask=None, training=None):
        if isinstance(sequences, (list, tuple)):
            if initial_state is not None:
                raise ConfigError(f"{type(self).__name__} '{self.name}': pass initial states either in the input "
                                  f"list or as initial_state=, not both.")
            sequences, initial_state = sequences[0], (list(sequences[1:]) or None)
        if isinstance(mask, (list, tuple)):
            mask = mask[0] if mask else None
        self._check_rank(sequences.shape)
        in_dim = self.cell.kernel.shape[0]
        if sequences.shape[-1] != in_dim:
            raise ShapeError(f"{type(self).__name__} '{self.name}' was built for {in_dim} input features, got "
                             f"input shape {sequences.shape}.")
        if not sequences.dtype.startswith("float"):
            sequences = ops.cast(sequences, self.dtype)
        states = self._initial_states(sequences, initial_state)
        training = bool(training)
        dropping = training and (self.cell.dropout > 0 or self.cell.recurrent_dropout > 0)
        acts = self.cell.onnx_activations()
        g = graph_of(sequences).root
        # Training graphs need a recurrence made of differentiable ops, so they always take the Scan.
        fusable = not dropping and acts is not None and not g.weights_as_inputs
        if mask is None and fusable:
            seq, final = self._fused(sequences, states, acts)
            last = final[0]
        elif fusable and all(s is None for s in states):
            last, seq, final = self._masked_inference(sequences, mask, acts)
        else:
            states = [ops.zeros_state(sequences, self.units, sequences.dtype) if s is None else s for s in states]
            last, seq, final = self._scan(sequences, states, mask, training)
        output = seq if self.return_sequences else last
        if self.return_state:
            return [output] + list(final)
        return output

    def _masked_inference(self, sequences, mask, acts):
        """A masked inference pass: the fused node with `sequence_lens` when, at run time, the mask turns out to be
        right padding (the common case), else the exact Scan. Keras repeats the last output past a sequence's end
        where ONNX writes zeros, so the fused branch fills those steps with the final output."""
        lengths, right_padded = ops.right_padding_lengths(mask)
        n = self.state_count

        def fused(bring):
            x, lens = bring(sequences), bring(lengths)
            seq, final = self._fused(x, [None] * n, acts, sequence_lens=lens)
            if seq is not None and not self.go_backwards and not self.zero_output_for_mask:
                keep = ops.expand_dims(ops.cast(bring(mask), "bool"), -1)
                seq = ops.where(keep, seq, ops.expand_dims(final[0], 1))
            return ([seq] if seq is not None else []) + [final[0]] + list(final)

        def scanned(bring):
            x, m = bring(sequences), bring(mask)
            zeros = [ops.zeros_state(x, self.units, x.dtype) for _ in range(n)]
            last, seq, final = self._scan(x, zeros, m, False)
            return ([seq] if seq is not None else []) + [last] + list(final)

        outs = ops.if_then_else(right_padded, fused, scanned, name=f"{self.name}_masked")
        seq = outs[0] if self.return_sequences else None
        rest = outs[1:] if self.return_sequences else outs
        return rest[0], seq, list(rest[1:])

    def _fused(self, sequences, states, acts, sequence_lens=None):
        cell, H = self.cell, self.units
        order = self.onnx_gate_order
        W = ops.expand_dims(ops.transpose(ops.keras_to_onnx_gates(cell.kernel, order, H)), 0)
        R = ops.expand_dims(ops.transpose(ops.keras_to_onnx_gates(cell.recurrent_kernel, order, H)), 0)
        B = None
        if cell.use_bias:
            wb = ops.keras_to_onnx_gates(cell.input_bias(), order, H)
            rb = cell.recurrent_bias()
            rb = ops.zeros_like(wb) if rb is None else ops.keras_to_onnx_gates(rb, order, H)
            B = ops.expand_dims(ops.concatenate([wb, rb], axis=0), 0)
        extra = {"linear_before_reset": 1 if cell.reset_after else 0} if isinstance(cell, GRUCell) else {}
        return ops.onnx_recurrent(self.onnx_op, sequences, W, R, B, states, units=H, acts=acts,
                                  go_backwards=self.go_backwards, return_sequences=self.return_sequences,
                                  sequence_lens=sequence_lens, **extra)

    def _scan(self, sequences, states, mask, training):
        cell = self.cell
        input_masks, rec_masks = [], []
        if training and cell.dropout > 0:
            n = cell.gates if cell.recurrent_dropout > 0 else 1
            input_masks = [_dropout_mask(sequences, cell.dropout, (None, 1, None)) for _ in range(n)]
        if training and cell.recurrent_dropout > 0:
            like = ops.zeros_state(sequences, self.units, sequences.dtype)
            rec_masks = [_dropout_mask(like, cell.recurrent_dropout, (None, None)) for _ in range(cell.gates)]
            if isinstance(cell, SimpleRNNCell):
                rec_masks = rec_masks[:1]
        xp = self.time_major_projection(sequences, input_masks)
        rec_bias = cell.recurrent_bias()
        parts = list(cell.recurrent_parts(cell.recurrent_kernel, rec_masks))
        constants = parts + ([rec_bias] if rec_bias is not None else []) + rec_masks

        def step(inputs_t, states_t, consts):
            n = len(parts)
            rb = consts[n] if rec_bias is not None else None
            return cell.step(inputs_t[0], states_t, consts[:n], rb, consts[n + (rec_bias is not None):])

        return ops.scan_rnn(step, [xp], states, output_size=cell.output_size, mask=mask, time_major=True,
                            go_backwards=self.go_backwards, return_sequences=self.return_sequences,
                            zero_output_for_mask=self.zero_output_for_mask, constants=constants, name=self.name)

    def time_major_projection(self, sequences, input_masks=()):
        """x·W + input bias for every step, (time, batch, gates * units)."""
        cell = self.cell
        embedded = _embedding_lookup(sequences)
        if embedded is not None and not input_masks:
            # Embedding -> RNN: project the table once and look the projected rows up, (E·W)[ids] = E[ids]·W, when
            # the table has fewer rows than a batch has steps; training then scatters the step gradients into the
            # small projected table instead of multiplying every step's input by W twice more.
            table, ids = embedded
            xp = ops.take(cell.project(table), ops.transpose(ids, (1, 0)), axis=0)
            xp.graph.root.folded_lookups[xp.name] = sequences.name
            return xp
        # Time-major before the input projection: transposing x is cheaper than transposing x·W (G*units wide),
        # and the gradient flows back through the same small transpose.
        x = ops.transpose(sequences, (1, 0, 2))
        return cell.project(x, [ops.transpose(m, (1, 0, 2)) for m in input_masks])

    def compute_mask(self, inputs, mask=None):
        mask = flatten([mask])[0] if mask is not None else None
        out = mask if self.return_sequences else None
        if self.return_state:
            return [out] + [None] * self.state_count
        return out

    def get_config(self):
        config = super().get_config()
        config.update({
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "stateful": self.stateful,
            "unroll": self.unroll,
            "zero_output_for_mask": self.zero_output_for_mask,
        })
        cell_config = self.cell.get_config()
        for key in ("name", "trainable", "dtype"):
            cell_config.pop(key, None)
        config.update(cell_config)
        return config


# Arguments a recurrent layer hands to its cell.
_CELL_KEYS = {"activation", "recurrent_activation", "use_bias", "kernel_initializer", "recurrent_initializer",
              "bias_initializer", "kernel_regularizer", "recurrent_regularizer", "bias_regularizer",
              "kernel_constraint", "recurrent_constraint", "bias_constraint", "dropout", "recurrent_dropout", "seed",
              "implementation", "unit_forget_bias", "reset_after"}


class SimpleRNN(_RecurrentLayer):
    """Fully-connected RNN whose output is fed back as the next step's state."""

    cell_class = SimpleRNNCell
    cell_name = "simple_rnn_cell"
    onnx_op = "RNN"
    onnx_gate_order = (0,)

    def __init__(self, units, activation="tanh", **kwargs):
        super().__init__({"units": units, "activation": activation}, **kwargs)


class GRU(_RecurrentLayer):
    """Gated Recurrent Unit (Cho et al. 2014); reset_after=True is Keras's (and cuDNN's) default."""

    cell_class = GRUCell
    cell_name = "gru_cell"
    onnx_op = "GRU"
    onnx_gate_order = (0, 1, 2)

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", reset_after=True, **kwargs):
        super().__init__({"units": units, "activation": activation, "recurrent_activation": recurrent_activation,
                          "reset_after": reset_after}, **kwargs)

    recurrent_activation = property(lambda self: self.cell.recurrent_activation)
    reset_after = property(lambda self: self.cell.reset_after)


class LSTM(_RecurrentLayer):
    """Long Short-Term Memory (Hochreiter & Schmidhuber 1997); states [h, c]."""

    cell_class = LSTMCell
    cell_name = "lstm_cell"
    onnx_op = "LSTM"
    onnx_gate_order = (0, 3, 1, 2)  # Keras i,f,c,o -> ONNX i,o,f,c

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", unit_forget_bias=True, **kwargs):
        super().__init__({"units": units, "activation": activation, "recurrent_activation": recurrent_activation,
                          "unit_forget_bias": unit_forget_bias}, **kwargs)

    recurrent_activation = property(lambda self: self.cell.recurrent_activation)
    unit_forget_bias = property(lambda self: self.cell.unit_forget_bias)
