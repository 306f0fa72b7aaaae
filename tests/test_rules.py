"""Each rule, exactly: which rule fires, what it returns, and that the result is numerically right."""
from __future__ import annotations

import re

import numpy as np
import pytest
import sympy as sp

from generator import expr as ex
from generator.calculus import scalar
from generator.calculus.rules import Differentiator
from generator.calculus.simplify import Simplifier
from generator.errors import UnsupportedError
from independent import jacobian_error, value

SHAPES = {"x": ("D", 1), "y": ("D", 1), "a": ("D", 1), "b": ("M", 1), "B": ("D", "D"), "S": ("D", "D"),
          "A": ("M", "D"), "s": (), "t": (), "X": ("D", "D"), "z": ("M", 1)}
SCOPE = ex.Scope(dims=frozenset({"D", "M"}), shapes=SHAPES)
DIMS = {"D": 3, "M": 2}


def env():
    rng = np.random.default_rng(7)
    out = {}
    for name, shape in SHAPES.items():
        shp = tuple(DIMS.get(d, d) for d in shape)
        if not shp:
            out[name] = float(rng.uniform(0.5, 1.5))
        else:
            v = rng.uniform(-1, 1, size=shp)
            if shp[0] == shp[1] and shp[0] > 1:
                v = v + 3 * np.eye(shp[0])
                if name == "S":          # declared symmetric in these tests
                    v = (v + v.T) / 2
            out[name] = v
    return out


def derive(text, wrt, assume=None):
    e = ex.parse(text, SCOPE)
    D = Differentiator(wrt, SHAPES[wrt], Simplifier(assume or {}))
    return e, D.d(e)


def numerically_right(text, wrt, step):
    return jacobian_error(text, wrt, ex.to_text(step.result), env(), DIMS)


@pytest.mark.parametrize("text, wrt, rule, result, dims", [
    ("a", "x", "constant", "0 * ones(D) @ ones(D).T", "D×D"),
    ("a.T @ y", "x", "constant", "0 * ones(D).T", "1×D"),
    ("x", "x", "identity", "eye(D)", "D×D"),
    ("x - a", "x", "sum", "eye(D)", "D×D"),
    ("3 * x", "x", "constant_factor", "3 * eye(D)", "D×D"),
    ("A @ x", "x", "linear_map", "A", "M×D"),
    ("A @ x + b", "x", "sum", "A", "M×D"),
    ("a.T @ x", "x", "linear_form", "a.T", "1×D"),
    ("x.T @ a", "x", "linear_form", "a.T", "1×D"),
    ("x.T @ B @ x", "x", "quadratic_form", "x.T @ (B + B.T)", "1×D"),
    ("x.T @ S @ x", "x", "quadratic_form", "2 * x.T @ S", "1×D"),
    ("x.T @ x", "x", "squared_norm", "2 * x.T", "1×D"),
    ("x.T @ y", "x", "linear_form", "y.T", "1×D"),
    ("x.T @ B @ (x + a)", "x", "bilinear_form", "(x + a).T @ B.T + x.T @ B", "1×D"),
    ("tanh(z)", "z", "elementwise", "diag(1 - tanh(z)**2)", "M×M"),
    ("exp(-s / 2)", "s", "scalar_chain", "-1/2 * exp(-1/2 * s)", "1×1"),
    ("s**3", "s", "power", "3 * s**2", "1×1"),
    ("sin(s) * cos(s)", "s", "product", "cos(s)**2 - sin(s)**2", "1×1"),
    ("sin(s) / s", "s", "quotient", "(s * cos(s) - sin(s)) / s**2", "1×1"),
    ("x * y", "x", "hadamard", "diag(y)", "D×D"),
    ("sum(x)", "x", "sum_entries", "ones(D).T", "1×D"),
    ("norm(x)", "x", "norm", "x.T / norm(x)", "1×D"),
    ("norm(x)**2", "x", "norm_squared", "2 * x.T", "1×D"),
    ("log(det(X))", "X", "log_det", "inv(X).T", "1×(D×D)"),
    ("log(det(B + s * X))", "s", "log_det", "trace(inv(B + s * X) @ X)", "1×1"),
    ("norm(A @ x - b)**2", "x", "norm_squared", "2 * (A @ x - b).T @ A", "1×D"),
    ("norm(X)**2", "X", "frobenius_squared", "2 * X", "1×(D×D)"),
    ("norm(s * X)**2", "s", "frobenius_squared", "2 * trace(s * X.T @ X)", "1×1"),
    ("trace(x @ x.T)", "x", "trace_cyclic", "2 * x.T", "1×D"),
    ("trace(x @ x.T + s**2 * eye(D))", "x", "trace_linear", "2 * x.T", "1×D"),
    ("inv(B + s * eye(D))", "s", "inverse_scalar", "-(inv(B + s * eye(D)) @ inv(B + s * eye(D)))", "D×D"),
    ("det(B + s * eye(D))", "s", "det_scalar", "det(B + s * eye(D)) * trace(inv(B + s * eye(D)))", "1×1"),
    ("x.T", "x", "transpose", "eye(D)", "D×D"),
    ("log(s**4) * sin(s**3)", "s", "product", None, "1×1"),
    ("sigmoid(a.T @ x)", "x", "scalar_chain", None, "1×D"),
    ("softplus(x)", "x", "elementwise", "diag(sigmoid(x))", "D×D"),
    ("sqrt(x.T @ x)", "x", "scalar_chain", None, "1×D"),
])
def test_rule(text, wrt, rule, result, dims):
    _, step = derive(text, wrt, {"S": ("symmetric",)})
    assert step.rule == rule
    if result is not None:
        assert ex.to_text(step.result) == result
    assert step.dims == dims
    assert numerically_right(text, wrt, step) < 1e-6


