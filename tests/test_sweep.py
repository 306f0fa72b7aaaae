"""A seeded sweep over a richer grammar (inv, det, norms, diag, divisions, nesting): every derivative
the engine returns matches finite differences, and most of them are derived at all."""
from __future__ import annotations

import random

import numpy as np

from generator import expr as ex
from generator.calculus.rules import Differentiator
from generator.calculus.simplify import Simplifier
from generator.errors import ExprError, UnsupportedError
from independent import jacobian_error

SH = {"x": ("D", 1), "y": ("D", 1), "A": ("D", "D"), "B": ("D", "D"), "s": (), "t": ()}
SC = ex.Scope(dims=frozenset({"D"}), shapes=SH)
R = random.Random(1)


def S(d):
    if d == 0: return R.choice(["s", "t", "x.T @ y", "x.T @ A @ x", "trace(A)", "det(A)", "norm(x)", "sum(x)"])
    c = R.randrange(14)
    if c == 0: return f"({S(d-1)} + {S(d-1)})"
    if c == 1: return f"({S(d-1)} * {S(d-1)})"
    if c == 2: return f"{S(d-1)} / (2 + ({S(d-1)})**2)"
    if c == 3: return f"tanh({S(d-1)})"
    if c == 4: return f"log(1 + ({S(d-1)})**2)"
    if c == 5: return f"({V(d-1)}).T @ ({V(d-1)})"
    if c == 6: return f"trace({M(d-1)})"
    if c == 7: return f"det(2 * eye(D) + 0.1 * ({M(d-1)}))"
    if c == 8: return f"norm({V(d-1)})"
    if c == 9: return f"sum(({V(d-1)}) * ({V(d-1)}))"
    if c == 10: return f"({V(d-1)}).T @ ({M(d-1)}) @ ({V(d-1)})"
    if c == 11: return f"trace(inv(3 * eye(D) + 0.1 * ({M(d-1)})))"
    if c == 12: return f"norm({M(d-1)})**2"
    return S(d-1)
def V(d):
    if d == 0: return R.choice(["x", "y", "A @ x", "ones(D)"])
    c = R.randrange(8)
    if c == 0: return f"({V(d-1)} + {V(d-1)})"
    if c == 1: return f"({S(d-1)}) * ({V(d-1)})"
    if c == 2: return f"({M(d-1)}) @ ({V(d-1)})"
    if c == 3: return f"({V(d-1)}) * ({V(d-1)})"
    if c == 4: return f"tanh({V(d-1)})"
    if c == 5: return f"({V(d-1)}) / (1 + ({S(d-1)})**2)"
    if c == 6: return f"diag({M(d-1)})"
    return V(d-1)
def M(d):
    if d == 0: return R.choice(["A", "B", "eye(D)", "x @ y.T"])
    c = R.randrange(8)
    if c == 0: return f"({M(d-1)} + {M(d-1)})"
    if c == 1: return f"({M(d-1)}) @ ({M(d-1)})"
    if c == 2: return f"({M(d-1)}).T"
    if c == 3: return f"({S(d-1)}) * ({M(d-1)})"
    if c == 4: return f"({V(d-1)}) @ ({V(d-1)}).T"
    if c == 5: return f"diag({V(d-1)})"
    if c == 6: return f"inv(3 * eye(D) + 0.1 * ({M(d-1)}))"
    return M(d-1)


def test_rich_grammar_sweep():
    rng = np.random.default_rng(3)
    env = {"x": rng.uniform(-1, 1, (3, 1)), "y": rng.uniform(-1, 1, (3, 1)),
           "A": rng.uniform(-1, 1, (3, 3)) + 3 * np.eye(3), "B": rng.uniform(-1, 1, (3, 3)) + 3 * np.eye(3),
           "s": 0.6, "t": -0.4}
    ok = unsupported = 0
    for _ in range(600):
        text = {"S": S, "V": V, "M": M}[R.choice("SVM")](R.randrange(1, 4))
        try:
            e = ex.parse(text, SC)
        except ExprError:
            continue
        for wrt in ("x", "s", "A"):
            D = Differentiator(wrt, SH[wrt], Simplifier())
            if not ex.depends_on(e, wrt) or D.jshape(e.shape) is None:
                continue
            try:
                step = D.d(e)
            except UnsupportedError:
                unsupported += 1
                continue
            with np.errstate(all="ignore"):
                err = jacobian_error(text, wrt, ex.to_text(step.result), env, {"D": 3})
            assert err < 1e-5, (text, wrt, ex.to_text(step.result), err)
            ok += 1
    assert ok > 200 and unsupported < 0.15 * (ok + unsupported), (ok, unsupported)
