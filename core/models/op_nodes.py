"""Op nodes in Keras files: Keras 3's serialized operations and tf.keras 2's TFOpLambda / SlicingOpLambda layers.

Keras 3 writes `ops.sum(x, axis=1)` on a KerasTensor as `{"module": "keras.src.ops.numpy", "class_name": "Sum",
"config": {"name": "sum", "axis": 1, "keepdims": false}, "inbound_nodes": [{"args": [<x>], "kwargs": {}}]}`: the
operation's constructor arguments in `config`, its call's arguments (tensors and constants) in the node.
tf.keras 2 writes `tf.math.reduce_sum(x, axis=1)` as a TFOpLambda layer with `config.function`
"math.reduce_sum" and the node `["x", 0, 0, {"axis": 1}]`: the first argument as the tensor reference (its structure
kept: a list of references for `tf.concat`), every other argument by the TF function's parameter name, tensors among
them as `[layer, node, tensor]`. Slicing is a SlicingOpLambda with `slice_spec`.

Both become an `OpLayer` (`core.models.op_layer`) holding our op's name, its non-tensor arguments by our parameter
names and where its tensors go. The tables below map each generation's names to ours; they were read from Keras 3.15
and tf_keras 2.21 (the operation classes' signatures, and the function names and arguments that building models with
them writes), and `tests/interop/test_op_nodes_keras.py` checks them against those Keras versions.
"""

from __future__ import annotations

import inspect

from core.errors import ConfigError, GraphError

_ANY = object()

