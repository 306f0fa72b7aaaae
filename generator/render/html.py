"""The HTML page: MathML for the math, no script, no network, no file beside it.

The HTML templates (``templates/*.html.j2``, autoescaped) read the same view as the
Markdown and LaTeX ones. Formulas printed from expression trees come with their
MathML twins in the view (``*_mml``, from ``printing.MathMLPrinter``); the rest of
the view's notation (names, dimensions, the chain of partials) and instructor math go
through ``texsafe``'s math grammar. The dependency graph is drawn as inline SVG
from the positions ``view.graph`` computes for TikZ.
"""
from __future__ import annotations

import re

from markupsafe import Markup, escape

from .. import texsafe

PX = 62.0        # pixels per unit (cm) of the graph's TikZ coordinates
NODE_H = 30.0


INLINE_SCROLL = 12.0    # ems from which inline math gets a box of its own (scrolls on a phone)


def math(latex: str) -> Markup:
    """Inline math from the view's LaTeX notation."""
    from ..printing import latex_width
    m = texsafe.math_to_mathml(str(latex))
    return Markup('<span class="math-scroll">' + m + "</span>" if latex_width(str(latex)) > INLINE_SCROLL else m)


def display(latex: str) -> Markup:
    return Markup('<div class="formula">' + texsafe.math_to_mathml(str(latex), display=True) + "</div>")


def mathml(body: str, block: bool = True) -> Markup:
    """A MathML twin (the children of ``<math>``) as a formula."""
    if not block:
        return Markup('<span class="math-scroll"><math>' + body + "</math></span>")
    return Markup('<div class="formula"><math display="block">' + body + "</math></div>")


def markdown(text: str, note: dict | None = None, end: str = "") -> Markup:
    """Instructor (or labels.yaml) Markdown: escaped text, whitelisted math as MathML; in a rule's
    ``note`` (``view.note_mml``), ``@i`` is the MathML of its formula i. ``end`` (the sentence's
    punctuation) stays on the line of a formula the text ends with."""
    from ..printing import latex_width
    args = note["latex"] if note else ()

    def wide(math: str) -> bool:
        for i, a in enumerate(args):
            math = math.replace(f"@{i}", a)
        return latex_width(math) > INLINE_SCROLL
    out = texsafe.markdown_to_html(str(text), tuple(note["args"]) if note else (), wide)
    # punctuation right after inline math stays on its line (a browser may break before it: <math> is
    # an atomic inline box)
    out = _MATH_THEN_PUNCTUATION.sub(lambda m: _with_punctuation(m.group(1), m.group(2)), out)
    start = out.rfind("<math") if out.endswith("</math>") else out.rfind("<span") \
        if out.endswith("</math></span>") else -1
    if end and start >= 0 and out.startswith(("<math", '<span class="math-scroll">'), start):
        out = out[:start] + _with_punctuation(out[start:], str(escape(end)))
    else:
        out += str(escape(end))
    return Markup(out)


_MATH_THEN_PUNCTUATION = re.compile(r'(<span class="math-scroll"><math>(?:(?!<math[ >]).)*?</math></span>'
                                    r'|<math>(?:(?!<math[ >]).)*?</math>)([.,;:!?])', re.S)


def _with_punctuation(math: str, mark: str) -> str:
    """Inline math and the punctuation after it, never on two lines: inside a formula's scroll box (on
    the formula's baseline, which the box's vertical centring moves off the text's), else side by side."""
    if math.startswith('<span class="math-scroll">'):
        return math[:-len("</span>")] + mark + "</span>"
    return '<span class="nowrap">' + math + mark + "</span>"


def mathml_body(latex: str) -> str:
    """The view's LaTeX notation as MathML children, to put beside a twin printed from a tree."""
    return texsafe.latex_to_mathml_body(str(latex))


def with_word(body: str, word: str) -> str:
    """The product's "with" (``view.WITH``) in the labels' language."""
    from html import escape
    return str(body).replace("<mtext>with\u00a0</mtext>", "<mtext>" + escape(str(word)) + "\u00a0</mtext>")


