"""The ``answer:`` field: the instructor's form checked against the derivation, shown, or diagnosed."""
from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
from click.testing import CliRunner

from generator.build import render_outputs, solve_problem
from generator.cli import main
from generator.compare import Diagnosis, compare, feedback
from generator.errors import ProblemErrors
from generator.render.text import solution_text
from generator.spec import written_with_vec, collect_files, derivative_shape, load_problem, parse_problem

LOGISTIC = """\
id: logistic
symbols: {{D: dim, w: [D], x: [D], y: scalar}}
define:
  L: -y * log(p) - (1 - y) * log(1 - p)
  p: sigmoid(a)
  a: w.T @ x
find: dL/dw
answer: {answer}
"""

TRACE = """\
id: trace
symbols: {{D: dim, A: [D, D], X: [D, D]}}
define:
  f: trace(A @ X)
find: df/dX
answer: {{df/dX: "{answer}"}}
"""

SQUARES = """\
id: squares
symbols: {{M: dim, N: dim, A: [M, N], x: [N], b: [M]}}
define:
  L: r.T @ r
  r: A @ x - b
find: [dL/dx, dL/dr]
answer:
  dL/dx: {answer}
"""


def solve(text: str):
    return solve_problem(parse_problem(text, "t.yaml"))


def failure(text: str) -> str:
    sol = solve(text)
    assert len(sol.failed) == 1, sol.failed
    return sol.failed[0]


def load_error(text: str) -> str:
    with pytest.raises(ProblemErrors) as info:
        parse_problem(text, "t.yaml")
    return info.value.format(caret=True)


# --- a right answer is shown ------------------------------------------------------------

def test_right_answer_is_shown_in_every_output():
    # stepgen writes x.T @ (A + A.T); the instructor's form differs and is shown under the box
    sol = solve("id: q\nsymbols: {D: dim, x: [D], A: [D, D]}\ndefine: {f: x.T @ A @ x}\nfind: df/dx\n"
                "answer: x.T @ A + x.T @ A.T\n")
    assert not sol.failed
    r = sol.parts[0].results[0]
    assert r.answer is not None and r.answer != r.result        # the instructor's form, not ours
    out = render_outputs(sol, ("md", "tex", "json"))
    md, tex = out["md"].decode(), out["tex"].decode()
    assert r"= \mathbf{x}^\top \mathbf{A} + \mathbf{x}^\top \mathbf{A}^\top" in md and "(the textbook's form)" in md
    assert md.index("(the textbook's form)") > md.index(r"\boxed{")
    assert "(the textbook's form)" in tex
    data = json.loads(out["json"])
    assert data["parts"][0]["results"][0]["answer"] == "x.T @ A + x.T @ A.T"
    assert "= x.T @ A + x.T @ A.T  (the textbook's form)" in solution_text(sol)


def test_an_answer_equal_to_the_result_is_not_repeated(root):
    sol = solve_problem(load_problem(root / "problems/vector/logistic-loss.yaml"))
    r = sol.parts[0].results[0]
    assert not sol.failed and r.answer == r.result              # the engine reached the textbook's form
    md = render_outputs(sol, ("md",))["md"].decode()
    assert "This is the form the textbook gives." in md and "(the textbook's form)" not in md


def test_without_an_answer_nothing_is_shown(root):
    sol = solve_problem(load_problem(root / "problems/vector/least-squares.yaml"))
    out = render_outputs(sol, ("md", "json"))
    assert "textbook" not in out["md"].decode()
    assert json.loads(out["json"])["parts"][0]["results"][0]["answer"] is None


def test_equal_forms_pass():
    # factored and expanded; inv(S).T and inv(S.T): values decide, not the text
    assert not solve(LOGISTIC.format(answer="sigmoid(w.T @ x) * x.T - y * x.T")).failed
    assert not solve(SQUARES.format(answer="2 * (x.T @ A.T @ A - b.T @ A)")).failed
    # in denominator layout the gradient is a column, and so is the answer
    assert not solve(LOGISTIC.format(answer="(sigmoid(w.T @ x) - y) * x") + "layout: denominator\n").failed


# --- a wrong answer is diagnosed -----------------------------------------------------------

