"""Instructor text into LaTeX, safely.

Problem files are untrusted: their text must not reach TeX as code, and math
that ``check`` accepts must compile.  Plain text is escaped character by
character.  Math (``$...$``, ``$$...$$``, a symbol's ``latex:``) is read as
TeX reads it, token by token (control word, control symbol, character), and
accepted only if it is a well-formed formula over a fixed vocabulary:

- every command is on ``MATH_COMMANDS`` (all defined by the preamble of
  ``templates/solution.tex.j2``), takes its arguments (``\\frac{a}{b}``,
  ``\\sqrt[3]{x}``), and a delimiter follows ``\\left``, ``\\right``, ``\\big``;
- braces, ``\\left``/``\\right`` and ``\\begin``/``\\end`` nest properly, at most
  ``MAX_DEPTH`` deep; ``&`` and ``\\\\`` only in the environments of
  ``ENVIRONMENTS``, at most ``MAX_COLUMNS`` columns and ``MAX_ROWS`` rows
  (``array`` column specs are letters ``lcr`` and ``|`` only: no ``*{n}``);
- no ``%``, ``#``, live ``$``, TeX's ``^^`` character codes, control or
  non-ASCII characters, double super- or subscripts, ``^``/``_`` without
  their argument (so nothing the printer appends, ``^\\top``, can meet them).

``math_error`` says where and why a formula is refused, ``prose_problems``
does the same for a Markdown field (control and bidi characters too); the
loader refuses what they refuse, so ``check`` and ``build`` agree.  The renderers
still neutralise anything refused into inert text (defence in depth), and the
PDF is compiled without shell escape in any case (``render/pdf.py``).

The same grammar has a MathML output (``math_to_mathml``, ``markdown_to_html``)
for the HTML pages: it runs only on math ``check_math`` accepted (or on the
printer's own notation), and every text it writes is escaped.

To allow another math command: add it to ``MATH_COMMANDS`` (with its arity in
``_ARITY`` if it takes arguments), define it in the preamble if LaTeX lacks it,
use it in ``tests/test_texsafe.py``'s every-command document, and list it in the README.
"""
from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple

_GREEK = """alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda mu nu xi pi
varpi rho varrho sigma varsigma tau upsilon phi varphi chi psi omega Gamma Delta Theta Lambda Xi Pi Sigma
Upsilon Phi Psi Omega""".split()

# Commands usable as a one-token argument (x^\top, \frac\partial\theta): single math characters.
_SYMBOLS = frozenset(_GREEK + """
ell infty partial nabla top intercal prime dagger emptyset varnothing
cdot times div pm mp circ bullet odot otimes oplus oslash ast star setminus wedge vee
le leq ge geq ll gg approx equiv sim simeq propto prec preceq succ succeq perp parallel mid
in ni subset subseteq supset supseteq cup cap
to rightarrow leftarrow leftrightarrow Rightarrow Leftarrow Leftrightarrow
forall exists neg land lor
langle rangle lVert rVert lvert rvert Vert vert lfloor rfloor lceil rceil lbrace rbrace
""".split())

# Operators (they take limits: \sum_{i}, \max_{x}, \argmin_{\theta}); \tr, \diag, \rank, \argmax,
# \argmin are \DeclareMathOperator'd in the preamble.
_OPERATORS = frozenset("""
sum prod int oint bigcup bigcap bigoplus bigotimes lim limsup liminf max min sup inf arg argmax argmin
exp log ln sin cos tan sinh cosh tanh det tr diag rank dim ker Pr
""".split())

_ARITY = {
    **dict.fromkeys("""mathbf boldsymbol bm mathrm mathit mathbb mathcal mathsf mathtt operatorname sqrt
        hat bar tilde vec dot ddot check overline underline widehat widetilde underbrace overbrace boxed
        text textbf textit""".split(), 1),
    **dict.fromkeys("frac dfrac tfrac binom overset underset".split(), 2),
}
_TEXT_ARGUMENT = frozenset({"text", "textbf", "textit"})      # their argument is text, not math
_DELIMITED = frozenset("left right middle big Big bigg Bigg bigl bigr Bigl Bigr biggl biggr Biggl Biggr".split())
_OTHER = frozenset("""
cdots ldots dots vdots ddots colon ne neq notin iff implies mapsto longrightarrow
quad qquad displaystyle textstyle scriptstyle limits nolimits begin end
""".split())

MATH_COMMANDS = frozenset(_SYMBOLS | _OPERATORS | set(_ARITY) | _DELIMITED | _OTHER)

_CONTROL_SYMBOLS = frozenset(",;:!{}|%#&$_ \\")     # \, \; ... and \\ (a new row)
_DELIMITER_CHARS = frozenset("()[]./|")
_DELIMITER_WORDS = frozenset("""langle rangle lVert rVert lvert rvert Vert vert lfloor rfloor lceil rceil
lbrace rbrace""".split())
_TEXT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 \n\t.,;:!?'`\"()[]-+=*/<>|@")

# environment -> most columns (& per row + 1); array's come from its column spec
ENVIRONMENTS = {"matrix": 10, "pmatrix": 10, "bmatrix": 10, "Bmatrix": 10, "vmatrix": 10, "Vmatrix": 10,
                "cases": 2, "aligned": 10, "array": 10}
MAX_MATH = 2000
MAX_DEPTH = 12
MAX_COLUMNS = 10
MAX_ROWS = 50


class _Tok(NamedTuple):
    kind: str      # "word" (\alpha), "symbol" (\, \{ \\), "char"
    value: str
    at: int        # offset in the formula


class MathError(Exception):
    def __init__(self, at: int, message: str):
        super().__init__(message)
        self.at = at
        self.message = message


