"""stepgen grade: a student's answer against the derivation, every diagnosis, batches, hostile input."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from generator import csvfiles
from generator.cli import main
from generator.grade import Session
from generator.spec import parse_problem
from independent import jacobian_error

GAUSS = """\
id: gauss
symbols: {D: dim, x: [D], mu: [D], S: [D, D]}
define:
  f: exp(-z/2)
  z: y.T @ inv(S) @ y
  y: x - mu
find: df/dx
"""

QUAD = """\
id: quad
symbols: {D: dim, x: [D]}
parts:
  - id: a
    symbols: {B: [D, D]}
    define: {f: x.T @ B @ x}
    find: df/dx
  - id: b
    symbols: {B: {shape: [D, D], assume: [symmetric]}}
    define: {f: x.T @ B @ x}
    find: df/dx
"""

LAYER = """\
id: layer
symbols: {M: dim, N: dim, x: [N], A: [M, N], b: [M]}
define:
  f: tanh(z)
  z: A @ x + b
find: df/dx
"""

TWO_MAPS = """\
id: two-maps
symbols: {D: dim, x: [D], A: [D, D], B: [D, D]}
define:
  f: B @ z
  z: A @ x
find: df/dx
"""

SESSIONS: dict[str, Session] = {}


def verdict(problem: str, answer: str, part: str | None = None, find: str = "df/dx"):
    if problem not in SESSIONS:
        SESSIONS[problem] = Session(parse_problem(problem, "t.yaml"))
    return SESSIONS[problem].grader(part, find).grade(answer)


def independent_error(f_text: str, answer: str, symbols: dict, dims: dict) -> float:
    """The answer against finite differences by the tests' own evaluator (not the generator's)."""
    rng = np.random.default_rng(5)
    values = {}
    for name, shape in symbols.items():
        a = rng.uniform(-1, 1, size=tuple(dims.get(d, d) for d in shape))
        values[name] = a + 3 * np.eye(a.shape[0]) if len(shape) == 2 and shape[0] == shape[1] else a
    return jacobian_error(f_text, "x", answer, values, dims)


GAUSS_F = "exp(-((x - mu).T @ inv(S) @ (x - mu))/2)"
GAUSS_SYMBOLS = {"x": ("D", 1), "mu": ("D", 1), "S": ("D", "D")}


# --- right answers, written differently --------------------------------------------------------

@pytest.mark.parametrize("answer", [
    "-1/2 * exp(-z/2) * y.T @ (inv(S) + inv(S).T)",                          # factored
    "-1/2 * exp(-z/2) * y.T @ inv(S) - 1/2 * exp(-z/2) * y.T @ inv(S).T",    # expanded
    "-1/2 * exp(-z/2) * (x - mu).T @ (inv(S) + inv(S.T))",                   # inv(S.T) for inv(S).T
    "-exp(-(x - mu).T @ inv(S) @ (x - mu) / 2) * (x - mu).T @ (inv(S) + inv(S).T) / 2",
])
def test_right_answers_written_differently(answer):
    v = verdict(GAUSS, answer)
    assert v.correct and v.diagnosis == () and v.expected_dims == v.answer_dims == "1×D"
    plain = answer.replace("exp(-z/2)", GAUSS_F).replace("y.T", "(x - mu).T")
    assert independent_error(GAUSS_F, plain, GAUSS_SYMBOLS, {"D": 3}) < 1e-5


def test_a_declared_symmetric_matrix_makes_the_short_form_right():
    assert verdict(QUAD, "2 * x.T @ B", part="b").correct
    assert verdict(QUAD, "x.T @ (B + B.T)", part="b").correct
    assert verdict(QUAD, "x.T @ (B + B.T)", part="a").correct


# --- each diagnosis ---------------------------------------------------------------------------

@pytest.mark.parametrize("problem, part, answer, codes, said", [
    (GAUSS, None, "-1/2 * exp(-z/2) * (inv(S) + inv(S).T) @ y", ("shape", "transposed"),
     "it is D×1, df/dx in numerator layout is 1×D"),
    (LAYER, None, "A.T @ diag(1 - tanh(z)**2)", ("shape", "transposed"), "the other layout"),
    (GAUSS, None, "-exp(-z/2) * y.T @ (inv(S) + inv(S).T)", ("factor",), "it is 2 times"),
    (GAUSS, None, "-1/4 * exp(-z/2) * y.T @ (inv(S) + inv(S).T)", ("factor",), "1/2 times"),
    (GAUSS, None, "1/2 * exp(-z/2) * y.T @ (inv(S) + inv(S).T)", ("sign",), "opposite sign"),
    (GAUSS, None, "-exp(-z/2) * y.T @ inv(S)", ("assumption",), "right if S were symmetric"),
    (QUAD, "a", "2 * x.T @ B", ("assumption",), "right if B were symmetric"),
    (GAUSS, None, "exp(-z/2) * y.T @ inv(S)", ("assumption", "sign"), "opposite sign"),
    (GAUSS, None, "y.T @ (inv(S) + inv(S).T)", ("partial",), "∂z/∂y, one partial of the chain"),
    (LAYER, None, "diag(1 - tanh(z)**2)", ("partial",), "∂f/∂z"),
    (TWO_MAPS, None, "A @ B", ("partial",), "the product of the partials in another order"),
    (GAUSS, None, "exp(-w/2)", ("unknown_name",), "undeclared name 'w'"),
    (GAUSS, None, "softmx(y)", ("unknown_name",), "unknown function 'softmx'; did you mean softmax?"),
    (GAUSS, None, "y.T @ (inv(S)", ("syntax",), "column"),
    (GAUSS, None, "y.T @@ S", ("syntax",), "column"),
    (GAUSS, None, "x @ S", ("shape",), "column 3: (D×1) @ (D×D) do not conform"),
    (GAUSS, None, "", ("syntax",), "empty"),
])
def test_diagnosis(problem, part, answer, codes, said):
    v = verdict(problem, answer, part)
    assert not v.correct
    assert v.diagnosis == codes, v
    assert said in v.feedback, v.feedback


def test_feedback_says_each_thing_once_as_a_ta_would():
    v = verdict(GAUSS, "-1/2 * exp(-z/2) * y")
    assert v.diagnosis == ("shape",) and v.feedback == "it is D×1, df/dx in numerator layout is 1×D", v
    v = verdict(GAUSS, "-1/2 * exp(-z/2) * sech(y).T")
    assert v.diagnosis == ("unknown_name",) and "unknown function 'sech'" in v.feedback
    assert "the functions are exp, log, sin" in v.feedback and "names of this problem" not in v.feedback


def test_a_shape_after_another_mistake_is_said_plainly():
    v = verdict(QUAD, "2 * B @ x", part="a")
    assert v.diagnosis == ("assumption", "shape", "transposed"), v
    assert v.feedback == ("it would be right if B were symmetric, which the problem does not assume; it is D×1 "
                          "instead of 1×D; it is the transpose of that (the other layout)")


@pytest.mark.parametrize("answer", [
    "(2 + sin(z))**20 * -1/2 * exp(-z/2) * y.T @ (inv(S) + inv(S).T)",     # a factor that is not constant
    "(5 + sin(z))**64 * exp(-z/2) * y.T @ inv(S)",
])
def test_a_large_factor_that_changes_from_point_to_point_is_no_factor(answer):
    v = verdict(GAUSS, answer)
    assert not v.correct and "factor" not in v.diagnosis and "times" not in v.feedback, v


def test_a_look_alike_letter_is_named():
    v = verdict(GAUSS, "y.T @ inv(\u0405)")            # Cyrillic Dze, which looks like S
    assert v.diagnosis == ("unknown_name",) and "CYRILLIC CAPITAL LETTER DZE" in v.feedback, v


def test_a_wrong_answer_nothing_explains_says_how_far_it_is():
    v = verdict(GAUSS, "y.T @ inv(S) @ y * y.T")
    assert not v.correct and v.diagnosis == ()
    assert "differs from df/dx" in v.feedback and "relative error" in v.feedback


def test_define_names_and_declared_symbols_both_read():
    assert verdict(LAYER, "diag(1 - tanh(A @ x + b)**2) @ A").correct
    assert verdict(LAYER, "(1 - tanh(z)**2) * ones(N).T * A").diagnosis == ("shape",)


# --- the command ---------------------------------------------------------------------------------

def write(tmp_path, text, name="p.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_exit_status_and_json(tmp_path):
    p = write(tmp_path, GAUSS)
    ok = run("grade", p, "--find", "df/dx", "--answer", "-1/2 * exp(-z/2) * y.T @ (inv(S) + inv(S.T))", "--json")
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output) == {"correct": True, "diagnosis": [], "feedback": "it equals df/dx in numerator "
                                     "layout", "expected_dims": "1×D", "answer_dims": "1×D"}
    bad = run("grade", p, "--find", "df / dx", "--answer", "-1/2 * exp(-z/2) * (inv(S) + inv(S).T) @ y", "--json")
    assert bad.exit_code == 1
    data = json.loads(bad.output)
    assert data["diagnosis"] == ["shape", "transposed"] and data["answer_dims"] == "D×1"
    unreadable = run("grade", p, "--find", "df/dx", "--answer", "y.T @ (")
    assert unreadable.exit_code == 1 and unreadable.output.startswith("incorrect [syntax]: column")


@pytest.mark.parametrize("args, message", [
    (["--find", "df/dx"], "give one of --answer"),
    (["--answer", "x"], "--answer needs --find"),
    (["--find", "dg/dx", "--answer", "x"], "'dg/dx' is not a find of this problem (finds: df/dx)"),
    (["--part", "a", "--find", "df/dx", "--answer", "x"], "has no parts"),
])
def test_bad_usage_is_exit_2(tmp_path, args, message):
    res = run("grade", write(tmp_path, GAUSS), *args)
    assert res.exit_code == 2 and message in res.output, res.output


def test_parts_are_named(tmp_path):
    p = write(tmp_path, QUAD)
    res = run("grade", p, "--find", "df/dx", "--answer", "2 * x.T @ B")
    assert res.exit_code == 2 and "say which with --part (a, b)" in res.output
    assert run("grade", p, "--part", "b", "--find", "df/dx", "--answer", "2 * x.T @ B").exit_code == 0
    assert run("grade", p, "--part", "c", "--find", "df/dx", "--answer", "x").exit_code == 2


def test_a_broken_problem_file_is_exit_2_with_its_position(tmp_path):
    res = run("grade", write(tmp_path, GAUSS.replace("inv(S) @ y", "inv(S) @ x @ y")), "--find", "df/dx",
              "--answer", "x")
    assert res.exit_code == 2 and "p.yaml:5:23: define.z: (1×1) @ (D×1)" in res.output and "^" in res.output


# --- batches -------------------------------------------------------------------------------------

ANSWERS = """\
student,part,find,answer,email
ana,a,df/dx,x.T @ (B + B.T),ana@example.org
ben,a,df/dx,(B + B.T) @ x,ben@example.org
"=HYPERLINK(""http://evil"")",a,df/dx,=1+2,c@example.org
dan,b,df/dx,2 * x.T @ B,dan@example.org
eve,b,df/dx,B @ x * 2,eve@example.org
fay,a,df/dx,2 * x.T @ B,fay@example.org
"""


def test_batch_results_and_summary(tmp_path):
    p, a = write(tmp_path, QUAD), write(tmp_path, ANSWERS, "answers.csv")
    res = run("grade", p, "--answers", a, "--out", tmp_path / "results.csv")
    assert res.exit_code == 0, res.output
    rows = (tmp_path / "results.csv").read_text().splitlines()
    assert rows[0] == "student,part,find,correct,diagnosis,feedback"
    assert rows[1] == "ana,a,df/dx,true,,it equals df/dx in numerator layout"
    assert rows[2].startswith("ben,a,df/dx,false,shape transposed,")
    assert rows[3].startswith("\"'=HYPERLINK(\"\"http://evil\"\")\",a,df/dx,false,syntax,")   # never a formula
    assert rows[6].startswith("fay,a,df/dx,false,assumption,")
    assert "part a df/dx: 1 of 4 correct, 1 of 4 assumption, 1 of 4 shape, 1 of 4 syntax, 1 of 4 transposed" \
        in res.output
    assert "part b df/dx: 1 of 2 correct, 1 of 2 shape, 1 of 2 transposed" in res.output


def test_one_bad_answer_cell_makes_only_its_row_unreadable(tmp_path):
    """A NUL or a cell over 10,000 characters in the answer column: that row is graded unreadable
    (syntax, not correct); the others are graded as usual."""
    p = write(tmp_path, QUAD)
    text = ("student,part,find,answer\nana,a,df/dx,x.T @ (B + B.T)\nben,a,df/dx,x.T\x00 @ B\n"
            f"cat,a,df/dx,{'x.T @ B + ' * 1200}x.T @ B\ndan,b,df/dx,2 * x.T @ B\n")
    (tmp_path / "a.csv").write_text(text)
    res = run("grade", p, "--answers", tmp_path / "a.csv", "--out", tmp_path / "r.csv")
    assert res.exit_code == 0, res.output      # a batch is graded: wrong answers are its results
    rows = (tmp_path / "r.csv").read_text().splitlines()
    assert rows[1].startswith("ana,a,df/dx,true,")
    assert rows[2].startswith("ben,a,df/dx,false,syntax,") and "NUL" in rows[2]
    assert rows[3].startswith("cat,a,df/dx,false,syntax,") and len(rows[3]) < 400
    assert rows[4].startswith("dan,b,df/dx,true,")
    assert "part a df/dx: 1 of 3 correct, 2 of 3 syntax" in res.output


def test_a_student_who_answers_twice_is_graded_twice_and_counted_once(tmp_path):
    p = write(tmp_path, QUAD)
    (tmp_path / "a.csv").write_text("student,part,find,answer\nana,a,df/dx,x.T @ B\nben,a,df/dx,x.T @ B\n"
                                    "ana,a,df/dx,x.T @ (B + B.T)\n")
    res = run("grade", p, "--answers", tmp_path / "a.csv", "--out", tmp_path / "r.csv")
    rows = (tmp_path / "r.csv").read_text().splitlines()
    assert [r.split(",")[3] for r in rows[1:]] == ["false", "false", "true"]
    assert ("part a df/dx: 1 of 2 correct, 1 of 2 assumption, 1 of 2 factor, 1 earlier answer of a student who answered again "
            "not counted") in res.output, res.output


def test_batch_to_stdout_and_json(tmp_path):
    p, a = write(tmp_path, QUAD), write(tmp_path, ANSWERS, "answers.csv")
    res = run("grade", p, "--answers", a, "--json")
    data = json.loads(res.output[:res.output.rindex("}") + 1])
    assert [r["correct"] for r in data["results"]] == [True, False, False, True, False, False]
    assert data["results"][0]["student"] == "ana" and len(data["summary"]) == 2


def test_each_find_is_derived_once_and_each_text_graded_once(tmp_path, monkeypatch):
    import generator.grade as grade
    calls = []
    original = grade.Grader._grade
    monkeypatch.setattr(grade.Grader, "_grade", lambda self, text: calls.append(text) or original(self, text))
    rows = "student,part,find,answer\n" + "".join(f"s{i},b,df/dx,2 * x.T @ B\n" for i in range(50))
    session = Session(parse_problem(QUAD, "q.yaml"))
    graded = grade.grade_table(session, write(tmp_path, rows, "a.csv"))
    assert len(graded) == 50 and all(g.verdict.correct for g in graded)
    assert calls == ["2 * x.T @ B"] and len(session.graders) == 1


@pytest.mark.parametrize("content, message", [
    (b"\x89PNG\r\n\x1a\n\x00\x00", "invalid UTF-8 (byte 0x89)"),
    (b"student,part,find,answer\nx\x00,a,df/dx,x\n", "a NUL byte"),
    (b"", "the file is empty"),
    (b"name,answer\nana,x\n", "the header lacks the column(s) student"),
    (b"student,find,answer,answer\nana,df/dx,x,y\n", "the column(s) answer appear twice"),
    (b"student,part,find,answer\nana,a,df/dx\n", "a.csv:2:1: 3 cells, but the header names 4 columns"),
    (b"student,part,find,answer\nana,z,df/dx,x\n", "a.csv:2:5: part: "),
    (b"student,part,find,answer\nana,a,dg/dx,x\n", "a.csv:2:7: find: 'dg/dx' is not a find of part a"),
    (b"student,part,find,answer\nana,,df/dx,x\n", "say which with the part column (a, b)"),
    (b"student,part,find,answer\n,a,df/dx,x\n", "the student cell is empty"),
    (b'student,part,find,answer\nana,a,df/dx,"x\n', "not valid CSV"),
])
def test_hostile_answer_files_give_clear_errors(tmp_path, content, message):
    (tmp_path / "a.csv").write_bytes(content)
    res = run("grade", write(tmp_path, QUAD, "q.yaml"), "--answers", tmp_path / "a.csv")
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output, res.output


def test_huge_answer_files_are_refused_before_they_are_read(tmp_path, monkeypatch):
    monkeypatch.setattr(csvfiles, "MAX_CSV_BYTES", 1000)
    (tmp_path / "a.csv").write_text("student,part,find,answer\n" + "s,a,df/dx,x.T\n" * 200)
    res = run("grade", write(tmp_path, QUAD, "q.yaml"), "--answers", tmp_path / "a.csv")
    assert res.exit_code == 2 and "file larger than" in res.output
    monkeypatch.setattr(csvfiles, "MAX_ROWS", 10)
    monkeypatch.setattr(csvfiles, "MAX_CSV_BYTES", 10**6)
    res = run("grade", write(tmp_path, QUAD, "q.yaml"), "--answers", tmp_path / "a.csv")
    assert res.exit_code == 2 and "more than 10 rows" in res.output


def test_a_part_given_for_a_file_without_parts_says_to_leave_the_cell_empty(tmp_path):
    (tmp_path / "a.csv").write_text("student,part,find,answer\nana,a,df/dx,x.T\n")
    res = run("grade", write(tmp_path, GAUSS), "--answers", tmp_path / "a.csv")
    assert res.exit_code == 2 and "a.csv:2:5: part:" in res.output and "leave the part cell empty" in res.output


def test_a_folder_or_a_link_is_not_an_answer_file(tmp_path):
    (tmp_path / "link.csv").symlink_to("/etc/passwd")
    res = run("grade", write(tmp_path, QUAD, "q.yaml"), "--answers", tmp_path / "link.csv")
    assert res.exit_code == 2 and "symbolic link" in res.output and "root:" not in res.output


# --- hostile answers -------------------------------------------------------------------------------

@pytest.mark.parametrize("answer, code, said", [
    ("__import__('os').system('touch PWNED')", "syntax", "only calls of named functions"),
    ("open('/etc/passwd')", "unknown_name", "unknown function 'open'"),
    ("eval('1')", "unknown_name", "unknown function 'eval'"),
    ("x.__class__", "syntax", "attribute access"),
    ("(lambda: x)()", "syntax", "only calls of named functions"),
    ("[x for _ in ones(D)]", "syntax", "comprehension"),
    ("(" * 3000 + "x.T" + ")" * 3000, "syntax", "longer than"),
    ("(" * 100 + "x.T" + ")" * 100, "syntax", "nested more than"),
    ("-" * 3000 + "x.T", "syntax", ""),
    (" + ".join(["x.T"] * 3000), "syntax", "longer than"),
    ("exp(" * 500 + "x.T" + ")" * 500, "syntax", ""),
    ("(x.T @ x)**99999999 * x.T", "syntax", "out of range"),
    ("(x.T @ x)**(64*64) * x.T", "syntax", "exponent"),
    ("x.T * 10**(10**10)", "syntax", ""),
    ("x.T\x00", "syntax", "NUL"),
])
def test_hostile_answers_end_quickly_and_run_nothing(tmp_path, monkeypatch, answer, code, said):
    monkeypatch.chdir(tmp_path)
    t = time.perf_counter()
    v = verdict(QUAD, answer, part="a")
    assert time.perf_counter() - t < 10
    assert not v.correct and v.diagnosis == (code,) and said in v.feedback, v
    assert not (tmp_path / "PWNED").exists()


def test_answers_too_large_to_evaluate_are_refused_before_allocating():
    t = time.perf_counter()
    v = verdict(QUAD, "trace(kron(kron(kron(B, B), kron(B, B)), kron(B, B))) * x.T", part="a")
    assert time.perf_counter() - t < 5
    assert not v.correct and "cannot be evaluated" in v.feedback and "entries" in v.feedback, v


def test_control_characters_in_an_answer_are_shown_escaped(tmp_path):
    rows = 'student,part,find,answer\nana,a,df/dx,"x.T \x1b[2J"\n'
    res = run("grade", write(tmp_path, QUAD), "--answers", write(tmp_path, rows, "a.csv"))
    assert res.exit_code == 0 and "\x1b" not in res.output


def test_a_variant_json_that_is_not_one(tmp_path):
    (tmp_path / "t.json").write_text('{"format": "stepgen-trace/1"}')
    res = run("grade", tmp_path / "t.json", "--find", "df/dx", "--answer", "x")
    assert res.exit_code == 2 and 'no "problem" in this JSON' in res.output
    (tmp_path / "t.json").write_bytes(b"\xff\xfe")
    res = run("grade", tmp_path / "t.json", "--find", "df/dx", "--answer", "x")
    assert res.exit_code == 2 and "not a JSON file" in res.output


def test_a_tensor_find_cannot_be_graded(root):
    res = run("grade", root / "problems" / "tensor" / "outer-product.yaml", "--find", "dM/dx", "--answer", "x")
    assert res.exit_code == 2 and "is a tensor" in res.output


def test_a_hessian_is_graded_too(tmp_path):
    p = write(tmp_path, "id: h\nsymbols: {D: dim, x: [D], A: [D, D]}\ndefine: {f: x.T @ A @ x}\nfind: d2f/dx2\n")
    assert run("grade", p, "--find", "d2f/dx2", "--answer", "A + A.T").exit_code == 0
    res = run("grade", p, "--find", "d2f/dx2", "--answer", "2 * A", "--json")
    assert res.exit_code == 1 and json.loads(res.output)["diagnosis"] == ["assumption"]


def test_the_results_never_overwrite_an_input(tmp_path):
    p, a = Path(write(tmp_path, QUAD)), Path(write(tmp_path, ANSWERS, "answers.csv"))
    before = {f: f.read_bytes() for f in (p, a)}
    for out in (a, p, tmp_path / "." / "answers.csv"):
        res = run("grade", p, "--answers", a, "--out", out)
        assert res.exit_code == 2 and "would overwrite" in res.output, res.output
    assert {f: f.read_bytes() for f in (p, a)} == before


@pytest.mark.parametrize("answer", ["y.T @ inv(S) +", "y.T @ inv(S) +  ", "y."])
def test_an_answer_that_stops_short_is_a_syntax_error_at_its_end(answer):
    v = verdict(GAUSS, answer)
    assert v.diagnosis == ("syntax",)
    assert v.feedback.startswith(f"column {len(answer.rstrip()) + 1}: syntax error: the expression ends too early"), v


TWO_PATHS = """\
id: two-paths
symbols: {D: dim, x: [D], A: [D, D]}
define:
  f: y.T @ x
  y: A @ x
