"""Hostile problem files: a clean error or a safe document, in bounded time; nothing executed,
nothing read from the machine, nothing lost."""
from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from generator import build as build_mod
from generator.build import build, write_atomic
from generator.cli import main
from generator.errors import ProblemErrors
from generator.render.pdf import have_tex
from generator.spec import load_problem
from generator.texsafe import check_math, markdown_to_latex

GOOD = """\
id: {id}
title: {title}
statement: {statement}
symbols: {{D: dim, x: [D]}}
define:
  f: {expr}
find: df/dx
"""


def write(tmp_path, name="p.yaml", id="p", title="T", statement="S", expr="x.T @ x"):
    p = tmp_path / name
    p.write_text(GOOD.format(id=id, title=title, statement=statement, expr=expr), encoding="utf-8")
    return p


def load_errors(path) -> str:
    with pytest.raises(ProblemErrors) as info:
        load_problem(path)
    return str(info.value)


# --- no code execution -------------------------------------------------------------

@pytest.mark.parametrize("expr, what", [
    ("__import__('os').system('touch PWNED')", "only calls of named functions"),
    ("__import__('os')", "not allowed"),
    ("x.__class__", "attribute access"),
    ("(lambda: x)()", "only calls of named functions"),
    ("[x for _ in ones(D)]", "comprehension"),
    ("x[0]", "subscript"),
    ("exp(x=x)", "keyword arguments"),
    ("eval('1')", "unknown function 'eval'"),
    ("open('/etc/passwd')", "unknown function 'open'"),
    ("exec", "undeclared name"),
])
def test_code_is_never_run(tmp_path, expr, what, monkeypatch):
    monkeypatch.chdir(tmp_path)
    msg = load_errors(write(tmp_path, expr=f'"{expr}"'))
    assert what in msg and "define.f" in msg
    assert not (tmp_path / "PWNED").exists()


def test_unsafe_yaml_tags_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = tmp_path / "p.yaml"
    p.write_text("id: !!python/object/apply:os.system ['touch PWNED']\n")
    assert "unsupported YAML tag" in load_errors(p)
    assert not (tmp_path / "PWNED").exists()


def test_no_eval_in_the_package():
    root = Path(__file__).parent.parent / "generator"
    for f in root.rglob("*.py"):
        text = f.read_text()
        for bad in ("eval(", "exec(", "sympify(", "parse_expr(", "yaml.load(", "pickle", "shell-escape "):
            assert bad not in text.replace("no-shell-escape", ""), (f, bad)


# --- TeX injection ---------------------------------------------------------------------

ATTACKS = [
    r"\input{/etc/hostname}", r"\include{/etc/hostname}", r"\openin5=/etc/hostname",
    r"\read5 to \x", r"\write18{touch PWNED}", r"\immediate\write18{touch PWNED}",
    r"\catcode`\^^M=13", r"\def\x{1}", r"\csname input\endcsname{/etc/hostname}", r"^^5cinput{/etc/hostname}",
    r"\expandafter\input\string", r"\newcommand\x{1}", r"\usepackage{verbatim}", r"\verb|x|",
    r"\begin{verbatim}", r"\end{document}", r"\makeatletter", r"\let\x\input",
]


@pytest.mark.parametrize("attack", ATTACKS)
def test_math_whitelist_refuses(attack):
    assert check_math(attack) is not None


@pytest.mark.parametrize("attack", ATTACKS)
def test_statement_text_and_math_are_neutralised(attack):
    tex = markdown_to_latex(f"Text {attack} and math ${attack}$ and $$ {attack} $$")
    # every backslash from the file is printed, never interpreted
    assert "\\input" not in tex.replace(r"\textbackslash{}input", "")
    assert "\\write" not in tex.replace(r"\textbackslash{}write", "")
    assert "^^" not in tex.replace(r"\textasciicircum{}\textasciicircum{}", "")


