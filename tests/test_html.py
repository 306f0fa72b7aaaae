"""The HTML pages: MathML printed from the trees, safe instructor text, accessible structure, and
the pages opened in a real browser (headless Chromium driven by Playwright)."""
from __future__ import annotations

import collections
import html
import os
import re
import shutil
import tempfile
import xml.dom.minidom
from html.parser import HTMLParser
from pathlib import Path

import pytest

from generator import expr as ex
from generator import texsafe
from generator.build import Options, build, render_combined, render_outputs, solve_problem
from generator.printing import LatexPrinter, MathMLPrinter
from generator.render.view import names_of, shapes_of_part
from generator.spec import load_problem, parse_problem

ROOT = Path(__file__).parent.parent
SEED = ROOT / "problems" / "mml-5.8.yaml"
LONG = "gp-evidence"            # the bank's longest formulas
LARGE = "two-layer-softmax"     # the bank's largest page


def _bank(pid: str) -> Path:
    return next(ROOT.glob(f"problems/**/{pid}.yaml"))


# --- the printer ----------------------------------------------------------------------------------


def _x(mathml: str):
    return xml.dom.minidom.parseString("<math>" + mathml + "</math>")


def _texts(mathml: str) -> list[str]:
    """The token elements' text, in order: what a screen reader reads (invisible times left out)."""
    return [t for t in re.findall(r"<m[ion]>([^<]*)</m[ion]>", mathml) if t not in "\u2061\u2062"]


def test_mathml_prints_the_tree_in_the_books_notation():
    M = MathMLPrinter()
    x, S, mu = ex.sym("x", ("D", 1)), ex.sym("S", ("D", "D")), ex.sym("mu", ("D", 1))
    y = ex.sub(x, mu)
    e = ex.matmul(ex.transpose(y), ex.inv(S), y)
    m = M.mml(e)
    _x(m)
    assert _texts(m) == ["𝐱", "−", "𝝁", "⊤", "𝐒", "−", "1", "𝐱", "−", "𝝁"]
    assert m.count("<msup>") == 2                               # (x − μ)ᵀ and S⁻¹
    assert m.count('<mo fence="true"') == 4                     # two pairs of brackets
    assert M.mml(ex.fn("tanh", ex.sym("z", ()))) == (
        '<mrow><mi>tanh</mi><mo>\u2061</mo><mrow><mo fence="true" stretchy="false" lspace="0" '
        'rspace="0">(</mo><mrow><mi>z</mi></mrow><mo fence="true" stretchy="false" lspace="0" rspace="0">)</mo>'
        '</mrow></mrow>')
    half = ex.mul(ex.num(ex.Fraction(-1, 2)), ex.sym("z", ()))
    assert "<mfrac><mn>1</mn><mn>2</mn></mfrac>" in M.mml(half) and M.mml(half).startswith("<mrow><mo>−</mo>")


def test_a_long_formula_breaks_where_the_latex_breaks():
    """One decision on the tree: the MathML rows are the LaTeX rows, piece for piece."""
    problem = load_problem(_bank(LONG))
    sol = solve_problem(problem)
    checked = 0
    for ps in sol.parts:
        M, P = MathMLPrinter(names_of(ps.part)), LatexPrinter(names_of(ps.part))
        for r in ps.results:
            for e in [r.result] + [p.result for p in r.partials] + [s.result for s in r.rewrites]:
                rows = M.rows(e, 20.0, "f = ")
                assert [str(row) for row in rows] == P.rows(e, 20.0, "f = ")
                table = M.equation("f", e, 20.0)
                _x(table)
                assert table.count("<mtr>") == (len(rows) if len(rows) > 1 else 0)
                checked += len(rows) > 1
    assert checked, "the long problem has formulas broken over lines"


def test_every_bank_formula_prints_as_wellformed_mathml_with_the_same_symbols():
    for path in sorted(ROOT.glob("problems/**/*.yaml"))[::4]:
        sol = solve_problem(load_problem(path))
        for ps in sol.parts:
            M = MathMLPrinter(names_of(ps.part))
            shapes = shapes_of_part(ps.part)
            for r in ps.results:
                for e in [r.result] + [p.result for p in r.partials]:
                    m = M.mml(e)
                    _x(m)
                    # every symbol of the expression is in its MathML, as the printer writes the symbol
                    for name in ex.free_symbols(e) - {n for n in ex.free_symbols(e) if n.startswith("d:")}:
                        assert M.mml(ex.sym(name, shapes[name])) in m, (path.name, name, m)
                    assert "<mtext>" not in m, f"{path.name}: {ex.to_text(e)} fell back to text"


