"""Results in the textbook's form (issue 9, item 1).

Each row is a problem, a derivative of its ``find`` and the closed form a
textbook prints.  The result must have the same value at random points
(evaluated by ``independent.py``, not by the project's evaluator) and be no
longer than 1.25 times the textbook's form, counted in Python tokens of the
expression language.  A form may use a ``define`` name the result keeps
(``keep:``, or kept automatically): it is compared with the displayed result.
Every rewrite on the way is a named, cited, checked step.
"""
from __future__ import annotations

import io
import textwrap
import tokenize

import numpy as np
import pytest
import yaml

from bank_check import random_env
from generator import expr as ex
from generator.build import solve_problem
from generator.calculus.rules import TITLES
from generator.errors import CheckFailed
from generator.spec import parse_problem
from generator.trace import Step
from generator.verify import Checker
from independent import define_value, rel_error, value

LOGISTIC = """
symbols: {N: dim, D: dim, X: [N, D], w: [D], y: [N]}
define:
  L: -sum(y * log(sigmoid(z)) + (1 - y) * log(1 - sigmoid(z)))
  z: X @ w
find: [dL/dw, d2L/dw2]
"""

LOGISTIC_NAMED = """
symbols: {N: dim, D: dim, X: [N, D], w: [D], y: [N]}
define:
  L: -y.T @ log(p) - (1 - y).T @ log(1 - p)
  p: sigmoid(z)
  z: X @ w
find: [dL/dw, d2L/dw2]
"""

SOFTMAX = """
symbols: {D: dim, f: [D], y: [D]}
define:
  L: -y.T @ f + log(sum(exp(f)))
find: dL/df
"""

SOFTMAX_KEEP = """
symbols: {M: dim, N: dim, W: [M, N], x: [N], y: [M]}
define:
  L: -y.T @ z + log(sum(exp(z)))
  z: W @ x
  p: exp(z) / sum(exp(z))
keep: [p]
find: [dL/dz, dL/dW]
"""

SOFTMAX_P = """
symbols: {M: dim, N: dim, W: [M, N], x: [N], y: [M]}
define:
  L: -y.T @ log(p)
  p: exp(z) / sum(exp(z))
  z: W @ x
keep: [p]
find: [dL/dz, dL/dW]
"""

SOFTMAX_P_AUTO = SOFTMAX_P.replace("keep: [p]\n", "")

LOG_SUM_EXP = """
symbols: {D: dim, x: [D]}
define:
  f: log(sum(exp(x)))
  p: exp(x) / sum(exp(x))
keep: [p]
find: [df/dx, d2f/dx2]
"""

TWO_LAYER_SOFTMAX = """
symbols: {D: dim, H: dim, K: dim, W1: [H, D], W2: [K, H], x: [D], y: [K]}
define:
  L: -y.T @ log(p)
  p: exp(s) / sum(exp(s))
  s: W2 @ h
  h: sigmoid(W1 @ x)
find: [dL/dW2, dL/dW1]
"""

TWO_LAYER_SOFTMAX_KEEP = TWO_LAYER_SOFTMAX.replace("find:", "keep: [p, h]\nfind:")

AFFINE_SQUARED = """
symbols: {N: dim, D: dim, X: [N, D], w: [D], b: scalar, y: [N]}
define:
  C: sum(r**2)
  r: X @ w + b * ones(N) - y
find: [dC/dw, dC/db]
"""

GAUSSIAN_MLE = """
symbols: {D: dim, x: [D], mu: [D], Sigma: {shape: [D, D], assume: [symmetric, invertible]}}
define:
  l: -1/2 * log(det(Sigma)) - 1/2 * r.T @ inv(Sigma) @ r
  r: x - mu
find: [dl/dmu, dl/dSigma]
"""

SIGMOID_WRITTEN = """
symbols: {z: scalar}
define:
  f: 1 / u
  u: 1 + exp(-z)
find: df/dz
"""

