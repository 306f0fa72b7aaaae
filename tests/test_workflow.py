"""The instructor's workflow: new, check, show, schema, combined documents, sheets, templates,
parallel builds, the rebuild cache and deterministic output."""
from __future__ import annotations

import json
import shutil
import struct
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from generator.cli import main
from generator.render.pdf import have_tex

ROOT = Path(__file__).parent.parent


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def small_set(tmp_path) -> Path:
    src = tmp_path / "set"
    (src / "vector").mkdir(parents=True)
    shutil.copy(ROOT / "problems" / "mml-5.8.yaml", src / "mml-5.8.yaml")
    shutil.copy(ROOT / "problems" / "vector" / "linear-form.yaml", src / "vector" / "linear-form.yaml")
    return src


def test_new_check_build(tmp_path):
    res = run("new", "my-first", "--dir", tmp_path)
    assert res.exit_code == 0, res.output
    path = tmp_path / "my-first.yaml"
    text = path.read_text()
    assert text.startswith("# yaml-language-server: $schema=")
    assert run("check", path).exit_code == 0
    res = run("build", path, "--out", tmp_path / "out", "--format", "md,json")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out" / "my-first.md").exists()
    assert run("new", "my-first", "--dir", tmp_path).exit_code == 1     # never overwrites


def test_show_prints_the_solution(root):
    res = run("show", root / "problems" / "vector" / "quadratic-form.yaml")
    assert res.exit_code == 0, res.output
    assert "Quadratic form [MML (5.107)" in res.output
    assert "result: df/dx = 2 * x.T @ B" in res.output
    assert "checked: 3 random points" in res.output


def test_schema_is_json_schema():
    res = run("schema")
    schema = json.loads(res.output)
    assert schema["type"] == "object"
    assert set(schema["properties"]) >= {"id", "symbols", "define", "find", "parts", "method", "layout"}


def test_combined_solutions_and_sheet_from_one_run(tmp_path):
    out = tmp_path / "out"
    res = run("build", small_set(tmp_path), "--out", out, "--format", "md,tex,json", "--combine", "week1",
              "--title", "Week 1", "--sheets", "both")
    assert res.exit_code == 0, res.output
    solutions, sheet = (out / "week1.md").read_text(), (out / "week1-sheet.md").read_text()
    assert solutions.startswith("# Week 1") and "Derivatives with the chain rule" in solutions
    assert "A linear form" in solutions and "Checked numerically" in solutions
    assert "A linear form" in sheet and "Checked numerically" not in sheet and "Result" not in sheet
    tex = (out / "week1.tex").read_text()
    assert r"\tableofcontents" in tex and r"\maketitle" in tex
    assert (out / "mml-5.8-sheet.md").exists() and (out / "mml-5.8.json").exists()
    assert not (out / "mml-5.8-sheet.json").exists()


def test_rebuild_skips_unchanged_and_rebuilds_the_edited(tmp_path):
    src, out = small_set(tmp_path), tmp_path / "out"
    assert "built 2 problem(s)" in run("build", src, "--out", out, "--format", "md,json").output
    assert "built 0 problem(s) into" in run("build", src, "--out", out, "--format", "md,json").output
    f = src / "vector" / "linear-form.yaml"
    f.write_text(f.read_text().replace("title: A linear form", "title: A linear form, edited"))
    res = run("build", src, "--out", out, "--format", "md,json")
    assert "built 1 problem(s)" in res.output and "1 unchanged" in res.output
    assert "edited" in (out / "linear-form.md").read_text()
    (out / "mml-5.8.md").unlink()       # a missing output is rebuilt
    assert "built 1 problem(s)" in run("build", src, "--out", out, "--format", "md,json").output
    assert "built 2 problem(s)" in run("build", src, "--out", out, "--format", "md,json", "--force").output


def test_parallel_build_gives_the_same_files(tmp_path):
    src = small_set(tmp_path)
    a, b = tmp_path / "a", tmp_path / "b"
    assert run("build", src, "--out", a, "--format", "md,tex,json").exit_code == 0
    assert run("build", src, "--out", b, "--format", "md,tex,json", "--jobs", "2").exit_code == 0
    for f in a.glob("*.*"):
        if f.name != ".stepgen-cache.json":
            assert f.read_bytes() == (b / f.name).read_bytes(), f.name