def test_transposed():
    msg = failure(TRACE.format(answer="A"))
    assert "[transposed]" in msg and "transpose" in msg
    assert msg.startswith("t.yaml:6:18: answer.df/dX: ")      # the answer's own text


def test_factor_two():
    msg = failure(SQUARES.format(answer="4 * (A @ x - b).T @ A"))
    assert "[factor]" in msg and "it is 2 times" in msg
    assert msg.startswith("t.yaml:8:10: answer.dL/dx: ")


def test_factor_half():
    msg = failure(SQUARES.format(answer="(A @ x - b).T @ A"))
    assert "it is 1/2 times" in msg


def test_sign():
    msg = failure(LOGISTIC.format(answer="(y - sigmoid(w.T @ x)) * x.T"))
    assert "[sign]" in msg and "opposite sign" in msg


def test_wrong_shape_is_refused_before_solving(tmp_path):
    text = LOGISTIC.format(answer="(sigmoid(w.T @ x) - y) * x")
    assert "t.yaml:8:9: answer: the answer is D×1, but dL/dw in numerator layout is 1×D (the transpose: " \
        "the other layout?)" in load_error(text)
    assert "is 1×D, but dL/dw in denominator layout is D×1" in load_error(text.replace("* x", "* x.T") + "layout: denominator\n")
    assert "the answer is 1×1, but dL/dw" in load_error(LOGISTIC.format(answer="y"))
    path = tmp_path / "p.yaml"
    path.write_text(text)
    res = CliRunner().invoke(main, ["check", str(path)])
    assert res.exit_code == 1 and "p.yaml:8:9: answer: the answer is D×1" in res.output


def test_no_answer_for_a_tensor():
    text = """\
id: t
symbols: {M: dim, N: dim, W: [M, N], x: [N]}
define: {z: W @ x}
find: dz/dW
answer: x.T
"""
    assert "dz/dW is a tensor, which no expression writes" in load_error(text)


def test_wrong_answer_not_recognised():
    msg = failure(LOGISTIC.format(answer="sigmoid(w.T @ x) * x.T"))
    assert "is wrong" in msg and "differs from" in msg and "[" not in msg.split("answer: ", 1)[1][:2]


def test_a_wrong_answer_fails_its_part_only():
    text = """\
id: two
symbols: {D: dim, x: [D]}
parts:
  - define: {f: x.T @ x}
    find: df/dx
    answer: 2 * x.T
  - define: {f: x.T @ x}
    find: df/dx
    answer: -2 * x.T
"""
    sol = solve(text)
    assert not sol.parts[0].error and sol.parts[0].results[0].answer is not None
    assert "part (b)" in sol.parts[1].error and "[sign]" in sol.parts[1].error


def test_hessian_answer():
    text = """\
id: h
symbols: {D: dim, x: [D], A: [D, D]}
define: {f: x.T @ A @ x}
find: d2f/dx2
answer: A + A.T
"""
    assert not solve(text).failed
    assert "[factor]" in failure(text.replace("A + A.T", "2 * (A + A.T)"))


# --- what check refuses before anything is solved ---------------------------------------------

def test_unknown_name_with_column():
    err = load_error(LOGISTIC.format(answer="(sigmoid(v.T @ x) - y) * x.T"))
    assert "t.yaml:8:18: answer: undeclared name 'v'" in err


def test_syntax_error_with_column():
    err = load_error(LOGISTIC.format(answer="(sigmoid(w.T @ x) - y) * * x.T"))
    assert "t.yaml:8:" in err and "answer:" in err and "^" in err


def test_key_must_be_a_find():
    err = load_error(SQUARES.format(answer="2 * r.T @ A").replace("dL/dx:", "dL/db:"))
    assert "'dL/db' is not a find of this part (finds: dL/dx, dL/dr)" in err


def test_plain_answer_needs_one_find():
    err = load_error(SQUARES.format(answer="x").replace("  dL/dx: x", "  2 * x.T").replace("answer:\n", "answer:"))
    assert "this part has 2 finds" in err


def test_keys_are_matched_as_derivatives_and_may_use_define_names():
    sol = solve(SQUARES.format(answer="2 * r.T @ A").replace("dL/dx:", "dL / dx:") + "  dL/dr: 2 * r.T\n")
    assert not sol.failed and all(r.answer is not None for r in sol.parts[0].results)


