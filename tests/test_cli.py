"""The command line through click's runner: build, check, exit codes, nothing lost."""
from __future__ import annotations

import shutil

from click.testing import CliRunner

from generator.cli import main


def test_build_writes_md_tex_json(tmp_path, root):
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["build", str(root / "problems" / "mml-5.8.yaml"), "--out", str(out),
                                    "--format", "md,tex,json"])
    assert res.exit_code == 0, res.output
    for ext in ("md", "tex", "json"):
        assert (out / f"mml-5.8.{ext}").stat().st_size > 1000
    assert not (out / "mml-5.8.pdf").exists()
    assert "built 1 problem(s)" in res.output


def test_bad_format_is_usage_error(tmp_path, root):
    res = CliRunner().invoke(main, ["build", str(root / "problems"), "--format", "docx"])
    assert res.exit_code == 2
    assert "choose from md,tex,pdf,json" in res.output


def test_one_bad_problem_does_not_stop_the_others(tmp_path, root):
    src = tmp_path / "set"
    src.mkdir()
    shutil.copy(root / "problems" / "mml-5.8.yaml", src / "good.yaml")
    (src / "bad.yaml").write_text("id: bad\nsymbols: {D: dim, x: [D]}\ndefine: {f: x @ x}\nfind: df/dx\n")
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["build", str(src), "--out", str(out), "--format", "md,json"])
    assert res.exit_code == 1
    assert (out / "mml-5.8.md").exists()
    assert "1 problem(s) failed" in res.output
    assert "bad.yaml:3:15: define.f: (D×1) @ (D×1) do not conform" in res.output
    assert "Traceback" not in res.output


def test_unsupported_problem_fails_cleanly_and_keeps_old_output(tmp_path):
    p = tmp_path / "tensor.yaml"
    p.write_text("id: tensor\nsymbols: {D: dim, x: [D], A: [D, D]}\ndefine: {f: x.T @ inv(A) @ x}\n"
                 "find: df/dx\nmethod: componentwise\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "tensor.md").write_text("previous good output")
    res = CliRunner().invoke(main, ["build", str(p), "--out", str(out), "--format", "md"])
    assert res.exit_code == 1
    assert "tensor" in res.output
    assert (out / "tensor.md").read_text() == "previous good output"
    assert not [f for f in out.iterdir() if f.name.endswith(".tmp")]


def test_check_reports_file_line_col_with_caret(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("id: p\nsymbols: {D: dim, x: [D]}\ndefine:\n  f: x.T @ y\nfind: df/dx\n")
    res = CliRunner().invoke(main, ["check", str(p)])
    assert res.exit_code == 1
    lines = res.output.splitlines()
    assert lines[0] == f"{p}:4:12: define.f: undeclared name 'y'"
    assert lines[1] == "      f: x.T @ y"
    assert lines[2] == "    " + " " * 11 + "^"


def test_check_good_files(root):
    res = CliRunner().invoke(main, ["check", str(root / "problems")])
    assert res.exit_code == 0, res.output
    assert "OK" in res.output


def test_a_combined_document_without_title_is_named_in_words():
    from generator.assemble import title_of
    assert title_of("problem-set") == "Problem set"
    assert title_of("week_3-sheet") == "Week 3 sheet"
