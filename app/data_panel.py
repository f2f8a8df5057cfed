"""The data panel: which data training uses (`doc.datasets[0]`), its options, a preview and the checks against the
drawn model.

The panel never changes the document: a choice the user makes is sent as a whole new spec (`specChanged`), which the
main window puts into the document through an undoable command before showing the document again. Reading and
converting the data is `exporters.datasets`' job; a large file is read on a worker thread so the GUI stays live.
"""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QAbstractItemView, QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, \
    QHBoxLayout, QHeaderView, QLabel, QListWidget, QListWidgetItem, QPushButton, QSizePolicy, QSpinBox, \
    QStackedWidget, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from app.workers import TaskRunner
from core.errors import NetweaverError
from exporters import datasets

KIND_TITLES = {"csv": "Table (CSV)", "npz": "Arrays (NPZ / NPY)", "text": "Text (folder or CSV column)"}
LABEL_MODE_TITLES = {"int": "Class labels (integers)", "one_hot": "Class labels (one-hot)",
                     "float": "Numbers (regression)"}
TEXTS_AS_TITLES = {"token_ids": "Token ids (Tokenizer, padded)", "strings": "Raw text (for a string Input)"}
VALIDATION_TITLES = {"none": "None", "split": "Split (last rows)", "file": "Separate file"}
DATA_FILTERS = "Data (*.csv *.npz *.npy);;CSV tables (*.csv);;NumPy arrays (*.npz *.npy)"
BACKGROUND_BYTES = 2_000_000  # larger files are read on a worker thread
PREVIEW_ROWS = 20


def _combo(items: dict | list) -> QComboBox:
    combo = QComboBox()
    combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(8)
    for key, title in (items.items() if isinstance(items, dict) else ((i, i) for i in items)):
        combo.addItem(title, key)
    return combo


def _form_page(rows: list) -> tuple[QWidget, QFormLayout]:
    """A page of labelled rows ((label, widget) or a lone widget)."""
    page = QWidget()
    form = QFormLayout(page)
    form.setContentsMargins(0, 0, 0, 0)
    for row in rows:
        if isinstance(row, tuple):
            form.addRow(*row)
        else:
            form.addRow(row)
    return page, form


def _select(combo: QComboBox, key) -> None:
    i = combo.findData(key)
    if i >= 0:
        combo.setCurrentIndex(i)


def _error_text(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, (NetweaverError, OSError)) else f"{type(exc).__name__}: {text}"


def _read(spec: dict, base, request: int = 0):
    """(request, preview headers, rows, LoadedData or None, error text or None) — run here or on a worker thread;
    `request` comes back so that a reply to an older choice is recognised."""
    try:
        headers, rows = datasets.preview(spec, base, PREVIEW_ROWS)
    except Exception as exc:  # noqa: BLE001 - whatever the file holds, the panel shows why it cannot be read
        return request, [], [], None, _error_text(exc)
    try:
        return request, headers, rows, datasets.load_dataset(spec, base), None
    except Exception as exc:  # noqa: BLE001
        return request, headers, rows, None, _error_text(exc)


