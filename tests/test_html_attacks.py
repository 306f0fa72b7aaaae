"""Hostile problem files and labels against the HTML pages (issue 13).

Each problem file of the corpus tries to get markup, script, a URL or a colliding id onto the page
through one field (title, source, statement, hint, a symbol's ``latex:``, define names, ``answer:``,
``keep:``, part ids, ``vary:`` choices) and a ``--templates`` folder's labels.yaml through the words.
Every page built is parsed and must consist of a whitelist of elements, attributes and attribute
values: what the templates write, never what the input writes. Files the loader refuses give one
clear error line each; the others still build."""
from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from generator.build import Options, build
from generator.errors import is_unsafe_char
from test_html import browser  # noqa: F401  (the fixture: headless Chromium)

ROOT = Path(__file__).parent.parent

XSS = "<script>alert(1)</script>"

# built: each tries one way in, and must build into a page of the whitelist
BUILT = {
    "markup.yaml": r"""
id: markup
title: 'A <script>alert(1)</script> </math><script>x</script> <!-- c --> <![CDATA[ x ]]> &#x3C;script&gt;'
source: '[link](javascript:alert(1)) [d](data:text/html,<script>alert(1)</script>) <img src=x onerror=alert(1)>'
statement: |
  <div onclick="alert(1)">a raw HTML block</div>

  <style>body{display:none}</style> <link rel=stylesheet href=http://evil.example/x.css> <iframe src=//x>
  **<b>bold</b>** *<i>it</i>* `<code>` [x](javascript:alert(1)) <a href="javascript:alert(1)">a</a>
  $\text{</math><script>alert(1)</script>}$ $\operatorname{<svg/onload=alert(1)>}$ $\mathrm{a"b'c<d>}$
  $\text{]]> <!-- -->}$ &#x3C;script&#62; <svg><title>t</title></svg> <object data=x></object> <embed src=x>
hint: '&lt;script&gt; &amp; <math><mi onclick=x>y</mi></math> <mtext><script>x</script></mtext>'
symbols: {x: scalar}
define: {f: x**2}
find: df/dx
answer: 2*x
""",
    "symbols.yaml": r"""
id: symbols
title: A symbol's LaTeX and the graph's labels
symbols:
  D: dim
  x: {shape: [D], latex: '\text{</mi><script>alert(1)</script>}'}
  W: {shape: [D, D], latex: '\mathbf{<img src=x onerror=alert(1)>}'}
  onerror: {shape: [D], latex: '\text{"><svg onload=alert(1)>}'}
define:
  f: script.T @ script
  script: tanh(onload)
  onload: W @ x + onerror
find: [df/dx, df/donerror]
keep: [script]
answer: {df/dx: 2 * script.T @ diag(1 - script**2) @ W}
""",
    "parts.yaml": r"""
id: parts
title: Parts whose ids look like the page's anchors
parts:
  - id: contents
    title: '</h2><script>alert(1)</script>'
    symbols: {x: scalar}
    define: {f: sin(x)}
    find: df/dx
  - id: h
    statement: 'See [the contents](#contents) and <a href="#problem-parts-h">here</a>.'
    symbols: {x: scalar}
    define: {f: cos(x)}
    find: df/dx
""",
    # ids that a lossy anchor (".", "_" and ":" all to "-") would make collide on the combined page
    "dot.yaml": "id: p.1\ntitle: one\nsymbols: {x: scalar}\ndefine: {f: sin(x)}\nfind: df/dx\n",
    "dash.yaml": "id: p-1\ntitle: two\nsymbols: {x: scalar}\ndefine: {f: sin(x)}\nfind: df/dx\n",
    "under.yaml": "id: p_1\ntitle: three\nsymbols: {x: scalar}\ndefine: {f: sin(x)}\nfind: df/dx\n",
    "part.yaml": "id: p\ntitle: four\nparts:\n  - id: '1'\n    symbols: {x: scalar}\n    define: {f: sin(x)}\n"
                 "    find: df/dx\n  - id: h\n    symbols: {x: scalar}\n    define: {f: exp(x)}\n    find: df/dx\n",
    "ph.yaml": "id: p-h\ntitle: five\nsymbols: {x: scalar}\ndefine: {f: sin(x)}\nfind: df/dx\n",
    "variants.yaml": r"""
id: variants
title: 'Variant {g} <script>alert(1)</script>'
statement: 'Let $f = \{g}(x)$ and **{g}** <img src=x onerror=alert(1)>.'
vary:
  g: [sin, exp]
symbols: {x: scalar}
define: {f: "{g}(x)"}
find: df/dx
""",
    # nesting as deep as the language allows in a sentence: a long page, but a bounded one
    "deep.yaml": "id: deep\ntitle: deep\nstatement: '$" + "{" * 11 + "x" + "}" * 11 + "$'\nsymbols: {x: scalar}\n"
                 "define:\n  f: " + "sin(" * 20 + "x" + ")" * 20 + "\nfind: df/dx\n",
}

