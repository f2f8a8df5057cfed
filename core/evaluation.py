"""What a trained model gets right and wrong, sample by sample (the evaluation panel's numbers, Qt-free).

`report(y_true, y_pred, loss)` reads an output as a classifier's (class probabilities, or one sigmoid unit with a
binary loss) or a regressor's. A classifier gets a confusion matrix (rows: true class, columns: predicted), per-class
precision, recall and F1, and per sample the predicted class, its confidence and its loss; a regressor gets the
predictions, the targets and the residuals. Leading axes past the first (a sequence's time steps) are flattened, so a
tagger's every time step counts as a sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EPSILON = 1e-7  # Keras's backend epsilon: the clip its cross-entropies apply


@dataclass
class ClassificationReport:
    classes: list[str]
    confusion: np.ndarray    # (K, K) counts
    precision: np.ndarray    # (K,)
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray      # samples of each true class
    true: np.ndarray         # (N,) class indices
    predicted: np.ndarray    # (N,)
    confidence: np.ndarray   # (N,) the predicted class's probability
    loss: np.ndarray         # (N,) each sample's cross-entropy

    @property
    def accuracy(self) -> float:
        return float(np.trace(self.confusion) / max(self.confusion.sum(), 1))

    def normalized(self) -> np.ndarray:
        """The confusion matrix with each row (true class) divided by its count."""
        rows = self.confusion.sum(axis=1, keepdims=True)
        return np.divide(self.confusion, rows, out=np.zeros_like(self.confusion, dtype=float), where=rows > 0)


@dataclass
class RegressionReport:
    true: np.ndarray         # (N, D)
    predicted: np.ndarray    # (N, D)

    @property
    def residual(self) -> np.ndarray:
        return self.predicted - self.true

    @property
    def loss(self) -> np.ndarray:
        """Each sample's squared error, averaged over its values."""
        return np.mean(np.square(self.residual), axis=1)


def _loss_name(loss) -> str:
    if isinstance(loss, dict):
        loss = loss.get("class_name", "")
    return str(loss or "").lower()


def is_classifier(y_pred: np.ndarray, loss) -> bool:
    name = _loss_name(loss)
    if "crossentropy" in name or "hinge" in name:
        return True
    if name in ("mse", "mae", "mean_squared_error", "mean_absolute_error", "huber", "log_cosh", "meansquarederror",
                "meanabsoluteerror"):
        return False
    return y_pred.ndim >= 2 and y_pred.shape[-1] > 1 and np.allclose(y_pred.sum(axis=-1), 1.0, atol=1e-3)


def report(y_true, y_pred, loss=None, class_names=None):
    """A ClassificationReport or a RegressionReport of one model output."""
    y_pred = np.asarray(y_pred, dtype=np.float64)
    y_true = np.asarray(y_true)
    if not is_classifier(y_pred, loss):
        return RegressionReport(y_true.reshape(len(y_true), -1).astype(np.float64),
                                y_pred.reshape(len(y_pred), -1))
    if y_pred.shape[-1] == 1:  # one sigmoid unit: the probability of class 1
        p1 = y_pred.reshape(-1)
        probs = np.stack([1.0 - p1, p1], axis=1)
        true = y_true.reshape(-1).astype(np.int64)
    else:
        probs = y_pred.reshape(-1, y_pred.shape[-1])
        sparse = y_true.shape == y_pred.shape[:-1] or (y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1)
        true = y_true.reshape(-1).astype(np.int64) if sparse else \
            np.argmax(y_true.reshape(-1, y_pred.shape[-1]), axis=1)
    k = probs.shape[1]
    if true.size and (true.min() < 0 or true.max() >= k):
        raise ValueError(f"The labels run from {true.min()} to {true.max()}, but the output has {k} classes.")
    predicted = np.argmax(probs, axis=1)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (true, predicted), 1)
    tp = np.diag(confusion).astype(float)
    predicted_count = confusion.sum(axis=0)
    support = confusion.sum(axis=1)
    precision = np.divide(tp, predicted_count, out=np.zeros(k), where=predicted_count > 0)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(k), where=(precision + recall) > 0)
    p_true = np.clip(probs[np.arange(len(true)), true], EPSILON, 1 - EPSILON)
    names = [str(c) for c in class_names] if class_names is not None and len(class_names) == k else \
        [str(i) for i in range(k)]
    return ClassificationReport(names, confusion, precision, recall, f1, support, true, predicted,
                                probs[np.arange(len(predicted)), predicted], -np.log(p_true))
