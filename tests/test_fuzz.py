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


def hostile(data, folder: Path, name: str) -> None:
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


@settings(max_examples=40 * SCALE, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_build_a_hostile_folder(data):
    """No exception escapes build; every file is built, unchanged or has exactly one error line;
    the good files (sorted first, so they keep their ids) are built."""
    import shutil
    import tempfile

    from generator.build import build

    tmp = Path(tempfile.mkdtemp(prefix="stepgen-fuzz-"))
    try:
        src = tmp / "problems"
        src.mkdir()
        goods = []
        for i, expr in enumerate(data.draw(st.lists(st.sampled_from(["x.T @ x", "sum(exp(x))", "norm(x)"]),
                                                    min_size=1, max_size=2))):
            goods.append(src / f"0-good-{i}.yaml")
            goods[-1].write_text(GOOD.format(i=i, expr=expr))
        n_bad = data.draw(st.integers(1, 3))
        for j in range(n_bad):
            hostile(data, src, f"bad-{j}.yaml")
        report = build([src], tmp / "out", ("md", "json"), timeout=20)
        failed = [f for f, _ in report.failed]
        assert len(failed) == len(set(failed))                  # one line per file
        assert all("Traceback" not in reason for _, reason in report.failed)
        for g in goods:
            assert str(g) not in failed, report.failed
            assert (tmp / "out" / f"good-{goods.index(g)}.md").exists()
        folders = sum(1 for j in range(n_bad) if (src / f"bad-{j}.yaml").is_dir() and not
                      (src / f"bad-{j}.yaml").is_symlink())
        assert len(report.built) + len(report.failed) == len(goods) + n_bad - folders
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