def tokens(math: str) -> list[_Tok]:
    """The formula as TeX's eyes read it (after refusing what changes how it is read)."""
    for i, c in enumerate(math):
        if c in "\n\t":
            continue
        if ord(c) < 32 or ord(c) == 127:
            raise MathError(i, "control characters are not allowed in math")
        if ord(c) > 126:
            raise MathError(i, "math must be written in ASCII LaTeX (\\alpha, not the character)")
    at = math.find("^^")
    if at >= 0:
        raise MathError(at, "TeX character codes (^^) are not allowed in math")
    out, i, n = [], 0, len(math)
    while i < n:
        c = math[i]
        if c != "\\":
            out.append(_Tok("char", c, i))
            i += 1
        elif i + 1 == n:
            raise MathError(i, "a lone \\ at the end of the math")
        elif math[i + 1].isalpha():
            j = i + 1
            while j < n and math[j].isalpha():
                j += 1
            out.append(_Tok("word", math[i + 1:j], i))
            i = j
        else:
            out.append(_Tok("symbol", math[i + 1], i))
            i += 2
    return out


class _Env(NamedTuple):
    name: str
    columns: int


class _Cursor:
    """The tokens of one formula and the place reached in them, spaces skipped."""

    def __init__(self, math: str):
        self.toks = tokens(math)
        self.i = 0

    def peek(self) -> _Tok | None:
        while self.i < len(self.toks) and self.toks[self.i].kind == "char" and self.toks[self.i].value in " \n\t":
            self.i += 1
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> _Tok | None:
        t = self.peek()
        self.i += t is not None
        return t