# -- Keras 3 -------------------------------------------------------------------------------------------------------
# our op -> (module under keras.src.ops, class name, the operation's constructor arguments, its call's arguments,
# {Keras-only argument: the values that mean what our op does}). Arguments are Keras's names; one that our op does not
# name the same is matched by position among our remaining parameters (x1, x2 -> a, b).
_BINARY = ((), ("x1", "x2"))
_UNARY = ((), ("x",))
_REDUCE = (("axis", "keepdims"), ("x",))
KERAS3_OPS: dict[str, tuple] = {
    "abs": ("numpy", "Absolute", *_UNARY, {}),
    "add": ("numpy", "Add", *_BINARY, {}),
    "all": ("numpy", "All", *_REDUCE, {}),
    "any": ("numpy", "Any", *_REDUCE, {}),
    "argmax": ("numpy", "Argmax", *_REDUCE, {}),
    "cast": ("core", "Cast", ("dtype",), ("x",), {}),
    "ceil": ("numpy", "Ceil", *_UNARY, {}),
    "clip": ("numpy", "Clip", ("x_min", "x_max"), ("x",), {}),
    "concatenate": ("numpy", "Concatenate", ("axis",), ("xs",), {}),
    "convert_to_tensor": ("core", "ConvertToTensor", ("dtype", "sparse", "ragged"), ("x",),
                          {"sparse": (None, False), "ragged": (None, False)}),
    "cos": ("numpy", "Cos", *_UNARY, {}),
    "true_divide": ("numpy", "TrueDivide", *_BINARY, {}),
    "elu": ("nn", "Elu", ("alpha",), ("x",), {}),
    "equal": ("numpy", "Equal", *_BINARY, {}),
    "erf": ("math", "Erf", *_UNARY, {}),
    "exp": ("numpy", "Exp", *_UNARY, {}),
    "expand_dims": ("numpy", "ExpandDims", ("axis",), ("x",), {}),
    "flip": ("numpy", "Flip", ("axis",), ("x",), {}),
    "floor": ("numpy", "Floor", *_UNARY, {}),
    "gelu": ("nn", "Gelu", ("approximate",), ("x",), {}),
    "getitem": ("numpy", "GetItem", (), ("x", "key"), {}),
    "greater": ("numpy", "Greater", *_BINARY, {}),
    "greater_equal": ("numpy", "GreaterEqual", *_BINARY, {}),
    "hard_sigmoid": ("nn", "HardSigmoid", *_UNARY, {}),
    "hard_silu": ("nn", "HardSilu", *_UNARY, {}),
    "leaky_relu": ("nn", "LeakyRelu", ("negative_slope",), ("x",), {}),
    "less": ("numpy", "Less", *_BINARY, {}),
    "less_equal": ("numpy", "LessEqual", *_BINARY, {}),
    "log": ("numpy", "Log", *_UNARY, {}),
    "log_sigmoid": ("nn", "LogSigmoid", *_UNARY, {}),
    "log_softmax": ("nn", "LogSoftmax", ("axis",), ("x",), {}),
    "logical_and": ("numpy", "LogicalAnd", *_BINARY, {}),
    "logical_not": ("numpy", "LogicalNot", *_UNARY, {}),
    "logical_or": ("numpy", "LogicalOr", *_BINARY, {}),
    "logsumexp": ("math", "Logsumexp", *_REDUCE, {}),
    "matmul": ("numpy", "Matmul", *_BINARY, {}),
    "max": ("numpy", "Max", ("axis", "keepdims", "initial"), ("x",), {"initial": (None,)}),
    "conv": ("nn", "Conv", ("strides", "padding", "data_format", "dilation_rate"), ("inputs", "kernel"), {}),
    "conv_transpose": ("nn", "ConvTranspose", ("strides", "padding", "output_padding", "data_format",
                                               "dilation_rate"), ("inputs", "kernel"), {}),
    "depthwise_conv": ("nn", "DepthwiseConv", ("strides", "padding", "data_format", "dilation_rate"),
                       ("inputs", "kernel"), {}),
    "separable_conv": ("nn", "SeparableConv", ("strides", "padding", "data_format", "dilation_rate"),
                       ("inputs", "depthwise_kernel", "pointwise_kernel"), {}),
    "max_pool": ("nn", "MaxPool", ("pool_size", "strides", "padding", "data_format"), ("inputs",), {}),
    "average_pool": ("nn", "AveragePool", ("pool_size", "strides", "padding", "data_format"), ("inputs",), {}),
    "maximum": ("numpy", "Maximum", *_BINARY, {}),
    "mean": ("numpy", "Mean", *_REDUCE, {}),
    "min": ("numpy", "Min", ("axis", "keepdims", "initial"), ("x",), {"initial": (None,)}),
    "minimum": ("numpy", "Minimum", *_BINARY, {}),
    "multiply": ("numpy", "Multiply", *_BINARY, {}),
    "negative": ("numpy", "Negative", *_UNARY, {}),
    "normalize": ("nn", "Normalize", ("axis", "order", "epsilon"), ("x",), {}),
    "not_equal": ("numpy", "NotEqual", *_BINARY, {}),
    "one_hot": ("nn", "OneHot", ("num_classes", "axis", "dtype", "sparse"), ("x",),
                {"axis": (-1,), "sparse": (False,)}),
    "ones_like": ("numpy", "OnesLike", ("dtype",), ("x",), {}),
    "pad": ("numpy", "Pad", ("pad_width", "mode"), ("x", "constant_values"), {"mode": ("constant",)}),
    "power": ("numpy", "Power", *_BINARY, {}),
    "prod": ("numpy", "Prod", ("axis", "keepdims", "dtype"), ("x",), {"dtype": (None,)}),
    "reciprocal": ("numpy", "Reciprocal", *_UNARY, {}),
    "relu": ("nn", "Relu", *_UNARY, {}),
    "relu6": ("nn", "Relu6", *_UNARY, {}),
    "repeat": ("numpy", "Repeat", ("repeats", "axis"), ("x",), {}),
    "reshape": ("numpy", "Reshape", ("newshape",), ("x",), {}),
    "round": ("numpy", "Round", ("decimals",), ("x",), {"decimals": (0,)}),
    "rsqrt": ("math", "Rsqrt", *_UNARY, {}),
    "selu": ("nn", "Selu", *_UNARY, {}),
    "sigmoid": ("nn", "Sigmoid", *_UNARY, {}),
    "sign": ("numpy", "Sign", *_UNARY, {}),
    "silu": ("nn", "Silu", *_UNARY, {}),
    "sin": ("numpy", "Sin", *_UNARY, {}),
    "softmax": ("nn", "Softmax", ("axis",), ("x",), {}),
    "softplus": ("nn", "Softplus", *_UNARY, {}),
    "softsign": ("nn", "Softsign", *_UNARY, {}),
    "sqrt": ("numpy", "Sqrt", *_UNARY, {}),
    "square": ("numpy", "Square", *_UNARY, {}),
    "squeeze": ("numpy", "Squeeze", ("axis",), ("x",), {}),
    "stack": ("numpy", "Stack", ("axis",), ("x",), {}),
    "subtract": ("numpy", "Subtract", *_BINARY, {}),
    "sum": ("numpy", "Sum", *_REDUCE, {}),
    "take": ("numpy", "Take", ("axis",), ("x", "indices"), {}),
    "tanh": ("numpy", "Tanh", *_UNARY, {}),
    "tile": ("numpy", "Tile", ("repeats",), ("x",), {}),
    "transpose": ("numpy", "Transpose", ("axes",), ("x",), {}),
    "var": ("numpy", "Var", *_REDUCE, {}),
    "where": ("numpy", "Where", (), ("condition", "x1", "x2"), {}),
    "zeros_like": ("numpy", "ZerosLike", ("dtype",), ("x",), {}),
}
# Other Keras 3 classes that are one of our ops (`ops.abs` and `abs(x)` write Absolute; `ops.divide` writes Divide
# and `x / y` TrueDivide, both true division).
_KERAS3_ALIASES = {"Abs": "abs", "Divide": "true_divide"}
_KERAS3_MODULES = ("keras.src.ops.", "keras.ops")