# refused: (where, what) of the one error line each gives
REFUSED = {
    "href.yaml": ("statement: 'a $\\href{javascript:alert(1)}{x}$'", "href.yaml:2:16:", r"\href is not allowed"),
    "url.yaml": ("hint: '$\\url{http://evil.example}$'", "url.yaml:2:9:", r"\url is not allowed"),
    "htmlid.yaml": ("source: '$\\htmlId{contents}{x}$'", "htmlid.yaml:2:11:", r"\htmlId is not allowed"),
    "style.yaml": ("statement: '$\\style{color:red}{x}$'", "style.yaml:2:14:", r"\style is not allowed"),
    "bidi.yaml": ('title: "abc \\u202e gnp.exe"', "bidi.yaml:2:", "U+202E"),
    "zwsp.yaml": ('statement: "a\\u200bb"', "zwsp.yaml:2:", "U+200B"),
    "name.yaml": (None, "name.yaml:5:", "script"),
    "choice.yaml": (None, "choice.yaml:4:", "a choice is a number"),
}
_REFUSED_TEXT = {
    "name.yaml": "id: name\ntitle: T\nsymbols: {x: scalar}\ndefine:\n  <script>: sin(x)\n  f: x\nfind: df/dx\n",
    "choice.yaml": "id: choice\ntitle: T\nvary:\n  g: ['</math><script>alert(1)</script>']\nsymbols: {x: scalar}\n"
                   "define: {f: '{g}(x)'}\nfind: df/dx\n",
}

LABELS = r"""
lang: de-CH
next_step: '<script>alert(1)</script>'
show_result: '<img src=x onerror=alert(1)>'
with: '</mtext><script>alert(2)</script>'
result: '</strong><iframe src=x>'
where: '<a href="javascript:alert(1)">where</a>'
derivative: '</h2><style>*{display:none}</style>'
gradient_above: 'as {gradient} <b>x</b> [x](javascript:alert(1))'
contents: '<link rel=stylesheet href=http://evil.example/x.css>'
hint: '$\text{</math><script>alert(1)</script>}$'
"""


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    src = tmp_path_factory.mktemp("hostile")
    for name, text in BUILT.items():
        (src / name).write_text(text.lstrip(), encoding="utf-8")
    for name, (line, _, _) in REFUSED.items():
        text = _REFUSED_TEXT.get(name) or f"id: {name[:-5]}\n{line}\nsymbols: {{x: scalar}}\ndefine: {{f: sin(x)}}\nfind: df/dx\n"
        (src / name).write_text(text, encoding="utf-8")
    tpl = tmp_path_factory.mktemp("tpl")
    (tpl / "labels.yaml").write_text(LABELS, encoding="utf-8")
    out = tmp_path_factory.mktemp("out")
    report = build([str(src)], Options(out, ("html",), str(tpl), sheets="both", combine="set"))
    return report, out


# --- the whitelist --------------------------------------------------------------------------------

_NUM = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_EM = re.compile(r"-?[0-9.]+em")
_BOOL = {"true", "false"}
_ID = re.compile(r"[A-Za-z][A-Za-z0-9._:-]*")

