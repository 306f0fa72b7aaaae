"""Variants: vary: resolved before loading, deterministic builds, rosters, check, grading a variant."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from generator.cli import main
from generator.errors import ProblemErrors
from generator.spec import load_problem
from generator.variants import pick, read_vary

LAYER = """\
id: layer
title: A layer with {g}
statement: Differentiate $\\mathrm{{g}}({c}\\,\\mathbf{A}\\mathbf{{v}})$.
vary:
  g: [tanh, sigmoid, exp]
  c: [2, -1/2]
  v: [x, u]
symbols: {M: dim, N: dim, A: [M, N], "{v}": [N]}
define:
  f: "{g}(z)"
  z: "{c} * A @ {v}"
find: "df/d{v}"
"""


def write(tmp_path, text=LAYER, name="layer.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def files(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")}


def test_a_plain_load_is_the_first_choices(tmp_path):
    problem = load_problem(write(tmp_path))
    part = problem.parts[0]
    assert problem.id == "layer" and problem.title == "A layer with tanh"
    assert [d.text for d in part.define] == ["tanh(z)", "2 * A @ x"]
    assert part.find[0].text == "df/dx" and part.symbol("x").shape == ("N", 1)


def test_variants_are_built_checked_and_say_their_choices(tmp_path):
    out = tmp_path / "out"
    res = run("build", write(tmp_path), "--variants", "4", "--seed", "11", "--out", out, "--format", "md,json")
    assert res.exit_code == 0, res.output
    names = files(out)
    assert sorted(names) == sorted([f"layer-v0{i}.{e}" for i in range(1, 5) for e in ("md", "json")]
                                   + ["layer-variants.csv"])
    table = names["layer-variants.csv"].decode().splitlines()
    assert table[0] == "variant,id,g,c,v" and len(table) == 5
    assert len(set(table[1:])) == 4 and len({r.split(",", 2)[2] for r in table[1:]}) == 4   # all differ
    for row in table[1:]:
        name, pid, g, c, v = row.split(",")
        trace = json.loads(names[f"{pid}.json"])
        problem = trace["problem"]
        assert problem["id"] == pid and "vary" not in problem
        assert problem["define"] == {"f": f"{g}(z)", "z": f"{'(-1/2)' if c == '-1/2' else c} * A @ {v}"}
        assert problem["find"] == f"df/d{v}" and problem["symbols"][v] == ["N"]
        assert trace["parts"][0]["results"][0]["check"]["max_rel_error"] < 1e-6
        assert f"A layer with {g}" in names[f"{pid}.md"].decode()


def test_same_seed_same_bytes_other_seed_other_variants(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for out, seed in ((a, 3), (b, 3), (c, 4)):
        assert run("build", write(tmp_path), "--variants", "3", "--seed", seed, "--out", out,
                   "--format", "md,tex,json").exit_code == 0
    assert files(a) == files(b)
    assert files(a)["layer-variants.csv"] != files(c)["layer-variants.csv"]


def test_variants_do_not_depend_on_pythonhashseed(tmp_path):
    tables = []
    for hashseed in ("1", "2"):
        out = tmp_path / f"out{hashseed}"
        env = dict(os.environ, PYTHONHASHSEED=hashseed)
        subprocess.run([sys.executable, "-m", "generator.cli", "build", str(write(tmp_path)), "--variants", "5",
                        "--seed", "9", "--out", str(out), "--format", "json"], check=True, env=env,
                       capture_output=True, cwd=os.path.dirname(os.path.dirname(__file__)))
        tables.append(files(out))
    assert tables[0] == tables[1]


def test_more_variants_than_combinations_repeat_and_say_so(tmp_path):
    vary = read_vary(LAYER, "l.yaml")
    picked, note = pick(vary, 15, seed=1)
    assert vary.count == 12 and "only 12 different combination(s)" in note
    assert len({c for _, c in picked[:12]}) == 12 and picked[12][1] == picked[0][1]
    assert [n for n, _ in picked][:2] == ["v01", "v02"]


def test_a_roster_names_one_variant_per_student(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("student,email\nana,a@x\nben,b@x\ncleo,c@x\n")
    out = tmp_path / "out"
    res = run("build", write(tmp_path), "--roster", roster, "--seed", "5", "--out", out, "--format", "json")
    assert res.exit_code == 0, res.output
    names = files(out)
    assert {"layer-ana.json", "layer-ben.json", "layer-cleo.json"} <= set(names)
    table = names["layer-variants.csv"].decode().splitlines()
    assert table[0] == "student,id,g,c,v" and table[1].startswith("ana,layer-ana,")
    # the same student gets the same variant whatever the roster's order and length
    roster.write_text("student\ncleo\nana\n")
    out2 = tmp_path / "out2"
    assert run("build", write(tmp_path), "--roster", roster, "--seed", "5", "--out", out2,
               "--format", "json").exit_code == 0
    assert (out2 / "layer-ana.json").read_bytes() == names["layer-ana.json"]


@pytest.mark.parametrize("roster, message", [
    ("student\n=cmd|calc\n", "a student id names files"),
    ("student\n../../etc\n", "a student id names files"),
    ("student\nana\nana\n", "ana is also on line 2"),
    ("name\nana\n", "the header lacks the column(s) student"),
    ("student\n" + "".join(f"s{i}\n" for i in range(1000)), "r.csv:1001:1: student: more than 999 students"),
])
def test_a_bad_roster_is_refused_with_its_line(tmp_path, roster, message):
    (tmp_path / "r.csv").write_text(roster)
    res = run("build", write(tmp_path), "--roster", tmp_path / "r.csv", "--out", tmp_path / "out")
    assert res.exit_code == 2 and message in res.output and "r.csv:" in res.output, res.output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_usage(tmp_path):
    assert run("build", write(tmp_path), "--variants", "0").exit_code == 2
    roster = tmp_path / "r.csv"
    roster.write_text("student\nana\n")
    assert run("build", write(tmp_path), "--variants", "2", "--roster", roster).exit_code == 2
    assert run("build", write(tmp_path), "--variants", "2", "--combine", "all").exit_code == 2


def test_a_file_without_vary_is_noted_not_built(tmp_path):
    p = write(tmp_path, "id: q\nsymbols: {D: dim, x: [D]}\ndefine: {f: x.T @ x}\nfind: df/dx\n", "q.yaml")
    res = run("build", p, "--variants", "2", "--out", tmp_path / "out")
    assert res.exit_code == 0 and "no vary: field" in res.output


# --- grading a variant --------------------------------------------------------------------------

def test_each_student_is_graded_against_their_own_variant(tmp_path):
    out = tmp_path / "out"
    assert run("build", write(tmp_path), "--variants", "12", "--seed", "1", "--out", out,
               "--format", "json").exit_code == 0
    rows = [r.split(",") for r in (out / "layer-variants.csv").read_text().splitlines()[1:]]
    tanh2 = next(r for r in rows if r[2:] == ["tanh", "2", "x"])
    exp_u = next(r for r in rows if r[2] == "exp" and r[4] == "u")
    right = "2 * diag(1 - tanh(z)**2) @ A"
    res = run("grade", out / f"{tanh2[1]}.json", "--find", "df/dx", "--answer", right, "--json")
    assert res.exit_code == 0 and json.loads(res.output)["correct"], res.output
    res = run("grade", out / f"{exp_u[1]}.json", "--find", "df/du", "--answer", right.replace("tanh", "exp"))
    assert res.exit_code == 1


# --- check ----------------------------------------------------------------------------------------

def check(tmp_path, text):
    res = run("check", write(tmp_path, text))
    return res.exit_code, res.output


def test_check_names_the_choice_that_breaks_the_shapes(tmp_path):
    code, out = check(tmp_path, LAYER.replace("v: [x, u]", "v: [x, u, A]"))
    assert code == 1
    assert "vary: 6 of 18 combination(s) of the choices fail; every one with v=A" in out
    assert "layer.yaml:8:" in out and "(with g=tanh, c=2, v=A)" in out


def test_check_names_a_function_that_does_not_fit(tmp_path):
    code, out = check(tmp_path, LAYER.replace("[tanh, sigmoid, exp]", "[tanh, det]"))
    assert code == 1 and "every one with g=det" in out
    # the caret is under the placeholder in the original file, not in the resolved text
    assert "layer.yaml:10:7: define.f: det needs a square matrix, got M×1 (with g=det, c=2, v=x)" in out
    assert '\n      f: "{g}(z)"\n          ^' in out


def test_check_accepts_the_bank_example(root):
    res = run("check", root / "problems" / "variants")
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize("change, message", [
    (("{c} * A", "{k} * A"), "layer.yaml:11:7: define.z: unknown placeholder {k} (vary declares: c, g, v)"),
    (("c: [2, -1/2]", "c: [2, -1/2]\n  w: [1, 2]"), "vary.w: the placeholder {w} is not used"),
    (("c: [2, -1/2]", "c: [2, x.T @ x]"), "vary.c[1]: 'x.T @ x': a choice is a number"),
    (("c: [2, -1/2]", "c: [2, 2]"), "the choice 2 is given twice"),
    (("c: [2, -1/2]", "c: []"), "the choices are a non-empty list"),
    (("c: [2, -1/2]", "c: [[1], 2]"), "a choice is a number or a name, not a list"),
    (("c: [2, -1/2]", "c: [true, 2]"), "a choice is a number"),
])
def test_check_reports_bad_vary_with_positions(tmp_path, change, message):
    code, out = check(tmp_path, LAYER.replace(*change))
    assert code == 1 and message in out, out
    assert "Traceback" not in out


def test_a_placeholder_in_latex_braces_of_a_statement_is_left_alone(tmp_path):
    problem = load_problem(write(tmp_path))
    assert problem.statement == "Differentiate $\\tanh(2\\,\\mathbf{A}\\mathbf{x})$."
    text = LAYER.replace("statement: Differentiate", "statement: With $\\mathbf{q}$, differentiate")
    assert "\\mathbf{q}" in load_problem(write(tmp_path, text)).statement


def test_an_alias_bomb_in_a_file_with_vary_ends_quickly(tmp_path):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8))
    with pytest.raises(ProblemErrors):
        load_problem(write(tmp_path, "vary: {g: [exp]}\n" + bomb))


def test_every_variant_of_the_bank_example_against_independent_differences(root, tmp_path):
    """All the combinations of the bank's example, each solved and its printed results checked by the
    tests' own evaluator against the resolved problem its JSON carries."""
    import yaml
    from bank_check import check_trace
    from generator.build import render_outputs, solve_problem
    from generator.variants import plan

    path = root / "problems" / "variants" / "activation-layer.yaml"
    (vary, base_id, variants), note = plan(path, 24, seed=0)
    assert base_id == "activation-layer" and vary.count == 24 and not note
    assert len({v.combo for v in variants}) == 24
    for v in variants:
        sol = solve_problem(v.problem)
        assert not sol.failed, (v.name, sol.failed)
        trace = json.loads(render_outputs(sol, ("json",), problem_data=v.data)["json"])
        resolved = tmp_path / f"{v.problem.id}.yaml"
        resolved.write_text(yaml.safe_dump(trace["problem"], sort_keys=False))
        assert check_trace(resolved, trace) < 1e-5, v.name


