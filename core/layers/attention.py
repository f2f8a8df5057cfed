"""Attention layers: Attention (dot or concat scores), AdditiveAttention, MultiHeadAttention and EinsumDense.

Attention and AdditiveAttention take `[query, value]` or `[query, value, key]`, as in Keras. MultiHeadAttention takes
Keras's `(query, value, key=None)` and also that list; either way its call is recorded with the list, so the editor
wires it like the other attention layers (ports query, value, key) and files get Keras's form back
(`exporters.keras_config` writes `args: [query, value]` for Keras 3 and `value=`/`key=` for tf.keras 2).
"""

from __future__ import annotations

import math
import string

import numpy as np

from core import activations, constraints, initializers, ops, regularizers
from core.errors import ConfigError, ShapeError
from core.layers.activation import masked_softmax
from core.layers.base import Layer
from core.layers.core import check_positive_int, check_rate

__all__ = ["Attention", "AdditiveAttention", "MultiHeadAttention", "EinsumDense"]

# What Attention subtracts from the scores of masked keys (Keras 3 and tf.keras 2 alike, in 32-bit floats).
_MASK_PENALTY = 1.0e9


def _shape(t) -> tuple:
    return tuple(t.shape)


def _dims_fit(a, b) -> bool:
    return a is None or b is None or a == b


def _check_mask(layer, which: str, mask, tensor) -> None:
    """A mask must have its tensor's shape without the feature axis."""
    want = _shape(tensor)[:-1]
    got = _shape(mask)
    if len(got) != len(want) or not all(_dims_fit(a, b) for a, b in zip(got, want)):
        raise ShapeError(f"{type(layer).__name__} '{layer.name}': the {which} mask has shape {got}, which does not "
                         f"fit the {which} of shape {_shape(tensor)} (it should be {want}).")


def _index_grid(query, value):
    """(rows, cols): int64 tensors of shapes (T, 1) and (1, S) counting query and value steps (axis 1)."""
    g = query.graph

    def steps(t):
        n = t.shape[1]
        if n is not None:
            return g.constant(np.arange(n, dtype=np.int64))
        size = g.emit("Gather", [ops.shape(t), g.constant(np.array(1, dtype=np.int64))], {"axis": 0},
                      [("int64", ())])[0]
        zero, one = g.constant(np.array(0, dtype=np.int64)), g.constant(np.array(1, dtype=np.int64))
        return g.emit("Range", [zero, size, one], {}, [("int64", (None,))])[0]

    return ops.expand_dims(steps(query), -1), ops.expand_dims(steps(value), 0)


def causal_mask(query, value):
    """(1, T, S): query step i may attend to value steps j <= i."""
    rows, cols = _index_grid(query, value)
    return ops.expand_dims(ops.greater_equal(rows, cols), 0)


def _query_mask(mask):
    """An attention layer's output keeps the query's mask (the first input's), as Keras's do."""
    if mask is None or not isinstance(mask, (list, tuple)) or mask[0] is None:
        return None
    return mask[0]


