"""What an instructor would correct in the documents: −δ_ik (not −1 δ_ik), one pair of brackets
around an entry of the step function, a derivative said once after a contraction, and the rule name
"Scalar arithmetic" where only numbers, scalars and signs move."""
from __future__ import annotations

from pathlib import Path

import pytest

from generator.build import render_outputs, solve_problem
from generator.spec import load_problem

ROOT = Path(__file__).resolve().parent.parent


def _md(path: str) -> str:
    return render_outputs(solve_problem(load_problem(ROOT / f"problems/{path}.yaml")), ("md",))["md"].decode()


@pytest.mark.parametrize("path, entry", [
    ("matrix/gaussian-log-likelihood", r"\frac{\partial {R}_{ij}}{\partial {\mu}_{k}} = -\delta_{ik}."),
    ("matrix/multi-output-regression", r"\frac{\partial {E}_{ij}}{\partial {W}_{kl}} = -{\Phi}_{ik} \delta_{lj}."),
    ("vector/relu-two-layer", r"= \mathbb{1}\left[\left(\mathbf{W}_{1} \mathbf{x} + \mathbf{b}_{1}\right)_{i} > 0\right]"
                              r"\,\delta_{ik} {x}_{l}."),
])
def test_entry_formulas_read_as_the_book_writes_them(path, entry):
    md = _md(path)
    assert entry in md
    assert "-1 \\delta" not in md and "-1 {" not in md and r"\right]\right]_{" not in md


@pytest.mark.parametrize("path", ["vector/relu-two-layer", "vector/softmax-builtin", "matrix/multi-output-regression"])
def test_a_contraction_is_not_followed_by_the_same_derivative_twice(path):
    md = _md(path)
    assert "Contraction with the tensor" in md
    assert "So $$" not in md        # the product's equation right after it says it, with its "with"


def test_only_numbers_and_signs_moving_is_scalar_arithmetic():
    sol = solve_problem(load_problem(ROOT / "problems/vector/softmax-builtin.yaml"))
    rules = [s.rule for r in sol.parts[0].results for s in r.rewrites]
    assert "scalar_arithmetic" in rules and "entrywise_algebra" not in rules
    md = _md("vector/mse-and-attention")
    assert "*Scalar arithmetic:*" in md