@pytest.mark.parametrize("hostile", [
    "__import__('os').system('touch /tmp/answer-pwned')",
    "x.__class__.__bases__",
    "x.T @ x ** 10000000",
    "(" * 200 + "x" + ")" * 200,
    "x" + " + x" * 3000,
    "open('/etc/passwd')",
    "lambda: 1",
    "'\\x00'",
])
def test_hostile_answers_are_refused_cleanly(hostile):
    text = LOGISTIC.format(answer=json.dumps(hostile))
    err = load_error(text)
    assert "t.yaml:8:" in err and "answer" in err


def test_an_answer_is_an_expression():
    # a YAML list of texts is the list literal [1, 2] (a 2×1 column, here of the wrong shape);
    # a list of lists the nested literal, which the language refuses; a list of mappings is no expression
    assert "the answer is 2×1" in load_error(LOGISTIC.format(answer="[1, 2]"))
    assert "nested lists are not part of the expression language" in load_error(LOGISTIC.format(answer="[[1, 2]]"))
    assert "an answer is an expression, not a list" in load_error(LOGISTIC.format(answer="[{a: 1}]"))


# --- the comparison, as grading will use it -------------------------------------------------

def test_compare_on_values():
    rng = np.random.default_rng(0)
    E = [rng.normal(size=(3, 4)) for _ in range(3)]
    S = [rng.normal(size=(3, 3)) for _ in range(3)]
    assert compare(E, [e.copy() for e in E]).correct
    assert compare(E, [-0.5 * e for e in E]) == Diagnosis(False, ("factor",), Fraction(-1, 2),
                                                        compare(E, [-0.5 * e for e in E]).error)
    assert compare(E, [e.T for e in E]).codes == ("shape", "transposed")
    assert compare(S, [-s.T for s in S]).codes == ("transposed", "sign")
    assert compare(E, [e[:, :3] for e in E]).codes == ("shape",)
    assert compare(E, [e + 1 for e in E]).codes == ()
    assert compare(E, [np.full_like(e, np.nan) for e in E]).codes == ()
    d = compare(E, [3 * e.T for e in E])
    assert "it is 4×3, the result is 3×4" in feedback(d, "3×4", "4×3")
    assert "it is 3 times the result transposed" in feedback(d, "3×4", "4×3")


def test_expected_shape_agrees_with_the_engine(root):
    # the shape check of `stepgen check` predicts the shape the engine derives
    seen = 0
    for f in collect_files([root / "problems"]):
        sol = solve_problem(load_problem(f))
        for ps in sol.parts:
            for r in ps.results:
                want = derivative_shape(_shape(ps.part, r.of), _shape(ps.part, r.wrt), r.layout, r.order,
                                        by_vec=written_with_vec(r.of, ps.part.define))
                assert (want is None) == r.tensor, f
                if want is not None:
                    assert want == r.result.shape, (f, r.text)
                    seen += 1
    assert seen > 30


def _shape(part, name):
    s = part.symbol(name)
    return s.shape if s is not None else part.definition(name).expr.shape


# --- the field in the schema, the skeleton and the bank ---------------------------------------

def test_schema_accepts_both_forms_and_refuses_others(root):
    import jsonschema
    import yaml

    from generator.schema import SCHEMA
    with_answers = [f for f in collect_files([root / "problems"]) if "answer:" in f.read_text()]
    assert len(with_answers) >= 3
    for f in with_answers:
        jsonschema.validate(yaml.safe_load(f.read_text()), SCHEMA)
    bad = yaml.safe_load(LOGISTIC.format(answer="[[1, 2]]"))     # [1, 2] is the list literal
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, SCHEMA)


def test_skeleton_answer_line_is_right(tmp_path):
    from generator.skeleton import skeleton
    text = skeleton("demo").replace("# answer:", "answer:")
    sol = solve(text)
    assert not sol.failed and sol.parts[0].results[0].answer is not None


def test_an_answer_undefined_at_the_points_is_refused_cleanly():
    msg = failure(LOGISTIC.format(answer="sum(inv(eye(D) - eye(D))) * x.T"))    # a singular matrix
    assert "is wrong: it is not finite at the random points" in msg and "[" not in msg