# -- Attention and AdditiveAttention -------------------------------------------------------------------------------
class _DenseAttention(Layer):
    """What Attention and AdditiveAttention share: inputs [query, value(, key)], their masks, the causal mask, the
    masked softmax over the value steps, dropout of the weights and the weighted sum of the values."""

    def __init__(self, use_scale=False, dropout=0.0, seed=None, causal=None, **kwargs):
        super().__init__(**kwargs)
        name = type(self).__name__
        if causal:  # tf.keras 2's deprecated constructor flag; Keras 3 only has the call argument
            raise ConfigError(f"{name}: causal=True is not supported; call the layer with use_causal_mask=True.")
        self.use_scale = bool(use_scale)
        self.dropout = check_rate(name, dropout)
        self.seed = seed

    def _scores(self, query, key):
        raise NotImplementedError

    def _split_inputs(self, inputs):
        name = type(self).__name__
        if not isinstance(inputs, (list, tuple)) or not 2 <= len(inputs) <= 3:
            raise ShapeError(f"{name} '{self.name}' takes a list [query, value] or [query, value, key], got "
                             f"{type(inputs).__name__} {getattr(inputs, 'shape', '')}.")
        query, value = inputs[0], inputs[1]
        key = inputs[2] if len(inputs) > 2 else value
        qs, vs, ks = _shape(query), _shape(value), _shape(key)
        if len(qs) < 2 or len(vs) != len(ks) or len(qs) != len(vs):
            raise ShapeError(f"{name} '{self.name}': query {qs}, value {vs} and key {ks} must have the same rank "
                             f"(batch, steps, features).")
        if not _dims_fit(qs[-1], ks[-1]):
            raise ShapeError(f"{name} '{self.name}': the query has shape {qs} and the key {ks}; their last "
                             f"dimensions must match ({qs[-1]} != {ks[-1]}).")
        if not _dims_fit(vs[-2], ks[-2]):
            raise ShapeError(f"{name} '{self.name}': the value has shape {vs} and the key {ks}; they must have the "
                             f"same number of steps ({vs[-2]} != {ks[-2]}).")
        return query, value, key

    def call(self, inputs, mask=None, training=None, return_attention_scores=False, use_causal_mask=False):
        query, value, key = self._split_inputs(inputs)
        q_mask = v_mask = None
        if mask is not None:
            if not isinstance(mask, (list, tuple)) or not 2 <= len(mask) <= 3:
                raise ShapeError(f"{type(self).__name__} '{self.name}': the mask must be a list [query_mask, "
                                 f"value_mask], got {mask!r}.")
            q_mask, v_mask = mask[0], mask[1]
            if q_mask is not None:
                _check_mask(self, "query", q_mask, query)
            if v_mask is not None:
                _check_mask(self, "value", v_mask, value)
        scores = self._scores(query, key)
        keep = None if v_mask is None else ops.expand_dims(ops.cast(v_mask, "bool"), -2)
        if use_causal_mask:
            causal = causal_mask(query, key)
            keep = causal if keep is None else ops.logical_and(keep, causal)
        if keep is not None:
            scores = ops.where(keep, scores, ops.subtract(scores, _MASK_PENALTY))
        weights = ops.softmax(scores, axis=-1)
        dropped = ops.dropout(weights, self.dropout, seed=self.seed) if training and self.dropout > 0 else weights
        out = ops.matmul(dropped, value)
        if q_mask is not None:
            out = ops.where(ops.expand_dims(ops.cast(q_mask, "bool"), -1), out, 0.0)
        return (out, weights) if return_attention_scores else out

    def compute_mask(self, inputs, mask=None):
        return _query_mask(mask)

    def get_config(self):
        config = super().get_config()
        config.update({"use_scale": self.use_scale, "dropout": self.dropout, "seed": self.seed})
        return config


class Attention(_DenseAttention):
    """Dot-product attention (Luong style): scores `query · key`, a softmax over the value steps, then the weighted
    sum of the values. Called on `[query, value]` or `[query, value, key]`.

    Args:
        use_scale: Learn a scalar that multiplies the scores.
        score_mode: 'dot' (query · key) or 'concat' (sum of tanh(query + key)).
        dropout: Fraction of the attention weights to drop while training.
        seed: Seed of the dropout.
    """

    def __init__(self, use_scale=False, score_mode="dot", dropout=0.0, seed=None, **kwargs):
        super().__init__(use_scale=use_scale, dropout=dropout, seed=seed, **kwargs)
        if score_mode not in ("dot", "concat"):
            raise ConfigError(f"Attention: 'score_mode' must be one of ['dot', 'concat'], got {score_mode!r}.")
        self.score_mode = score_mode

    def build(self, input_shape):
        self.scale = None
        self.concat_score_weight = None
        if self.use_scale:
            self.scale = self.add_weight(name="scale", shape=(), initializer="ones")
        if self.score_mode == "concat":
            self.concat_score_weight = self.add_weight(name="concat_score_weight", shape=(), initializer="ones")

    def _scores(self, query, key):
        if self.score_mode == "dot":
            scores = ops.matmul(query, ops.transpose(key, list(range(key.ndim - 2)) + [key.ndim - 1, key.ndim - 2]))
            return scores if self.scale is None else ops.multiply(scores, self.scale)
        summed = ops.add(ops.expand_dims(query, -2), ops.expand_dims(key, -3))
        if self.scale is not None:
            summed = ops.multiply(self.scale, summed)
        return ops.multiply(self.concat_score_weight, ops.sum(ops.tanh(summed), axis=-1))

    def get_config(self):
        config = super().get_config()
        config["score_mode"] = self.score_mode
        return config


