"""`compile`, `fit`, `evaluate`: the Keras training API, mixed into `Model`.

`compile` records the optimizer, losses and metrics. `fit` checks the data against the model before the first step,
builds the training step as one ONNX graph (`step_graph`), and runs it batch by batch with the state in ping-pong
buffers (`session`); the weights return to the model's Variables at each epoch end and when training stops. Losses
and metrics are accumulated on the host from the few numbers each step returns, as Keras 3 accumulates them: the
epoch loss is the mean of the batch losses (regularization included) weighted by the batch sizes.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from core import runtime
from core.errors import ConfigError, InputDataError
from core.training.data import ArraySource, PreparedArrays, PreparedBatch, _as_arrays, make_source
from core.training.step_graph import OutputTarget, build_step
from core.training.targets import check_targets, prepare_targets, sample_weights


def _resolve_device(device) -> str:
    """'cpu' or 'cuda' for the state buffers: CUDA only where a session can really start there (probed once); an
    explicit 'cuda' that cannot start falls back to the CPU with the runtime's visible warning."""
    device = runtime.check_device(device)
    if device == "cpu":
        return "cpu"
    if runtime.cuda_usable():
        return "cuda"
    if device == "cuda":
        warnings.warn("CUDA was requested but could not be started (no usable GPU or CUDA libraries); training on "
                      "the CPU instead.", RuntimeWarning, stacklevel=3)
    return "cpu"


def _unique(objects) -> list:
    """The objects in order of first appearance, each once (by identity)."""
    out = []
    for o in objects:
        if all(o is not p for p in out):
            out.append(o)
    return out


def _flat_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


class _Compiled:
    """What compile() was given, resolved per output once the model's outputs are known."""

    def __init__(self, optimizer, loss, loss_weights, metrics, weighted_metrics):
        self.optimizer = optimizer
        self.loss = loss
        self.loss_weights = loss_weights
        self.metrics = metrics
        self.weighted_metrics = weighted_metrics