def test_symmetry_is_used_and_reported():
    simp = Simplifier({"S": ("symmetric",)})
    e = ex.parse("x.T @ (inv(S) + inv(S).T)", SCOPE)
    assert ex.to_text(simp(e)) == "2 * x.T @ inv(S)"
    assert simp.used == [("S", "symmetric")]


def test_tensor_case_is_unsupported_not_wrong():
    with pytest.raises(UnsupportedError, match="tensor"):
        derive("A @ x", "A")


def test_a_squared_norm_is_not_derived_through_the_norm():
    _, step = derive("norm(X @ B - B)**2", "X")
    assert step.rule == "differential"
    assert [s.rule for s in step.substeps][0] == "frobenius_squared"
    assert ex.to_text(step.substeps[0].result) == "2 * trace((X @ B - B).T @ d:X @ B)"
    assert not any(s.rule in ("power", "norm") for s in _all_steps(step))


def test_log_det_of_an_expression_never_writes_det_to_cancel_it():
    for text, wrt in (("log(det(X.T @ X))", "X"), ("log(det(B + x @ x.T))", "x")):
        _, step = derive(text, wrt)
        assert step.rule == "differential"
        assert step.substeps[0].rule == "log_det" and step.substeps[0].cites == "Matrix Cookbook (43)"
        assert not any(ex.has_op(s.result, "det") for s in _all_steps(step))
        assert numerically_right(text, wrt, step) < 1e-6


def _all_steps(step):
    yield step
    for s in step.substeps:
        yield from _all_steps(s)


def test_every_citation_is_one_of_the_identity_tables():
    _, step = derive("x.T @ B @ x", "x")
    assert step.cites == "MML (5.107); Matrix Cookbook (81), transposed"


@pytest.mark.parametrize("name", sorted(scalar.DERIVATIVES))
def test_scalar_derivative_table_matches_sympy(name):
    u = sp.Symbol("u", positive=True)
    f = {"exp": sp.exp, "log": sp.log, "sin": sp.sin, "cos": sp.cos, "tan": sp.tan, "tanh": sp.tanh,
         "sqrt": sp.sqrt, "sigmoid": lambda v: 1 / (1 + sp.exp(-v)),
         "softplus": lambda v: sp.log(1 + sp.exp(v)), "cosh": sp.cosh, "sinh": sp.sinh,
         "log1p": lambda v: sp.log(1 + v), "relu": lambda v: sp.Max(0, v), "abs": sp.Abs,
         "step": sp.Heaviside, "sign": sp.sign}[name]
    mine = scalar.derivative(name, ex.sym("u", ()))
    for point in (0.3, 0.7, 1.9):
        want = float(sp.diff(f(u), u).subs(u, point))
        got = value(ex.to_text(mine), {"u": point}, {})
        assert abs(got - want) < 1e-12 * max(1, abs(want))


def test_diagonal_terms_merge_once():
    # diag(x/2) + diag(x)/2 is diag(x): a merged term must not be counted twice
    _, step = derive("x * (1/2 * x)", "x")
    assert ex.to_text(step.result) == "diag(x)"
    assert numerically_right("x * (1/2 * x)", "x", step) < 1e-6


@pytest.mark.parametrize("text, wrt", [("x.T @ B @ x", "x"), ("sin(s) * cos(s)", "s"), ("sin(s) / s", "s"),
                                       ("s**3", "s"), ("x.T @ x", "x"), ("inv(B + s * eye(D)) @ a", "s")])
