"""The inspector: a form generated from the selected layer's config schema (`core.layer_schema`).

Numbers get spin boxes with their ranges, choices drop-downs, initializers/regularizers/constraints a class drop-down
with their own arguments, Bidirectional/TimeDistributed a nested form for the wrapped layer. Every field's tooltip is
its description. An edit is sent as a whole new config (`configEdited`); the editor checks it by building the layer,
and an impossible value comes back through `show_error` with the layer's own reason.
"""

from __future__ import annotations

import ast
import copy
import json

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QFrame, QGroupBox, QHBoxLayout, \
    QLabel, QLineEdit, QPushButton, QScrollArea, QSpinBox, QVBoxLayout, QWidget

from app import adapting
from core import layer_schema
from core.document import Document

_BIG = 2_000_000_000


def _combo() -> QComboBox:
    """A drop-down that fits the panel's width instead of its longest entry's."""
    combo = QComboBox()
    combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(6)
    return combo


def _text_of(value) -> str:
    if value is None:
        return "None"
    if isinstance(value, (list, tuple)) and not any(isinstance(v, (str, list, tuple, dict)) for v in value):
        return ", ".join("None" if v is None else str(v) for v in value)
    if isinstance(value, (list, tuple)):  # text (a vocabulary of words) keeps its quotes, so it reads back as text
        return json.dumps(list(value), ensure_ascii=False)
    return json.dumps(value) if not isinstance(value, str) else value


def parse_literal(text: str):
    """What a user types in a free field: JSON or Python literals ('None', '(3, 4)', '{"a": 1}')."""
    text = text.strip()
    if text == "":
        return None
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(_JsonWordsAsConstants().visit(ast.parse(text, mode="eval")))
    except (ValueError, SyntaxError) as exc:
        raise ValueError(f"'{text}' is not a value (write a number, a list like 3, 4, or JSON).") from exc


class _JsonWordsAsConstants(ast.NodeTransformer):
    """JSON's null/true/false written among Python literals ('(null, 3)'): bare names only, never inside quotes."""
    _WORDS = {"null": None, "true": True, "false": False}

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in self._WORDS:
            return ast.copy_location(ast.Constant(self._WORDS[node.id]), node)
        return node


def parse_shape(text: str) -> list:
    text = text.strip().strip("()[]")
    if not text:
        return []
    out = []
    for part in text.split(","):
        part = part.strip()
        if part == "":
            continue
        if part.lower() in ("none", "null", "?"):
            out.append(None)
        else:
            try:
                out.append(int(part))
            except ValueError:
                raise ValueError(f"'{part}' is not a dimension: write whole numbers separated by commas, None for "
                                 f"an unknown size (e.g. None, 100).") from None
    return out