def _keras3_class_to_op() -> dict[str, str]:
    table = {spec[1]: name for name, spec in KERAS3_OPS.items()}
    table.update(_KERAS3_ALIASES)
    return table


# -- tf.keras 2 ----------------------------------------------------------------------------------------------------
# our op -> (the TF function names tf_keras writes for it, the first being the one we write; its parameters as
# (TF name, our name), our name None for a TF-only parameter; {TF-only parameter: the values that mean what our op
# does}; {our parameter: the value TF means when the argument is absent or None, where that differs from ours}).
_TF_UNARY = (("x", "x"),)
_TF_BINARY = (("x", "a"), ("y", "b"))
_TF_FEATURES = (("features", "x"),)
_TF_REDUCE = (("input_tensor", "x"), ("axis", "axis"), ("keepdims", "keepdims"))
_TF_LIKE = (("input", "x"), ("dtype", "dtype"), ("layout", None))
TF_OPS: dict[str, tuple] = {
    "abs": (("math.abs", "abs"), _TF_UNARY, {}, {}),
    "add": (("math.add", "__operators__.add", "add"), _TF_BINARY, {}, {}),
    "all": (("math.reduce_all", "reduce_all"), _TF_REDUCE, {}, {}),
    "any": (("math.reduce_any", "reduce_any"), _TF_REDUCE, {}, {}),
    "argmax": (("math.argmax", "argmax"), (("input", "x"), ("axis", "axis"), ("output_type", None)),
               {"output_type": ("int64", "int32", None)}, {"axis": 0}),  # the same indices either way
    "cast": (("cast", "dtypes.cast"), (("x", "x"), ("dtype", "dtype")), {}, {}),
    "ceil": (("math.ceil",), _TF_UNARY, {}, {}),
    "clip": (("clip_by_value",), (("t", "x"), ("clip_value_min", "x_min"), ("clip_value_max", "x_max")), {}, {}),
    "concatenate": (("concat",), (("values", "xs"), ("axis", "axis")), {}, {}),
    "cos": (("math.cos", "cos"), _TF_UNARY, {}, {}),
    "true_divide": (("math.truediv", "math.divide", "divide", "truediv"), _TF_BINARY, {}, {}),
    "elu": (("nn.elu",), _TF_FEATURES, {}, {}),
    "equal": (("math.equal", "equal"), _TF_BINARY, {}, {}),
    "erf": (("math.erf",), _TF_UNARY, {}, {}),
    "exp": (("math.exp", "exp"), _TF_UNARY, {}, {}),
    "expand_dims": (("expand_dims", "compat.v1.expand_dims"), (("input", "x"), ("axis", "axis"), ("dim", "axis")),
                    {}, {}),
    "flip": (("reverse",), (("tensor", "x"), ("axis", "axis")), {}, {}),
    "floor": (("math.floor", "floor"), _TF_UNARY, {}, {}),
    "gelu": (("nn.gelu",), (("features", "x"), ("approximate", "approximate")), {}, {"approximate": False}),
    "greater": (("math.greater", "greater"), _TF_BINARY, {}, {}),
    "greater_equal": (("math.greater_equal", "greater_equal"), _TF_BINARY, {}, {}),
    "leaky_relu": (("nn.leaky_relu",), (("features", "x"), ("alpha", "negative_slope")), {}, {}),
    "less": (("math.less", "less"), _TF_BINARY, {}, {}),
    "less_equal": (("math.less_equal", "less_equal"), _TF_BINARY, {}, {}),
    "log": (("math.log",), _TF_UNARY, {}, {}),
    "log_sigmoid": (("math.log_sigmoid",), _TF_UNARY, {}, {}),
    "log_softmax": (("nn.log_softmax", "math.log_softmax"), (("logits", "x"), ("axis", "axis")), {}, {"axis": -1}),
    "logical_and": (("math.logical_and", "logical_and"), _TF_BINARY, {}, {}),
    "logical_not": (("math.logical_not", "logical_not"), _TF_UNARY, {}, {}),
    "logical_or": (("math.logical_or", "logical_or"), _TF_BINARY, {}, {}),
    "logsumexp": (("math.reduce_logsumexp", "reduce_logsumexp"), _TF_REDUCE, {}, {}),
    "matmul": (("linalg.matmul", "matmul"),
               (("a", "a"), ("b", "b"), ("transpose_a", None), ("transpose_b", None), ("adjoint_a", None),
                ("adjoint_b", None), ("a_is_sparse", None), ("b_is_sparse", None), ("output_type", None),
                ("grad_a", None), ("grad_b", None)),
               {"transpose_a": (False,), "transpose_b": (False,), "adjoint_a": (False,), "adjoint_b": (False,),
                "a_is_sparse": (False,), "b_is_sparse": (False,), "output_type": (None,), "grad_a": _ANY,
                "grad_b": _ANY}, {}),
    "max": (("math.reduce_max", "reduce_max"), _TF_REDUCE, {}, {}),
    "maximum": (("math.maximum", "maximum"), _TF_BINARY, {}, {}),
    "mean": (("math.reduce_mean", "reduce_mean"), _TF_REDUCE, {}, {}),
    "min": (("math.reduce_min", "reduce_min"), _TF_REDUCE, {}, {}),
    "minimum": (("math.minimum", "minimum"), _TF_BINARY, {}, {}),
    "multiply": (("math.multiply", "multiply"), _TF_BINARY, {}, {}),
    "negative": (("math.negative", "negative"), _TF_UNARY, {}, {}),
    "not_equal": (("math.not_equal", "not_equal"), _TF_BINARY, {}, {}),
    "one_hot": (("one_hot",), (("indices", "x"), ("depth", "num_classes"), ("on_value", None), ("off_value", None),
                               ("axis", None), ("dtype", "dtype")),
                {"on_value": (None,), "off_value": (None,), "axis": (None, -1)}, {"dtype": "float32"}),
    "ones_like": (("ones_like",), _TF_LIKE, {"layout": (None,)}, {}),
    "pad": (("pad", "compat.v1.pad"), (("tensor", "x"), ("paddings", "pad_width"), ("mode", None),
                                       ("constant_values", "constant_values")),
            {"mode": ("CONSTANT", "constant")}, {}),
    "power": (("math.pow", "pow"), _TF_BINARY, {}, {}),
    "prod": (("math.reduce_prod", "reduce_prod"), _TF_REDUCE, {}, {}),
    "reciprocal": (("math.reciprocal",), _TF_UNARY, {}, {}),
    "relu": (("nn.relu",), _TF_FEATURES, {}, {}),
    "relu6": (("nn.relu6",), _TF_FEATURES, {}, {}),
    "repeat": (("repeat",), (("input", "x"), ("repeats", "repeats"), ("axis", "axis")), {}, {}),
    "reshape": (("reshape",), (("tensor", "x"), ("shape", "newshape")), {}, {}),
    "round": (("math.round", "round"), _TF_UNARY, {}, {}),
    "rsqrt": (("math.rsqrt",), _TF_UNARY, {}, {}),
    "selu": (("nn.selu",), _TF_FEATURES, {}, {}),
    "sigmoid": (("math.sigmoid", "sigmoid", "nn.sigmoid"), _TF_UNARY, {}, {}),
    "sign": (("math.sign", "sign"), _TF_UNARY, {}, {}),
    "silu": (("nn.silu", "nn.swish"), (("features", "x"), ("beta", None)), {"beta": (1.0,)}, {}),
    "sin": (("math.sin", "sin"), _TF_UNARY, {}, {}),
    "softmax": (("nn.softmax", "math.softmax"), (("logits", "x"), ("axis", "axis")), {}, {"axis": -1}),
    "softplus": (("math.softplus", "nn.softplus"), _TF_FEATURES, {}, {}),
    "softsign": (("nn.softsign", "math.softsign"), _TF_FEATURES, {}, {}),
    "sqrt": (("math.sqrt", "sqrt"), _TF_UNARY, {}, {}),
    "square": (("math.square", "square"), _TF_UNARY, {}, {}),
    "squeeze": (("squeeze", "compat.v1.squeeze"), (("input", "x"), ("axis", "axis"), ("squeeze_dims", "axis")),
                {}, {}),
    "stack": (("stack",), (("values", "xs"), ("axis", "axis")), {}, {"axis": 0}),
    "subtract": (("math.subtract", "subtract"), _TF_BINARY, {}, {}),
    "sum": (("math.reduce_sum", "reduce_sum"), _TF_REDUCE, {}, {}),
    "take": (("gather", "compat.v1.gather"), (("params", "x"), ("indices", "indices"), ("validate_indices", None),
                                              ("axis", "axis"), ("batch_dims", None)),
             {"validate_indices": _ANY, "batch_dims": (0,)}, {"axis": 0}),
    "tanh": (("math.tanh", "tanh", "nn.tanh"), _TF_UNARY, {}, {}),
    "tile": (("tile",), (("input", "x"), ("multiples", "repeats")), {}, {}),
    "transpose": (("transpose", "compat.v1.transpose"), (("a", "x"), ("perm", "axes"), ("conjugate", None)),
                  {"conjugate": (False,)}, {}),
    "var": (("math.reduce_variance",), _TF_REDUCE, {}, {}),
    "where": (("where",), (("condition", "condition"), ("x", "x"), ("y", "y")), {}, {}),
    "zeros_like": (("zeros_like",), _TF_LIKE, {"layout": (None,)}, {}),
}
TF_OP_CLASSES = ("TFOpLambda", "SlicingOpLambda")
TF_CONSTANT = "_CONSTANT_VALUE"  # a node entry [TF_CONSTANT, -1, value, kwargs]: the first argument is no tensor
_TF_GETITEM = "__operators__.getitem"


