"""`utils.plot_model` draws with the app's own canvas when Qt is there, with pydot as Keras does otherwise, and says
what to install when neither is."""

import sys
import types

import numpy as np
import pytest

import core as keras
from core import layers


def _model():
    a = keras.Input((8,), name="features")
    b = keras.Input((4,), name="extra")
    x = layers.Dense(6, activation="relu", name="hidden")(a)
    x = layers.concatenate([x, b], name="joined")
    return keras.Model([a, b], layers.Dense(1, name="score")(x), name="two_inputs")


def test_plot_model_draws_the_canvas(qapp, tmp_path):
    from PySide6.QtGui import QImage

    path = keras.utils.plot_model(_model(), to_file=str(tmp_path / "model.png"), show_shapes=True, dpi=96)
    image = QImage(str(path))
    assert not image.isNull() and image.width() > 400 and image.height() > 100
    colors = {image.pixel(x, y) for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)}
    assert len(colors) > 5  # nodes, text and wires, not an empty canvas
    doubled = QImage(str(keras.utils.plot_model(_model(), to_file=str(tmp_path / "big.png"), dpi=192)))
    assert abs(doubled.width() - 2 * image.width()) <= 2
    svg = keras.utils.plot_model(_model(), to_file=str(tmp_path / "model.svg"))
    assert "<svg" in svg.read_text()[:2000]
    with pytest.raises(ValueError, match="cannot write a picture as '.xyz'"):
        keras.utils.plot_model(_model(), to_file=str(tmp_path / "model.xyz"))


def _without_qt(monkeypatch):
    monkeypatch.setitem(sys.modules, "app.model_picture", None)  # import fails as it does without PySide6


def test_without_qt_or_pydot_the_error_says_what_to_install(monkeypatch, tmp_path):
    _without_qt(monkeypatch)
    monkeypatch.setitem(sys.modules, "pydot", None)
    with pytest.raises(ImportError, match="pip install pydot") as info:
        keras.utils.plot_model(_model(), to_file=str(tmp_path / "m.png"))
    assert "PySide6" in str(info.value)


class _FakeDot:
    """Stands in for pydot with Graphviz: records what would be drawn and written."""

    written = []

    def __init__(self):
        self.attrs, self.nodes, self.edges = {}, [], []

    @staticmethod
    def create(dot):
        return b""

    def set(self, key, value):
        self.attrs[key] = value

    def set_node_defaults(self, **kwargs):
        pass

    def add_node(self, node):
        self.nodes.append(node)

    def add_edge(self, edge):
        self.edges.append(edge)

    def write(self, path, format):
        _FakeDot.written.append((path, format, self))


def test_without_qt_pydot_draws_as_keras(monkeypatch, tmp_path):
    _without_qt(monkeypatch)
    fake = types.SimpleNamespace(Dot=_FakeDot, Node=lambda name, label: (name, label),
                                 Edge=lambda src, dst: (src, dst))
    monkeypatch.setitem(sys.modules, "pydot", fake)
    model = _model()
    keras.utils.plot_model(model, to_file=str(tmp_path / "m.svg"), show_shapes=True, show_layer_names=True,
                           rankdir="LR")
    path, fmt, dot = _FakeDot.written[-1]
    assert fmt == "svg" and dot.attrs["rankdir"] == "LR"
    labels = [label for _, label in dot.nodes]
    assert any(label.startswith("hidden (Dense) | {input: (None, 8) | output: (None, 6)}") for label in labels)
    names = {name: label.split(" ")[0] for name, label in dot.nodes}
    edges = {(names[a], names[b]) for a, b in dot.edges}
    assert edges == {("features", "hidden"), ("hidden", "joined"), ("extra", "joined"), ("joined", "score")}
    np.testing.assert_equal(len(dot.nodes), 5)
