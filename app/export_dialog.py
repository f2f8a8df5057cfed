"""The export dialog: a format (Keras JSON, YAML, HDF5 whole model or weights, .keras, ONNX, Python source), the Keras
it is for (Keras 3 or tf.keras 2; by default the one the model came from), a file, and a verified write.

After writing, the file is read back and its predictions compared with the model's on a batch of the project's data
(or random data of the inputs' shapes), and the largest difference is shown in green, or in red with the output where
it occurred when the check fails (the file stays on disk). The work runs on a worker thread (`exporters.verify` and
`exporters.model_export` do it, without Qt); `ask_save_path` is the one file chooser, which tests replace.
"""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout, \
    QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from app.workers import TaskRunner
from core.document import Document
from core.errors import NetweaverError
from exporters.model_export import FORMATS, TARGETS, suggested_name

OK_COLOUR, FAIL_COLOUR = "#1b7f3b", "#b00020"


def export_and_verify(model, path: str, fmt: str, target: str, verify: bool, data=None, settings=None,
                      dataset_note: str = ""):
    """Write (and, if asked, verify) on the worker thread. `settings` given with fmt 'py': a training script with
    the project's data. Returns (path, Verification or None)."""
    from exporters.model_export import write_export
    from exporters.python_source import export_training_script
    from exporters.verify import sample_inputs, verify_export

    if fmt == "py" and settings is not None:
        written = export_training_script(model, path, settings, data, target, dataset_note)
    else:
        written = write_export(model, path, fmt, target)
    if not verify:
        return written, None
    xs, inputs = sample_inputs(model, data)
    return written, verify_export(model, written, fmt, xs, inputs)


