"""Every rewrite between the product of partials and the boxed result is a named step (issue 9).

For bank problems of the instructor's review (A1, A3, A4, A6, B8, B14, B16):
the steps from a partial's derivative and from the product to the result
contain the named steps the review asked for, every step is checked by the
verifier, each step starts where the previous one ended, and consecutive
forms have the same value at random points (evaluated by ``independent.py``,
not by the project's evaluator).  The identities a step states in its note
("p(1 − p)(−y/p + (1 − y)/(1 − p)) = p − y") are true at random points too.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from bank_check import random_env
from generator import expr as ex
from generator.build import render_outputs, solve_problem
from generator.calculus.rules import TITLES
from generator.spec import load_problem
from independent import define_value, rel_error, value

BANK = Path(__file__).resolve().parent.parent / "problems"

# (problem, part index, find, rules that must appear among the steps, in this order)
CASES = [
    ("vector/logistic-loss", 0, "dL/dw", ["scalar_algebra"]),
    ("matrix/symmetric-construction", 1, "df/dy", ["symmetric_matrix", "collect_terms"]),
    ("matrix/det-inverse-algebra", 0, "df/dX", ["det_of_product", "collect_terms", "inverse_of_product",
                                                "collect_terms"]),
    ("matrix/det-inverse-algebra", 1, "df/dX", ["collect_terms"]),
    ("matrix/det-inverse-algebra", 2, "df/dX", ["inverse_of_product", "collect_terms"]),
    ("vector/quadratic-form", 1, "df/dx", ["symmetric_matrix", "collect_terms"]),
    ("vector/gaussian", 0, "df/dx", ["symmetric_matrix", "collect_terms"]),
    ("vector/mml-5.108", 0, None, ["symmetric_matrix", "collect_terms"]),
    ("matrix/log-det-gram", 0, None, ["symmetric_matrix", "collect_terms"]),
    ("vector/rayleigh", 0, None, ["symmetric_matrix", "collect_terms"]),
    ("matrix/orthogonal", 0, None, ["orthogonal_matrix"]),
    ("matrix/gp-evidence", 0, "df/dW", ["symmetric_matrix", "symmetric_transpose"]),
    ("matrix/symmetric-construction", 0, "df/dX", ["symmetric_matrix", "symmetric_transpose"]),
    ("scalar/sigmoid-tanh-written-out", 0, "df/dz", ["scalar_algebra", "sigmoid_form"]),
]


def _path(name: str) -> Path:
    hits = list(BANK.rglob(Path(name).name + ".yaml"))
    assert len(hits) == 1, name
    return hits[0]


def _solved(name: str, part: int, find):
    sol = solve_problem(load_problem(_path(name)))
    assert not sol.failed, sol.failed
    results = sol.parts[part].results
    return sol, next(r for r in results if find is None or r.text == find)


def _all_steps(r):
    """The rewrites of each partial, then those from the product to the result."""
    return [s for p in r.partials for s in p.rewrites] + list(r.rewrites + r.hessian_rewrites)


def _envs(name: str, part: int, n=3):
    doc = yaml.safe_load(_path(name).read_text())
    parts = doc.get("parts") or [{}]
    symbols = {**doc.get("symbols", {}), **parts[part].get("symbols", {})}
    defs = {k: str(v) for k, v in {**doc.get("define", {}), **parts[part].get("define", {})}.items()}
    rng = np.random.default_rng(11)
    for _ in range(n):
        dims, env = random_env(symbols, rng, sizes=(5, 3))      # a tall X: XᵀX invertible
        for d in defs:
            env[d] = define_value(defs, d, env, dims)
        yield dims, env


def render_markdown(sol) -> str:
    out = render_outputs(sol, ["md"])["md"]
    return out.decode() if isinstance(out, bytes) else out


def _in_order(rules, wanted) -> bool:
    it = iter(rules)
    return all(w in it for w in wanted)


@pytest.mark.parametrize("name, part, find, wanted", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_the_rewrites_are_named_checked_and_consecutive(name, part, find, wanted):
    _, r = _solved(name, part, find)
    steps = _all_steps(r)
    rules = [s.rule for s in steps]
    assert _in_order(rules, wanted), rules
    checked = dict(r.partial_checks)
    for s in steps:
        assert s.rule in TITLES and s.note, s
    for s in r.rewrites + r.hessian_rewrites:
        assert checked[f"rewrite {s.rule}"] < 1e-6
    for p in r.partials:
        if p.rewrites:
            assert p.rewrites[0].of == p.step.result
            assert all(a.result == b.of for a, b in zip(p.rewrites, p.rewrites[1:]))
    assert all(a.result == b.of for a, b in zip(r.rewrites, r.rewrites[1:]))
    for dims, env in _envs(name, part):
        for s in steps:
            before, after = value(ex.to_text(s.of), env, dims), value(ex.to_text(s.result), env, dims)
            assert rel_error(after, before) < 1e-8, (s.rule, ex.to_text(s.of), ex.to_text(s.result))


def test_the_scalar_algebra_of_the_logistic_loss_is_stated_in_p():
    """A1: p(1 − p)(−y/p + (1 − y)/(1 − p)) = p − y, with p named, and the identity true."""
    _, r = _solved("vector/logistic-loss", 0, "dL/dw")
    step = next(s for s in r.rewrites if s.rule == "scalar_algebra")
    before, after = step.note_args[0], step.note_args[1]
    assert {"p", "y"} == ex.free_symbols(before) and ex.free_symbols(after) == {"p", "y"}
    assert ex.to_text(after) in ("p - y", "-y + p")
    rng = np.random.default_rng(3)
    for p, y in rng.uniform(0.1, 0.9, size=(5, 2)):
        env = {"p": p, "y": y}
        assert rel_error(value(ex.to_text(before), env, {}), value(ex.to_text(after), env, {})) < 1e-12


def test_constructed_symmetry_is_said_where_it_is_used():
    """A3, B8: the reason stands in the step that uses it; no bullet after the fact."""
    sol, r = _solved("matrix/symmetric-construction", 1, "df/dy")
    step = next(s for s in _all_steps(r) if s.rule == "symmetric_matrix")
    assert "sum of symmetric matrices" in step.note
    assert ex.sym("K", ("D", "D")) in step.note_args        # K = sC + tI is symmetric, so K⁻ᵀ = K⁻¹
    assert ").T" not in ex.to_text(step.result)
    assert r.symmetric == ()
    _, gp = _solved("matrix/gp-evidence", 0, "df/dW")
    dfdc = next(p for p in gp.partials if p.wrt == "C")
    assert ").T" not in ex.to_text(dfdc.result) and dfdc.rewrites[-1].rule == "symmetric_matrix"
    md = render_markdown(sol)
    assert "is symmetric, so" not in md
    for name in ("vector/quadratic-form", "vector/gaussian", "vector/mml-5.108", "vector/rayleigh"):
        assert "is symmetric, so" not in render_markdown(solve_problem(load_problem(_path(name))))


def test_the_split_forms_of_det_and_inverse_are_written():
    """A4: (XXX)⁻¹ = X⁻¹X⁻¹X⁻¹ and Aᵀ(B⁻¹X⁻¹A⁻¹)ᵀBᵀ written before they cancel; 3det(X)²·det(X)."""
    texts = []
    for part in range(3):
        _, r = _solved("matrix/det-inverse-algebra", part, "df/dX")
        texts += [ex.to_text(s.result) for s in _all_steps(r)] + [ex.to_text(p.step.result) for p in r.partials]
    assert any("inv(X) @ inv(X) @ inv(X)" in t for t in texts)
    assert any("det(X) * det(X) * det(X)" in t for t in texts)
    assert any("inv(B) @ inv(X) @ inv(A)" in t for t in texts)
    assert any("det(X)**2 * det(X)" in t for t in texts)


def test_inverse_transposes_print_as_minus_top():
    """B14: (X + sA)⁻ᵀ, never ((X + sA)⁻¹)ᵀ or (Aᵀ)ᵀ."""
    from generator.printing import LatexPrinter
    P = LatexPrinter()
    X, A, s = ex.sym("X", ("D", "D")), ex.sym("A", ("D", "D")), ex.sym("s", ())
    assert P(ex.transpose(ex.inv(ex.add(X, ex.mul(s, A))))).endswith(r"^{-\top}")
    assert P(ex.transpose(ex.transpose(A))) == P(A)
    assert P(ex.matmul(ex.transpose(ex.transpose(ex.add(X, A))), X)).startswith(r"\left(")
    md = render_markdown(solve_problem(load_problem(_path("tensor/log-det-path"))))
    assert r"^{-1}\right)^\top" not in md


def test_sigmoid_diagonal_is_written_with_sigma():
    """A6: the written-out diagonal entries read σ(z₁)(1 − σ(z₁))."""
    md = render_markdown(solve_problem(load_problem(_path("vector/sigmoid-layer"))))
    assert r"\sigma{\left({z}_{1} \right)} \left(1 - \sigma{\left({z}_{1} \right)}\right)" in md
    assert "e^{- {z}_{1}}" not in md