class FieldEditor(QWidget):
    """One config field; `edited` fires with the new value when the user commits a change."""

    edited = Signal(str, object)

    def __init__(self, spec: layer_schema.FieldSpec, value, parent=None):
        super().__init__(parent)
        self.spec = spec
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.widget = self._make(value)
        layout.addWidget(self.widget)
        tip = spec.doc or spec.name
        if spec.minimum is not None or spec.maximum is not None:
            tip += f"\nRange: {spec.minimum if spec.minimum is not None else '-∞'} to " \
                   f"{spec.maximum if spec.maximum is not None else '∞'}"
        self.setToolTip(tip)
        self.widget.setToolTip(tip)

    def _emit(self, value) -> None:
        self.edited.emit(self.spec.name, value)

    def _make(self, value):
        kind = self.spec.kind
        if kind == "bool":
            w = QCheckBox()
            w.setChecked(bool(value))
            w.toggled.connect(lambda v: self._emit(bool(v)))
            return w
        if kind == "int" and value is not None and not isinstance(value, (list, tuple)):
            w = QSpinBox()
            w.setRange(int(self.spec.minimum) if self.spec.minimum is not None else -_BIG,
                       int(self.spec.maximum) if self.spec.maximum is not None else _BIG)
            if self.spec.minimum is not None and int(value) < self.spec.minimum:
                w.setMinimum(int(value))  # show an out-of-range value from a file as it is
            w.setValue(int(value))
            w.setKeyboardTracking(False)
            w.valueChanged.connect(lambda v: self._emit(int(v)))
            return w
        if kind == "float" and value is not None:
            w = QDoubleSpinBox()
            w.setDecimals(10 if 0 < abs(float(value)) < 1e-4 else 6)  # epsilon=1e-7 must not show as 0
            w.setRange(self.spec.minimum if self.spec.minimum is not None else -1e12,
                       self.spec.maximum if self.spec.maximum is not None else 1e12)
            w.setSingleStep(0.05 if self.spec.maximum == 1.0 else 0.1)
            w.setValue(float(value))
            w.setKeyboardTracking(False)
            w.valueChanged.connect(lambda v: self._emit(float(v)))
            return w
        if kind in ("choice", "activation"):
            w = _combo()
            choices = [("None" if c is None else str(c)) for c in self.spec.choices]
            if kind == "activation" and value is None:
                value = "linear"
            current = "None" if value is None else str(value)
            if current not in choices:
                choices.append(current)
            w.addItems(choices)
            w.setCurrentText(current)
            raw = {("None" if c is None else str(c)): c for c in self.spec.choices}
            w.currentTextChanged.connect(lambda t: self._emit(raw.get(t, t)))
            return w
        if kind in ("initializer", "regularizer", "constraint"):
            return ObjectEditor(kind, value, self.spec.optional, self._emit)
        if kind == "layer":
            return WrappedLayerEditor(value, self._emit)
        w = QLineEdit(_text_of(value))
        parse = parse_shape if kind == "shape" else (str if kind == "str" else parse_literal)

        def commit():
            try:
                self._emit(parse(w.text()))
            except ValueError as exc:
                self.edited.emit("__error__", f"{self.spec.name}: {exc}")

        w.editingFinished.connect(commit)
        return w


class ObjectEditor(QWidget):
    """An initializer, regularizer or constraint: its class and that class's own arguments."""

    def __init__(self, kind: str, value, optional: bool, emit):
        super().__init__()
        self.kind, self.emit = kind, emit
        self.module = layer_schema.object_module(kind)
        self.combo = _combo()
        names = layer_schema.object_choices(kind)
        if optional or value is None:
            names = ["None"] + names
        self.combo.addItems(names)
        self.form = QFormLayout()
        self.form.setContentsMargins(12, 0, 0, 0)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.combo)
        layout.addLayout(self.form)
        self.args: dict[str, QLineEdit] = {}
        obj = self.module.get(value) if value is not None else None
        self.combo.setCurrentText(type(obj).__name__ if obj is not None else "None")
        self._show_args(obj)
        self.combo.currentTextChanged.connect(self._class_changed)

    def _show_args(self, obj) -> None:
        while self.form.rowCount():
            self.form.removeRow(0)
        self.args = {}
        if obj is None or not hasattr(obj, "get_config"):
            return
        for key, val in obj.get_config().items():
            edit = QLineEdit(_text_of(val))
            edit.editingFinished.connect(self._commit)
            self.args[key] = edit
            self.form.addRow(key, edit)

    def _class_changed(self, name: str) -> None:
        obj = None if name == "None" else self.module.get(name)
        self._show_args(obj)
        self._commit()

    def _commit(self) -> None:
        name = self.combo.currentText()
        if name == "None":
            self.emit(None)
            return
        try:
            config = {k: parse_literal(e.text()) for k, e in self.args.items()}
        except ValueError as exc:
            self.emit({"__error__": str(exc)})
            return
        self.emit({"class_name": name, "config": config})