def _tf_function_to_op() -> dict[str, str]:
    table = {}
    for name, spec in TF_OPS.items():
        for fn in spec[0]:
            table.setdefault(fn, name)
    table[_TF_GETITEM] = "getitem"
    return table


# -- shared -----------------------------------------------------------------------------------------------------------
def has_keras_form(op: str) -> bool:
    """Whether Keras can hold `core.ops.<op>` as an op node in a model file (every op written for tf.keras 2 is
    written through its Keras 3 form)."""
    return op in KERAS3_OPS


def keras_class_name(op: str) -> str:
    """The class Keras 3's summary shows for a node of this op (NotEqual for not_equal)."""
    spec = KERAS3_OPS.get(op)
    return spec[1] if spec else op


def default_name(op: str) -> str:
    """Keras 3's name for a fresh node of this op: its class name in snake case ('get_item' for GetItem)."""
    from core.backend import snake_case

    return snake_case(keras_class_name(op))


def is_op_entry(entry) -> bool:
    """Whether a layer entry of a Functional config is an op node (Keras 3 operation, tf.keras 2 TFOpLambda)."""
    if not isinstance(entry, dict):
        return False
    if entry.get("class_name") in TF_OP_CLASSES:
        return True
    module = entry.get("module")
    if isinstance(module, str):
        return module.startswith(_KERAS3_MODULES)
    # Keras 3's .h5 writer leaves `module` out, and some operation classes share a layer's name (Add, Reshape): an
    # operation's config never has `trainable`, which every Keras 3 layer writes, and its nodes are Keras 3's.
    config, nodes = entry.get("config"), entry.get("inbound_nodes")
    return (entry.get("class_name") in _keras3_class_to_op() and isinstance(config, dict)
            and "trainable" not in config and isinstance(nodes, list) and bool(nodes)
            and all(isinstance(n, dict) for n in nodes))


