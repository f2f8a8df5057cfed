"""Headless commands: `python main.py summary MODEL`, `python main.py export MODEL --format F [--target T] [--verify]
OUT`.

MODEL is a Keras file (.keras, .h5/.hdf5, .json or .yaml config, the last two with `--weights` if wanted) or a
Netweaver project (.nwproj). Bad input prints one line saying what is wrong and exits with code 2. Other commands
(`train`) register themselves with `add_command`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

from core.errors import NetweaverError
from exporters.model_export import FORMATS, TARGETS as KERAS_TARGETS

EXPORT_FORMATS = tuple(FORMATS)
TARGETS = tuple(KERAS_TARGETS)

# name -> (add the subcommand's arguments to its parser, run it with the parsed args and return an exit code)
_COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {}


def add_command(name: str, configure: Callable[[argparse.ArgumentParser], None],
                run: Callable[[argparse.Namespace], int]) -> None:
    """Register a headless command (e.g. `train`, from the training code)."""
    _COMMANDS[name] = (configure, run)


class UsageError(Exception):
    """The command line is wrong (exit code 2)."""


# -- reading a model ------------------------------------------------------------------------------------------------
def load_any_model(path, weights=None, *, safe_mode: bool = True):
    """A model from a Keras file or a Netweaver project, optionally with weights loaded from another file."""
    from core.models import load_model

    path = Path(path)
    if not path.exists():
        raise UsageError(f"no such file: {path}")
    if path.suffix.lower() == ".nwproj":
        try:
            from exporters import project
        except ImportError:
            raise UsageError(f"{path}: project files need exporters.project, which this build lacks") from None
        model = project.load_project(path).to_model()
    else:
        model = load_model(path, safe_mode=safe_mode)
    if weights is not None:
        model.load_weights(weights)
    return model


# -- commands -------------------------------------------------------------------------------------------------------
def _configure_summary(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="model file: .keras, .h5, .json, .yaml or .nwproj")
    p.add_argument("--weights", help="weights file to load into a model read from a config")


def _run_summary(args: argparse.Namespace) -> int:
    model = load_any_model(args.model, args.weights)
    model.summary()
    return 0


def _configure_export(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="model file: .keras, .h5, .json, .yaml or .nwproj")
    p.add_argument("out", help="output file")
    p.add_argument("--format", required=True, choices=EXPORT_FORMATS,
                   help="json/yaml: Keras config; h5: legacy full model; weights: weights only (layout by suffix: "
                        ".weights.h5 Keras 3, .h5 legacy); keras: Keras 3 archive; onnx; py: Keras script")
    p.add_argument("--target", choices=TARGETS,
                   help="which Keras the file is for (default: the one that wrote MODEL, else keras3)")
    p.add_argument("--weights", help="weights file to load into a model read from a config")
    p.add_argument("--verify", action="store_true",
                   help="read the written file back and compare its predictions with the model's on a batch of the "
                        "project's data (random data for other models); exit code 1 when they differ")
    p.add_argument("--training-script", action="store_true",
                   help="with --format py and a .nwproj: a script that also trains as the project does (its data, "
                        "written beside it as NAME_data.npz, and its compile and fit settings; run it with --train)")


def _run_export(args: argparse.Namespace) -> int:
    from exporters.model_export import write_export

    model = load_any_model(args.model, args.weights)
    out = Path(args.out)
    fmt = args.format
    target = args.target or ("keras3" if fmt == "keras" else getattr(model, "keras_generation", None) or "keras3")
    if fmt == "keras" and target != "keras3":
        raise UsageError("--format keras is Keras 3's archive; use --format h5 for --target tf_keras2")
    if Path(args.model).suffix.lower() in (".json", ".yaml", ".yml") and args.weights is None \
            and fmt in ("h5", "weights", "keras", "onnx"):
        print(f"note: {args.model} is a config without weights; the exported weights are freshly initialized "
              f"(pass --weights FILE to use trained ones)", file=sys.stderr)
    data = _project_data(Path(args.model)) if args.verify or args.training_script else None
    if args.training_script:
        from exporters import project
        from exporters.python_source import export_training_script

        if fmt != "py" or Path(args.model).suffix.lower() != ".nwproj":
            raise UsageError("--training-script needs --format py and a project (.nwproj) with its settings and data")
        export_training_script(model, out, project.load_project(Path(args.model)).training, data, target)
    else:
        write_export(model, out, fmt, target)
    print(f"wrote {out} ({fmt}{', ' + target if fmt not in ('onnx', 'keras') else ''})")
    if not args.verify:
        return 0
    from exporters.verify import sample_inputs, verify_export

    xs, inputs = sample_inputs(model, data)
    result = verify_export(model, out, fmt, xs, inputs)
    print(result.message, file=sys.stdout if result.ok else sys.stderr)
    return 0 if result.ok else 1


def _project_data(path: Path):
    """A project's data (its first dataset) for --verify, or None: then random data of the inputs' shapes."""
    if path.suffix.lower() != ".nwproj":
        return None
    from exporters import project
    from exporters.datasets import load_dataset

    doc = project.load_project(path)
    if not doc.datasets:
        return None
    try:
        return load_dataset(doc.datasets[0], base=path.resolve().parent)
    except NetweaverError as exc:
        print(f"note: the project's data cannot be read ({exc}); verifying on random data", file=sys.stderr)
        return None


add_command("summary", _configure_summary, _run_summary)
add_command("export", _configure_export, _run_export)
from app import train_command  # noqa: E402,F401  (registers `train`; it imports add_command from here)


# -- entry -----------------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python main.py", description="Netweaver's headless commands.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (configure, _) in _COMMANDS.items():
        configure(sub.add_parser(name, help=f"{name} a model"))
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage problem
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return _COMMANDS[args.command][1](args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (NetweaverError, FileNotFoundError, FileExistsError, IsADirectoryError, PermissionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