LOG_COSH = """
symbols: {x: scalar}
define:
  g: log((exp(x) + exp(-x)) / 2)
find: dg/dx
"""

LOG_COSH_VECTOR = """
symbols: {D: dim, x: [D]}
define:
  g: sum(log(exp(x) + exp(-x)))
find: dg/dx
"""

LOG_SQUARES = """
symbols: {D: dim, x: [D]}
define:
  f: sum(log(x**2))
find: df/dx
"""

HALF_SQUARES = """
symbols: {M: dim, D: dim, A: [M, D], x: [D], b: [M]}
define:
  f: 1/2 * r.T @ r
  r: A @ x - b
find: df/dx
"""

LOG_LIKELIHOOD = """
symbols: {N: dim, D: dim, X: [N, D], beta: [D], y: [N]}
define:
  l: y.T @ X @ beta - sum(softplus(X @ beta))
find: dl/dbeta
"""

TRACE_AXX = """
symbols: {D: dim, X: [D, D], A: [D, D]}
define:
  f: trace(A @ X @ X)
find: df/dX
"""

DET_CUBE = """
symbols: {D: dim, X: [D, D]}
define:
  f: det(X @ X @ X)
find: df/dX
"""

DET_POWER = """
symbols: {D: dim, X: [D, D]}
define:
  f: det(X)**3
find: df/dX
"""

LOG_DET_AXB = """
symbols:
  D: dim
  X: [D, D]
  A: {shape: [D, D], assume: [invertible]}
  B: {shape: [D, D], assume: [invertible]}
define:
  f: log(det(A @ X @ B))
find: df/dX
"""

SYMMETRIC_M = """
symbols: {D: dim, N: dim, X: [D, N], G: {shape: [D, D], assume: [symmetric]}}
define:
  f: trace(M @ M)
  M: X @ X.T - G
find: df/dX
"""

SYMMETRIC_K = """
symbols: {D: dim, y: [D], s: scalar, t: scalar, C: {shape: [D, D], assume: [symmetric]}}
define:
  f: y.T @ inv(K) @ y
  K: s * C + t * eye(D)
find: df/dy
"""

INVERSE_GRAM = """
symbols: {D: dim, y: [D], X: [D, D]}
define:
  f: y.T @ inv(S) @ y
  S: X @ X.T
find: df/dy
"""

EVIDENCE = """
symbols: {D: dim, K: dim, W: [D, K], s: scalar, y: [D]}
define:
  f: log(det(C)) + y.T @ inv(C) @ y
  C: W @ W.T + s**2 * eye(D)
find: [df/dW, df/ds]
"""

MML_NOISE = """
symbols: {N: dim, D: dim, Phi: [N, D], y: [N], theta: [D], sigma: {shape: [], assume: [positive]}}
define:
  L: 1/(2*sigma**2) * norm(y - Phi @ theta)**2 + N/2 * log(sigma**2)
find: dL/dsigma
"""

LOG_ABS_DET = """
symbols: {D: dim, X: [D, D]}
define:
  f: log(abs(det(X)))
find: df/dX
"""

ATTENTION = """
symbols: {n: dim, d: dim, m: dim, K: [n, d], V: [n, m], q: [d]}
define:
  o: V.T @ a
  a: softmax(s)
  s: K @ q / sqrt(d)
find: [da/dq, do/dq]
"""

MLP_RELU = """
symbols: {D: dim, H: dim, K: dim, x: [D], W1: [H, D], b1: [H], W2: [K, H], b2: [K], y: {shape: [K], assume: [one_hot]}}
define:
  L: -y.T @ log_softmax(z)
  z: W2 @ h + b2
  h: relu(a)
  a: W1 @ x + b1
find: [dL/db2, dL/dh, dL/dW1]
"""

