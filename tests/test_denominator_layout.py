"""Denominator layout: every line of the working is written in the layout and conforms as written
(the trees the document prints, from view.as_written, not their LaTeX)."""
from __future__ import annotations

from pathlib import Path

import pytest

from generator.build import solve_problem
from generator.calculus.rules import transposed_in
from generator.render.view import as_written  # noqa
from generator.spec import load_problem

ROOT = Path(__file__).parent.parent
DENOMINATOR = [p for p in sorted(ROOT.glob("problems/**/*.yaml")) if "layout: denominator" in p.read_text()]


def _dims(shape) -> str:
    return "×".join(str(d) for d in shape) if shape != () else "1×1"


def _steps(step):
    yield step
    for s in step.substeps:
        yield from _steps(s)


def test_the_bank_has_denominator_problems():
    assert len(DENOMINATOR) >= 3 and any(p.name == "prml-logistic.yaml" for p in DENOMINATOR)


@pytest.mark.parametrize("path", DENOMINATOR, ids=lambda p: p.stem)
def test_every_line_is_in_the_layout_and_conforms(path):
    sol = solve_problem(load_problem(path))
    assert not sol.failed
    for part in sol.parts:
        for r in part.results:
            w = as_written(r)
            for p, shown in zip(r.partials, w["partials"]):
                if p.tensor:
                    continue
                label = shown["dims"]       # what the document says the partial is: ∈ ℝ^{label}
                # denominator layout: ∂a/∂b is (size of b) × (size of a)
                if r.shape_wrt[1:] in ((1,), ()) and p.wrt_shape[1:] in ((1,), ()):
                    assert label == "×".join(str(d) for d in (p.wrt_shape or (1,))[:1] + (p.of_shape or (1,))[:1]), \
                        (p.of, p.wrt, label)
                trees = [shown["raw"], shown["result"]] + [t for s in shown["rewrites"] for t in (s.of, s.result)]
                for t in trees:
                    assert _dims(t.shape) == label, (r.text, p.of, p.wrt, label, t.shape)
                # each step under it: a derivative by the same variable, one row per entry of it
                rows = p.wrt_shape[0] if p.wrt_shape else 1
                if transposed_in(r.layout, p.wrt_shape):
                    for s in _steps(shown["step"]):
                        if not s.direction and s.result.shape != ():
                            assert s.result.shape[0] == rows, (r.text, p.of, s.rule, s.result.shape)
            for factors in w["product"]:     # the product multiplies as printed
                for a, b in zip(factors, factors[1:]):
                    if a.shape != () and b.shape != ():
                        assert a.shape[1] == b.shape[0], (r.text, a.shape, b.shape)
                inner = [f for f in factors if f.shape != ()]
                if inner and r.order == 1:
                    assert (inner[0].shape[0], inner[-1].shape[1]) == r.result.shape, r.text
            for s in (r.rewrites if r.order == 1 else ()):     # each rewrite of the result: the boxed shape
                assert s.of.shape == s.result.shape == r.result.shape, (r.text, s.rule)
            if r.order == 2:
                n = r.shape_wrt[0]
                for top in w["extra_steps"]:
                    for s in list(_steps(top))[1:]:
                        if s.result.shape != () and not s.direction:
                            assert s.result.shape[0] == n, (r.text, s.rule, s.result.shape)
