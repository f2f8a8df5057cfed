"""Keras 3's optimizers as graph builders.

An optimizer here does not run updates itself: `apply(grads, params, ...)` writes Keras 3's update formulas with
`core.ops` into the training graph, where the weights, the slots (momentums, velocities...), the step count and the
learning rate are inputs and their new values are outputs. The host keeps the slot values between fits (`variables`,
`get_weights`/`set_weights`) and the step count (`iterations`); the learning rate (a float or a schedule evaluated at
`iterations`, as Keras does) is fed each step.
"""

from __future__ import annotations

import math

import numpy as np

from core import ops
from core.errors import ConfigError
from core.serialization import get_object


# -- learning-rate schedules ---------------------------------------------------------------------------------------
class LearningRateSchedule:
    def __call__(self, step):
        raise NotImplementedError

    def get_config(self):
        raise NotImplementedError

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class ExponentialDecay(LearningRateSchedule):
    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, name="ExponentialDecay"):
        if decay_steps <= 0:
            raise ConfigError(f"ExponentialDecay: decay_steps must be > 0, got {decay_steps}.")
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.decay_rate = decay_rate
        self.staircase = staircase
        self.name = name

    def __call__(self, step):
        p = np.float32(step) / np.float32(self.decay_steps)
        if self.staircase:
            p = np.floor(p)
        return float(np.float32(self.initial_learning_rate) * np.power(np.float32(self.decay_rate), np.float32(p)))

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "staircase": self.staircase, "name": self.name}


class PiecewiseConstantDecay(LearningRateSchedule):
    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        if len(boundaries) != len(values) - 1:
            raise ConfigError(f"PiecewiseConstantDecay: {len(values)} values need {len(values) - 1} boundaries, "
                              f"got {len(boundaries)}.")
        self.boundaries = list(boundaries)
        self.values = list(values)
        self.name = name

    def __call__(self, step):
        for b, v in zip(self.boundaries, self.values):
            if step <= b:
                return float(v)
        return float(self.values[-1])

    def get_config(self):
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


class CosineDecay(LearningRateSchedule):
    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay", warmup_target=None,
                 warmup_steps=0):
        if decay_steps <= 0:
            raise ConfigError(f"CosineDecay: decay_steps must be > 0, got {decay_steps}.")
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.alpha = alpha
        self.name = name
        self.warmup_target = warmup_target
        self.warmup_steps = warmup_steps

    def _decay(self, step, start):
        step = min(float(step), float(self.decay_steps))
        cosine = 0.5 * (1.0 + math.cos(math.pi * step / self.decay_steps))
        return float(np.float32(start * ((1.0 - self.alpha) * cosine + self.alpha)))

    def __call__(self, step):
        if self.warmup_target is None:
            return self._decay(step, self.initial_learning_rate)
        if step < self.warmup_steps:
            frac = step / self.warmup_steps
            return float(np.float32(self.initial_learning_rate
                                    + frac * (self.warmup_target - self.initial_learning_rate)))
        return self._decay(step - self.warmup_steps, self.warmup_target)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "alpha": self.alpha, "name": self.name, "warmup_target": self.warmup_target,
                "warmup_steps": self.warmup_steps}


class schedules:  # noqa: N801 - Keras's namespace `keras.optimizers.schedules`
    LearningRateSchedule = LearningRateSchedule
    ExponentialDecay = ExponentialDecay
    PiecewiseConstantDecay = PiecewiseConstantDecay
    CosineDecay = CosineDecay

    @staticmethod
    def deserialize(config):
        """A schedule from its Keras config (`{"class_name": "ExponentialDecay", "config": {...}}`)."""
        return get_object(config, _SCHEDULES, "learning rate schedule")


_SCHEDULES = {c.__name__: c for c in (ExponentialDecay, PiecewiseConstantDecay, CosineDecay)}