FORMS = [
    # logistic regression and softmax cross-entropy
    ("logistic gradient", LOGISTIC, "dL/dw", "(sigmoid(X @ w) - y).T @ X"),
    ("logistic Hessian", LOGISTIC, "d2L/dw2", "X.T @ diag(sigmoid(X @ w) * (1 - sigmoid(X @ w))) @ X"),
    ("logistic gradient, p named", LOGISTIC_NAMED, "dL/dw", "(sigmoid(X @ w) - y).T @ X"),
    ("logistic Hessian, p named", LOGISTIC_NAMED, "d2L/dw2", "X.T @ diag(sigmoid(X @ w) * (1 - sigmoid(X @ w))) @ X"),
    ("softmax cross-entropy", SOFTMAX, "dL/df", "(exp(f) / sum(exp(f)) - y).T"),
    ("softmax, p kept", SOFTMAX_KEEP, "dL/dz", "(p - y).T"),
    ("softmax by weights, p kept", SOFTMAX_KEEP, "dL/dW", "(p - y) @ x.T"),
    ("two layers, softmax, by W2", TWO_LAYER_SOFTMAX, "dL/dW2", "(sum(y) * p - y) @ sigmoid(W1 @ x).T"),
    ("two layers, softmax, by W1", TWO_LAYER_SOFTMAX, "dL/dW1",
     "diag(sigmoid(W1 @ x) * (1 - sigmoid(W1 @ x))) @ W2.T @ (sum(y) * p - y) @ x.T"),
    ("two layers, p and h kept", TWO_LAYER_SOFTMAX_KEEP, "dL/dW1", "diag(h * (1 - h)) @ W2.T @ (sum(y) * p - y) @ x.T"),
    ("affine model by weights", AFFINE_SQUARED, "dC/dw", "2 * (X @ w + b * ones(N) - y).T @ X"),
    ("affine model by bias, 1ᵀv = sum(v)", AFFINE_SQUARED, "dC/db", "2 * sum(X @ w + b * ones(N) - y)"),
    ("Gaussian by the mean", GAUSSIAN_MLE, "dl/dmu", "(x - mu).T @ inv(Sigma)"),
    ("Gaussian by the covariance", GAUSSIAN_MLE, "dl/dSigma",
     "1/2 * (inv(Sigma) @ (x - mu) @ (x - mu).T @ inv(Sigma) - inv(Sigma))"),
    ("log-sum-exp gradient", LOG_SUM_EXP, "df/dx", "p.T"),
    ("log-sum-exp Hessian", LOG_SUM_EXP, "d2f/dx2", "diag(p) - p @ p.T"),
    ("cross-entropy of p, p kept", SOFTMAX_P, "dL/dz", "(sum(y) * p - y).T"),
    ("cross-entropy of p by weights, p kept", SOFTMAX_P, "dL/dW", "(sum(y) * p - y) @ x.T"),
    ("cross-entropy of p, p kept by itself", SOFTMAX_P_AUTO, "dL/dz", "(sum(y) * p - y).T"),
    ("cross-entropy of p by weights, p kept by itself", SOFTMAX_P_AUTO, "dL/dW", "(sum(y) * p - y) @ x.T"),
    # sigmoid and tanh written out
    ("sigmoid written out", SIGMOID_WRITTEN, "df/dz", "sigmoid(z) * (1 - sigmoid(z))"),
    ("log cosh", LOG_COSH, "dg/dx", "tanh(x)"),
    ("log cosh of a vector", LOG_COSH_VECTOR, "dg/dx", "tanh(x).T"),
    # Hadamard algebra
    ("x^-2 * 2x", LOG_SQUARES, "df/dx", "2 * (x**(-1)).T"),
    ("1/2 * 2", HALF_SQUARES, "df/dx", "(A @ x - b).T @ A"),
    ("common right factor", LOG_LIKELIHOOD, "dl/dbeta", "(y - sigmoid(X @ beta)).T @ X"),
    ("transpose of a sum", TRACE_AXX, "df/dX", "(X @ A + A @ X).T"),
    # determinants and inverses
    ("det of a cube", DET_CUBE, "df/dX", "3 * det(X)**3 * inv(X).T"),
    ("MML 9.2 by the noise", MML_NOISE, "dL/dsigma", "N / sigma - 1 / sigma**3 * norm(y - Phi @ theta)**2"),
    ("log |det X|", LOG_ABS_DET, "df/dX", "inv(X).T"),
    ("MLP by b2, z kept", MLP_RELU, "dL/db2", "(softmax(z) - y).T"),
    ("MLP by h, z kept", MLP_RELU, "dL/dh", "(softmax(z) - y).T @ W2"),
    ("MLP by W1, z kept", MLP_RELU, "dL/dW1", "diag(step(a)) @ W2.T @ (softmax(z) - y) @ x.T"),
    ("attention, a kept", ATTENTION, "da/dq", "1/sqrt(d) * (diag(a) - a @ a.T) @ K"),
    ("attention output, a kept", ATTENTION, "do/dq", "1/sqrt(d) * V.T @ (diag(a) - a @ a.T) @ K"),
    ("power of det", DET_POWER, "df/dX", "3 * det(X)**3 * inv(X).T"),
    ("log det AXB", LOG_DET_AXB, "df/dX", "inv(X).T"),
    # symmetry from the construction
    ("M + M.T = 2M", SYMMETRIC_M, "df/dX", "4 * (X @ X.T - G) @ X"),
    ("K = sC + tI", SYMMETRIC_K, "df/dy", "2 * y.T @ inv(s * C + t * eye(D))"),
    ("inverse of a Gram matrix", INVERSE_GRAM, "df/dy", "2 * y.T @ inv(X @ X.T)"),
    # a long subexpression kept by name
    ("C kept", EVIDENCE, "df/dW", "2 * (inv(C) - inv(C) @ y @ y.T @ inv(C)) @ W"),
    ("C kept, by s", EVIDENCE, "df/ds", "2 * s * (trace(inv(C)) - y.T @ inv(C) @ inv(C) @ y)"),
]


