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


def _steps(step):
    yield step
    for s in step.substeps:
        yield from _steps(s)


@pytest.mark.parametrize("path", BANK, ids=lambda p: str(p.relative_to(ROOT / "problems")))
def test_every_step_is_named_and_the_rewrites_lead_to_the_result(path):
    """Every step of every bank document is one of the named rules, and the rewrites after the
    product run without a gap: each starts where the last ended, the last ends at the boxed result
    (with the kept names, where some are kept), so no result holds what no step produced."""
    from generator.calculus.rules import TITLES

    sol = solve_problem(load_problem(path))
    for part in sol.parts:
        for r in part.results:
            steps = [s for p in r.partials for top in (p.step, *p.rewrites) for s in _steps(top)]
            steps += [s for top in r.rewrites + r.hessian_rewrites + r.chain_steps + r.extra_steps
                      for s in _steps(top)]
            assert not [s.rule for s in steps if s.rule not in TITLES], r.text
            for p in r.partials:
                for a, b in zip(p.rewrites, p.rewrites[1:]):
                    assert a.result == b.of, (r.text, p.of, a.rule, b.rule)
            for run in (r.rewrites, r.hessian_rewrites):
                for a, b in zip(run, run[1:]):
                    assert a.result == b.of, (r.text, a.rule, b.rule)
            last = r.hessian_rewrites if r.order == 2 else r.rewrites     # a Hessian: its own rewrites
            if r.order == 2 and r.extra_steps and not r.hessian_rewrites:
                last = r.extra_steps        # the second differentiation gave the result as it is
            if last:
                assert last[-1].result in (r.result, r.display), r.text
