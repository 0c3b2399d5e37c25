import numpy as np
import pytest

from gateway.classifier import softmax, top_scores
from gateway.errors import GatewayError


def test_softmax_is_a_distribution_and_keeps_the_order():
    logits = np.array([2.0, -1.0, 0.5, 3.0])
    p = softmax(logits)
    assert p.sum() == pytest.approx(1.0)
    assert list(np.argsort(p)) == list(np.argsort(logits))
    assert np.all(np.isfinite(softmax(np.array([1000.0, -1000.0, 0.0]))))
    np.testing.assert_allclose(softmax(np.array([0.0, np.log(3.0)])), [0.25, 0.75])


def test_all_scores_in_model_order_without_top_k():
    assert list(top_scores(["a", "b", "c"], np.array([0.1, 0.9, 0.5]), None).items()) == [
        ("a", 0.1),
        ("b", 0.9),
        ("c", 0.5),
    ]


def test_top_k_returns_the_best_first():
    result = top_scores(["a", "b", "c"], np.array([0.1, 0.9, 0.5]), 2)
    assert list(result.items()) == [("b", 0.9), ("c", 0.5)]
    assert len(top_scores(["a", "b"], np.array([1.0, 2.0]), 5)) == 2


def test_non_finite_scores_are_a_model_error():
    with pytest.raises(GatewayError) as caught:
        top_scores(["a", "b"], np.array([np.nan, 1.0]), None)
    assert caught.value.status == 502
