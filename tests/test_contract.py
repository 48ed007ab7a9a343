"""The contract clauses both formats share (slimhub.verify.contract), on
values as the tf1/tf2 checks fetch them."""

import types

import numpy as np
import pytest

from slimhub.verify import contract
from slimhub.verify import reading
from slimhub.verify.checks import Failed
from slimhub.verify.checks import Skipped


def test_momentum_is_a_float32_scalar_tensor():
  assert contract.momentum_problem(reading.Tensor("float32", ())) is None
  assert contract.momentum_problem(None) is None
  assert contract.momentum_problem(0.99) is None  # bound at tracing
  assert contract.momentum_problem(reading.Tensor("float64", (None,))) == (
      "is float64 [?], expected float32 []")


def test_end_points_are_under_the_prefix():
  keys = ["default", "MobilenetV1/Conv2d_0", "Other/Conv2d_1"]
  assert contract.end_points_problem(keys, "MobilenetV1") == (
      "end points outside MobilenetV1/: Other/Conv2d_1")
  assert contract.end_points_problem(keys, None) is None


def test_outputs_are_finite_and_two_by_dim():
  assert contract.output_problem(np.zeros((2, 8)), 8) is None
  assert contract.output_problem(np.zeros((2, 7)), 8) == (
      "is finite with shape [2, 7], expected [2,8]")
  assert contract.output_problem(np.full((2, 8), np.nan), 8).startswith(
      "is not finite")


def test_expected_dim_prefers_the_expectation():
  expectation = types.SimpleNamespace(num_classes=1001, num_features=None,
                                      source="--expect")
  assert contract.expected_dim(expectation, True, 5, "as traced") == (
      1001, "num_classes, --expect")
  assert contract.expected_dim(expectation, False, 5, "as traced") == (
      5, "as traced")


def test_weight_decay_terms_are_positive_finite_scalars():
  assert contract.weight_decay_problems([0.1, 0.2], ["a", "b"]) == []
  assert contract.weight_decay_problems(
      [0.0, np.inf, np.ones(2)], ["a", "b", "c"]) == [
          "regularization loss a is 0, not a finite scalar > 0",
          "regularization loss b is inf, not a finite scalar > 0",
          "regularization loss c is of shape [2], not a finite scalar > 0"]


@pytest.mark.parametrize("catalogued,raised,message", [
    (True, Failed, "no x, so it breaks"),
    (False, Skipped, "no x (optional outside the Slim collection)")])
def test_fail_if_catalogued_else_skip(catalogued, raised, message):
  expectation = types.SimpleNamespace(catalogued=catalogued)
  with pytest.raises(raised, match=message.replace("(", r"\(").replace(
      ")", r"\)")):
    contract.require_if_catalogued(expectation, "no x", ", so it breaks")