def _op_function(op: str):
    from core.models.op_layer import op_function

    return op_function(op)


def _our_params(op: str) -> list[str]:
    return list(inspect.signature(_op_function(op)).parameters)


def _keras3_names(op: str) -> dict[str, str]:
    """Keras 3 argument name -> ours, for the op's constructor and call arguments."""
    _, _, init, call, fixed = KERAS3_OPS[op]
    ours = _our_params(op)
    keras_names = [p for p in call + init if p not in fixed]
    free = [p for p in ours if p not in keras_names]
    out = {}
    for p in keras_names:
        out[p] = p if p in ours else free.pop(0)
    return out


def _check_fixed(value, allowed, what: str, where: str) -> None:
    """A Keras-only argument must hold a value that means what our op does (a bool is not the number 0)."""
    if allowed is _ANY:
        return
    for a in allowed:
        if isinstance(a, str) and isinstance(value, str) and a.lower() == value.lower():
            return
        if type(a) is type(value) and a == value or a is None and value is None:
            return
    raise ConfigError(f"{where}: {what}={value!r} is not supported here (only {', '.join(map(repr, allowed))}).")


def _make_layer(op: str, values: dict, name: str, where: str):
    from core.models.op_layer import OpLayer, decode_argument, split_tensor_arguments

    values = {k: decode_argument(v) if not _holds_tensor(v) else v for k, v in values.items()}
    arguments, params, tensors = split_tensor_arguments(values, where)
    try:
        layer = OpLayer(op, arguments, params, name=name)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    return layer, tensors[0] if len(tensors) == 1 else tensors