class AdditiveAttention(_DenseAttention):
    """Additive attention (Bahdanau style): scores `sum(scale * tanh(query + key))`, a softmax over the value steps,
    then the weighted sum of the values. Called on `[query, value]` or `[query, value, key]`.

    Args:
        use_scale: Learn one scale per feature (otherwise the scale is 1).
        dropout: Fraction of the attention weights to drop while training.
    """

    def __init__(self, use_scale=True, dropout=0.0, **kwargs):
        super().__init__(use_scale=use_scale, dropout=dropout, **kwargs)

    def build(self, input_shape):
        dim = input_shape[0][-1]
        if dim is None:
            raise ShapeError(f"AdditiveAttention '{self.name}' needs a known last query dimension, got "
                             f"{tuple(input_shape[0])}.")
        self.scale = None
        if self.use_scale:
            self.scale = self.add_weight(name="scale", shape=(dim,), initializer="glorot_uniform")

    def _scores(self, query, key):
        summed = ops.tanh(ops.add(ops.expand_dims(query, -2), ops.expand_dims(key, -3)))
        if self.scale is not None:
            summed = ops.multiply(self.scale, summed)
        return ops.sum(summed, axis=-1)



# -- EinsumDense ---------------------------------------------------------------------------------------------------
def _einsum_dense_shapes(layer, input_shape):
    """(explicit equation, kernel shape, bias shape or None, kernel's input axes, kernel's output axes), read from
    the layer's equation as Keras reads it: `X,Y->Z`, `...X,Y->...Z` or `X...,Y->Z...`; `output_shape` gives the
    output's sizes without the batch axis and without the elided ones."""
    name = f"EinsumDense '{layer.name}'"
    eq = layer.equation.replace(" ", "")
    try:
        lhs, out_spec = eq.split("->")
        in_spec, w_spec = lhs.split(",")
    except ValueError:
        raise ConfigError(f"{name}: the equation '{layer.equation}' must have the form 'X,Y->Z', '...X,Y->...Z' or "
                          f"'X...,Y->Z...'.") from None
    left = in_spec.startswith("...") and out_spec.startswith("...")
    right = in_spec.endswith("...") and out_spec.endswith("...") and not left
    in_letters, out_letters = in_spec.replace("...", ""), out_spec.replace("...", "")
    if not (in_letters.isalpha() and w_spec.isalpha() and out_letters.isalpha()) or \
            ("..." in eq and not (left or right)):
        raise ConfigError(f"{name}: the equation '{layer.equation}' must have the form 'X,Y->Z', '...X,Y->...Z' or "
                          f"'X...,Y->Z...'.")
    rank = len(input_shape)
    elided = rank - len(in_letters)
    if elided < 0 or (elided and not (left or right)):
        raise ShapeError(f"{name}: the equation '{layer.equation}' does not fit inputs of shape "
                         f"{tuple(input_shape)}.")
    spare = [c for c in string.ascii_letters if c not in eq]
    fill = "".join(spare[:elided])
    full_in = fill + in_letters if left else in_letters + fill
    full_out = fill + out_letters if left else out_letters + fill
    sizes = dict(zip(full_in, input_shape))
    partial = list(layer.partial_output_shape)
    # The sizes output_shape gives: every output index but the batch's and the elided ones.
    given = [c for c in full_out if c not in fill and c != full_out[0]]
    if len(partial) != len(given):
        raise ShapeError(f"{name}: output_shape {tuple(partial)} should give {len(given)} size(s), one for each of "
                         f"the output indices '{''.join(given)}'.")
    for c, d in zip(given, partial):
        if c in sizes and d is not None and sizes[c] is not None and sizes[c] != d:
            raise ShapeError(f"{name}: output_shape {tuple(partial)} gives index '{c}' size {d}, but the input of "
                             f"shape {tuple(input_shape)} has {sizes[c]} there.")
        if c not in sizes or sizes[c] is None:
            sizes[c] = d
    for c in out_letters:
        if c not in in_letters and c not in w_spec:
            raise ConfigError(f"{name}: output index '{c}' of '{layer.equation}' is neither in the input nor in the "
                              f"kernel.")
    kernel_shape, in_axes, out_axes = [], [], []
    for i, c in enumerate(w_spec):
        if c not in sizes and c not in out_letters:
            raise ConfigError(f"{name}: kernel index '{c}' of '{layer.equation}' is neither in the input nor in the "
                              f"output, so its size is unknown.")
        d = sizes.get(c)
        if d is None:
            raise ShapeError(f"{name}: the kernel's size along index '{c}' is unknown for inputs of shape "
                             f"{tuple(input_shape)} and output_shape {tuple(partial)}.")
        kernel_shape.append(int(d))
        (out_axes if c in out_letters else in_axes).append(i)
    bias_shape = None
    if layer.bias_axes:
        for c in layer.bias_axes:
            if c not in out_letters:
                raise ConfigError(f"{name}: bias index '{c}' is not an index of the output '{out_spec}'.")
        first = min(out_letters.index(c) for c in layer.bias_axes)
        bias_shape = [int(sizes[c]) if c in layer.bias_axes else 1 for c in out_letters[first:]]
        if right:
            bias_shape += [1] * elided
    return f"{full_in},{w_spec}->{full_out}", kernel_shape, bias_shape, in_axes, out_axes


