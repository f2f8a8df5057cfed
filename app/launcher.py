"""Starting the app: argument parsing, the QApplication, and the offscreen screenshot mode."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

DEFAULT_EXAMPLES = ("lstm_text_classifier", "encoder_decoder", "functional_mlp", "mlp")


def parse_args(argv: list[str]):
    p = argparse.ArgumentParser(prog="netweaver", description="Build, train and export Keras models by drawing them.")
    p.add_argument("project", nargs="?", help="a .nwproj project or a Keras model file to open")
    p.add_argument("--screenshot", metavar="OUT.png", help="render the window offscreen to a PNG and exit")
    p.add_argument("--theme", choices=("light", "dark"), default="light")
    p.add_argument("--size", default="1500x900", help="window size for --screenshot, WIDTHxHEIGHT")
    return p.parse_args(argv)


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
    if target and not window.open_path(target, wait=True, as_example=not args.project):
        print(f"cannot open {target}", file=sys.stderr)
        return 1
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
    ok = window.grab().save(args.screenshot)
    window.editor.stack.set_clean()
    window.close()
    if not ok:
        print(f"cannot write {args.screenshot}", file=sys.stderr)
        return 1
    print(str(Path(args.screenshot).resolve()))
    return 0
