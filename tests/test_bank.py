"""The problem bank: every problem solves, and every printed result and partial matches an
independent finite-difference check of the problem's own definitions."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from bank_check import check_trace
from generator.build import solve_problem
from generator.render.json import trace_json
from generator.spec import load_problem

ROOT = Path(__file__).parent.parent
BANK = sorted(ROOT.glob("problems/**/*.yaml"))


def test_bank_is_a_real_bank():
    assert len(BANK) >= 30
    folders = {p.parent.name for p in BANK}
    assert {"scalar", "vector", "matrix", "tensor", "second-order", "abstract"} <= folders
    for p in BANK:
        problem = load_problem(p)
        assert problem.title and problem.source, p
        assert problem.statement or all(part.statement for part in problem.parts), p


@pytest.mark.parametrize("path", BANK, ids=lambda p: str(p.relative_to(ROOT / "problems")))
def test_problem_against_independent_finite_differences(path):
    sol = solve_problem(load_problem(path))
    assert not sol.failed, sol.failed
    worst = check_trace(path, json.loads(trace_json(sol)))
    assert worst < 1e-4    # Hessians are compared with nested differences
