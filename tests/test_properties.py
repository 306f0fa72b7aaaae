"""Property tests: random well-shaped expressions differentiate to results that match finite
differences (through the independent evaluator), or are reported unsupported, never wrong."""
from __future__ import annotations

import numpy as np
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# STEPGEN_FUZZ_SCALE=10 python3 -m pytest tests/test_fuzz.py: ten times the examples
SCALE = int(os.environ.get("STEPGEN_FUZZ_SCALE", "1"))

from generator import expr as ex
from generator.calculus.rules import Differentiator
from generator.calculus.simplify import Simplifier
from generator.errors import UnsupportedError
from generator.verify import near_kink
from independent import jacobian_error

SHAPES = {"x": ("D", 1), "y": ("D", 1), "A": ("D", "D"), "B": ("D", "D"), "s": (), "t": ()}
SCOPE = ex.Scope(dims=frozenset({"D"}), shapes=SHAPES)
DIMS = {"D": 3}

scalar_leaf = st.sampled_from(["s", "t", "2", "1/2", "x.T @ y", "x.T @ A @ x", "trace(A)", "sum(x)"])
vector_leaf = st.sampled_from(["x", "y", "A @ x", "ones(D)"])
matrix_leaf = st.sampled_from(["A", "B", "eye(D)", "x @ y.T"])


def combine(c1, c2, i, j, k, f):
    s1, v1, m1 = c1
    s2, v2, m2 = c2
    scalars = [
        s1, f"({s1} + {s2})", f"({s1} * {s2})", f"({s1} - {s2})", f"{f}({s1})", f"exp({s1} / 10)",
        f"log(1 + ({s1})**2)", f"sqrt(1 + ({s1})**2)", f"({s1})**2", f"{s1} / (2 + ({s2})**2)",
        f"({v1}).T @ ({v2})", f"sum({v1})", f"sum(({v1}) * ({v1}))", f"trace({m1})", f"({v1}).T @ ({m1}) @ ({v2})",
        # piecewise functions and the functions of a whole vector
        f"max({s1}, {s2})", f"max(0, 1 - {s1})", f"logsumexp({v1})", f"mean({v1})", f"log1p(({s1})**2)",
        f"cosh({s1} / 4)", f"-({v2}).T @ log_softmax({v1})",
    ]
    vectors = [v1, f"({v1} + {v2})", f"({s1}) * ({v1})", f"({m1}) @ ({v1})", f"({v1}) * ({v2})", f"{f}({v1})",
               f"max(0, {v1})", f"maximum({v1}, {s1})", f"max({v1}, {v2})", f"softmax({v1})", f"relu(({m1}) @ ({v1}))"]
    matrices = [m1, f"({m1} + {m2})", f"({m1}) @ ({m2})", f"({m1}).T", f"({s1}) * ({m1})", f"({v1}) @ ({v2}).T"]
    return scalars[i % len(scalars)], vectors[j % len(vectors)], matrices[k % len(matrices)]


def grow(children):
    return st.builds(combine, children, children, st.integers(0, 21), st.integers(0, 10), st.integers(0, 5),
                     st.sampled_from(["sin", "cos", "tanh", "sigmoid", "softplus", "relu", "abs", "sinh"]))


trees = st.recursive(st.tuples(scalar_leaf, vector_leaf, matrix_leaf), grow, max_leaves=6)


def env():
    rng = np.random.default_rng(3)
    return {"x": rng.uniform(-1, 1, (3, 1)), "y": rng.uniform(-1, 1, (3, 1)),
            "A": rng.uniform(-1, 1, (3, 3)) + 3 * np.eye(3), "B": rng.uniform(-1, 1, (3, 3)),
            "s": 0.6, "t": -0.4}


def check(text: str, wrt: str) -> None:
    e = ex.parse(text, SCOPE)
    if not ex.depends_on(e, wrt):
        return
    D = Differentiator(wrt, SHAPES[wrt], Simplifier())
    if D.jshape(e.shape) is None:
        return
    if near_kink([e], _generator_env(), DIMS, 1e-3):
        return          # finite differences across a kink of relu, abs or max say nothing
    try:
        step = D.d(e)
    except UnsupportedError:
        return
    err = jacobian_error(text, wrt, ex.to_text(step.result), env(), DIMS)
    assert err < 1e-5, (text, wrt, ex.to_text(step.result), err)


def _generator_env():
    return {k: (float(v) if np.ndim(v) == 0 else v) for k, v in env().items()}


SETTINGS = settings(max_examples=400 * SCALE, deadline=None, suppress_health_check=list(HealthCheck))


@SETTINGS
@given(trees)
def test_scalar_expressions(t):
    for wrt in ("x", "s", "A"):
        check(t[0], wrt)


@SETTINGS
@given(trees)
def test_vector_expressions(t):
    for wrt in ("x", "s"):
        check(t[1], wrt)


@SETTINGS
@given(trees)
def test_matrix_expressions_by_a_scalar(t):
    check(t[2], "s")


# --- vec and Kronecker products (issue 11, item 6) ---------------------------------------------------

kron_matrix = st.sampled_from(["A", "B", "x @ y.T", "A @ B", "s * A", "A + x @ x.T", "eye(D)"])
kron_vector = st.sampled_from(["x", "y", "A @ x", "s * x", "tanh(x)", "ones(D)"])


@st.composite
def kron_expressions(draw):
    """A scalar and a vector through kron and vec, built from the trees' leaves."""
    m1, m2 = draw(kron_matrix), draw(kron_matrix)
    v1, v2, v3, v4 = (draw(kron_vector) for _ in range(4))
    scalars = [f"trace(kron({m1}, {m2}))", f"norm(kron({m1}, {v1}))**2", f"norm(kron({v1}, {v2}))",
               f"kron({v1}, {v2}).T @ kron({v3}, {v4})", f"vec({m1}).T @ vec({m2})",
               f"kron({v1}, {v2}).T @ kron({m1}, {m2}) @ kron({v3}, {v4})", f"sum(vec({m1}) * kron({v1}, {v2}))"]
    vectors = [f"vec({m1})", f"vec(({m1}).T)", f"kron({v1}, {v2})", f"kron({m1}, {m2}) @ kron({v1}, {v2})", f"vec(({m1}) @ ({m2}))"]
    return draw(st.sampled_from(scalars)), draw(st.sampled_from(vectors))


@SETTINGS
@given(kron_expressions())
def test_kron_and_vec_expressions(t):
    for wrt in ("x", "s", "A"):
        check(t[0], wrt)
    for wrt in ("x", "s"):
        check(t[1], wrt)


@settings(max_examples=60 * SCALE, deadline=None, suppress_health_check=list(HealthCheck))
@given(trees)
def test_hessians_by_a_matrix(t):
    """The Hessian with respect to vec A of random scalars: derived, or unsupported, never wrong."""
    from generator.calculus.rules import vec_jacobian_step
    from independent import vec_hessian_error
    e = ex.parse(t[0], SCOPE)
    if not ex.depends_on(e, "A"):
        return
    simp = Simplifier()
    try:
        gradient = Differentiator("A", SHAPES["A"], simp).d(e).result
        hessian = simp(vec_jacobian_step(gradient, "A", SHAPES["A"], simp).result)
    except UnsupportedError:
        return
    err = vec_hessian_error(t[0], "A", ex.to_text(hessian), env(), DIMS)
    assert err < 1e-4, (t[0], ex.to_text(hessian), err)