# --- instructor text: the same safe path ---------------------------------------------------------


def test_instructor_math_becomes_mathml_and_text_is_escaped():
    out = texsafe.markdown_to_html(r"Let <b>x</b> & **y**: $\frac{a}{b} \in \mathbb{R}^{D}$ and $$\sum_{i} x_i$$")
    assert out.startswith("Let &lt;b&gt;x&lt;/b&gt; &amp; <strong>y</strong>: <math>")
    assert "<mfrac><mi>a</mi><mi>b</mi></mfrac>" in out and "<mi>ℝ</mi>" in out
    assert '<math display="block"><munder><mo movablelimits="true" largeop="true">∑</mo>' in out
    # a formula too long for a phone's line scrolls in a box of its own
    long = texsafe.markdown_to_html("so $" + " + ".join(f"x_{{{i}}}" for i in range(12)) + "$.")
    assert long.startswith('so <span class="math-scroll"><math>') and long.endswith("</math></span>.")


def test_refused_math_is_shown_as_text_never_interpreted():
    out = texsafe.markdown_to_html(r"see $\input{/etc/passwd}$ and $\text{<script>}$")
    assert "<code>$\\input{/etc/passwd}$</code>" in out
    assert "<mtext>&lt;script&gt;</mtext>" in out and "<script>" not in out


def test_math_grammar_to_mathml_structures():
    m = texsafe.math_to_mathml
    assert m(r"\underbrace{\frac{\partial f}{\partial z}}_{1 \times 1}").count("<munder>") == 2
    assert "<mtable>" in m(r"\begin{bmatrix} a & b \\ c & d \end{bmatrix}")
    assert m(r"\begin{bmatrix} a & b \\ c & d \end{bmatrix}").count("<mtd>") == 4
    assert '<mrow class="boxed">' in m(r"\boxed{x}")       # menclose is not MathML Core
    assert "𝐱" in m(r"\mathbf{x}") and "𝝁" in m(r"\boldsymbol{\mu}")


def _sample(cmd: str) -> str:
    """A formula using the command as the grammar wants it."""
    if cmd in ("left", "right", "middle"):
        return r"\left( x \middle| y \right)"
    if cmd in ("begin", "end"):
        return r"\begin{pmatrix} a & b \end{pmatrix}"
    if cmd in ("limits", "nolimits"):
        return rf"\sum\{cmd}_{{i}} x"
    if cmd in texsafe._DELIMITED:
        return rf"\{cmd}( x"
    if cmd in texsafe._TEXT_ARGUMENT:
        return rf"\{cmd}{{x}}"
    return "\\" + cmd + "{x}" * texsafe._ARITY.get(cmd, 0)


def test_every_allowed_math_command_has_its_mathml():
    """A command added to MATH_COMMANDS must also be given its MathML (not the inert fallback)."""
    for cmd in sorted(texsafe.MATH_COMMANDS):
        math = _sample(cmd)
        assert texsafe.check_math(math) is None, (cmd, texsafe.check_math(math))
        out = texsafe.math_to_mathml(math)
        xml.dom.minidom.parseString(out)
        if cmd not in texsafe._OPERATORS:
            assert f"<mi>{cmd}</mi>" not in out, f"\\{cmd} has no MathML: {out}"


# --- the pages ------------------------------------------------------------------------------------