def test_an_answer_right_only_under_an_undeclared_assumption_is_refused(root):
    # (p - y).T needs sum(y) = 1, which the problem does not declare
    text = (root / "problems/vector/softmax-cross-entropy.yaml").read_text().replace(
        "y: {shape: [M], assume: [one_hot]}", "y: [M]")
    sol = solve(text)
    assert len(sol.failed) == 1
    assert "answer.dL/dz: dL/dz: the answer" in sol.failed[0] and "it differs from the derived" in sol.failed[0]


def test_an_answer_printed_as_the_result_is_not_printed_again(root):
    """2/m * (X @ w - y).T @ X parses to another tree than the derived 2 (Xw − y)ᵀX / m, but reads
    the same: the document says it agrees instead of printing it a second time."""
    from generator.build import render_outputs, solve_problem
    from generator.spec import load_problem
    sol = solve_problem(load_problem(root / "problems/vector/mse-and-attention.yaml"))
    out = render_outputs(sol, ("md", "tex"))
    assert "the textbook's form" not in out["md"].decode() and "the textbook's form" not in out["tex"].decode()
    assert "This is the form the textbook gives." in out["md"].decode()


# --- the structured gradient by a symmetric matrix (Matrix Cookbook (138)) -------------------------------

SYMMETRIC_BY = """\
id: sym
symbols: {{D: dim, x: [D], S: {{shape: [D, D], assume: [{assume}]}}}}
define:
  f: x.T @ S @ x
find: df/dS
answer: {answer}
"""
STRUCTURED_ANSWER = "2 * x @ x.T - diag(diag(x @ x.T))"


def test_the_structured_gradient_by_a_symmetric_matrix_is_named_at_the_answer():
    """2xxᵀ − diag(diag(xxᵀ)) is the derivative within symmetric S (each S_ij = S_ji moved together):
    a teaching error at the answer's line:col, not "wrong"."""
    rng = np.random.default_rng(3)
    x, A = rng.normal(size=3), rng.normal(size=(3, 3))
    S, h = A + A.T, 1e-6
    f = lambda M: x @ M @ x                                         # noqa: E731
    for i, j in ((0, 0), (0, 2), (1, 2)):
        E = np.zeros((3, 3))
        E[i, j] = E[j, i] = 1.0
        by_pair = (f(S + h * E) - f(S - h * E)) / (2 * h)
        assert abs(by_pair - (2 * np.outer(x, x) - np.diag(x * x))[i, j]) < 1e-6
    said = failure(SYMMETRIC_BY.format(assume="symmetric", answer=STRUCTURED_ANSWER))
    assert said.startswith("t.yaml:6:9: answer: df/dS: [structured]"), said
    assert "structured gradient for a symmetric S (Matrix Cookbook (138))" in said
    assert "stepgen's is the gradient with independent entries, G = x @ x.T" in said
    assert not solve(SYMMETRIC_BY.format(assume="symmetric", answer="x @ x.T")).failed


def test_the_structured_form_is_not_suggested_where_s_is_not_symmetric():
    said = failure(SYMMETRIC_BY.format(assume="invertible", answer=STRUCTURED_ANSWER))
    assert "structured" not in said and "is wrong" in said


def test_a_row_answer_by_vec_x_is_accepted_where_the_engine_gives_the_row():
    """f = vec(X)ᵀ S vec(X): the engine writes ∂f/∂(vec X)ᵀ, a 1×MN row; an answer of that shape is read."""
    text = ("id: q\nsymbols: {M: dim, N: dim, X: [M, N], S: [M*N, M*N]}\ndefine: {f: vec(X).T @ S @ vec(X)}\n"
            "find: [df/dX, d2f/dX2]\nanswer: {df/dX: vec(X).T @ (S + S.T), d2f/dX2: S + S.T}\n")
    sol = solve(text)
    assert not sol.failed, sol.failed
    first, second = sol.parts[0].results
    assert first.answer is not None and first.result.shape == (1, "M*N") and second.answer is not None
    said = load_error(text.replace("df/dX: vec(X).T @ (S + S.T)", "df/dX: S"))
    assert "answer.df/dX: the answer is M*N×M*N, but df/dX in numerator layout is M×N" in said
