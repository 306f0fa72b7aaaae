"""Layout: long formulas are broken on the expression tree, and no document runs off the page."""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from generator import expr as ex
from generator.build import Options, build, render_outputs, solve_problem
from generator.printing import LatexPrinter, latex_width
from generator.render.pdf import have_tex
from generator.spec import load_problem

D = 4
x, y = ex.sym("x", (D, 1)), ex.sym("y", (D, 1))
X = ex.sym("X", (D, D))


def _long_sum(n: int) -> ex.Expr:
    """A sum of n long terms: y ⊙ log(σ(X x + y)) ⊙ ..., as in a cross-entropy."""
    inner = ex.add(ex.matmul(X, x), y)
    return ex.add(*[ex.hadamard(y, ex.fn("log", ex.fn("sigmoid", ex.power(inner, ex.num(k + 2)))))
                    for k in range(n)])


def _one_line(latex: str) -> str:
    """An aligned block read back as one line: the rows joined, the brackets that span rows as \\left( \\right)."""
    s = re.sub(r"\\(begin|end)\{aligned\}|&\\qquad \{\} |&\\qquad |& |\\\\ ", "", latex)
    s = re.sub(r"\\[bB]igl\(", r"\\left(", s)
    s = re.sub(r"\\[bB]igr\)", r"\\right)", s)
    return re.sub(r"\s+", " ", s).strip()


@pytest.mark.parametrize("n", [1, 3, 6, 12])
def test_a_long_sum_is_broken_into_rows_that_fit(n):
    P = LatexPrinter()
    e = _long_sum(n)
    one = P(e)
    out = P.equation("f", e, 30)
    rows = re.sub(r"\\(begin|end)\{aligned\}", "", out).split(r" \\ ")
    if latex_width("f = " + one) <= 30:
        assert rows == [out] and "aligned" not in out
    else:
        assert len(rows) > 1
        assert all(latex_width(r) <= 30 for r in rows), [latex_width(r) for r in rows]
    # nothing lost or reordered: the rows read back as the one-line formula
    assert _one_line(out) == re.sub(r"\s+", " ", "f = " + one)


def test_a_long_factor_is_broken_inside_its_brackets():
    P = LatexPrinter()
    e = ex.matmul(ex.transpose(_long_sum(4)), X)          # (long sum)ᵀ X
    rows = P.lines(e, 25)
    assert len(rows) > 1
    assert rows[0].startswith(r"\bigl(") and rows[-1].endswith(r"\bigr)^\top \mathbf{X}")
    assert all(r.count(r"\left(") == r.count(r"\right)") for r in rows)   # \left...\right never spans rows


def test_breaks_prefer_the_top_level_sum():
    P = LatexPrinter()
    terms = [ex.fn("exp", ex.matmul(X, x)), ex.fn("tanh", y), ex.matmul(X, y)]
    e = ex.add(*terms * 4)
    rows = P.lines(e, 20)
    assert len(rows) > 1
    # each row is whole terms: no bracket opened on one row and closed on another
    assert not any(re.search(r"\\[bB]igl\(", r) for r in rows)
    assert all(r.startswith(("+", "-")) for r in rows[1:])


def _overfull(log: str, limit: float) -> list[str]:
    return [m.group(0) for m in re.finditer(r"Overfull \\hbox \((\d+(?:\.\d+)?)pt too wide\)[^\n]*", log)
            if float(m.group(1)) > limit]


def test_no_bank_document_runs_off_the_page(tmp_path, root):
    """Every bank document (each problem and the combined set) compiles with no line wider than the
    text by more than 5pt (TeX's 'Overfull \\hbox' in the log)."""
    if not have_tex():
        if os.environ.get("CI"):
            pytest.fail("TeX Live is missing in CI")
        pytest.skip("no TeX installation")
    report = build([root / "problems"], Options(tmp_path / "out", ("tex",), combine="bank"))
    assert not report.failed, report.failed
    texs = sorted((tmp_path / "out").glob("*.tex"))
    assert len(texs) == len(list((root / "problems").rglob("*.yaml"))) + 1
    bad = []
    work = tmp_path / "tex"
    work.mkdir()
    for tex in texs:
        shutil.copy(tex, work / tex.name)
        subprocess.run(["pdflatex", "-no-shell-escape", "-interaction=nonstopmode", "-halt-on-error", tex.name],
                       cwd=work, capture_output=True, timeout=300, stdin=subprocess.DEVNULL)
        log = (work / (tex.stem + ".log")).read_text(encoding="utf-8", errors="replace")
        assert "Output written" in log, f"{tex.name} did not compile"
        bad += [f"{tex.name}: {line}" for line in _overfull(log, 5.0)]
    assert not bad, "\n".join(bad)


LOGISTIC = """
id: logistic-regression
symbols: {N: dim, D: dim, X: [N, D], w: [D], y: [N]}
define:
  L: -sum(y * log(sigmoid(z)) + (1 - y) * log(1 - sigmoid(z)))
  z: X @ w
find: [dL/dw, d2L/dw2]
"""


def test_markdown_breaks_long_formulas_too(tmp_path):
    (tmp_path / "p.yaml").write_text(LOGISTIC)
    md = render_outputs(solve_problem(load_problem(tmp_path / "p.yaml")), ["md"])["md"].decode()
    blocks = re.findall(r"\$\$\n\s*(.*?)\n\s*\$\$", md, re.S)
    assert any("aligned" in b for b in blocks)
    for block in blocks:
        for row in block.split(r" \\ "):
            assert latex_width(row) <= 40, row


