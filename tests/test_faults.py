"""One bad file never stops the others (issue 10: items 1, 2, 3, 9; issue 9: a failing part).

Each bad kind of file costs one error line, no traceback; the good files are built,
the summary is printed, the exit status is 1; memory is bounded (measured under an
address-space limit in a subprocess) and a FIFO never blocks (checked with a timeout).
"""
from __future__ import annotations

import json
import os
import resource
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from generator import build as build_mod
from generator import files as files_mod
from generator.build import build
from generator.cli import main
from generator.render.pdf import have_tex

ROOT = Path(__file__).parent.parent

GOOD = "id: {id}\ntitle: {title}\nsymbols: {{D: dim, x: [D]}}\ndefine: {{f: {expr}}}\nfind: df/dx\n"
# a part whose derivation fails (componentwise is not for a scalar function of a matrix) beside a good one
TWO_PARTS = """\
id: two
parts:
  - symbols: {D: dim, x: [D]}
    define: {f: x.T @ x}
    find: df/dx
  - symbols: {D: dim, X: [D, D]}
    define: {f: log(det(X))}
    find: df/dX
    method: componentwise
"""
AS_LIMIT = 2 * 1024 ** 3        # bytes of address space for a whole build (imports included)


def good(folder: Path, name: str, id: str | None = None, expr: str = "x.T @ x", title: str = "T") -> Path:
    p = folder / f"{name}.yaml"
    p.write_text(GOOD.format(id=id or name, expr=expr, title=title), encoding="utf-8")
    return p


