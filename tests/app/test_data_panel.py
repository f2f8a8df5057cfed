"""The data panel driven like a user, offscreen: pick a sample, open a CSV and set its columns and labels, a text
folder, validation by split or file; the preview, the checks against the drawn model and the specs it sends."""

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFormLayout

from app.data_panel import DataPanel
from exporters.datasets import sample_datasets
from exporters.project import load_project

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"


@pytest.fixture
def panel(qtbot):
    p = DataPanel()
    qtbot.addWidget(p)
    p.resize(560, 620)
    p.show()
    sent = []
    p.specChanged.connect(sent.append)
    p.sent = sent
    yield p
    p.wait()


def _doc(example, datasets=None):
    doc = load_project(EXAMPLES / f"{example}.nwproj")
    if datasets is not None:
        doc.datasets = datasets
    return doc


def _choose_sample(panel, name):
    index = panel.sample_box.findData(name)
    assert index > 0
    panel.sample_box.setCurrentIndex(index)


def _table(panel):
    return [[panel.table.item(r, c).text() for c in range(panel.table.columnCount())]
            for r in range(panel.table.rowCount())]


def test_choosing_a_sample_sends_its_spec_previews_it_and_checks_it(panel):
    panel.show_document(_doc("iris_mlp", datasets=[]))
    assert panel.loaded() is None and panel.problems() == [] and "No data chosen" in panel.source_label.text()
    _choose_sample(panel, "iris")
    iris = next(s["spec"] for s in sample_datasets() if s["name"] == "iris")
    assert panel.sent == [iris]
    assert panel.loaded().description == "150 samples, 4 features, 3 classes (120 for training, 30 for validation)"
    assert [panel.table.horizontalHeaderItem(c).text() for c in range(5)] == iris["features"] + ["species"]
    rows = _table(panel)
    assert len(rows) == 20 and rows[0] == ["6.1", "2.8", "4.0", "1.3", "versicolor"]
    assert panel.problems() == [] and "fits model 'iris_mlp'" in panel.problems_label.text()
    assert panel.kind_box.currentData() == "csv" and panel.label_box.currentText() == "species"


def test_a_shape_mismatch_names_the_input_and_both_shapes(panel):
    iris = next(s["spec"] for s in sample_datasets() if s["name"] == "iris")
    panel.show_document(_doc("mlp", datasets=[iris]))  # the MLP takes 32 features, Iris has 4
    expected = "input 'input_layer' expects (None, 32), the data gives (120, 4)."
    assert expected in panel.problems()
    assert "output 'dense_2' has 10 units, but the data has 3 classes: give it 3 units." in panel.problems()
    assert expected in panel.problems_label.text()
    assert panel.sent == []  # showing the document is not an edit


