"""`tf.data` as Keras users write it: a `Dataset` is a pipeline of elements (numpy arrays in tuples or dicts) that
`fit`, `evaluate` and `predict` iterate, and that Python code can iterate too.

Sources: `from_tensor_slices`, `from_tensors`, `from_generator`, `range`, `zip`. Transformations return new datasets
and run lazily, each time the dataset is iterated (so a shuffled dataset reshuffles every epoch, as tf.data does):
`map` (the function is traced once per element signature with `core.ops` into an ONNX graph, as tf.data traces it
with TensorFlow ops), `filter`, `batch`, `padded_batch`, `unbatch`, `shuffle`, `repeat`, `take`, `skip`,
`concatenate`, `prefetch` and `cache`. `cardinality()` follows tf.data: a count, `INFINITE_CARDINALITY` (-1) or
`UNKNOWN_CARDINALITY` (-2).
"""

from __future__ import annotations

import itertools

import numpy as np

from core.errors import InputDataError
from core.graph import is_text, text_array
from core.layers.base import flatten as _leaves, map_structure

INFINITE_CARDINALITY = -1
UNKNOWN_CARDINALITY = -2


class TensorSpec:
    """The shape and dtype of one part of an element, as `tf.TensorSpec` (for `from_generator`'s
    `output_signature`)."""

    def __init__(self, shape=None, dtype="float32", name=None):
        self.shape = None if shape is None else tuple(None if d is None else int(d) for d in shape)
        self.dtype = np.dtype(dtype)
        self.name = name

    def __repr__(self):
        return f"TensorSpec(shape={self.shape}, dtype={self.dtype.name}, name={self.name!r})"


def _as_element(value, what: str):
    """A nested structure whose leaves are numpy arrays (tuples and dicts are structure; a list is one tensor, as
    tf.data reads it)."""
    if isinstance(value, tuple):
        return tuple(_as_element(v, what) for v in value)
    if isinstance(value, dict):
        return {k: _as_element(v, what) for k, v in value.items()}
    try:
        arr = np.asarray(value)
    except ValueError as exc:
        raise InputDataError(f"{what}: a part of the data could not be read as one array ({exc}). Lists are read "
                             f"as tensors, as tf.data reads them; use a tuple for several parts.") from None
    if is_text(arr):
        return text_array(arr)  # texts, for a model whose input takes strings
    if arr.dtype == object:
        raise InputDataError(f"{what}: a part of the data is ragged or of mixed types; every part must be a "
                             f"rectangular array (pad sequences first).")
    if arr.dtype == np.float64 and not isinstance(value, np.ndarray):
        arr = arr.astype(np.float32)  # Python floats become float32 tensors, as in TensorFlow
    return arr


def _unpacked_call(fn, element):
    """tf.data passes a tuple element as separate arguments and anything else as one."""
    return fn(*element) if isinstance(element, tuple) else fn(element)


def _tuple_if_list(value):
    """A function's list of results is a tuple of parts, as tf.data reads what a `map` function returns."""
    return tuple(value) if isinstance(value, list) else value


def _plain(value):
    """Results of ops (EagerTensor, Variable) and Python values as plain numpy arrays in the element's structure."""
    value = _tuple_if_list(value)
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    arr = np.asarray(value)
    return arr.view(np.ndarray) if type(arr) is not np.ndarray else arr