# element -> attribute -> the values allowed (a set, a regex, or a kind checked against the page's ids)
ALLOWED: dict[str, dict] = {
    "html": {"lang": re.compile(r"[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*")},
    "head": {}, "body": {}, "style": {}, "title": {"id": "id"},
    "meta": {"charset": {"utf-8"}, "name": {"viewport"}, "content": {"width=device-width, initial-scale=1"}},
    "main": {}, "header": {}, "nav": {"aria-labelledby": "refs"},
    "article": {"id": "id", "aria-labelledby": "refs"}, "section": {"aria-labelledby": "refs"},
    **{f"h{k}": {"id": "id"} for k in range(1, 7)},
    "p": {"class": {"meta", "rule", "note"}}, "br": {}, "strong": {}, "em": {}, "code": {},
    "span": {"class": {"math-scroll", "nowrap", "formula", "reveal"}}, "div": {"class": {"formula"}, "id": "id"},
    "a": {"href": "link"}, "ol": {}, "ul": {"class": {"steps"}}, "li": {},
    "details": {"id": "id", "class": {"result-step"}}, "summary": {},
    "figure": {}, "figcaption": {}, "table": {}, "caption": {}, "thead": {}, "tbody": {}, "tr": {}, "td": {},
    "th": {"scope": {"col", "row"}},
    "svg": {"xmlns": {"http://www.w3.org/2000/svg"}, "role": {"img"}, "class": {"graph"},
            "viewbox": re.compile(r"0 0 [0-9]+ [0-9]+"), "width": _NUM, "height": _NUM, "aria-labelledby": "refs"},
    "desc": {"id": "id"}, "defs": {},
    "marker": {"id": "id", "viewbox": {"0 0 10 10"}, "refx": _NUM, "refy": _NUM, "markerwidth": _NUM,
               "markerheight": _NUM, "orient": {"auto-start-reverse"}},
    "path": {"d": re.compile(r"[MLQz0-9. -]+"), "fill": {"none", "#1a1a1a"}, "stroke": {"#1a1a1a"},
             "stroke-width": _NUM, "marker-end": "url"},
    "rect": {"x": _NUM, "y": _NUM, "width": _NUM, "height": _NUM, "rx": _NUM, "fill": {"#ffffff"},
             "stroke": {"#1a1a1a"}},
    "text": {"x": _NUM, "y": _NUM, "text-anchor": {"middle"}, "class": {"edge"}},
    "tspan": {"dy": _NUM, "font-size": _NUM},
    "math": {"display": {"block"}}, "mrow": {"displaystyle": _BOOL, "class": {"boxed"}},
    "mi": {"mathvariant": {"normal"}}, "mn": {}, "mtext": {}, "mspace": {"width": _EM},
    "mo": {"stretchy": _BOOL, "fence": _BOOL, "lspace": {"0"} | {"0em"}, "rspace": {"0"}, "movablelimits": _BOOL,
           "largeop": _BOOL, "minsize": _EM, "maxsize": _EM, "form": {"prefix", "infix", "postfix"}},
    "mfrac": {"linethickness": {"0"}}, "msqrt": {}, "mroot": {}, "msub": {}, "msup": {}, "msubsup": {},
    "munder": {"accentunder": _BOOL}, "mover": {"accent": _BOOL}, "munderover": {},
    "mtable": {}, "mtr": {}, "mtd": {"style": re.compile(r"text-align:(left|right)")},
}
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
_BIDI = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


