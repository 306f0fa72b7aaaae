"""Fuzzing the loader and the parser: random and mutated input gives only stepgen's own errors."""
from __future__ import annotations

from pathlib import Path

import yaml
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# STEPGEN_FUZZ_SCALE=10 python3 -m pytest tests/test_fuzz.py: ten times the examples
SCALE = int(os.environ.get("STEPGEN_FUZZ_SCALE", "1"))

from generator import expr as ex
from generator.errors import ExprError, ProblemErrors
from generator.spec import parse_problem

SCOPE = ex.Scope(dims=frozenset({"D", "M"}), shapes={"x": ("D", 1), "A": ("M", "D"), "s": (), "S": ("D", "D")})
TOKENS = ["x", "A", "s", "S", "D", "M", "q", "_", "__import__", "1", "0.5", "2", "64", "1e9", "(", ")", "[", "]",
          "+", "-", "*", "/", "@", "**", ".T", ".x", ",", " ", "exp(", "inv(", "trace(", "eye(", "diag(",
          "lambda", ":", "'", '"', "{", "}", "=", "<", "if", "for", "é", "\\", "\x00", "\n", "sum(", "kron("]
SEED = (Path(__file__).parent.parent / "problems" / "mml-5.8.yaml").read_text()
FAST = settings(max_examples=2000 * SCALE, deadline=None, suppress_health_check=list(HealthCheck))


@FAST
@given(st.lists(st.sampled_from(TOKENS), max_size=30).map("".join))
def test_parser_token_soup(text):
    try:
        e = ex.parse(text, SCOPE)
    except ExprError:
        return
    # anything that parses prints back to text that parses again
    ex.parse(ex.to_text(e), SCOPE)


@FAST
@given(st.text(max_size=60))
def test_parser_random_text(text):
    try:
        ex.parse(text, SCOPE)
    except ExprError:
        pass


@settings(max_examples=1000 * SCALE, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_loader_mutated_seed(data):
    text = SEED
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(text)))
        kind = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        chunk = data.draw(st.sampled_from(["", ":", "-", " ", "\n", "  ", "[", "]", "{", "}", "&a", "*a", "!!str",
                                           "@", "x", "D", "'", "\t", "#", "parts:", "define:", "\\input"]))
        if kind == "insert":
            text = text[:pos] + chunk + text[pos:]
        elif kind == "delete":
            text = text[:pos] + text[pos + len(chunk) + 1:]
        else:
            text = text[:pos] + chunk + text[pos + 1:]
    try:
        parse_problem(text, "fuzz.yaml")
    except ProblemErrors:
        pass


values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False) | st.text(max_size=12)
    | st.sampled_from(["dim", "scalar", "x.T @ x", "df/dx", "D", "[D]", "x", "chain_rule"]),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["id", "symbols", "define", "find", "parts", "shape", "assume", "D", "x",
                                       "f", "method", "layout", "latex", "statement", "function", "args"]),
                      children, max_size=5),
    max_leaves=25)


@settings(max_examples=1000 * SCALE, deadline=None, suppress_health_check=list(HealthCheck))
@given(values)
def test_loader_random_structures(doc):
    text = yaml.safe_dump(doc, allow_unicode=True)
    try:
        parse_problem(text, "fuzz.yaml")
    except ProblemErrors:
        pass


# --- the build path: random expressions solved, checked and printed ---------------------------

BUILD_SCOPE = ex.Scope(dims=frozenset({"D"}), shapes={"x": ("D", 1), "A": ("D", "D"), "s": ()})
LEAVES = ["x", "A @ x", "s * x", "ones(D)", "exp(x)", "tanh(x)", "x * x", "x / (2 + s**2)"]
SCALAR_OPS = ["({a}).T @ ({b})", "sum({a})", "norm({a})", "log(1 + ({a}).T @ ({b}))", "sum(sigmoid({a}))",
              "({a}).T @ A @ ({b})", "(({a}).T @ ({b}))**{n}", "sum({a}) / ({k} + s**2)", "{c} * sum({a})"]
BUILD_PROBLEM = """\
id: fuzz
symbols: {{D: dim, x: [D], A: [D, D], s: scalar}}
define:
  f: "{f}"
find: df/dx
method: {method}
"""


@st.composite
def scalar_functions(draw):
    vec = st.sampled_from(LEAVES)
    op = draw(st.sampled_from(SCALAR_OPS))
    text = op.format(a=draw(vec), b=draw(vec), n=draw(st.sampled_from(["2", "3", "-1", "0.5", "2**6", "64*64",
                                                                        "10**10", "1/0", "2**0.5"])),
                     k=draw(st.sampled_from(["1", "0", "1e-12", "10**7"])),
                     c=draw(st.sampled_from(["2", "1000000", "1e-12", "exp(2)", "exp(1000)"])))
    if draw(st.booleans()):
        text = f"{text} + {op.format(a=draw(vec), b=draw(vec), n='2', k='1', c='3')}"
    return text


@settings(max_examples=60 * SCALE, deadline=None, suppress_health_check=list(HealthCheck))
@given(scalar_functions(), st.sampled_from(["chain_rule", "direct", "componentwise"]))
def test_build_path_gives_a_checked_result_or_a_clean_error(f, method):
    """Whatever the expression, loading refuses it with stepgen's error, or solving gives
    results that were checked, or a failure with a reason; a result's text parses again."""
    from generator.build import solve_problem
    from generator.render.json import trace_json
    import json

    try:
        problem = parse_problem(BUILD_PROBLEM.format(f=f, method=method), "fuzz.yaml")
    except ProblemErrors:
        return
    sol = solve_problem(problem, timeout=20)
    if sol.failed:
        assert all(msg and "Traceback" not in msg for msg in sol.failed)
        return
    trace = json.loads(trace_json(sol))
    for r in trace["parts"][0]["results"]:
        assert r["check"]["points"] >= 1 and r["check"]["max_rel_error"] <= 1e-6
        if r["expr"] is not None:
            ex.parse(r["expr"], BUILD_SCOPE)