class ExportDialog(QDialog):
    exported = Signal(object)  # (path, Verification or None) once written

    def __init__(self, doc: Document, data=None, folder: str | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Export model")
        self.doc, self.data = doc, data
        self.folder = Path(folder) if folder else Path.cwd()
        self.result = None  # (path, Verification or None) of the last export
        self.tasks = TaskRunner(self)

        self.format_choice = QComboBox()
        for key, f in FORMATS.items():
            self.format_choice.addItem(f.label, key)
        self.target_choice = QComboBox()
        for key, label in TARGETS.items():
            self.target_choice.addItem(label, key)
        came_from = doc.keras_generation
        self.target_choice.setCurrentIndex(list(TARGETS).index(came_from or "keras3"))
        self.target_note = QLabel(f"(the model came from {TARGETS[came_from]})" if came_from else
                                  "(drawn here: Keras 3 by default)")
        self.training_script = QCheckBox("Training script: the project's data, compile and fit settings (python "
                                         "FILE --train)")
        self.path_edit = QLineEdit()
        self.browse_button = QPushButton("Browse…")
        self.verify_check = QCheckBox("Verify: read the file back and compare its predictions with the model's")
        self.verify_check.setChecked(True)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.status.setMinimumHeight(48)
        self.buttons = QDialogButtonBox(QDialogButtonBox.Close)
        self.export_button = self.buttons.addButton("Export", QDialogButtonBox.AcceptRole)

        target_row = QHBoxLayout()
        target_row.addWidget(self.target_choice)
        target_row.addWidget(self.target_note, 1)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(self.browse_button)
        form = QFormLayout()
        form.addRow("Format", self.format_choice)
        form.addRow("For", target_row)
        form.addRow("", self.training_script)
        form.addRow("File", path_row)
        form.addRow("", self.verify_check)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)

        self.format_choice.currentIndexChanged.connect(self._format_changed)
        self.target_choice.currentIndexChanged.connect(self._format_changed)
        self.browse_button.clicked.connect(self.browse)
        self.export_button.clicked.connect(self.export)
        self.buttons.rejected.connect(self.reject)
        self.buttons.button(QDialogButtonBox.Close).clicked.connect(self.reject)
        self._format_changed()
        self.resize(640, self.sizeHint().height())

    # -- choices ------------------------------------------------------------------------------------------------
    @property
    def fmt(self) -> str:
        return self.format_choice.currentData()

    @property
    def target(self) -> str:
        return self.target_choice.currentData() if FORMATS[self.fmt].has_target else "keras3"

    def set_format(self, fmt: str, target: str | None = None) -> None:
        self.format_choice.setCurrentIndex(list(FORMATS).index(fmt))
        if target is not None:
            self.target_choice.setCurrentIndex(list(TARGETS).index(target))

    def _format_changed(self) -> None:
        has_target = FORMATS[self.fmt].has_target
        self.target_choice.setEnabled(has_target)
        if not has_target:
            self.target_note.setText("ONNX: one file for every runtime" if self.fmt == "onnx" else
                                     ".keras archives are Keras 3's")
        else:
            came_from = self.doc.keras_generation
            self.target_note.setText(f"(the model came from {TARGETS[came_from]})" if came_from else
                                     "(drawn here: Keras 3 by default)")
        script_possible = self.fmt == "py" and bool(self.doc.training.get("loss")) and self.data is not None
        self.training_script.setVisible(self.fmt == "py")
        self.training_script.setEnabled(script_possible)
        if self.fmt == "py" and not script_possible:
            self.training_script.setChecked(False)
            self.training_script.setToolTip("Needs a loss in the Training panel and data in the Data panel.")
        self.path_edit.setText(str(self.folder / suggested_name(self.doc.name or "model", self.fmt, self.target)))

    def ask_save_path(self, title: str, filters: str, suggested: str) -> str | None:
        path, _ = QFileDialog.getSaveFileName(self, title, suggested, filters)
        return path or None

    def browse(self) -> None:
        suffix = suggested_name("x", self.fmt, self.target)[1:]
        path = self.ask_save_path("Export model", f"{FORMATS[self.fmt].label} (*{suffix})", self.path_edit.text())
        if path:
            self.path_edit.setText(path)

    # -- writing ------------------------------------------------------------------------------------------------
    def busy(self) -> bool:
        return self.tasks.busy()

    def export(self) -> bool:
        """Write the file (and verify it) on a worker; False when it could not start."""
        path = self.path_edit.text().strip()
        if not path:
            self.browse()
            path = self.path_edit.text().strip()
            if not path:
                return False
        try:
            model = self.doc.to_model()
        except NetweaverError as exc:
            self._show(f"Cannot export: {exc}", FAIL_COLOUR)
            return False
        settings = dict(self.doc.training) if self.fmt == "py" and self.training_script.isChecked() else None
        note = ""
        if settings is not None and self.doc.datasets:
            spec = self.doc.datasets[0]
            note = f"{spec.get('kind', 'data')} {spec.get('path') or spec.get('name') or ''}".strip()
        self.result = None
        self.export_button.setEnabled(False)
        self._show(f"Writing {Path(path).name}…", "#444444")
        self.tasks.start(export_and_verify, (model, path, self.fmt, self.target, self.verify_check.isChecked(),
                                             self.data, settings, note), self._done, self._failed)
        return True

    @Slot(object)
    def _done(self, result) -> None:
        path, verification = result
        self.result = result
        self.export_button.setEnabled(True)
        if verification is None:
            self._show(f"Wrote {path} (not verified).", "#444444")
        else:
            self._show(verification.message, OK_COLOUR if verification.ok else FAIL_COLOUR)
        self.exported.emit(result)

    @Slot(str)
    def _failed(self, message: str) -> None:
        self.export_button.setEnabled(True)
        self._show(f"Export failed: {message}", FAIL_COLOUR)

    def _show(self, text: str, colour: str) -> None:
        self.status.setText(f'<span style="color:{colour}">{html.escape(text, quote=False)}</span>')

    def done(self, r: int) -> None:  # closing waits for a running export (no thread outlives the dialog)
        self.tasks.wait_all()
        super().done(r)