def _holds_tensor(value) -> bool:
    from core.layers.base import KerasTensor, flatten

    return any(isinstance(v, KerasTensor) for v in flatten([value]))


def _unknown_op(what: str, where: str, forms: str) -> GraphError:
    return GraphError(f"{where}: {what} has no twin among Netweaver's ops, so this model cannot be loaded. "
                      f"Supported {forms}.")


# -- reading ------------------------------------------------------------------------------------------------------------
def layer_from_keras3(entry: dict, args: list, kwargs: dict, where: str):
    """(OpLayer, its input tensors) from a Keras 3 operation entry and its node's revived args and kwargs."""
    class_name = entry.get("class_name")
    config = dict(entry.get("config") or {})
    name = config.pop("name", None) or entry.get("name")
    where = f"{where}: op node '{name}' ({entry.get('module')}.{class_name})"
    op = _keras3_class_to_op().get(class_name)
    if op is None:
        raise _unknown_op(f"the Keras 3 operation {entry.get('module')}.{class_name}", where,
                          "Keras 3 operations: " + ", ".join(sorted(_keras3_class_to_op())))
    _, _, init, call, fixed = KERAS3_OPS[op]
    names = _keras3_names(op)
    values: dict = {}
    for key, value in config.items():
        if key in ("trainable", "dtype") and key not in init:
            continue
        if key in fixed:
            _check_fixed(value, fixed[key], key, where)
            continue
        if key not in names:
            raise ConfigError(f"{where}: unexpected config key {key!r} (the operation takes {list(init)}).")
        values[names[key]] = value
    if len(args) > len(call):
        raise GraphError(f"{where}: the node passes {len(args)} arguments; the operation's call takes {list(call)}.")
    for key, value in list(zip(call, args)) + list(kwargs.items()):
        if key in fixed:
            _check_fixed(value, fixed[key], key, where)
            continue
        if key not in names:
            raise GraphError(f"{where}: the node passes unknown argument {key!r}.")
        values[names[key]] = value
    # Keras 3 passes None for "the default" (pad's constant_values): ours may name that default differently.
    defaults = {p: v.default for p, v in inspect.signature(_op_function(op)).parameters.items()}
    values = {k: v for k, v in values.items() if v is not None or defaults.get(k) is None}
    return _make_layer(op, values, name, where)