class Dataset:
    """A lazily computed sequence of elements. Subclasses make the elements (`_elements`) and know how many there
    are (`_cardinality`) and whether each element is a batch (`_batched`: True, False, or None when unknown)."""

    _batched: bool | None = False

    # -- sources -------------------------------------------------------------------------------------------------
    @staticmethod
    def from_tensor_slices(tensors, name=None):
        return _Slices(tensors)

    @staticmethod
    def from_tensors(tensors, name=None):
        element = _as_element(tensors, "from_tensors")
        # One element, often a whole batch ((x, y) given to fit as one step), so whether it is a batch is unknown.
        return _Generated(lambda: iter([element]), 1, batched=None)

    @staticmethod
    def range(*args, dtype="int64", name=None):
        values = np.arange(*args, dtype=np.dtype(dtype))
        return _Slices(values)

    @staticmethod
    def from_generator(generator, output_types=None, output_shapes=None, args=None, output_signature=None,
                       name=None):
        """Elements from `generator()` (a callable returning an iterator; called again for every pass). The
        signature (TensorSpecs, or output_types and output_shapes) casts and checks each element."""
        if not callable(generator):
            raise InputDataError(f"Dataset.from_generator needs a callable that returns an iterator (a generator "
                                 f"function), got {type(generator).__name__}.")
        if output_signature is None and output_types is not None:
            shapes = output_shapes if output_shapes is not None else map_structure(lambda _: None, output_types)
            output_signature = _zip_structures(output_types, shapes, lambda t, s: TensorSpec(s, t))
        call_args = tuple(args or ())

        def elements():
            for i, value in enumerate(generator(*call_args)):
                element = _as_element(value, "Dataset.from_generator")
                if output_signature is not None:
                    element = _conform(element, output_signature, i)
                yield element

        return _Generated(elements, UNKNOWN_CARDINALITY, batched=None)

    @staticmethod
    def zip(*datasets, name=None):
        """Elements of several datasets side by side, in their structure (`zip((a, b))` or `zip(a, b)`)."""
        structure = datasets[0] if len(datasets) == 1 and not isinstance(datasets[0], Dataset) else datasets
        parts = _leaves(structure)
        bad = [type(d).__name__ for d in parts if not isinstance(d, Dataset)]
        if bad or not parts:
            raise InputDataError(f"Dataset.zip takes datasets (in a tuple or dict), got {bad or 'nothing'}.")
        return _Zip(structure, parts)

    # -- transformations -------------------------------------------------------------------------------------
    def map(self, map_func, num_parallel_calls=None, deterministic=None, name=None):
        return _Map(self, map_func)

    def filter(self, predicate, name=None):
        return _Filter(self, predicate)

    def batch(self, batch_size, drop_remainder=False, num_parallel_calls=None, deterministic=None, name=None):
        return _Batch(self, _positive(batch_size, "batch_size"), bool(drop_remainder))

    def padded_batch(self, batch_size, padded_shapes=None, padding_values=None, drop_remainder=False, name=None):
        return _Batch(self, _positive(batch_size, "batch_size"), bool(drop_remainder),
                      padded=(padded_shapes, padding_values))

    def unbatch(self, name=None):
        if self._batched is False:
            raise InputDataError("Dataset.unbatch: the elements are not batches (call .batch() first).")
        return _Unbatch(self)

    def shuffle(self, buffer_size, seed=None, reshuffle_each_iteration=True, name=None):
        return _Shuffle(self, _positive(buffer_size, "buffer_size"), seed, bool(reshuffle_each_iteration))

    def repeat(self, count=None, name=None):
        """`count` passes over the data; None or -1 repeats forever (give fit a steps_per_epoch)."""
        count = -1 if count is None else int(count)
        if count < -1:
            raise InputDataError(f"Dataset.repeat: count must be -1, None or >= 0, got {count}.")
        return _Repeat(self, count)

    def take(self, count, name=None):
        return _Take(self, int(count))

    def skip(self, count, name=None):
        return _Skip(self, int(count))

    def concatenate(self, dataset, name=None):
        if not isinstance(dataset, Dataset):
            raise InputDataError(f"Dataset.concatenate takes a Dataset, got {type(dataset).__name__}.")
        return _Concatenate(self, dataset)

    def enumerate(self, start=0, name=None):
        counter = _Generated(lambda: (np.asarray(i, dtype=np.int64) for i in itertools.count(start)),
                             INFINITE_CARDINALITY, batched=False)
        return Dataset.zip((counter, self))

    def apply(self, transformation_func):
        return transformation_func(self)

    def prefetch(self, buffer_size=None, name=None):
        return self

    def cache(self, filename="", name=None):
        return self

    def with_options(self, options, name=None):
        return self

    # -- reading -----------------------------------------------------------------------------------------------
    def cardinality(self):
        """The number of elements, or INFINITE_CARDINALITY (-1) / UNKNOWN_CARDINALITY (-2), as tf.data."""
        from core.ops.dispatch import EagerTensor

        return EagerTensor(np.int64(self._cardinality()))

    def _cardinality(self) -> int:
        raise NotImplementedError

    def __len__(self) -> int:
        n = self._cardinality()
        if n == INFINITE_CARDINALITY:
            raise TypeError("The dataset is infinite.")
        if n == UNKNOWN_CARDINALITY:
            raise TypeError("The dataset's length is unknown.")
        return n

    def _elements(self):
        raise NotImplementedError

    def __iter__(self):
        from core.ops.dispatch import EagerTensor

        for element in self._elements():
            yield map_structure(EagerTensor, element)

    def as_numpy_iterator(self):
        return iter(self._elements())


