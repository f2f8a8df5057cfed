"""Ports and inspector forms that depend on the layer kind: merges, recurrent states, masks, wrappers."""

from PySide6.QtWidgets import QApplication

from canvas_gestures import select, wire
from core.document import Wire


def add(win, cls, x, y=0, **config):
    return win.editor.add_layer(cls, (x, y), config)


def test_merge_layer_grows_an_input_port_per_wire(window, qtbot):
    i = add(window, "InputLayer", 0, shape=[8])
    a = add(window, "Dense", 300, units=4)
    b = add(window, "Dense", 300, 150, units=4)
    c = add(window, "Dense", 300, 300, units=4)
    m = add(window, "Add", 600)
    window.editor.refresh()
    window.view.fit()
    for d in (a, b, c):
        wire(window, i, d)
    item = window.editor.scene.node_items[m]
    assert len(item.in_ports) == 2
    wire(window, a, m, dst_slot=0)
    wire(window, b, m, dst_slot=1)
    assert len(window.editor.scene.node_items[m].in_ports) == 3
    wire(window, c, m, dst_slot=2)
    assert len(window.editor.scene.node_items[m].in_ports) == 4
    assert window.editor.doc.analyze()[m].outputs[0].shape == (None, 4)
    assert window.editor.scene.node_items[m].footer_text() == "0 params"
    window.undo()
    assert len(window.editor.scene.node_items[m].in_ports) == 3


def test_recurrent_state_outputs_feed_initial_state_inputs(window, qtbot):
    x = add(window, "InputLayer", 0, shape=[5, 3])
    y = add(window, "InputLayer", 0, 200, shape=[7, 3])
    enc = add(window, "LSTM", 300, units=6, return_state=True)
    dec = add(window, "LSTM", 600, units=6)
    window.editor.refresh()
    window.view.fit()
    scene = window.editor.scene
    assert [p.name for p in scene.node_items[enc].out_ports] == ["output", "state h", "state c"]
    assert [p.kind for p in scene.node_items[dec].in_ports] == ["tensor", "state", "state"]
    wire(window, x, enc)
    wire(window, y, dec)
    wire(window, x, dec, src_port=0, dst_slot=1)  # a sequence is not a (batch, units) state
    assert "takes a state of shape (None, 6)" in window.statusBar().currentMessage()
    wire(window, enc, dec, src_port=1, dst_slot=1)
    wire(window, enc, dec, src_port=2, dst_slot=2)
    info = window.editor.doc.analyze()
    assert info[dec].status == "ok" and info[dec].outputs[0].shape == (None, 6)
    assert scene.wire_items[Wire(enc, 1, dec, 1)].label == "(None, 6)"
    model = window.editor.doc.to_model()
    assert len(model.inputs) == 2 and model.count_params() == window.editor.doc.total_params()


def test_masked_wires_are_drawn_distinctly_and_refused_where_a_mask_cannot_go(window, qtbot):
    i = add(window, "InputLayer", 0, shape=[10], dtype="int32")
    emb = add(window, "Embedding", 300, input_dim=50, output_dim=4, mask_zero=True)
    rnn = add(window, "LSTM", 600, units=3)
    flat = add(window, "Flatten", 600, 200)
    window.editor.refresh()
    window.view.fit()
    wire(window, i, emb)
    wire(window, emb, rnn)
    masked = window.editor.scene.wire_items[Wire(emb, 0, rnn, 0)]
    assert masked.masked and "mask" in masked.toolTip()
    assert not window.editor.scene.wire_items[Wire(i, 0, emb, 0)].masked
    wire(window, emb, flat)
    assert "carries a mask" in window.statusBar().currentMessage()
    assert Wire(emb, 0, flat, 0) not in window.editor.doc.wires


def test_negative_dropout_is_refused_with_the_layers_reason(window, qtbot):
    d = add(window, "Dropout", 0, rate=0.3)
    select(window, [d])
    spin = window.inspector.editors["rate"].widget
    assert (spin.minimum(), spin.maximum()) == (0.0, 1.0)
    window.inspector._field_edited("rate", -0.5)
    assert "rate" in window.inspector.error_label.text() and "-0.5" in window.inspector.error_label.text()
    assert window.editor.doc.nodes[d].config["rate"] == 0.3


def test_wrapper_shows_and_edits_the_inner_layer(window, qtbot):
    i = add(window, "InputLayer", 0, shape=[5, 3])
    b = add(window, "Bidirectional", 300)
    window.editor.refresh()
    window.view.fit()
    wire(window, i, b)
    assert window.editor.doc.analyze()[b].outputs[0].shape == (None, 64)
    select(window, [b])
    inner = window.inspector.editors["layer"].widget
    assert inner.combo.currentText() == "LSTM"
    units = inner.findChildren(type(window.inspector.editors["layer"]))
    units_editor = next(e for e in units if e.spec.name == "units")
    units_editor.widget.setValue(10)
    QApplication.processEvents()
    window.editor.refresh()
    assert window.editor.doc.nodes[b].config["layer"]["config"]["units"] == 10
    assert window.editor.doc.analyze()[b].outputs[0].shape == (None, 20)
    assert window.summary.row_texts()[1][1] == "(None, 20)"
    window.undo()
    window.editor.refresh()
    assert window.editor.doc.analyze()[b].outputs[0].shape == (None, 64)


def test_examples_open_complete_and_valid(window, qtbot):
    from app.main_window import EXAMPLES

    for path in sorted(EXAMPLES.glob("*.nwproj")):
        assert window.open_path(str(path), wait=True, as_example=True)
        assert window.validate() == [], path.name
        assert window.path is None  # an example opens as a new, untitled model


def test_registered_custom_layers_appear_in_the_custom_group(window, qtbot):
    from core import layer_schema, layers, ops
    from core.serialization import _GLOBAL_CUSTOM_OBJECTS, register_keras_serializable

    @register_keras_serializable(package="Tests")
    class Doubler(layers.Layer):
        """Multiplies its input by a factor."""

        def __init__(self, factor=2.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = float(factor)

        def call(self, inputs):
            return ops.multiply(inputs, self.factor)

        def get_config(self):
            return {**super().get_config(), "factor": self.factor}

    try:
        assert "Doubler" in layer_schema.palette()["Custom"]
        window.palette.reload()
        assert "Doubler" in window.palette.visible_layers()
        i = add(window, "InputLayer", 0, shape=[3])
        d = add(window, "Doubler", 300)
        window.editor.request_wire(i, 0, d, 0)
        window.editor.refresh()
        assert window.editor.doc.analyze()[d].outputs[0].shape == (None, 3)
        select(window, [d])
        assert window.inspector.editors["factor"].widget.value() == 2.0
    finally:
        _GLOBAL_CUSTOM_OBJECTS.pop("Doubler", None)
        _GLOBAL_CUSTOM_OBJECTS.pop("Tests>Doubler", None)
        layer_schema._registry_cache.pop("Doubler", None)


def test_ports_explain_themselves_on_hover(window, qtbot):
    enc = add(window, "LSTM", 300, units=6, return_state=True)
    window.editor.refresh()
    item = window.editor.scene.node_items[enc]
    assert item.port_tip("in", 1) == ("initial_state 0: takes an initial state, any tensor of shape (None, 6) (a state "
                                      "output or a layer's output)")
    assert item.port_tip("out", 1).startswith("state h")
    assert "has no input yet" in item.toolTip()