class WrappedLayerEditor(QGroupBox):
    """The layer inside Bidirectional/TimeDistributed: its class and its own generated form."""

    def __init__(self, value, emit):
        super().__init__("wrapped layer")
        self.emit = emit
        value = copy.deepcopy(value) if isinstance(value, dict) else {"class_name": "LSTM", "config": {}}
        self.value = value
        layout = QVBoxLayout(self)
        self.combo = _combo()
        names = [n for names in layer_schema.palette().values() for n in names if n != "InputLayer"]
        self.combo.addItems(sorted(names))
        self.combo.setCurrentText(value.get("class_name", ""))
        layout.addWidget(self.combo)
        self.form_host = QVBoxLayout()
        layout.addLayout(self.form_host)
        self._build()
        self.combo.currentTextChanged.connect(self._class_changed)

    def _build(self) -> None:
        while self.form_host.count():
            item = self.form_host.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        try:
            schema = layer_schema.schema(self.value.get("class_name", ""))
        except Exception as exc:
            self.form_host.addWidget(QLabel(str(exc)))
            return
        form_widget = QWidget()
        form = QFormLayout(form_widget)
        form.setContentsMargins(0, 0, 0, 0)
        config = self.value.setdefault("config", {})
        for spec in schema.fields:
            editor = FieldEditor(spec, config.get(spec.name, spec.default))
            editor.edited.connect(self._inner_edited)
            form.addRow(spec.name, editor)
        self.form_host.addWidget(form_widget)

    def _class_changed(self, name: str) -> None:
        self.value = {"class_name": name, "config": layer_schema.default_config(name)}
        self._build()
        self.emit(copy.deepcopy(self.value))

    def _inner_edited(self, key: str, val) -> None:
        if key == "__error__":
            self.emit({"__error__": val})
            return
        self.value.setdefault("config", {})[key] = val
        self.emit(copy.deepcopy(self.value))