def tokens(text: str) -> int:
    skip = {tokenize.ENCODING, tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER}
    return sum(1 for t in tokenize.generate_tokens(io.StringIO(text).readline) if t.type not in skip)


def _solved(text: str, find: str):
    sol = solve_problem(parse_problem(textwrap.dedent(text), "forms.yaml"))
    assert not sol.failed, sol.failed
    return next(r for r in sol.parts[0].results if r.text == find)


@pytest.mark.parametrize("name, text, find, textbook", FORMS, ids=[f[0] for f in FORMS])
def test_textbook_form(name, text, find, textbook):
    r = _solved(text, find)
    shown = ex.to_text(r.display if r.display is not None else r.result)
    doc = yaml.safe_load(textwrap.dedent(text))
    defs = {k: str(v) for k, v in doc["define"].items()}
    rng = np.random.default_rng(7)
    for _ in range(3):
        dims, env = random_env(doc["symbols"], rng)
        for n in defs:
            env[n] = define_value(defs, n, env, dims)
        got, want = value(shown, env, dims), value(textbook, env, dims)
        assert rel_error(got, want) < 1e-8, (shown, textbook)
        # the JSON form, over the declared symbols only, has the same value
        assert rel_error(value(ex.to_text(r.result), env, dims), want) < 1e-8
    assert tokens(shown) <= 1.25 * tokens(textbook), (shown, textbook)
    assert not (ex.free_symbols(r.result) & defs.keys() - {r.wrt}), "JSON expr must use declared symbols"


@pytest.mark.parametrize("name, text, find, textbook", FORMS, ids=[f[0] for f in FORMS])
def test_every_rewrite_is_a_named_checked_step(name, text, find, textbook):
    r = _solved(text, find)
    steps = r.rewrites + r.hessian_rewrites
    checked = dict(r.partial_checks)
    for s in steps:
        assert s.rule in TITLES and s.note, s
        assert checked[f"rewrite {s.rule}"] < 1e-6
    # consecutive: each rewrite starts where the previous one ended; a partial's start at its derivative
    for group in (r.rewrites, r.hessian_rewrites):     # a Hessian's start at the gradient's derivative
        for a, b in zip(group, group[1:]):
            assert a.result == b.of
    for p in r.partials:
        if p.rewrites:
            assert p.rewrites[0].of == p.step.result and p.result == p.rewrites[-1].result
            assert all(s.rule in TITLES and s.note for s in p.rewrites)