class _Outline(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _outline(html: str) -> list[tuple[str, dict]]:
    p = _Outline()
    p.feed(html)
    return p.tags


def _check_accessible(html: str, nav: bool = False) -> None:
    tags = _outline(html)
    names = [t for t, _ in tags]
    assert tags[0] == ("html", {"lang": "en"})
    assert names.count("h1") == 1 and names.count("main") == 1
    assert ("nav" in names) == nav
    levels = [int(t[1]) for t in names if re.fullmatch(r"h[1-6]", t)]
    assert levels[0] == 1 and all(b <= a + 1 for a, b in zip(levels, levels[1:])), levels
    for t, a in tags:
        if t == "th":
            assert a.get("scope") in ("col", "row")
        if t == "svg":
            assert a.get("role") == "img" and a.get("aria-labelledby")
    # self-contained: no script, no external file, no network
    assert "script" not in names and "link" not in names and "img" not in names and "iframe" not in names
    assert not re.search(r"(src|href)=\"(?!#)", html)
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg\")", html)
    assert "@media print" in html
    assert "&lt;m" not in html and "&lt;span" not in html, "MathML escaped twice"
    ids = re.findall(r' id="([^"]+)"', html)
    assert len(ids) == len(set(ids)), "ids repeat"
    assert set(re.findall(r'href="#([^"]+)"', html)) <= set(ids), "a link to nowhere"


def test_the_seed_page(tmp_path):
    sol = solve_problem(load_problem(SEED))
    html = render_outputs(sol, ["html"])["html"].decode()
    md = render_outputs(sol, ["md"])["md"].decode()
    _check_accessible(html)
    assert render_outputs(sol, ["html"])["html"].decode() == html          # deterministic
    # every derivative's boxed result, every partial behind "Show the next step"
    assert html.count('<mrow class="boxed">') == md.count(r"\boxed{") == 3
    partials = len(re.findall(r"^#+ \$\\partial", md, re.M))
    assert html.count('<summary><span class="reveal">Show the next step: </span><math>') == partials == 5
    # the written-out outer product of 5.8(b), component by component, and the dims under the partials
    assert html.count("<mtable>") >= md.count(r"\begin{bmatrix}")
    assert html.count("⏟") == md.count(r"\underbrace")
    # the dependency graph: inline SVG with a title and a text alternative
    assert html.count("<svg") == 2 and "<title" in html and "<figcaption>" in html
    # the result last in each derivative
    for section in html.split("<h3 ")[1:]:
        if "Show the result" in section:
            assert section.rindex("<details") == section.index('<details class="result-step">')


def test_exercise_sheets_have_no_solutions_at_all():
    sol = solve_problem(load_problem(SEED))
    sheet = render_outputs(sol, ["html"], solutions=False)["html"].decode()
    _check_accessible(sheet)
    body = sheet[sheet.index("<body>"):]
    assert "<details" not in body and "boxed" not in body and "Result" not in body and "<svg" not in body
    assert "Use the chain rule" in sheet


def test_instructor_text_in_a_page_is_escaped(tmp_path):
    problem = parse_problem("id: t\ntitle: 'A <script>alert(1)</script> title'\n"
                            "statement: 'Hi <img src=x onerror=alert(1)> $x^2$'\n"
                            "symbols: {x: scalar}\ndefine: {f: x**2}\nfind: df/dx\n", "t.yaml")
    html = render_outputs(solve_problem(problem), ["html"])["html"].decode()
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;" in html and "&lt;img src=x" in html


def test_the_combined_page_has_contents_and_one_h1():
    sols = [solve_problem(load_problem(p)) for p in (SEED, _bank(LONG))]
    html = render_combined(sols, "Problem set", "set", ["html"])["html"].decode()
    _check_accessible(html, nav=True)
    assert html.count('<li><a href="#problem:') == 2


def test_templates_override_the_html_page(tmp_path):
    tpl = tmp_path / "tpl"
    tpl.mkdir()
    (tpl / "page.html.j2").write_text('{% extends "!page.html.j2" %}{% block style %}{{ super() }}'
                                      "body { background: #fffff0; }{% endblock %}")
    out = tmp_path / "out"
    build([str(SEED)], Options(out, ("html",), str(tpl)))
    assert "body { background: #fffff0; }" in (out / "mml-5.8.html").read_text()