def test_a_class_is_graded_on_its_variants_from_the_roster_table(tmp_path):
    roster = tmp_path / "class.csv"
    roster.write_text("student\nana\nben\ncleo\n")
    out = tmp_path / "out"
    assert run("build", write(tmp_path), "--roster", roster, "--seed", "5", "--out", out,
               "--format", "json").exit_code == 0
    chosen = {r.split(",")[0]: r.split(",")[2:] for r in (out / "layer-variants.csv").read_text().splitlines()[1:]}
    lines = ["student,part,find,answer"]
    for student, (g, c, v) in chosen.items():
        deriv = {"tanh": "(1 - tanh(z)**2)", "sigmoid": "sigmoid(z) * (1 - sigmoid(z))", "exp": "exp(z)"}[g]
        c_text = "(-1/2)" if c == "-1/2" else c
        lines.append(f"{student},,df/d{v},{c_text} * diag({deriv}) @ A")      # right, each for their own
        lines.append(f"{student},,df/d{v},{c_text} * A.T @ diag({deriv})")    # transposed
    (tmp_path / "answers.csv").write_text("\n".join(lines) + "\n")
    res = run("grade", out / "layer-variants.csv", "--answers", tmp_path / "answers.csv", "--out", tmp_path / "r.csv")
    assert res.exit_code == 0, res.output
    rows = (tmp_path / "r.csv").read_text().splitlines()[1:]
    assert [r.split(",")[3] for r in rows] == ["true", "false"] * 3
    assert all("shape transposed" in r for r in rows[1::2])
    (tmp_path / "answers.csv").write_text("student,part,find,answer\nzoe,,df/dx,x\n")
    res = run("grade", out / "layer-variants.csv", "--answers", tmp_path / "answers.csv")
    assert res.exit_code == 2 and "answers.csv:2:1: student: 'zoe' is not in" in res.output


