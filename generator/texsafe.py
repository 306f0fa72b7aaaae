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


class _Parser:
    """A recursive reading of one formula; raises ``MathError`` at the first thing TeX would refuse."""

    def __init__(self, math: str):
        self.toks = tokens(math)
        self.n = len(math)
        self.i = 0
        self.depth = 0

    # token access
    def peek(self) -> _Tok | None:
        while self.i < len(self.toks) and self.toks[self.i].value in " \n\t" and self.toks[self.i].kind == "char":
            self.i += 1
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> _Tok | None:
        t = self.peek()
        self.i += t is not None
        return t

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