# -- clipping (Keras 3's exact formulas) ----------------------------------------------------------------------------
def _clip_by_norm(g, clip):
    l2sum = ops.sum(ops.square(g))
    pred = ops.greater(l2sum, 0.0)
    safe = ops.where(pred, l2sum, ops.ones_like(l2sum))
    norm = ops.where(pred, ops.sqrt(safe), l2sum)
    return ops.divide(ops.multiply(g, clip), ops.maximum(norm, clip))


def _clip_by_global_norm(grads, clip):
    total = None
    for g in grads:
        s = ops.sum(ops.square(g))
        total = s if total is None else ops.add(total, s)
    norm = ops.sqrt(total)
    scale = ops.multiply(clip, ops.minimum(ops.divide(1.0, norm), 1.0 / clip))
    return [ops.multiply(g, scale) for g in grads]


def _mod(x, n):
    """x mod n for a non-negative whole-number float32 scalar (exact: the quotient of a multiple of n is exact)."""
    return ops.subtract(x, ops.multiply(ops.floor(ops.divide(x, float(n))), float(n)))


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _check_accumulation_and_ema(owner, steps, use_ema, momentum, frequency):
    """Keras 3's checks of these arguments, stricter where Keras lets a meaningless value through (0 or 2.5 steps)."""
    if steps is not None and (not _is_int(steps) or steps < 2):
        raise ConfigError(f"{owner}: gradient_accumulation_steps must be an integer >= 2 (or None to update every "
                          f"step), got {steps!r}.")
    if not (isinstance(use_ema, (bool, np.bool_)) or (_is_int(use_ema) and use_ema in (0, 1))):
        raise ConfigError(f"{owner}: use_ema must be True or False, got {use_ema!r}.")
    if use_ema:
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float, np.number)) \
                or not 0 <= momentum <= 1:
            raise ConfigError(f"{owner}: ema_momentum must be a number in [0, 1], got {momentum!r}.")
        if frequency is not None and (not _is_int(frequency) or frequency < 1):
            raise ConfigError(f"{owner}: ema_overwrite_frequency must be an integer >= 1 or None, got "
                              f"{frequency!r}.")