# -- sources -----------------------------------------------------------------------------------------------------
class _Slices(Dataset):
    """`from_tensor_slices`: element i is every array's row i. Batching (and full shuffles) slice the arrays
    directly instead of stacking rows one by one."""

    def __init__(self, tensors):
        self.tensors = _as_element(tensors, "from_tensor_slices")
        sizes = {a.shape[0] if a.ndim else None for a in _leaves(self.tensors)}
        if None in sizes or len(sizes) != 1:
            raise InputDataError(f"from_tensor_slices needs arrays with the same first dimension, got sizes "
                                 f"{sorted(sizes, key=str)}.")
        self.n = sizes.pop()

    def _cardinality(self):
        return self.n

    def _rows(self, index):
        return map_structure(lambda a: np.asarray(a[index]), self.tensors)

    def _elements(self, order=None):
        for i in (range(self.n) if order is None else order):
            yield self._rows(i)


class _Generated(Dataset):
    def __init__(self, make_elements, cardinality, batched):
        self.make_elements = make_elements
        self.n = cardinality
        self._batched = batched

    def _cardinality(self):
        return self.n

    def _elements(self):
        return self.make_elements()


class _Zip(Dataset):
    def __init__(self, structure, parts):
        self.structure, self.parts = structure, parts
        flags = {p._batched for p in parts}
        self._batched = flags.pop() if len(flags) == 1 else None

    def _cardinality(self):
        counts = [p._cardinality() for p in self.parts]
        finite = [c for c in counts if c >= 0]
        if finite:
            return min(finite)
        return UNKNOWN_CARDINALITY if UNKNOWN_CARDINALITY in counts else INFINITE_CARDINALITY

    def _elements(self):
        iterators = [p._elements() for p in self.parts]
        for values in zip(*iterators):
            it = iter(values)
            yield map_structure(lambda _: next(it), _as_structure(self.structure))


def _as_structure(structure):
    """A zip's structure with every dataset a leaf (a tuple of datasets stays a tuple)."""
    if isinstance(structure, (tuple, list)):
        return tuple(_as_structure(s) for s in structure)
    if isinstance(structure, dict):
        return {k: _as_structure(v) for k, v in structure.items()}
    return 0


# -- transformations ------------------------------------------------------------------------------------------
class _Unary(Dataset):
    def __init__(self, parent: Dataset):
        self.parent = parent
        self._batched = parent._batched

    def _cardinality(self):
        return self.parent._cardinality()


class _Map(_Unary):
    def __init__(self, parent, fn):
        super().__init__(parent)
        if not callable(fn):
            raise InputDataError(f"Dataset.map takes a function, got {type(fn).__name__}.")
        self.fn = _TracedFunction(fn)

    def _elements(self):
        for element in self.parent._elements():
            yield self.fn(element)


class _Filter(_Unary):
    def __init__(self, parent, predicate):
        super().__init__(parent)
        self.predicate = _TracedFunction(predicate)

    def _cardinality(self):
        n = self.parent._cardinality()
        return n if n == INFINITE_CARDINALITY else UNKNOWN_CARDINALITY

    def _elements(self):
        for element in self.parent._elements():
            keep = np.asarray(self.predicate(element))
            if keep.shape != () or keep.dtype != np.bool_:
                raise InputDataError(f"Dataset.filter: the predicate must return one boolean, got an array of "
                                     f"shape {keep.shape} and dtype {keep.dtype}.")
            if keep:
                yield element


