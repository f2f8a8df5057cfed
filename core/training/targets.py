"""Targets and sample weights for fit/evaluate: matched to the model's outputs and checked against each output's
shape and loss before the first step, so bad data fails with a message that names the output and what it expects."""

from __future__ import annotations

import numpy as np

from core.errors import InputDataError
from core.training.data import _as_arrays


def prepare_targets(model_name, y, out_info):
    """The targets as one entry per model output (None where none was given), from an array, a list or a dict by
    output name."""
    names = [nm for nm, _, _ in out_info]
    if y is None:
        return None
    if isinstance(y, dict):
        missing = [n for n in names if n not in y]
        unknown = [k for k in y if k not in names]
        if unknown:
            raise InputDataError(f"Targets name output(s) {unknown} that model '{model_name}' does not have "
                                 f"(outputs: {names}).")
        return [None if n in missing else y[n] for n in names]
    if isinstance(y, (list, tuple)) and len(names) > 1:
        ys = list(y)
    elif isinstance(y, (list, tuple)) and len(y) == 1 and np.ndim(y[0]) >= 1:
        ys = [y[0]]  # [targets] for a single output
    else:
        ys = [y]
    if len(ys) != len(names):
        raise InputDataError(f"Model '{model_name}' has {len(names)} output(s) ({names}) but got targets for "
                             f"{len(ys)}.")
    return ys

def check_targets(ys, targets, out_info, n_samples, where="fit"):
    """Cast targets to float32 and check that each fits its output and loss; returns the fixed arrays."""
    from core import losses

    out = []
    for y, tgt, (name, _, shape) in zip(ys, targets, out_info):
        if y is None:
            if tgt.loss is not None:
                raise InputDataError(f"{where}: output '{name}' has a loss but no targets were given for it.")
            out.append(None)
            continue
        y = _as_arrays(y, f"Targets for output '{name}'")
        if y.shape[0] != n_samples:
            raise InputDataError(f"{where}: targets for output '{name}' have {y.shape[0]} samples but x has "
                                 f"{n_samples}.")
        if losses.is_sparse(tgt.loss):
            if y.ndim == len(shape) and y.shape[-1] != 1 or y.ndim not in (len(shape), len(shape) - 1):
                raise InputDataError(
                    f"{where}: sparse_categorical_crossentropy on output '{name}' expects integer class labels "
                    f"of shape {(None,) + tuple(shape[1:-1])}, got targets of shape {y.shape}. For one-hot "
                    f"targets use categorical_crossentropy.")
            n_classes = shape[-1]
            if y.size and (np.any(y < 0) or (n_classes is not None and np.any(y >= n_classes))):
                raise InputDataError(f"{where}: class labels for output '{name}' must be in [0, {n_classes}), "
                                     f"got values from {y.min()} to {y.max()}.")
            if y.dtype.kind == "f" and np.any(y != np.round(y)):
                raise InputDataError(f"{where}: sparse class labels for output '{name}' must be integers.")
        else:
            if losses.is_categorical(tgt.loss) and (y.ndim == len(shape) - 1 or y.shape[-1] == 1) and \
                    (shape[-1] or 0) > 1:
                raise InputDataError(
                    f"{where}: categorical_crossentropy on output '{name}' (shape {shape}) needs one-hot "
                    f"targets of shape {(None,) + tuple(shape[1:])}, but the targets have shape {y.shape} "
                    f"(integer class labels?). Use loss='sparse_categorical_crossentropy' or "
                    f"keras.utils.to_categorical(y).")
            if y.ndim == len(shape) - 1 and shape[-1] == 1:
                y = y.reshape(y.shape + (1,))
            if y.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape[1:], y.shape[1:])):
                raise InputDataError(f"{where}: targets for output '{name}' have shape {y.shape}, but the "
                                     f"output has shape {shape}.")
        out.append(np.ascontiguousarray(y, dtype=np.float32))
    return out

def sample_weights(sw, ys, class_weight, n, out_info):
    """One float32 weight array per output (ones where none was given: the same numbers as Keras's None, for the
    loss and every metric), class weights folded in. `out_info`: (name, dtype, shape) per output. For an output
    of rank > 2 the weights have the shape of its loss values, (samples, timesteps...): per-sample weights are
    broadcast over the timesteps, which gives what Keras gives for weights shaped (samples, 1)."""
    names = [nm for nm, _, _ in out_info]
    per = [None] * len(names)
    if sw is not None:
        if isinstance(sw, dict):
            per = [sw.get(nm) for nm in names]
        elif isinstance(sw, (list, tuple)) and len(names) > 1:
            per = list(sw)
        else:
            per = [sw] * len(names)
    out = []
    for w, y, (name, _, shape) in zip(per, ys, out_info):
        # Outputs of rank > 2 (sequences, images) take a weight per loss value: per timestep (pixel).
        steps = tuple(y.shape[1:len(shape) - 1]) if y is not None and len(shape) > 2 else ()
        if w is None:
            w = np.ones((n,) + steps, np.float32)
        else:
            w = np.asarray(w, dtype=np.float32)
            if w.ndim == 2 and w.shape[1] == 1:
                w = w[:, 0]
            if w.shape == (n,) and steps:
                w = np.ascontiguousarray(np.broadcast_to(w.reshape((n,) + (1,) * len(steps)), (n,) + steps))
            elif w.shape != (n,) + steps:
                accepted = f"({n},) or ({n}, 1) (one weight per sample)"
                if steps:
                    accepted += f" or {(n,) + steps} (one per timestep)"
                raise InputDataError(f"sample_weight for output '{name}' must have shape {accepted}, got "
                                     f"{w.shape}.")
        out.append(w)
    if class_weight is not None:
        if sw is not None:
            raise InputDataError("class_weight and sample_weight cannot be given together (as in Keras); fold the "
                                 "class weights into sample_weight.")
        if len(names) > 1:
            raise InputDataError("class_weight is only supported for models with a single output; use "
                                 "sample_weight per output instead.")
        y = ys[0]
        if y is None:
            raise InputDataError("class_weight needs targets.")
        shape = out_info[0][2]
        if len(shape) > 2:
            # Keras 3 fails here too (its class_weight_to_sample_weights reads one class per sample).
            raise InputDataError(
                f"class_weight needs one class per sample, but output '{names[0]}' has shape {shape} (a class "
                f"per timestep). Weigh its timesteps with a sample_weight of shape (samples, timesteps) instead.")
        if y.ndim == 2 and y.shape[1] > 1:
            classes = np.argmax(y, axis=-1)
        else:
            classes = np.round(y.reshape(y.shape[0], -1)[:, 0]).astype(np.int64)
        try:
            table = {int(k): float(v) for k, v in class_weight.items()}
        except (AttributeError, TypeError, ValueError):
            raise InputDataError(f"class_weight must be a dict from class index to weight, got "
                                 f"{class_weight!r}.") from None
        cw = np.array([table.get(int(c), 1.0) for c in classes], dtype=np.float32)
        out[0] = out[0] * cw
    return out
