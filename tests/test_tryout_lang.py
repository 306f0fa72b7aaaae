"""A new user's tryout (fix2-lang): names that print like a built-in, errors that say what to
write, the JSON ``expr`` of a dim as a number, ``dims`` in denominator layout, grade's wording."""
from __future__ import annotations

import json

import pytest

from generator import expr as ex
from generator.build import render_outputs
from generator.errors import ExprError, ProblemErrors
from generator.spec import load_problem
from test_lang import solve


# --- 1. a declared I or K prints as the identity or the commutation matrix does --------------

def test_a_declared_I_and_K_are_noted_as_not_the_built_in_matrices(tmp_path):
    sol, _ = solve(tmp_path, """\
        id: decli
        title: t
        symbols: {D: dim, x: [D], I: {shape: [D, D], assume: [symmetric]}, K: [D, D], X: [D, D]}
        define:
          f: x.T @ I @ x + x.T @ K @ x + trace(X.T @ K @ X)
        find: [df/dx, d2f/dX2]
        """)
    md = render_outputs(sol, ("md",))["md"].decode()
    assert ("here $\\mathbf{I}$ is the declared symbol, not the identity matrix (the identity matrix is "
            "written $\\mathbf{I}$ with its size, e.g. $\\mathbf{I}_{D}$)") in md
    assert "here $\\mathbf{K}$ is the declared symbol, not the commutation matrix" in md


def test_no_note_for_I_when_nothing_is_called_I(tmp_path):
    sol, _ = solve(tmp_path, """\
        id: noi
        title: t
        symbols: {D: dim, x: [D], A: [D, D]}
        define:
          f: x.T @ A @ x
        find: df/dx
        """)
    md = render_outputs(sol, ("md",))["md"].decode()
    assert "identity matrix" not in md and "commutation matrix" not in md


# --- 2. errors that say what to write ------------------------------------------------------


SCOPE = ex.Scope(dims=frozenset({"D"}), shapes={"W": ("D", "D"), "x": ("D", 1), "b": ("D", 1)})


@pytest.mark.parametrize("text, message, col", [
    ("W x", "missing operator between W and x: write W @ x (or W * x)", 1),
    ("sum(W x + b)", "missing operator between W and x: write W @ x (or W * x)", 5),
    ("sum(W x", "missing operator between W and x: write W @ x (or W * x)", 5),
    ("2x.T @ b", "missing operator between 2 and x: write 2 * x", 1),
    ("(W + W.T) x", "missing operator before x: write @ (or *) between the two operands", 9),
])
def test_two_operands_side_by_side_say_which_operator_is_missing(text, message, col):
    with pytest.raises(ExprError) as info:
        ex.parse(text, SCOPE)
    assert str(info.value).endswith(message) and info.value.col == col


def test_other_syntax_errors_are_unchanged():
    with pytest.raises(ExprError, match="syntax error"):
        ex.parse("W @ @ x", SCOPE)