# -- optimizers ----------------------------------------------------------------------------------------------------------
class Optimizer:
    """Base: learning rate (float or schedule), iterations, clipping, decoupled weight decay."""

    slot_names: tuple = ()
    global_slots: dict = {}  # name -> initial value (one scalar per optimizer, e.g. Nadam's u_product)
    # Whether update_step reads an embedding's per-lookup row statistics (`_square`, `_abs`) when it is given them.
    row_statistics = False

    def __init__(self, learning_rate=0.001, weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None, **kwargs):
        kwargs.pop("decay", None)
        kwargs.pop("jit_compile", None)
        kwargs.pop("is_legacy_optimizer", None)
        if kwargs:
            raise ConfigError(f"{type(self).__name__} got unexpected argument(s): {', '.join(sorted(kwargs))}.")
        if sum(v is not None for v in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ConfigError(f"{type(self).__name__}: only one of clipnorm, clipvalue and global_clipnorm can be "
                              f"set.")
        _check_accumulation_and_ema(type(self).__name__, gradient_accumulation_steps, use_ema, ema_momentum,
                                    ema_overwrite_frequency)
        from core.backend import snake_case

        self.name = name or snake_case(type(self).__name__)
        self.weight_decay = weight_decay
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue
        self.global_clipnorm = global_clipnorm
        self.use_ema = use_ema
        self.ema_momentum = ema_momentum
        self.ema_overwrite_frequency = ema_overwrite_frequency
        self.loss_scale_factor = loss_scale_factor
        self.gradient_accumulation_steps = gradient_accumulation_steps
        self._learning_rate = self._check_lr(learning_rate)
        self._iterations = 0  # steps run (Keras's `_iterations`); `iterations` counts updates
        self._slots: dict[int, dict[str, np.ndarray]] = {}
        self._globals: dict[str, float] = dict(self.global_slots)
        self._slot_order: list = []  # variables in the order their slots were made (for get_weights)

    # learning rate
    @staticmethod
    def _check_lr(lr):
        if isinstance(lr, dict):
            lr = get_object(lr, _SCHEDULES, "learning rate schedule")
        if isinstance(lr, LearningRateSchedule) or callable(lr):
            return lr
        try:
            value = float(lr)
        except (TypeError, ValueError):
            raise ConfigError(f"learning_rate must be a number or a schedule, got {lr!r}.") from None
        if not math.isfinite(value) or value < 0:
            raise ConfigError(f"learning_rate must be a non-negative number, got {lr!r}.")
        return value

    @property
    def iterations(self) -> int:
        """Updates applied so far: the steps run, divided by `gradient_accumulation_steps` when it is set (Keras
        3's `iterations`; the step count itself is `get_weights()[0]`, as Keras saves it)."""
        n = self.gradient_accumulation_steps
        return self._iterations // n if n else self._iterations

    @iterations.setter
    def iterations(self, value):
        self._iterations = int(value) * (self.gradient_accumulation_steps or 1)

    @property
    def learning_rate(self) -> float:
        """The current learning rate: the schedule at the current step, or the constant. A schedule counts steps,
        not accumulated updates (Keras 3 evaluates it at `_iterations`)."""
        lr = self._learning_rate
        if isinstance(lr, LearningRateSchedule) or callable(lr):
            return float(lr(self._iterations))
        return float(np.float32(lr))

    @learning_rate.setter
    def learning_rate(self, value):
        self._learning_rate = self._check_lr(value)

    lr = learning_rate

    # slots
    @property
    def state_slot_names(self) -> tuple:
        """Every per-weight slot in Keras 3's order: the EMA average and the gradient accumulator (made by the base
        optimizer's `build`, both starting at zero), then the update rule's own `slot_names`."""
        return (("average",) if self.use_ema else ()) + \
            (("gradient_accumulator",) if self.gradient_accumulation_steps else ()) + tuple(self.slot_names)

    def slot_initial(self, name: str, value: np.ndarray) -> np.ndarray:
        return np.zeros_like(value)

    def slots_for(self, var) -> dict[str, np.ndarray]:
        hit = self._slots.get(id(var))
        if hit is None:
            value = np.asarray(var.numpy())
            hit = {n: self.slot_initial(n, value) if n in self.slot_names else np.zeros_like(value)
                   for n in self.state_slot_names}
            self._slots[id(var)] = hit
            self._slot_order.append(var)
        return hit

    def build(self, var_list):
        for v in var_list:
            self.slots_for(v)

    @property
    def slot_variables(self) -> list:
        """The model variables that have slots, in the order `get_weights` lists their slots."""
        return list(self._slot_order)

    @property
    def variables(self) -> list[np.ndarray]:
        out = [np.array(self._iterations, dtype=np.int64)]
        names = self.state_slot_names
        for v in self._slot_order:
            out.extend(self._slots[id(v)][n] for n in names)
        out.extend(np.array(self._globals[k], dtype=np.float32) for k in sorted(self._globals))
        return out

    def get_weights(self):
        return [np.array(v) for v in self.variables]

    def set_weights(self, weights):
        weights = list(weights)
        expect = len(self.variables)
        if len(weights) != expect:
            raise ConfigError(f"{type(self).__name__} has {expect} state arrays, got {len(weights)}.")
        self._iterations = int(np.asarray(weights[0]))
        i = 1
        for v in self._slot_order:
            for n in self.state_slot_names:
                self._slots[id(v)][n] = np.array(weights[i], dtype=self._slots[id(v)][n].dtype)
                i += 1
        for k in sorted(self._globals):
            self._globals[k] = float(np.asarray(weights[i]))
            i += 1

    def finalize_variable_values(self, var_list):
        """End of training (Keras's `fit` calls this after the last epoch): with `use_ema`, each weight takes its
        moving average."""
        if not self.use_ema:
            return
        for var in var_list:
            slots = self._slots.get(id(var))
            if slots is not None:
                var.assign(slots["average"])

    # the graph
    def apply(self, grads, params, slots, globals_, lr, iterations, clip=True, sparse=None):
        """Write one step into the graph, as Keras 3's `_backend_apply_gradients`. `params`, `grads`: weight tensors
        and their gradients; `slots`: per parameter a dict of tensors for `state_slot_names`; `globals_`: dict of
        global slot tensors; `lr`, `iterations`: scalar tensors (float32; `iterations` counts the steps already
        run, Keras's `_iterations`). Returns (new params, new slots, new globals).

        With gradient accumulation every step adds its gradient to the accumulators, and each
        `gradient_accumulation_steps`-th step instead updates with the mean of the accumulated gradients (clipped and
        with weight decay then) and clears them; the update rule and the EMA see the count of updates. With EMA,
        every step moves the averages towards the weights (the first update copies them) and every
        `ema_overwrite_frequency`-th update the weights take the averages."""
        n = self.gradient_accumulation_steps
        count = iterations
        if n:
            is_update = ops.equal(_mod(ops.add(iterations, 1.0), n), 0.0)
            count = ops.floor(ops.divide(iterations, float(n)))
            raw = grads
            grads = [ops.divide(ops.add(g, s["gradient_accumulator"]), float(n)) for g, s in zip(grads, slots)]
            sparse = None  # the sum of a sparse and a dense gradient is dense
        new_params, new_slots, new_globals = self._update(grads, params, slots, globals_, lr, count, clip, sparse)
        if n:
            new_params = [ops.where(is_update, new, p) for new, p in zip(new_params, params)]
            new_slots = [{k: ops.where(is_update, v, s[k]) for k, v in ns.items()} for ns, s in zip(new_slots, slots)]
            new_globals = {k: ops.where(is_update, v, globals_[k]) for k, v in new_globals.items()}
            for ns, s, g in zip(new_slots, slots, raw):
                acc = s["gradient_accumulator"]
                ns["gradient_accumulator"] = ops.where(is_update, ops.zeros_like(acc), ops.add(acc, g))
        if self.use_ema:
            first = ops.cast(ops.not_equal(count, 0.0), "float32")
            momentum = ops.multiply(first, float(self.ema_momentum))
            keep = ops.subtract(1.0, momentum)
            overwrite = None
            if self.ema_overwrite_frequency:
                overwrite = ops.equal(_mod(ops.add(count, 1.0), self.ema_overwrite_frequency), 0.0)
            for k, (p, s) in enumerate(zip(new_params, slots)):
                average = ops.add(ops.multiply(ops.cast(momentum, p.dtype), s["average"]),
                                  ops.multiply(ops.cast(keep, p.dtype), p))
                new_slots[k]["average"] = average
                if overwrite is not None:
                    new_params[k] = ops.where(overwrite, average, p)
        return new_params, new_slots, new_globals

    def _update(self, grads, params, slots, globals_, lr, iterations, clip, sparse):
        """Clipping, weight decay and the update rule (`iterations`: the updates already applied)."""
        if clip and self.clips:
            grads = self.clip(grads)
            sparse = None
        sparse = sparse or [None] * len(grads)
        new_globals = self.update_globals(globals_, iterations)
        new_params, new_slots = [], []
        for g, p, s, sp in zip(grads, params, slots, sparse):
            if self.weight_decay:
                p = ops.subtract(p, ops.multiply(p, ops.multiply(lr, float(self.weight_decay))))
            np_, ns = self.update_step(g, p, s, lr, iterations, new_globals, sp)
            new_params.append(np_)
            new_slots.append(ns)
        return new_params, new_slots, new_globals

    @property
    def reads_lookup_rows(self) -> bool:
        """Whether the step graph hands this optimizer an embedding's per-lookup rows (`_update`: clipping and
        gradient accumulation make the gradient dense)."""
        return self.row_statistics and not self.clips and not self.gradient_accumulation_steps

    @property
    def clips(self) -> bool:
        return self.clipnorm is not None or self.clipvalue is not None or self.global_clipnorm is not None

    def clip(self, grads):
        """Keras 3's gradient clipping (clipnorm per weight, global_clipnorm over all, clipvalue elementwise)."""
        if self.clipnorm is not None:
            return [_clip_by_norm(g, float(self.clipnorm)) for g in grads]
        if self.global_clipnorm is not None:
            return _clip_by_global_norm(grads, float(self.global_clipnorm))
        if self.clipvalue is not None:
            v = float(self.clipvalue)
            return [ops.clip(g, -v, v) for g in grads]
        return grads

    def update_globals(self, globals_, iterations):
        return dict(globals_)

    def update_step(self, grad, var, slots, lr, iterations, globals_, sparse=None):
        raise NotImplementedError

    def get_config(self):
        lr = self._learning_rate
        if isinstance(lr, LearningRateSchedule):
            lr = {"module": "keras.optimizers.schedules", "class_name": type(lr).__name__, "config": lr.get_config(),
                  "registered_name": None}
        return {"name": self.name, "learning_rate": lr, "weight_decay": self.weight_decay,
                "clipnorm": self.clipnorm, "global_clipnorm": self.global_clipnorm, "clipvalue": self.clipvalue,
                "use_ema": self.use_ema, "ema_momentum": self.ema_momentum,
                "ema_overwrite_frequency": self.ema_overwrite_frequency, "loss_scale_factor": self.loss_scale_factor,
                "gradient_accumulation_steps": self.gradient_accumulation_steps}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _square(grad, sparse):
    """The squared gradient. For an embedding Keras (TensorFlow backend) gets a sparse gradient and squares each
    looked-up row's gradient before summing repeated ids; `sparse["square"]` carries that sum when it applies."""
    return sparse["square"] if sparse else ops.square(grad)


def _abs(grad, sparse):
    """|gradient|, summed per looked-up row for an embedding's sparse gradient (as `_square`)."""
    return sparse["abs"] if sparse else ops.abs(grad)


class SGD(Optimizer):
    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, name="SGD", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if not 0 <= momentum <= 1:
            raise ConfigError(f"SGD: momentum must be in [0, 1], got {momentum}.")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.slot_names = ("momentum",) if self.momentum else ()

    def update_step(self, grad, var, slots, lr, iterations, globals_, sparse=None):
        if not self.momentum:
            return ops.subtract(var, ops.multiply(grad, lr)), {}
        m = ops.subtract(ops.multiply(slots["momentum"], self.momentum), ops.multiply(grad, lr))
        if self.nesterov:
            new = ops.subtract(ops.add(var, ops.multiply(m, self.momentum)), ops.multiply(grad, lr))
        else:
            new = ops.add(var, m)
        return new, {"momentum": m}

    def get_config(self):
        c = super().get_config()
        c.update(momentum=self.momentum, nesterov=self.nesterov)
        return c


class Adam(Optimizer):
    row_statistics = True

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, name="adam",
                 **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1, self.beta_2, self.epsilon, self.amsgrad = beta_1, beta_2, epsilon, bool(amsgrad)
        self.slot_names = ("momentum", "velocity") + (("velocity_hat",) if self.amsgrad else ())

    def update_step(self, grad, var, slots, lr, iterations, globals_, sparse=None):
        t = ops.add(iterations, 1.0)
        b1p = ops.power(np.float32(self.beta_1), t)
        b2p = ops.power(np.float32(self.beta_2), t)
        alpha = ops.divide(ops.multiply(lr, ops.sqrt(ops.subtract(1.0, b2p))), ops.subtract(1.0, b1p))
        m = ops.add(slots["momentum"], ops.multiply(ops.subtract(grad, slots["momentum"]), 1.0 - self.beta_1))
        v = ops.add(slots["velocity"],
                    ops.multiply(ops.subtract(_square(grad, sparse), slots["velocity"]), 1.0 - self.beta_2))
        new_slots = {"momentum": m, "velocity": v}
        if self.amsgrad:
            v = ops.maximum(slots["velocity_hat"], v)
            new_slots["velocity_hat"] = v
        new = ops.subtract(var, ops.divide(ops.multiply(m, alpha), ops.add(ops.sqrt(v), float(self.epsilon))))
        return new, new_slots

    def get_config(self):
        c = super().get_config()
        c.update(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon, amsgrad=self.amsgrad)
        return c


class AdamW(Adam):
    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, name="adamw", **kwargs):
        if weight_decay is None:
            raise ConfigError("AdamW: weight_decay must be a number.")
        super().__init__(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                         amsgrad=amsgrad, name=name, weight_decay=weight_decay, **kwargs)