class _Page(HTMLParser):
    """Every element with its attributes and ancestors; anything else markup can be (a comment, CDATA, a
    declaration, a processing instruction) is recorded as a problem."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict, tuple[str, ...]]] = []
        self.stack: list[str] = []
        self.other: list[str] = []
        self.text: list[tuple[str, tuple[str, ...]]] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs), tuple(self.stack)))
        if tag not in _VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1:]}>"
        self.stack.pop()

    def handle_data(self, data):
        self.text.append((data, tuple(self.stack)))

    def handle_comment(self, data):
        self.other.append("<!--" + data)

    def handle_decl(self, decl):
        if decl != "DOCTYPE html":
            self.other.append("<!" + decl)

    def unknown_decl(self, data):
        self.other.append("<![" + data)

    def handle_pi(self, data):
        self.other.append("<?" + data)


def check_whitelisted(page: str) -> list[str]:
    """What in the page is outside the whitelist (empty: the page is only what the templates write)."""
    p = _Page()
    p.feed(page)
    p.close()
    bad = list(p.other)
    ids = [a["id"] for _, a, _ in p.elements if "id" in a]
    bad += [f"id {i!r} repeats" for i in sorted({i for i in ids if ids.count(i) > 1})]
    for tag, attrs, above in p.elements:
        rules = ALLOWED.get(tag)
        if rules is None:
            bad.append(f"<{tag}>")
            continue
        if tag in ("style", "title", "meta") and above[-1:] != ("head",) and not (tag == "title" and "svg" in above):
            bad.append(f"<{tag}> outside <head>")
        for name, value in attrs.items():
            rule = rules.get(name)
            value = value or ""
            ok = (rule is not None and (
                value in rule if isinstance(rule, set) else
                rule.fullmatch(value) is not None if isinstance(rule, re.Pattern) else
                _ID.fullmatch(value) is not None if rule == "id" else
                bool(value) and all(v in ids for v in value.split(" ")) if rule == "refs" else
                value.startswith("#") and value[1:] in ids if rule == "link" else
                value.startswith("url(#") and value.endswith(")") and value[5:-1] in ids))
            if not ok:
                bad.append(f"<{tag} {name}={value!r}>")
    for text, above in p.text:
        unsafe = {c for c in text if c in _BIDI or (is_unsafe_char(c) and not ("math" in above and c in "\u2061\u2062"))}
        if unsafe:
            bad.append(f"text with {sorted(unsafe)!r} in {above[-1:]}")
        if "style" in above and ("display:none" in text or "@import" in text or "url(" in text):
            bad.append("input in <style>")
    if [t for t, _, _ in p.elements].count("style") != 1:
        bad.append("more than the template's <style>")
    return bad


def test_the_whitelist_holds_for_the_bank(tmp_path):
    """The whitelist is what the templates write: every bank page passes (a sample, and the combined set)."""
    paths = [str(p) for p in sorted(ROOT.glob("problems/**/*.yaml"))[::5]]
    report = build(paths, Options(tmp_path, ("html",), sheets="both", combine="set"))
    assert not report.failed
    pages = sorted(tmp_path.glob("*.html"))
    assert len(pages) > 30
    for page in pages:
        assert check_whitelisted(page.read_text(encoding="utf-8")) == [], page.name


def test_the_whitelist_catches_what_it_is_for():
    page = "<!DOCTYPE html><html lang=\"en\"><head><style></style></head><body>{}</body></html>"
    for sneaked in [XSS, '<img src=x onerror="alert(1)">', '<a href="javascript:alert(1)">x</a>',
                    '<a href="#nowhere">x</a>', '<p onclick="x">y</p>', "<!-- x -->", "<![CDATA[ x ]]>",
                    '<math><mi href="https://x">y</mi></math>', '<div class="formula" style="color:red"></div>',
                    "<iframe></iframe>", "<svg><foreignObject></foreignObject></svg>", "<p>a\u202eb</p>",
                    '<p id="a"></p><p id="a"></p>', "<style>@import url(x)</style>", "<title>t</title>"]:
        assert check_whitelisted(page.format(sneaked)), sneaked
    assert check_whitelisted(page.format('<p class="meta">a &lt;script&gt; <math><mi>x</mi></math></p>')) == []


def test_hostile_files_build_into_whitelisted_pages(attacked):
    report, out = attacked
    pages = sorted(out.glob("*.html"))
    built = {p.name for p in pages}
    for name in BUILT:
        pid = re.search(r"^id: (\S+)", BUILT[name], re.M).group(1)
        if name == "variants.yaml":
            assert f"{pid}.html" in built
        else:
            assert {f"{pid}.html", f"{pid}-sheet.html"} <= built, name
    assert {"set.html", "set-sheet.html"} <= built
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in (out / "markup.html").read_text(encoding="utf-8")
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert check_whitelisted(text) == [], page.name
        assert "javascript:" not in re.sub(r">[^<]*<", "><", text), page.name                # in no markup


def test_hostile_files_are_refused_one_line_each_and_the_others_build(attacked):
    report, _ = attacked
    failed = {Path(f).name: reason for f, reason in report.failed}
    assert set(failed) == set(REFUSED), failed
    for name, (_, where, what) in REFUSED.items():
        reason = failed[name]
        assert where in reason and what in reason, (name, reason)
        assert "Traceback" not in reason and "internal error" not in reason
    assert len(report.built) == len(BUILT)


def test_ids_never_collide_on_the_combined_page(attacked):
    """Problem ids p.1, p-1 and p_1, a problem p with parts 1 and h beside a problem p-h, a part named like
    the contents: each its own anchors, and every link and label points at an element that is there."""
    _, out = attacked
    page = (out / "set.html").read_text(encoding="utf-8")
    assert check_whitelisted(page) == []
    links = re.findall(r'<li><a href="#([^"]+)">', page)
    assert len(links) == len(set(links)) == len(BUILT)      # variants: one page, of the first choices


def test_a_deep_formula_gives_a_bounded_page(attacked):
    _, out = attacked
    assert (out / "deep.html").stat().st_size < 2_000_000


@pytest.mark.parametrize("label, message", [
    ("lang: 'en\" onload=\"alert(1)'", "lang: 'en\" onload=\"alert(1)' is not a language tag"),
    ("checked_text: 'at {0} points'", "checked_text: unknown placeholder {0}"),
    ("checked_text: '{points:>999999999}'", "unknown placeholder {points:>999999999}"),
    ("gradient_above: '{gradient.__class__.__mro__}'", "unknown placeholder {gradient.__class__.__mro__}"),
    ("one_entry: 'an entry { at a time'", "one_entry: expected '}'"),
    ('result: "Result\\u202e.sfdp"', "result: the invisible or control character U+202E is not allowed"),
])
def test_a_bad_labels_file_is_one_clear_error(tmp_path, label, message):
    """labels.yaml fills the page's lang and three str.format templates: a label that is no language tag,
    or names a placeholder the template does not give, is refused by name (not an IndexError, not a
    page with a megabyte of padding)."""
    (tmp_path / "labels.yaml").write_text(label + "\n", encoding="utf-8")
    report = build([str(ROOT / "problems" / "mml-5.8.yaml")], Options(tmp_path / "out", ("html", "md"), str(tmp_path)))
    [(_, reason)] = report.failed
    assert f"{tmp_path / 'labels.yaml'}: " in reason and message in reason and "internal error" not in reason, reason
    (tmp_path / "labels.yaml").write_text("one_entry: 'one {entry} at a time, {{braces}} kept'\nlang: pt-BR\n")
    from generator.render.templates import labels
    labels.cache_clear()
    report = build([str(ROOT / "problems" / "mml-5.8.yaml")], Options(tmp_path / "out", ("html",), str(tmp_path)))
    assert not report.failed
    page = (tmp_path / "out" / "mml-5.8.html").read_text(encoding="utf-8")
    assert '<html lang="pt-BR">' in page and "at a time, {braces} kept" in page


def test_hostile_pages_in_chromium(browser, attacked):
    """Opened in a real browser, every steps opened, on a phone: no dialog (alert), no request but the
    page itself, no console error, nothing wider than the screen."""
    from test_html import _OVERFLOW
    _, out = attacked
    for f in sorted(out.glob("*.html")):
        page = browser.new_page()
        events: list[str] = []
        page.on("dialog", lambda d: (events.append("dialog " + d.message), d.dismiss()))
        page.on("console", lambda m: events.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: events.append(str(exc)))
        page.on("request", lambda r: events.append("request " + r.url) if r.url != f.as_uri() else None)
        page.set_viewport_size({"width": 400, "height": 900})
        page.goto(f.as_uri())
        page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
        for summary in page.locator("summary").all()[:3]:
            summary.click()
        over = page.evaluate(_OVERFLOW)
        assert over["scroll"] <= over["width"] and not over["outside"], (f.name, over)
        assert not events, (f.name, events)
        page.close()