def test_an_unknown_assumption_suggests_the_nearest(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("id: a\ntitle: t\nsymbols: {D: dim, y: {shape: [D], assume: [onehot]}}\n"
                 "define: {f: sum(y)}\nfind: df/dy\n", encoding="utf-8")
    with pytest.raises(ProblemErrors) as info:
        load_problem(p)
    assert "unknown assumption 'onehot'" in str(info.value) and "did you mean one_hot?" in str(info.value)


def test_an_unquoted_answer_with_a_comma_is_told_to_quote(tmp_path):
    from generator.cli import main
    from click.testing import CliRunner
    prob = tmp_path / "p.yaml"
    prob.write_text("id: k\ntitle: t\nsymbols: {D: dim, x: [D], A: [D, D]}\ndefine: {f: x.T @ A @ x}\n"
                    "find: df/dx\n", encoding="utf-8")
    answers = tmp_path / "a.csv"
    answers.write_text("student,find,answer\nfay,df/dx,kron(x.T, 1)\n", encoding="utf-8")
    res = CliRunner().invoke(main, ["grade", str(prob), "--answers", str(answers)])
    assert res.exit_code == 2
    assert "4 cells, but the header names 3 columns; quote the answer" in res.output


# --- 3. the JSON expr writes a dim as a number as N, and parses back to the same value -------

from pathlib import Path                                            # noqa: E402

import numpy as np                                                  # noqa: E402

from generator.verify import evaluate                               # noqa: E402
from independent import value                                       # noqa: E402

ROOT = Path(__file__).parent.parent


def test_a_dim_as_a_number_is_written_N_in_the_text():
    scope = ex.Scope(dims=frozenset({"M", "N"}), shapes={"v": ("N", 1), "x": ("M*N", 1)})
    assert ex.to_text(ex.parse("v.T / sum(ones(N))", scope)) == "v.T / N"
    assert ex.to_text(ex.parse("x.T / sum(ones(M*N))", scope)) == "x.T / (M * N)"
    assert ex.to_text(ex.parse("2**sum(ones(N))", scope)) == "2**N"


def _size(d, sizes):
    out = 1
    for f in str(d).split("*"):
        out *= int(f) if f.strip().isdigit() else sizes[f.strip()]
    return out


def _bank_results():
    for path in sorted(ROOT.glob("problems/**/*.yaml")):
        problem = load_problem(path)
        golden = ROOT / "tests" / "golden" / f"{problem.id}.json"
        if not golden.exists():
            continue
        trace = json.loads(golden.read_text(encoding="utf-8"))
        for part, jpart in zip(problem.parts, trace["parts"]):
            for r in jpart["results"]:
                if r["expr"] is not None:
                    yield problem.id, part, r["expr"]


def test_the_bank_json_expr_parses_back_to_the_same_value():
    """Every result's ``expr`` in the bank's JSON: no sum(ones(N)) for a dim as a number, and the
    text parses to a value that its own printing back to text keeps (and an evaluator written
    apart from the project's agrees)."""
    rng = np.random.default_rng(3)
    seen = 0
    for pid, part, text in _bank_results():
        assert "sum(ones(" not in text, (pid, text)
        scope = ex.Scope(dims=frozenset(part.dims),
                         shapes={s.name: s.shape for s in part.symbols if s.kind in ("scalar", "array")},
                         functions={s.name: (s.args, s.shape) for s in part.symbols if s.kind == "function"})
        if scope.functions:
            continue                    # abstract functions have no values
        sizes = {d: 2 + i for i, d in enumerate(sorted(part.dims))}
        env = {s.name: (0.5 + rng.random() if s.shape == () else
                        0.5 + rng.random((_size(s.shape[0], sizes), _size(s.shape[1], sizes))))
               for s in part.symbols if s.kind in ("scalar", "array")}
        e = ex.parse(text, scope)
        again = ex.parse(ex.to_text(e), scope)
        with np.errstate(all="ignore"):
            a = np.asarray(evaluate(e, env, sizes), dtype=float)
            b = np.asarray(evaluate(again, env, sizes), dtype=float)
            c = np.asarray(value(text, env, sizes), dtype=float)
        assert a.shape == b.shape and np.allclose(a, b, rtol=1e-9, equal_nan=True), (pid, text)
        assert np.allclose(a.reshape(-1), c.reshape(-1), rtol=1e-7, equal_nan=True), (pid, text)
        seen += 1
    assert seen > 50


# --- 4. JSON dims as the document labels them ------------------------------------------------

from generator.printing import dims_latex                           # noqa: E402

TRACE_AXBXT = """\
    id: mn-trace
    title: t
    symbols: {M: dim, N: dim, A: [M, M], B: [N, N], X: [M, N], x: [N]}
    define:
      f: trace(A @ X @ B @ X.T)
      g: x.T @ B @ x
    layout: LAYOUT
    find: [df/dX, dg/dx]
    """


@pytest.mark.parametrize("layout, by_matrix, by_vector", [("numerator", "1×(M×N)", "1×N"),
                                                          ("denominator", "M×N", "N×1")])
def test_json_dims_are_the_documents_label(tmp_path, layout, by_matrix, by_vector):
    """A gradient by a matrix has the matrix's shape in denominator layout (README, the Cookbook):
    the JSON says M×N there, as the document does, not 1×(M×N)."""
    sol, trace = solve(tmp_path, TRACE_AXBXT.replace("LAYOUT", layout))
    md = render_outputs(sol, ("md",))["md"].decode()
    (rX, rx), = [p["results"] for p in trace["parts"]]
    assert (rX["dims"], rX["partials"][0]["dims"], rx["dims"]) == (by_matrix, by_matrix, by_vector)
    assert rX["shape"] == {"of": [], "wrt": ["M", "N"]}
    for r in (rX, rx):
        assert r"\in \mathbb{R}^{" + dims_latex(r["dims"]) + "}}" in md


# --- 5. grade: a gradient by a matrix, both matrices symmetric, a Hessian by vec(Xᵀ) -----------

from generator.grade import Session                                 # noqa: E402
from generator.spec import parse_problem                            # noqa: E402

AXBXT = """\
id: mn-h
title: t
symbols: {M: dim, N: dim, A: [M, M], B: [N, N], X: [M, N], C: [M, M]}
define:
  f: trace(A @ X @ B @ X.T) + trace(C @ X @ X.T)
find: [df/dX, d2f/dX2]
"""
_SESSION: dict = {}


def grade(text, answer, find):
    if text not in _SESSION:
        _SESSION[text] = Session(parse_problem(text, "p.yaml"))
    return _SESSION[text].grader(None, find).grade(answer)


@pytest.mark.parametrize("layout", ["numerator", "denominator"])
def test_the_transpose_of_a_gradient_by_a_matrix_is_not_the_other_layout(layout):
    v = grade(AXBXT + f"layout: {layout}\n", "B @ X.T @ A + B.T @ X.T @ A.T + X.T @ (C + C.T)", "df/dX")
    assert v.diagnosis == ("shape", "transposed")
    assert v.feedback == "it is N×M, df/dX is M×N; it is the transpose of df/dX"


def test_the_transpose_of_a_gradient_by_a_vector_is_still_the_other_layout():
    v = grade("id: q\ntitle: t\nsymbols: {D: dim, x: [D], A: [D, D]}\ndefine: {f: x.T @ A @ x}\nfind: df/dx\n",
              "(A + A.T) @ x", "df/dx")
    assert v.diagnosis == ("shape", "transposed") and v.feedback.endswith("(the other layout)")


def test_right_only_if_all_the_matrices_were_symmetric_at_once():
    v = grade(AXBXT, "2 * A @ X @ B + 2 * C @ X", "df/dX")
    assert v.diagnosis == ("assumption",)
    assert v.feedback == ("it would be right if A, B and C were all symmetric, which the problem does not assume")
    one = grade(AXBXT, "A @ X @ B + A.T @ X @ B.T + 2 * C @ X", "df/dX")     # C alone explains this one
    assert one.feedback == "it would be right if C were symmetric, which the problem does not assume"


def test_a_hessian_by_vec_of_the_transpose_is_said_so():
    right = "kron(B.T, A) + kron(B, A.T) + kron(eye(N), C + C.T)"
    assert grade(AXBXT, right, "d2f/dX2").correct
    by_xt = "kron(A, B.T) + kron(A.T, B) + kron(C + C.T, eye(N))"
    v = grade(AXBXT, by_xt, "d2f/dX2")
    assert v.diagnosis == ("transposed",) and v.feedback.startswith("it is the Hessian by vec(Xᵀ), not by vec X")
    v = grade(AXBXT, f"-({by_xt})", "d2f/dX2")
    assert v.diagnosis == ("transposed", "sign") and v.feedback.endswith("; it has the opposite sign")


def test_a_K_where_no_commutation_matrix_can_appear_gets_no_note(tmp_path):
    sol, _ = solve(tmp_path, """\
        id: dimk
        title: t
        symbols: {K: dim, D: dim, W: [D, K], x: [K], Q: [D, D]}
        define:
          f: sum(W @ x) + x.T @ W.T @ Q @ W @ x
        find: df/dx
        """)
    assert "commutation matrix" not in render_outputs(sol, ("md",))["md"].decode()
    sol, _ = solve(tmp_path, """\
        id: keys
        title: t
        symbols: {n: dim, d: dim, K: [n, d], q: [d]}
        define:
          s: K @ q
        find: ds/dq
        """)
    assert "commutation matrix" not in render_outputs(sol, ("md",))["md"].decode()