class RMSprop(Optimizer):
    row_statistics = True

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False, name="rmsprop",
                 **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.rho, self.momentum, self.epsilon, self.centered = rho, momentum, epsilon, bool(centered)
        self.slot_names = ("velocity",) + (("momentum",) if momentum > 0 else ()) + \
            (("average_gradient",) if self.centered else ())

    def update_step(self, grad, var, slots, lr, iterations, globals_, sparse=None):
        rho = self.rho
        v = ops.add(ops.multiply(slots["velocity"], rho), ops.multiply(_square(grad, sparse), 1.0 - rho))
        new_slots = {"velocity": v}
        if self.centered:
            avg = ops.add(ops.multiply(slots["average_gradient"], rho), ops.multiply(grad, 1.0 - rho))
            new_slots["average_gradient"] = avg
            denominator = ops.add(ops.subtract(v, ops.square(avg)), float(self.epsilon))
        else:
            denominator = ops.add(v, float(self.epsilon))
        increment = ops.divide(ops.multiply(grad, lr), ops.sqrt(denominator))
        if self.momentum > 0:
            m = ops.add(ops.multiply(slots["momentum"], self.momentum), increment)
            new_slots["momentum"] = m
            return ops.subtract(var, m), new_slots
        return ops.subtract(var, increment), new_slots

    def get_config(self):
        c = super().get_config()
        c.update(rho=self.rho, momentum=self.momentum, epsilon=self.epsilon, centered=self.centered)
        return c