def test_a_note_neither_repeats_the_rule_name_nor_says_u_equals_u(text, wrt):
    from generator.calculus.rules import TITLES
    _, step = derive(text, wrt)
    for s in _all_steps(step):
        assert not s.note.lower().startswith(TITLES[s.rule].lower())
        for bold, plain, i in re.findall(r"(?:\\mathbf\{(\w+)\}|(\w+)) = @(\d)", s.note):
            assert s.note_args[int(i)] != ex.sym(bold or plain, s.note_args[int(i)].shape)


def test_the_identification_names_the_variable():
    _, step = derive("trace(X.T @ B @ X)", "X")
    assert step.rule == "differential"
    assert step.note_args[1] == ex.sym("X", SHAPES["X"])
    assert r"\frac{\partial f}{\partial @1}" in step.note


# -- piecewise functions and the functions of a whole vector (relu, max, softmax, ...) ------------

@pytest.mark.parametrize("text, wrt, rule, result, dims", [
    ("relu(x)", "x", "elementwise", "diag(step(x))", "D×D"),
    ("abs(x)", "x", "elementwise", "diag(sign(x))", "D×D"),
    ("max(0, a.T @ x + s)", "x", "maximum", "step(a.T @ x + s) * a.T", "1×D"),
    ("max(0, a.T @ x + s)", "s", "maximum", "step(a.T @ x + s)", "1×1"),
    ("max(0, 1 - t * s)", "s", "maximum", "-step(1 - t * s) * t", "1×1"),
    ("maximum(A @ x, z)", "x", "maximum", "diag(step(A @ x - z)) @ A", "M×D"),
    ("max(x, y)", "x", "maximum", "diag(step(x - y))", "D×D"),
    ("max(x, s * y)", "s", "maximum", None, "D×1"),
    ("max(s * x, t * x)", "s", "maximum", None, "D×1"),
    ("max(a.T @ x, s)", "x", "maximum", None, "1×D"),
    ("max(s, x)", "s", "maximum", "step(s - x)", "D×1"),
    ("max(a.T @ x, x)", "x", "maximum", None, "D×D"),
    ("max(x.T, a.T)", "x", "maximum", None, "D×D"),
    ("max(x.T @ x, a.T @ x)", "x", "maximum", None, "1×D"),
    ("sum(relu(A @ x + b))", "x", "sum_entries", None, "1×D"),
    ("x + A.T @ relu(A @ x)", "x", "sum", None, "D×D"),
    ("softmax(x)", "x", "softmax", "diag(softmax(x)) - softmax(x) @ softmax(x).T", "D×D"),
    ("softmax(A @ x)", "x", "softmax", None, "M×D"),
    ("softmax(x).T", "x", "transpose", None, "D×D"),
    ("log_softmax(A @ x)", "x", "log_softmax", None, "M×D"),
    ("-z.T @ log_softmax(A @ x)", "x", "linear_form", None, "1×D"),
    ("logsumexp(x)", "x", "logsumexp", "softmax(x).T", "1×D"),
    ("logsumexp(A @ x) - b.T @ A @ x", "x", "sum", None, "1×D"),
    ("mean(x)", "x", "mean", "ones(D).T / D", "1×D"),
    ("mean(s * x)", "s", "mean", None, "1×1"),
    ("mean(x.T)", "x", "mean", None, "1×D"),
    ("softmax(s * x)", "s", "softmax", None, "D×1"),
    ("cosh(s) * sinh(s)", "s", "product", None, "1×1"),
    ("log1p(x.T @ x)", "x", "scalar_chain", None, "1×D"),
    ("sinh(A @ x)", "x", "elementwise", "diag(cosh(A @ x)) @ A", "M×D"),
])
def test_piecewise_and_vector_function_rules(text, wrt, rule, result, dims):
    _, step = derive(text, wrt)
    assert step.rule == rule
    if result is not None:
        assert ex.to_text(step.result) == result
    assert step.dims == dims
    assert numerically_right(text, wrt, step) < 1e-6


@pytest.mark.parametrize("text", ["sum(relu(X @ a))", "norm(A @ relu(X @ a))**2", "logsumexp(A @ X @ a)", "sum(max(X, B))", "mean(X @ a)"])
def test_piecewise_and_vector_functions_by_a_matrix(text):
    """By a matrix, through the differential: checked against finite differences."""
    _, step = derive(text, "X")
    assert step.rule == "differential"
    assert numerically_right(text, "X", step) < 1e-6


def test_the_piecewise_and_softmax_rules_are_cited():
    _, step = derive("max(0, a.T @ x + s)", "x")
    assert step.cites == "Parr & Howard §5"
    _, step = derive("softmax(x)", "x")
    assert step.cites == "Bishop, PRML §4.3.4"