def stepgen(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """The command line in a subprocess, its address space limited: a file read whole would not fit."""
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))
    return subprocess.run([sys.executable, "-m", "generator.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, preexec_fn=limit,
                          env=dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1"))


def hostile_folder(folder: Path) -> dict[str, str]:
    """Good files and one file of each bad kind; returns {bad file name: what its line says}."""
    folder.mkdir()
    good(folder, "good1", title="From-good1")
    good(folder, "good2", expr="sum(exp(x))")
    os.mkfifo(folder / "fifo.yaml")
    (folder / "zero.yaml").symlink_to("/dev/zero")
    with open(folder / "sparse.yaml", "wb") as fh:
        fh.truncate(4 * 1024 ** 3)
    good(folder, "zz-dup", id="good1", title="From-dup")
    (folder / "surrogate.yaml").write_text('id: s\ntitle: "\\ud800"\nsymbols: {D: dim, x: [D]}\n'
                                           "define: {f: x.T @ x}\nfind: df/dx\n")
    good(folder, "long-id", id="a" * 300)
    (folder / "two.yaml").write_text(TWO_PARTS)
    return {"fifo.yaml": "is a FIFO", "zero.yaml": "symbolic link", "sparse.yaml": "larger than 256 KiB",
            "zz-dup.yaml": "is also used by", "surrogate.yaml": "surrogate", "long-id.yaml": "at most 100",
            "two.yaml": "part (b)"}


def lines_naming(text: str, name: str) -> list[str]:
    return [line for line in text.splitlines() if f"/{name}" in line]


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_folder_of_bad_files_builds_the_good_ones(tmp_path, jobs):
    bad = hostile_folder(tmp_path / "problems")
    out = tmp_path / "out"
    res = stepgen("build", str(tmp_path / "problems"), "--out", str(out), "--format", "md,json", "--jobs", jobs)
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    for name, says in bad.items():
        found = lines_naming(res.stderr, name)
        assert len(found) == 1 and says in found[0], (name, res.stderr)
    assert f"{len(bad)} problem(s) failed" in res.stderr and "built 2 problem(s)" in res.stderr
    for pid in ("good1", "good2", "two"):           # the good part of `two` is written
        assert (out / f"{pid}.md").stat().st_size > 500
    assert "From-good1" in (out / "good1.md").read_text()     # good1.yaml's, not its duplicate's
    cache = json.loads((out / ".stepgen-cache.json").read_text())
    assert sorted(Path(k).name for k in cache) == ["good1.yaml", "good2.yaml"]


def test_check_reports_each_bad_file_once(tmp_path):
    bad = hostile_folder(tmp_path / "problems")
    res = stepgen("check", str(tmp_path / "problems"), timeout=60)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    for name, says in bad.items():
        if name == "two.yaml":
            continue                                # loads fine: it fails only when derived
        assert says in "\n".join(lines_naming(res.stderr, name)), (name, res.stderr)


@pytest.mark.parametrize("command", ["check", "build", "show"])
def test_a_fifo_never_blocks(tmp_path, command):
    os.mkfifo(tmp_path / "f.yaml")
    args = [command, str(tmp_path / "f.yaml")] + (["--out", str(tmp_path / "out")] if command == "build" else [])
    res = stepgen(*args, timeout=30)
    assert res.returncode == 1 and "is a FIFO, not a regular file" in res.stderr and "Traceback" not in res.stderr


def test_files_are_checked_before_they_are_read(tmp_path):
    (tmp_path / "link").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "dir.yaml").mkdir()
    with open(tmp_path / "big", "wb") as fh:
        fh.truncate(10 ** 9)
    for name, says in [("link", "symbolic link"), ("fifo", "FIFO"), ("dir.yaml", "a folder"),
                       ("big", "larger than"), ("missing", "cannot read")]:
        with pytest.raises(files_mod.FileRefused, match=says):
            files_mod.read_limited(tmp_path / name, 1024)
    (tmp_path / "ok").write_bytes(b"12345")
    assert files_mod.read_limited(tmp_path / "ok", 5) == b"12345"
    with pytest.raises(files_mod.FileRefused, match="larger"):
        files_mod.read_limited(tmp_path / "ok", 4)


# --- duplicate ids, ids as written ----------------------------------------------------------

def test_duplicate_ids_write_only_the_first(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    good(src, "b", id="p", title="From-b")
    out = tmp_path / "out"
    assert not build([src], out, ("md",)).failed
    assert "From-b" in (out / "p.md").read_text()
    good(src, "a", id="p", title="From-a")    # sorts first: it is built, b is refused
    report = build([src], out, ("md",))
    assert report.failed == [(str(src / "b.yaml"), f"id 'p' is also used by {src / 'a.yaml'}, which is built; "
                                                   "not built (give this file another id)")]
    assert report.built == ["p"] and "From-a" in (out / "p.md").read_text()
    cache = json.loads((out / ".stepgen-cache.json").read_text())
    assert list(cache) == [str(src / "a.yaml")]       # b's entry is gone: p.md is not its output any more
    (src / "a.yaml").unlink()
    report = build([src], out, ("md",))
    assert report.built == ["p"] and not report.skipped and "From-b" in (out / "p.md").read_text()


def test_check_reports_duplicate_ids(tmp_path):
    good(tmp_path, "a", id="p")
    good(tmp_path, "b", id="p")
    res = CliRunner().invoke(main, ["check", str(tmp_path)])
    assert res.exit_code == 1
    assert f"{tmp_path / 'b.yaml'}: id 'p' is also used by {tmp_path / 'a.yaml'}" in res.output


@pytest.mark.parametrize("written, id", [("5.10", "5.10"), ("0777", "0777"), ("1e3", "1e3"), ("'07'", "07")])
def test_ids_are_read_as_written(tmp_path, written, id):
    p = tmp_path / "p.yaml"
    p.write_text(GOOD.format(id=written, expr="x.T @ x", title="T"))
    report = build([p], tmp_path / "out", ("md",))
    assert report.built == [id] and (tmp_path / "out" / f"{id}.md").exists()


def test_a_long_id_is_refused_at_its_place(tmp_path):
    p = good(tmp_path, "p", id="a" * 101)
    res = CliRunner().invoke(main, ["check", str(p)])
    assert res.exit_code == 1 and f"{p}:1:5: id: an id is at most 100 characters" in res.output
    assert "Traceback" not in res.output


# --- the net: any exception of one problem is its error line --------------------------------

@pytest.mark.parametrize("exc", [TypeError("sympy said no"), MemoryError(), RecursionError(),
                                 ValueError("Exceeds the limit (4300 digits)"),
                                 UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")])
def test_an_unexpected_exception_in_rendering_is_one_line(tmp_path, monkeypatch, exc):
    a, b = good(tmp_path, "a"), good(tmp_path, "b")
    real = build_mod.render_outputs

    def render(sol, *args, **kw):
        if sol.problem.id == "a":
            raise exc
        return real(sol, *args, **kw)

    monkeypatch.setattr(build_mod, "render_outputs", render)
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["build", str(a), str(b), "--out", str(out), "--format", "md,json"])
    assert res.exit_code == 1
    lines = [line.strip() for line in res.output.splitlines() if str(a) in line]
    assert len(lines) == 1 and lines[0].startswith(f"internal error in {a}: {type(exc).__name__}"), lines
    assert "Traceback" not in res.output and "built 1 problem(s)" in res.output
    assert (out / "b.md").exists() and not (out / "a.md").exists()
    assert list(json.loads((out / ".stepgen-cache.json").read_text())) == [str(b)]


def test_an_unexpected_exception_in_one_part_keeps_the_others(tmp_path, monkeypatch):
    from generator.calculus import chain
    p = tmp_path / "p.yaml"
    p.write_text(TWO_PARTS.replace("log(det(X))", "trace(X)").replace("    method: componentwise\n", ""))
    real = chain.solve_target

    def solve(part, target):
        if target.wrt == "X":
            raise TypeError("cannot determine truth value of Relational")
        return real(part, target)

    monkeypatch.setattr(chain, "solve_target", solve)
    report = build([p], tmp_path / "out", ("md", "json"))
    assert len(report.failed) == 1
    assert "part (b): internal error: TypeError: cannot determine truth value" in report.failed[0][1]
    assert "Could not be derived" in (tmp_path / "out" / "two.md").read_text()
    parts = json.loads((tmp_path / "out" / "two.json").read_text())["parts"]
    assert parts[0]["results"] and not parts[0]["error"] and not parts[1]["results"]


def test_check_survives_an_unexpected_exception(tmp_path, monkeypatch):
    from generator import spec
    a, b = good(tmp_path, "a"), good(tmp_path, "b")
    real = spec.load_problem

    def load(path):
        if Path(path).name == "a.yaml":
            raise RecursionError("maximum recursion depth exceeded")
        return real(path)

    monkeypatch.setattr(spec, "load_problem", load)
    res = CliRunner().invoke(main, ["check", str(tmp_path)])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert f"internal error in {a}: RecursionError: expression too deeply nested" in res.output
    assert str(b) not in res.output and "1 of 2 file(s) have errors" in res.output


def test_a_failing_part_keeps_the_other_parts(tmp_path):
    p = tmp_path / "two.yaml"
    p.write_text(TWO_PARTS)
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["build", str(p), "--out", str(out), "--format", "md,tex,json"])
    assert res.exit_code == 1
    assert f"{p}:8:11: parts[1].find: df/dX: part (b): componentwise" in res.output
    md = (out / "two.md").read_text()
    assert "> **Could not be derived:** `parts[1].find: df/dX: part (b): componentwise" in md
    assert str(tmp_path) not in md + (out / "two.tex").read_text() + (out / "two.json").read_text()
    assert "Could not be derived:} parts[1].find" in (out / "two.tex").read_text()
    parts = json.loads((out / "two.json").read_text())["parts"]
    assert parts[0]["results"] and parts[0]["error"] is None and parts[1]["error"]
    assert not (out / ".stepgen-cache.json").exists() or str(p) not in (out / ".stepgen-cache.json").read_text()


def test_a_problem_whose_only_part_fails_writes_nothing(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("id: p\nsymbols: {D: dim, X: [D, D]}\ndefine: {f: log(det(X))}\nfind: df/dX\n"
                 "method: componentwise\n")
    report = build([p], tmp_path / "out", ("md",))
    assert report.failed and not report.written and not (tmp_path / "out" / "p.md").exists()


# --- the output folder -------------------------------------------------------------------

def test_an_invalid_out_is_a_clean_error(tmp_path):
    (tmp_path / "file").write_text("x")
    p = good(tmp_path, "p")
    res = CliRunner().invoke(main, ["build", str(p), "--out", str(tmp_path / "file" / "sub")])
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit)
    assert "cannot write to the output folder" in res.output


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_out_is_a_clean_error(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    res = CliRunner().invoke(main, ["build", str(good(tmp_path, "p")), "--out", str(out)])
    assert res.exit_code == 1 and "cannot write to the output folder" in res.output and "Permission" in res.output


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_outputs_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        build([good(tmp_path, "p")], tmp_path / "out", ("md", "json"))
    finally:
        os.umask(old)
    for name in ("p.md", "p.json", ".stepgen-cache.json"):
        assert stat.S_IMODE((tmp_path / "out" / name).stat().st_mode) == mode, name


def test_stale_temporary_files_are_cleaned(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    dead = 4194305                     # above any pid_max: no such process
    stale = out / f".p.md.{dead}.0a1b2c3d.tmp"
    mine = out / f".q.md.{os.getpid()}.0a1b2c3d.tmp"      # a live build's: left alone
    other = out / "notes.tmp"
    for f in (stale, mine, other):
        f.write_text("x")
    build([good(tmp_path, "p")], out, ("md",))
    assert not stale.exists() and mine.exists() and other.exists()
    assert not [f for f in out.iterdir() if f.name.startswith(".p.md.")]


def test_outputs_are_replaced_together_or_not_at_all(tmp_path, monkeypatch):
    out = tmp_path / "out"
    p = good(tmp_path, "p")
    build([p], out, ("md", "json"))
    before = {f: (out / f).read_bytes() for f in ("p.md", "p.json")}
    good(tmp_path, "p", expr="sum(exp(x))")
    calls = []
    real = files_mod._temporary

    def full_disk(path, data):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(path, data)

    monkeypatch.setattr(files_mod, "_temporary", full_disk)
    report = build([p], out, ("md", "json"), )
    assert report.failed == [(str(p), f"cannot write the outputs into {out}: No space left on device")]
    assert {f: (out / f).read_bytes() for f in before} == before
    assert sorted(f.name for f in out.iterdir()) == [".stepgen-cache.json", "p.json", "p.md"]


@pytest.mark.skipif(not have_tex(), reason="no TeX")
def test_a_latex_failure_keeps_every_old_output(tmp_path):
    out = tmp_path / "out"
    p = good(tmp_path, "p")
    assert not build([p], out, ("md", "tex", "pdf", "json")).failed
    before = {f.name: f.read_bytes() for f in out.iterdir() if not f.name.startswith(".")}
    assert sorted(before) == ["p.json", "p.md", "p.pdf", "p.tex"]
    good(tmp_path, "p", title="Changed")
    tpl = tmp_path / "tpl"
    tpl.mkdir()
    (tpl / "solution.tex.j2").write_text('((* extends "!solution.tex.j2" *))((* block body *))\\undefinedmacro'
                                         '((* endblock *))')
    opts = build_mod.Options(out, ("md", "tex", "pdf", "json"), str(tpl))
    report = build([p], opts)
    assert "Undefined control sequence" in report.failed[0][1] and "kept the previous outputs" in report.failed[0][1]
    assert {f: (out / f).read_bytes() for f in before} == before            # all old, none new
    assert "undefinedmacro" in (out / "failed" / "p.tex").read_text() and (out / "failed" / "p.log").exists()
    assert not build([p], out, ("md", "tex", "pdf", "json")).failed           # fixed: all new, failed/ gone
    assert "Changed" in (out / "p.md").read_text() and not (out / "failed").exists()


# --- show and new --------------------------------------------------------------------------

def test_show_refuses_control_characters_and_prints_none(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text('id: p\ntitle: "\\e]0;owned\\a\\e[2J title \\u202e"\nstatement: "a\\rb"\n'
                 "symbols: {D: dim, x: [D]}\ndefine: {f: x.T @ x}\nfind: df/dx\n")
    res = CliRunner().invoke(main, ["show", str(p)])
    # refused at load (title and statement, each with its place), the quoted source made visible
    assert res.exit_code == 1, res.output
    assert "p.yaml:2:8: title:" in res.output and "p.yaml:3:12: statement:" in res.output
    assert not any(ch in res.output for ch in "\x1b\x07\r\u202e")


def test_check_error_lines_make_control_characters_visible(tmp_path):
    p = tmp_path / "p.yaml"
    # YAML refuses raw control characters; a bidi override passes it and is quoted with the caret
    p.write_text("id: p\nsymbols: {D: dim, x: [D]}\ndefine: {f: x.T @ x + \u202eq}\nfind: df/dx\n")
    res = CliRunner().invoke(main, ["check", str(p)])
    assert res.exit_code == 1 and "\u202e" not in res.output and "x.T @ x + \\u202eq" in res.output


def test_new_refuses_a_dangling_link(tmp_path):
    target = tmp_path / "elsewhere" / "x.txt"
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "p.yaml").symlink_to(target)
    res = CliRunner().invoke(main, ["new", "p", "--dir", str(tmp_path)])
    assert res.exit_code == 1 and "is a symbolic link; not overwritten" in res.output
    assert not target.exists()


def test_new_writes_with_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        res = CliRunner().invoke(main, ["new", "p", "--dir", str(tmp_path)])
    finally:
        os.umask(old)
    assert res.exit_code == 0 and stat.S_IMODE((tmp_path / "p.yaml").stat().st_mode) == 0o644
    assert CliRunner().invoke(main, ["check", str(tmp_path / "p.yaml")]).exit_code == 0


def test_a_fifo_in_the_templates_folder_is_not_read(tmp_path):
    tpl = tmp_path / "tpl"
    tpl.mkdir()
    os.mkfifo(tpl / "notes.j2")          # the cache hashes the folder: a FIFO must not block it
    res = stepgen("build", str(good(tmp_path, "p")), "--out", str(tmp_path / "out"), "--format", "md",
                  "--templates", str(tpl), timeout=60)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "out" / "p.md").exists()


def test_a_fifo_as_the_templates_labels_is_an_error_not_a_hang(tmp_path):
    tpl = tmp_path / "tpl"
    tpl.mkdir()
    os.mkfifo(tpl / "labels.yaml")
    res = stepgen("build", str(good(tmp_path, "p")), "--out", str(tmp_path / "out"), "--format", "md",
                  "--templates", str(tpl), timeout=60)
    assert res.returncode == 1 and "labels.yaml" in res.stdout + res.stderr and "FIFO" in res.stdout + res.stderr
    assert "Traceback" not in res.stdout + res.stderr


def test_a_control_character_is_one_line_with_its_place(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_bytes(b"id: p\ntitle: a\x00b\x1b[2J\n")
    res = CliRunner().invoke(main, ["check", str(p)])
    assert res.exit_code == 1
    assert res.output.splitlines()[0] == f"{p}:2:9: the control character U+0000 is not allowed"


@pytest.mark.skipif(__import__("multiprocessing").get_start_method() != "fork", reason="workers must inherit the patch")
def test_a_worker_that_dies_costs_only_its_file(tmp_path, monkeypatch):
    # the worker processes are forked: they inherit this patch, and the one building `crash` exits hard
    real = build_mod._solve_and_write

    def crash(one, problem, *args):
        if problem is not None and problem.id == "crash":
            os._exit(9)
        return real(one, problem, *args)

    monkeypatch.setattr(build_mod, "_solve_and_write", crash)
    files = [good(tmp_path, name) for name in ("a", "b", "crash", "d")]
    report = build(files, build_mod.Options(tmp_path / "out", ("md",), jobs=2))
    assert report.failed == [(str(tmp_path / "crash.yaml"), f"internal error in {tmp_path / 'crash.yaml'}: the "
                              "process building it ended abruptly (killed by the system, e.g. out of memory?)")]
    assert sorted(report.built) == ["a", "b", "d"]


def test_carets_line_up_after_wide_characters_tabs_and_escapes(tmp_path):
    p = tmp_path / "p.yaml"
    # two fullwidth characters (two columns each), a tab (shown as one space), a bidi override
    # (shown as the six characters \u202e) and a combining accent (no column) before the error
    p.write_text('id: p\nsymbols: {D: dim, x: [D]}\ndefine: {h: "全角\t\u202ee\u0301", f: q}\nfind: df/dx\n',
                 encoding="utf-8")
    res = CliRunner().invoke(main, ["check", str(p)])
    lines = res.output.splitlines()
    at = lines.index(next(l for l in lines if "undeclared name 'q'" in l))
    src, caret = lines[at + 1], lines[at + 2]
    assert src == '    define: {h: "全角 \\u202ee\u0301", f: q}'
    # the q is at character 34 of the shown line; on the terminal it is two columns further right
    # (the wide characters) and one to the left (the combining accent)
    assert src.index("q") == 34 and caret == " " * 35 + "^"


def test_one_file_named_twice_is_one_problem_not_a_duplicate_id(tmp_path):
    probs = tmp_path / "p"
    probs.mkdir()
    a = good(probs, "a")
    same = [str(a), str(a), str(probs / ".." / "p" / "a.yaml"), str(probs)]
    res = CliRunner().invoke(main, ["build", *same, "--out", str(tmp_path / "out"), "--format", "md"])
    assert res.exit_code == 0, res.output
    assert "also used by" not in res.output and "built 1 problem(s)" in res.output
    res = CliRunner().invoke(main, ["check", *same])
    assert res.exit_code == 0 and "1 file(s) OK" in res.output
    # two files with one id are still two files
    good(probs, "b", "a")
    res = CliRunner().invoke(main, ["check", *same])
    assert res.exit_code == 1 and "also used by" in res.output


def _children(pid: int) -> set[int]:
    res = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return {int(p) for p in res.stdout.split()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return "Z" not in subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True).stdout


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_workers_of_a_killed_build_end_and_a_rebuild_is_whole(tmp_path, sig):
    # SIGKILL: the build cannot end its workers itself; SIGTERM (a cancelled CI job): it ends them
    # at once, not after finishing the whole build
    probs = tmp_path / "p"
    probs.mkdir()
    slow = " * ".join(f"(1 + sin({i} * x.T @ x) / 8)" for i in range(40))     # many seconds to solve
    good(probs, "slow1", expr=f'"{slow}"')
    good(probs, "slow2", expr=f'"{slow} + 1"')
    good(probs, "quick")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "generator.cli", "build", str(probs), "--out", str(out), "--format", "md,json",
           "-j", "2", "--timeout", "30"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while len(workers := _children(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(workers) == 2
        time.sleep(1)
    finally:
        proc.send_signal(sig)
        try:    # well before the slow problems could finish (minutes), with room for a loaded machine
            proc.wait(timeout=30)
        finally:
            proc.kill()
    deadline = time.monotonic() + 10
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [w for w in workers if _alive(w)]
    for w in left:
        os.kill(w, 9)
    assert not left, "the workers of a killed build kept running"
    # the rebuild builds what the killed one did not write, and leaves no temporary file
    # (5 s: quick must import SymPy and solve in time on a loaded machine; the slow ones take minutes)
    res = stepgen("build", str(probs), "--out", str(out), "--format", "md,json", "--timeout", "5")
    assert res.returncode == 1 and "time limit" in res.stdout + res.stderr
    assert (out / "quick.md").exists() and (out / "quick.json").exists()
    assert not [p.name for p in out.iterdir() if ".tmp" in p.name]


@pytest.mark.parametrize("name", ["all", "all-sheet"])
def test_a_combined_document_never_overwrites_a_problem(tmp_path, name):
    probs = tmp_path / "p"
    probs.mkdir()
    good(probs, "other", title="Other")
    good(probs, "mine", id=name, title="Mine")
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["build", str(probs), "--out", str(out), "--format", "md",
                                    "--combine", "all", "--sheets", "both"])
    assert res.exit_code == 1
    assert f"mine.yaml: id '{name}': its outputs would be named like the combined document" in res.output
    # the combined documents are whole, and hold the other problem only
    for stem in ("all", "all-sheet"):
        text = (out / f"{stem}.md").read_text()
        assert text.startswith("# All\n") and "Other" in text and "Mine" not in text
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".md") == \
        ["all-sheet.md", "all.md", "other-sheet.md", "other.md"]
