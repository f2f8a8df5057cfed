"""core.evaluation against numbers worked by hand and by the metrics Keras's own definitions give; core.model_diff
on two drawn models."""

import numpy as np
import pytest

from core.evaluation import ClassificationReport, RegressionReport, report
from core.model_diff import diff_models


def test_a_classifiers_confusion_matrix_precision_recall_and_per_sample_loss():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.6, 0.3, 0.1], [0.2, 0.2, 0.6], [0.1, 0.6, 0.3]])
    labels = np.array([0, 1, 1, 2, 2])
    r = report(labels, probs, "sparse_categorical_crossentropy", ["a", "b", "c"])
    assert isinstance(r, ClassificationReport) and r.classes == ["a", "b", "c"]
    np.testing.assert_array_equal(r.confusion, [[1, 0, 0], [1, 1, 0], [0, 1, 1]])
    np.testing.assert_allclose(r.precision, [0.5, 0.5, 1.0])
    np.testing.assert_allclose(r.recall, [1.0, 0.5, 0.5])
    np.testing.assert_allclose(r.f1, [2 / 3, 0.5, 2 / 3])
    np.testing.assert_allclose(r.loss, -np.log([0.7, 0.8, 0.3, 0.6, 0.3]))
    np.testing.assert_allclose(r.confidence, [0.7, 0.8, 0.6, 0.6, 0.6])
    assert r.accuracy == pytest.approx(0.6)
    np.testing.assert_allclose(r.normalized()[1], [0.5, 0.5, 0.0])
    # one-hot labels give the same report
    onehot = report(np.eye(3)[labels], probs, "categorical_crossentropy")
    np.testing.assert_array_equal(onehot.confusion, r.confusion)


def test_the_per_sample_loss_averages_to_keras_sparse_cross_entropy():
    from core import losses

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(40, 4))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = rng.integers(0, 4, 40)
    r = report(labels, probs, "sparse_categorical_crossentropy")
    keras_mean = float(np.asarray(losses.sparse_categorical_crossentropy(labels, probs.astype("float32"))).mean())
    assert r.loss.mean() == pytest.approx(keras_mean, rel=1e-5)


def test_one_sigmoid_unit_with_a_binary_loss_is_a_two_class_classifier():
    r = report(np.array([0, 1, 1, 0]), np.array([[0.2], [0.9], [0.4], [0.6]]), "binary_crossentropy")
    np.testing.assert_array_equal(r.confusion, [[1, 1], [1, 1]])
    np.testing.assert_allclose(r.loss, -np.log([0.8, 0.9, 0.4, 0.4]))


def test_a_regressor_gets_its_residuals_and_labels_out_of_range_are_named():
    r = report(np.array([[1.0], [2.0]]), np.array([[1.5], [1.0]]), "mse")
    assert isinstance(r, RegressionReport)
    np.testing.assert_allclose(r.residual.reshape(-1), [0.5, -1.0])
    np.testing.assert_allclose(r.loss, [0.25, 1.0])
    with pytest.raises(ValueError, match="labels run from 0 to 5, but the output has 3 classes"):
        report(np.array([0, 5]), np.full((2, 3), 1 / 3), "sparse_categorical_crossentropy")


def _graph(units=8, extra=False, rewire=False):
    nodes = [{"id": "n1", "class_name": "InputLayer", "config": {"name": "x", "shape": [4]}},
             {"id": "n2", "class_name": "Dense", "config": {"name": "hidden", "units": units}},
             {"id": "n3", "class_name": "Dense", "config": {"name": "out", "units": 2}}]
    wires = [{"src": "n1", "src_port": 0, "dst": "n2", "dst_port": 0},
             {"src": "n1" if rewire else "n2", "src_port": 0, "dst": "n3", "dst_port": 0}]
    if extra:
        nodes.append({"id": "n4", "class_name": "Dropout", "config": {"name": "drop", "rate": 0.5}})
    return {"nodes": nodes, "wires": wires}


def test_model_diff_names_added_removed_rewired_and_changed_layers():
    assert diff_models(_graph(), _graph()) == []
    changes = {(c.kind, c.layer): c.detail for c in diff_models(_graph(), _graph(units=16, extra=True, rewire=True))}
    assert changes[("changed", "hidden")] == "units 8 → 16"
    assert changes[("added", "drop")] == "added (Dropout)"
    assert changes[("rewired", "out")] == "inputs hidden → x"
    removed = diff_models(_graph(extra=True), _graph())
    assert [(c.kind, c.layer) for c in removed] == [("removed", "drop")]