class Adagrad(Optimizer):
    slot_names = ("accumulator",)
    row_statistics = True

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, name="adagrad", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.initial_accumulator_value, self.epsilon = initial_accumulator_value, epsilon

    def slot_initial(self, name, value):
        return np.full_like(value, self.initial_accumulator_value)

    def update_step(self, grad, var, slots, lr, iterations, globals_, sparse=None):
        acc = ops.add(slots["accumulator"], _square(grad, sparse))
        new = ops.subtract(var, ops.divide(ops.multiply(lr, grad), ops.sqrt(ops.add(acc, float(self.epsilon)))))
        return new, {"accumulator": acc}

    def get_config(self):
        c = super().get_config()
        c.update(initial_accumulator_value=self.initial_accumulator_value, epsilon=self.epsilon)
        return c


class Adadelta(Optimizer):
    slot_names = ("accumulated_grad", "accumulated_delta_var")
    row_statistics = True

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-7, name="adadelta", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.rho, self.epsilon = rho, epsilon

    def update_step(self, grad, var, slots, lr, iterations, globals_, sparse=None):
        rho, eps = self.rho, float(self.epsilon)
        acc_g = ops.add(ops.multiply(slots["accumulated_grad"], rho), ops.multiply(_square(grad, sparse), 1.0 - rho))

        def rms(x):
            return ops.sqrt(ops.add(x, eps))

        scale = ops.divide(ops.negative(rms(slots["accumulated_delta_var"])), rms(acc_g))
        delta = ops.multiply(scale, grad)
        # delta is grad times a per-entry factor, so its square is the factor squared times grad's square (which a
        # sparse embedding gradient sums per lookup, as Keras squares it).
        delta_sq = ops.multiply(ops.square(scale), _square(grad, sparse)) if sparse else ops.square(delta)
        acc_d = ops.add(ops.multiply(slots["accumulated_delta_var"], rho), ops.multiply(delta_sq, 1.0 - rho))
        return ops.add(var, ops.multiply(lr, delta)), {"accumulated_grad": acc_g, "accumulated_delta_var": acc_d}

    def get_config(self):
        c = super().get_config()
        c.update(rho=self.rho, epsilon=self.epsilon)
        return c


