"""Instructor text into LaTeX, safely.

Problem files are untrusted: their text must not reach TeX as code.  Plain
text is escaped character by character; math (``$...$``, ``$$...$$``) is
kept only if every control sequence in it is on ``MATH_COMMANDS`` — anything
else (``\\input``, ``\\write18``, ``\\catcode``, ``\\def``, ``\\csname`` ...) is
neutralised into visible, inert text, as are TeX's ``^^`` character codes
and unbalanced braces.  The PDF is compiled without shell escape in any case
(``render/pdf.py``).

To allow another math command: add it to ``MATH_COMMANDS`` and to the README.
"""
from __future__ import annotations

import re

MATH_COMMANDS = frozenset("""
alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda mu nu xi pi varpi
rho varrho sigma varsigma tau upsilon phi varphi chi psi omega Gamma Delta Theta Lambda Xi Pi Sigma
Upsilon Phi Psi Omega
mathbf boldsymbol mathrm mathit mathbb mathcal mathsf mathtt operatorname text textbf textit bm
frac dfrac tfrac sqrt sum prod int oint lim limsup liminf max min sup inf arg argmax argmin
exp log ln sin cos tan sinh cosh tanh det tr dim ker
partial nabla infty cdot cdots ldots dots vdots ddots times div pm mp circ odot otimes oplus oslash ast star
le leq ge geq ne neq approx equiv sim simeq propto in notin subset subseteq supset supseteq cup cap
to rightarrow leftarrow Rightarrow Leftarrow Leftrightarrow implies iff mapsto
forall exists neg land lor
left right big Big bigg Bigg bigl bigr Bigl Bigr middle
langle rangle lVert rVert lvert rvert Vert vert lfloor rfloor lceil rceil
top intercal prime dagger
hat bar tilde vec dot ddot overline underline widehat widetilde underbrace overbrace
quad qquad , ; ! : { } | _ %  # & $
begin end pmatrix bmatrix vmatrix matrix cases aligned array
boxed displaystyle textstyle scriptstyle limits nolimits
""".split()) | {"\\"}

_ENVIRONMENTS = frozenset({"pmatrix", "bmatrix", "vmatrix", "Bmatrix", "matrix", "cases", "aligned", "array"})

_CS = re.compile(r"\\([A-Za-z]+|.)")
_ESCAPES = {
    "\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#",
    "^": r"\textasciicircum{}", "_": r"\_", "%": r"\%", "~": r"\textasciitilde{}",
    "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
}
MAX_MATH = 2000


_UNICODE = {
    "\u2014": "---", "\u2013": "--", "\u2018": "`", "\u2019": "'", "\u201c": "``", "\u201d": "''",
    "\u2026": r"\ldots{}", "\u00d7": r"$\times$", "\u2202": r"$\partial$", "\u2208": r"$\in$",
    "\u2192": r"$\to$", "\u2264": r"$\le$", "\u2265": r"$\ge$", "\u00a0": "~",
}


def escape_text(text: str) -> str:
    """Plain text for LaTeX: every special character escaped, nothing interpreted.

    Latin-1 letters pass (pdflatex reads them as UTF-8); a few common symbols
    become their LaTeX; any other character becomes '?' rather than a TeX error.
    """
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 32 and ch not in "\n\t":
            continue
        elif ord(ch) < 128 or (0xC0 <= ord(ch) <= 0xFF):
            out.append(ch)
        else:
            out.append(_UNICODE.get(ch, "?"))
    return "".join(out)


