"""helpers.evaluation's scores of predictions: binary metrics, the confusion matrix, the surest mistakes.

(evaluate and predict themselves are tested on small trained models in test_train.py.)
"""

import numpy as np
import pytest
import torch

from helpers import evaluation as E


def test_binary_metrics_and_confident_mistakes():
    m = E.binary_metrics([1, 1, 0, 0, 1], [1, 0, 0, 1, 1])
    assert m["accuracy"] == pytest.approx(0.6)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.99, 0.01]])
    assert E.most_confident_mistakes(probs, [1, 1, 1, 1], k=5).tolist() == [3, 0, 2]
    tensor_probs = torch.tensor(probs)
    assert E.most_confident_mistakes(tensor_probs, torch.tensor([1, 1, 1, 1]), k=2).tolist() == [3, 0]


def test_confusion_matrix_counts_true_rows_against_predicted_columns():
    counts = E.confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], num_classes=3)
    assert counts.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert counts.sum() == 6 and np.trace(counts) == 4