def test_the_families_need_rewrites():
    """The table is not passing by accident: these forms come from named rewrites."""
    rules = {s.rule for text, find in ((LOGISTIC, "dL/dw"), (LOG_LIKELIHOOD, "dl/dbeta"), (DET_CUBE, "df/dX"),
                                        (SYMMETRIC_M, "df/dX"), (LOG_COSH, "dg/dx"), (SIGMOID_WRITTEN, "df/dz"))
             for r in [_solved(text, find)] for s in r.rewrites + tuple(x for p in r.partials for x in p.rewrites)}
    assert {"entrywise_algebra", "sign_into_sum", "common_right_factor", "transpose_of_sum", "det_of_product",
            "inverse_of_product", "symmetric_transpose", "tanh_form", "sigmoid_form"} <= rules


def test_a_wrong_rewrite_is_refused():
    part = parse_problem(textwrap.dedent(TRACE_AXX), "forms.yaml").parts[0]
    X, A = ex.sym("X", ("D", "D")), ex.sym("A", ("D", "D"))
    wrong = Step("transpose_of_sum", ex.add(ex.matmul(ex.transpose(A), ex.transpose(X)), ex.matmul(X, A)), "",
                 ex.transpose(ex.add(ex.matmul(X, A), ex.matmul(X, A))), "D×D")
    with pytest.raises(CheckFailed):
        Checker(part, "forms").check_rewrite(wrong)


def test_kept_names_show_where():
    r = _solved(EVIDENCE, "df/dW")
    assert [n for n, _ in r.kept] == ["C"]                   # kept automatically: repeated and long
    assert ex.to_text(r.kept[0][1]) == "W @ W.T + s**2 * eye(D)"
    assert "C" not in ex.free_symbols(r.result)
    r = _solved(SYMMETRIC_K, "df/dy")
    assert r.kept == () and r.display is None                # K once: written out


def test_keep_field_is_checked():
    from generator.errors import ProblemErrors
    bad = textwrap.dedent(SOFTMAX_KEEP).replace("keep: [p]", "keep: [q, L]")
    with pytest.raises(ProblemErrors) as err:
        parse_problem(bad, "forms.yaml")
    text = str(err.value)
    assert "'q' is not a name from define" in text and "L is the function itself" in text


def test_keep_in_a_part_and_in_the_schema():
    from generator.schema import SCHEMA
    assert "keep" in SCHEMA["properties"] and "keep" in SCHEMA["properties"]["parts"]["items"]["properties"]
    text = textwrap.dedent("""
        title: t
        statement: s
        symbols: {D: dim, K: dim, W: [D, K], s: scalar, y: [D]}
        parts:
          - define:
              f: y.T @ inv(C) @ y
              C: W @ W.T + s**2 * eye(D)
            keep: C
            find: df/ds
        """)
    part = parse_problem(text, "forms.yaml").parts[0]
    assert part.keep == ("C",)
    r = solve_problem(parse_problem(text, "forms.yaml")).parts[0].results[0]
    assert [n for n, _ in r.kept] == ["C"] and "C" in ex.free_symbols(r.display)


def test_the_softmax_jacobian_is_written_in_p():
    """∂p/∂z = diag(p) − p pᵀ, then (y ⊙ (1 ⊘ p))ᵀ diag(p) = yᵀ: named steps, with or without keep:."""
    for text in (SOFTMAX_P, SOFTMAX_P_AUTO):
        r = _solved(text, "dL/dz")
        jac = next(p for p in r.partials if (p.of, p.wrt) == ("p", "z"))
        assert ex.to_text(jac.result) == "diag(p) - p @ p.T"
        assert jac.rewrites[-1].rule == "scalar_into_kept"
        assert "reciprocal_cancels" in {s.rule for s in r.rewrites}
        assert [n for n, _ in r.kept] == ["p"]
        assert not ex.free_symbols(r.result) & {"p", "z"}


