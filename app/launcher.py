"""Starting the app: argument parsing, the QApplication, and the offscreen screenshot mode."""

from __future__ import annotations

import argparse
import os
import sys


def parse_args(argv: list[str]):
    p = argparse.ArgumentParser(prog="netweaver", description="Build, train and export Keras models by drawing them.")
    p.add_argument("project", nargs="?", help="a .nwproj project or a Keras model file to open")
    p.add_argument("--screenshot", metavar="OUT.png", help="render the window offscreen to a PNG and exit")
    return p.parse_args(argv)


def run(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.screenshot:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6.QtWidgets import QApplication

    from app.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Netweaver")
    window = MainWindow()
    if args.project:
        window.open_path(args.project)
    window.resize(1400, 860)
    window.show()
    if args.screenshot:
        app.processEvents()
        ok = window.grab().save(args.screenshot)
        window.close()
        return 0 if ok else 1
    return app.exec()