def _is_tensor_structure(x) -> bool:
    if isinstance(x, dict):
        return x.get("class_name") == "__keras_tensor__"
    return isinstance(x, list) and any(_is_tensor_structure(v) for v in x)


def tf_keras2_node_parts(node):
    """(structure of the first argument as references, kwargs) of a TFOpLambda node: the first reference's kwargs
    stand for the call's (tf.keras 2 repeats them on every reference of a list argument)."""
    if isinstance(node, list) and len(node) in (3, 4) and isinstance(node[0], str):
        kwargs = node[3] if len(node) == 4 else {}
        return node[:3], kwargs or {}
    if isinstance(node, list) and node:
        parts = [tf_keras2_node_parts(n) for n in node]
        return [p[0] for p in parts], parts[0][1]
    raise GraphError(f"malformed TFOpLambda node {node!r}")


def layer_from_tf_keras2(entry: dict, first, kwargs: dict, where: str):
    """(OpLayer, its input tensors) from a TFOpLambda/SlicingOpLambda entry, its first argument (a tensor, a
    constant or a list of them) and its other arguments (tensors revived) by TF's parameter names."""
    config = entry.get("config") or {}
    name = config.get("name") or entry.get("name")
    function = config.get("function")
    where = f"{where}: op node '{name}' ({entry.get('class_name')} tf.{function})"
    op = _tf_function_to_op().get(function)
    if op is None:
        raise _unknown_op(f"tf.{function}", where, "TF functions: " + ", ".join(sorted(_tf_function_to_op())))
    kwargs = {k: v for k, v in kwargs.items() if k != "name"}
    if op == "getitem":
        if set(kwargs) - {"slice_spec"}:
            raise GraphError(f"{where}: unexpected arguments {sorted(kwargs)}.")
        return _make_layer(op, {"x": first, "key": _tf_slice_spec(kwargs.get("slice_spec"))}, name, where)
    _, params, fixed, tf_defaults = TF_OPS[op]
    tf_names = dict(params)
    values = {tf_names[params[0][0]]: first}
    for key, value in kwargs.items():
        if key not in tf_names:
            raise GraphError(f"{where}: tf.{function} has no argument {key!r} that Netweaver knows "
                             f"(known: {[p for p, _ in params]}).")
        if key in fixed or tf_names[key] is None:
            _check_fixed(value, fixed.get(key, (None,)), key, where)
            continue
        values[tf_names[key]] = value
    for ours, value in tf_defaults.items():
        if values.get(ours) is None:
            values[ours] = value
    return _make_layer(op, values, name, where)


def _tf_slice_spec(spec):
    from core.models.op_layer import decode_argument

    def one(x):
        if isinstance(x, dict) and "start" in x and "class_name" not in x:
            return slice(x.get("start"), x.get("stop"), x.get("step"))
        return decode_argument(x)

    return tuple(one(x) for x in spec) if isinstance(spec, list) else one(spec)


# -- writing -----------------------------------------------------------------------------------------------------------
def keras3_entry(layer, node, serialize_value) -> dict:
    """Keras 3's entry for one op node; `serialize_value` writes a call argument (tensors as __keras_tensor__)."""
    from core.models.op_layer import encode_argument, op_function

    spec = KERAS3_OPS.get(layer.function)
    if spec is None:
        raise ConfigError(f"Op node '{layer.name}' (core.ops.{layer.function}) has no Keras 3 operation; Keras 3 "
                          f"cannot hold it. Save for target 'tf_keras2', or compute it in a layer.")
    module, class_name, init, call, fixed = spec
    names = _keras3_names(layer.function)
    values = layer.call_arguments(node.call_args[0])
    defaults = {p: v.default for p, v in inspect.signature(op_function(layer.function)).parameters.items()}

    def value_of(keras_name):
        if keras_name in fixed:
            return fixed[keras_name][0]
        ours = names[keras_name]
        return values[ours] if ours in values else defaults.get(ours)

    config = {"name": layer.name}
    for p in init:
        config[p] = encode_argument(value_of(p))
    args = []
    for p in call:
        v = value_of(p)
        if p == "key" and isinstance(v, tuple):
            v = list(v)
        args.append(serialize_value(v) if _holds_tensor(v) else encode_argument(v))
    return {"module": f"keras.src.ops.{module}", "class_name": class_name, "config": config,
            "registered_name": class_name, "name": layer.name,
            "inbound_nodes": [{"args": args, "kwargs": {}}]}