def check_math(math: str) -> str | None:
    """None if ``math`` is safe to put between ``$``s, else why not."""
    if len(math) > MAX_MATH:
        return f"math longer than {MAX_MATH} characters"
    if "^^" in math:
        return "TeX character codes (^^) are not allowed in math"
    if any(ord(c) < 32 and c not in "\n\t " for c in math):
        return "control characters are not allowed in math"
    if any(ord(c) > 126 for c in math):
        return "math must be written in ASCII LaTeX (\\alpha, not the character)"
    if "$" in math.replace(r"\$", ""):
        return "a $ inside math"
    depth = 0
    for i, c in enumerate(math):
        if c == "{" and (i == 0 or math[i - 1] != "\\"):
            depth += 1
        elif c == "}" and (i == 0 or math[i - 1] != "\\"):
            depth -= 1
            if depth < 0:
                return "unbalanced braces in math"
    if depth != 0:
        return "unbalanced braces in math"
    if "%" in math.replace(r"\%", ""):
        return "% (a TeX comment) inside math"
    if "#" in math.replace(r"\#", ""):
        return "# inside math"
    for m in _CS.finditer(math):
        name = m.group(1)
        if name not in MATH_COMMANDS:
            return f"the command \\{name} is not allowed in math (see the README's list)"
    for m in re.finditer(r"\\(?:begin|end)\s*\{([^}]*)\}", math):
        if m.group(1) not in _ENVIRONMENTS:
            return f"the environment {m.group(1)!r} is not allowed in math"
    for m in re.finditer(r"\\(?:begin|end)(?!\s*\{)", math):
        return "\\begin and \\end need an environment name in braces"
    return None


_MATH_SPLIT = re.compile(r"(\$\$.+?\$\$|\$[^$\n]+?\$)", re.S)


def split_math(text: str) -> list[tuple[str, str]]:
    """[('text', ...), ('math', ...), ('display', ...)] in order."""
    out: list[tuple[str, str]] = []
    pos = 0
    for m in _MATH_SPLIT.finditer(text):
        if m.start() > pos:
            out.append(("text", text[pos:m.start()]))
        s = m.group(0)
        if s.startswith("$$"):
            out.append(("display", s[2:-2]))
        else:
            out.append(("math", s[1:-1]))
        pos = m.end()
    if pos < len(text):
        out.append(("text", text[pos:]))
    return out


_INLINE_MD = re.compile(r"(\*\*[^*\n]+\*\*|\*[^*\n]+\*|`[^`\n]+`)")


def _text_to_latex(text: str) -> str:
    """Escape plain text, keeping Markdown's **bold**, *italic* and `code`."""
    out = []
    pos = 0
    for m in _INLINE_MD.finditer(text):
        out.append(escape_text(text[pos:m.start()]))
        s = m.group(0)
        if s.startswith("**"):
            out.append(r"\textbf{" + escape_text(s[2:-2]) + "}")
        elif s.startswith("*"):
            out.append(r"\emph{" + escape_text(s[1:-1]) + "}")
        else:
            out.append(r"\texttt{" + escape_text(s[1:-1]) + "}")
        pos = m.end()
    out.append(escape_text(text[pos:]))
    return "".join(out)


def markdown_to_latex(text: str) -> str:
    """Instructor Markdown (paragraphs, emphasis, $math$) to safe LaTeX."""
    out = []
    for kind, s in split_math(text):
        if kind == "text":
            out.append(_text_to_latex(s).replace("\n\n", "\n\n\\par "))
            continue
        problem = check_math(s)
        if problem:
            # neutralised: shown verbatim as text, never interpreted
            shown = escape_text(("$$" if kind == "display" else "$") + s + ("$$" if kind == "display" else "$"))
            out.append(r"\texttt{" + shown + "}")
        elif kind == "display":
            out.append(r"\[" + s + r"\]")
        else:
            out.append("$" + s + "$")
    return "".join(out)


def markdown_safe(text: str) -> str:
    """Instructor Markdown for the .md output: math kept only if it passes ``check_math``;
    raw HTML is escaped."""
    out = []
    for kind, s in split_math(text):
        if kind == "text":
            out.append(s.replace("<", "&lt;").replace(">", "&gt;"))
        elif check_math(s):
            out.append("`" + s.replace("`", "'") + "`")
        elif kind == "display":
            out.append("$$" + s + "$$")
        else:
            out.append("$" + s + "$")
    return "".join(out)