class Adamax(Optimizer):
    slot_names = ("m", "norm")
    row_statistics = True

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, name="adamax", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    def update_step(self, grad, var, slots, lr, iterations, globals_, sparse=None):
        t = ops.add(iterations, 1.0)
        b1p = ops.power(np.float32(self.beta_1), t)
        m = ops.add(slots["m"], ops.multiply(ops.subtract(grad, slots["m"]), 1.0 - self.beta_1))
        u = ops.maximum(ops.multiply(slots["norm"], self.beta_2), _abs(grad, sparse))
        step = ops.divide(ops.multiply(lr, m), ops.multiply(ops.subtract(1.0, b1p), ops.add(u, float(self.epsilon))))
        return ops.subtract(var, step), {"m": m, "norm": u}

    def get_config(self):
        c = super().get_config()
        c.update(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon)
        return c


class Nadam(Optimizer):
    slot_names = ("momentum", "velocity")
    global_slots = {"u_product": 1.0}
    row_statistics = True

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, name="nadam", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    def update_globals(self, globals_, iterations):
        t = ops.add(iterations, 1.0)
        u = ops.multiply(globals_["u_product"],
                         ops.multiply(self.beta_1, ops.subtract(1.0, ops.multiply(0.5, ops.power(np.float32(0.96), t)))))
        return {"u_product": u}

    def update_step(self, grad, var, slots, lr, iterations, globals_, sparse=None):
        t = ops.add(iterations, 1.0)
        t1 = ops.add(iterations, 2.0)
        b1 = self.beta_1
        u_t = ops.multiply(b1, ops.subtract(1.0, ops.multiply(0.5, ops.power(np.float32(0.96), t))))
        u_t1 = ops.multiply(b1, ops.subtract(1.0, ops.multiply(0.5, ops.power(np.float32(0.96), t1))))
        u_prod = globals_["u_product"]
        u_prod1 = ops.multiply(u_prod, u_t1)
        b2p = ops.power(np.float32(self.beta_2), t)
        m = ops.add(slots["momentum"], ops.multiply(ops.subtract(grad, slots["momentum"]), 1.0 - b1))
        v = ops.add(slots["velocity"], ops.multiply(ops.subtract(_square(grad, sparse), slots["velocity"]), 1.0 - self.beta_2))
        m_hat = ops.add(ops.divide(ops.multiply(u_t1, m), ops.subtract(1.0, u_prod1)),
                        ops.divide(ops.multiply(ops.subtract(1.0, u_t), grad), ops.subtract(1.0, u_prod)))
        v_hat = ops.divide(v, ops.subtract(1.0, b2p))
        new = ops.subtract(var, ops.divide(ops.multiply(m_hat, lr), ops.add(ops.sqrt(v_hat), float(self.epsilon))))
        return new, {"momentum": m, "velocity": v}

    def get_config(self):
        c = super().get_config()
        c.update(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon)
        return c