def test_the_schema_accepts_the_bank_example_and_refuses_bad_vary(root):
    import jsonschema
    import yaml
    from generator.schema import SCHEMA
    doc = yaml.safe_load((root / "problems" / "variants" / "activation-layer.yaml").read_text())
    jsonschema.validate(doc, SCHEMA)
    for bad in ({"g": []}, {"g": [[1]]}, {"g": ["x.T @ x"]}, {"1g": [2]}, {"g": [2, 2]}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(dict(doc, vary=bad), SCHEMA)


def test_check_of_many_combinations_is_bounded(tmp_path, monkeypatch):
    import time
    from generator import variants
    many = LAYER.replace("c: [2, -1/2]", "c: [" + ", ".join(str(k) for k in range(2, 52)) + "]").replace(
        "g: [tanh, sigmoid, exp]", "g: [tanh, sigmoid, exp, sin, cos, softplus]")
    calls = []
    original = variants.load_variant
    t = time.perf_counter()
    monkeypatch.setattr(variants, "load_variant", lambda *a, **k: calls.append(a[3]) or original(*a, **k))
    assert variants.check_combinations(write(tmp_path, many)) == []
    assert len(calls) == variants.MAX_CHECKED and time.perf_counter() - t < 30
    assert {c[0] for c in calls} == set(range(6)) and {c[1] for c in calls} == set(range(50))  # every choice


def test_a_student_id_with_capitals_gives_a_variant_grade_can_read(tmp_path):
    roster = tmp_path / "class.csv"
    roster.write_text("student\nAna\nBen.Smith\n")
    out = tmp_path / "out"
    res = run("build", write(tmp_path), "--roster", roster, "--seed", "5", "--out", out, "--format", "json")
    assert res.exit_code == 0, res.output
    assert {"layer-ana.json", "layer-ben.smith.json"} <= set(files(out))
    table = (out / "layer-variants.csv").read_text().splitlines()
    assert table[1].startswith("Ana,layer-ana,") and table[2].startswith("Ben.Smith,layer-ben.smith,")
    v = table[1].split(",")[4]
    res = run("grade", out / "layer-ana.json", "--find", f"df/d{v}", "--answer", v)
    assert res.exit_code == 1 and "[shape]" in res.output, res.output
    (tmp_path / "answers.csv").write_text(f"student,part,find,answer\nAna,,df/d{v},{v}\n")
    res = run("grade", out / "layer-variants.csv", "--answers", tmp_path / "answers.csv")
    assert res.exit_code == 0 and "Ana,,df/d" in res.output, res.output


def test_student_ids_that_differ_only_in_case_are_refused(tmp_path):
    # they would name the same files on a case-insensitive file system (macOS, Windows)
    (tmp_path / "r.csv").write_text("student\nana\nAna\n")
    res = run("build", write(tmp_path), "--roster", tmp_path / "r.csv", "--out", tmp_path / "out")
    assert res.exit_code == 2 and "r.csv:3:1: student: Ana is also on line 2" in res.output, res.output


def test_grading_a_class_never_overwrites_a_variant(tmp_path):
    roster = tmp_path / "class.csv"
    roster.write_text("student\nana\n")
    out = tmp_path / "out"
    assert run("build", write(tmp_path), "--roster", roster, "--out", out, "--format", "json").exit_code == 0
    v = (out / "layer-variants.csv").read_text().splitlines()[1].split(",")[4]
    (tmp_path / "answers.csv").write_text(f"student,part,find,answer\nana,,df/d{v},{v}\n")
    before = files(out)
    for target in ("layer-ana.json", "layer-variants.csv"):
        res = run("grade", out / "layer-variants.csv", "--answers", tmp_path / "answers.csv", "--out", out / target)
        assert res.exit_code == 2 and "would overwrite" in res.output, res.output
    assert files(out) == before


@pytest.mark.parametrize("table, message", [
    ("student,id\nana,../../etc/passwd\n", "t.csv:2:5: id: '../../etc/passwd' is not a variant's id"),
    ("student,id\nana,layer-ana\nana,layer-ben\n", "t.csv:3:1: student: ana is also on line 2"),
    ("student,id\n,layer-ana\n", "t.csv:2:1: student: the student cell is empty"),
])
def test_a_bad_variants_table_is_refused_at_its_own_line(tmp_path, table, message):
    (tmp_path / "t.csv").write_text(table)
    (tmp_path / "answers.csv").write_text("student,part,find,answer\nana,,df/dx,x\n")
    res = run("grade", tmp_path / "t.csv", "--answers", tmp_path / "answers.csv")
    assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output, res.output


def test_check_loads_every_choice_of_many_placeholders(tmp_path):
    # 5 placeholders of 20 choices: more single changes than MAX_CHECKED, and only the last choice breaks
    vary = "".join(f"  c{i}: [{', '.join(str(k) for k in range(1, 20))}, {'zz' if i == 4 else 20}]\n"
                   for i in range(5))
    text = ("id: many\nvary:\n" + vary + "symbols: {D: dim, x: [D]}\ndefine:\n"
            "  f: \"{c0} * {c1} * {c2} * {c3} * {c4} * x.T @ x\"\nfind: df/dx\n")
    code, out = check(tmp_path, text)
    assert code == 1 and "every one with c4=zz" in out and "undeclared name 'zz'" in out, out


def test_the_readme_walk_through_names_anas_variant(root):
    text = (root / "problems" / "variants" / "activation-layer.yaml").read_text()
    vary = read_vary(text, "activation-layer.yaml")
    [(_, combo)] = pick(vary, None, 2026, ("ana",))[0]
    assert f"ana's is `{vary.label(combo)}`" in (root / "README.md").read_text()


def test_two_files_with_one_id_do_not_overwrite_each_others_variants(tmp_path):
    (tmp_path / "p").mkdir()
    write(tmp_path / "p", LAYER, "a.yaml")
    write(tmp_path / "p", LAYER.replace("g: [tanh, sigmoid, exp]", "g: [cos]"), "b.yaml")
    out = tmp_path / "out"
    res = run("build", tmp_path / "p", "--variants", "2", "--out", out, "--format", "md")
    assert res.exit_code == 1 and "b.yaml" in res.output and "the same id as" in res.output, res.output
    assert all("cos" not in t.decode() for n, t in files(out).items() if n.endswith(".md"))
    assert set(files(out)) == {"layer-v01.md", "layer-v02.md", "layer-variants.csv"}


def test_a_student_whose_files_are_anothers_sheet_is_refused(tmp_path):
    # layer-ana-sheet.md would be both ana-sheet's solution and ana's exercise sheet
    roster = tmp_path / "class.csv"
    roster.write_text("student\nana\nana-sheet\n")
    out = tmp_path / "out"
    res = run("build", write(tmp_path), "--roster", roster, "--out", out, "--format", "md", "--sheets", "both")
    assert res.exit_code == 2 and "class.csv:3:1: student: ana-sheet" in res.output, res.output
    assert not out.exists() or not files(out)


def test_the_summary_of_a_class_on_variants_counts_the_exercise_not_each_variants_find(tmp_path):
    roster = tmp_path / "class.csv"
    roster.write_text("student\n" + "".join(f"s{i}\n" for i in range(12)))
    out = tmp_path / "out"
    assert run("build", write(tmp_path), "--roster", roster, "--seed", "3", "--out", out,
               "--format", "json").exit_code == 0
    rows = [r.split(",") for r in (out / "layer-variants.csv").read_text().splitlines()[1:]]
    assert {r[4] for r in rows} == {"x", "u"}          # both finds, df/dx and df/du, in the class
    (tmp_path / "a.csv").write_text("student,part,find,answer\n" + "".join(f"{r[0]},,df/d{r[4]},A\n" for r in rows))
    res = run("grade", out / "layer-variants.csv", "--answers", tmp_path / "a.csv", "--out", tmp_path / "r.csv")
    assert res.exit_code == 0, res.output
    summary = [line for line in res.output.splitlines() if " of 12 " in line]
    assert len(summary) == 1 and summary[0].startswith("df/du or df/dx: 0 of 12 correct"), res.output


def test_the_variants_table_lists_only_the_variants_written(tmp_path):
    # with c = 5000 the result's constant, 5000², is beyond the language's numbers: those variants fail
    text = LAYER.replace("c: [2, -1/2]", "c: [2, 5000]").replace('z: "{c} * A @ {v}"', 'z: "{c} * A @ {v} * {c}"')
    out = tmp_path / "out"
    res = run("build", write(tmp_path, text), "--variants", "12", "--out", out, "--format", "json")
    assert res.exit_code == 1, res.output
    rows = [r.split(",") for r in (out / "layer-variants.csv").read_text().splitlines()[1:]]
    assert rows and all((out / f"{r[1]}.json").is_file() for r in rows), rows
    assert {r[3] for r in rows} == {"2"}


def test_a_class_on_variants_needs_no_find_column_when_the_problem_has_one_find(tmp_path):
    # each student's find differs with their variant (df/dx, df/du); an export from a course site has none
    roster = tmp_path / "class.csv"
    roster.write_text("student\nana\nben\ncleo\n")
    out = tmp_path / "out"
    assert run("build", write(tmp_path), "--roster", roster, "--seed", "5", "--out", out,
               "--format", "json").exit_code == 0
    (tmp_path / "a.csv").write_text("student,answer\nana,A\nben,A\ncleo,A\n")
    res = run("grade", out / "layer-variants.csv", "--answers", tmp_path / "a.csv", "--out", tmp_path / "r.csv")
    assert res.exit_code == 0, res.output
    chosen = {r.split(",")[0]: r.split(",")[4] for r in (out / "layer-variants.csv").read_text().splitlines()[1:]}
    rows = [r.split(",") for r in (tmp_path / "r.csv").read_text().splitlines()[1:]]
    assert [(r[0], r[2]) for r in rows] == [(s, f"df/d{v}") for s, v in chosen.items()]


def test_a_function_or_a_fraction_in_a_statements_math_prints_as_the_book_writes_it(tmp_path):
    """\\mathrm{{g}} with g = sigmoid is \\sigma, with tanh \\tanh; c = -1/2 is -\\frac{1}{2}; in prose
    (the title) the choice stays a word."""
    from generator.variants import load_variant
    text = LAYER.replace("statement: Differentiate $", "statement: Differentiate {g} in prose, then $")
    vary = read_vary(text, "layer.yaml")
    seen = {}
    for i in range(vary.count):
        combo = vary.combination(i)
        problem, _ = load_variant(text, "layer.yaml", vary, combo, "layer")
        seen[vary.label(combo)] = problem
    assert seen["g=sigmoid, c=-1/2, v=u"].statement == (
        "Differentiate sigmoid in prose, then $\\sigma(-\\frac{1}{2}\\,\\mathbf{A}\\mathbf{u})$.")
    assert seen["g=exp, c=2, v=x"].statement.endswith("$\\exp(2\\,\\mathbf{A}\\mathbf{x})$.")
    assert all("\\mathrm" not in p.statement for p in seen.values())
    assert seen["g=sigmoid, c=2, v=x"].title == "A layer with sigmoid"


def test_the_order_of_terms_is_the_same_in_every_variant(tmp_path):
    """z = {c} A v + b: the entrywise algebra of σ (SymPy's order: b − ½Ax) must not turn the sum
    around in one variant and keep it in the next."""
    from generator.build import solve_problem
    from generator.printing import LatexPrinter
    from generator.variants import load_variant
    text = LAYER.replace('z: "{c} * A @ {v}"', 'z: "{c} * A @ {v} + b"').replace('"{v}": [N]}', '"{v}": [N], b: [M]}')
    vary = read_vary(text, "layer.yaml")
    for i in range(vary.count):
        problem, _ = load_variant(text, "layer.yaml", vary, vary.combination(i), "layer")
        sol = solve_problem(problem)
        assert not sol.failed, sol.failed
        r = sol.parts[0].results[0]
        latex = LatexPrinter()(r.result)
        assert "\\mathbf{b} -" not in latex and "\\mathbf{b} +" not in latex, (vary.label(vary.combination(i)), latex)
