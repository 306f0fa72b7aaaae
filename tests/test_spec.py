"""Loading problem files: every field validated, every error with file, line, column and field."""
from __future__ import annotations

import textwrap

import pytest

from generator.errors import ProblemErrors
from generator.spec import load_problem

GOOD = """\
id: t1
title: A test
statement: Find the gradient.
symbols: {D: dim, x: [D], S: {shape: [D, D], assume: [symmetric]}}
define:
  f: x.T @ S @ x
find: df/dx
"""


def load(tmp_path, text, name="p.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_problem(p)


def errors(tmp_path, text, name="p.yaml") -> list[str]:
    with pytest.raises(ProblemErrors) as info:
        load(tmp_path, text, name)
    return [e.format(caret=False) for e in info.value.errors]


def test_good_file_loads(tmp_path):
    p = load(tmp_path, GOOD)
    assert p.id == "t1" and len(p.parts) == 1 and not p.has_parts
    part = p.parts[0]
    assert part.symbol("S").assume == ("symmetric",)
    assert part.find[0].of == "f" and part.find[0].wrt == "x"


def test_id_defaults_to_the_file_stem(tmp_path):
    p = load(tmp_path, GOOD.replace("id: t1\n", ""), name="gauss-2.yaml")
    assert p.id == "gauss-2"


def test_shape_mismatch_points_at_the_expression(tmp_path):
    text = GOOD.replace("symbols: {D: dim, x: [D], S: {shape: [D, D], assume: [symmetric]}}",
                        "symbols: {D: dim, M: dim, N: dim, x: [D], A: [M, N]}").replace("x.T @ S @ x", "x @ A")
    errs = errors(tmp_path, text)
    assert errs == [f"{tmp_path / 'p.yaml'}:6:8: define.f: (D×1) @ (M×N) do not conform"]


def test_all_errors_of_a_file_at_once(tmp_path):
    text = """\
    id: Bad Id
    symbols: {D: dim, x: [E]}
    define:
      f: x.T @ q
    find: dg/dx
    method: magic
    colour: blue
    """
    errs = errors(tmp_path, text)
    joined = "\n".join(errs)
    assert ":1:5: id: id 'Bad Id'" in joined
    assert "'E' is not a declared dim" in joined
    assert "method must be one of" in joined
    assert "unknown field 'colour'" in joined
    assert ":7:1: colour:" in joined
    assert len(errs) >= 4


def test_undeclared_name_column(tmp_path):
    errs = errors(tmp_path, GOOD.replace("x.T @ S @ x", "x.T @ S @ q"))
    assert errs[0].endswith("define.f: undeclared name 'q'")
    assert ":6:16:" in errs[0]


def test_quoted_expression_column(tmp_path):
    errs = errors(tmp_path, GOOD.replace("f: x.T @ S @ x", "f: 'x.T @ S @ q'"))
    assert ":6:17:" in errs[0]


def test_find_not_in_chain(tmp_path):
    text = GOOD.replace("symbols: {D: dim, x: [D], S: {shape: [D, D], assume: [symmetric]}}",
                        "symbols: {D: dim, x: [D], y: [D], S: [D, D]}").replace("x.T @ S @ x", "y.T @ S @ y")
    errs = errors(tmp_path, text)
    assert "f does not depend on x" in errs[0]


def test_circular_definition(tmp_path):
    text = GOOD.replace("  f: x.T @ S @ x", "  f: z + 1\n  z: f * 2")
    errs = errors(tmp_path, text)
    assert any("circular definition" in e for e in errs)


def test_duplicate_keys_and_bad_structure(tmp_path):
    errs = errors(tmp_path, GOOD + "find: df/dS\n")
    assert any("duplicate key 'find'" in e for e in errs)
    errs = errors(tmp_path, "- just\n- a list\n")
    assert "a problem file holds a mapping" in errs[0]
    errs = errors(tmp_path, GOOD.replace("define:\n  f: x.T @ S @ x\n", ""))
    assert any("define is missing" in e for e in errs)


def test_invalid_utf8_has_a_position(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_bytes(b"id: x\ntitle: caf\xe9\n")
    with pytest.raises(ProblemErrors) as info:
        load_problem(p)
    assert ":2:11:" in str(info.value) and "invalid UTF-8" in str(info.value)


def test_invalid_yaml_has_a_position(tmp_path):
    errs = errors(tmp_path, "id: a\nsymbols: {x: [D]\n")
    assert "invalid YAML" in errs[0] and ":3:" in errs[0]


def test_parts_inherit_and_override(tmp_path):
    text = """\
    id: two
    symbols: {D: dim, x: [D]}
    define: {f: x.T @ x}
    find: df/dx
    parts:
      - statement: first
      - id: second
        define: {g: sum(x)}
        find: dg/dx
        layout: denominator
    """
    p = load(tmp_path, text)
    assert [q.id for q in p.parts] == ["a", "second"]
    assert p.parts[0].define[0].name == "f"
    assert p.parts[1].define[0].name == "g" and p.parts[1].layout == "denominator"


def test_caret_under_the_column(tmp_path):
    with pytest.raises(ProblemErrors) as info:
        load(tmp_path, GOOD.replace("x.T @ S @ x", "x.T @ S @ q"))
    shown = info.value.format(caret=True).splitlines()
    assert shown[1] == "      f: x.T @ S @ q"
    assert shown[2] == "    " + " " * 15 + "^"
