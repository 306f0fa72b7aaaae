"""The expression language: parsing without evaluation, shapes, errors with columns, printing back."""
from __future__ import annotations

import ast as pyast
import inspect

import numpy as np
import pytest

from generator import expr as ex
from generator.errors import ExprError
from independent import value

SCOPE = ex.Scope(dims=frozenset({"D", "M", "N"}),
                 shapes={"x": ("D", 1), "mu": ("D", 1), "S": ("D", "D"), "A": ("M", "N"),
                         "b": ("M", 1), "y": ("N", 1), "s": (), "t": ()})


def parse(text):
    return ex.parse(text, SCOPE)


@pytest.mark.parametrize("text, shape", [
    ("x", ("D", 1)),
    ("x.T", (1, "D")),
    ("x.T @ S @ x", ()),
    ("A @ y + b", ("M", 1)),
    ("x @ x.T", ("D", "D")),
    ("trace(x @ x.T + s**2 * eye(D))", ()),
    ("tanh(A @ y + b)", ("M", 1)),
    ("inv(S)", ("D", "D")),
    ("det(S)", ()),
    ("diag(x)", ("D", "D")),
    ("diag(S)", ("D", 1)),
    ("sum(x)", ()),
    ("norm(x)", ()),
    ("ones(D)", ("D", 1)),
    ("x * mu", ("D", 1)),
    ("x / s", ("D", 1)),
    ("x ** 2", ("D", 1)),
    ("kron(x, b)", ("D*M", 1)),
    ("1/2", ()),
    ("-x", ("D", 1)),
])
def test_shapes(text, shape):
    assert parse(text).shape == shape


@pytest.mark.parametrize("text, message, col", [
    ("x @ A", "(D×1) @ (M×N) do not conform", 2),
    ("x + b", "shapes differ", 2),
    ("y + __import__('os')", "not allowed", 4),
    ("x.shape", "attribute access .shape is not allowed", 0),
    ("(lambda: 1)()", "only calls of named functions", 0),
    ("[i for i in x]", "a comprehension", 0),
    ("x[0]", "a subscript", 0),
    ("exp(x=1)", "keyword arguments", 0),
    ("s +", "syntax error", None),
    ("q + 1", "undeclared name 'q'", 0),
    ("eye(Q)", "declared dimension", 4),
    ("s ** 1000", "too large", 2),
    ("'text'", "is not a number", 0),
    ("x < mu", "a comparison", 0),
    ("open('/etc/passwd')", "unknown function 'open'", 0),
    ("s @ x", "@ needs arrays", 2),
    ("inv(A)", "square", 0),
    ("x if s else mu", "a conditional expression", 0),
])
def test_errors_name_the_construct_and_column(text, message, col):
    with pytest.raises(ExprError) as info:
        parse(text)
    assert message in info.value.message
    if col is not None:
        assert info.value.col == col


def test_deep_nesting_is_an_error_not_a_crash():
    with pytest.raises(ExprError, match="nested"):
        parse("(" * 1000 + "s" + ")" * 1000)
    with pytest.raises(ExprError):
        parse("-" * 3000 + "s")


def test_long_expression_is_an_error():
    with pytest.raises(ExprError, match="parts|longer"):
        parse(" + ".join(["s"] * 3000))


def test_parser_never_evaluates():
    source = inspect.getsource(ex)
    tree = pyast.parse(source)
    called = {n.func.id for n in pyast.walk(tree) if isinstance(n, pyast.Call) and isinstance(n.func, pyast.Name)}
    assert not called & {"eval", "exec", "compile", "__import__"}
    assert "sympify" not in source and "parse_expr" not in source


@pytest.mark.parametrize("text", [
    "x.T @ S @ x", "-1/2 * exp(-1/2 * (x - mu).T @ inv(S) @ (x - mu))", "tanh(A @ y + b)",
    "diag(1 - tanh(A @ y + b)**2) @ A", "s**-1 + t / (s - t)", "-(x - mu)", "2 * x.T - mu.T",
    "trace(x @ x.T + s**2 * eye(D))", "(s * t)**2", "-s**2", "x / (s + 1)", "kron(x, b)",
])
def test_printed_text_parses_again_to_the_same_value(text):
    e = parse(text)
    printed = ex.to_text(e)
    again = parse(printed)
    assert again.shape == e.shape
    rng = np.random.default_rng(0)
    dims = {"D": 3, "M": 2, "N": 4}
    env = {"x": rng.normal(size=(3, 1)), "mu": rng.normal(size=(3, 1)), "S": rng.normal(size=(3, 3)) + 3 * np.eye(3),
           "A": rng.normal(size=(2, 4)), "b": rng.normal(size=(2, 1)), "y": rng.normal(size=(4, 1)),
           "s": 0.7, "t": 1.3}
    np.testing.assert_allclose(value(printed, env, dims), value(text, env, dims), rtol=1e-12)
    assert ex.to_text(again) == printed
