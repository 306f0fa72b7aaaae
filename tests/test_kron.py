"""vec and Kronecker products (issue 11, item 6) and second derivatives by a matrix (item 7):
each derivative is read off by a named rule and agrees with finite differences computed by
``tests/independent.py`` (apart from the project's evaluator)."""
from __future__ import annotations

import numpy as np
import pytest

from generator import expr as ex
from generator.build import solve_problem
from generator.spec import parse_problem
from independent import jacobian_error, vec_hessian_error as _vec_hessian_error, vec_jacobian_error as _vec_jacobian_error
from test_limits import KRON as PROBLEM     # the same one-function problem, with a Kronecker product in it


SIZES = {"M": 2, "N": 3, "P": 4, "Q": 3}


def _vec(a):
    return np.asarray(a).T.reshape(-1)          # column after column


def vec_jacobian_error(text, wrt, claimed, values):
    return _vec_jacobian_error(text, wrt, claimed, values, SIZES)


def vec_hessian_error(text, wrt, claimed, values):
    return _vec_hessian_error(text, wrt, claimed, values, SIZES)


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


# --- vec: Jacobians and Hessians with respect to vec X ---------------------------------------------

def test_vec_of_a_product_by_the_matrix_is_the_kronecker_product():
    r = solved("{M: dim, N: dim, P: dim, Q: dim, A: [M, N], X: [N, P], B: [P, Q]}", "vec(A @ X @ B)", "df/dX")
    assert ex.to_text(r.result) == "kron(B.T, A)" and r.dims == "M*Q×N*P"
    assert "vec_kron" in _rules(r.partials[0].step)
    values = _values({"A": (2, 3), "X": (3, 4), "B": (4, 3)}, np.random.default_rng(3))
    assert vec_jacobian_error("vec(A @ X @ B)", "X", "kron(B.T, A)", values) < 1e-6


def test_vec_of_the_variable_is_read_as_the_identity():
    r = solved("{M: dim, N: dim, X: [M, N]}", "vec(X)", "df/dX")
    assert ex.to_text(r.result) == "eye(M*N)"


@pytest.mark.parametrize("symbols, f, shapes", [
    ("{M: dim, N: dim, A: [M, M], X: [M, N]}", "trace(X.T @ A @ X)", {"A": (2, 2), "X": (2, 3)}),
    ("{M: dim, N: dim, A: [M, M], B: [N, N], X: [M, N]}", "trace(A @ X @ B @ X.T)",
     {"A": (2, 2), "B": (3, 3), "X": (2, 3)}),
    ("{M: dim, N: dim, a: [M], b: [N], X: [M, N]}", "(a.T @ X @ b)**2", {"a": (2, 1), "b": (3, 1), "X": (2, 3)}),
])
def test_the_hessian_by_a_matrix_is_the_hessian_of_vec_x(symbols, f, shapes):
    r = solved(symbols, f, "d2f/dX2")
    (step,) = r.extra_steps
    assert step.rule == "vec_hessian" and r.dims == "M*N×M*N"
    values = _values(shapes, np.random.default_rng(4))
    assert vec_hessian_error(f, "X", ex.to_text(r.result), values) < 1e-5


def test_the_quadratic_trace_has_the_textbook_hessian():
    r = solved("{M: dim, N: dim, A: [M, M], X: [M, N]}", "trace(X.T @ A @ X)", "d2f/dX2")
    assert ex.to_text(r.result) == "kron(eye(N), A + A.T)"


def test_the_commutation_matrix_turns_vec_x_into_vec_x_transposed():
    r = solved("{M: dim, N: dim, X: [M, N]}", "vec(X.T)", "df/dX")
    assert ex.to_text(r.result) == "commutation(M, N)"
    from independent import value
    X = np.arange(6.0).reshape(2, 3)
    assert np.array_equal(value("commutation(M, N)", {}, SIZES) @ _vec(X), _vec(X.T))
    values = _values({"X": (2, 3)}, np.random.default_rng(5))
    assert vec_jacobian_error("vec(X.T)", "X", "commutation(M, N)", values) < 1e-6


