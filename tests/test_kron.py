"""vec and Kronecker products (issue 11, item 6) and second derivatives by a matrix (item 7):
each derivative is read off by a named rule and agrees with finite differences computed by
``tests/independent.py`` (apart from the project's evaluator)."""
from __future__ import annotations

import numpy as np
import pytest

from generator import expr as ex
from generator.build import solve_problem
from generator.spec import parse_problem
from independent import jacobian_error

PROBLEM = """\
id: k
symbols:
  {symbols}
define:
  f: "{expr}"
find: {find}
"""

SIZES = {"M": 2, "N": 3, "P": 4, "Q": 3}


def solved(symbols: str, expr: str, find: str = "df/dX"):
    sol = solve_problem(parse_problem(PROBLEM.format(symbols=symbols, expr=expr, find=find), "k.yaml"))
    assert not sol.failed, sol.failed
    (r,) = sol.parts[0].results
    return r


def _values(shapes: dict, rng) -> dict:
    return {n: rng.uniform(-1, 1, size=s) for n, s in shapes.items()}


def _rules(step) -> list[str]:
    return [step.rule] + [r for s in step.substeps for r in _rules(s)]


KRON_CASES = [
    # symbols, f, find, the rule, the arrays' concrete shapes
    ("{M: dim, P: dim, A: [M, M], X: [P, P]}", "trace(kron(A, X))", "df/dX", "kron_trace",
     {"A": (2, 2), "X": (4, 4)}),
    ("{M: dim, N: dim, P: dim, Q: dim, A: [M, N], X: [P, Q]}", "norm(kron(A, X))**2", "df/dX", "kron_norm",
     {"A": (2, 3), "X": (4, 3)}),
    ("{M: dim, N: dim, a: [M], x: [N]}", "kron(a, x).T @ kron(a, x)", "df/dx", "kron_mixed_product",
     {"a": (2, 1), "x": (3, 1)}),
    ("{M: dim, N: dim, P: dim, A: [M, N], B: [P, N], x: [N]}", "norm(kron(A, x.T @ B.T))", "df/dx", "kron_norm",
     {"A": (2, 3), "B": (4, 3), "x": (3, 1)}),
]


@pytest.mark.parametrize("symbols, f, find, rule, shapes", KRON_CASES)
def test_kron_identities_give_derivatives_that_match_finite_differences(symbols, f, find, rule, shapes):
    r = solved(symbols, f, find)
    assert rule in _rules(r.partials[0].step)
    assert not ex.has_op(r.result, "kron")          # the identity took the Kronecker product away
    values = _values(shapes, np.random.default_rng(1))
    assert jacobian_error(f, r.wrt, ex.to_text(r.result), values, SIZES) < 1e-6


def test_the_mixed_product_reduces_to_the_textbook_form():
    r = solved("{M: dim, N: dim, a: [M], x: [N]}", "kron(a, x).T @ kron(a, x)", "df/dx")
    assert ex.to_text(r.result) == "2 * (a.T @ a) * x.T"


def test_trace_of_kron_is_trace_times_identity():
    r = solved("{M: dim, P: dim, A: [M, M], X: [P, P]}", "trace(kron(A, X))")
    assert ex.to_text(r.result) == "trace(A) * eye(P)"


def test_a_product_of_dims_in_a_shape_is_the_dim_of_a_kronecker_product():
    text = PROBLEM.format(symbols="{M: dim, N: dim, x: [N*M], A: [M, M], B: [N, N]}",
                          expr="x.T @ kron(A, B) @ x", find="df/dx")
    problem = parse_problem(text, "k.yaml")
    (x,) = [s for s in problem.parts[0].symbols if s.name == "x"]
    assert x.shape == ("M*N", 1) == (ex.kron(ex.sym("A", ("M", "M")), ex.sym("B", ("N", "N"))).shape[0], 1)
    sol = solve_problem(problem)
    assert not sol.failed, sol.failed
    (r,) = sol.parts[0].results
    assert dict(r.check.sizes)["M"] * dict(r.check.sizes)["N"] > 1        # the checker sized x as M·N
    rng = np.random.default_rng(2)
    values = _values({"x": (6, 1), "A": (2, 2), "B": (3, 3)}, rng)
    assert jacobian_error("x.T @ kron(A, B) @ x", "x", ex.to_text(r.result), values, SIZES) < 1e-6


@pytest.mark.parametrize("dim, message", [
    ("N*Q", "not 'Q'"),
    ("N*", "not ''"),
    ("100*200", "between 1 and 10000"),
])
def test_a_bad_product_of_dims_is_refused_at_its_place(dim, message):
    from generator.errors import ProblemErrors
    text = PROBLEM.format(symbols="{N: dim, x: [%s]}" % dim, expr="x.T @ x", find="df/dx")
    with pytest.raises(ProblemErrors) as info:
        parse_problem(text, "k.yaml")
    assert message in str(info.value) and "k.yaml:3:" in str(info.value)