class _Batch(_Unary):
    _batched = True

    def __init__(self, parent, size, drop_remainder, padded=None):
        super().__init__(parent)
        self._batched = True
        self.size, self.drop_remainder, self.padded = size, drop_remainder, padded

    def _cardinality(self):
        n = self.parent._cardinality()
        if n < 0:
            return n
        return n // self.size if self.drop_remainder else -(-n // self.size)

    def _elements(self):
        parent, order = self.parent, None
        if isinstance(parent, _Shuffle) and isinstance(parent.parent, _Slices) and parent.buffer >= parent.parent.n:
            parent, order = parent.parent, self.parent.permutation(parent.parent.n)
        if isinstance(parent, _Slices) and self.padded is None:
            # Rows of arrays: slice them a batch at a time.
            index = np.arange(parent.n) if order is None else order
            for start in range(0, parent.n, self.size):
                chunk = index[start:start + self.size]
                if self.drop_remainder and len(chunk) < self.size:
                    return
                yield parent._rows(chunk if order is not None else slice(start, start + self.size))
            return
        pending = []
        for element in self.parent._elements():
            pending.append(element)
            if len(pending) == self.size:
                yield self._stack(pending)
                pending = []
        if pending and not self.drop_remainder:
            yield self._stack(pending)

    def _stack(self, elements):
        leaves = [_leaves(e) for e in elements]
        structure = elements[0]
        if self.padded is None:
            stacked = []
            for k, parts in enumerate(zip(*leaves)):
                shapes = {p.shape for p in parts}
                if len(shapes) > 1:
                    raise InputDataError(f"Dataset.batch: elements have different shapes {sorted(shapes)} (part "
                                         f"{k} of the element); use padded_batch to pad them to one shape.")
                stacked.append(np.stack(parts))
        else:
            stacked = self._pad(leaves)
        it = iter(stacked)
        return map_structure(lambda _: next(it), structure)

    def _pad(self, leaves):
        shapes_spec, values_spec = self.padded
        n_parts = len(leaves[0])
        shapes = _parts(shapes_spec) if shapes_spec is not None else [None] * n_parts
        values = _parts(values_spec) if values_spec is not None else [None] * n_parts
        if len(values) == 1 and n_parts > 1:
            values = values * n_parts
        if len(shapes) != n_parts or len(values) != n_parts:
            raise InputDataError(f"Dataset.padded_batch: padded_shapes/padding_values have {len(shapes)}/"
                                 f"{len(values)} parts, but the elements have {n_parts}.")
        out = []
        for k, parts in enumerate(zip(*leaves)):
            ranks = {p.ndim for p in parts}
            if len(ranks) > 1:
                raise InputDataError(f"Dataset.padded_batch: part {k} of the elements has different ranks "
                                     f"{sorted(ranks)}.")
            longest = [max(p.shape[d] for p in parts) for d in range(parts[0].ndim)]
            target = shapes[k]
            if target is not None:
                target = list(target) if not np.isscalar(target) else [target]
                if len(target) != len(longest):
                    raise InputDataError(f"Dataset.padded_batch: padded shape {tuple(target)} for part {k} does "
                                         f"not have the elements' rank {len(longest)}.")
                for d, (want, have) in enumerate(zip(target, longest)):
                    if want is not None and want != -1 and have > want:
                        raise InputDataError(f"Dataset.padded_batch: part {k} has size {have} on axis {d}, more "
                                             f"than its padded shape {tuple(target)}.")
                longest = [have if want is None or want == -1 else want for want, have in zip(target, longest)]
            fill = values[k] if values[k] is not None else ("" if parts[0].dtype.kind in "US" else 0)
            batch = np.full([len(parts)] + longest, fill, dtype=parts[0].dtype)
            for i, p in enumerate(parts):
                batch[(i,) + tuple(slice(0, s) for s in p.shape)] = p
            out.append(batch)
        return out


class _Unbatch(_Unary):
    def __init__(self, parent):
        super().__init__(parent)
        self._batched = False

    def _cardinality(self):
        n = self.parent._cardinality()
        return n if n == INFINITE_CARDINALITY else UNKNOWN_CARDINALITY

    def _elements(self):
        for element in self.parent._elements():
            parts = _leaves(element)
            sizes = {p.shape[0] if p.ndim else None for p in parts}
            if None in sizes or len(sizes) != 1:
                raise InputDataError(f"Dataset.unbatch: the parts of an element need the same first dimension, "
                                     f"got {sorted(sizes, key=str)}.")
            for i in range(sizes.pop()):
                yield map_structure(lambda a: np.asarray(a[i]), element)