def test_symbol_latex_override_is_checked(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("id: p\nsymbols: {D: dim, x: {shape: [D], latex: '\\input{/etc/hostname}'}}\n"
                 "define: {f: x.T @ x}\nfind: df/dx\n")
    assert "symbols.x.latex: the command \\input is not allowed" in load_errors(p)


@pytest.mark.skipif(not have_tex(), reason="no TeX")
def test_hostile_statement_gives_a_safe_pdf(tmp_path):
    # text outside math is printed; math with a command off the list is refused at load (test_texsafe.py)
    statement = ("'Read \\input{/etc/hostname} and \\csname input\\endcsname{/etc/hostname} "
                 "and ^^5cinput{/etc/hostname} and \\write18{touch PWNED} — done ✓'")
    p = write(tmp_path, statement=statement, title="'\\input{/etc/hostname} # $ % & _ {'")
    assert "\\input is not allowed" in load_errors(write(tmp_path, name="q.yaml", statement="'$\\input{/etc/hostname}$'"))
    out = tmp_path / "out"
    report = build([p], out, ("tex", "pdf"))
    assert not report.failed, report.failed
    text = subprocess.run(["pdftotext", str(out / "p.pdf"), "-"], capture_output=True, text=True).stdout
    secret = Path("/etc/hostname").read_text().strip() if Path("/etc/hostname").exists() else socket.gethostname()
    assert secret and secret not in text
    assert "input{/etc/hostname}" in text      # shown, not run
    assert not (tmp_path / "PWNED").exists() and not (out / "PWNED").exists()


# --- bounded work ------------------------------------------------------------------------

def timed(fn):
    start = time.monotonic()
    result = fn()
    return result, time.monotonic() - start


def test_yaml_alias_bomb(tmp_path):
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 10):
        prev = chr(ord("a") + i - 1)
        cur = chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]")
    p = tmp_path / "bomb.yaml"
    p.write_text("\n".join(lines) + "\n")
    msg, secs = timed(lambda: load_errors(p))
    assert "too large" in msg and secs < 5


def test_file_size_limit(tmp_path):
    p = tmp_path / "big.yaml"
    p.write_text("title: " + "x" * 400_000 + "\n")
    assert "larger than" in load_errors(p)


@pytest.mark.parametrize("expr", [
    "(" * 3000 + "x.T @ x" + ")" * 3000,
    "-" * 3000 + "x.T @ x",
    " + ".join(["x.T @ x"] * 3000),
    "exp(" * 500 + "x.T @ x" + ")" * 500,
    "(x.T @ x)**99999999",
    "(x.T @ x)**(64**64)",
])
def test_huge_expressions_end_quickly(tmp_path, expr):
    p = write(tmp_path, expr=f'"{expr}"')

    def attempt():
        try:
            problem = load_problem(p)
        except ProblemErrors as exc:
            return str(exc)
        sol = build_mod.solve_problem(problem, timeout=10)
        return "; ".join(sol.failed) or "solved"

    msg, secs = timed(attempt)
    assert secs < 15, msg
    assert "Traceback" not in msg


def test_exponential_definitions_are_refused(tmp_path):
    defs = "\n".join(f"  z{i}: z{i + 1} * z{i + 1}" for i in range(40))
    p = tmp_path / "p.yaml"
    p.write_text(f"id: p\nsymbols: {{D: dim, x: [D]}}\ndefine:\n  f: z0\n{defs}\n  z40: x.T @ x\nfind: df/dx\n")
    problem = load_problem(p)
    sol, secs = timed(lambda: build_mod.solve_problem(problem, timeout=10))
    assert sol.failed and secs < 15
    assert "grows past" in sol.failed[0] or "time limit" in sol.failed[0]


def test_time_limit_reports_the_problem(tmp_path, monkeypatch):
    p = write(tmp_path)
    problem = load_problem(p)

    def slow(problem):
        while True:
            time.sleep(0.01)

    monkeypatch.setattr(build_mod, "_solve", slow)
    sol, secs = timed(lambda: build_mod.solve_problem(problem, timeout=0.5))
    assert "time limit" in sol.failed[0] and secs < 5


# --- bad bytes and structure ---------------------------------------------------------------

@pytest.mark.parametrize("content, message", [
    (b"id: p\ntitle: \xff\xfe\n", "invalid UTF-8"),
    (b"- a\n- b\n", "a problem file holds a mapping"),
    (b"id: p\nsymbols: {D: dim, x: [D]}\nfind: df/dx\n", "define is missing"),
    (b"id: p\nid: q\n", "duplicate key 'id'"),
    (b"id: p\nsymbols: [D, x]\ndefine: {f: x}\nfind: df/dx\n", "symbols is a mapping"),
    (b"id: p\nsymbols: {D: dim, x: [D]}\ndefine: [f, x]\nfind: df/dx\n", "define is a mapping"),
    (b"", "the file is empty"),
    (b"id: p\n\tbad: tab\n", "invalid YAML"),
    (b"[" * 5000, "invalid YAML"),
])
def test_bad_bytes_and_structure(tmp_path, content, message):
    p = tmp_path / "p.yaml"
    p.write_bytes(content)
    msg = load_errors(p)
    assert message in msg
    assert str(p) in msg


# --- nothing lost ---------------------------------------------------------------------------

