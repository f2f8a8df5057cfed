"""A picture of a model drawn by the app's own node-graph canvas, for `core.utils.plot_model`.

Importing this module loads no Qt: `render_model` imports PySide6 when called, so the engine can try it and fall
back to pydot (as Keras draws) where Qt is not installed. Without a display (and with no QApplication running) the
picture is drawn offscreen.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

_APP = None  # the QApplication made for drawing, kept alive for the process

# Formats the picture is written in, by the file's extension.
RASTER = {".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff", ".webp"}
VECTOR = {".svg", ".pdf"}


def _application():
    global _APP
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        args = ["netweaver-plot-model"]
        headless = sys.platform.startswith("linux") and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.environ.get("QT_QPA_PLATFORM"))
        if headless:
            args += ["-platform", "offscreen"]
        app = _APP = QApplication(args)
    return app


def render_model(model, to_file, *, dpi: int = 96, margin: float = 24.0) -> Path:
    """Draw `model` as the editor's canvas shows it (nodes with their shapes and parameter counts, wires between
    them, laid out left to right) and write it to `to_file` (PNG, JPEG, BMP, ... by extension; SVG or PDF as
    vector pictures). Returns the path written."""
    from PySide6.QtCore import QRectF, QSize, QSizeF
    from PySide6.QtGui import QImage, QPainter, QPageSize, QPdfWriter

    from app.canvas import NODE_WIDTH, GraphScene, node_height
    from app.theme import Theme
    from core.document import Document, layered_layout

    path = Path(to_file)
    suffix = path.suffix.lower()
    if suffix not in RASTER | VECTOR:
        raise ValueError(f"plot_model cannot write a picture as '{suffix or path.name}'; use one of "
                         f"{', '.join(sorted(RASTER | VECTOR))}.")
    _application()
    doc = Document.from_model(model)
    sizes = {nid: (NODE_WIDTH, node_height(doc, nid)) for nid in doc.nodes}
    for nid, position in layered_layout(doc, dx=NODE_WIDTH + 120, dy=60, sizes=sizes).items():
        doc.nodes[nid].position = position
    theme = Theme("light")
    scene = GraphScene(doc, theme)
    scene.apply_analysis()
    source = scene.itemsBoundingRect().adjusted(-margin, -margin, margin, margin)
    scale = max(float(dpi), 1.0) / 96.0
    width, height = max(1, round(source.width() * scale)), max(1, round(source.height() * scale))
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".svg":
        from PySide6.QtSvg import QSvgGenerator

        device = QSvgGenerator()
        device.setFileName(str(path))
        device.setSize(QSize(width, height))
        device.setViewBox(QRectF(0, 0, width, height))
        device.setTitle(model.name)
    elif suffix == ".pdf":
        device = QPdfWriter(str(path))
        device.setResolution(max(int(dpi), 1))
        device.setPageSize(QPageSize(QSizeF(source.width() / 96.0 * 25.4, source.height() / 96.0 * 25.4),
                                     QPageSize.Unit.Millimeter))
    else:
        device = QImage(width, height, QImage.Format.Format_ARGB32)
        device.fill(theme.canvas)
    painter = QPainter(device)
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        target = QRectF(0, 0, device.width(), device.height()) if suffix == ".pdf" else QRectF(0, 0, width, height)
        scene.render(painter, target, source)
    finally:
        painter.end()
    if suffix in RASTER and not device.save(str(path)):
        raise OSError(f"plot_model could not write the picture to {path}.")
    doc.unsubscribe(scene.on_document_event)
    return path
