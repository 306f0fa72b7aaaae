"""A one-hot label vector (``assume: [one_hot]``): sum(y) = 1 as a named, cited step, so softmax
cross-entropy comes to Bishop's (p − y)ᵀ and (p − y)xᵀ in both of its forms; the check draws such
vectors; without the declaration the factor sum(y) stays."""
from __future__ import annotations

import textwrap

import numpy as np
import pytest

from generator import expr as ex
from generator.build import solve_problem
from generator.errors import ProblemErrors
from generator.spec import parse_problem
from generator.verify import random_value
from independent import define_value, fd_jacobian, rel_error, value

SOFTMAX = """
id: ce
symbols: {M: dim, N: dim, W: [M, N], x: [N], y: {shape: [M], assume: [one_hot]}}
define:
  L: -y.T @ log(p)
  p: softmax(z)
  Q: -y.T @ log_softmax(z)
  z: W @ x
keep: [p]
find: [dL/dz, dL/dW, dQ/dz, dQ/dW]
"""
DEFS = {"L": "-y.T @ log(softmax(W @ x))", "Q": "-y.T @ log_softmax(W @ x)", "z": "W @ x"}


def _results(text: str) -> dict:
    sol = solve_problem(parse_problem(textwrap.dedent(text), "ce.yaml"))
    assert not sol.failed, sol.failed
    return {r.text: r for r in sol.parts[0].results}


@pytest.mark.parametrize("find, form", [("dL/dz", "(p - y).T"), ("dL/dW", "(p - y) @ x.T"),
                                        ("dQ/dz", "(p - y).T"), ("dQ/dW", "(p - y) @ x.T")])
def test_a_one_hot_label_gives_bishops_form_in_both_forms_of_the_loss(find, form):
    r = _results(SOFTMAX)[find]
    assert ex.to_text(r.display) == form
    # the JSON expr (in the declared symbols) against finite differences at a one-hot y
    rng = np.random.default_rng(3)
    dims = {"M": 3, "N": 4}
    y = np.zeros((3, 1))
    y[1, 0] = 1.0
    env = {"W": rng.uniform(-1, 1, (3, 4)), "x": rng.uniform(-1, 1, (4, 1)), "y": y}
    of, wrt = find[1], find[-1]
    claimed = np.atleast_2d(value(ex.to_text(r.result), env, dims))
    x0 = env[wrt] if wrt == "W" else np.asarray(define_value(DEFS, "z", env, dims))
    text = DEFS[of] if wrt == "W" else DEFS[of].replace("W @ x", "zz")

    def f(v):
        local = dict(env, **({"W": v} if wrt == "W" else {"zz": v}))
        return np.atleast_1d(np.asarray(value(text, local, dims), dtype=float)).reshape(-1)
    fd = fd_jacobian(f, x0).reshape(-1)
    assert rel_error(claimed.reshape(-1), fd) < 1e-6


def test_the_step_is_named_cited_and_says_which_vector():
    r = _results(SOFTMAX)["dL/dz"]
    step = next(s for s in r.rewrites if s.rule == "one_hot_sum")
    assert step.cites == "Bishop, PRML §4.3.4"
    assert "is one-hot" in step.note and step.note_args == (ex.sym("y", ("M", 1)),)
    assert "sum(y)" in ex.to_text(step.of) and "sum(y)" not in ex.to_text(step.result)


def test_without_the_declaration_the_log_softmax_form_still_collects_to_sum_y():
    r = _results(SOFTMAX.replace("{shape: [M], assume: [one_hot]}", "[M]"))
    assert ex.to_text(r["dQ/dz"].display) == "(sum(y) * p - y).T"
    assert ex.to_text(r["dL/dz"].display) == "(sum(y) * p - y).T"
    assert "distribute_vector" in [s.rule for p in r["dQ/dz"].partials for s in p.rewrites]


def test_the_checker_draws_a_one_hot_vector_with_sum_1():
    decl = parse_problem(textwrap.dedent(SOFTMAX), "ce.yaml").parts[0].symbols
    y = next(s for s in decl if s.name == "y")
    v = random_value(y, {"M": 5}, np.random.default_rng(0), False)
    assert v.shape == (5, 1) and abs(v.sum() - 1) < 1e-12 and (v > 0).all()


def test_one_hot_applies_to_column_vectors_only():
    with pytest.raises(ProblemErrors) as err:
        parse_problem("id: bad\nsymbols: {N: dim, A: {shape: [N, N], assume: [one_hot]}}\n"
                      "define: {f: trace(A)}\nfind: df/dA\n", "bad.yaml")
    assert "one_hot applies to column vectors" in str(err.value)