find: df/dx
"""


@pytest.mark.parametrize("answer, codes, said", [
    ("y.T", ("partial",), "it is ∂f/∂x, the direct dependence alone: df/dx also has the path through y"),
    ("x.T @ A", ("partial",), "it is the path through y alone (∂f/∂y ∂y/∂x): df/dx is the sum over the paths"),
    ("-x.T @ A", ("partial", "sign"), "the path through y alone"),
    ("3 * y.T", ("partial", "factor"), "it is 3 times that"),
    ("2 * x.T @ A", ("assumption",), "right if A were symmetric"),     # it is, then
])
def test_a_path_of_a_sum_over_paths_is_named(answer, codes, said):
    assert verdict(TWO_PATHS, "y.T + x.T @ A").correct and verdict(TWO_PATHS, "x.T @ (A + A.T)").correct
    v = verdict(TWO_PATHS, answer)
    assert v.diagnosis == codes and said in v.feedback, v


def test_json_results_carry_no_invisible_or_control_characters(tmp_path):
    from generator.errors import is_unsafe_char
    (tmp_path / "a.csv").write_text('student,part,find,answer\n"ana\u202egnp.exe",b,df/dx,x.T\n'
                                    '"b\x1b]0;pwned\x07",b,df/dx,"x.T\u200b"\n', encoding="utf-8")
    res = run("grade", write(tmp_path, QUAD), "--answers", tmp_path / "a.csv", "--json")
    text = res.output[:res.output.rindex("}") + 1]
    assert res.exit_code == 0 and not any(is_unsafe_char(ch) for ch in text), text
    data = json.loads(text)
    assert data["results"][0]["student"] == "ana\u202egnp.exe"      # the same data, escaped as JSON
    res = run("grade", write(tmp_path, QUAD), "--part", "b", "--find", "df/dx", "--answer", "x.T\u202e", "--json")
    assert not any(is_unsafe_char(ch) for ch in res.output), res.output


def test_an_empty_find_is_the_parts_only_find_and_an_error_where_there_are_several(tmp_path):
    two = GAUSS.replace("find: df/dx", "find: [df/dx, df/dmu]")
    (tmp_path / "a.csv").write_text("student,part,find,answer\nana,,,x\n")
    res = run("grade", write(tmp_path, GAUSS), "--answers", tmp_path / "a.csv")
    assert res.exit_code == 0 and "ana,,df/dx,false,shape" in res.output, res.output
    res = run("grade", write(tmp_path, two), "--answers", tmp_path / "a.csv")
    assert res.exit_code == 2 and "a.csv:2:6: find: this problem has several finds: say which (df/dx, df/dmu)" \
        in res.output, res.output


SOFTMAX_CE = """\
id: ce
symbols: {M: dim, N: dim, W: [M, N], x: [N], y: [M]}
define:
  L: -y.T @ log(p)
  p: softmax(z)
  z: W @ x