# --- in a real browser ----------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """The whole bank as pages and the combined set, built once."""
    out = tmp_path_factory.mktemp("html")
    report = build([str(ROOT / "problems")], Options(out, ("html",), combine="problem-set"))
    assert not report.failed
    return out


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium; where it or Playwright is missing the browser tests are skipped, except in CI
    (``.ci/run`` sets STEPGEN_REQUIRE_BROWSER=1), where that is a failure."""
    required = os.environ.get("STEPGEN_REQUIRE_BROWSER") == "1"
    try:
        from playwright import sync_api as sync
    except ImportError:
        (pytest.fail if required else pytest.skip)("playwright is not installed (pip install -e '.[test]')")
    if not os.path.exists(CHROMIUM):
        (pytest.fail if required else pytest.skip)("Chromium is not installed (apt-get install chromium)")
    with sync.sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        ctx = p.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, args=ARGS, headless=True)
        yield ctx
        ctx.close()


# elements wider than the page: a formula too long for a phone scrolls inside its own box, not the page
_OVERFLOW = """() => {
  const W = document.documentElement.clientWidth, out = [];
  for (const e of document.querySelectorAll('body *')) {
    if (e.getBoundingClientRect().right <= W + 1) continue;
    let a = e.parentElement, boxed = false;
    while (a) { if (getComputedStyle(a).overflowX !== 'visible') { boxed = true; break; } a = a.parentElement; }
    if (!boxed) out.push(e.tagName);
  }
  return {outside: out, scroll: document.documentElement.scrollWidth, width: W};
}"""

# the lowest contrast of any text with the background behind it (WCAG's relative luminance)
_CONTRAST = """() => {
  const lum = c => { const v = c.match(/[\\d.]+/g).slice(0, 3).map(Number).map(x => x / 255)
      .map(x => x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4);
    return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]; };
  const opaque = c => !/rgba\\(.*, 0\\)$/.test(c) && c !== 'transparent';
  let worst = 99, where = '';
  for (const e of document.querySelectorAll('body *')) {
    if (![...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
    let b = e; while (b && !opaque(getComputedStyle(b).backgroundColor)) b = b.parentElement;
    const bg = b ? getComputedStyle(b).backgroundColor : 'rgb(255, 255, 255)';
    const [l1, l2] = [lum(getComputedStyle(e).color), lum(bg)].sort((a, b) => b - a);
    const r = (l1 + 0.05) / (l2 + 0.05);
    if (r < worst) { worst = r; where = e.tagName; }
  }
  return [worst, where];
}"""

_MATH_SIZES = """() => Array.from(document.querySelectorAll('math')).map(m => {
  const r = m.getBoundingClientRect(); return [r.width, r.height]; })"""


# and the language of issue 11: ReLU and its kink, Kronecker products, vec-Hessians, a list literal
NEW_PAGES = ["relu-two-layer", "kron-inner-product", "trace-hessian", "parr-howard-4.5.3"]


@pytest.mark.parametrize("name", ["mml-5.8", LONG, LARGE, "problem-set"] + NEW_PAGES)
@pytest.mark.parametrize("width", [1280, 400])
def test_pages_in_chromium(browser, pages, name, width, tmp_path):
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda r: errors.append("request " + r.url) if not r.url.startswith("file:") else None)
    page.set_viewport_size({"width": width, "height": 900})
    page.goto((pages / f"{name}.html").as_uri())

    # opening a <details> reveals its step
    first = page.locator("main details").first
    body = first.locator(":scope > :not(summary)").first
    assert not body.is_visible()
    first.locator("summary").click()
    assert body.is_visible() and first.evaluate("d => d.open")
    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")

    sizes = page.evaluate(_MATH_SIZES)
    assert sizes and all(w > 0 and h > 0 for w, h in sizes), "a <math> element was not laid out"
    over = page.evaluate(_OVERFLOW)
    assert over["scroll"] <= over["width"] and not over["outside"], over
    contrast, where = page.evaluate(_CONTRAST)
    assert contrast >= 7.0, f"text in <{where}> has contrast {contrast:.1f}:1 (WCAG AAA asks 7:1)"
    assert not errors, errors
    tall = page.evaluate("document.documentElement.scrollHeight") > 30_000    # the combined set: its top
    page.screenshot(path=str(tmp_path / f"{name}-{width}.png"), full_page=not tall)
    assert (tmp_path / f"{name}-{width}.png").stat().st_size > 10_000
    page.close()


def test_printing_shows_every_step(browser, pages):
    page = browser.new_page()
    page.goto((pages / "mml-5.8.html").as_uri())
    step = page.locator("main details").first.locator(":scope > :not(summary)").first
    assert not step.is_visible()
    page.emulate_media(media="print")
    assert step.is_visible()
    page.close()


# --- the exercise sheets, the keyboard, a dark preference, print -----------------------------------


@pytest.fixture(scope="module")
def sheets(tmp_path_factory):
    """The whole bank's exercise sheets and the combined sheet, beside the solutions."""
    out = tmp_path_factory.mktemp("sheets")
    report = build([str(ROOT / "problems")], Options(out, ("html",), sheets="both", combine="problem-set"))
    assert not report.failed
    return out


# what only a worked solution has: its markup and its words (labels.yaml's)
SOLUTION_ONLY = ["<details", "<summary", "<svg", "<table", "<figure", 'class="boxed"', 'class="rule"', "result-step",
                 "Show the", "Result.", "The chain.", "Convention.", "Checked numerically", "the textbook's form",
                 "the form the textbook gives", "Rule:", "derived above", "Could not be derived"]


def test_no_sheet_has_any_solution_content(sheets):
    """Not hidden, absent: no step, no result, no graph, no table, no check in any sheet of the bank or in
    the combined sheet; and what a sheet says is all in the solution page (the statement, the givens)."""
    files = sorted(sheets.glob("*-sheet.html"))
    assert len(files) > 80 and (sheets / "problem-set-sheet.html") in files
    for f in files:
        page = f.read_text(encoding="utf-8")
        _check_accessible(page, nav=f.name == "problem-set-sheet.html")
        body = page[page.index("<body>"):]
        found = [s for s in SOLUTION_ONLY if s in body]
        assert not found, (f.name, found)
        solution = (sheets / f.name.replace("-sheet.html", ".html")).read_text(encoding="utf-8")
        assert not _html_prose(page) - _html_prose(solution) - _prose("Exercise sheet"), f.name


@pytest.mark.parametrize("name", ["mml-5.8-sheet", "problem-set-sheet"])
@pytest.mark.parametrize("width", [1280, 400])
def test_sheets_in_chromium(browser, sheets, name, width, tmp_path):
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("request", lambda r: errors.append("request " + r.url) if not r.url.startswith("file:") else None)
    page.set_viewport_size({"width": width, "height": 900})
    page.goto((sheets / f"{name}.html").as_uri())
    assert page.evaluate("document.querySelectorAll('details, svg, table').length") == 0
    levels = page.evaluate("Array.from(document.querySelectorAll('h1,h2,h3,h4,h5,h6')).map(h => +h.tagName[1])")
    assert levels[0] == 1 and levels.count(1) == 1 and all(b <= a + 1 for a, b in zip(levels, levels[1:]))
    sizes = page.evaluate(_MATH_SIZES)
    assert sizes and all(w > 0 and h > 0 for w, h in sizes)
    over = page.evaluate(_OVERFLOW)
    assert over["scroll"] <= over["width"] and not over["outside"], over
    assert page.evaluate(_CONTRAST)[0] >= 7.0
    assert not errors, errors
    page.screenshot(path=str(tmp_path / f"{name}-{width}.png"))
    page.close()


_FOCUS = """() => { const e = document.activeElement, s = getComputedStyle(e);
  return [e.tagName, e.matches(':focus-visible'), s.outlineStyle, parseFloat(s.outlineWidth), s.outlineColor]; }"""


def test_keyboard_focus_on_a_step_is_visible(browser, pages, tmp_path):
    """Tab reaches "Show the next step", whose focus ring is drawn (solid, 2px or more, 3:1 against white
    as WCAG 2.4.11 asks), and Enter opens the step."""
    page = browser.new_page()
    page.goto((pages / "mml-5.8.html").as_uri())
    for _ in range(20):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.tagName") == "SUMMARY":
            break
    tag, visible, style, width, color = page.evaluate(_FOCUS)
    assert tag == "SUMMARY" and visible and style != "none" and width >= 2, (tag, visible, style, width)
    rgb = [int(v) / 255 for v in re.findall(r"\d+", color)[:3]]
    lum = sum(k * (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4) for k, c in zip((0.2126, 0.7152, 0.0722), rgb))
    assert 1.05 / (lum + 0.05) >= 3.0, color
    page.screenshot(path=str(tmp_path / "focus.png"))
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.parentElement.open")
    page.close()


@pytest.mark.parametrize("name", ["mml-5.8", "problem-set"])
def test_a_dark_preference_keeps_the_text_readable(browser, pages, name, tmp_path):
    """The page sets its own light colours: a reader's dark preference changes nothing unreadable."""
    page = browser.new_page()
    page.emulate_media(color_scheme="dark")
    page.goto((pages / f"{name}.html").as_uri())
    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
    contrast, where = page.evaluate(_CONTRAST)
    assert contrast >= 7.0, (contrast, where)
    page.screenshot(path=str(tmp_path / f"{name}-dark.png"))
    page.close()


_HIDDEN_STEPS = """() => Array.from(document.querySelectorAll('details')).filter(d =>
  Array.from(d.children).some(c => c.tagName !== 'SUMMARY' && !c.checkVisibility())).length"""


def test_printing_the_set_opens_every_step(browser, pages):
    page = browser.new_page()
    page.goto((pages / "problem-set.html").as_uri())
    closed = page.evaluate(_HIDDEN_STEPS)
    assert closed == page.evaluate("document.querySelectorAll('details').length") > 100
    page.emulate_media(media="print")
    assert page.evaluate(_HIDDEN_STEPS) == 0
    # each step keeps its name as a title, without the words of the screen's button ("Show the …")
    titles = page.evaluate("Array.from(document.querySelectorAll('details:not(.result-step) > summary'))"
                           ".map(s => s.checkVisibility() ? s.innerText : '')")
    assert titles and all(t.strip() for t in titles) and not any("Show the" in t for t in titles)
    assert "Show the" not in page.evaluate("document.body.innerText")
    page.close()


def test_a_slash_and_a_sign_are_spaced_as_tex_spaces_them(browser):
    """TeX's / is an ordinary symbol (df/dx, no space around it) and a minus after a relation or an
    opening bracket is a sign (L = −y, (−1)); MathML's operator dictionary spaces both as infix operators
    unless told. Measured: each formula as wide as the same glyphs with no operator spacing (<mi>)."""
    page = browser.new_page()
    pairs = [("df/dx", "<mi>d</mi><mi>f</mi><mi>/</mi><mi>d</mi><mi>x</mi>"),
             ("L = -y", "<mi>L</mi><mo>=</mo><mi>−</mi><mi>y</mi>"),
             ("(-1)", '<mo stretchy="false">(</mo><mi>−</mi><mn>1</mn><mo stretchy="false">)</mo>')]
    page.set_content("<!DOCTYPE html><html><body>" + "".join(texsafe.math_to_mathml(m) + "<math>" + ref + "</math>"
                                                             for m, ref in pairs) + "</body></html>")
    widths = page.evaluate("Array.from(document.querySelectorAll('math')).map(m => m.getBoundingClientRect().width)")
    for (m, _), ours, ref in zip(pairs, widths[::2], widths[1::2]):
        assert abs(ours - ref) < 0.5, (m, ours, ref)
    assert "<mo>−</mo>" in texsafe.math_to_mathml("a - b")       # a binary minus keeps its spaces
    page.close()


def test_build_writes_pages_and_sheets_and_combine_refuses_html(tmp_path):
    from click.testing import CliRunner
    from generator.cli import main
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["build", str(SEED), "--out", str(out), "--format", "html", "--sheets", "both",
                                    "--combine", "set"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.glob("*.html")) == ["mml-5.8-sheet.html", "mml-5.8.html", "set-sheet.html",
                                                         "set.html"]
    assert "<details" in (out / "set.html").read_text() and "<details" not in (out / "set-sheet.html").read_text()
    res = CliRunner().invoke(main, ["combine", str(out), "--name", "again", "--format", "html", "--out", str(out)])
    assert res.exit_code == 2 and "build --combine NAME --format html" in res.output


# --- the language of issue 11 in the pages ----------------------------------------------------------

LANG = ex.Scope(dims=frozenset({"D", "M", "N"}),
                shapes={"x": (), "u": (), "z": ("D", 1), "w": ("D", 1), "X": ("M", "N"), "A": ("D", "D")})

# one expression per op and function the language gained, with the parts of its MathML that say it
NEW = {
    "max(0, w.T @ z)": ["<mi>max</mi>", "<mn>0</mn><mo>,</mo>"],
    "softmax(z)": ["<mi>softmax</mi>"],
    "log_softmax(z)": ["<mi>log</mi>", "<mi>softmax</mi>"],
    "logsumexp(z)": ["<mi>logsumexp</mi>"],
    "mean(z)": ["<mi>mean</mi>"],
    "[log(x**2), sin(3*x)]": ["<mtable><mtr><mtd>", '<mo stretchy="true">]</mo>'],
    "vec(X)": ["<mi>vec</mi>", "<mi>𝐗</mi>"],
    "commutation(M, N)": ["<msub><mi>𝐊</mi><mrow><mrow><mi>M</mi></mrow><mo>,</mo><mrow><mi>N</mi></mrow></mrow></msub>"],
    "N / 2 * log(2 * pi)": ["<mi>N</mi>", "<mi>π</mi>"],
    "e**x": ['<msup><mi mathvariant="normal">e</mi>'],
    "N**2": ["<msup><mrow><mi>N</mi></mrow><mn>2</mn></msup>"],            # N², not (N)²
    "cosh(x)**2 + sinh(x)": ["<msup><mrow><mi>cosh</mi></mrow><mn>2</mn></msup>", "<mi>sinh</mi>"],
    "log1p(x)": ["<mi>log</mi>", "<mn>1</mn><mo>+</mo><mrow><mi>x</mi></mrow>"],    # log(1 + x), never log x
    "relu(u)": ["<mi>ReLU</mi>"],
    "abs(u)": [">|</mo><mrow><mi>u</mi></mrow><mo", ">|</mo></mrow>"],
    "step(u)": ["<mn>𝟙</mn>", ">[</mo><mrow><mrow><mi>u</mi></mrow><mo>&gt;</mo><mn>0</mn></mrow><mo"],
    "sign(u)": ["<mi>sign</mi>"],
    "softmax(z).T @ w": [">)</mo></mrow><mi>⊤</mi></msup>"],             # (softmax(z))ᵀ as the LaTeX brackets it
}


def _reading(mathml: str) -> list[str]:
    """Every token element's text in order, brackets and bars included: how the formula reads."""
    return [t for t in re.findall(r"<m[ion](?: [^>]*)?>([^<]*)</m[ion]>", mathml) if t not in ("", "\u2061", "\u2062")]


def test_the_new_ops_have_mathml_printed_from_the_tree():
    P, M = LatexPrinter(), MathMLPrinter()
    for text, parts in NEW.items():
        e = ex.parse(text, LANG)
        m = M.mml(e)
        _x(m)
        for part in parts:
            assert part in m, (text, part, m)
        # the LaTeX it twins is within the math grammar, and reads token for token as the MathML does
        latex = P(e)
        assert texsafe.check_math(latex) is None, (text, latex)
        assert _reading(m) == _reading(texsafe.latex_to_mathml_body(latex)), (text, latex, m)
    # every op the LaTeX printer knows has its MathML twin (no op falls back to reading its LaTeX)
    ops = {n[len("_print_"):] for n in dir(LatexPrinter) if n.startswith("_print_")}
    assert ops <= {n[len("_mml_"):] for n in dir(MathMLPrinter) if n.startswith("_mml_")}


def test_a_long_call_of_a_new_function_breaks_where_the_latex_breaks():
    e = ex.parse("logsumexp(" + " + ".join(f"{k + 2} * A @ z" for k in range(8)) + ") + max(0, w.T @ z)", LANG)
    M, P = MathMLPrinter(), LatexPrinter()
    rows = M.rows(e, 20.0, "f = ")
    assert len(rows) > 1 and [str(r) for r in rows] == P.rows(e, 20.0, "f = ")
    _x(M.equation("f", e, 20.0))


def test_every_bank_formula_reads_as_its_latex():
    """The MathML twin of each result, partial, step and rewrite says what its LaTeX says, symbol for
    symbol, brackets included (the LaTeX read by the math grammar is the reference)."""
    count = 0
    for path in sorted(ROOT.glob("problems/**/*.yaml")):
        for ps in solve_problem(load_problem(path)).parts:
            M, P = MathMLPrinter(names_of(ps.part)), LatexPrinter(names_of(ps.part))
            for r in ps.results:
                for e in [r.result] + [s.result for s in r.rewrites + r.hessian_rewrites + r.extra_steps] + \
                        [x for p in r.partials for x in (p.result, p.step.result, p.expr)]:
                    assert _reading(M.mml(e)) == _reading(texsafe.latex_to_mathml_body(P(e))), (path.name, P(e))
                    count += 1
    assert count > 500


def _prose(text: str) -> collections.Counter:
    return collections.Counter(re.findall(r"[A-Za-z][A-Za-z'-]{2,}", text))


def _md_prose(md: str) -> collections.Counter:
    md = re.sub(r"```.*?```|\$\$.*?\$\$|\$[^$]*\$|\]\(#[^)]*\)|<[^>]+>", " ", md, flags=re.S)
    return _prose(html.unescape(md))


def _html_prose(page: str) -> collections.Counter:
    page = page[page.index("<body>"):]
    page = re.sub(r"<math.*?</math>|<svg.*?</svg>|<figcaption>.*?</figcaption>|<[^>]+>", " ", page, flags=re.S)
    return _prose(html.unescape(page))


def test_every_note_of_the_markdown_is_in_the_page():
    """Nothing the .md says is missing from the .html: the kink's convention, the Hessian by vec X, the
    shadowing notes, the names kept in a result, a single link's rewrites (word for word, math aside)."""
    for path in sorted(ROOT.glob("problems/**/*.yaml")):
        out = render_outputs(solve_problem(load_problem(path)), ["md", "html"])
        missing = _md_prose(out["md"].decode()) - _html_prose(out["html"].decode())
        assert not missing, (path.name, dict(missing))
    out = render_outputs(solve_problem(load_problem(_bank("relu-two-layer"))), ["md", "html"])
    page = out["html"].decode()
    assert page.count("At a kink.") == out["md"].decode().count("At a kink.") == 1
    assert "<mn>𝟙</mn>" in page and "subgradient" in page


def test_bank_pages_have_no_fallback_and_wellformed_math(pages):
    import xml.etree.ElementTree as ET
    files = sorted(pages.glob("*.html"))
    assert len(files) > 80
    for f in files:
        page = f.read_text()
        assert not re.search(r"<code>[^<]*[$\\]", page), f"{f.name}: math refused by the grammar, shown as code"
        assert not re.search(r"<mtext>[^<]*\\", page), f"{f.name}: LaTeX the grammar could not read, shown as text"
        maths = re.findall(r"<math[ >].*?</math>", page, flags=re.S)
        assert maths, f.name
        for m in maths:
            ET.fromstring(m)


def test_an_operator_name_gets_the_thin_space_tex_gives_it():
    thin = '<mspace width="0.1667em"></mspace>'
    m = texsafe.math_to_mathml
    assert "</mo>" + thin + "<mi>cosh</mi>" in m(r"\sinh(x)\cosh(x)")
    assert "<mi>C</mi>" + thin + "<mo movablelimits" in m(r"C\max(0, u)")
    assert thin not in m(r"a = \max(0, u)") and thin not in m(r"(\max(a, b))")       # after = or (: none
    assert "</munder>" + thin + "<mi>f</mi>" in m(r"\max_{x} f")
    # the printer's products: 2 sinh(x) cosh(x), with the space before each name
    mml = MathMLPrinter().mml(ex.parse("2 * sinh(x) * cosh(x)", LANG))
    assert mml.count(thin + "<mo>\u2062</mo><mrow><mi>") == 2


def test_punctuation_after_inline_math_stays_beside_it():
    from generator.render.html import markdown
    out = str(markdown("with $x$, and $y + z$. Then $a$ ok"))
    assert out.count('<span class="nowrap">') == 2
    assert "</math>,</span> and" in out and "</math>.</span> Then" in out and "<math><mi>a</mi></math> ok" in out
    # a long formula's scroll box takes the punctuation in, on the formula's baseline
    long = str(markdown("so $" + " + ".join(f"x_{{{i}}}" for i in range(12)) + "$."))
    assert long.startswith('so <span class="math-scroll"><math>') and long.endswith("</math>.</span>")


def test_a_prime_sits_beside_its_letter():
    """f′ is f and the prime glyph side by side (as a superscript the already raised glyph rides too high)."""
    m = texsafe.math_to_mathml
    assert m("f'(u)").startswith('<math><mrow><mi>f</mi><mo lspace="0" rspace="0">′</mo></mrow><mo')
    assert m("f'^2") == '<math><msup><mrow><mi>f</mi><mo lspace="0" rspace="0">′</mo></mrow><mn>2</mn></msup></math>'
    assert "<msup>" not in m("y''")