class DataPanel(QWidget):
    specChanged = Signal(object)   # a new spec the user made (a dict); the window puts it into the document
    dataShown = Signal()           # the current spec's data (or its read error) and checks are shown

    def __init__(self, parent=None):
        super().__init__(parent)
        self.tasks = TaskRunner(self)
        self._spec: dict | None = None
        self._base: Path | None = None
        self._model = None
        self._model_error: str | None = None
        self._loaded = None
        self._load_error: str | None = None
        self._loaded_key: str | None = None
        self._request = 0
        self._problems: list[str] = []
        self._quiet = False  # set while widgets are filled from a spec, so no edit is reported

        self.sample_box = _combo({"": "Choose a sample dataset…"})
        for s in datasets.sample_datasets():
            self.sample_box.addItem(s["title"], s["name"])
            self.sample_box.setItemData(self.sample_box.count() - 1, f"Licence: {s['licence']}", Qt.ToolTipRole)
        self.open_button = QPushButton("Open file…")
        self.open_button.setToolTip("A CSV table, or NumPy arrays (.npz, .npy)")
        self.folder_button = QPushButton("Text folder…")
        self.folder_button.setToolTip("A folder with one sub-folder of .txt files per class")
        self.source_label = QLabel("No data chosen.")
        self.source_label.setWordWrap(True)
        self.source_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.kind_box = _combo(KIND_TITLES)

        # CSV table
        self.feature_list = QListWidget()
        self.feature_list.setMaximumHeight(110)
        self.label_box = _combo([])
        self.label_mode_box = _combo(LABEL_MODE_TITLES)
        self.standardize_box = QCheckBox("Standardize features (mean and std of the training part)")
        csv_page, _ = _form_page([("Features:", self.feature_list), ("Label column:", self.label_box),
                                  ("Labels are:", self.label_mode_box), self.standardize_box])
        # NPZ / NPY arrays: one drop-down per model input and output
        self.arrays_page, self.arrays_form = _form_page([])
        self.x_boxes: list[QComboBox] = []
        self.y_boxes: list[QComboBox] = []
        # text
        self.text_column_box = _combo([])
        self.text_label_box = _combo([])
        self.num_words_spin = QSpinBox()
        self.num_words_spin.setRange(2, 10_000_000)
        self.num_words_spin.setValue(10_000)
        self.num_words_spin.setToolTip("Keep the most frequent words (ids 1 to num_words - 1); 0 is padding")
        self.maxlen_spin = QSpinBox()
        self.maxlen_spin.setRange(1, 100_000)
        self.maxlen_spin.setValue(100)
        self.maxlen_spin.setToolTip("Pad or cut every text to this many token ids (at the start, as Keras does)")
        self.texts_as_box = _combo(TEXTS_AS_TITLES)
        self.texts_as_box.setToolTip("Token ids: the texts become padded word ids here, for a model that starts with "
                                     "an int Input and an Embedding. Raw text: the texts go in as strings, for a "
                                     "model whose Input has dtype string (TextVectorization turns them into ids).")
        text_page, _ = _form_page([("Text column:", self.text_column_box), ("Label column:", self.text_label_box),
                                   ("Texts as:", self.texts_as_box),
                                   ("Vocabulary size:", self.num_words_spin), ("Length:", self.maxlen_spin)])
        self.options = QStackedWidget()
        self.pages = {"csv": csv_page, "npz": self.arrays_page, "text": text_page}
        for page in self.pages.values():
            self.options.addWidget(page)

        self.validation_box = _combo(VALIDATION_TITLES)
        self.validation_box.setMinimumContentsLength(14)
        self.split_spin = QDoubleSpinBox()
        self.split_spin.setRange(0.01, 0.9)
        self.split_spin.setSingleStep(0.05)
        self.split_spin.setValue(0.2)
        self.split_spin.setMaximumWidth(90)
        for spin in (self.num_words_spin, self.maxlen_spin, self.split_spin):
            spin.setKeyboardTracking(False)  # typing "120" is one edit, not three (1, 12, 120)
        self.split_spin.setToolTip("The fraction of samples, taken from the end before shuffling, that validates "
                                   "(as Keras's validation_split)")
        self.validation_button = QPushButton("Choose…")
        self.validation_label = QLabel()
        validation_row = QHBoxLayout()
        for w in (self.validation_box, self.split_spin, self.validation_button):
            validation_row.addWidget(w)
        validation_row.addWidget(self.validation_label, 1)
        validation_row.addStretch(0)

        self.description = QLabel()
        self.description.setWordWrap(True)
        self.problems_label = QLabel()
        self.problems_label.setWordWrap(True)
        self.problems_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.table = QTableWidget(0, 0)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)

        source_row = QHBoxLayout()
        source_row.addWidget(self.sample_box, 1)
        source_row.addWidget(self.open_button)
        source_row.addWidget(self.folder_button)
        top = QFormLayout()
        top.addRow("Data:", source_row)
        top.addRow("", self.source_label)
        top.addRow("Kind:", self.kind_box)
        top.addRow(self.options)
        top.addRow("Validation:", validation_row)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(top)
        layout.addWidget(self.description)
        layout.addWidget(self.problems_label)
        layout.addWidget(self.table, 1)

        self.sample_box.currentIndexChanged.connect(self._sample_chosen)
        self.open_button.clicked.connect(self._open_file)
        self.folder_button.clicked.connect(self._open_folder)
        self.validation_button.clicked.connect(self._choose_validation_file)
        self.kind_box.currentIndexChanged.connect(self._kind_changed)
        for signal in (self.label_box.currentIndexChanged, self.label_mode_box.currentIndexChanged,
                       self.text_column_box.currentIndexChanged, self.text_label_box.currentIndexChanged,
                       self.texts_as_box.currentIndexChanged,
                       self.standardize_box.toggled, self.num_words_spin.valueChanged, self.maxlen_spin.valueChanged,
                       self.split_spin.valueChanged, self.feature_list.itemChanged,
                       self.validation_box.currentIndexChanged):
            signal.connect(self._edited)
        self._show_spec(None)

    # -- what the window and the training panel ask ----------------------------------------------------------------
    def show_document(self, doc, base=None) -> None:
        """Show the document's dataset (`doc.datasets[0]`) and check it against the drawn model. `base` is the
        project's folder, which relative paths in the spec are read from."""
        self._base = Path(base) if base is not None else None
        try:
            self._model, self._model_error = doc.to_model(), None
        except Exception as exc:  # noqa: BLE001 - any reason the drawing does not build is shown, not raised
            self._model, self._model_error = None, str(exc) or type(exc).__name__
        spec = doc.datasets[0] if doc.datasets and isinstance(doc.datasets[0], dict) else None
        self._show_spec(spec)

    def loaded(self):
        """The last data read for the current spec (`exporters.datasets.LoadedData`), or None."""
        return self._loaded

    def problems(self) -> list[str]:
        """Why training cannot start with this data: a read error, or each input or output the data does not fit."""
        return list(self._problems)

    def spec(self) -> dict | None:
        return None if self._spec is None else json.loads(json.dumps(self._spec))

    def busy(self) -> bool:
        return self.tasks.busy()

    def wait(self, ms: int = 30000) -> None:
        """End the reading threads (before the panel is closed)."""
        self.tasks.wait_all(ms)

    # -- dialogs (replaced in tests) -------------------------------------------------------------------------------
    def ask_open_path(self, title: str, filters: str) -> str | None:
        path, _ = QFileDialog.getOpenFileName(self, title, str(self._base or ""), filters)
        return path or None

    def ask_folder_path(self, title: str) -> str | None:
        return QFileDialog.getExistingDirectory(self, title, str(self._base or "")) or None

    # -- the user's choices ----------------------------------------------------------------------------------------
    @Slot(int)
    def _sample_chosen(self, index: int) -> None:
        if self._quiet:
            return
        name = self.sample_box.itemData(index)
        sample = next((s for s in datasets.sample_datasets() if s["name"] == name), None)
        if sample is not None:
            spec = sample["spec"]
            if spec.get("kind") == "text" and self._model_takes_text():
                spec["texts_as"] = "strings"
            self._change(spec)

    @Slot()
    def _open_file(self) -> None:
        path = self.ask_open_path("Open training data", DATA_FILTERS)
        if path:
            self._change(self._new_file_spec(path, "csv" if path.lower().endswith(".csv") else "npz"))

    @Slot()
    def _open_folder(self) -> None:
        path = self.ask_folder_path("Choose a folder with one sub-folder of .txt files per class")
        if path:
            self._change(self._new_file_spec(path, "text"))

    @Slot()
    def _choose_validation_file(self) -> None:
        if self._spec is None:
            return
        path = self.ask_open_path("Open validation data", DATA_FILTERS)
        if path:
            spec = self._spec_from_widgets()
            spec.pop("validation_split", None)
            spec["validation"] = dict(self._validation_names(spec), path=self._stored_path(path))
            self._change(spec)

    @Slot()
    def _kind_changed(self) -> None:
        if self._quiet or self._spec is None:
            return
        kind = self.kind_box.currentData()
        try:
            path = str(self._resolved(self._spec))
        except NetweaverError:
            path = str(self._spec.get("path", ""))  # the read error will name it
        self._change(self._new_file_spec(path, kind, keep_path=self._spec.get("path")))

    @Slot()
    def _edited(self) -> None:
        if self._quiet or self._spec is None:
            return
        if self.validation_box.currentData() == "file" and not self._spec.get("validation"):
            self._update_validation_widgets()  # the file is chosen with the button next to it
            return
        self._change(self._spec_from_widgets())

    def _change(self, spec: dict) -> None:
        self._show_spec(spec)
        self.specChanged.emit(self.spec())

    # -- specs --------------------------------------------------------------------------------------------------
    def _stored_path(self, path: str) -> str:
        """A path as the project stores it: relative to the project's folder when inside it."""
        p = Path(path).resolve()
        if self._base is not None:
            try:
                return p.relative_to(Path(self._base).resolve()).as_posix()
            except ValueError:
                pass
        return str(p)

    def _resolved(self, spec: dict) -> Path:
        return datasets.resolve_path(spec["path"], self._base)

    def _model_int_input(self):
        """(length, embedding input_dim) of the model's first integer input, for a new text dataset's defaults."""
        if self._model is None:
            return None, None
        for tensor in self._model.inputs:
            if "int" in str(tensor.dtype) and len(tensor.shape) == 2:
                dims = [e.input_dim for e in datasets.embeddings_fed_by(self._model, tensor)]
                return tensor.shape[1], (dims[0] if dims else None)
        return None, None

    def _model_takes_text(self) -> bool:
        """Whether the drawn model's first input takes raw text (dtype string)."""
        return self._model is not None and bool(self._model.inputs) and str(self._model.inputs[0].dtype) == "string"

    def _new_file_spec(self, path: str, kind: str, keep_path: str | None = None) -> dict:
        """A spec for a newly chosen file with sensible choices: the last column is the label, the other columns
        the features; an .npz's arrays named x*/y* feed the inputs and outputs; text takes the model's length."""
        stored = keep_path or self._stored_path(path)
        spec = {"kind": kind, "name": Path(path).stem, "path": stored, "validation_split": 0.2}
        try:
            columns = datasets.file_columns(Path(path))
        except NetweaverError:
            columns = []  # the read error is shown when the spec is loaded
        if kind == "csv":
            spec.update(features=columns[:-1], label=columns[-1] if columns else "", label_mode="int",
                        standardize=True)
        elif kind == "npz":
            if path.lower().endswith(".npy"):
                spec["y"] = [int(columns[-1])] if columns else []
            else:
                xs = [c for c in columns if c.lower().startswith("x")] or columns[:1]
                ys = [c for c in columns if c.lower().startswith("y")] or columns[-1:]
                n_in = len(self._model.inputs) if self._model is not None else 1
                n_out = len(self._model.outputs) if self._model is not None else 1
                spec.update(x=[xs[min(i, len(xs) - 1)] for i in range(n_in)] if xs else [],
                            y=[ys[min(i, len(ys) - 1)] for i in range(n_out)] if ys else [])
        else:
            length, input_dim = self._model_int_input()
            spec.update(num_words=input_dim or 10_000, maxlen=length or 100)
            if self._model_takes_text():
                spec["texts_as"] = "strings"
            if not Path(path).is_dir():
                spec.update(text_column="text" if "text" in columns else (columns[0] if columns else ""),
                            label_column="label" if "label" in columns else (columns[-1] if columns else ""))
        return spec

    def _validation_names(self, spec: dict) -> dict:
        """A validation file of arrays names the same arrays (or columns) as the training file."""
        return {k: spec[k] for k in ("x", "y") if k in spec} if spec.get("kind") == "npz" else {}

    def _spec_from_widgets(self) -> dict:
        spec = {k: v for k, v in self._spec.items() if k not in ("validation_split", "validation")}
        kind = spec.get("kind")
        if kind == "csv":
            spec["features"] = [self.feature_list.item(i).text() for i in range(self.feature_list.count())
                                if self.feature_list.item(i).checkState() == Qt.Checked]
            spec["label"] = self.label_box.currentText()
            spec["label_mode"] = self.label_mode_box.currentData()
            spec["standardize"] = self.standardize_box.isChecked()
        elif kind in ("npz", None):
            spec["y"] = [self._array_value(b) for b in self.y_boxes]
            if "x" in spec or not str(spec.get("path", "")).lower().endswith(".npy"):
                spec["x"] = [self._array_value(b) for b in self.x_boxes]
        elif kind == "text":
            spec["num_words"] = self.num_words_spin.value()
            spec["maxlen"] = self.maxlen_spin.value()
            if self.texts_as_box.currentData() == "strings":
                spec["texts_as"] = "strings"
            else:
                spec.pop("texts_as", None)
            if "text_column" in spec or "label_column" in spec:
                spec["text_column"] = self.text_column_box.currentText()
                spec["label_column"] = self.text_label_box.currentText()
        mode = self.validation_box.currentData()
        if mode == "split":
            spec["validation_split"] = round(self.split_spin.value(), 4)
        elif mode == "file" and self._spec.get("validation"):
            val = dict(self._spec["validation"])
            if val.get("path"):
                val.update(self._validation_names(spec))  # arrays of a validation file follow the training file's
            spec["validation"] = val
        return spec

    def _array_value(self, box: QComboBox):
        value = box.currentText()
        return int(value) if str(self._spec.get("path", "")).lower().endswith(".npy") and value.isdigit() else value

    # -- showing a spec --------------------------------------------------------------------------------------------
    def _show_spec(self, spec: dict | None) -> None:
        self._spec = None if spec is None else json.loads(json.dumps(spec))
        self._quiet = True
        try:
            self._fill_widgets()
        finally:
            self._quiet = False
        self._reload()

    def _fill_widgets(self) -> None:
        spec = self._spec
        enabled = spec is not None
        for w in (self.kind_box, self.options, self.validation_box, self.split_spin, self.validation_button):
            w.setEnabled(enabled)
        sample = next((s for s in datasets.sample_datasets() if spec and s["spec"]["path"] == spec.get("path")), None)
        _select(self.sample_box, sample["name"] if sample else "")
        if spec is None:
            self.source_label.setText("No data chosen: pick a sample dataset, or open a CSV, NPZ/NPY file or a "
                                      "folder of texts.")
            return
        kind = spec.get("kind") or "npz"  # the older form without a kind names arrays (or columns) too
        _select(self.kind_box, kind)
        for name, page in self.pages.items():  # the stack takes the height of the page shown, not the tallest
            page.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Preferred if name == kind else QSizePolicy.Ignored)
        self.options.setCurrentWidget(self.pages[kind])
        self.options.adjustSize()
        path = str(spec.get("path", ""))
        self.source_label.setText(f"{spec.get('name') or Path(path).stem}: {path}" +
                                  (f" (licence: {sample['licence']})" if sample else ""))
        try:
            columns = datasets.file_columns(self._resolved(spec))
        except NetweaverError:
            columns = []
        if kind == "csv":
            self._fill_csv(spec, columns)
        elif kind == "npz":
            self._fill_arrays(spec, columns)
        else:
            self._fill_text(spec, columns)
        self._update_validation_widgets()

    def _fill_csv(self, spec: dict, columns: list[str]) -> None:
        label = spec.get("label")
        features = spec.get("features")
        self.feature_list.clear()
        for c in columns:
            item = QListWidgetItem(c)
            item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
            on = c in features if features is not None else c != label
            item.setCheckState(Qt.Checked if on else Qt.Unchecked)
            self.feature_list.addItem(item)
        self._fill_choices(self.label_box, columns, label if isinstance(label, str) else (label or [""])[0])
        _select(self.label_mode_box, spec.get("label_mode", "int"))
        self.standardize_box.setChecked(bool(spec.get("standardize")))

    def _fill_arrays(self, spec: dict, columns: list[str]) -> None:
        while self.arrays_form.rowCount():
            self.arrays_form.removeRow(0)
        self.x_boxes, self.y_boxes = [], []
        xs = spec.get("x") or []
        xs = xs if isinstance(xs, list) else [xs]
        ys = spec.get("y") or []
        ys = ys if isinstance(ys, list) else [ys]
        npy = str(spec.get("path", "")).lower().endswith(".npy")
        in_names = [t.name for t in self._model.inputs] if self._model is not None else []
        out_names = [datasets.output_name(t) for t in self._model.outputs] if self._model is not None else []
        if not (npy and "x" not in spec):
            for i in range(max(len(xs), len(in_names), 1)):
                box = self._fill_choices(_combo([]), columns, str(xs[i]) if i < len(xs) else "")
                self.arrays_form.addRow(f"Input '{in_names[i]}':" if i < len(in_names) else "Input (x):", box)
                box.currentIndexChanged.connect(self._edited)
                self.x_boxes.append(box)
        else:
            self.arrays_form.addRow(QLabel("Inputs: every column that the targets do not take."))
        for i in range(max(len(ys), len(out_names), 1)):
            box = self._fill_choices(_combo([]), columns, str(ys[i]) if i < len(ys) else "")
            what = "column" if npy else "array"
            self.arrays_form.addRow(f"Output '{out_names[i]}' ({what}):" if i < len(out_names) else
                                    f"Targets (y {what}):", box)
            box.currentIndexChanged.connect(self._edited)
            self.y_boxes.append(box)

    def _fill_text(self, spec: dict, columns: list[str]) -> None:
        is_csv = str(spec.get("path", "")).lower().endswith(".csv")
        self.text_column_box.setEnabled(is_csv)
        self.text_label_box.setEnabled(is_csv)
        self._fill_choices(self.text_column_box, columns if is_csv else [], spec.get("text_column", ""))
        self._fill_choices(self.text_label_box, columns if is_csv else [], spec.get("label_column", ""))
        self.num_words_spin.setValue(int(spec.get("num_words") or 10_000))
        self.maxlen_spin.setValue(int(spec.get("maxlen") or 100))
        strings = spec.get("texts_as") == "strings"
        _select(self.texts_as_box, "strings" if strings else "token_ids")
        self.num_words_spin.setEnabled(not strings)  # the model's own TextVectorization chooses both
        self.maxlen_spin.setEnabled(not strings)

    @staticmethod
    def _fill_choices(box: QComboBox, choices: list[str], current: str) -> QComboBox:
        box.blockSignals(True)
        box.clear()
        for c in choices:
            box.addItem(c, c)
        if current and box.findData(current) < 0:
            box.addItem(current, current)  # a name the file lacks: kept, and the read error names it
        _select(box, current)
        box.blockSignals(False)
        return box

    def _update_validation_widgets(self) -> None:
        spec = self._spec or {}
        if self._quiet:
            mode = "file" if spec.get("validation") else ("split" if spec.get("validation_split") else "none")
            _select(self.validation_box, mode)
            if spec.get("validation_split"):
                self.split_spin.setValue(float(spec["validation_split"]))
        mode = self.validation_box.currentData()
        self.split_spin.setVisible(mode == "split")
        self.validation_button.setVisible(mode == "file")
        val = spec.get("validation") or {}
        self.validation_label.setVisible(mode == "file")
        if val.get("path"):
            self.validation_label.setText(str(val["path"]))
        elif val:  # the older form: validation arrays in the training file
            names = [str(n) for k in ("x", "y") for n in (val[k] if isinstance(val.get(k), list) else [val.get(k)])]
            self.validation_label.setText(f"arrays {', '.join(names)} of the same file")
        else:
            self.validation_label.setText("choose the file")

    # -- reading and checking -----------------------------------------------------------------------------------
    def _reload(self) -> None:
        spec = self._spec
        if spec is None:
            self._loaded, self._load_error, self._loaded_key = None, None, None
            self._show_table([], [])
            self._update_checks()
            self.dataShown.emit()
            return
        key = json.dumps([spec, str(self._base)], sort_keys=True)
        if key == self._loaded_key:
            self._update_checks()  # the same data: only the model may have changed
            self.dataShown.emit()
            return
        self._request += 1
        self._loaded_key = key
        try:
            path = self._resolved(spec)
            # a Tokenizer over many texts, a folder of files or a large file would stall the GUI: read those on a
            # worker thread
            large = spec.get("kind") == "text" or path.is_dir() or path.stat().st_size > BACKGROUND_BYTES
        except (NetweaverError, OSError):
            large = False
        if large:
            self._loaded, self._load_error = None, None
            self.description.setText("Reading the data…")
            self.tasks.start(_read, (spec, self._base, self._request), self._read_done, self._read_failed)
        else:
            self._show_read(_read(spec, self._base, self._request))

    @Slot(object)
    def _read_done(self, result) -> None:
        if result[0] == self._request:  # else a later choice replaced this one while it was read
            self._show_read(result)

    @Slot(str)
    def _read_failed(self, text: str) -> None:  # only a failure of the thread itself: _read reports bad data
        self._show_read((self._request, [], [], None, text))

    def _show_read(self, result) -> None:
        _, headers, rows, loaded, error = result
        self._loaded, self._load_error = loaded, error
        self._show_table(headers, rows)
        self._update_checks()
        self.dataShown.emit()

    def _show_table(self, headers: list[str], rows: list[list[str]]) -> None:
        self.table.clear()
        self.table.setColumnCount(len(headers))
        self.table.setRowCount(len(rows))
        self.table.setHorizontalHeaderLabels(headers)
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                item = QTableWidgetItem(text)
                item.setToolTip(text if len(text) > 40 else "")
                self.table.setItem(r, c, item)
        for c in range(len(headers)):
            fit = max(self.table.sizeHintForColumn(c), self.table.horizontalHeader().sectionSizeHint(c))
            self.table.setColumnWidth(c, min(320, max(60, fit + 12)))

    def _update_checks(self) -> None:
        problems = []
        if self._load_error:
            problems.append(self._load_error)
        elif self._loaded is not None and self._model is not None:
            problems = datasets.check_fits(self._loaded, self._model)
        self._problems = problems
        self.description.setText(self._loaded.description if self._loaded is not None else "")
        if problems:
            self.problems_label.setStyleSheet("color: #c0392b;")
            self.problems_label.setText("\n".join(f"✗ {p}" for p in problems))
        elif self._loaded is not None and self._model is not None:
            self.problems_label.setStyleSheet("color: #1e8449;")
            self.problems_label.setText(f"✓ The data fits model '{self._model.name}'.")
        elif self._loaded is not None and self._model_error:
            self.problems_label.setStyleSheet("")
            self.problems_label.setText(f"The drawing does not build a model yet, so the data is not checked "
                                        f"against it ({self._model_error}).")
        else:
            self.problems_label.setStyleSheet("")
            self.problems_label.setText("")