_CLASSES = {c.__name__: c for c in (SGD, Adam, AdamW, RMSprop, Adagrad, Adadelta, Adamax, Nadam)}
_ALIASES = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop", "adagrad": "Adagrad",
            "adadelta": "Adadelta", "adamax": "Adamax", "nadam": "Nadam"}


def get(identifier):
    """An optimizer from a name ('adam'), a config dict (Keras 3 or tf.keras 2) or an instance."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        key = _ALIASES.get(identifier.lower(), identifier)
        if key not in _CLASSES:
            raise ConfigError(f"Unknown optimizer '{identifier}'. Known: {', '.join(sorted(_ALIASES))}.")
        return _CLASSES[key]()
    if isinstance(identifier, dict):
        return get_object(identifier, _CLASSES, "optimizer", aliases=_ALIASES)
    if isinstance(identifier, type) and issubclass(identifier, Optimizer):
        return identifier()
    raise ConfigError(f"Cannot interpret {identifier!r} as an optimizer.")


def names() -> list[str]:
    """The names `get` takes ('adam', 'sgd', ...)."""
    return sorted(_ALIASES)


def serialize(optimizer):
    return {"module": "keras.optimizers", "class_name": type(optimizer).__name__, "config": optimizer.get_config(),
            "registered_name": None}


def deserialize(config):
    return get(config)