@pytest.mark.parametrize("symbols, f, shapes, want", [
    ("{M: dim, X: [M, M]}", "log(det(X))", {"X": (2, 2)}, "-(commutation(M, M) @ kron(inv(X).T, inv(X)))"),
    ("{M: dim, X: [M, M]}", "trace(X @ X)", {"X": (2, 2)}, "2 * commutation(M, M)"),
    ("{M: dim, N: dim, X: [M, N], A: [N, M], B: [N, M]}", "trace(A @ X @ B @ X)",
     {"X": (2, 3), "A": (3, 2), "B": (3, 2)}, None),
])
def test_hessians_through_the_transpose_use_the_commutation_matrix(symbols, f, shapes, want):
    r = solved(symbols, f, "d2f/dX2")
    assert ex.has_op(r.result, "commutation")
    if want:
        assert ex.to_text(r.result) == want
    values = _values(shapes, np.random.default_rng(6))
    if "det" in f:
        values["X"] = values["X"] + 3 * np.eye(2)
    assert vec_hessian_error(f, "X", ex.to_text(r.result), values) < 1e-5


def test_vec_in_the_language():
    from generator.printing import LatexPrinter
    scope = ex.Scope(dims=frozenset({"M", "N"}), shapes={"X": ("M", "N"), "x": ("M", 1)}, functions={})
    e = ex.parse("vec(2 * X)", scope)
    assert e.shape == ("M*N", 1) and ex.to_text(e) == "vec(2 * X)"
    assert ex.parse("vec(x)", scope) == ex.sym("x", ("M", 1))        # a column is its own vec
    assert LatexPrinter()(e) == r"\operatorname{vec}\left(2 \mathbf{X}\right)"
    K = ex.parse("commutation(M, N)", scope)
    assert K.shape == ("M*N", "M*N") and ex.to_text(K) == "commutation(M, N)"
    assert LatexPrinter()(K) == r"\mathbf{K}_{M, N}"


def test_an_answer_with_the_kronecker_factors_swapped_is_refused():
    """I ⊗ S and S ⊗ I have the same shape; only vec's column order tells them apart."""
    text = PROBLEM.format(symbols="{M: dim, N: dim, A: [M, M], X: [M, N]}", expr="trace(X.T @ A @ X)",
                          find="d2f/dX2")
    good = solve_problem(parse_problem(text + "answer: kron(eye(N), A + A.T)\n", "k.yaml"))
    assert not good.failed and good.parts[0].results[0].answer is not None
    bad = solve_problem(parse_problem(text + "answer: kron(A + A.T, eye(N))\n", "k.yaml"))
    assert bad.failed


def test_a_jacobian_by_vec_x_is_not_transposed_silently():
    text = PROBLEM.format(symbols="{M: dim, N: dim, A: [M, M], X: [M, N]}", expr="vec(A @ X)", find="df/dX")
    sol = solve_problem(parse_problem(text + "layout: denominator\n", "k.yaml"))
    (error,) = sol.failed
    assert "numerator layout" in error


VEC_QUADRATIC = """\
id: k
symbols: {{M: dim, N: dim, X: [M, N], S: [M*N, M*N]}}
define:
{define}
find: [df/dX, d2f/dX2]
"""


@pytest.mark.parametrize("define", ["  f: vec(X).T @ S @ vec(X)", "  f: v.T @ S @ v\n  v: vec(X)"])
def test_the_hessian_of_a_quadratic_form_in_vec_x(define):
    """d²(vec(X)ᵀ S vec X) = S + Sᵀ by vec X (Magnus & Neudecker, ch. 10), also through a define."""
    sol = solve_problem(parse_problem(VEC_QUADRATIC.format(define=define), "k.yaml"))
    assert not sol.failed, sol.failed
    _, r = sol.parts[0].results
    (step,) = r.extra_steps
    assert step.rule == "vec_hessian" and r.dims == "M*N×M*N"
    values = _values({"X": (2, 3), "S": (6, 6)}, np.random.default_rng(7))
    assert vec_hessian_error("vec(X).T @ S @ vec(X)", "X", ex.to_text(r.result), values) < 1e-5
    assert not np.allclose(values["S"], values["S"].T)      # S itself would not do
    assert vec_hessian_error("vec(X).T @ S @ vec(X)", "X", "S", values) > 1e-2