class _Shuffle(_Unary):
    """tf.data's buffered shuffle: a random element of a buffer of `buffer` elements is given next and replaced
    by the next input. With a seed each pass is reproducible; without one it draws from numpy's global generator
    (which `keras.utils.set_random_seed` seeds)."""

    def __init__(self, parent, buffer, seed, reshuffle):
        super().__init__(parent)
        self.buffer, self.seed, self.reshuffle = buffer, seed, reshuffle
        self._passes = 0
        self._fixed_seed = None if reshuffle else (seed if seed is not None else int(np.random.randint(2 ** 31)))

    def _rng(self):
        if self._fixed_seed is not None:
            return np.random.default_rng(self._fixed_seed)
        self._passes += 1
        if self.seed is not None:
            return np.random.default_rng(self.seed + self._passes - 1)
        return np.random.default_rng(np.random.randint(2 ** 31))

    def permutation(self, n):
        return self._rng().permutation(n)

    def _elements(self):
        if isinstance(self.parent, _Slices) and self.buffer >= self.parent.n:
            yield from self.parent._elements(self.permutation(self.parent.n))
            return
        rng = self._rng()
        buffer = []
        for element in self.parent._elements():
            if len(buffer) < self.buffer:
                buffer.append(element)
                continue
            i = int(rng.integers(len(buffer)))
            yield buffer[i]
            buffer[i] = element
        while buffer:
            yield buffer.pop(int(rng.integers(len(buffer))))


class _Counted(_Unary):
    """A transformation with a count of elements or passes (-1: all of them, or forever)."""

    def __init__(self, parent, count):
        super().__init__(parent)
        self.count = count


class _Repeat(_Counted):
    def _cardinality(self):
        n = self.parent._cardinality()
        if self.count == -1:
            return 0 if n == 0 else INFINITE_CARDINALITY
        return n * self.count if n >= 0 else n

    def _elements(self):
        done = 0
        while self.count == -1 or done < self.count:
            any_element = False
            for element in self.parent._elements():
                any_element = True
                yield element
            done += 1
            if not any_element:
                return


class _Take(_Counted):
    def _cardinality(self):
        n = self.parent._cardinality()
        if self.count == -1:
            return n
        if n == INFINITE_CARDINALITY:
            return self.count
        return min(n, self.count) if n >= 0 else UNKNOWN_CARDINALITY

    def _elements(self):
        if self.count == -1:
            yield from self.parent._elements()
            return
        for i, element in enumerate(self.parent._elements()):
            if i >= self.count:
                return
            yield element


class _Skip(_Counted):
    def _cardinality(self):
        n = self.parent._cardinality()
        if n < 0:
            return n
        return 0 if self.count == -1 else max(0, n - self.count)

    def _elements(self):
        if self.count == -1:
            return
        for i, element in enumerate(self.parent._elements()):
            if i >= self.count:
                yield element


class _Concatenate(Dataset):
    def __init__(self, first, second):
        self.first, self.second = first, second
        self._batched = first._batched if first._batched == second._batched else None

    def _cardinality(self):
        a, b = self.first._cardinality(), self.second._cardinality()
        if INFINITE_CARDINALITY in (a, b):
            return INFINITE_CARDINALITY
        return UNKNOWN_CARDINALITY if UNKNOWN_CARDINALITY in (a, b) else a + b

    def _elements(self):
        yield from self.first._elements()
        yield from self.second._elements()


# -- functions on elements --------------------------------------------------------------------------------------
class _TracedFunction:
    """A function of dataset elements, traced once per element signature (the parts' dtypes and shapes) with
    `core.ops` into an ONNX graph that then runs for every element with that signature, as tf.data traces `map`
    functions. Elements with text, and functions that do not trace (they call numpy on the values), run on the
    numpy values directly."""

    def __init__(self, fn):
        self.fn = fn
        self._traced: dict = {}

    def __call__(self, element):
        parts = _leaves(element)
        if any(p.dtype.kind not in "biuf" for p in parts):
            return _plain(_unpacked_call(self.fn, element))
        signature = (repr(map_structure(lambda _: 0, element)), tuple((p.dtype.str, p.shape) for p in parts))
        program = self._traced.get(signature)
        if program is None:
            program = self._traced[signature] = self._trace(element)
        if program is False:
            return _plain(_unpacked_call(self.fn, element))
        session, input_names, structure = program
        values = iter(session.run(None, dict(zip(input_names, parts))))
        return map_structure(lambda leaf: next(values) if leaf is _TRACED else leaf, structure)

    def _trace(self, element):
        from core import runtime
        from core.graph import GraphBuilder, SymbolicTensor, graph_scope

        g = GraphBuilder("dataset_function")
        it = iter([g.add_input(f"part_{k}", p.dtype.name, p.shape) for k, p in enumerate(_leaves(element))])
        symbolic = map_structure(lambda _: next(it), element)
        try:
            with graph_scope(g):
                result = _unpacked_call(self.fn, symbolic)
        except Exception:  # noqa: BLE001 - not traceable with core.ops: the function runs on numpy values instead
            return False
        result = _tuple_if_list(result)
        outputs = [t for t in _leaves(result) if isinstance(t, SymbolicTensor)]
        if not outputs:
            return False  # nothing depends on the element: run the function as it is written
        g.set_outputs(outputs, [f"result_{k}" for k in range(len(outputs))])
        session, _ = runtime.create_session(g.to_model(), "cpu")
        structure = map_structure(lambda v: _TRACED if isinstance(v, SymbolicTensor) else _plain(v), result)
        return session, [t.name for t in g.inputs], structure


