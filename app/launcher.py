"""Starting the app: argument parsing, the QApplication, and the offscreen screenshot mode."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

DEFAULT_EXAMPLES = ("lstm_text_classifier", "encoder_decoder", "functional_mlp", "mlp")
PANELS = ("inspector", "data", "training", "curves", "evaluation", "runs", "weights")


def parse_args(argv: list[str]):
    p = argparse.ArgumentParser(prog="netweaver", description="Build, train and export Keras models by drawing them.")
    p.add_argument("project", nargs="?", help="a .nwproj project or a Keras model file to open")
    p.add_argument("--screenshot", metavar="OUT.png", help="render the window offscreen to a PNG and exit")
    p.add_argument("--theme", choices=("light", "dark"), default="light")
    p.add_argument("--size", default="1500x900", help="window size for --screenshot, WIDTHxHEIGHT")
    p.add_argument("--train-example", metavar="NAME", help="with --screenshot: train this bundled example in the "
                                                           "window first and show its curves")
    p.add_argument("--epochs", type=int, help="with --train-example: how many epochs (default: the example's)")
    p.add_argument("--panel", choices=PANELS, help="with --screenshot: bring this panel to the front (evaluation "
                                                   "evaluates the model first)")
    args = p.parse_args(argv)
    if args.train_example and not args.screenshot:
        p.error("--train-example needs --screenshot OUT.png")
    if args.epochs is not None and args.epochs < 1:
        p.error("--epochs must be a positive integer")
    return args


def default_example() -> str | None:
    from app.main_window import EXAMPLES

    for name in DEFAULT_EXAMPLES:
        path = EXAMPLES / f"{name}.nwproj"
        if path.exists():
            return str(path)
    found = sorted(EXAMPLES.glob("*.nwproj"))
    return str(found[0]) if found else None


def run(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.screenshot:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6.QtWidgets import QApplication

    from app.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Netweaver")
    window = MainWindow(theme=args.theme)
    if args.screenshot:
        return screenshot(app, window, args)
    window.resize(1400, 860)
    window.show()
    if args.project:
        window.open_path(args.project)
    else:
        window.offer_recovery()
    return app.exec()


def screenshot(app, window, args) -> int:
    """Open the project (or an example), lay it out, select a node so the inspector shows, write the PNG."""
    width, height = (int(v) for v in args.size.lower().split("x"))
    window.resize(width, height)
    window.show()
    target = args.project or default_example()
    if args.train_example:
        from app.main_window import EXAMPLES

        target = EXAMPLES / f"{args.train_example}.nwproj"
        if not target.is_file():
            names = ", ".join(sorted(p.stem for p in EXAMPLES.glob("*.nwproj")))
            print(f"no example named '{args.train_example}' (examples: {names})", file=sys.stderr)
            return 2
    if target and not window.open_path(str(target), wait=True, as_example=not args.project):
        print(f"cannot open {target}", file=sys.stderr)
        return 1
    if args.train_example:
        return train_and_screenshot(app, window, args)
    app.processEvents()
    window.editor.auto_layout()
    window.editor.stack.set_clean()
    window.editor.refresh()
    app.processEvents()
    window.view.fit()
    doc = window.editor.doc
    # show the inspector on the layer with the richest form (a recurrent layer, say): the picture shows a real form
    from core import layer_schema

    if doc.nodes:
        richest = max(doc.nodes.values(), key=lambda n: len(layer_schema.schema(n.class_name).fields))
        window.editor.scene.select_nodes([richest.id])
    for _ in range(3):  # the inspector builds its form on the next event-loop turn, then lays it out
        app.processEvents()
        time.sleep(0.02)
    if args.panel and not show_panel(app, window, args.panel):
        return 1
    ok = window.grab().save(args.screenshot)
    window.editor.stack.set_clean()
    window.close()
    if not ok:
        print(f"cannot write {args.screenshot}", file=sys.stderr)
        return 1
    print(str(Path(args.screenshot).resolve()))
    return 0


def train_and_screenshot(app, window, args, timeout: float = 600.0) -> int:
    """Train the opened example in the window as a user would (the Train button), wait for the run, show its curves
    and write the PNG; print the run's last epoch line as fit(verbose=1) prints it."""
    from PySide6.QtCore import Qt

    from core import commands

    app.processEvents()
    window.view.fit()
    doc = window.editor.doc
    if args.epochs is not None:
        window.editor.push(commands.SetTrainingSettings(doc, dict(doc.training, epochs=args.epochs)))
    deadline = time.monotonic() + 60
    while window.data_panel.busy() and time.monotonic() < deadline:  # a text dataset is read on a worker
        app.processEvents()
        time.sleep(0.01)
    app.processEvents()
    window.training_dock.raise_()
    window.training_panel.train_button.click()
    if not window.training.is_running() and not window.training.runs:
        print(f"cannot train: {window.training_panel.notice.text()}", file=sys.stderr)
        return 1
    deadline = time.monotonic() + timeout
    while window.training.is_running() and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)
    if window.training.is_running():
        window.training.stop()
        window.training.wait()
        print(f"the run did not finish within {timeout:.0f} s", file=sys.stderr)
        return 1
    window.resizeDocks([window.curves_dock], [int(window.height() * 0.42)], Qt.Vertical)
    window.resizeDocks([window.summary_dock, window.curves_dock], [int(window.width() * 0.3),
                                                                   int(window.width() * 0.7)], Qt.Horizontal)
    for _ in range(5):
        app.processEvents()
        time.sleep(0.02)
    window.view.fit()
    app.processEvents()
    if args.panel and not show_panel(app, window, args.panel):
        return 1
    run = window.training.runs[-1]
    lines = [line for line in window.training_panel.log.toPlainText().splitlines() if "/step" in line]
    ok = window.grab().save(args.screenshot)
    window.editor.stack.set_clean()
    window.close()
    if run.outcome not in ("finished", "early_stopped"):
        print(f"the run ended {run.outcome}: {run.message}", file=sys.stderr)
        return 1
    if not ok:
        print(f"cannot write {args.screenshot}", file=sys.stderr)
        return 1
    print(lines[-1] if lines else run.message)
    print(str(Path(args.screenshot).resolve()))
    return 0


def show_panel(app, window, name: str) -> bool:
    """Bring a panel's dock to the front; the evaluation panel first evaluates the model on its validation data."""
    dock = getattr(window, f"{name}_dock", None)
    if dock is None:
        print(f"this build has no {name} panel", file=sys.stderr)
        return False
    dock.raise_()
    if name == "evaluation":
        if not window.evaluate():
            print(window.evaluation.metrics.text(), file=sys.stderr)
            return False
        deadline = time.monotonic() + 120
        while window.evaluation.busy() and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.01)
    for _ in range(5):
        app.processEvents()
        time.sleep(0.02)
    return True