def _outputs(tmp_path, text: str, formats=("md", "tex")) -> dict[str, str]:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return {k: v.decode() for k, v in render_outputs(solve_problem(load_problem(path)), list(formats)).items()}


def test_the_convention_is_stated_once_per_document(root):
    sol = solve_problem(load_problem(root / "problems" / "mml-5.8.yaml"))      # three parts, one layout
    out = render_outputs(sol, ["md", "tex"])
    assert out["md"].decode().count("**Convention.**") == 1
    assert out["tex"].decode().count(r"\textbf{Convention.}") == 1


def test_the_convention_is_stated_again_where_the_layout_changes(tmp_path):
    out = _outputs(tmp_path, """
id: layouts
symbols: {D: dim, x: [D], a: [D]}
parts:
  - {id: a, define: {f: a.T @ x}, find: df/dx}
  - {id: b, define: {f: a.T @ x}, find: df/dx, layout: denominator}
  - {id: c, define: {f: x.T @ x}, find: df/dx, layout: denominator}
""")
    md = out["md"]
    assert md.count("**Convention.** Numerator layout") == 1 and md.count("**Convention.** Denominator layout") == 1


SHARED = """
id: shared
symbols: {M: dim, N: dim, W: [M, N], x: [N], y: [M], b: [M]}
define:
  L: -y.T @ log(p)
  p: exp(f) / sum(exp(f))
  f: W @ x + b
find: [dL/dW, dL/db]
"""


def test_a_partial_shared_by_two_finds_is_derived_once_and_referred_to(tmp_path):
    out = _outputs(tmp_path, SHARED)
    tex, md = out["tex"], out["md"]
    # ∂L/∂p and ∂p/∂f: derived for dL/dW, referred to by their equation numbers for dL/db
    assert tex.count(r"\paragraph{$\partial L / \partial \mathbf{p}$}") == 2
    assert tex.count("Quotient rule") + tex.count("Elementwise function") >= 1
    refs = re.findall(r"\\eqref\{([^}]+)\}", tex)
    assert {"eq:shared::L:p", "eq:shared::p:f"} <= set(refs)
    for ref in refs:
        assert tex.count(r"\label{" + ref + "}") == 1
    # each partial's own derivation (its rule line) appears once
    rule_lines = [l for l in tex.splitlines() if l.startswith(r"$L = ") and "Rule:" in l]
    assert len(rule_lines) == 1
    anchors = re.findall(r"\(\[↑\]\(#([^)]+)\)\)", md)
    assert anchors and all(f'<a id="{a}"></a>' in md for a in anchors)


def test_a_hessian_refers_to_its_gradient_found_in_the_same_part(tmp_path):
    out = _outputs(tmp_path, LOGISTIC)
    tex = out["tex"]
    assert "The gradient $" in tex and r"\eqref{eq:logistic-regression::L:w:1}" in tex
    assert tex.count(r"\textbf{The chain.}") == 1          # the gradient's chain, not again for the Hessian
    assert tex.count(r"\textbf{Second derivative.}") == 1


def test_a_direct_derivative_has_no_one_link_chain(tmp_path):
    out = _outputs(tmp_path, """
id: direct
symbols: {D: dim, x: [D], A: [D, D]}
define: {f: x.T @ A @ x}
find: df/dx
""")
    assert "The chain." not in out["md"] and "tikzpicture" not in out["tex"]
    assert "Quadratic form" in out["md"]


def test_notation_that_does_not_mislead():
    P = LatexPrinter()
    z, p = ex.sym("z", ()), ex.sym("p", (D, 1))
    # σ, not the word; softplus upright
    assert P(ex.fn("sigmoid", z)) == r"\sigma\left(z\right)"
    assert P(ex.fn("softplus", z)).startswith(r"\operatorname{softplus}")
    # an elementwise reciprocal is 1 ⊘ p (a scalar's 1/σ), never p⁻¹ or σ⁻¹, which read as inverses
    assert P(ex.power(p, ex.num(-1))) == r"\mathbf{1} \oslash \mathbf{p}"
    assert P(ex.power(ex.fn("sigmoid", z), ex.num(-1))) == r"\frac{1}{\sigma\left(z\right)}"
    assert P(ex.hadamard(x, ex.power(p, ex.num(-2)))) == r"\mathbf{x} \odot \left(\mathbf{1} \oslash \mathbf{p}^{2}\right)"
    assert P(ex.matmul(ex.transpose(x), ex.power(p, ex.num(-1)))) == r"\mathbf{x}^\top \left(\mathbf{1} \oslash \mathbf{p}\right)"
    assert "^{-1}" in P(ex.inv(X))
    # a matrix's norm is the Frobenius norm
    assert P(ex.norm(X)).endswith(r"\right\rVert_{F}") and not P(ex.norm(x)).endswith("_{F}")


def test_numbers_side_by_side_get_a_dot_and_words_are_text(tmp_path):
    out = _outputs(tmp_path, """
id: numbers
symbols: {t: scalar}
define: {f: u + 3, u: 2 * t}
find: df/dt
""")
    md = out["md"]
    assert r"1 \cdot 2" in md
    assert not re.search(r"\d \\, \d", md)
    assert r"\text{every variable a scalar}" in md


def test_the_frobenius_norm_is_named_so(root):
    md = render_outputs(solve_problem(load_problem(root / "problems" / "matrix" / "frobenius.yaml")), ["md"])["md"]
    md = md.decode()
    assert "Squared Frobenius norm" in md and "Euclidean" not in md and r"\rVert_{F}" in md