_TRACED = object()


# -- helpers -------------------------------------------------------------------------------------------------
def _parts(spec) -> list:
    """The per-part entries of a spec in an element's structure: tuples and dicts are structure, a list is one
    part's shape."""
    if isinstance(spec, tuple):
        return [p for v in spec for p in _parts(v)]
    if isinstance(spec, dict):
        return [p for v in spec.values() for p in _parts(v)]
    return [spec]


def _positive(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise InputDataError(f"{what} must be a positive integer, got {value!r}.")
    return int(value)


def _zip_structures(a, b, fn):
    if isinstance(a, (tuple, list)):
        if not isinstance(b, (tuple, list)) or len(a) != len(b):
            raise InputDataError(f"from_generator: output_types {a} and output_shapes {b} differ in structure.")
        return tuple(_zip_structures(x, y, fn) for x, y in zip(a, b))
    if isinstance(a, dict):
        return {k: _zip_structures(a[k], b[k], fn) for k in a}
    return fn(a, b)


def _conform(element, signature, index):
    specs = _leaves(signature)
    parts = _leaves(element)
    if len(specs) != len(parts):
        raise InputDataError(f"from_generator: element {index} has {len(parts)} part(s), but the signature has "
                             f"{len(specs)}.")
    out = []
    for k, (part, spec) in enumerate(zip(parts, specs)):
        if spec.shape is not None and (part.ndim != len(spec.shape) or any(
                s is not None and s != d for s, d in zip(spec.shape, part.shape))):
            raise InputDataError(f"from_generator: element {index}, part {k} has shape {part.shape}, but the "
                                 f"signature says {spec.shape}.")
        try:
            out.append(part.astype(spec.dtype, casting="same_kind" if part.dtype.kind != spec.dtype.kind else
                                   "unsafe"))
        except TypeError:
            raise InputDataError(f"from_generator: element {index}, part {k} of dtype {part.dtype} cannot be "
                                 f"read as {spec.dtype}.") from None
    it = iter(out)
    return map_structure(lambda _: next(it), element)


def as_input_batches(x, steps=None):
    """For predict: a Dataset or a `keras.utils.Sequence` becomes its input arrays (the first part of (x, y)
    elements; of the first `steps` batches when given), concatenated."""
    from core.training.data import is_batch_sequence

    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps <= 0):
        raise InputDataError(f"predict: steps must be a positive integer, got {steps!r}.")
    if is_batch_sequence(x):
        count = len(x) if steps is None else min(steps, len(x))
        elements, batched = (x[i] for i in range(count)), True
    elif isinstance(x, Dataset):
        if x._cardinality() == INFINITE_CARDINALITY and steps is None:
            raise InputDataError("predict got an infinite dataset (repeat() without a count): give steps, or "
                                 "take() what to predict.")
        elements, batched = x._elements(), x._batched is not False
        if steps is not None:
            elements = itertools.islice(elements, steps)
    else:
        return x
    inputs = [e[0] if isinstance(e, tuple) else e for e in elements]
    if not inputs:
        raise InputDataError("The dataset is empty.")
    join = np.concatenate if batched else np.stack
    head = inputs[0]
    if isinstance(head, tuple):
        return [join([b[i] for b in inputs]) for i in range(len(head))]
    if isinstance(head, dict):
        return {k: join([b[k] for b in inputs]) for k in head}
    return join(inputs)
