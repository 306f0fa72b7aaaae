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


CHUNKS = ["", ":", "-", " ", "\n", "  ", "[", "]", "{", "}", "&a", "*a", "!!str", "@", "x", "D", "'", "\t", "#",
          "parts:", "define:", "\\input", '"\\ud800"', '"\\e[2J"', "id: 0777", "99999999999999999999", "kron(",
          ".T @ x / 0", "**2**2**2", "method: componentwise"]


def mutated(data, text: str = SEED) -> str:
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(text)))
        kind = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        chunk = data.draw(st.sampled_from(CHUNKS))
        if kind == "insert":
            text = text[:pos] + chunk + text[pos:]
        elif kind == "delete":
            text = text[:pos] + text[pos + len(chunk) + 1:]
        else:
            text = text[:pos] + chunk + text[pos + 1:]
    return text


@settings(max_examples=1000 * SCALE, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_loader_mutated_seed(data):
    try:
        parse_problem(mutated(data), "fuzz.yaml")
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


# --- the build path: a folder of random bad and hostile files among good ones ----------------

GOOD = "id: good-{i}\nsymbols: {{D: dim, x: [D]}}\ndefine: {{f: {expr}}}\nfind: df/dx\n"
HOSTILE = ["mutated", "bytes", "fifo", "dev-zero", "dangling", "folder", "sparse", "duplicate", "surrogate"]


def hostile(data, folder: Path, name: str) -> str:
    kind = data.draw(st.sampled_from(HOSTILE))
    p = folder / name
    if kind == "mutated":
        p.write_text(mutated(data).replace("id: mml-5.8", f"id: {name[:-5]}"), encoding="utf-8")
    elif kind == "bytes":
        p.write_bytes(data.draw(st.binary(max_size=200)))
    elif kind == "fifo":
        os.mkfifo(p)
    elif kind == "dev-zero":
        p.symlink_to("/dev/zero")
    elif kind == "dangling":
        p.symlink_to(folder / "nowhere")
    elif kind == "folder":
        p.mkdir()
    elif kind == "sparse":
        with open(p, "wb") as fh:
            fh.truncate(data.draw(st.sampled_from([256 * 1024 + 1, 2 ** 32])))
    elif kind == "duplicate":
        p.write_text(GOOD.format(i=0, expr="sum(exp(x))"))
    else:
        p.write_text('id: s\ntitle: "\\ud800"\n' + GOOD.format(i=9, expr="x.T @ x").split("\n", 1)[1])
    return kind


@settings(max_examples=40 * SCALE, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_build_a_hostile_folder(data):
    """`stepgen build` on a folder of good files (sorted first, so they keep their ids) and random
    bad ones: no traceback, exit 1, one summary line per bad file, the good files built."""
    import re
    import shutil
    import tempfile

    from click.testing import CliRunner

    from generator.cli import main

    tmp = Path(tempfile.mkdtemp(prefix="stepgen-fuzz-"))
    try:
        src = tmp / "problems"
        src.mkdir()
        goods = []
        for i, expr in enumerate(data.draw(st.lists(st.sampled_from(["x.T @ x", "sum(exp(x))", "norm(x)"]),
                                                    min_size=1, max_size=2))):
            goods.append(src / f"0-good-{i}.yaml")
            goods[-1].write_text(GOOD.format(i=i, expr=expr))
        kinds = {src / f"bad-{j}.yaml": hostile(data, src, f"bad-{j}.yaml") for j in range(data.draw(st.integers(1, 3)))}
        res = CliRunner().invoke(main, ["build", str(src), "--out", str(tmp / "out"), "--format", "md,json",
                                        "--timeout", "20"])
        assert "Traceback" not in res.output and isinstance(res.exception, (SystemExit, type(None))), res.output
        summary = [line for line in res.output.splitlines() if line.startswith("  ")]
        for path, kind in kinds.items():
            mine = [line for line in summary if line.startswith(f"  {path}")]
            assert len(mine) <= 1 and (mine or kind in ("mutated", "folder")), (kind, res.output)
        for i, g in enumerate(goods):
            assert str(g) not in res.output.replace(f"used by {g}", "") and (tmp / "out" / f"good-{i}.md").exists()
        n_failed = int(m.group(1)) if (m := re.search(r"(\d+) problem\(s\) failed", res.output)) else 0
        n_built = int(re.search(r"built (\d+) problem\(s\)", res.output).group(1))
        assert n_failed == len(summary) and res.exit_code == (1 if n_failed else 0)
        assert n_built + n_failed == len(goods) + sum(kind != "folder" for kind in kinds.values())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- the build path: random expressions solved, checked and printed ---------------------------

BUILD_SCOPE = ex.Scope(dims=frozenset({"D"}), shapes={"x": ("D", 1), "A": ("D", "D"), "s": ()})
LEAVES = ["x", "A @ x", "s * x", "ones(D)", "exp(x)", "tanh(x)", "x * x", "x / (2 + s**2)"]
SCALAR_OPS = ["({a}).T @ ({b})", "sum({a})", "norm({a})", "log(1 + ({a}).T @ ({b}))", "sum(sigmoid({a}))",
              "({a}).T @ A @ ({b})", "(({a}).T @ ({b}))**{n}", "sum({a}) / ({k} + s**2)", "{c} * sum({a})",
              # piecewise functions and the functions of a whole vector
              "sum(relu({a}))", "max(0, 1 - ({a}).T @ ({b}))", "logsumexp({a})", "mean(abs({a}))",
              "({a}).T @ softmax({b})", "-({a}).T @ log_softmax({b})", "sum(max({a}, {b}))"]
LEAVES += ["relu(A @ x)", "softmax(x)", "sinh(x)", "maximum(x, s)"]
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