def test_templates_override_a_block_and_one_rule(tmp_path):
    tpl = tmp_path / "tpl"
    (tpl / "steps").mkdir(parents=True)
    (tpl / "result.md.j2").write_text(
        '{% extends "!result.md.j2" %}\n{% block convention %}**Konvention.** Zählerlayout.\n{% endblock %}\n')
    (tpl / "steps" / "identity.md.j2").write_text("{{ '  ' * (step.depth - 1) }}- IDENTITÄT: ${{ step.equation }}$\n")
    out = tmp_path / "out"
    res = run("build", ROOT / "problems" / "mml-5.8.yaml", "--out", out, "--format", "md", "--templates", tpl)
    assert res.exit_code == 0, res.output
    md = (out / "mml-5.8.md").read_text()
    assert "**Konvention.** Zählerlayout." in md and "Numerator layout" not in md
    assert "- IDENTITÄT:" in md
    assert "Checked numerically" in md          # the rest is the built-in template


def test_broken_template_is_a_clean_error(tmp_path):
    tpl = tmp_path / "tpl"
    tpl.mkdir()
    (tpl / "result.md.j2").write_text("{% block x %}unclosed")
    res = run("build", ROOT / "problems" / "mml-5.8.yaml", "--out", tmp_path / "o", "--format", "md",
              "--templates", tpl)
    assert res.exit_code == 1
    assert "result.md.j2:1: Unexpected end of template" in res.output and "Traceback" not in res.output


def _png(path: Path) -> None:
    raw = b"\x00\xff\x00\x00"
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.mark.skipif(not have_tex(), reason="no TeX")
def test_course_logo_and_two_builds_give_identical_pdfs(tmp_path):
    tpl = tmp_path / "tpl"
    tpl.mkdir()
    _png(tpl / "logo.png")
    (tpl / "problem.tex.j2").write_text(
        '((* extends "!problem.tex.j2" *))((* block header *))\\includegraphics[width=1cm]{logo.png}'
        '\\hfill Course MML 101\\par((( super() )))((* endblock *))')
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        res = run("build", ROOT / "problems" / "vector" / "linear-form.yaml", "--out", out, "--templates", tpl)
        assert res.exit_code == 0, res.output
    assert (a / "linear-form.pdf").read_bytes() == (b / "linear-form.pdf").read_bytes()
    assert "Course MML 101" in (a / "linear-form.tex").read_text()


def test_shards_build_disjoint_shares_and_combine_assembles_them(tmp_path):
    src = small_set(tmp_path)
    shutil.copy(ROOT / "problems" / "vector" / "distance.yaml", src / "vector" / "distance.yaml")
    outs = []
    for k in (1, 2):
        out = tmp_path / f"shard{k}"
        res = run("build", src, "--out", out, "--format", "md,tex", "--shard", f"{k}/2")
        assert res.exit_code == 0, res.output
        outs.append(out)
    built = [sorted(f.stem for f in o.glob("*.md")) for o in outs]
    assert not set(built[0]) & set(built[1])
    assert sorted(built[0] + built[1]) == ["distance", "linear-form", "mml-5.8"]
    res = run("combine", *outs, "--name", "all", "--title", "All of it", "--out", tmp_path / "final",
              "--format", "md,tex")
    assert res.exit_code == 0, res.output
    md = (tmp_path / "final" / "all.md").read_text()
    assert md.startswith("# All of it") and "## Euclidean distance" in md and "## A linear form" in md
    tex = (tmp_path / "final" / "all.tex").read_text()
    assert tex.count(r"\section{") == 3 and r"\tableofcontents" in tex
    assert run("build", src, "--shard", "3/2").exit_code == 2


def test_labels_translate_the_documents(tmp_path):
    tpl = tmp_path / "tpl"
    tpl.mkdir()
    (tpl / "labels.yaml").write_text("derivative: Die Ableitung\nresult: Ergebnis.\nchecked: Numerisch geprüft\n"
                                     "part: Teil\n", encoding="utf-8")
    out = tmp_path / "out"
    res = run("build", ROOT / "problems" / "mml-5.8.yaml", "--out", out, "--format", "md,tex", "--templates", tpl)
    assert res.exit_code == 0, res.output
    md, tex = (out / "mml-5.8.md").read_text(), (out / "mml-5.8.tex").read_text()
    assert "## Teil (a)" in md and "### Die Ableitung" in md and "**Ergebnis.**" in md
    assert "**Numerisch geprüft:**" in md and "Convention." in md      # the rest stays English
    assert r"\subsubsection*{Die Ableitung" in tex and r"\textbf{Ergebnis.}" in tex