find: dL/dz
"""


def test_an_answer_right_for_a_one_hot_label_is_diagnosed_or_right_when_declared():
    v = verdict(SOFTMAX_CE, "(softmax(W @ x) - y).T", find="dL/dz")
    assert not v.correct and v.diagnosis == ("assumption",)
    assert "right if y were one-hot (sum(y) = 1)" in v.feedback
    declared = SOFTMAX_CE.replace("y: [M]}", "y: {shape: [M], assume: [one_hot]}}")
    assert verdict(declared, "(softmax(W @ x) - y).T", find="dL/dz").correct
    assert verdict(SOFTMAX_CE, "(sum(y) * softmax(W @ x) - y).T", find="dL/dz").correct


SYMMETRIC_BY = """\
id: sym
symbols: {D: dim, x: [D], S: {shape: [D, D], assume: [symmetric]}}
define: {f: x.T @ S @ x}
find: df/dS
"""


@pytest.mark.parametrize("answer, codes", [
    ("2 * x @ x.T - diag(diag(x @ x.T))", ("structured",)),
    ("diag(diag(x @ x.T)) - 2 * x @ x.T", ("structured", "sign")),
])
def test_the_structured_gradient_by_a_symmetric_matrix_is_named(answer, codes):
    v = verdict(SYMMETRIC_BY, answer, find="df/dS")
    assert not v.correct and v.diagnosis == codes, v
    assert "structured gradient for a symmetric S (Matrix Cookbook (138))" in v.feedback
    assert "stepgen's is the gradient with independent entries, G" in v.feedback
    assert verdict(SYMMETRIC_BY, "x @ x.T", find="df/dS").correct