def test_open_a_csv_choose_columns_and_label_mode(panel, tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    lines = ["id,height,weight,kind"] + [f"{i},{rng.random():.3f},{rng.random():.3f},{'ab'[i % 2]}"
                                         for i in range(30)]
    (tmp_path / "animals.csv").write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(DataPanel, "ask_open_path", lambda self, title, filters: str(tmp_path / "animals.csv"))
    panel.show_document(_doc("iris_mlp", datasets=[]), base=tmp_path)
    panel.open_button.click()
    assert panel.sent[-1] == {"kind": "csv", "name": "animals", "path": "animals.csv", "validation_split": 0.2,
                              "features": ["id", "height", "weight"], "label": "kind", "label_mode": "int",
                              "standardize": True}  # relative to the project's folder
    assert _table(panel)[:2] == [line.split(",") for line in lines[1:3]]

    panel.feature_list.item(0).setCheckState(Qt.Unchecked)  # drop the id column
    assert panel.sent[-1]["features"] == ["height", "weight"]
    panel.label_mode_box.setCurrentIndex(panel.label_mode_box.findData("one_hot"))
    assert panel.sent[-1]["label_mode"] == "one_hot" and panel.loaded().y[0].shape == (24, 2)
    assert panel.loaded().x[0].shape == (24, 2) and panel.loaded().class_names == ["a", "b"]
    # iris_mlp takes 4 features into 3 classes: both are named
    assert panel.problems() == ["input 'measurements' expects (None, 4), the data gives (24, 2).",
                                "output 'species' gives (None, 3), the targets are (24, 2)."]
    panel.split_spin.setValue(0.5)
    assert panel.sent[-1]["validation_split"] == 0.5 and len(panel.loaded().validation[0][0]) == 15


def test_a_bad_csv_shows_its_rows_and_the_message_with_row_and_column(panel, tmp_path, monkeypatch):
    (tmp_path / "bad.csv").write_text("a,b,label\n1,2,x\n3,,y\n")
    monkeypatch.setattr(DataPanel, "ask_open_path", lambda self, title, filters: str(tmp_path / "bad.csv"))
    panel.show_document(_doc("iris_mlp", datasets=[]))
    panel.open_button.click()
    assert panel.sent[-1]["path"] == str(tmp_path / "bad.csv")  # an unsaved project stores the absolute path
    assert panel.loaded() is None
    assert panel.problems() == ["'bad.csv', row 2 (line 3), column 'b': missing value; every cell needs a number."]
    assert "row 2 (line 3), column 'b'" in panel.problems_label.text()
    assert _table(panel) == [["1", "2", "x"], ["3", "", "y"]]


def test_validation_file_is_chosen_with_its_button(panel, tmp_path, monkeypatch):
    for name in ("train.csv", "val.csv"):
        (tmp_path / name).write_text("a,b,label\n1,2,x\n3,4,y\n5,6,x\n")
    chosen = iter([str(tmp_path / "train.csv"), str(tmp_path / "val.csv")])
    monkeypatch.setattr(DataPanel, "ask_open_path", lambda self, title, filters: next(chosen))
    panel.show_document(_doc("iris_mlp", datasets=[]), base=tmp_path)
    panel.open_button.click()
    count = len(panel.sent)
    panel.validation_box.setCurrentIndex(panel.validation_box.findData("file"))
    assert len(panel.sent) == count and panel.validation_button.isVisible()  # nothing to send until a file is chosen
    panel.validation_button.click()
    spec = panel.sent[-1]
    assert spec["validation"] == {"path": "val.csv"} and "validation_split" not in spec
    assert panel.loaded().validation[1][0].tolist() == [0, 1, 0]
    assert panel.validation_label.text() == "val.csv"


def test_text_folder_reads_on_a_worker_with_the_models_length_and_vocabulary(panel, qtbot, tmp_path, monkeypatch):
    for label, words in [("neg", "awful dull"), ("pos", "great fun")]:
        (tmp_path / "reviews" / label).mkdir(parents=True)
        for i in range(5):
            (tmp_path / "reviews" / label / f"{i}.txt").write_text(f"{words} film {i}")
    monkeypatch.setattr(DataPanel, "ask_folder_path", lambda self, title: str(tmp_path / "reviews"))
    panel.show_document(_doc("austen_lstm", datasets=[]), base=tmp_path)
    with qtbot.waitSignal(panel.dataShown, timeout=10000):
        panel.folder_button.click()
    assert panel.sent[-1] == {"kind": "text", "name": "reviews", "path": "reviews", "validation_split": 0.2,
                              "num_words": 5000, "maxlen": 50}  # austen_lstm: Embedding(5000), 50 tokens
    assert panel.loaded().x[0].shape == (8, 50) and panel.loaded().class_names == ["neg", "pos"]
    assert panel.problems() == ["output 'novel' has 3 units, but the data has 2 classes: give it 2 units."]
    assert _table(panel)[0][0] in ("neg", "pos") and len(_table(panel)) == 10


def test_an_older_project_dataset_shows_and_fits(panel):
    doc = _doc("mlp")  # {"path": "mlp_data.npz", "x": ["x_train"], "y": ["y_train"], "validation": {...}}
    panel.show_document(doc, base=EXAMPLES)
    assert panel.problems() == [] and panel.loaded().x[0].shape == (1000, 32)
    assert panel.x_boxes[0].currentText() == "x_train" and panel.y_boxes[0].currentText() == "y_train"
    assert panel.validation_label.text() == "arrays x_val, y_val of the same file"
    assert panel.table.columnCount() == 4 and panel.sent == []


def test_the_same_spec_again_only_rechecks_the_model(panel, monkeypatch):
    iris = next(s["spec"] for s in sample_datasets() if s["name"] == "iris")
    panel.show_document(_doc("iris_mlp", datasets=[iris]))
    first = panel.loaded()
    panel.show_document(_doc("mlp", datasets=[iris]))
    assert panel.loaded() is first and panel.problems()[0].startswith("input 'input_layer' expects (None, 32)")


def test_npz_arrays_are_chosen_per_model_input_and_output(panel, tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "pairs.npz", enc=rng.integers(1, 900, (12, 7)), dec=rng.integers(1, 900, (12, 5)),
             label=np.arange(12) % 10)
    monkeypatch.setattr(DataPanel, "ask_open_path", lambda self, title, filters: str(tmp_path / "pairs.npz"))
    panel.show_document(_doc("encoder_decoder", datasets=[]), base=tmp_path)
    panel.open_button.click()
    assert [panel.arrays_form.itemAt(i, QFormLayout.LabelRole).widget().text() for i in range(3)] == [
        "Input 'encoder_tokens':", "Input 'decoder_tokens':", "Output 'predictions' (array):"]
    assert panel.sent[-1]["x"] == ["enc", "enc"]
    panel.x_boxes[1].setCurrentIndex(panel.x_boxes[1].findData("dec"))
    panel.y_boxes[0].setCurrentIndex(panel.y_boxes[0].findData("label"))
    assert panel.sent[-1] == {"kind": "npz", "name": "pairs", "path": "pairs.npz", "validation_split": 0.2,
                              "x": ["enc", "dec"], "y": ["label"]}
    assert panel.problems() == [] and [a.shape for a in panel.loaded().x] == [(9, 7), (9, 5)]
    assert panel.table.horizontalHeaderItem(0).text() == "enc (12, 7) int64"


def test_a_slow_read_that_a_later_choice_replaced_is_dropped(panel, qtbot, tmp_path, monkeypatch):
    for label in ("neg", "pos"):
        (tmp_path / "reviews" / label).mkdir(parents=True)
        (tmp_path / "reviews" / label / "a.txt").write_text(f"{label} words")
    monkeypatch.setattr(DataPanel, "ask_folder_path", lambda self, title: str(tmp_path / "reviews"))
    panel.show_document(_doc("iris_mlp", datasets=[]))
    panel.folder_button.click()  # read on a worker thread
    _choose_sample(panel, "iris")  # read at once
    panel.wait()
    qtbot.wait(50)  # the worker's reply arrives through the event loop
    assert panel.loaded().class_names == ["setosa", "versicolor", "virginica"] and panel.problems() == []
    assert panel.table.columnCount() == 5


def test_a_csv_text_column_becomes_token_ids(panel, qtbot, tmp_path, monkeypatch):
    rows = [f'"{w} {w} plot {i}",{"pos" if w == "good" else "neg"}' for i, w in enumerate(["good", "bad"] * 6)]
    (tmp_path / "reviews.csv").write_text("review,label\n" + "\n".join(rows) + "\n")
    monkeypatch.setattr(DataPanel, "ask_open_path", lambda self, title, filters: str(tmp_path / "reviews.csv"))
    panel.show_document(_doc("austen_lstm", datasets=[]), base=tmp_path)
    panel.open_button.click()
    assert panel.sent[-1]["kind"] == "csv" and panel.problems()[0].startswith("'reviews.csv', row 1 (line 2), "
                                                                              "column 'review': 'good good plot 0' is")
    with qtbot.waitSignal(panel.dataShown, timeout=10000):
        panel.kind_box.setCurrentIndex(panel.kind_box.findData("text"))
    assert panel.sent[-1] == {"kind": "text", "name": "reviews", "path": "reviews.csv", "validation_split": 0.2,
                              "num_words": 5000, "maxlen": 50, "text_column": "review", "label_column": "label"}
    assert panel.text_column_box.currentText() == "review" and panel.loaded().x[0].shape == (9, 50)
    with qtbot.waitSignal(panel.dataShown, timeout=10000):
        panel.maxlen_spin.setValue(4)
    assert panel.sent[-1]["maxlen"] == 4 and panel.loaded().x[0].shape == (9, 4)
    assert panel.problems() == ["input 'tokens' expects (None, 50), the data gives (9, 4).",
                                "output 'novel' has 3 units, but the data has 2 classes: give it 2 units."]


def test_typing_a_number_is_one_edit(panel, qtbot):
    panel.show_document(_doc("iris_mlp", datasets=[]))
    _choose_sample(panel, "iris")
    count = len(panel.sent)
    panel.split_spin.lineEdit().selectAll()
    qtbot.keyClicks(panel.split_spin, "0.35")
    assert len(panel.sent) == count
    qtbot.keyClick(panel.split_spin, Qt.Key_Return)
    assert len(panel.sent) == count + 1 and panel.sent[-1]["validation_split"] == 0.35
    assert len(panel.loaded().validation[0][0]) == 150 - int(150 * 0.65)


def test_texts_as_raw_text_feeds_strings_and_names_a_number_input_that_cannot_take_them(panel, qtbot):
    panel.show_document(_doc("austen_lstm", datasets=[]))  # an int Input of token ids and an Embedding
    with qtbot.waitSignal(panel.dataShown, timeout=10000):
        _choose_sample(panel, "austen_passages")
    assert "texts_as" not in panel.sent[-1] and panel.texts_as_box.currentData() == "token_ids"
    assert panel.loaded().x[0].shape == (720, 50) and panel.problems() == []
    with qtbot.waitSignal(panel.dataShown, timeout=10000):
        panel.texts_as_box.setCurrentIndex(panel.texts_as_box.findData("strings"))
    assert panel.sent[-1]["texts_as"] == "strings"
    assert not panel.num_words_spin.isEnabled() and not panel.maxlen_spin.isEnabled()
    x = panel.loaded().x[0]
    assert x.dtype == object and x.shape == (720, 1) and x[0, 0].startswith("He had been thinking it over")
    assert panel.problems() == [
        "input 'tokens' expects numbers (int32), the data gives raw text (strings). Give the input dtype string and "
        "turn the text into ids inside the model (TextVectorization), or let the Data panel feed token ids (Texts "
        "as: token ids)."]
    with qtbot.waitSignal(panel.dataShown, timeout=10000):
        panel.texts_as_box.setCurrentIndex(panel.texts_as_box.findData("token_ids"))
    assert "texts_as" not in panel.sent[-1] and panel.problems() == []