class TrainerMixin:
    """Mixed into `Model`; holds the compiled training configuration and the ONNX Runtime training session."""

    optimizer = None
    stop_training = False
    history = None
    _compiled = None
    _train_state = None

    # -- compile -----------------------------------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None, weighted_metrics=None,
                run_eagerly=False, steps_per_execution=1, jit_compile="auto", auto_scale_loss=True, **kwargs):
        from core import optimizers

        unknown = set(kwargs) - {"sample_weight_mode", "target_tensors", "distribute", "experimental_run_tf_function"}
        if unknown:
            raise ConfigError(f"compile() got unexpected argument(s): {', '.join(sorted(unknown))}.")
        self.optimizer = optimizers.get(optimizer)
        if metrics is not None and not isinstance(metrics, (list, tuple, dict)):
            raise ConfigError(f"compile(metrics=...) must be a list or a dict, got {type(metrics).__name__}.")
        if weighted_metrics is not None and not isinstance(weighted_metrics, (list, tuple, dict)):
            raise ConfigError(f"compile(weighted_metrics=...) must be a list or a dict, got "
                              f"{type(weighted_metrics).__name__}.")
        self._compiled = _Compiled(self.optimizer, loss, loss_weights, metrics, weighted_metrics)
        # What file writers (training_config) and get_compile_config read back.
        self._compile_config = {"optimizer": optimizer, "loss": loss, "loss_weights": loss_weights,
                                "metrics": metrics, "weighted_metrics": weighted_metrics}
        self._train_state = None
        self.compiled_loss = loss
        self.loss = loss
        self.stop_training = False

    def get_compile_config(self):
        return dict(getattr(self, "_compile_config", None) or {})

    @property
    def metrics_names(self) -> list[str]:
        state = self._train_state
        if state is None:
            return ["loss"] if self._compiled else []
        return list(state["names"])

    @property
    def metrics(self) -> list:
        """The metrics the last fit or evaluate reported, in Keras's order: the loss tracker (and one per output's
        loss), the compiled metrics, then the metrics layers update in call. Before any run: the layers' metrics."""
        st = self._train_state
        trackers = getattr(self, "_last_trackers", None)
        if st is None or trackers is None:
            return super().metrics
        compiled = [m for t in st["targets"] for m in t.metrics] + \
            [m for t in st["targets"] for m in t.weighted_metrics]
        layer_metrics = [m for m in super().metrics if all(m is not o for o in st.get("layer_metrics", ()))]
        return list(trackers.values()) + compiled + list(st.get("layer_metrics", ())) + layer_metrics

    def _assert_compiled(self, what):
        if self._compiled is None:
            raise ConfigError(f"Model '{self.name}' must be compiled before {what}: call "
                              f"model.compile(optimizer, loss, metrics) first.")

    # -- resolving losses and metrics per output ------------------------------------------------------------------
    def _output_info(self, x_specs):
        """(name, dtype, shape) of each output for inputs of these specs. The step programs built for the same
        specs already know it: tracing the model again costs 5 ms a call, 2% of a 16-step LSTM epoch."""
        st = self._train_state
        if st is not None and st["x_specs"] == x_specs:
            return st["out_info"]
        g = self.inference_graph(x_specs)
        return [(t.name, t.dtype, t.shape) for t in g.outputs]

    def _per_output(self, value, names, what, allow_single=True):
        n = len(names)
        if isinstance(value, dict):
            unknown = set(value) - set(names)
            if unknown:
                raise ConfigError(f"compile({what}=...) names output(s) {sorted(unknown)} that model "
                                  f"'{self.name}' does not have (outputs: {names}).")
            return [value.get(nm) for nm in names]
        if isinstance(value, (list, tuple)) and n > 1 and what in ("loss", "loss_weights"):
            if len(value) != n:
                raise ConfigError(f"compile({what}=...) has {len(value)} entries but model '{self.name}' has {n} "
                                  f"outputs ({names}).")
            return list(value)
        return [value] * n

    def _targets(self, out_info, y_arrays):
        from core import losses, metrics

        c = self._compiled
        names = [nm for nm, _, _ in out_info]
        loss_per = self._per_output(c.loss, names, "loss")
        lw_per = self._per_output(c.loss_weights, names, "loss_weights") if c.loss_weights is not None \
            else [None] * len(names)
        multi = len(names) > 1

        def metric_lists(spec):
            if spec is None:
                return [[] for _ in names]
            if isinstance(spec, dict):
                per = self._per_output(spec, names, "metrics")
            elif multi and isinstance(spec, (list, tuple)) and len(spec) == len(names) and \
                    all(isinstance(m, (list, tuple)) or m is None for m in spec):
                per = list(spec)
            else:
                per = [spec] * len(names)
            return [[] if p is None else _flat_list(p) for p in per]

        metric_specs = metric_lists(c.metrics)
        weighted_specs = metric_lists(c.weighted_metrics)
        targets = []
        for i, (name, _, shape) in enumerate(out_info):
            y = y_arrays[i] if y_arrays is not None and i < len(y_arrays) else None
            yshape = y.shape if y is not None else shape
            loss = losses.get(loss_per[i]) if loss_per[i] is not None else None
            if loss_per[i] is not None and str(loss_per[i]).lower() in ("crossentropy", "ce"):
                raise ConfigError("loss='crossentropy' is ambiguous here; name the crossentropy you want.")
            ms = [metrics.resolve(m, yshape, shape) for m in metric_specs[i]]
            ws = [metrics.resolve(m, yshape, shape) for m in weighted_specs[i]]
            targets.append(OutputTarget(name, loss, lw_per[i], ms, ws))
        return targets

    def _result_names(self, targets, layer_metrics=()):
        """Log names as Keras 3 makes them: 'loss', '<output>_loss' for several outputs, then each metric's name
        (prefixed by its output's name when there are several); clashes get '_1', '_2', and a weighted metric that
        clashes becomes 'weighted_<name>'."""
        names = ["loss"]
        multi = len(targets) > 1
        if multi:
            names += [f"{t.name}_loss" for t in targets if t.loss is not None]
        counters: dict[str, int] = {}

        def unique(name):
            if name not in counters:
                counters[name] = 1
                return name
            index = counters[name]
            counters[name] += 1
            return f"{name}_{index}"

        for t in targets:
            for m in t.metrics:
                names.append(unique(f"{t.name}_{m.name}" if multi else m.name))
        for t in targets:
            for m in t.weighted_metrics:
                name = f"{t.name}_{m.name}" if multi else m.name
                if name in counters:
                    name = f"weighted_{m.name}"
                    if multi:
                        name = f"{t.name}_{name}"
                names.append(unique(name))
        # Then the metrics that layers update inside call, as Keras 3 lists them after the compiled ones.
        names += [unique(m.name) for m in layer_metrics]
        return names

    # -- data checks ----------------------------------------------------------------------------------------------
    def _prepare_x(self, x):
        arrays = self._prepare_inputs(x)
        specs = self._predict_specs(arrays)
        return self._check_inputs(arrays, specs), specs

    # -- the step program ------------------------------------------------------------------------------------------
    def _threads_for(self, batch_size, macs_per_sample=0.0):
        """One thread for small steps, where thread hand-offs cost more than they save: the seed MLP (0.2 million
        multiply-adds a step) runs 3x faster on one thread than on the default pool, the seed Conv1D text CNN (4
        million) 1.2-1.8x. The work is the weights' size or, where the forward pass reuses weights (a convolution at
        every position), its multiply-adds (`forward_macs`), whichever is larger. Larger steps get the pool, and
        their runner keeps measuring it against one thread (`session.ThreadChoice`)."""
        n_params = sum(int(np.prod(v.shape)) for v in self.trainable_weights)
        return 1 if max(n_params, macs_per_sample) * (batch_size or 32) < 10_000_000 else None

    def _ensure_program(self, x_specs, y_arrays, device, train=True, batch_size=None):
        """Build (or reuse) the training and evaluation step graphs and the state buffers for these data specs."""
        from core.training.session import StateBuffers, StepRunner

        out_info = self._output_info(x_specs)
        y_specs = [None if y is None else ("float32", (None,) + tuple(y.shape[1:])) for y in (y_arrays or [])]
        y_specs += [None] * (len(out_info) - len(y_specs))
        device = _resolve_device(device)
        key = (tuple((n, d, tuple(s)) for n, d, s in x_specs), tuple(y_specs), device, id(self.optimizer))
        st = self._train_state
        if st is not None and st["key"] == key and (st["train"] is not None or not train):
            return st
        if st is not None:
            self._sync_to_host()
        targets = self._targets(out_info, y_arrays)
        st = {"key": key, "targets": targets, "out_info": out_info, "y_specs": y_specs,
              "names": self._result_names(targets), "x_specs": x_specs, "device": device,
              "vars": {id(v): v for v in self.weights}}
        opt = self.optimizer
        opt.build(self.trainable_weights)
        programs = [build_step(self, x_specs, y_specs, targets, optimizer=None, device=device)]
        if train:
            programs.append(build_step(self, x_specs, y_specs, targets, optimizer=opt, device=device))
        st["flat_layout"] = programs[-1].flat_layout
        st["layer_metrics"] = _unique(programs[-1].layer_metrics)
        st["names"] = self._result_names(targets, st["layer_metrics"])
        values = {}
        for program in programs:
            for slot in program.state:
                if slot.key not in values:
                    values[slot.key] = self._host_value(st, slot.key)
        st["buffers"] = StateBuffers(values, st["device"])
        st["versions"] = {i: v._version for i, v in st["vars"].items()}
        threads = self._threads_for(batch_size, programs[-1].macs_per_sample)
        st["eval"] = StepRunner(programs[0], st["buffers"], st["device"], threads)
        st["train"] = StepRunner(programs[1], st["buffers"], st["device"], threads,
                                 adaptive=threads is None and (os.cpu_count() or 1) > 1) if train else None
        self._train_state = st
        return st

    def _host_value(self, st, key):
        """The host's copy of a state value: a weight, an optimizer slot (per weight or packed flat), a global."""
        opt = self.optimizer
        if key[0] == "w":
            return np.asarray(st["vars"][key[1]].numpy())
        if key[0] == "s":
            return opt.slots_for(st["vars"][key[1]])[key[2]]
        if key[0] == "sf":
            return np.concatenate([opt.slots_for(st["vars"][i])[key[1]].reshape(-1) for i, _ in st["flat_layout"]])
        return np.array(opt._globals[key[1]], dtype=np.float32)

    def _sync_to_host(self):
        """Copy the current weights and optimizer state from the buffers into the Variables and the optimizer."""
        st = self._train_state
        if st is None:
            return
        buf = st["buffers"]
        opt = self.optimizer
        for key in buf.keys():
            kind = key[0]
            if kind == "w":
                var = st["vars"].get(key[1])
                value = buf.read(key)
                if not np.array_equal(value, var.numpy()):
                    var.assign(value)
            elif kind == "s":
                opt.slots_for(st["vars"][key[1]])[key[2]] = buf.read(key)
            elif kind == "sf":
                flat = buf.read(key)
                offset = 0
                for i, n in st["flat_layout"]:
                    var = st["vars"][i]
                    opt.slots_for(var)[key[1]] = flat[offset:offset + n].reshape(var.shape).copy()
                    offset += n
            elif kind == "g":
                opt._globals[key[1]] = float(buf.read(key))
        st["versions"] = {i: v._version for i, v in st["vars"].items()}
        self._invalidate()

    def _sync_from_host(self):
        """Weights changed outside training (set_weights, a callback restoring them): load them into the buffers."""
        st = self._train_state
        if st is None:
            return
        changed = False
        for i, v in st["vars"].items():
            if v._version != st["versions"].get(i):
                st["buffers"].write(("w", i), v.numpy())
                changed = True
        if changed:
            for r in (st["train"], st["eval"]):
                if r is not None:
                    r.rebind()
            st["versions"] = {i: v._version for i, v in st["vars"].items()}

    # -- running batches ---------------------------------------------------------------------------------------------
    def _prepare_arrays(self, st, source, class_weight, where):
        """Convert and check whole numpy data once (x, y, sample weights), so each step only slices."""
        if not isinstance(source, ArraySource):
            return source
        xs, specs = self._prepare_x(source.x)
        out_info = st["out_info"]
        ys = self._checked_targets(st, source.y, source.n, where)
        sws = sample_weights(source.sw, ys, class_weight, source.n, out_info)
        return PreparedArrays(xs, ys, sws, source.batch_size, source.shuffle)

    def _checked_targets(self, st, y, n, where):
        """Targets per output, checked against the outputs and losses (None per output when there are none)."""
        out_info = st["out_info"]
        if y is None:
            if any(t.loss is not None for t in st["targets"]):
                raise InputDataError(f"{where}: the data has no targets (y), but the model has a loss.")
            return [None] * len(out_info)
        return check_targets(prepare_targets(self.name, y, out_info), st["targets"], out_info, n, where)

    @staticmethod
    def _feeds(program, xs, ys, sws) -> dict:
        feeds = dict(zip(program.x_inputs, xs))
        for names, arrays in ((program.y_inputs, ys), (program.sw_inputs, sws)):
            feeds.update((name, arr) for name, arr in zip(names, arrays) if name is not None)
        return feeds

    def _batch_feeds(self, st, runner, batch, class_weight, where):
        p = runner.program
        if isinstance(batch, PreparedBatch):
            xs, ys, sws = batch
            return self._feeds(p, xs, ys, sws), xs[0].shape[0]
        x, y, sw = batch
        xs, specs = self._prepare_x(x)
        if [tuple(s) for _, _, s in specs] != [tuple(s) for _, _, s in st["x_specs"]]:
            raise InputDataError(f"{where}: a batch does not fit the model's inputs ({specs}).")
        n = xs[0].shape[0]
        if n == 0:
            raise InputDataError(f"{where}: got an empty batch.")
        ys = self._checked_targets(st, y, n, where)
        sws = sample_weights(sw, ys, class_weight, n, st["out_info"])
        return self._feeds(p, xs, ys, sws), n

    def _new_metrics(self, st):
        from core.metrics import Mean

        trackers = {"loss": Mean(name="loss")}
        for t in st["targets"]:
            if len(st["targets"]) > 1 and t.loss is not None:
                trackers[f"{t.name}_loss"] = Mean(name=f"{t.name}_loss")
            for m in t.metrics + t.weighted_metrics:
                m.reset_state()
        for m in st.get("layer_metrics", ()):
            m.reset_state()
        self._last_trackers = trackers
        return trackers

    def _accumulate(self, st, program, trackers, results, n):
        stats: dict = {}
        updates: dict = {}
        for (kind, *rest), value in zip(program.results, results):
            if kind == "loss":
                trackers["loss"].add(float(value) * n, n)
            elif kind == "output_loss":
                t = st["targets"][rest[0]]
                # Keras (TensorFlow backend) weights these per-output trackers by the static batch size, which
                # is unknown in its traced step, so each batch counts once; the total loss is weighted by size.
                trackers[f"{t.name}_loss"].add(float(value), 1)
            elif kind == "layer_metric":
                updates.setdefault(rest[0], []).append(value)
            else:
                stats.setdefault(rest[0], []).append(value)
        for (i, j, weighted), vals in stats.items():
            t = st["targets"][i]
            (t.weighted_metrics if weighted else t.metrics)[j].merge(vals)
        for u, vals in updates.items():
            program.layer_metrics[u].merge(vals)

    def _logs(self, st, trackers):
        logs = {}
        names = iter(st["names"])
        logs[next(names)] = trackers["loss"].result()
        if len(st["targets"]) > 1:
            for t in st["targets"]:
                if t.loss is not None:
                    logs[next(names)] = trackers[f"{t.name}_loss"].result()
        for m in [m for t in st["targets"] for m in t.metrics] + \
                [m for t in st["targets"] for m in t.weighted_metrics] + list(st.get("layer_metrics", ())):
            r = m.result()
            logs[next(names)] = float(r) if np.ndim(r) == 0 else r
        return logs

    # -- fit -------------------------------------------------------------------------------------------------------
    def cancel_training(self):
        """Ask a running fit to stop after the current batch (the GUI's Stop button; thread-safe)."""
        self._cancel_requested = True

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, validation_batch_size=None, validation_freq=1,
            device=None, _finalize=True):
        from core.callbacks import CallbackList

        self._assert_compiled("fit")
        batch_size = self._check_batch_size(batch_size)
        if not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise InputDataError(f"epochs must be a non-negative integer, got {epochs!r}.")
        if steps_per_epoch is not None and (not isinstance(steps_per_epoch, (int, np.integer)) or steps_per_epoch <= 0):
            raise InputDataError(f"steps_per_epoch must be a positive integer, got {steps_per_epoch!r}.")
        source = make_source(x, y, sample_weight, batch_size, shuffle, steps_per_epoch, "fit")
        val_source = None
        if validation_split:
            if not isinstance(source, ArraySource):
                raise InputDataError("validation_split is only supported for numpy array data; pass "
                                     "validation_data for datasets and generators.")
            source, val_source = source.split(float(validation_split))
        if validation_data is not None:
            val_source = self._validation_source(validation_data, validation_batch_size or batch_size,
                                                 validation_steps)

        # Check everything against the first batch before any step runs.
        if isinstance(source, ArraySource):
            first_x, first_y = source.x, source.y  # numpy data is checked whole
        else:
            first_x, first_y, _ = self._peek(source)
        xs, x_specs = self._prepare_x(first_x)
        out_info = self._output_info(x_specs)
        ys = prepare_targets(self.name, first_y, out_info) if first_y is not None else None
        if ys is None and self._compiled.loss is not None:
            raise InputDataError("fit: no targets (y) were given, but the model has a loss.")
        targets = self._targets(out_info, [None if a is None else _as_arrays(a, "y") for a in ys] if ys else None)
        ys_checked = check_targets(ys, targets, out_info, xs[0].shape[0], "fit") if ys else None
        st = self._ensure_program(x_specs, ys_checked, device, train=True, batch_size=batch_size)
        self._sync_from_host()
        runner = st["train"]
        if isinstance(source, ArraySource):
            source = self._prepare_arrays(st, source, class_weight, "fit")
        if isinstance(val_source, ArraySource):
            val_source = self._prepare_arrays(st, val_source, None, "validation")

        steps = steps_per_epoch or (len(source) or None)
        verbose = 1 if verbose == "auto" else int(verbose)
        cbs = CallbackList(callbacks, model=self, add_history=True, add_progbar=verbose > 0,
                           epochs=epochs, steps=steps, verbose=verbose)
        self.stop_training = False
        self._cancel_requested = False
        self._training_interrupted = False
        self._initial_epoch = int(initial_epoch)
        self._nan_reported = False
        cbs.on_train_begin()
        self._sync_from_host()
        self._sync_optimizer_from_host(st)
        epoch = self._initial_epoch
        logs = {}
        interrupted = False  # by KeyboardInterrupt: Keras's fit would not reach its end (no finalize)
        try:
            while epoch < epochs and not self.stop_training:
                trackers = self._new_metrics(st)
                cbs.on_epoch_begin(epoch)
                self._sync_from_host()
                completed = self._run_epoch(st, runner, source, epoch, steps_per_epoch, class_weight, trackers,
                                            cbs)
                if not completed:
                    break
                self._sync_to_host()
                logs = self._logs(st, trackers)
                if val_source is not None and (epoch + 1) % validation_freq == 0:
                    val_logs = self._run_evaluation(st, val_source, validation_steps, cbs)
                    logs.update({f"val_{k}": v for k, v in val_logs.items()})
                cbs.on_epoch_end(epoch, logs)
                self._sync_from_host()
                epoch += 1
        except KeyboardInterrupt:
            self._training_interrupted = interrupted = True
            warnings.warn(f"Training of '{self.name}' was interrupted; the weights are those of the last completed "
                          f"step and the history holds the finished epochs.", RuntimeWarning, stacklevel=2)
        finally:
            self._sync_to_host()
        if _finalize and epochs > 0 and not interrupted and self.optimizer._iterations > 0:
            # As Keras's fit, before on_train_end: with use_ema the weights become their moving averages.
            trained = {s.key[1] for s in runner.program.state if s.key[0] == "w" and s.output_name}
            self.optimizer.finalize_variable_values([v for v in self.trainable_weights if id(v) in trained])
        cbs.on_train_end(logs)
        self._sync_from_host()
        return cbs.history

    def _sync_optimizer_from_host(self, st):
        """Optimizer state set between fits (BackupAndRestore, set_weights) goes into the buffers."""
        buf = st["buffers"]
        changed = False
        for key in list(buf.keys()):
            if key[0] in ("s", "sf", "g"):
                host = np.asarray(self._host_value(st, key))
                if not np.array_equal(host, buf.read(key)):
                    buf.write(key, host)
                    changed = True
        if changed:
            for r in (st["train"], st["eval"]):
                if r is not None:
                    r.rebind()

    def _peek(self, source):
        """The first batch (re-used as the first step of the first epoch, so generators lose nothing)."""
        it = source.batches(0)
        try:
            first = next(it)
        except StopIteration:
            raise InputDataError("No data: the dataset or generator is empty.") from None
        source._peeked = (first, it)
        return first

    @staticmethod
    def _batches(source, epoch, steps):
        """The source's batches for this epoch, starting with the batch `_peek` took if it is still pending."""
        peeked = getattr(source, "_peeked", None)
        if peeked is None:
            yield from source.batches(epoch, steps)
            return
        source._peeked = None
        first, rest = peeked
        yield first
        yield from rest

    def _run_epoch(self, st, runner, source, epoch, steps_per_epoch, class_weight, trackers, cbs):
        batches = self._batches(source, epoch, steps_per_epoch)
        opt = self.optimizer
        program = runner.program
        step = -1
        for step, batch in enumerate(batches):
            if steps_per_epoch is not None and step >= steps_per_epoch:
                break
            cbs.on_train_batch_begin(step)
            feeds, n = self._batch_feeds(st, runner, batch, class_weight, "fit")
            feeds[program.lr_input] = np.array(opt.learning_rate, dtype=np.float32)
            feeds[program.iterations_input] = np.array(opt._iterations, dtype=np.float32)
            results = runner.run(feeds)
            opt._iterations += 1
            loss = float(results[0])
            if not np.isfinite(loss) and not self._nan_reported:
                self._nan_reported = True
                warnings.warn(f"Epoch {epoch + 1}, batch {step}: the loss is {loss} (NaN or infinite). Lower the "
                              f"learning rate, clip gradients, or check the data.", RuntimeWarning, stacklevel=3)
            self._accumulate(st, program, trackers, results, n)
            cbs.on_train_batch_end(step, self._logs(st, trackers))
            if getattr(self, "_cancel_requested", False):
                self._training_interrupted = True
                return False
            if self.stop_training:
                break
        if step < 0:
            warnings.warn(f"Epoch {epoch + 1}: the data ran out (no batches); stopping.", RuntimeWarning,
                          stacklevel=3)
            return False
        return True

    def _validation_source(self, validation_data, batch_size, steps):
        from core.data import Dataset
        from core.training.data import GeneratorSource, SequenceSource, is_batch_sequence, is_generator

        if is_batch_sequence(validation_data):
            return SequenceSource(validation_data)
        if isinstance(validation_data, Dataset):
            return make_source(validation_data, None, None, batch_size, False, steps, "validation")
        if is_generator(validation_data):
            return GeneratorSource(validation_data, steps)
        if isinstance(validation_data, (tuple, list)) and len(validation_data) in (2, 3):
            vx, vy = validation_data[0], validation_data[1]
            vsw = validation_data[2] if len(validation_data) == 3 else None
            return ArraySource(vx, vy, vsw, batch_size, False)
        raise InputDataError("validation_data must be (x, y), (x, y, sample_weight), a Dataset, a keras.utils.Sequence or a generator.")

    @staticmethod
    def _check_batch_size(batch_size):
        if batch_size is None:
            return 32
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
            raise InputDataError(f"batch_size must be a positive integer, got {batch_size!r}.")
        return int(batch_size)

    # -- evaluate --------------------------------------------------------------------------------------------------
    def _run_evaluation(self, st, source, steps, cbs):
        runner = st["eval"]
        trackers = self._new_metrics(st)
        if cbs is not None:
            cbs.on_test_begin()
        count = 0
        for step, batch in enumerate(self._batches(source, 0, steps)):
            if steps is not None and step >= steps:
                break
            if cbs is not None:
                cbs.on_test_batch_begin(step)
            feeds, n = self._batch_feeds(st, runner, batch, None, "evaluate")
            results = runner.run(feeds)
            self._accumulate(st, runner.program, trackers, results, n)
            count += 1
            if cbs is not None:
                cbs.on_test_batch_end(step, self._logs(st, trackers))
        if count == 0:
            raise InputDataError("evaluate got no data.")
        logs = self._logs(st, trackers)
        if cbs is not None:
            cbs.on_test_end(logs)
        return logs

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, return_dict=False, device=None, **kwargs):
        """Loss and metrics on the data, as Keras returns them: a scalar when there is only the loss, else a list
        in `metrics_names` order (a dict with return_dict=True)."""
        from core.callbacks import CallbackList, EvaluateProgbar

        self._assert_compiled("evaluate")
        batch_size = self._check_batch_size(batch_size)
        source = make_source(x, y, sample_weight, batch_size, False, steps, "evaluate")
        if isinstance(source, ArraySource):
            first_x, first_y = source.x, source.y
        else:
            first_x, first_y, _ = self._peek(source)
        xs, x_specs = self._prepare_x(first_x)
        out_info = self._output_info(x_specs)
        ys = prepare_targets(self.name, first_y, out_info) if first_y is not None else None
        targets = self._targets(out_info, ys)
        if ys is not None:
            ys = check_targets(ys, targets, out_info, xs[0].shape[0], "evaluate")
        elif self._compiled.loss is not None:
            raise InputDataError("evaluate: no targets (y) were given, but the model has a loss.")
        st = self._ensure_program(x_specs, ys, device, train=False, batch_size=batch_size)
        self._sync_from_host()
        if isinstance(source, ArraySource):
            source = self._prepare_arrays(st, source, None, "evaluate")
        verbose = 1 if verbose == "auto" else int(verbose)
        cbs = CallbackList(callbacks, model=self, steps=len(source) or None, verbose=verbose)
        if verbose:
            cbs.append(EvaluateProgbar(len(source) or None, verbose))
        logs = self._run_evaluation(st, source, steps, cbs)
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    # -- single batches ---------------------------------------------------------------------------------------------
    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        h = self.fit(x, y, batch_size=len(np.asarray(x if not isinstance(x, (list, dict)) else
                                                     (list(x.values()) if isinstance(x, dict) else x)[0])),
                     epochs=1, verbose=0, sample_weight=sample_weight, class_weight=class_weight, shuffle=False,
                     _finalize=False)  # Keras's train_on_batch runs one step; only fit finalizes
        logs = {k: v[-1] for k, v in h.history.items()}
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        n = len(np.asarray(x if not isinstance(x, (list, dict)) else
                           (list(x.values()) if isinstance(x, dict) else x)[0]))
        return self.evaluate(x, y, batch_size=n, sample_weight=sample_weight, verbose=0, return_dict=return_dict)

    def predict_on_batch(self, x):
        return self.predict(x, batch_size=None, verbose=0)

