"""Starting the app: argument parsing, the QApplication, and the offscreen screenshot mode."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

DEFAULT_EXAMPLES = ("lstm_text_classifier", "encoder_decoder", "functional_mlp", "mlp")
PANELS = ("inspector", "data", "training", "curves", "evaluation", "runs", "weights")

# The system libraries Qt's GUI module itself links (present on any desktop, missing on a minimal system), and the
# Debian/Ubuntu package of each.
QT_BASE_LIBRARIES = {
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libdbus-1.so.3": "libdbus-1-3",
    "libxkbcommon.so.0": "libxkbcommon0",
}
# The system libraries Qt's X11 (xcb) platform plugin loads, and the Debian/Ubuntu package of each. Qt's own error
# names only libxcb-cursor0, and only when the plugin fails; on a fresh system it is usually icccm4 and keysyms1.
XCB_LIBRARIES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
}


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


def missing_xcb_packages(can_load=None) -> list[str]:
    """The packages of the libraries Qt and its xcb plugin need that cannot be loaded here."""
    if can_load is None:
        can_load = _can_load
    return [package for library, package in {**QT_BASE_LIBRARIES, **XCB_LIBRARIES}.items() if not can_load(library)]


def system_packages() -> list[str]:
    """Every system package the desktop app needs on Debian/Ubuntu (the README lists the same)."""
    return list(QT_BASE_LIBRARIES.values()) + list(XCB_LIBRARIES.values())


def _can_load(library: str) -> bool:
    import ctypes

    try:
        ctypes.CDLL(library)
        return True
    except OSError:
        return False


def platform_help(missing: list[str], display: str | None = "") -> str:
    """What to tell someone whose Qt could not start its platform plugin: the one apt-get line that fixes it (or,
    with every library present and no DISPLAY, that there is no X server to talk to)."""
    offscreen = "(Without a display: QT_QPA_PLATFORM=offscreen python main.py --screenshot OUT.png)"
    if not missing and display is None:
        return ("Netweaver cannot open a window: no X display (DISPLAY is not set). Start it from a desktop session "
                f"or set DISPLAY.\n{offscreen}")
    packages = missing or system_packages()
    why = ("the system libraries of these packages are missing: " + ", ".join(missing) if missing
           else "one of the system libraries it needs is missing")
    return (f"Netweaver cannot open a window: Qt's X11 (xcb) platform plugin could not load; {why}.\n"
            f"On Debian or Ubuntu, install them with:\n\n    sudo apt-get install {' '.join(packages)}\n\n{offscreen}")


def _qt_message(kind, context, message: str) -> None:
    """Qt's messages go to stderr as before; when the platform plugin fails (a fatal message, after which Qt aborts
    the process), the fix is printed after Qt's own words."""
    from PySide6.QtCore import QtMsgType

    sys.stderr.write(message + "\n")
    if kind == QtMsgType.QtFatalMsg and "platform plugin" in message:
        sys.stderr.write("\n" + platform_help(missing_xcb_packages(), os.environ.get("DISPLAY")) + "\n")
    sys.stderr.flush()


def limit_blas_threads() -> None:
    """One BLAS thread for the desktop app, unless the user says otherwise; call before numpy is imported.

    After each call OpenBLAS's pool threads spin for a while waiting for more work; one per core, they took both
    cores of a two-core machine from the GUI thread while an export built its layers (an Orthogonal initializer's
    QR): the window froze for 0.1-0.7 s at random. The app's own numpy work is small (heavy work runs in ONNX
    Runtime, which has its own threads), so one BLAS thread costs nothing."""
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")


def run(argv: list[str]) -> int:
    args = parse_args(argv)
    limit_blas_threads()
    if args.screenshot:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    try:
        from PySide6.QtCore import qInstallMessageHandler
        from PySide6.QtWidgets import QApplication
    except ImportError as exc:  # Qt's own libraries need system libraries a minimal system lacks
        missing = [pkg for lib, pkg in QT_BASE_LIBRARIES.items() if lib in str(exc) or not _can_load(lib)]
        if not missing:
            raise
        print(f"{exc}\n\n{platform_help(missing)}", file=sys.stderr)
        return 1

    qInstallMessageHandler(_qt_message)

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
    window.load_training_data()
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
    window.curves.flush()
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
    if name == "weights":  # the layer with the most parameters, so the picture shows a real heat map
        doc = window.editor.doc
        rows = [r for r in doc.summary_rows() if r.params]
        if rows:
            window.editor.scene.select_nodes([max(rows, key=lambda r: r.params).node_id])
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