class Inspector(QWidget):
    configEdited = Signal(str, dict)   # node id, the whole new config
    invalidInput = Signal(str)
    adaptRequested = Signal(str)       # node id of a preprocessing layer to adapt on the training data

    def __init__(self, parent=None):
        super().__init__(parent)
        self.title = QLabel("No layer selected")
        self.title.setObjectName("inspectorTitle")
        self.doc_label = QLabel("Select a layer on the canvas to edit its configuration.")
        self.doc_label.setObjectName("inspectorDoc")
        self.doc_label.setWordWrap(True)
        self.error_label = QLabel()
        self.error_label.setObjectName("inspectorError")
        self.error_label.setWordWrap(True)
        self.error_label.hide()
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        # a preprocessing layer (one with adapt) learns from the Data panel's training data
        self.adapt_button = QPushButton("Adapt on training data")
        self.adapt_button.setToolTip("Learn this layer's state (a vocabulary, bins, a mean and variance) from the "
                                     "training part of the Data panel's data, as layer.adapt(data) does in Keras. "
                                     "Undo puts back what it held before.")
        self.adapt_button.clicked.connect(self._adapt_clicked)
        self.adapt_label = QLabel()
        self.adapt_label.setObjectName("inspectorAdapt")
        self.adapt_label.setWordWrap(True)
        self.adapt_box = QWidget()
        adapt_layout = QVBoxLayout(self.adapt_box)
        adapt_layout.setContentsMargins(0, 2, 0, 2)
        button_row = QHBoxLayout()
        button_row.addWidget(self.adapt_button)
        button_row.addStretch(1)
        adapt_layout.addLayout(button_row)
        adapt_layout.addWidget(self.adapt_label)
        self.adapt_box.hide()
        self.form_widget = QWidget()
        self.form = QFormLayout(self.form_widget)
        self.form.setLabelAlignment(Qt.AlignRight)
        self.form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        scroll = QScrollArea()
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)  # fields shrink to the panel instead
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.NoFrame)
        scroll.setWidget(self.form_widget)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.title)
        layout.addWidget(self.doc_label)
        layout.addWidget(self.status_label)
        layout.addWidget(self.adapt_box)
        layout.addWidget(self.error_label)
        layout.addWidget(scroll, 1)
        self.doc: Document | None = None
        self.node_id: str | None = None
        self.editors: dict[str, FieldEditor] = {}
        self.name_edit: QLineEdit | None = None
        self._shown_config: dict | None = None

    def show_node(self, doc: Document, node_id: str | None) -> None:
        self.doc, self.node_id = doc, node_id
        while self.form.rowCount():
            self.form.removeRow(0)
        self.editors = {}
        self.name_edit = None
        self.error_label.hide()
        if node_id is None or node_id not in doc.nodes:
            self.node_id = None
            self.title.setText("No layer selected")
            self.doc_label.setText("Select a layer on the canvas to edit its configuration.")
            self.status_label.setText("")
            self.adapt_box.hide()
            self._shown_config = None
            return
        node = doc.nodes[node_id]
        schema = layer_schema.schema(node.class_name)
        self.title.setText(f"{node.name}  ·  {node.class_name}")
        self.doc_label.setText(schema.doc)
        self._shown_config = copy.deepcopy(node.config)
        self.name_edit = QLineEdit(node.name)
        self.name_edit.setToolTip("The layer's name (unique in the model). Double-click a node to rename it there.")
        self.name_edit.editingFinished.connect(lambda: self._field_edited("name", self.name_edit.text().strip()))
        self.form.addRow("name", self.name_edit)
        for spec in schema.fields:
            value = node.config.get(spec.name, spec.default)
            editor = FieldEditor(spec, value)
            editor.edited.connect(self._field_edited)
            self.editors[spec.name] = editor
            label = QLabel(spec.name)
            label.setToolTip(editor.toolTip())
            self.form.addRow(label, editor)
        self.update_status()

    def update_status(self) -> None:
        if self.doc is None or self.node_id is None or self.node_id not in self.doc.nodes:
            return
        info = self.doc.analyze().get(self.node_id)
        if info is None:
            return
        if info.status == "ok":
            shapes = ", ".join(s.label() + (" masked" if s.masked else "") for s in info.outputs)
            self.status_label.setText(f"Output: {shapes}    Parameters: {info.params:,}")
        else:
            self.status_label.setText(info.error)
        self._update_adapt_state(info.status == "ok")

    def _update_adapt_state(self, wired: bool) -> None:
        node = self.doc.nodes[self.node_id]
        if not adapting.is_adaptable(node.class_name):
            self.adapt_box.hide()
            return
        self.adapt_box.show()
        self.adapt_button.setEnabled(wired)
        self.adapt_label.setText(adapting.state_text(self.doc, self.node_id) if wired else
                                 "Wire its input to adapt it on the training data.")

    def show_adapt_result(self, text: str, error: bool = False) -> None:
        """What adapting learned (after the command), or why it could not (the document unchanged)."""
        self.update_status()
        if error:
            self.error_label.setText(text)
            self.error_label.show()
        else:
            self.error_label.hide()
            self.adapt_label.setText(text)

    def _adapt_clicked(self) -> None:
        if self.node_id is not None:
            self.adaptRequested.emit(self.node_id)

    def refresh_if_changed(self) -> None:
        """After undo/redo (or an edit elsewhere) show the document's values, not stale widgets."""
        if self.doc is None or self.node_id is None:
            return
        node = self.doc.nodes.get(self.node_id)
        if node is None:
            self.show_node(self.doc, None)
        elif node.config != self._shown_config:
            self.show_node(self.doc, self.node_id)
        else:
            self.update_status()

    def _field_edited(self, key: str, value) -> None:
        if self.doc is None or self.node_id is None:
            return
        if key == "__error__" or (isinstance(value, dict) and "__error__" in value):
            self.show_error(value if isinstance(value, str) else value["__error__"])
            return
        node = self.doc.nodes[self.node_id]
        if node.config.get(key) == value:
            return
        config = copy.deepcopy(node.config)
        config[key] = value
        self.error_label.hide()
        self.configEdited.emit(self.node_id, config)

    def show_error(self, message: str) -> None:
        """A refused edit: say why and put the widgets back to the document's values."""
        node_id = self.node_id
        if self.doc is not None:
            self.show_node(self.doc, node_id)
        self.error_label.setText(message)
        self.error_label.show()
        self.invalidInput.emit(message)