def keras3_to_tf_keras2(entry: dict, reference) -> dict:
    """tf.keras 2's TFOpLambda/SlicingOpLambda entry for a Keras 3 operation entry (as `keras3_entry` writes it);
    `reference` turns a __keras_tensor__ dict into tf.keras 2's `[name, node, tensor]`."""
    name = (entry.get("config") or {}).get("name") or entry.get("name")
    nodes = entry.get("inbound_nodes") or []
    where = f"op node '{name}'"
    if len(nodes) != 1 or not isinstance(nodes[0], dict):
        raise ConfigError(f"{where}: an op node is called exactly once, got {len(nodes)} calls.")
    op = _keras3_class_to_op().get(entry.get("class_name"))
    if op is None:
        raise ConfigError(f"{where}: unknown operation {entry.get('class_name')!r}.")
    _, _, init, call, fixed = KERAS3_OPS[op]
    names = _keras3_names(op)
    values = {names[k]: v for k, v in (entry.get("config") or {}).items() if k in names}
    values.update({names[k]: v for k, v in zip(call, nodes[0].get("args", [])) if k in names})
    values.update({names[k]: v for k, v in (nodes[0].get("kwargs") or {}).items() if k in names})

    def is_tensor(x):
        return isinstance(x, dict) and x.get("class_name") == "__keras_tensor__"

    def tf_value(x):
        if is_tensor(x):
            return reference(x)
        if isinstance(x, list):
            return [tf_value(v) for v in x]
        return x

    if op == "getitem":
        function, cls = _TF_GETITEM, "SlicingOpLambda"
        first = values["x"]

        def spec_item(x):
            if isinstance(x, dict) and x.get("class_name") == "__slice__":
                return dict(x["config"])
            return x

        key = values.get("key")
        kwargs = {"slice_spec": [spec_item(k) for k in key] if isinstance(key, list) else spec_item(key)}
    else:
        spec = TF_OPS.get(op)
        if spec is None:
            raise ConfigError(f"{where} (core.ops.{op}) has no tf.keras 2 function; tf.keras 2 cannot hold it. "
                              f"Save for target 'keras3', or compute it in a layer.")
        functions, params, tf_fixed, tf_defaults = spec
        function, cls = functions[0], "TFOpLambda"
        first = values.get(params[0][1])
        kwargs, written = {}, {params[0][1]}
        for tf_name, ours in params[1:]:  # an older alias of an argument (squeeze_dims, dim) comes after it
            if ours is None or ours not in values or ours in written:
                continue
            kwargs[tf_name] = tf_value(values[ours])
            written.add(ours)
    if is_tensor(first):
        node = reference(first) + [kwargs]
    elif isinstance(first, list) and first and all(is_tensor(t) for t in first):
        node = [reference(t) + [kwargs] for t in first]
    elif not _is_tensor_structure(first):
        node = [TF_CONSTANT, -1, first, kwargs]  # tf.keras 2's form for a constant first argument (`1.0 - x`)
    else:
        raise ConfigError(f"{where}: tf.keras 2 cannot hold a first argument that mixes tensors and constants: "
                          f"{first!r}. Save for target 'keras3'.")
    return {"module": "tf_keras.src.layers.core.tf_op_layer", "class_name": cls,
            "config": {"name": name, "trainable": True, "dtype": "float32", "function": function},
            "registered_name": cls, "name": name, "inbound_nodes": [node]}