def _svg_text(text: str, x: float, y: float, cls: str = "") -> str:
    """A label with its ``^D`` / ``^(D×D)`` as a raised, smaller part."""
    from html import escape
    import re
    m = re.match(r"^(.*?)\^\(?([^()]*)\)?$", text)
    body = escape(text) if not m else (escape(m.group(1)) + '<tspan dy="-6" font-size="10">' + escape(m.group(2))
                                       + "</tspan>")
    c = f' class="{cls}"' if cls else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="middle"{c}>{body}</text>'


def graph_svg(graph: dict, label: str) -> Markup:
    """The dependency graph of a derivative as inline SVG at the positions ``view.graph`` computes
    for TikZ; each edge labelled with its partial above and its dimensions below; the text
    alternative in ``<title>`` and ``<desc>`` (and the caption the template writes under it). ``label``
    is the derivative's (``r.label``): the ids are ``html_id(label, kind)``."""
    from html import escape
    nodes = graph["nodes"]
    width = {n["id"]: 7.6 * len(n["text"]) + 18 for n in nodes}
    xs = [n["x"] * PX for n in nodes]
    ys = [-n["y"] * PX for n in nodes]
    left = min(x - width[n["id"]] / 2 for x, n in zip(xs, nodes)) - 8
    top = min(ys) - NODE_H - 30
    W = max(x + width[n["id"]] / 2 for x, n in zip(xs, nodes)) - left + 8
    H = max(ys) - top + NODE_H + 24
    pos = {n["id"]: (x - left, y - top) for n, x, y in zip(nodes, xs, ys)}
    desc = "; ".join(f"{e['from']} to {e['to']}, {e['label']}" for e in graph["edges"])
    title, dsc, arrow = (escape(html_id(label, k)) for k in ("graph-title", "graph-desc", "arrow"))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="graph" viewBox="0 0 {W:.0f} {H:.0f}" '
           f'width="{W:.0f}" height="{H:.0f}" aria-labelledby="{title} {dsc}">',
           f'<title id="{title}">Dependency graph</title><desc id="{dsc}">{escape(desc)}</desc>',
           '<defs><marker id="' + arrow + '" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
           'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#1a1a1a"/></marker></defs>']
    for e in graph["edges"]:
        (x1, y1), (x2, y2) = pos[e["from"]], pos[e["to"]]
        x1 += width[e["from"]] / 2
        x2 -= width[e["to"]] / 2
        bend = -2 * NODE_H if e["bend"] else 0
        mx, my = (x1 + x2) / 2, (y1 + y2) / 2 + bend
        out.append(f'<path d="M {x1:.1f} {y1:.1f} Q {mx:.1f} {my + bend:.1f} {x2:.1f} {y2:.1f}" fill="none" '
                   f'stroke="#1a1a1a" stroke-width="1.3" marker-end="url(#{arrow})"/>')
        partial, _, dims = e["label"].partition(": ")
        out.append(_svg_text(partial, mx, my - 7, "edge"))
        out.append(_svg_text(dims, mx, my + 17, "edge"))
    for n in nodes:
        x, y = pos[n["id"]]
        w = width[n["id"]]
        out.append(f'<rect x="{x - w / 2:.1f}" y="{y - NODE_H / 2:.1f}" width="{w:.1f}" height="{NODE_H:.0f}" rx="6" '
                   f'fill="#ffffff" stroke="#1a1a1a"/>')
        out.append(_svg_text(n["text"], x, y + 5))
    out.append("</svg>")
    return Markup("".join(out))


def html_id(label: str, kind: str = "") -> str:
    """An id attribute from a label (``eq:<problem>:<part>:<of>:<wrt>``, a problem's id), one to one:
    ``kind:`` then the label as it is (ids are ``[a-z0-9._-]``, names identifiers, ``:`` their
    separator), any other character as ``~hex~``; letters, digits and hyphens alone would make the
    problems p.1, p-1 and p_1, or a problem p's part 1 and a problem p-1, share their ids."""
    body = re.sub(r"[^A-Za-z0-9._:-]", lambda m: f"~{ord(m.group()):x}~", str(label))
    return f"{kind}:{body}" if kind else body


FILTERS = {"math": math, "display": display, "mathml": mathml, "markdown": markdown, "graph_svg": graph_svg,
           "html_id": html_id, "mathml_body": mathml_body, "with_word": with_word}
