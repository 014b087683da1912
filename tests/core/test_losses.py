"""The numpy loss definitions (deberta_core.losses) against values computed by hand."""

import math

import numpy as np
import pytest

from deberta_core import losses


def test_cross_entropy_by_hand():
    logits = np.array([[0.0, math.log(3.0)], [2.0, 2.0], [5.0, 1.0]])
    # row 0: p(label 1) = 3/4; row 1: 1/2; row 2 ignored
    expected = (-math.log(0.75) - math.log(0.5)) / 2
    assert losses.cross_entropy(logits, np.array([1, 0, -100])) == pytest.approx(expected, abs=1e-12)
    assert math.isnan(losses.cross_entropy(logits, np.array([-100, -100, -100])))


def test_sequence_classification_rules_by_hand():
    logits = np.array([[0.0, math.log(3.0)], [2.0, 2.0]])
    # problem_type None, (B,) labels: rows with a negative label leave the mean; none left -> 0.0
    assert losses.sequence_classification_loss(logits, np.array([1, -1]), 2, None) == pytest.approx(-math.log(0.75))
    assert losses.sequence_classification_loss(logits, np.array([-1, -1]), 2, None) == 0.0
    # soft targets (B, L)
    soft = np.array([[0.5, 0.5], [1.0, 0.0]])
    expected = (-(0.5 * math.log(0.25) + 0.5 * math.log(0.75)) - math.log(0.5)) / 2
    assert losses.sequence_classification_loss(logits, soft, 2, None) == pytest.approx(expected)
    # regression: mean squared error on the flattened logits
    assert losses.sequence_classification_loss(np.array([[1.0], [3.0]]), np.array([0.0, 1.0]), 1, None) == \
        pytest.approx((1 + 4) / 2)
    # multi-label: sigmoid BCE, 0 logit -> log 2 whatever the target
    assert losses.sequence_classification_loss(np.zeros((2, 3)), np.array([[1, 0, 1], [0, 0, 1]]), 3,
                                               "multi_label_classification") == pytest.approx(math.log(2))
    with pytest.raises(ValueError, match="first dimension of 2"):
        losses.sequence_classification_loss(logits, np.array([1, 0, 1]), 2, None)


def test_question_answering_clamps_and_ignores_by_hand():
    start = np.array([[0.0, 0.0, 0.0, 0.0]])
    end = np.array([[math.log(3.0), 0.0, 0.0, 0.0]])
    # start position 9 clamps to T = 4, which is ignored: nan; end position 0 has p = 3/6
    assert math.isnan(losses.question_answering_loss(start, end, np.array([9]), np.array([0])))
    value = losses.question_answering_loss(start, end, np.array([[1]]), np.array([0]))
    assert value == pytest.approx((-math.log(0.25) - math.log(0.5)) / 2)


def test_token_and_multiple_choice_by_hand():
    logits = np.zeros((1, 3, 4))
    assert losses.token_loss(logits, np.array([[1, -100, 3]])) == pytest.approx(math.log(4))
    assert losses.multiple_choice_loss(np.array([[0.0, math.log(3.0)]]), np.array([1])) == pytest.approx(-math.log(0.75))
    with pytest.raises(ValueError, match="one choice index per example"):
        losses.multiple_choice_loss(np.zeros((2, 3)), np.array([[1], [0]]))