class _Parser(_Cursor):
    """A recursive reading of one formula; raises ``MathError`` at the first thing TeX would refuse."""

    def __init__(self, math: str):
        super().__init__(math)
        self.n = len(math)
        self.depth = 0

    def fail(self, t: _Tok | None, message: str):
        raise MathError(t.at if t else self.n, message)

    # grammar
    def formula(self) -> None:
        self.list(None)

    def list(self, end: str | None, env: _Env | None = None, in_left: bool = False, in_option: bool = False):
        """Atoms until ``end`` ('}', ']', 'right', 'end' or None for the end of the formula)."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail(self.peek(), f"math nested more than {MAX_DEPTH} deep")
        sup = sub = ""          # this atom's scripts: "" none, "prime" (f' may take ^ next), "done"
        after_op = False
        columns, rows = 1, 1
        while True:
            i0 = self.i
            t = self.take()
            if self.i - 1 > i0 and sup == "prime":     # spaces end a prime's superscript
                sup = "done"
            if t is None:
                if end is not None:
                    self.fail(None, {"}": "a { is never closed", "]": "a [ is never closed",
                                     "right": "\\left without \\right",
                                     "end": f"\\begin{{{env and env.name}}} without \\end"}[end])
                break
            kind, v = t.kind, t.value
            if (kind == "char" and v == end) or (kind == "word" and v == end):
                break
            atom, op = True, False
            if kind == "char":
                if v in "^_":
                    if (v == "^" and sup == "done") or (v == "_" and sub):
                        self.fail(t, f"a double {'super' if v == '^' else 'sub'}script (group with braces: {{x^a}}^b)")
                    if v == "^":
                        sup = "done"
                    else:
                        sub, sup = "done", ("done" if sup == "prime" else sup)
                    self.argument(t, "^" if v == "^" else "_")
                    continue
                if v == "'":
                    if sup == "done":
                        self.fail(t, "a double superscript (a prime after a superscript)")
                    sup = "prime"
                    continue
                if v in "%#$":
                    self.fail(t, {"%": "% (a TeX comment) inside math", "#": "# inside math",
                                  "$": "a $ inside math"}[v])
                if v == "~":
                    self.fail(t, "~ inside math (\\sim for 'distributed as'; \\, or \\quad for space)")
                if v == "}":
                    self.fail(t, "a } without its {")
                if v == "{":
                    self.list("}")
                elif v == "&":
                    if env is None:
                        self.fail(t, "& outside a matrix, array, cases or aligned")
                    columns += 1
                    if columns > env.columns:
                        self.fail(t, f"more than {env.columns} columns in {env.name}")
                    atom = False
            elif kind == "symbol":
                if v not in _CONTROL_SYMBOLS:
                    self.fail(t, f"the command \\{v} is not allowed in math (see the README's list)")
                if v == "\\":
                    if env is None:
                        self.fail(t, "\\\\ (a new row) outside a matrix, array, cases or aligned")
                    rows, columns = rows + 1, 1
                    if rows > MAX_ROWS:
                        self.fail(t, f"more than {MAX_ROWS} rows in {env.name}")
                    nxt = self.peek()
                    if nxt is not None and nxt.kind == "char" and nxt.value in "[*":
                        self.fail(nxt, f"{nxt.value} right after \\\\ (TeX reads it as an option)")
                    atom = False
            else:
                if v not in MATH_COMMANDS:
                    self.fail(t, f"the command \\{v} is not allowed in math (see the README's list)")
                if v in ("limits", "nolimits"):
                    if not after_op:
                        self.fail(t, f"\\{v} must follow an operator (\\sum, \\max, \\operatorname{{...}})")
                    continue
                if v == "begin":
                    self.environment(t)
                elif v == "end":
                    self.fail(t, "\\end without its \\begin")
                elif v == "right":
                    self.fail(t, "\\right without \\left")
                elif v == "middle":
                    if not in_left:
                        self.fail(t, "\\middle outside \\left ... \\right")
                    self.delimiter(t)
                elif v == "left":
                    if in_option:
                        self.fail(t, "\\left in the [...] of \\sqrt (put it in braces)")
                    self.delimiter(t)
                    self.list("right", in_left=True)
                    self.delimiter(self.toks[self.i - 1])
                elif v in _DELIMITED:
                    self.delimiter(t)
                elif v in _TEXT_ARGUMENT:
                    self.text_argument(t)
                else:
                    nxt = self.peek()
                    if v == "sqrt" and nxt is not None and nxt.kind == "char" and nxt.value == "[":
                        self.take()
                        self.list("]", in_option=True)
                    elif v == "operatorname" and nxt is not None and nxt.kind == "char" and nxt.value == "*":
                        self.take()
                    elif v == "dots" and nxt is not None and nxt.kind == "word" and nxt.value == "bm":
                        self.fail(nxt, "\\dots before \\bm does not compile: write \\cdots or \\ldots")
                    for _ in range(_ARITY.get(v, 0)):
                        self.argument(t, "\\" + v)
                    op = v in _OPERATORS or v == "operatorname"
            if atom:
                sup = sub = ""
                after_op = op
        self.depth -= 1

    def argument(self, t: _Tok, what: str) -> None:
        """One argument: {...} or a single character or symbol."""
        a = self.take()
        if a is None:
            self.fail(t, f"{what} needs an argument")
        if a.kind == "char" and a.value == "{":
            self.list("}")
        elif a.kind == "char" and a.value not in "}^_&%#$~'[]\\":
            return
        elif a.kind == "word" and a.value in _SYMBOLS:
            return
        else:
            self.fail(a, f"{what} needs its argument in braces here")

    def text_argument(self, t: _Tok) -> None:
        a = self.take()
        if a is None or a.kind != "char" or a.value != "{":
            self.fail(a or t, f"\\{t.value} needs its text in braces")
        while True:
            c = self.toks[self.i] if self.i < len(self.toks) else None
            self.i += 1
            if c is None:
                self.fail(None, "a { is never closed")
            if c.kind == "char" and c.value == "}":
                return
            if c.kind != "char" or c.value not in _TEXT_CHARS:
                self.fail(c, f"only letters, digits and punctuation inside \\{t.value}{{...}}")

    def delimiter(self, t: _Tok) -> None:
        d = self.take()
        ok = d is not None and ((d.kind == "char" and d.value in _DELIMITER_CHARS)
                                or (d.kind == "symbol" and d.value in "{}|")
                                or (d.kind == "word" and d.value in _DELIMITER_WORDS))
        if not ok:
            self.fail(d or t, f"\\{t.value} needs a delimiter: ( ) [ ] | . \\{{ \\}} \\langle \\lVert ...")

    def name_in_braces(self, t: _Tok) -> str:
        start = self.take()
        if start is None or start.kind != "char" or start.value != "{":
            self.fail(start or t, f"\\{t.value} needs an environment name in braces")
        name = ""
        while self.i < len(self.toks) and self.toks[self.i].kind == "char" and self.toks[self.i].value.isalpha():
            name += self.toks[self.i].value
            self.i += 1
        close = self.toks[self.i] if self.i < len(self.toks) else None
        if close is None or close.kind != "char" or close.value != "}":
            self.fail(close, f"\\{t.value} needs an environment name in braces")
        self.i += 1
        if name not in ENVIRONMENTS:
            self.fail(start, f"the environment {name!r} is not allowed in math "
                             f"(allowed: {', '.join(sorted(ENVIRONMENTS))})")
        return name

    def environment(self, t: _Tok) -> None:
        name = self.name_in_braces(t)
        columns = ENVIRONMENTS[name]
        if name == "array":
            spec = self.take()
            if spec is None or spec.kind != "char" or spec.value != "{":
                self.fail(spec or t, "array needs its columns in braces: \\begin{array}{cc}")
            columns = 0
            while True:
                c = self.take()
                if c is not None and c.kind == "char" and c.value == "}":
                    break
                if c is None or c.kind != "char" or c.value not in "lcr|":
                    self.fail(c, "array columns are l, c, r and | only")
                columns += c.value != "|"
            if not 0 < columns <= MAX_COLUMNS:
                self.fail(spec, f"array needs 1 to {MAX_COLUMNS} columns")
        self.list("end", env=_Env(name, columns))
        end = self.toks[self.i - 1]
        if self.name_in_braces(end) != name:
            self.fail(end, f"\\begin{{{name}}} ends with a different \\end")


def math_error(math: str) -> MathError | None:
    """None if ``math`` is safe (and well-formed) between ``$``s, else where and why not."""
    if len(math) > MAX_MATH:
        return MathError(MAX_MATH, f"math longer than {MAX_MATH} characters")
    try:
        _Parser(math).formula()
    except MathError as e:
        return e
    return None


def check_math(math: str) -> str | None:
    """None if ``math`` is safe to put between ``$``s, else why not."""
    e = math_error(math)
    return e.message if e else None


def check_symbol_latex(latex: str) -> str | None:
    """None if a symbol's ``latex:`` is safe, also where the printer appends ``^\\top``,
    ``^{-1}`` or ``\\left(`` to it; else why not."""
    if not latex.strip():
        return "latex is empty"
    e = math_error(latex)
    if e is None and math_error(latex + "^{x}") is not None:
        return ("latex ends in a superscript or prime, where stepgen appends ^\\top and ^{-1}: "
                "put it in braces, {x^2}")
    if e is None and math_error("x_{x}^{x} " + latex) is not None:
        return ("latex begins with a superscript, subscript or prime, which would attach to what "
                "stepgen prints before it: put it in braces, {_a x}")
    return e.message if e else None


# --- characters that must not reach any output --------------------------------------------

from .errors import is_unsafe_char  # noqa: E402  (one definition: outputs and the terminal alike)


def prose_problems(text: str, math: bool = True) -> list[tuple[int, str]]:
    """(offset, why) for each thing in instructor Markdown that ``build`` would refuse:
    unsafe characters, and math (when ``math``) that ``check_math`` refuses."""
    out = []
    for i, ch in enumerate(text):
        if is_unsafe_char(ch):
            out.append((i, f"the invisible or control character U+{ord(ch):04X} is not allowed"))
            break
    if math:
        for kind, start, s in _math_segments(text):
            if kind != "text":
                e = math_error(s)
                if e:
                    out.append((start + e.at, e.message))
    return out


# --- LaTeX output -----------------------------------------------------------------------------

_ESCAPES = {
    "\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#",
    "^": r"\textasciicircum{}", "_": r"\_", "%": r"\%", "~": r"\textasciitilde{}",
    "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
}

_UNICODE = {
    "\u2014": "---", "\u2013": "--", "\u2018": "`", "\u2019": "'", "\u201c": "``", "\u201d": "''",
    "\u2026": r"\ldots{}", "\u00d7": r"$\times$", "\u2202": r"$\partial$", "\u2208": r"$\in$",
    "\u2192": r"$\to$", "\u2264": r"$\le$", "\u2265": r"$\ge$", "\u00a0": "~",
    # what instructors write in titles and sources: "§4.3", "±", "x²", "≈", Greek letters
    "\u00a7": r"\S{}", "\u00b6": r"\P{}", "\u00a9": r"\copyright{}", "\u00b0": r"$^\circ$",
    "\u00b1": r"$\pm$", "\u00b7": r"$\cdot$", "\u00b2": r"$^2$", "\u00b3": r"$^3$", "\u00b9": r"$^1$",
    "\u00bd": r"$\frac12$", "\u2212": "$-$", "\u2248": r"$\approx$", "\u2260": r"$\ne$",
    "\u221e": r"$\infty$", "\u2207": r"$\nabla$", "\u2211": r"$\sum$", "\u00ac": r"$\neg$",
}
_UNICODE.update({chr(0x3B1 + i): rf"$\{name}$" for i, name in enumerate(
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi o pi rho varsigma sigma tau "
    "upsilon phi chi psi omega".split()) if name != "o"})
_UNICODE.update({chr(0x391 + i): rf"$\{name}$" for i, name in enumerate(
    "A B Gamma Delta E Z H Theta I K Lambda M N Xi O Pi P - Sigma T Upsilon Phi X Psi Omega".split())
    if len(name) > 1})


def escape_text(text: str) -> str:
    """Plain text for LaTeX: every special character escaped, nothing interpreted.

    Latin-1 letters pass (pdflatex reads them as UTF-8); a few common symbols
    become their LaTeX; any other character becomes '?' rather than a TeX error.
    """
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif is_unsafe_char(ch):
            out.append("?")
        elif ord(ch) < 128 or (0xC0 <= ord(ch) <= 0xFF):
            out.append(ch)
        else:
            out.append(_UNICODE.get(ch, "?"))
    return "".join(out)


# a backslash escapes the next character, so \$ does not end the math
_MATH_SPLIT = re.compile(r"(\$\$(?:\\.|[^\\$]|\$(?!\$))+?\$\$|\$(?:\\[^\n]|[^$\\\n])+?\$)", re.S)


def _math_segments(text: str) -> list[tuple[str, int, str]]:
    """[(kind, offset of the content, content)], kind 'text', 'math' or 'display'."""
    out: list[tuple[str, int, str]] = []
    pos = 0
    for m in _MATH_SPLIT.finditer(text):
        if m.start() > pos:
            out.append(("text", pos, text[pos:m.start()]))
        s = m.group(0)
        if s.startswith("$$"):
            out.append(("display", m.start() + 2, s[2:-2]))
        else:
            out.append(("math", m.start() + 1, s[1:-1]))
        pos = m.end()
    if pos < len(text):
        out.append(("text", pos, text[pos:]))
    return out


def split_math(text: str) -> list[tuple[str, str]]:
    """[('text', ...), ('math', ...), ('display', ...)] in order."""
    return [(kind, s) for kind, _, s in _math_segments(text)]


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


# --- Markdown output ---------------------------------------------------------------------------

def _md_plain(s: str) -> str:
    """No raw HTML, no entities, no invisible characters: & < > escaped, unsafe characters shown as U+FFFD."""
    s = "".join("\ufffd" if is_unsafe_char(c) else c for c in s)
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def markdown_safe(text: str) -> str:
    """Instructor Markdown for the .md output: math kept only if it passes ``check_math``
    (its < and > written \\lt and \\gt, which MathJax and GitHub read); raw HTML escaped."""
    out = []
    for kind, s in split_math(text):
        if kind == "text":
            out.append(_md_plain(s))
        elif check_math(s):
            out.append("`" + _md_plain(s).replace("`", "'") + "`")
        else:
            s = s.replace("<", r"\lt ").replace(">", r"\gt ")
            out.append("$$" + s + "$$" if kind == "display" else "$" + s + "$")
    return "".join(out)


# --- MathML output -----------------------------------------------------------------------------
#
# The same token grammar read once more, this time building MathML Core (which browsers render and
# screen readers read). Instructor math reaches it only after ``check_math`` accepted it; the
# renderers also pass it the printer's own notation (a symbol's LaTeX, ``\frac{\partial f}{\partial
# x}``, ``\mathbb{R}^{D}``), for which an unknown command becomes an inert identifier. Every text
# that reaches the output is escaped; nothing is interpreted beyond this table.

def _xml(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


_MML_SYMBOL = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ϵ", "varepsilon": "ε", "zeta": "ζ",
    "eta": "η", "theta": "θ", "vartheta": "ϑ", "iota": "ι", "kappa": "κ", "lambda": "λ", "mu": "μ", "nu": "ν",
    "xi": "ξ", "pi": "π", "varpi": "ϖ", "rho": "ρ", "varrho": "ϱ", "sigma": "σ", "varsigma": "ς", "tau": "τ",
    "upsilon": "υ", "phi": "ϕ", "varphi": "φ", "chi": "χ", "psi": "ψ", "omega": "ω", "Gamma": "Γ",
    "Delta": "Δ", "Theta": "Θ", "Lambda": "Λ", "Xi": "Ξ", "Pi": "Π", "Sigma": "Σ", "Upsilon": "Υ", "Phi": "Φ",
    "Psi": "Ψ", "Omega": "Ω", "ell": "ℓ", "infty": "∞", "partial": "∂", "nabla": "∇", "emptyset": "∅",
    "varnothing": "∅", "top": "⊤", "intercal": "⊺", "dagger": "†",
}
_MML_OPERATOR = {
    "prime": "′", "cdot": "·", "times": "×", "div": "÷", "pm": "±",
    "mp": "∓", "circ": "∘", "bullet": "∙", "odot": "⊙", "otimes": "⊗", "oplus": "⊕", "oslash": "⊘", "ast": "∗",
    "star": "⋆", "setminus": "∖", "wedge": "∧", "vee": "∨", "le": "≤", "leq": "≤", "ge": "≥", "geq": "≥",
    "ll": "≪", "gg": "≫", "approx": "≈", "equiv": "≡", "sim": "∼", "simeq": "≃", "propto": "∝", "prec": "≺",
    "preceq": "⪯", "succ": "≻", "succeq": "⪰", "perp": "⊥", "parallel": "∥", "mid": "∣", "in": "∈", "ni": "∋",
    "subset": "⊂", "subseteq": "⊆", "supset": "⊃", "supseteq": "⊇", "cup": "∪", "cap": "∩", "to": "→",
    "rightarrow": "→", "leftarrow": "←", "leftrightarrow": "↔", "Rightarrow": "⇒", "Leftarrow": "⇐",
    "Leftrightarrow": "⇔", "forall": "∀", "exists": "∃", "neg": "¬", "land": "∧", "lor": "∨", "langle": "⟨",
    "rangle": "⟩", "lVert": "‖", "rVert": "‖", "lvert": "|", "rvert": "|", "Vert": "‖", "vert": "|",
    "lfloor": "⌊", "rfloor": "⌋", "lceil": "⌈", "rceil": "⌉", "lbrace": "{", "rbrace": "}", "cdots": "⋯",
    "ldots": "…", "dots": "…", "vdots": "⋮", "ddots": "⋱", "colon": ":", "ne": "≠", "neq": "≠", "notin": "∉",
    "iff": "⟺", "implies": "⟹", "mapsto": "↦", "longrightarrow": "⟶",
    "sum": "∑", "prod": "∏", "int": "∫", "oint": "∮", "bigcup": "⋃", "bigcap": "⋂", "bigoplus": "⨁",
    "bigotimes": "⨂",
}
_MML_NAMED_OPERATOR = {"tr": "tr", "diag": "diag", "rank": "rank", "argmax": "arg max", "argmin": "arg min"}
_MML_SPACE = {",": "0.1667em", ":": "0.2222em", ";": "0.2778em", " ": "0.25em", "quad": "1em", "qquad": "2em"}
_MML_ACCENT = {"hat": "^", "widehat": "^", "bar": "‾", "overline": "‾", "tilde": "~", "widetilde": "~",
               "vec": "→", "dot": "˙", "ddot": "¨", "check": "ˇ"}
_MML_FENCES = {"pmatrix": ("(", ")"), "bmatrix": ("[", "]"), "Bmatrix": ("{", "}"), "vmatrix": ("|", "|"),
               "Vmatrix": ("‖", "‖"), "cases": ("{", "")}
_BIG = {"big": "1.2em", "bigl": "1.2em", "bigr": "1.2em", "Big": "1.8em", "Bigl": "1.8em", "Bigr": "1.8em",
        "bigg": "2.4em", "biggl": "2.4em", "biggr": "2.4em", "Bigg": "3em", "Biggl": "3em", "Biggr": "3em"}
_GREEK_LOWER = "αβγδεζηθικλμνξοπρςστυφχψω"
_GREEK_UPPER = "ΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡ΢ΣΤΥΦΧΨΩ"
# Unicode's mathematical alphanumerics: (capital A, small a, digit 0, capital Alpha, small alpha)
_VARIANTS = {
    "bold": (0x1D400, 0x1D41A, 0x1D7CE, 0x1D6A8, 0x1D6C2),
    "italic": (0x1D434, 0x1D44E, None, 0x1D6E2, 0x1D6FC),
    "bold-italic": (0x1D468, 0x1D482, 0x1D7CE, 0x1D71C, 0x1D736),
    "double-struck": (0x1D538, 0x1D552, 0x1D7D8, None, None),
    "script": (0x1D49C, 0x1D4B6, None, None, None),
    "sans-serif": (0x1D5A0, 0x1D5BA, 0x1D7E2, None, None),
    "monospace": (0x1D670, 0x1D68A, 0x1D7F6, None, None),
}
_HOLES = {("italic", "h"): "ℎ", **{("double-struck", c): u for c, u in zip("CHNPQRZ", "ℂℍℕℙℚℝℤ")},
          **{("script", c): u for c, u in zip("BEFHILMRego", "ℬℰℱℋℐℒℳℛℯℊℴ")}}
_MML_VARIANT_COMMANDS = {"mathbf": "bold", "boldsymbol": "bold-italic", "bm": "bold-italic", "mathit": "italic",
                         "mathbb": "double-struck", "mathcal": "script", "mathsf": "sans-serif",
                         "mathtt": "monospace", "mathrm": "normal", "operatorname": "normal"}


def styled(ch: str, variant: str | None) -> str:
    """A letter, digit or Greek letter in a mathematical alphabet (bold x is 𝐱, as screen readers say)."""
    if variant in (None, "normal") or variant not in _VARIANTS:
        return ch
    if (variant, ch) in _HOLES:
        return _HOLES[(variant, ch)]
    cap, small, digit, gcap, gsmall = _VARIANTS[variant]
    if "A" <= ch <= "Z":
        return chr(cap + ord(ch) - 65)
    if "a" <= ch <= "z":
        return chr(small + ord(ch) - 97)
    if "0" <= ch <= "9" and digit:
        return chr(digit + ord(ch) - 48)
    if ch in _GREEK_LOWER and gsmall:
        return chr(gsmall + _GREEK_LOWER.index(ch))
    if ch in _GREEK_UPPER and gcap:
        return chr(gcap + _GREEK_UPPER.index(ch))
    return ch


class _MathML(_Cursor):
    """Tokens to MathML: a list of atoms, each a MathML element, scripts attached to the atom before."""

    def __init__(self, math: str, slots: tuple[str, ...] = ()):
        super().__init__(math)
        self.slots = slots

    def row(self, items: list[str]) -> str:
        return items[0] if len(items) == 1 else "<mrow>" + "".join(items) + "</mrow>"

    def items(self, end: str | None, variant: str | None = None, table: bool = False):
        """Atoms until ``end``; in a table, a list of rows of cells of atoms."""
        rows: list[list[list[str]]] = [[[]]]
        out = rows[-1][-1]
        while True:
            t = self.peek()
            if t is None:
                break
            if (t.kind == "char" and t.value == end) or (t.kind == "word" and t.value == end):
                self.take()
                break
            if t.kind == "char" and t.value == "}" and end != "}":
                self.take()            # stray: ignored (only reaches here from the printer's notation)
                continue
            if table and t.kind == "char" and t.value == "&":
                self.take()
                rows[-1].append([])
                out = rows[-1][-1]
                continue
            if table and t.kind == "symbol" and t.value == "\\":
                self.take()
                rows.append([[]])
                out = rows[-1][-1]
                continue
            if t.kind == "char" and t.value in "^_'":
                self.script(out, variant)
                continue
            atom = self.atom(variant)
            if atom and out and t.kind == "char" and t.value in "+-" and not _ends_ordinary(out[-1]):
                atom = atom.replace("<mo>", '<mo form="prefix">', 1)     # TeX's unary sign: = -y, (-1), a \cdot -b
            if atom and out and _operator_name(t) and _ends_ordinary(out[-1]):
                out.append('<mspace width="0.1667em"></mspace>')       # TeX's thin space: x \sin y, (a) \cosh b
            if atom:
                out.append(atom)
        return rows if table else rows[0][0]

    def script(self, out: list[str], variant: str | None) -> None:
        base = out.pop() if out else "<mrow></mrow>"
        sub = sup = None
        primes = ""
        while True:
            t = self.peek()
            if t is None or t.kind != "char" or t.value not in "^_'":
                break
            self.take()
            if t.value == "'":
                primes += "′"
            elif t.value == "^":
                sup = (sup or "") + self.argument(variant)
            else:
                sub = self.argument(variant)
        if primes:      # f′ beside f: the prime glyph is already raised (as a superscript it rides too high)
            base = f'<mrow>{base}<mo lspace="0" rspace="0">{primes}</mo></mrow>'
            if sub is None and sup is None:
                out.append(base)
                return
        if base.startswith("<mo movablelimits") and sub is not None:     # \sum_{i}^{n}
            tag = "munderover" if sup is not None else "munder"
        elif base.startswith("<munder><mrow>") and "⏟" in base and sub is not None and sup is None:
            out.append(f"<munder>{base}{sub}</munder>")                 # \underbrace{x}_{D}
            return
        else:
            tag = "msubsup" if sub is not None and sup is not None else "msub" if sub is not None else "msup"
        if tag in ("msubsup", "munderover"):
            out.append(f"<{tag}>{base}{sub}{sup}</{tag}>")
        else:
            out.append(f"<{tag}>{base}{sub if sub is not None else sup}</{tag}>")
        if base.startswith('<mo movablelimits="true" form="prefix"'):      # \max_{x} f: its space after the limits
            out[-1] += self.operator_space()

    def argument(self, variant: str | None) -> str:
        t = self.take()
        if t is None:
            return "<mrow></mrow>"
        if t.kind == "char" and t.value == "{":
            return "<mrow>" + "".join(self.items("}", variant)) + "</mrow>"
        self.i -= 1
        return self.atom(variant) or "<mrow></mrow>"

    def group(self, variant: str | None) -> str:
        """A braced argument as one element (a single atom stays itself)."""
        t = self.take()
        if t is None:
            return "<mrow></mrow>"
        if t.kind == "char" and t.value == "{":
            return self.row(self.items("}", variant) or ["<mrow></mrow>"])
        self.i -= 1
        return self.atom(variant) or "<mrow></mrow>"

    def raw_text(self) -> str:
        t = self.take()
        if t is None or t.kind != "char" or t.value != "{":
            return ""
        out, depth = "", 0
        while self.i < len(self.toks):
            c = self.toks[self.i]
            self.i += 1
            if c.kind == "char" and c.value == "}" and depth == 0:
                break
            depth += (c.kind == "char" and c.value == "{") - (c.kind == "char" and c.value == "}")
            out += c.value if c.kind == "char" else ("\\" + c.value if c.kind == "word" else c.value)
        return out

    def delimiter(self, size: str | None = None, fence: bool = False) -> str:
        d = self.take()
        if d is None:
            return ""
        ch = d.value if d.kind in ("char", "symbol") else _MML_OPERATOR.get(d.value, "")
        if ch == "|" and d.kind == "symbol":
            ch = "‖"
        if ch == ".":
            return ""
        attrs = (f' minsize="{size}" maxsize="{size}"' if size else ' fence="true"' if fence else ' stretchy="false"') + \
            ' lspace="0" rspace="0"'
        if d.kind == "word" and d.value in ("lVert", "rVert", "Vert") or ch == "‖":
            attrs += ' stretchy="true"' if size or fence else ""
        return f"<mo{attrs}>{_xml(ch)}</mo>"

    def atom(self, variant: str | None) -> str:
        t = self.take()
        kind, v = t.kind, t.value
        if kind == "char":
            if v == "{":
                return self.row(self.items("}", variant) or ["<mrow></mrow>"])
            if v == "@" and self.slots and self.i < len(self.toks) and self.toks[self.i].value.isdigit():
                k = self.toks[self.i].value          # a rule's note: @0 is the MathML of its first formula
                self.i += 1
                return self.slots[int(k)] if int(k) < len(self.slots) else "<mi>@</mi>"
            if v.isalpha():
                ch = styled(v, variant)
                return f'<mi mathvariant="normal">{v}</mi>' if variant == "normal" else f"<mi>{ch}</mi>"
            if v == "." and not (self.i < len(self.toks) and self.toks[self.i].value.isdigit()):
                return "<mo>.</mo>"
            if v.isdigit() or v == ".":
                num = v
                while self.i < len(self.toks) and self.toks[self.i].kind == "char" and \
                        (self.toks[self.i].value.isdigit() or self.toks[self.i].value == "." and num[-1:].isdigit()):
                    num += self.toks[self.i].value
                    self.i += 1
                return "<mn>" + "".join(styled(c, variant) for c in num) + "</mn>"
            if v in "()[]|":
                return f'<mo stretchy="false">{v}</mo>'
            if v == "/":        # TeX's / is an ordinary symbol: df/dx, no space around it
                return '<mo lspace="0" rspace="0">/</mo>'
            if v in "&~":
                return ""
            return "<mo>" + _xml({"-": "−", "*": "∗"}.get(v, v)) + "</mo>"
        if kind == "symbol":
            if v in _MML_SPACE:
                return f'<mspace width="{_MML_SPACE[v]}"></mspace>'
            if v == "!":
                return ""
            if v == "|":
                return '<mo stretchy="false">‖</mo>'
            if v in "{}":
                return f'<mo stretchy="false">{v}</mo>'
            return "<mo>" + _xml(v) + "</mo>" if v != "\\" else ""
        # a control word
        if v in _MML_SYMBOL:
            ch = _MML_SYMBOL[v]
            if variant and variant != "normal":
                return f"<mi>{styled(ch, variant)}</mi>"
            return f'<mi mathvariant="normal">{ch}</mi>' if ch in _GREEK_UPPER else f"<mi>{ch}</mi>"
        if v in ("sum", "prod", "bigcup", "bigcap", "bigoplus", "bigotimes"):
            return f'<mo movablelimits="true" largeop="true">{_MML_OPERATOR[v]}</mo>'
        if v in ("int", "oint"):
            return f'<mo largeop="true">{_MML_OPERATOR[v]}</mo>'
        if v in _DELIMITER_WORDS:       # \lvert u \rvert: brackets, no space inside (not the dictionary's infix |)
            return f'<mo stretchy="false" lspace="0" rspace="0">{_xml(_MML_OPERATOR[v])}</mo>'
        if v in _MML_OPERATOR:
            return f"<mo>{_xml(_MML_OPERATOR[v])}</mo>"
        if v in _MML_SPACE:
            return f'<mspace width="{_MML_SPACE[v]}"></mspace>'
        if v in _OPERATORS or v in _MML_NAMED_OPERATOR:
            name = _MML_NAMED_OPERATOR.get(v, v)
            if v in ("lim", "limsup", "liminf", "max", "min", "sup", "inf", "argmax", "argmin", "Pr"):
                # TeX's spacing of an operator name (as \\sin's below), not the dictionary's default
                # thick spaces around an <mo> it does not list (ReLU(u) = max (0, u))
                return f'<mo movablelimits="true" form="prefix" lspace="0" rspace="0">{name}</mo>' + self.operator_space()
            return f"<mi>{name}</mi>" + self.operator_space()
        if v in _MML_VARIANT_COMMANDS:
            if v == "operatorname":
                if self.peek() is not None and self.peek().value == "*":
                    self.take()
                name = self.raw_text()
                return (f'<mi mathvariant="normal">{_xml(name)}</mi>' if len(name) == 1
                        else f"<mi>{_xml(name)}</mi>") + self.operator_space()
            inner = self.items_of_group(_MML_VARIANT_COMMANDS[v])
            if v == "mathrm" and all(x.startswith('<mi mathvariant="normal">') for x in inner) and len(inner) > 1:
                return "<mi>" + "".join(x[len('<mi mathvariant="normal">'):-5] for x in inner) + "</mi>"
            return self.row(inner or ["<mrow></mrow>"])
        if v in _TEXT_ARGUMENT:     # spaces at its ends kept (a token element's own are trimmed)
            text = self.raw_text()
            core = text.strip()
            pad = ("\u00a0" if text[:1].isspace() else "", "\u00a0" if text[-1:].isspace() else "")
            return f"<mtext>{pad[0]}{_xml(core)}{pad[1]}</mtext>"
        if v in ("frac", "dfrac", "tfrac"):
            a, b = self.group(variant), self.group(variant)
            return f"<mfrac>{a}{b}</mfrac>"
        if v == "binom":
            a, b = self.group(variant), self.group(variant)
            return f'<mrow><mo>(</mo><mfrac linethickness="0">{a}{b}</mfrac><mo>)</mo></mrow>'
        if v == "sqrt":
            nxt = self.peek()
            if nxt is not None and nxt.kind == "char" and nxt.value == "[":
                self.take()
                index = self.row(self.items("]", variant) or ["<mrow></mrow>"])
                return f"<mroot>{self.group(variant)}{index}</mroot>"
            return f"<msqrt>{self.group(variant)}</msqrt>"
        if v in _MML_ACCENT:
            return f'<mover accent="true">{self.group(variant)}<mo>{_xml(_MML_ACCENT[v])}</mo></mover>'
        if v == "underline":
            return f'<munder accentunder="true">{self.group(variant)}<mo>_</mo></munder>'
        if v == "underbrace":
            return f'<munder><mrow>{self.group(variant)}</mrow><mo stretchy="true">⏟</mo></munder>'
        if v == "overbrace":
            return f'<mover><mrow>{self.group(variant)}</mrow><mo stretchy="true">⏞</mo></mover>'
        if v in ("overset", "underset"):
            a, b = self.group(variant), self.group(variant)
            return f"<mover>{b}{a}</mover>" if v == "overset" else f"<munder>{b}{a}</munder>"
        if v == "boxed":
            return f'<mrow class="boxed">{self.group(variant)}</mrow>'
        if v == "left":
            left = self.delimiter(fence=True)
            inner = "".join(self.items("right", variant))
            right = self.delimiter(fence=True)
            if not any(t in inner for t in ("<mfrac", "<mtable", "<msqrt", "<mroot", "<munder", "<mover")):
                left, right = (x.replace('fence="true"', 'fence="true" stretchy="false"') for x in (left, right))
            return "<mrow>" + left + inner + right + "</mrow>"
        if v == "middle":
            return self.delimiter(fence=True)
        if v in _BIG:
            return self.delimiter(_BIG[v])
        if v == "begin":
            return self.environment(variant)
        if v == "right":          # a piece of the printer's notation that closes a bracket opened before it
            return self.delimiter(fence=True)
        if v in ("displaystyle", "textstyle", "scriptstyle", "limits", "nolimits", "end"):
            return ""
        return f"<mi>{_xml(v)}</mi>"      # the printer's notation only: check_math refuses unknown commands

    def operator_space(self) -> str:
        """TeX's thin space after an operator name (log x), none before its bracket (log(x)) or script."""
        t = self.peek()
        if t is None or (t.kind == "char" and t.value in "([^_'}&") or \
                (t.kind == "word" and (t.value == "left" or t.value in _BIG)) or t.kind == "symbol":
            return ""
        return '<mspace width="0.1667em"></mspace>'

    def items_of_group(self, variant: str) -> list[str]:
        t = self.take()
        if t is None:
            return []
        if t.kind == "char" and t.value == "{":
            return self.items("}", variant)
        self.i -= 1
        a = self.atom(variant)
        return [a] if a else []

    def environment(self, variant: str | None) -> str:
        name = self.raw_text()
        if name == "array":
            self.raw_text()
        rows = self.items("end", variant, table=True)
        self.raw_text()
        while rows and rows[-1] == [[]]:
            rows.pop()
        align = "left" if name in ("aligned", "cases") else None
        body = "".join("<mtr>" + "".join(
            (f'<mtd style="text-align:{"right" if name == "aligned" and k % 2 == 0 and len(r) > 1 else align}">'
             if align else "<mtd>") + ('<mrow displaystyle="true">' + "".join(c) + "</mrow>" if name == "aligned"
                                       else "".join(c)) + "</mtd>" for k, c in enumerate(r)) + "</mtr>" for r in rows)
        table = f"<mtable>{body}</mtable>"
        if name in _MML_FENCES:
            left, right = _MML_FENCES[name]
            return (f'<mrow><mo stretchy="true">{left}</mo>{table}'
                    + (f'<mo stretchy="true">{right}</mo>' if right else "") + "</mrow>")
        return table


_LARGE_OPERATORS = frozenset("sum prod int oint bigcup bigcap bigoplus bigotimes".split())


def _operator_name(t: _Tok) -> bool:
    """An operator written as a name (\\sin, \\max, \\operatorname{tr}): TeX puts a thin space before it
    after an ordinary atom or a closing bracket, which MathML leaves to the markup."""
    return t.kind == "word" and (t.value == "operatorname" or (t.value in _OPERATORS or t.value in _MML_NAMED_OPERATOR)
                                 and t.value not in _LARGE_OPERATORS)


def ends_ordinary(mathml: str) -> bool:
    """Whether MathML ends in an ordinary atom or a closing bracket (not an operator, relation or space)."""
    if mathml.endswith("</mspace>"):
        return False
    last = re.search(r"<mo(?: [^>]*)?>([^<]*)</mo>$", mathml)
    return last is None or last.group(1) in ")]|‖⟩⌋⌉}"


_ends_ordinary = ends_ordinary


def latex_to_mathml_body(math: str, slots: tuple[str, ...] = ()) -> str:
    """The MathML children of a formula (no ``<math>`` around them), for composing larger ones;
    ``@0``, ``@1`` … in it stand for the MathML ``slots`` (formulas printed from their trees)."""
    try:
        return "".join(_MathML(math, slots).items(None))
    except MathError:
        return "<mtext>" + _xml(math) + "</mtext>"


def math_to_mathml(math: str, display: bool = False, slots: tuple[str, ...] = ()) -> str:
    """A formula as a ``<math>`` element. Instructor math must have passed ``check_math``."""
    return ('<math display="block">' if display else "<math>") + latex_to_mathml_body(math, slots) + "</math>"


def _text_to_html(text: str) -> str:
    """Escape plain text, keeping Markdown's **bold**, *italic* and `code`."""
    import html
    out, pos = [], 0
    text = "".join("\ufffd" if is_unsafe_char(c) else c for c in text)
    for m in _INLINE_MD.finditer(text):
        out.append(html.escape(text[pos:m.start()], quote=False))
        s = m.group(0)
        if s.startswith("**"):
            out.append("<strong>" + html.escape(s[2:-2], quote=False) + "</strong>")
        elif s.startswith("*"):
            out.append("<em>" + html.escape(s[1:-1], quote=False) + "</em>")
        else:
            out.append("<code>" + html.escape(s[1:-1], quote=False) + "</code>")
        pos = m.end()
    out.append(html.escape(text[pos:], quote=False))
    return "".join(out)


def markdown_to_html(text: str, slots: tuple[str, ...] = (), wide=None) -> str:
    """Instructor Markdown (paragraphs, emphasis, $math$) to safe HTML: text escaped, math as MathML
    only if it passes ``check_math`` (else shown verbatim as code); paragraphs as ``<br>`` breaks.
    Inline math for which ``wide(math)`` holds (default: long LaTeX) gets a box of its own that
    scrolls on a narrow screen."""
    wide = wide or (lambda s: len(s) > INLINE_SCROLL)
    import html
    out = []
    for kind, s in split_math(text):
        if kind == "text":
            out.append(_text_to_html(s).replace("\n\n", "<br><br>"))
        elif check_math(s):
            shown = ("$$" if kind == "display" else "$") + s + ("$$" if kind == "display" else "$")
            out.append("<code>" + html.escape(shown, quote=False) + "</code>")
        elif kind == "display":
            out.append('<span class="formula">' + math_to_mathml(s, True, slots) + "</span>")
        elif wide(s):      # a long formula in a sentence scrolls in its own box on a phone
            out.append('<span class="math-scroll">' + math_to_mathml(s, False, slots) + "</span>")
        else:
            out.append(math_to_mathml(s, False, slots))
    return "".join(out)


INLINE_SCROLL = 40      # characters of LaTeX from which inline math gets a box of its own