def test_a_short_name_is_not_kept_by_itself():
    """M = XXᵀ − G once in 4(XXᵀ − G)X: keeping it finds nothing shorter, so it is written out."""
    r = _solved(SYMMETRIC_M, "df/dX")
    assert r.kept == () and r.display is None


def test_show_prints_the_kept_names_and_the_rewrites():
    from generator.render.text import solution_text
    text = solution_text(solve_problem(parse_problem(textwrap.dedent(SOFTMAX_P), "forms.yaml")))
    assert "∂p/∂z  [M×M]  = diag(p) - p @ p.T" in text
    assert "= diag(p) - p @ p.T  (A scalar into the factors)" in text
    assert "= -(y.T - sum(y) * p.T)  (Reciprocal against its own entries)" in text
    assert "result: dL/dz = (sum(y) * p - y).T" in text
    assert text.count("where p = exp(W @ x) / sum(exp(W @ x))") == 2


def test_a_contraction_note_names_an_indexed_weight_in_valid_tex(tmp_path):
    """∂L/∂{W₂}_{kl}: the name in braces, not W_{2}_{kl} (a double subscript, set as raw text)."""
    from click.testing import CliRunner
    from generator.cli import main
    src = tmp_path / "two-layer.yaml"
    src.write_text("id: two-layer\ntitle: t\nstatement: s\n" + textwrap.dedent(TWO_LAYER_SOFTMAX))
    res = CliRunner().invoke(main, ["build", str(src), "--out", str(tmp_path / "out"), "--format", "tex"])
    assert res.exit_code == 0, res.output
    tex = (tmp_path / "out" / "two-layer.tex").read_text()
    assert r"\partial {\mathbf{W}_{2}}_{kl}" in tex and r"\texttt{\$" not in tex


def test_powers_of_one_scalar_are_collected():
    """σ/σ⁴ is 1/σ³, in the quotient rule's own line and in the result (MML (9.11) ff.)."""
    r = _solved(MML_NOISE, "dL/dsigma")
    texts = [ex.to_text(r.result)] + [ex.to_text(s.result) for p in r.partials for s in _all(p.step)]
    assert not [t for t in texts if "sigma / sigma" in t or "sigma**4" in t], texts
    assert "sigma**3" in ex.to_text(r.result)


def test_sign_times_the_value_is_the_absolute_value():
    """d log|det X| / dX = X⁻ᵀ (Matrix Cookbook (57)), by a named step sign(u) u = |u|."""
    r = _solved(LOG_ABS_DET, "df/dX")
    X = ex.sym("X", ("D", "D"))
    assert r.result == ex.transpose(ex.inv(X))
    assert "sign_times_value" in {s.rule for s in r.rewrites + tuple(x for p in r.partials for x in p.rewrites)}


def _all(step):
    yield step
    for s in step.substeps:
        yield from _all(s)


def test_a_name_whose_value_uses_a_kept_name_is_kept_too():
    """a = softmax(s) with s kept: the result writes a, not softmax(s) three times, and says
    where a = softmax(s), s = Kq/√d (each name as the user defined it)."""
    r = _solved(ATTENTION, "da/dq")
    assert "softmax" not in ex.to_text(r.display)
    assert [(n, ex.to_text(v)) for n, v in r.kept] == [("a", "softmax(s)"), ("s", "K @ q / sqrt(d)")]


def test_a_long_name_defined_through_others_is_kept_even_once():
    """Backpropagation (Goodfellow et al. alg. 6.4): softmax(z) − y with z = W2 relu(W1x + b1) + b2
    said once under the box, not z written out in every box."""
    for find in ("dL/db2", "dL/dh", "dL/dW1"):
        r = _solved(MLP_RELU, find)
        assert "z" in dict(r.kept) and "relu" not in ex.to_text(r.display), find