class EinsumDense(Layer):
    """A Dense layer written as an einsum equation: `output = activation(einsum(equation, inputs, kernel) + bias)`.

    Args:
        equation: The einsum equation of inputs, kernel and output, e.g. 'abc,cd->abd'.
        output_shape: The output's shape without the batch axis (null for a size taken from the input).
        activation: Activation applied to the output.
        bias_axes: The output indices that have a bias, e.g. 'd'; none means no bias.
    """

    supports_masking = True

    def __init__(self, equation, output_shape, activation=None, bias_axes=None, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, lora_rank=None, lora_alpha=None,
                 gptq_unpacked_column_size=None, quantization_config=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        if not isinstance(equation, str) or "->" not in equation:
            raise ConfigError(f"EinsumDense: 'equation' must be a string like 'abc,cd->abd', got {equation!r}.")
        if lora_rank or gptq_unpacked_column_size or quantization_config:
            raise ConfigError("EinsumDense: LoRA and quantized kernels are not supported.")
        self.equation = equation
        if isinstance(output_shape, (int, np.integer)):
            output_shape = (int(output_shape),)
        try:
            self.partial_output_shape = tuple(None if d is None else int(d) for d in output_shape)
        except (TypeError, ValueError):
            raise ConfigError(f"EinsumDense: 'output_shape' must be an integer or a list of sizes (null for unknown),"
                              f" got {output_shape!r}.") from None
        self.activation = activations.get(activation)
        self.bias_axes = bias_axes or None
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)

    def build(self, input_shape):
        self._equation, kernel_shape, bias_shape, in_axes, out_axes = _einsum_dense_shapes(self, input_shape)
        init = self.kernel_initializer
        if isinstance(init, initializers.VarianceScaling) and init.input_axes is None:
            # Keras 3.15 takes the fans from the kernel's input and output axes, not from its last two.
            init = type(init).from_config({**init.get_config(), "input_axes": in_axes, "output_axes": out_axes})
        self.kernel = self.add_weight(name="kernel", shape=tuple(kernel_shape), initializer=init,
                                      regularizer=self.kernel_regularizer, constraint=self.kernel_constraint)
        self.bias = None
        if bias_shape is not None:
            self.bias = self.add_weight(name="bias", shape=tuple(bias_shape), initializer=self.bias_initializer,
                                        regularizer=self.bias_regularizer, constraint=self.bias_constraint)

    def call(self, inputs):
        built = self._build_input_shape
        if inputs.ndim != len(built) or not all(_dims_fit(a, b) for a, b in zip(inputs.shape[1:], built[1:])):
            raise ShapeError(f"EinsumDense '{self.name}' was built for inputs of shape {tuple(built)}, got "
                             f"{tuple(inputs.shape)}.")
        x = ops.einsum(self._equation, inputs, self.kernel)
        if self.bias is not None:
            x = ops.add(x, self.bias)
        return self.activation(x)

    def get_config(self):
        config = super().get_config()
        config.update({
            "output_shape": list(self.partial_output_shape),
            "equation": self.equation,
            "activation": activations.serialize(self.activation),
            "bias_axes": self.bias_axes,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "activity_regularizer": regularizers.serialize(self.activity_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
        })
        return config


# -- MultiHeadAttention --------------------------------------------------------------------------------------------
def _built(layer: Layer, input_shape) -> Layer:
    """A sublayer built for `input_shape` now (the parent's build knows every shape), without tracing a call."""
    layer._build_input_shape = tuple(input_shape)
    layer.build(tuple(input_shape))
    layer.built = True
    return layer


def _projection(free: int, bound: int, out: int) -> tuple[str, str]:
    """(equation, bias axes) of a projection that keeps `free` leading axes, contracts `bound` axes with the kernel
    and adds `out` new ones: (3 - 1, 1, 2) is 'abc,cde->abde'."""
    letters = string.ascii_lowercase
    kept, contracted, new = letters[:free], letters[free:free + bound], letters[free + bound:free + bound + out]
    return f"{kept}{contracted},{contracted}{new}->{kept}{new}", new


def _attention_equations(rank: int, attn_axes: tuple[int, ...]) -> tuple[str, str, int]:
    """The dot-product (key, query -> scores) and combination (scores, value -> output) equations of projected
    tensors of `rank` (batch, steps..., heads, features), attending over `attn_axes`; and the scores' rank."""
    letters = string.ascii_lowercase
    target = letters[:rank]
    batch = [i for i in range(rank) if i not in attn_axes and i != rank - 1]
    source, extra = "", rank
    for i in range(rank):
        if i in batch or i == rank - 1:
            source += target[i]
        else:
            source += letters[extra]
            extra += 1
    product = "".join([target[i] for i in batch] + [target[i] for i in attn_axes] + [source[i] for i in attn_axes])
    return f"{source},{target}->{product}", f"{product},{source}->{target}", len(product)


class MultiHeadAttention(Layer):
    """Multi-head attention as in "Attention Is All You Need": query, key and value are projected into `num_heads`
    heads, each attends with scaled dot products, and the heads are projected back. Called as
    `layer(query, value)`, `layer(query, value, key)` or on the list `[query, value(, key)]`.

    Args:
        num_heads: Number of attention heads.
        key_dim: Size of each head for query and key.
        value_dim: Size of each head for value (none: key_dim).
        dropout: Fraction of the attention weights to drop while training.
        use_bias: Whether the projections have biases.
        output_shape: The output's last dimensions (none: the query's last dimension).
        attention_axes: The axes attention runs over (none: every axis between the batch and the features).
        sliding_window: Each query step attends only to value steps closer than this (none: all of them).
        use_gate: Multiply each head's output by a sigmoid gate computed from the query.
        seed: Seed of the dropout.
    """

    supports_masking = True

    def __init__(self, num_heads, key_dim, value_dim=None, dropout=0.0, use_bias=True, output_shape=None,
                 attention_axes=None, sliding_window=None, flash_attention=None, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, use_gate=False, seed=None, query_shape=None,
                 key_shape=None, value_shape=None, softmax_robust_masking=False, **kwargs):
        # query_shape/key_shape/value_shape: tf.keras 2 records the built shapes; the call gives them again here.
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.num_heads = check_positive_int("MultiHeadAttention", "num_heads", num_heads)
        self.key_dim = check_positive_int("MultiHeadAttention", "key_dim", key_dim)
        self.value_dim = check_positive_int("MultiHeadAttention", "value_dim", value_dim) if value_dim else \
            self.key_dim
        self.dropout = check_rate("MultiHeadAttention", dropout)
        self.use_bias = bool(use_bias)
        self.use_gate = bool(use_gate)
        if output_shape:
            if isinstance(output_shape, (int, np.integer)):
                output_shape = (int(output_shape),)
            try:
                output_shape = tuple(int(d) for d in output_shape)
            except (TypeError, ValueError):
                raise ConfigError(f"MultiHeadAttention: 'output_shape' must be an integer or a list of integers, "
                                  f"got {output_shape!r}.") from None
        self.output_shape_ = output_shape or None
        if isinstance(attention_axes, (int, np.integer)):
            attention_axes = (int(attention_axes),)
        elif attention_axes is not None:
            if not isinstance(attention_axes, (list, tuple)) or not all(
                    isinstance(a, (int, np.integer)) for a in attention_axes):
                raise ConfigError(f"MultiHeadAttention: 'attention_axes' must be an integer or a list of integers, "
                                  f"got {attention_axes!r}.")
            attention_axes = tuple(int(a) for a in attention_axes)
        self.attention_axes = attention_axes
        if sliding_window is not None:
            sliding_window = check_positive_int("MultiHeadAttention", "sliding_window", sliding_window)
        self.sliding_window = sliding_window
        self.flash_attention = flash_attention  # a kernel choice in Keras; the numbers are the same
        if softmax_robust_masking:
            raise ConfigError("MultiHeadAttention: softmax_robust_masking=True (tf.keras 2) is not supported.")
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.seed = seed

    # -- calling: Keras's (query, value, key) or the list -------------------------------------------------------
    def __call__(self, query, value=None, key=None, **kwargs):
        if value is None and isinstance(query, (list, tuple)):
            if not 2 <= len(query) <= 3:
                raise ShapeError(f"MultiHeadAttention '{self.name}' takes [query, value] or [query, value, key], "
                                 f"got a list of {len(query)}.")
            inputs = list(query)
        else:
            if value is None:
                raise ShapeError(f"MultiHeadAttention '{self.name}' needs a value: call it as layer(query, value) "
                                 f"(self-attention: layer(x, x)).")
            inputs = [query, value] + ([key] if key is not None else [])
        return super().__call__(inputs, **kwargs)

    @staticmethod
    def keras_call(args, kwargs):
        """The recorded call `([query, value(, key)],), kwargs` as Keras writes it: `(query, value), key=...`."""
        if len(args) == 1 and isinstance(args[0], (list, tuple)):
            inputs = list(args[0])
            kwargs = dict(kwargs, key=inputs[2]) if len(inputs) > 2 else dict(kwargs)
            return tuple(inputs[:2]), kwargs
        return tuple(args), dict(kwargs)

    def _sublayer_kwargs(self) -> dict:
        def fresh(init):  # each projection gets its own initializer object, as in Keras
            return type(init).from_config(init.get_config())

        return dict(kernel_initializer=fresh(self.kernel_initializer), bias_initializer=fresh(self.bias_initializer),
                    kernel_regularizer=self.kernel_regularizer, bias_regularizer=self.bias_regularizer,
                    activity_regularizer=self.activity_regularizer, kernel_constraint=self.kernel_constraint,
                    bias_constraint=self.bias_constraint, dtype=self.dtype)

    def _projection_layer(self, rank: int, bound: int, out_dims: list, name: str, activation=None):
        equation, bias_axes = _projection(rank - bound, bound, len(out_dims))
        out_rank = rank - bound + len(out_dims)
        return EinsumDense(equation, output_shape=[None] * (out_rank - 1 - len(out_dims)) + list(out_dims),
                           bias_axes=bias_axes if self.use_bias else None, activation=activation, name=name,
                           **self._sublayer_kwargs())

    def build(self, input_shape):
        query_shape, value_shape = tuple(input_shape[0]), tuple(input_shape[1])
        key_shape = tuple(input_shape[2]) if len(input_shape) > 2 else value_shape
        self._check_shapes(query_shape, value_shape, key_shape)
        rank = len(query_shape)
        heads_k, heads_v = [self.num_heads, self.key_dim], [self.num_heads, self.value_dim]
        # Attribute names and order as Keras's: its weight order and its .weights.h5 paths (query_dense, ...).
        self.query_dense = _built(self._projection_layer(rank, 1, heads_k, "query"), query_shape)
        self.key_dense = _built(self._projection_layer(len(key_shape), 1, heads_k, "key"), key_shape)
        self.gate_dense = None
        if self.use_gate:
            self.gate_dense = _built(self._projection_layer(rank, 1, heads_v, "gate", activation="sigmoid"),
                                     query_shape)
        self.value_dense = _built(self._projection_layer(len(value_shape), 1, heads_v, "value"), value_shape)
        projected_rank = rank + 1
        axes = self.attention_axes if self.attention_axes is not None else tuple(range(1, projected_rank - 2))
        self._attn_axes = tuple(a if a >= 0 else projected_rank - 1 + a for a in axes)
        self.attention_axes = self._attn_axes  # Keras writes the resolved axes into its config once built
        self._dot_equation, self._combine_equation, scores_rank = _attention_equations(projected_rank,
                                                                                       self._attn_axes)
        self._norm_axes = list(range(scores_rank - len(self._attn_axes), scores_rank))
        out_dims = list(self.output_shape_) if self.output_shape_ else [query_shape[-1]]
        self.output_dense = _built(self._projection_layer(projected_rank, 2, out_dims, "attention_output"),
                                   query_shape[:-1] + (self.num_heads, self.value_dim))

    def _check_shapes(self, query_shape, value_shape, key_shape):
        where = f"MultiHeadAttention '{self.name}'"
        if len(query_shape) < 3:
            raise ShapeError(f"{where}: the query must have a batch, at least one step axis and features, got shape "
                             f"{query_shape}.")
        if len(value_shape) != len(key_shape) or not all(_dims_fit(a, b) for a, b in
                                                          zip(value_shape[1:-1], key_shape[1:-1])):
            raise ShapeError(f"{where}: the value has shape {value_shape} and the key {key_shape}; all their "
                             f"dimensions but the last must match.")
        if len(value_shape) != len(query_shape):
            raise ShapeError(f"{where}: the query has shape {query_shape} and the value {value_shape}; they must "
                             f"have the same rank.")
        for which, shape in (("query", query_shape), ("value", value_shape), ("key", key_shape)):
            if shape[-1] is None:
                raise ShapeError(f"{where} needs a known last dimension of the {which}, got shape {shape}.")

    def _check_built_for(self, which: str, tensor, layer) -> None:
        built = layer._build_input_shape
        if tensor.ndim != len(built) or not _dims_fit(tensor.shape[-1], built[-1]):
            raise ShapeError(f"MultiHeadAttention '{self.name}' was built for a {which} of shape "
                             f"{(None,) + tuple(built[1:])}, got {_shape(tensor)}.")

    def _attention_mask(self, query, value, query_mask, value_mask, key_mask, attention_mask, use_causal_mask):
        mask = None

        def both(a, b):
            return b if a is None else ops.logical_and(a, b)

        if query_mask is not None:
            mask = ops.expand_dims(ops.cast(query_mask, "bool"), -1)
        for m in (value_mask, key_mask):
            if m is not None:
                mask = both(mask, ops.expand_dims(ops.cast(m, "bool"), -2))
        if use_causal_mask:
            mask = both(mask, causal_mask(query, value))
        if self.sliding_window is not None:
            rows, cols = _index_grid(query, value)
            near = ops.less(ops.abs(ops.subtract(rows, cols)), self.sliding_window)
            mask = both(mask, ops.expand_dims(near, 0))
        if attention_mask is not None:
            mask = both(ops.cast(attention_mask, "bool"), mask) if mask is not None else \
                ops.cast(attention_mask, "bool")
        return mask

    def _check_attention_mask(self, attention_mask, query, value):
        qs, vs, ms = _shape(query), _shape(value), _shape(attention_mask)
        want = (qs[0],) + qs[1:-1] + vs[1:-1]
        fits = len(ms) <= len(want) and all(m is None or w is None or m in (1, w)
                                            for m, w in zip(ms[::-1], want[::-1]))
        if not fits:
            raise ShapeError(f"MultiHeadAttention '{self.name}': the attention_mask has shape {ms}, which does not "
                             f"fit the query of shape {qs} and the value of shape {vs} (it should be {want}).")

    def call(self, inputs, mask=None, query_mask=None, value_mask=None, key_mask=None, attention_mask=None,
             return_attention_scores=False, training=None, use_causal_mask=False):
        query, value = inputs[0], inputs[1]
        key = inputs[2] if len(inputs) > 2 else value
        self._check_shapes(_shape(query), _shape(value), _shape(key))
        self._check_built_for("query", query, self.query_dense)
        self._check_built_for("value", value, self.value_dense)
        self._check_built_for("key", key, self.key_dense)
        if query_mask is not None:
            raise ConfigError(f"MultiHeadAttention '{self.name}': Keras 3 ignores a query_mask argument (it reads "
                              f"only the mask that travels with the query), so it is refused here rather than "
                              f"ignored. Mask the query (Masking, Embedding(mask_zero=True)) or pass attention_mask.")
        if mask is not None:  # the masks that travel with the inputs (Keras passes them as query_mask, ...)
            mask = list(mask) + [None] * (3 - len(mask))
            query_mask = mask[0]
            value_mask = value_mask if value_mask is not None else mask[1]
            key_mask = key_mask if key_mask is not None else (mask[2] if len(inputs) > 2 else None)
        for which, m, t in (("query", query_mask, query), ("value", value_mask, value), ("key", key_mask, key)):
            if m is not None:
                _check_mask(self, which, m, t)
        if attention_mask is not None:
            self._check_attention_mask(attention_mask, query, value)
        keep = self._attention_mask(query, value, query_mask, value_mask, key_mask, attention_mask, use_causal_mask)
        gate = self.gate_dense(query) if self.gate_dense is not None else None
        q = ops.multiply(self.query_dense(query), 1.0 / math.sqrt(float(self.key_dim)))
        k = self.key_dense(key)
        v = self.value_dense(value)
        scores = ops.einsum(self._dot_equation, k, q)
        if keep is not None:
            # The mask (batch, query steps..., value steps...) gets the heads' axis.
            for _ in range(scores.ndim - keep.ndim):
                keep = ops.expand_dims(keep, -len(self._attn_axes) * 2 - 1)
        if self.dropout == 0 and not return_attention_scores and q.ndim == 4:
            # Keras 3 takes its fused dot_product_attention here, which fills masked scores with -0.7 * the
            # largest float and does not zero them after the softmax: a fully masked query step (padding) gets
            # the plain average of the values rather than 0. Computed the same way so both agree everywhere.
            if keep is not None:
                scores = ops.where(keep, scores, float(np.finfo(np.float32).max) * -0.7)
            scores = ops.softmax(scores, axis=-1)
        else:
            scores = masked_softmax(self, scores, keep, self._norm_axes)
        weights = ops.dropout(scores, self.dropout, seed=self.seed) if training and self.dropout > 0 else scores
        out = ops.einsum(self._combine_equation, weights, v)
        if gate is not None:
            out = ops.multiply(out, gate)
        out = self.output_dense(out)
        return (out, scores) if return_attention_scores else out

    def compute_mask(self, inputs, mask=None):
        return _query_mask(mask)

    def get_config(self):
        config = super().get_config()
        config.update({
            "num_heads": self.num_heads,
            "key_dim": self.key_dim,
            "value_dim": self.value_dim,
            "dropout": self.dropout,
            "use_bias": self.use_bias,
            "use_gate": self.use_gate,
            "output_shape": list(self.output_shape_) if self.output_shape_ else None,
            "attention_axes": list(self.attention_axes) if self.attention_axes is not None else None,
            "sliding_window": self.sliding_window,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "activity_regularizer": regularizers.serialize(self.activity_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
            "seed": self.seed,
        })
        # tf.keras 2 builds from these when it reads a config (and requires the keys); Keras 3 does not take them,
        # so exporters.keras_config drops them for Keras 3.
        shapes = self._build_input_shape if self.built else None
        for i, key in enumerate(("query_shape", "value_shape", "key_shape")):
            shape = None if shapes is None else shapes[min(i, len(shapes) - 1)]
            config[key] = None if shape is None else list(shape)
        return config
