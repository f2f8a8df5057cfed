"""`python main.py train MODEL`: train a project (or a compiled Keras file) headless, e.g. on a GPU server.

    python main.py train PROJECT.nwproj [--device auto|cpu|cuda] [--epochs N] [--batch-size N] [--dataset NAME]
                                        [--data FILE.npz] [--weights-out PATH] [--history-out PATH] [--adapt]
                                        [--quiet]
    python main.py train MODEL.h5|MODEL.keras --data FILE.npz [...]

A project brings its compile/fit settings (`training`) and its data (`datasets`, see `exporters.project`); a Keras
file brings its `training_config` and takes its arrays from `--data`, an `.npz` holding `x` and `y` (or `x0, x1, ...`
and `y0, y1, ...` for several inputs or outputs) and optionally `x_val`/`y_val` (`x_val0`, ...) as validation data.
`--data` also replaces a project's datasets.

Everything is checked before the first step: a bad input (a missing data file or array, data that does not fit the
model, no training settings, an unknown device, a preprocessing layer not adapted yet) prints one line naming the
problem, exits 2 and writes nothing. `--adapt` first adapts the project's preprocessing layers that are not adapted
yet on the training data, as the window's "Adapt on training data" does, and the project keeps what they learned.
After training the weights go to the project's sidecar file (the project then refers to it) or to `--weights-out`
(`.npz` in the project's sidecar layout, `.weights.h5`/`.h5` in Keras's), and the history (one row per finished
epoch, written by `CSVLogger`) to `--history-out` (default `<model>.history.csv` beside the model). A bundled example
is never modified: its weights and history go to the working directory (`<name>.weights.npz`). Ctrl-C stops
after the batch that is running, keeps the weights of that last completed step and the finished epochs' history,
writes both and exits 130; a second Ctrl-C interrupts the running batch itself (fit then keeps the weights of the
step before it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core import runtime
from core.callbacks import CSVLogger, History
from app.cli import UsageError, add_command
from exporters.datasets import LoadedData, load_dataset, npz_arrays
from exporters.paths import prepare_output
from exporters.project import give_ordinary_permissions

FIT_DEFAULTS = {"batch_size": 32, "epochs": 1, "validation_split": 0.0, "shuffle": True}  # for a Keras file
_KERAS_SUFFIXES = (".h5", ".hdf5", ".keras")


@dataclass
class TrainResult:
    model: object
    history: object
    weights_path: Path
    history_path: Path
    device: str
    interrupted: bool = False
    run: object = None  # the core.training_run.TrainingRun


# -- the model and its settings ---------------------------------------------------------------------------------------
def _overridden(training: dict, args) -> dict:
    settings = dict(training)
    if args.epochs is not None:
        settings["epochs"] = args.epochs
    if args.batch_size is not None:
        settings["batch_size"] = args.batch_size
    if args.device is not None:
        settings["device"] = args.device
    return settings


def _checked(settings: dict, where: str) -> dict:
    from core.errors import InputDataError
    from core.training_run import check_settings

    try:
        return check_settings(settings)
    except InputDataError as exc:
        raise UsageError(f"{where}: {exc}") from None


def _load_project_model(path: Path, args):
    from core.training_run import build_model
    from exporters import project

    doc = project.load_project(path)
    where = f"'{path.name}'"
    training = doc.training
    if not isinstance(training, dict) or not training.get("loss"):
        raise UsageError(f"{where} has no training settings: its 'training' object needs at least a 'loss' (and "
                         f"usually 'optimizer', 'metrics', 'epochs', 'batch_size').")
    settings = _checked(_overridden(training, args), where)
    if args.data:
        spec, data = None, npz_arrays(Path(args.data))
    else:
        refs = doc.datasets
        if not refs:
            raise UsageError(f"{where} has no dataset: add one to its 'datasets' list or pass --data FILE.npz.")
        chosen = [r for r in refs if isinstance(r, dict) and r.get("name") == args.dataset] if args.dataset \
            else refs[:1]
        if not chosen:
            raise UsageError(f"{where} has no dataset named '{args.dataset}' (it has: "
                             f"{', '.join(str(r.get('name')) for r in refs if isinstance(r, dict))}).")
        loaded = load_dataset(chosen[0], path.parent)
        spec, data = chosen[0], (loaded.x, loaded.y, loaded.validation)
    _adapt_or_refuse(doc, LoadedData(*data), getattr(args, "adapt", False), where)
    model = build_model(doc, settings)
    return doc, model, settings, spec, data


def _adapt_or_refuse(doc, data, adapt: bool, where: str) -> None:
    """Adapt the layers not adapted yet on the training data (`--adapt`), or name them and stop."""
    from app import adapting

    for nid in doc.topological_order():
        node = doc.nodes[nid]
        if not adapting.is_adaptable(node.class_name):
            continue
        reason = adapting.not_ready(doc, nid)
        if reason and not adapt:
            raise UsageError(f"{where}: {reason} Adapt it in the window (\"Adapt on training data\"), or pass "
                             f"--adapt to adapt the layers not adapted yet on the training data first.")
        if reason:
            adapted = adapting.adapt_node(doc, nid, data)
            adapted.command.do(doc)
            print(adapted.summary)


def _load_keras_model(path: Path, args):
    from app.cli import load_any_model

    model = load_any_model(path)
    loss = model.get_compile_config().get("loss")
    if not loss:
        raise UsageError(f"'{path.name}' has no training settings: it holds no training config (a model saved "
                         f"after compile() has one).")
    if not args.data:
        raise UsageError(f"'{path.name}' is a Keras file: pass the training arrays with --data FILE.npz "
                         f"(arrays 'x' and 'y').")
    settings = _checked(_overridden(dict(FIT_DEFAULTS, loss=loss), args), f"'{path.name}'")
    return None, model, settings, None, npz_arrays(Path(args.data))


def _check_counts(model, x, y, val, where: str) -> None:
    n_in, n_out = len(model.inputs), len(model.outputs)
    for xs, ys, what in [(x, y, where)] + ([(val[0], val[1], where + " (validation)")] if val else []):
        if len(xs) != n_in:
            raise UsageError(f"{what}: {len(xs)} x array(s) for model '{model.name}' with {n_in} input(s).")
        if len(ys) != n_out:
            raise UsageError(f"{what}: {len(ys)} y array(s) for model '{model.name}' with {n_out} output(s).")


def is_bundled_example(path: Path) -> bool:
    """A project shipped in resources/examples: training it never writes into the installation."""
    import resources

    examples = Path(resources.__file__).resolve().parent / "examples"
    return examples in Path(path).resolve().parents


def _default_outputs(path: Path, doc) -> tuple[Path, Path]:
    """(weights, history) paths: beside the model, or in the working directory for a bundled example."""
    folder = Path.cwd() if is_bundled_example(path) else path.parent
    if doc is not None:
        from exporters.project import weights_path_for

        weights = weights_path_for(folder / path.name)
    else:
        weights = folder / (path.stem + ".weights.h5")
    return weights, folder / (path.stem + ".history.csv")


def _check_weights_out(out: Path, doc) -> None:
    name = out.name.lower()
    if name.endswith(".npz") and doc is None:
        raise UsageError(f"--weights-out {out}: an .npz is a project's weights file; for a Keras model write "
                         f".weights.h5 or .h5.")
    if not (name.endswith(".npz") or name.endswith(".h5")):
        raise UsageError(f"--weights-out {out}: expected a .npz (project sidecar), .weights.h5 or .h5 file.")
    if out.is_dir():
        raise UsageError(f"--weights-out {out} is a folder.")


# -- Ctrl-C ---------------------------------------------------------------------------------------------------------
class _StopOnInterrupt:
    """The first Ctrl-C asks the run to stop after the running batch (so the weights are those of a completed step);
    a second one raises KeyboardInterrupt as usual."""

    def __init__(self, control):
        self.control = control
        self._previous = None

    @property
    def requested(self) -> bool:
        return self.control.stopped

    def __enter__(self):
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: Ctrl-C cannot reach us anyway
            self._previous = None
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum, frame):
        if self.control.stopped:
            raise KeyboardInterrupt
        self.control.stop()
        print("\ninterrupted: stopping after this batch (Ctrl-C again to interrupt the batch itself)",
              file=sys.stderr, flush=True)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"warning: {message}", file=sys.stderr, flush=True)


# -- the command ----------------------------------------------------------------------------------------------------
def train(model_path, *, device: str | None = None, epochs: int | None = None, batch_size: int | None = None,
          dataset: str | None = None, data=None, weights_out=None, history_out=None, verbose: int = 1,
          callbacks=(), adapt: bool = False) -> TrainResult:
    """Train a project or a compiled Keras file as `python main.py train` does; returns the trained model and the
    paths written. Raises UsageError (or a NetweaverError) on bad input, before anything is written.

    A project trains with its `training` settings (the arguments given here override them) as one
    `core.training_run.TrainingRun`, exactly as the window's Train button does; the finished run is added to the
    project's `runs` when the project is rewritten (a bundled example never is: its outputs go to the working
    directory)."""
    from core.training_run import RunControl, TrainingRun, execute_run

    if device is not None:
        device = runtime.check_device(device)
    args = argparse.Namespace(epochs=epochs, batch_size=batch_size, dataset=dataset, data=data, device=device,
                              adapt=adapt)
    path = Path(model_path)
    if not path.is_file():
        raise UsageError(f"no such file: {path}")
    suffix = path.suffix.lower()
    if suffix == ".nwproj":
        doc, model, settings, spec, (x, y, val) = _load_project_model(path, args)
    elif suffix in _KERAS_SUFFIXES or suffix in (".json", ".yaml", ".yml"):
        doc, model, settings, spec, (x, y, val) = _load_keras_model(path, args)
    else:
        raise UsageError(f"{path.name}: expected a project (.nwproj) or a Keras file (.h5, .keras).")
    _check_counts(model, x, y, val, str(data or path.name))
    default_weights, default_history = _default_outputs(path, doc)
    weights_path = Path(weights_out) if weights_out else default_weights
    _check_weights_out(weights_path, doc)
    history_path = Path(history_out) if history_out else default_history
    if history_path.is_dir():
        raise UsageError(f"--history-out {history_path} is a folder.")

    # fit checks the data against the model before its first step, so data that does not fit raises there; the
    # history goes to a temporary file until training is over, so a failed run leaves nothing behind.
    fd, partial = tempfile.mkstemp(prefix="netweaver-history-", suffix=".csv")
    os.close(fd)
    partial = Path(partial)
    control = RunControl()
    run = TrainingRun(settings=settings, dataset=spec, model=doc.graph_dict() if doc is not None else None)
    try:
        with _StopOnInterrupt(control):
            execute_run(model, run, x, y, val, control=control, callbacks=[CSVLogger(partial), *callbacks],
                        verbose=verbose)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    interrupted = run.outcome == "stopped"

    prepare_output(weights_path)
    if doc is not None and weights_path.name.lower().endswith(".npz"):
        _store_weights(doc, model)
        if weights_out or is_bundled_example(path):
            from exporters.project import _write_weights  # the sidecar layout, without touching the project

            _write_weights(doc, weights_path)
        else:
            from exporters.project import save_project  # writes the sidecar and makes the project refer to it

            run.weights = {nid: n.weights for nid, n in doc.nodes.items() if n.weights}
            doc.runs.append(run)
            save_project(doc, path)
    else:
        model.save_weights(weights_path)
    prepare_output(history_path)
    give_ordinary_permissions(partial)
    shutil.move(partial, history_path)
    history = History()
    history.history, history.epoch = run.history, list(range(run.initial_epoch, run.initial_epoch + run.epochs_done))
    return TrainResult(model, history, weights_path, history_path, run.device, interrupted, run)


def _store_weights(doc, model) -> None:
    """Put the trained weights into the document's nodes (its layers carry the nodes' names)."""
    for node in doc.nodes.values():
        if node.class_name == "InputLayer":
            continue
        weights = model.get_layer(node.name).get_weights()
        node.weights = [np.array(w) for w in weights] or None


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a project (.nwproj) with training settings and datasets, or a compiled Keras "
                                 "file (.h5, .keras) with --data")
    p.add_argument("--device", help="auto (CUDA when it can start), cpu or cuda (default: the project's, else "
                                    "auto)")
    p.add_argument("--epochs", type=int, help="number of epochs (overrides the project's)")
    p.add_argument("--batch-size", type=int, help="batch size (overrides the project's)")
    p.add_argument("--dataset", help="which of the project's datasets to train on (by name; default the first)")
    p.add_argument("--data", help=".npz with arrays x and y (or x0.., y0..), optionally x_val and y_val")
    p.add_argument("--weights-out", help="where to write the trained weights (default: the project's sidecar "
                                         "weights file, or MODEL.weights.h5 beside a Keras file)")
    p.add_argument("--history-out", help="CSV of the per-epoch history (default: MODEL.history.csv beside the model)")
    p.add_argument("--adapt", action="store_true", help="first adapt the preprocessing layers not adapted yet "
                                                        "(Normalization, TextVectorization, ...) on the training data")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _run(args: argparse.Namespace) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = _show_warning
        result = train(args.model, device=args.device, epochs=args.epochs, batch_size=args.batch_size,
                       dataset=args.dataset, data=args.data, weights_out=args.weights_out,
                       history_out=args.history_out, verbose=0 if args.quiet else 1, adapt=args.adapt)
    epochs = len(next(iter(result.history.history.values()), []))
    last = {k: v[-1] for k, v in result.history.history.items()}
    figures = " - ".join(f"{k}: {v:.4f}" for k, v in last.items())
    state = "interrupted after" if result.interrupted else "trained"
    print(f"{state} {epochs} epoch(s) of '{result.model.name}' on {result.device}" + (f": {figures}" if figures
                                                                                       else ""))
    print(f"wrote {result.weights_path} and {result.history_path}")
    return 130 if result.interrupted else 0


add_command("train", _configure, _run)
