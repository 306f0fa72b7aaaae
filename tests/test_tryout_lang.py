"""A new user's tryout (fix2-lang): names that print like a built-in, errors that say what to
write, the JSON ``expr`` of a dim as a number, ``dims`` in denominator layout, grade's wording."""
from __future__ import annotations

import json
import textwrap

import pytest

from generator import expr as ex
from generator.build import render_outputs, solve_problem
from generator.errors import ExprError, ProblemErrors
from generator.render.json import trace_json
from generator.spec import load_problem


def solve(tmp_path, text, name="p.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    sol = solve_problem(load_problem(p))
    assert not sol.failed, sol.failed
    return sol, json.loads(trace_json(sol))


# --- 1. a declared I or K prints as the identity or the commutation matrix does --------------

def test_a_declared_I_and_K_are_noted_as_not_the_built_in_matrices(tmp_path):
    sol, _ = solve(tmp_path, """\
        id: decli
        title: t
        symbols: {D: dim, x: [D], I: {shape: [D, D], assume: [symmetric]}, K: [D, D]}
        define:
          f: x.T @ I @ x + x.T @ K @ x
        find: df/dx
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
