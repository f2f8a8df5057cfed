"""Headless commands: `python main.py summary MODEL`, `python main.py export MODEL --format F [--target T] OUT`.

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
from exporters.paths import prepare_output

EXPORT_FORMATS = ("json", "yaml", "h5", "weights", "keras", "onnx", "py")
TARGETS = ("keras3", "tf_keras2")

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
    p.add_argument("--target", default="keras3", choices=TARGETS, help="which Keras the file is for")
    p.add_argument("--weights", help="weights file to load into a model read from a config")


def _run_export(args: argparse.Namespace) -> int:
    model = load_any_model(args.model, args.weights)
    out = Path(args.out)
    fmt, target = args.format, args.target
    if fmt == "keras" and target != "keras3":
        raise UsageError("--format keras is Keras 3's archive; use --format h5 for --target tf_keras2")
    if Path(args.model).suffix.lower() in (".json", ".yaml", ".yml") and args.weights is None \
            and fmt in ("h5", "weights", "keras", "onnx"):
        print(f"note: {args.model} is a config without weights; the exported weights are freshly initialized "
              f"(pass --weights FILE to use trained ones)", file=sys.stderr)
    prepare_output(out)
    if fmt == "json":
        out.write_text(model.to_json(target=target, indent=2), encoding="utf8")
    elif fmt == "yaml":
        out.write_text(model.to_yaml(target=target), encoding="utf8")
    elif fmt == "h5":
        model.save(out, save_format="h5", target=target)
    elif fmt == "keras":
        model.save(out, save_format="keras")
    elif fmt == "weights":
        model.save_weights(out, target=target)
    elif fmt == "onnx":
        from exporters.onnx_export import export_onnx

        export_onnx(model, out)
    else:
        from exporters.python_source import export_python_source

        export_python_source(model, out, target=target)
    print(f"wrote {out} ({fmt}{', ' + target if fmt not in ('onnx', 'keras') else ''})")
    return 0


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