def test_interrupted_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "x.md"
    target.write_text("old")

    def boom(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, b"new")
    assert target.read_text() == "old"
    assert [f.name for f in tmp_path.iterdir()] == ["x.md"]


@pytest.mark.skipif(not have_tex(), reason="no TeX")
def test_latex_failure_names_the_problem_and_keeps_tex_and_log(tmp_path):
    tpl = tmp_path / "tpl"
    tpl.mkdir()
    (tpl / "solution.tex.j2").write_text('((* extends "!solution.tex.j2" *))((* block body *))\\undefinedmacro((* endblock *))')
    p = write(tmp_path, id="broken")
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["build", str(p), "--out", str(out), "--templates", str(tpl)])
    assert res.exit_code == 1
    assert "broken: LaTeX failed: ! Undefined control sequence." in res.output
    # nothing of the problem is replaced; what TeX could not compile is kept under failed/
    assert (out / "failed" / "broken.tex").exists() and (out / "failed" / "broken.log").exists()
    assert not any((out / f"broken.{ext}").exists() for ext in ("md", "tex", "pdf", "json"))


def test_many_dead_end_definitions_end_quickly(tmp_path):
    # a lattice of definitions that never reach x: walking it path by path would take 2**30 steps
    lines = ["id: p", "symbols: {D: dim, x: [D], c: scalar}", "define:", "  f: x.T @ x + a0"]
    for i in range(30):
        lines.append(f"  a{i}: b{i} + e{i}")
        lines.append(f"  b{i}: a{i + 1}")
        lines.append(f"  e{i}: a{i + 1} * 2")
    lines += ["  a30: c", "find: df/dx"]
    p = tmp_path / "p.yaml"
    p.write_text("\n".join(lines) + "\n")
    problem = load_problem(p)
    sol, secs = timed(lambda: build_mod.solve_problem(problem, timeout=10))
    assert secs < 10
    assert not sol.failed or "time limit" not in sol.failed[0]


def test_html_in_titles_is_escaped_in_markdown(tmp_path):
    out = tmp_path / "out"
    p = write(tmp_path, title="'<script>alert(1)</script>'")
    report = build([p], out, ("md", "tex"))
    assert not report.failed, report.failed
    md = (out / "p.md").read_text()
    assert "<script>" not in md and "&lt;script&gt;" in md
    assert r"\textless{}script\textgreater{}" in (out / "p.tex").read_text()


def test_symbolic_links_are_not_followed(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("id: p\ntitle: TOP SECRET LINE\n  bad indentation here\n")
    probs = tmp_path / "problems"
    probs.mkdir()
    (probs / "link.yaml").symlink_to(secret)
    (probs / "dirlink").symlink_to(tmp_path, target_is_directory=True)
    res = CliRunner().invoke(main, ["check", str(probs)])
    assert res.exit_code == 1
    assert "symbolic link" in res.output and "TOP SECRET" not in res.output


def test_large_literal_sizes_are_checked_small(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("id: p\nsymbols: {x: [10000], A: [10000, 10000]}\ndefine: {f: x.T @ A @ x}\nfind: df/dx\n")
    sol, secs = timed(lambda: build_mod.solve_problem(load_problem(p), timeout=20))
    assert not sol.failed, sol.failed
    assert secs < 10


def test_a_flat_sum_or_product_is_not_deep(tmp_path):
    # 62 terms side by side are one level of the tree; the limit on depth is for nesting
    terms = " + ".join(f"{i % 7 + 1} * x.T @ x" for i in range(62))
    sol = build_mod.solve_problem(load_problem(write(tmp_path, expr=f'"{terms}"')), timeout=30)
    assert not sol.failed, sol.failed
    factors = " * ".join(f"(1 + sin({i} * x.T @ x) / 8)" for i in range(62))
    assert load_problem(write(tmp_path, expr=f'"{factors}"')).parts[0].define[0].expr.op == "mul"
    # a chain that really nests (each * of two arrays is a Hadamard product of the one before)
    deep = " * ".join(["x"] * 62)
    assert "nested more than 60 deep" in load_errors(write(tmp_path, expr=f'"{deep}"'))


def test_templates_cannot_reach_python_internals(tmp_path):
    tpl = tmp_path / "tpl"
    tpl.mkdir()
    (tpl / "solution.md.j2").write_text("{{ ''.__class__.__mro__[1].__subclasses__() }}")
    out = tmp_path / "out"
    report = build([write(tmp_path)], out, ("md",), templates=str(tpl))
    assert report.failed and "access to attribute '__class__' of 'str' object is unsafe" in report.failed[0][1]
    assert not (out / "p.md").exists()
