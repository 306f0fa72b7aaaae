"""One real PDF, compiled by TeX Live without shell escape."""
from __future__ import annotations

import os
import subprocess

import pytest

from generator.build import build
from generator.render.pdf import have_tex


def test_pdf_compiles(tmp_path, root):
    if not have_tex():
        if os.environ.get("CI"):
            pytest.fail("TeX Live is missing in CI: .ci/run must install it")
        pytest.skip("no TeX installation")
    report = build([root / "problems" / "mml-5.8.yaml"], tmp_path, ("tex", "pdf"))
    assert not report.failed, report.failed
    pdf = (tmp_path / "mml-5.8.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and len(pdf) > 10000
    if subprocess.run(["which", "pdftotext"], capture_output=True).returncode == 0:
        text = subprocess.run(["pdftotext", str(tmp_path / "mml-5.8.pdf"), "-"], capture_output=True,
                              text=True).stdout
        assert "Checked numerically" in text and "Quadratic form" in text


def test_every_problem_of_the_bank_compiles(tmp_path, root):
    if not have_tex():
        if os.environ.get("CI"):
            pytest.fail("TeX Live is missing in CI: .ci/run must install it")
        pytest.skip("no TeX installation")
    report = build([root / "problems"], tmp_path, ("pdf",))
    assert not report.failed, report.failed
    assert len(list(tmp_path.glob("*.pdf"))) == len(list((root / "problems").rglob("*.yaml")))
