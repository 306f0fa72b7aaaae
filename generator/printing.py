"""LaTeX for expressions, in the book's notation: bold vectors and matrices, ^\\top, \\mathbf{I}_D.

``LatexPrinter(names).print(e)`` dispatches on ``e.op`` (``_print_<op>``), the
way SymPy's printers dispatch on the class name.  ``names`` maps each symbol to
its LaTeX; ``symbol_latex`` gives the defaults of SPEC §1 (bold upright for
arrays, ``\\boldsymbol`` for Greek, italic for scalars).  The output uses only
commands on ``texsafe.MATH_COMMANDS``.

``MathMLPrinter`` (at the end) prints the same trees as MathML Core for the HTML
pages, with the LaTeX printer's decisions: it runs the same ``segments``/``fill``
line breaking, its pieces carrying both forms (``Twin``).
"""
from __future__ import annotations

import re
from fractions import Fraction
from typing import Mapping

from .expr import Expr

GREEK = frozenset("""alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda
mu nu xi pi rho sigma tau upsilon phi varphi chi psi omega Gamma Delta Theta Lambda Xi Pi Sigma Upsilon
Phi Psi Omega""".split())

_NAME = re.compile(r"^([A-Za-z]+?)(\d*)(?:_([A-Za-z0-9]+))?$")

_FN_LATEX = {
    "exp": r"\exp", "log": r"\log", "sin": r"\sin", "cos": r"\cos", "tan": r"\tan", "tanh": r"\tanh",
    "sigmoid": r"\sigma", "softplus": r"\operatorname{softplus}",
    "cosh": r"\cosh", "sinh": r"\sinh", "log1p": r"\log", "relu": r"\operatorname{ReLU}",
    "abs": "", "step": r"\mathbb{1}", "sign": r"\operatorname{sign}",
}


def function_latex(name: str) -> str:
    """The LaTeX a function's name prints as (\\tanh, \\sigma, \\operatorname{softmax}); "" for none."""
    return _FN_LATEX.get(name) or _VFN_LATEX.get(name, "")


# The functions of a whole vector, as the books write them.
_VFN_LATEX = {"softmax": r"\operatorname{softmax}", "log_softmax": r"\log\operatorname{softmax}",
              "logsumexp": r"\operatorname{logsumexp}", "mean": r"\operatorname{mean}"}


def symbol_latex(name: str, is_array: bool) -> str:
    """Default LaTeX for a declared name (SPEC §1)."""
    m = _NAME.match(name)
    if not m:
        return r"\mathrm{" + name + "}"
    base, digits, sub = m.group(1), m.group(2), m.group(3)
    if base in GREEK:
        core = (r"\boldsymbol{\%s}" % base) if is_array else "\\" + base
    elif len(base) == 1:
        core = r"\mathbf{%s}" % base if is_array else base
    else:
        core = r"\mathbf{%s}" % base if is_array else r"\mathit{%s}" % base
    subs = [s for s in (digits, sub) if s]
    if subs:
        core += "_{" + ",".join(subs) + "}"
    return core


def num_latex(v: Fraction) -> str:
    if v.denominator == 1:
        return str(v.numerator)
    sign = "-" if v < 0 else ""
    return rf"{sign}\frac{{{abs(v.numerator)}}}{{{v.denominator}}}"


def dim_latex(d) -> str:
    return _dim_product_latex(str(d))


def dims_latex(dims: str) -> str:
    """'1×(E×F)' -> '1 \\times (E \\times F)'."""
    return re.sub(r"[^×()]+", lambda m: _dim_product_latex(m.group()), dims).replace("×", r" \times ")


def _dim_product_latex(d: str) -> str:
    """A product of dims as the book writes it: MN for one-letter dims, a thin space between longer
    names (H_1 N), a dot before a number (N · 2)."""
    fs = [f.strip() for f in d.split("*")]
    if len(fs) > 1 and len(set(fs)) == 1 and not fs[0][:1].isdigit():
        return f"{fs[0]}^{{{len(fs)}}}"                  # D·D is D²
    out = fs[0]
    for a, b in zip(fs, fs[1:]):
        out += (r" \cdot " if b[:1].isdigit() else "" if len(a) == 1 and len(b) == 1 else r" \, ") + b
    return out


class LatexPrinter:
    LEFT, RIGHT = r"\left(", r"\right)"
    LEFT_NORM, RIGHT_NORM = r"\left\lVert ", r" \right\rVert"

    def __init__(self, names: Mapping[str, str] | None = None):
        self.names = dict(names or {})

    def print(self, e: Expr) -> str:
        return getattr(self, "_print_" + e.op)(e)

    __call__ = print

    # precedence: 1 add, 2 product, 3 unary minus, 4 power/postfix, 5 atom
    def prec(self, e: Expr) -> int:
        op = e.op
        if op == "add":
            return 1
        if op == "num":
            return 5 if e.value >= 0 and e.value.denominator == 1 else 2
        if op in ("mul", "matmul", "had", "kron"):
            if op == "mul" and e.args[0].op == "num" and e.args[0].value < 0:
                return 1
            return 2
        if op == "div":
            return 4
        if _reciprocal(e) is not None and e.shape != ():
            return 2                            # 1 ⊘ a
        if op in ("T", "inv", "pow"):
            return 4
        return 5

    def paren(self, e: Expr, prec: int) -> str:
        s = self.print(e)
        if self.prec(e) < prec:
            return self.LEFT + s + self.RIGHT
        return s

    def _print_sym(self, e: Expr) -> str:
        if e.name.startswith("d:"):      # a differential dX
            return r"\mathrm{d}" + self._print_sym(Expr("sym", (), e.shape, name=e.name[2:]))
        if e.name in self.names:
            return self.names[e.name]
        return symbol_latex(e.name, e.shape != ())

    def _print_num(self, e: Expr) -> str:
        return num_latex(e.value)

    def _print_zero(self, e: Expr) -> str:
        return r"\mathbf{0}"

    def _print_eye(self, e: Expr) -> str:
        return r"\mathbf{I}_{" + dim_latex(e.name) + "}"

    def _print_ones(self, e: Expr) -> str:
        return r"\mathbf{1}_{" + dim_latex(e.name) + "}"

    def _print_add(self, e: Expr) -> str:
        out = self.print(e.args[0])
        for t in e.args[1:]:
            if t.op == "num" and t.value < 0:
                out += " - " + num_latex(-t.value)
            elif t.op == "mul" and t.args[0].op == "num" and t.args[0].value < 0:
                out += " - " + self._print_mul(t)[1:]
            else:
                s = self.print(t)
                out += " - " + s[1:].lstrip() if s.startswith("-") else " + " + s     # never "+ -"
        return out

    def factor(self, f: Expr) -> str:
        """A factor of a juxtaposed product: sums, signs and ⊙/⊗ products in parentheses."""
        s = self.print(f)
        if self.prec(f) < 2 or f.op in ("had", "kron") or (f.op == "num" and f.value < 0) or \
                (f.shape != () and _reciprocal(f) is not None):
            return self.LEFT + s + self.RIGHT
        return s

    def _mul_body(self, c: Fraction, factors) -> str:
        parts = []
        if c != 1:
            parts.append(num_latex(c))
        for f in sorted(factors, key=_simple_first):
            parts.append(self.factor(f))
        return juxtapose(parts)

    def _fraction(self, e: Expr) -> tuple[str, str, list[Expr]]:
        """A product with scalar denominators as (sign, the scalar fraction, the array factors after it)."""
        c, upstairs, bottom, rest = fraction_parts(e)
        top = juxtapose(([str(abs(c.numerator))] if abs(c.numerator) != 1 or not upstairs else [])
                        + [self.factor(f) for f in upstairs], thin=False)
        below = ([str(c.denominator)] if c.denominator != 1 else []) + [
            self.print(b) if len(bottom) == 1 and c.denominator == 1 else self.factor(b) for b in bottom]
        return ("-" if c < 0 else ""), r"\frac{" + top + "}{" + juxtapose(below, thin=False) + "}", rest

    def _print_mul(self, e: Expr) -> str:
        args = e.args
        if _has_denominator(e):
            sign, frac, rest = self._fraction(e)
            return sign + juxtapose([frac] + [self.factor(f) for f in rest], thin=False)
        if args[0].op == "num":
            c = args[0].value
            rest = args[1:]
            if c == -1:
                return "-" + self._mul_body(Fraction(1), rest)
            if c < 0:
                return "-" + self._mul_body(-c, rest)
            return self._mul_body(c, rest)
        return self._mul_body(Fraction(1), args)

    def _print_matmul(self, e: Expr) -> str:
        parts = [self.factor(f) for f in e.args]
        first = e.args[0]
        if first.op == "mul" and first.args[0].op == "num" and first.args[0].value < 0:
            parts[0] = self.print(first)        # (−½A)x = −½Ax: a leading sign needs no parentheses
        return juxtapose(parts, thin=False)

    def _print_had(self, e: Expr) -> str:
        a, b = e.args
        if _reciprocal(b) is not None and b.args[1].value == -1:     # y ⊙ (1 ⊘ p) is y ⊘ p
            return self.paren(a, 3) + r" \oslash " + self.paren(_reciprocal(b), 3)
        if _reciprocal(a) is not None and a.args[1].value == -1:
            return self.paren(b, 3) + r" \oslash " + self.paren(_reciprocal(a), 3)
        return self.paren(e.args[0], 3) + r" \odot " + self.paren(e.args[1], 3)

    def _print_kron(self, e: Expr) -> str:
        return self.paren(e.args[0], 3) + r" \otimes " + self.paren(e.args[1], 3)

    def _print_div(self, e: Expr) -> str:
        a, b = e.args
        if a.shape != () and b.shape != ():
            return self.paren(a, 3) + r" \oslash " + self.paren(b, 3)
        if a.op == "mul" and a.args[0].op == "num" and a.args[0].value < 0:
            rest = ex_mul(-a.args[0].value, a.args[1:])
            return r"-\frac{" + self.print(rest) + "}{" + self.print(b) + "}"
        return r"\frac{" + self.print(a) + "}{" + self.print(b) + "}"

    def _print_pow(self, e: Expr) -> str:
        a, p = e.args
        if p.op == "num" and p.value == Fraction(1, 2):
            return r"\sqrt{" + self.print(a) + "}"
        recip = _reciprocal(e)
        if recip is not None:           # a⁻¹ elementwise is 1 ⊘ a (a scalar's is 1/a), never an inverse
            if e.shape == ():
                return r"\frac{1}{" + self.print(recip) + "}"
            return r"\mathbf{1} \oslash " + self.paren(recip, 3)
        exp = self.print(p)
        if a.op == "fn" and a.name in _FN_POWERS:
            return _FN_LATEX[a.name] + "^{" + exp + "}" + self.LEFT + self.print(a.args[0]) + self.RIGHT
        base = self.print(a)
        if a.op == "norm":
            return base + "^{" + exp + "}"
        if a.op in ("sym", "num", "dim", "const") and self.prec(a) == 5 and not ("^" in base):
            return base + "^{" + exp + "}"
        return self.LEFT + base + self.RIGHT + r"^{" + exp + "}"

    def _print_T(self, e: Expr) -> str:
        a = e.args[0]
        if a.op == "T":         # (Aᵀ)ᵀ is A: never printed doubled
            return self.paren(a.args[0], 4)
        if a.op == "inv" and a.args[0].op == "sym":
            return self.print(a.args[0]) + r"^{-\top}"
        if a.op == "inv":       # (X + sA)⁻ᵀ, not ((X + sA)⁻¹)ᵀ
            return self.LEFT + self.print(a.args[0]) + self.RIGHT + r"^{-\top}"
        if a.op in ("sym", "eye", "ones", "zero") or (self.prec(a) == 5 and a.op not in ("fn", "vfn")):
            return self.print(a) + r"^\top"
        return self.LEFT + self.print(a) + self.RIGHT + r"^\top"

    def _print_inv(self, e: Expr) -> str:
        a = e.args[0]
        if a.op == "sym":
            return self.print(a) + "^{-1}"
        return self.LEFT + self.print(a) + self.RIGHT + r"^{-1}"

    def _print_fn(self, e: Expr) -> str:
        a = e.args[0]
        if e.name == "sqrt":
            return r"\sqrt{" + self.print(a) + "}"
        if e.name in _SPECIAL_FN:
            return self._print_special_fn(e)
        return _FN_LATEX[e.name] + self.LEFT + self.print(a) + self.RIGHT

    def _print_special_fn(self, e: Expr) -> str:
        """log(1 + u), |u| and the step function 1[u > 0]: written as the books write them."""
        a = self.print(e.args[0])
        if e.name == "log1p":
            return r"\log" + self.LEFT + "1 + " + a + self.RIGHT
        if e.name == "abs":
            return self.LEFT.replace("(", r"\lvert ") + a + self.RIGHT.replace(")", r" \rvert")
        sides = step_sides(e.args[0])
        if sides is not None:       # 1[a − b > 0] as 1[a > b], 1[1 − ys > 0] as 1[ys < 1]
            a = self.print(sides[0]) + f" {sides[1]} " + self.print(sides[2])
            return r"\mathbb{1}" + self.LEFT.replace("(", "[") + a + self.RIGHT.replace(")", "]")
        return r"\mathbb{1}" + self.LEFT.replace("(", "[") + a + " > 0" + self.RIGHT.replace(")", "]")

    def _print_max(self, e: Expr) -> str:
        return r"\max" + self.LEFT + self.print(e.args[0]) + ", " + self.print(e.args[1]) + self.RIGHT

    def _print_vfn(self, e: Expr) -> str:
        return self._wrap_call(_VFN_LATEX[e.name], e)

    def _wrap_call(self, name: str, e: Expr) -> str:
        return name + self.LEFT + self.print(e.args[0]) + self.RIGHT

    def _print_det(self, e: Expr) -> str:
        return self._wrap_call(r"\det", e)

    def _print_trace(self, e: Expr) -> str:
        if e.args[0].op == "eye":
            return dim_latex(e.args[0].name)
        return self._wrap_call(r"\operatorname{tr}", e)

    def _print_diag(self, e: Expr) -> str:
        return self._wrap_call(r"\operatorname{diag}", e)

    def _print_diagpart(self, e: Expr) -> str:
        return self._wrap_call(r"\operatorname{diag}", e)

    def _print_commutation(self, e: Expr) -> str:
        from .expr import commutation_dims
        return r"\mathbf{K}_{" + ", ".join(dim_latex(d) for d in commutation_dims(e)) + "}"

    def _print_vec(self, e: Expr) -> str:
        return self._wrap_call(r"\operatorname{vec}", e)

    def _print_sum(self, e: Expr) -> str:
        if e.args[0].op == "ones":          # sum(1_N) is the dimension N (as tr(I_N) is)
            return dim_latex(e.args[0].name)
        return self._wrap_call(r"\operatorname{sum}", e)

    def _print_norm(self, e: Expr) -> str:
        return self.LEFT_NORM + self.print(e.args[0]) + self.RIGHT_NORM + self._norm_sub(e.args[0])

    @staticmethod
    def _norm_sub(a: Expr) -> str:
        """A matrix's norm is the Frobenius norm: ‖X‖_F."""
        return "_{F}" if len(a.shape) == 2 and 1 not in a.shape else ""

    def _print_pd(self, e: Expr) -> str:
        name = self.names.get(e.name) or symbol_latex(e.name, False)
        a = e.args[int(e.value)]
        if a.op == "sym":
            return r"\frac{\partial " + name + r"}{\partial " + self.print(a) + "}"
        return r"\partial_{" + str(int(e.value) + 1) + "} " + name + self.LEFT + ", ".join(self.print(x) for x in e.args) + self.RIGHT

    def _print_apply(self, e: Expr) -> str:
        name = self.names.get(e.name) or symbol_latex(e.name, False)
        return name + self.LEFT + ", ".join(self.print(a) for a in e.args) + self.RIGHT

    def _print_dim(self, e: Expr) -> str:
        """A dimension used as a number: N, as in its shapes."""
        return self.names.get(e.name) or symbol_latex(e.name, False)

    def _print_const(self, e: Expr) -> str:
        return {"pi": r"\pi", "e": r"\mathrm{e}"}[e.name]

    def _print_stack(self, e: Expr) -> str:
        """A list literal: its entries (scalars, or rows) one per row of a bmatrix."""
        rows = [r"\mathbf{0}^\top" if a.op == "zero" else self._stack_row(a) for a in e.args]     # a zero row
        return r"\begin{bmatrix} " + r" \\ ".join(rows) + r" \end{bmatrix}"

    def _stack_row(self, a: Expr) -> str:
        """A row of a list: a row of scalars written [a, b].T prints as the cells a & b."""
        if a.op == "T" and a.args[0].op == "stack" and a.args[0].shape[1] == 1:
            return " & ".join(self.print(c) for c in a.args[0].args)
        return self.print(a)

    # -- line breaking: one decision on the tree ------------------------------------------------

    def segments(self, e: Expr, width: float) -> list[str]:
        """The LaTeX of ``e`` in pieces a line may break between, each narrower than ``width`` where
        the tree allows: the terms of a sum first, then the factors of a product, then inside the
        parentheses of a long factor (``\\bigl( ... \\bigr)``, which, unlike ``\\left``, may span lines)."""
        s = self.print(e)
        if latex_width(s) <= width:
            return [s]
        op = e.op
        if op == "add":
            out = self.segments(e.args[0], width)
            for t in e.args[1:]:
                sign, body = _signed(t)
                out += _prefixed(sign + " ", self.segments(body, width))
            return out
        if op == "mul" and e.args[0].op == "num" and e.args[0].value < 0 and not _has_denominator(e):
            return _prefixed("-", self.segments(ex_mul(-e.args[0].value, e.args[1:]), width))
        if op == "mul" and _has_denominator(e):
            # the scalar fraction in front, then the array factors, a line may break between them
            sign, frac, rest = self._fraction(e)
            if rest:
                return _prefixed(sign, [frac] + self._factor_segments(rest, width))
            return [s]
        if op in ("mul", "matmul"):
            return self._factor_segments(e.args, width)
        if op in ("had", "kron"):
            sign = r"\odot " if op == "had" else r"\otimes "
            a, b = (_wrapped(r"\bigl(", self.segments(x, width), r"\bigr)") if self.prec(x) < 3
                    else self.segments(x, width) for x in e.args)
            return a + _prefixed(sign, b)
        opened = self._opened(e)
        if opened:
            head, inner, tail = opened
            return _wrapped(head, self.segments(inner, width), tail)
        return [s]

    def _factor_segments(self, factors, width: float) -> list[str]:
        out = []
        for f in factors:
            if f.op == "num":
                out.append(num_latex(f.value))
            elif self.prec(f) < 2 or f.op in ("had", "kron"):
                out += _wrapped(r"\bigl(", self.segments(f, width), r"\bigr)")
            else:
                out += self.segments(f, width)
        return out

    def _opened(self, e: Expr):
        """A call or a bracketed power as (head, argument, tail), to break inside its brackets."""
        a = e.args[0] if e.args else None
        if e.op == "fn" and e.name != "sqrt" and e.name not in _SPECIAL_FN:
            return _FN_LATEX[e.name] + r"\bigl(", a, r"\bigr)"
        if e.op == "vfn":
            return _VFN_LATEX[e.name] + r"\bigl(", a, r"\bigr)"
        if e.op in _CALLS:
            return _CALLS[e.op] + r"\bigl(", a, r"\bigr)"
        if e.op == "norm":
            return r"\bigl\lVert ", a, r" \bigr\rVert" + self._norm_sub(a)
        if e.op == "T":
            return r"\bigl(", a, r"\bigr)^\top"
        if e.op == "inv":
            return r"\bigl(", a, r"\bigr)^{-1}"
        if e.op == "pow" and not (e.args[1].op == "num" and e.args[1].value == Fraction(1, 2)):
            if a.op == "fn" and a.name in _FN_POWERS:
                return _FN_LATEX[a.name] + "^{" + self.print(e.args[1]) + r"}\bigl(", a.args[0], r"\bigr)"
            return r"\bigl(", a, r"\bigr)^{" + self.print(e.args[1]) + "}"
        return None

    def lines(self, e: Expr, width: float, first: float = 0.0) -> list[str]:
        """``e`` filled into lines of at most ``width`` (the first already holds ``first``)."""
        return fill(self.segments(e, width - INDENT), width, first)

    def rows(self, e: Expr, width: float, head: str = "", tail: str = "") -> list[str]:
        """``head e tail`` in lines of at most ``width``."""
        rows = self.lines(e, width - latex_width(tail), latex_width(head))
        rows[0] = (head + rows[0]).rstrip()
        rows[-1] += tail
        return rows

    def equation(self, lhs: str, e: Expr, width: float, tail: str = "") -> str:
        """``lhs = e tail`` on one line if it fits, else an ``aligned`` block broken on the tree."""
        return aligned(self.rows(e, width, f"{lhs} = " if lhs else "", tail))

    def applied(self, head: str, arg: Expr, e: Expr, width: float, tail: str = "") -> str:
        """``head(arg) = e tail``, both sides broken where too long (a step: ∂/∂x (arg) = e)."""
        lhs = head + self.LEFT + self.print(arg) + self.RIGHT
        if latex_width(lhs) <= width / 2:
            return self.equation(lhs, e, width, tail)
        return aligned(self.rows(arg, width, head + r"\bigl(", r"\bigr)") + self.rows(e, width, "= ", tail))


def fill(pieces: list[str], width: float, first: float = 0.0) -> list[str]:
    """Pieces joined into lines greedily, a line broken before the piece that would pass ``width``."""
    out, cur, used = [], [], first
    for piece in pieces:
        w = latex_width(piece)
        if (cur or out == [] and first > INDENT) and used + w > width:
            out.append(_joined(cur))
            cur, used = [], INDENT
        cur.append(piece)
        used += w + 0.3
    out.append(_joined(cur))
    return out


def _joined(pieces: list[str]) -> str:
    """Pieces of a line side by side (a MathML printer's pieces keep their MathML: ``Twin``)."""
    if any(isinstance(p, Twin) for p in pieces):
        out = Twin("", "")
        for k, p in enumerate(pieces):
            out = out + (" " if k else "") + p
        return out
    return " ".join(pieces)


_CALLS = {"det": r"\det", "trace": r"\operatorname{tr}", "diag": r"\operatorname{diag}",
          "diagpart": r"\operatorname{diag}", "sum": r"\operatorname{sum}"}
_CALLS["vec"] = r"\operatorname{vec}"
_FN_POWERS = ("sin", "cos", "tan", "tanh", "sigmoid", "softplus", "log")
_FN_POWERS += ("cosh", "sinh")
_SPECIAL_FN = ("log1p", "abs", "step")      # not written name(argument)
INDENT = 2.0      # ems of a continuation line's indent (\qquad)


def aligned(rows: list[str]) -> str:
    """One row as it is; several as an ``aligned`` block, continuation rows indented."""
    if any(isinstance(r, Twin) for r in rows):      # a MathML printer's rows: both layouts
        return Twin(aligned([str(r) for r in rows]), MathMLPrinter.aligned(rows))
    if len(rows) == 1:
        return rows[0]
    body = [f"& {rows[0]}"] + [r"&\qquad " + ("{} " + r if r[:1] in "+-=" else r) for r in rows[1:]]
    return r"\begin{aligned}" + r" \\ ".join(body) + r"\end{aligned}"


def _signed(t: Expr) -> tuple[str, Expr]:
    """A term after the first of a sum: its sign and what follows the sign."""
    if t.op == "num" and t.value < 0:
        from . import expr as ex
        return "-", ex.num(-t.value)
    if t.op == "mul" and t.args[0].op == "num" and t.args[0].value < 0:
        return "-", ex_mul(-t.args[0].value, t.args[1:])
    if t.op == "matmul" and t.args[0].op == "mul" and t.args[0].args[0].op == "num" and t.args[0].args[0].value < 0:
        sign, first = _signed(t.args[0])          # (−½A)x: − ½Ax
        from . import expr as ex
        return sign, ex.rebuild(t, (first,) + t.args[1:])
    return "+", t


def fraction_parts(e: Expr) -> tuple[Fraction, list[Expr], list[Expr], list[Expr]]:
    """A product with scalar denominators as (its number, the scalar factors upstairs, the factors
    downstairs, the array factors after the fraction): one reading for both printers."""
    from . import expr as ex
    args = e.args
    den = [f for f in args if _is_denominator(f)]
    c = args[0].value if args[0].op == "num" else Fraction(1)
    rest = [f for f in args if f not in den and f.op != "num"]
    bottom = [f.args[0] if f.args[1].value == -1 else ex.power(f.args[0], ex.num(-f.args[1].value))
              for f in den]
    return c, [f for f in rest if f.shape == ()], bottom, [f for f in rest if f.shape != ()]


def step_sides(u: Expr) -> tuple[Expr, str, Expr] | None:
    """The comparison the books write for the step function 1[u > 0]: a − b > 0 as (a, ">", b),
    c − v > 0 with c a constant as (v, "<", c), −v > 0 as (v, "<", 0); None for a plain u > 0."""
    from . import expr as ex
    if u.op == "mul" and u.args[0].op == "num" and u.args[0].value < 0:
        return _signed(u)[1], "<", ex.num(0)
    if u.op != "add":
        return None
    plus = [t for t in u.args if _signed(t)[0] == "+"]
    minus = [_signed(t)[1] for t in u.args if _signed(t)[0] == "-"]
    if not plus or not minus:
        return None
    if all(t.op in ("num", "ones") for t in plus):
        return ex.add(*minus), "<", ex.add(*plus)
    return ex.add(*plus), ">", ex.add(*minus)


def kink_places(exprs) -> list[tuple[Expr, Expr]]:
    """Where the step and sign functions in ``exprs`` jump, each place once, in order: ``(a, b)`` for
    a kink at a = b (the sides ``step_sides`` prints), ``(u, 0)`` for a kink at u = 0."""
    from . import expr as ex
    out: list[tuple[Expr, Expr]] = []
    for n in ex.nodes(*exprs):
        if n.op == "fn" and n.name in ("step", "sign"):
            sides = step_sides(n.args[0])
            place = (sides[0], sides[2]) if sides else (n.args[0], ex.num(0))
            if place not in out:
                out.append(place)
    return out


def _is_denominator(f: Expr) -> bool:
    """A scalar factor a**(-k): printed below the fraction bar."""
    return f.op == "pow" and f.shape == () and f.args[1].op == "num" and f.args[1].value < 0


def _has_denominator(e: Expr) -> bool:
    return any(_is_denominator(f) for f in e.args)


def _prefixed(prefix: str, pieces: list[str]) -> list[str]:
    return [prefix + pieces[0]] + pieces[1:]


def _wrapped(head: str, pieces: list[str], tail: str) -> list[str]:
    if any(r"\frac" in p for p in pieces):      # brackets around fractions: the taller size
        head, tail = head.replace(r"\bigl", r"\Bigl"), tail.replace(r"\bigr", r"\Bigr")
    pieces = _prefixed(head, pieces)
    pieces[-1] += tail
    return pieces


class InlinePrinter(LatexPrinter):
    """For formulas inside a sentence: ``\\bigl( ... \\bigr)`` does not make a group, so TeX may break
    the line at a + or a relation inside the brackets, as it cannot inside ``\\left( ... \\right)``."""
    LEFT, RIGHT = r"\bigl(", r"\bigr)"
    LEFT_NORM, RIGHT_NORM = r"\bigl\lVert ", r" \bigr\rVert"


def _simple_first(f: Expr) -> int:
    """Scalars and their powers before other factors, as a textbook writes a σ(a x + b), 2 x cos(x²)."""
    base = f.args[0] if f.op == "pow" and f.args[1].op == "num" else f
    return 0 if base.op == "sym" and base.shape == () else 1


def ex_mul(c: Fraction, rest) -> Expr:
    from . import expr as ex
    factors = tuple(rest) if c == 1 else (ex.num(c),) + tuple(rest)
    return factors[0] if len(factors) == 1 else ex.mul(*factors)


def _ends_with_letter(s: str) -> bool:
    return bool(s) and (s[-1].isalpha() or s[-1] == "}")


def juxtapose(parts: list[str], thin: bool = True) -> str:
    """Factors side by side: ``\\cdot`` before a number (1 · 2x, never 1 2x), a thin space after a
    letter in a scalar product, else a space."""
    out = parts[0] if parts else ""
    spaced = thin and len(parts) > 1 and any(_ends_with_letter(p) for p in parts[:-1])
    for p in parts[1:]:
        out += (r" \cdot " if p[:1].isdigit() or p.startswith(r"\frac") and out[-1:].isdigit()
                else r" \, " if spaced else " ") + p
    return out


def _reciprocal(e: Expr) -> Expr | None:
    """For a power with a negative exponent a**(-k), the denominator a**k; else None."""
    if e.op != "pow" or e.args[1].op != "num" or e.args[1].value >= 0:
        return None
    from . import expr as ex
    k = -e.args[1].value
    return e.args[0] if k == 1 else ex.power(e.args[0], ex.num(k))


# -- widths ----------------------------------------------------------------------------------------
#
# Widths are estimated from the LaTeX in ems of the text font (11pt; a line of the documents holds
# about 41, 16 cm). Measured against TeX on the bank's formulas the estimate is within 10% for long
# ones, so callers leave that margin.

_WIDE = {"odot": 1.6, "otimes": 1.6, "oslash": 1.6, "cdot": 0.8, "times": 1.4, "in": 1.4, "top": 0.75,
         "qquad": 2.0, "quad": 1.0, ",": 0.17, ";": 0.28, ":": 0.22, "!": -0.17, "partial": 0.6,
         "mathrm": 0, "mathbf": 0, "boldsymbol": 0, "mathit": 0, "operatorname": 0, "text": 0,
         "left": 0, "right": 0, "bigl": 0, "bigr": 0, "Bigl": 0, "Bigr": 0, "displaystyle": 0, "boxed": 0.6,
         "lVert": 0.5, "rVert": 0.5, "longrightarrow": 2.2, "to": 1.4, "mathbb": 0,
         "underbrace": 0, "sqrt": 1.0, "sigma": 0.6, "delta": 0.5, "ldots": 1.3, "cdots": 1.3}
_CHAR = {"+": 1.3, "-": 1.3, "=": 1.4, "(": 0.45, ")": 0.45, "[": 0.3, "]": 0.3, ",": 0.45, " ": 0, "&": 0,
         "{": 0, "}": 0, "|": 0.3, "/": 0.5, ".": 0.3}
_TOKEN = re.compile(r"\\([A-Za-z]+|.)|(.)", re.S)


def latex_width(s: str) -> float:
    """Estimated width of math LaTeX in ems; fractions count their wider line, scripts 0.7."""
    return _width(_TOKEN.findall(s), 0)[0]


def _group(tokens, i):
    """The width of the braced group (or single token) at tokens[i], and the index after it."""
    if i < len(tokens) and tokens[i] == ("", "{"):
        return _width(tokens, i + 1, closing=True)
    if i < len(tokens):
        return _width(tokens[i:i + 1], 0)[0], i + 1
    return 0.0, i


def _width(tokens, i, closing=False):
    w = 0.0
    while i < len(tokens):
        cs, ch = tokens[i]
        i += 1
        if ch == "}" and closing:
            return w, i
        if ch == "{":
            g, i = _width(tokens, i, closing=True)
            w += g
        elif ch in ("^", "_"):
            g, i = _group(tokens, i)
            w += 0.7 * g
        elif cs in ("frac", "dfrac", "tfrac"):
            a, i = _group(tokens, i)
            b, i = _group(tokens, i)
            w += max(a, b) + 0.3
        elif cs in ("mathbf", "boldsymbol"):
            g, i = _group(tokens, i)
            w += g * 1.4
        elif cs == "scriptstyle":
            g, i = _width(tokens, i, closing)
            return w + 0.7 * g, i
        elif cs in ("begin", "end"):
            _, i = _group(tokens, i)
        elif cs:
            w += _WIDE.get(cs, 0.5 * len(cs) + 0.4 if len(cs) > 2 and cs.islower() else 0.8)
        else:
            w += _CHAR.get(ch, 0.7 if ch.isupper() else 0.5)
    return w, i


# -- MathML: the sibling printer ---------------------------------------------------------------------
#
# ``MathMLPrinter(names)`` prints the same trees as MathML Core for the HTML pages. Its ``print``
# returns a ``Twin``: a str whose value is the LaTeX (which the widths and the line breaking above
# read) carrying the MathML in ``.mml``, so ``segments``, ``lines`` and ``fill`` run unchanged and
# break a long formula where the LaTeX documents break it. The printer's own notation pieces
# (``\bigl(``, ``- ``, a symbol's ``latex:``) become MathML through ``texsafe``'s math grammar;
# expressions never do: each op has its ``_mml_<op>`` below, and an op added without one (by a
# later extension) falls back to its LaTeX read by that grammar.

class Twin(str):
    """LaTeX with its MathML twin; ``+`` with a plain str reads the str as notation."""

    def __new__(cls, latex: str, mml: str):
        s = super().__new__(cls, latex)
        s.mml = mml
        return s

    def __add__(self, other):
        return Twin(str.__add__(str(self), str(other)), self.mml + mml_of(other))

    def __radd__(self, other):
        return Twin(str.__add__(str(other), str(self)), mml_of(other) + self.mml)


def mml_of(s: str) -> str:
    """The MathML children of a piece: its twin, or the notation read by the math grammar."""
    if isinstance(s, Twin):
        return s.mml
    from .texsafe import latex_to_mathml_body
    return latex_to_mathml_body(s) if s.strip() else ""


def _mo(op: str) -> str:
    return f"<mo>{op}</mo>"


def _mrow(*items: str) -> str:
    return "<mrow>" + "".join(items) + "</mrow>"


def _fenced(inner: str, left: str = "(", right: str = ")") -> str:
    """Brackets around ``inner``, stretched only around something taller than a line (as ``\\left``
    does: Chromium's stretched brackets at text height take the wider glyph of the next size)."""
    stretch = "true" if tall(inner) else "false"
    mo = f'<mo fence="true" stretchy="{stretch}" lspace="0" rspace="0">'
    return _mrow(mo + left + "</mo>", inner, mo + right + "</mo>")


def tall(mathml: str) -> bool:
    """Whether MathML holds something taller than a line: a fraction, a table, a root, limits."""
    return any(t in mathml for t in ("<mfrac", "<mtable", "<msqrt", "<mroot", "<munder", "<mover"))


_INVISIBLE_TIMES = "<mo>\u2062</mo>"
_OPERATOR_NAME = re.compile(r"(?:<mrow>|<msup>)*<mi>[A-Za-z]{2,}</mi>")      # a factor that is a call: sin(x), max(a, b)
_APPLY = "<mo>\u2061</mo>"
_THIN = '<mspace width="0.1667em"></mspace>'


class MathMLPrinter(LatexPrinter):
    """MathML Core for expressions: the LaTeX printer's decisions (parentheses, signs, fractions,
    line breaks) made on the tree, printed as MathML elements."""

    def __init__(self, names: Mapping[str, str] | None = None):
        super().__init__(names)
        self.latex = LatexPrinter(names)

    def print(self, e: Expr) -> Twin:
        return Twin(self.latex.print(e), self.mml(e))

    __call__ = print

    def mml(self, e: Expr) -> str:
        """The MathML children of ``e`` as one element."""
        method = getattr(self, "_mml_" + e.op, None)
        if method is None:
            return _mrow(mml_of(self.latex.print(e)))
        return method(e)

    def math(self, e: Expr, display: bool = False) -> str:
        return ("<math display=\"block\">" if display else "<math>") + self.mml(e) + "</math>"

    # --- what the LaTeX printer's structural helpers build, built as MathML ---------------------------

    def mparen(self, e: Expr, prec: int) -> str:
        s = self.mml(e)
        return _fenced(s) if self.prec(e) < prec else s

    def mfactor(self, f: Expr) -> str:
        s = self.mml(f)
        if self.prec(f) < 2 or f.op in ("had", "kron") or (f.op == "num" and f.value < 0) or \
                (f.shape != () and _reciprocal(f) is not None):
            return _fenced(s)
        return s

    @staticmethod
    def mjuxtapose(latex: list[str], mml: list[str], thin: bool = True) -> str:
        """``juxtapose``'s decisions (a dot before a number, thin spaces after letters) in MathML."""
        out, shown = (mml[0] if mml else ""), (latex[0] if latex else "")
        spaced = thin and len(latex) > 1 and any(_ends_with_letter(p) for p in latex[:-1])
        for p, m in zip(latex[1:], mml[1:]):
            if p[:1].isdigit() or p.startswith(r"\frac") and shown[-1:].isdigit():
                out += _mo("·")
            else:       # TeX's thin space before an operator name (2 sin(x), sinh(x) cosh(x)) is markup here
                out += (_THIN if spaced or _OPERATOR_NAME.match(m) else "") + _INVISIBLE_TIMES
            out += m
            shown += p
        return _mrow(out)

    def _fraction(self, e: Expr):
        """``LatexPrinter._fraction`` with the fraction a ``Twin`` (for ``segments``)."""
        sign, frac, rest = LatexPrinter._fraction(self.latex, e)
        return sign, Twin(frac, self._mml_fraction(e)), rest

    def _mml_fraction(self, e: Expr) -> str:
        c, upstairs, bottom, _ = fraction_parts(e)
        top_l = ([str(abs(c.numerator))] if abs(c.numerator) != 1 or not upstairs else [])
        top_m = [f"<mn>{t}</mn>" for t in top_l]
        top_l += [self.latex.factor(f) for f in upstairs]
        top_m += [self.mfactor(f) for f in upstairs]
        single = len(bottom) == 1 and c.denominator == 1
        below_l = ([str(c.denominator)] if c.denominator != 1 else []) + [
            self.latex.print(b) if single else self.latex.factor(b) for b in bottom]
        below_m = ([f"<mn>{c.denominator}</mn>"] if c.denominator != 1 else []) + [
            self.mml(b) if single else self.mfactor(b) for b in bottom]
        return ("<mfrac>" + self.mjuxtapose(top_l, top_m, thin=False)
                + self.mjuxtapose(below_l, below_m, thin=False) + "</mfrac>")

    def _opened(self, e: Expr):
        return LatexPrinter._opened(self.latex, e)

    # --- line breaking, as the LaTeX printer decides it --------------------------------------------------

    def rows(self, e: Expr, width: float, head: str = "", tail: str = "") -> list[str]:
        rows = self.lines(e, width - latex_width(tail), latex_width(head))
        rows[0] = head + rows[0]
        rows[-1] = rows[-1] + tail
        return rows

    @staticmethod
    def aligned(rows: list[str]) -> str:
        """``aligned``'s layout: one row as it is; several as a table, continuation rows indented."""
        if len(rows) == 1:
            return _mrow(mml_of(rows[0]))
        cells = [mml_of(rows[0])] + ['<mspace width="2em"></mspace>' + mml_of(r) for r in rows[1:]]
        return ("<mtable>" + "".join(f'<mtr><mtd style="text-align:left"><mrow displaystyle="true">{c}</mrow></mtd></mtr>'
                                     for c in cells)
                + "</mtable>")

    def equation(self, lhs: str, e: Expr, width: float, tail: str = "") -> str:
        return self.aligned(self.rows(e, width, f"{lhs} = " if lhs else "", tail))

    def applied(self, head: str, arg: Expr, e: Expr, width: float, tail: str = "") -> str:
        lhs = Twin(head + r"\left(" + self.latex.print(arg) + r"\right)",
                   mml_of(head) + _fenced(self.mml(arg)))
        if latex_width(lhs) <= width / 2:
            return self.aligned(self.rows(e, width, lhs + " = ", tail))
        return self.aligned(self.rows(arg, width, head + r"\bigl(", r"\bigr)") + self.rows(e, width, "= ", tail))

    # --- one method per op, as LatexPrinter's _print_<op> ---------------------------------------------------

    def _mml_sym(self, e: Expr) -> str:
        if e.name.startswith("d:"):
            return _mrow('<mi mathvariant="normal">d</mi>', self._mml_sym(Expr("sym", (), e.shape, name=e.name[2:])))
        latex = self.names.get(e.name) or symbol_latex(e.name, e.shape != ())
        return _mrow(mml_of(latex))

    def _mml_num(self, e: Expr) -> str:
        v = e.value
        body = f"<mn>{abs(v.numerator)}</mn>" if v.denominator == 1 else \
            f"<mfrac><mn>{abs(v.numerator)}</mn><mn>{v.denominator}</mn></mfrac>"
        return _mrow(_mo("−"), body) if v < 0 else body

    def _mml_zero(self, e: Expr) -> str:
        return "<mn>𝟎</mn>"

    def _mml_eye(self, e: Expr) -> str:
        return f"<msub><mi>𝐈</mi>{_mrow(mml_of(dim_latex(e.name)))}</msub>"

    def _mml_ones(self, e: Expr) -> str:
        return f"<msub><mn>𝟏</mn>{_mrow(mml_of(dim_latex(e.name)))}</msub>"

    def _mml_add(self, e: Expr) -> str:
        out = self.mml(e.args[0])
        for t in e.args[1:]:
            sign, body = _signed(t)
            out += _mo("−" if sign == "-" else "+") + (self.mml(body) if sign == "+" else self._mml_unsigned(t))
        return _mrow(out)

    def _mml_unsigned(self, t: Expr) -> str:
        """A negative term after its minus: the number, or the product without its sign."""
        if t.op == "num":
            return self._mml_num(Expr("num", (), (), value=-t.value))
        return self._mml_mul_signless(t)

    def _mml_mul_signless(self, e: Expr) -> str:
        m = self._mml_mul(e)
        return m[len("<mrow><mo>−</mo>"):-len("</mrow>")] if m.startswith("<mrow><mo>−</mo>") else m

    def _mml_body(self, c: Fraction, factors) -> str:
        latex, mml = [], []
        if c != 1:
            latex.append(num_latex(c))
            mml.append(self._mml_num(Expr("num", (), (), value=c)))
        for f in sorted(factors, key=_simple_first):
            latex.append(self.latex.factor(f))
            mml.append(self.mfactor(f))
        return self.mjuxtapose(latex, mml)

    def _mml_mul(self, e: Expr) -> str:
        args = e.args
        if _has_denominator(e):
            sign, _, rest = LatexPrinter._fraction(self.latex, e)
            latex = [LatexPrinter._fraction(self.latex, e)[1]] + [self.latex.factor(f) for f in rest]
            body = self.mjuxtapose(latex, [self._mml_fraction(e)] + [self.mfactor(f) for f in rest], thin=False)
            return _mrow(_mo("−"), body) if sign else body
        if args[0].op == "num":
            c = args[0].value
            if c < 0:
                return _mrow(_mo("−"), self._mml_body(Fraction(1) if c == -1 else -c, args[1:]))
            return self._mml_body(c, args[1:])
        return self._mml_body(Fraction(1), args)

    def _mml_matmul(self, e: Expr) -> str:
        latex, mml = [self.latex.factor(f) for f in e.args], [self.mfactor(f) for f in e.args]
        first = e.args[0]
        if first.op == "mul" and first.args[0].op == "num" and first.args[0].value < 0:
            latex[0], mml[0] = self.latex.print(first), self.mml(first)     # (−½A)x = −½Ax
        return self.mjuxtapose(latex, mml, thin=False)

    def _mml_had(self, e: Expr) -> str:
        a, b = e.args
        for y, r in ((a, b), (b, a)):       # y ⊙ (1 ⊘ p) is y ⊘ p, as LatexPrinter._print_had
            if _reciprocal(r) is not None and r.args[1].value == -1:
                return _mrow(self.mparen(y, 3), _mo("⊘"), self.mparen(_reciprocal(r), 3))
        return _mrow(self.mparen(a, 3), _mo("⊙"), self.mparen(b, 3))

    def _mml_kron(self, e: Expr) -> str:
        return _mrow(self.mparen(e.args[0], 3), _mo("⊗"), self.mparen(e.args[1], 3))

    def _mml_div(self, e: Expr) -> str:
        a, b = e.args
        if a.shape != () and b.shape != ():
            return _mrow(self.mparen(a, 3), _mo("⊘"), self.mparen(b, 3))
        if a.op == "mul" and a.args[0].op == "num" and a.args[0].value < 0:
            rest = ex_mul(-a.args[0].value, a.args[1:])
            return _mrow(_mo("−"), f"<mfrac>{self.mml(rest)}{self.mml(b)}</mfrac>")
        return f"<mfrac>{self.mml(a)}{self.mml(b)}</mfrac>"

    def _mml_pow(self, e: Expr) -> str:
        a, p = e.args
        if p.op == "num" and p.value == Fraction(1, 2):
            return f"<msqrt>{self.mml(a)}</msqrt>"
        recip = _reciprocal(e)
        if recip is not None:
            if e.shape == ():
                return f"<mfrac><mn>1</mn>{self.mml(recip)}</mfrac>"
            return _mrow("<mn>𝟏</mn>", _mo("⊘"), self.mparen(recip, 3))
        exp = self.mml(p)
        if a.op == "fn" and a.name in _FN_POWERS:
            return _mrow(f"<msup>{_mrow(mml_of(_FN_LATEX[a.name]))}{exp}</msup>", _APPLY, _fenced(self.mml(a.args[0])))
        base = self.latex.print(a)
        if a.op == "norm" or (a.op in ("sym", "num", "dim", "const") and self.prec(a) == 5 and "^" not in base):
            return f"<msup>{self.mml(a)}{exp}</msup>"
        return f"<msup>{_fenced(self.mml(a))}{exp}</msup>"

    def _mml_T(self, e: Expr) -> str:
        a = e.args[0]
        top = "<mi>⊤</mi>"
        if a.op == "T":
            return self.mparen(a.args[0], 4)
        if a.op == "inv" and a.args[0].op == "sym":
            return f"<msup>{self.mml(a.args[0])}{_mrow(_mo('−'), top)}</msup>"
        if a.op == "inv":
            return f"<msup>{_fenced(self.mml(a.args[0]))}{_mrow(_mo('−'), top)}</msup>"
        if a.op in ("sym", "eye", "ones", "zero") or (self.prec(a) == 5 and a.op not in ("fn", "vfn")):
            return f"<msup>{self.mml(a)}{top}</msup>"
        return f"<msup>{_fenced(self.mml(a))}{top}</msup>"

    def _mml_inv(self, e: Expr) -> str:
        a = e.args[0]
        base = self.mml(a) if a.op == "sym" else _fenced(self.mml(a))
        return f"<msup>{base}{_mrow(_mo('−'), '<mn>1</mn>')}</msup>"

    def _call(self, name_latex: str, e: Expr) -> str:
        return _mrow(mml_of(name_latex), _APPLY, _fenced(self.mml(e.args[0])))

    def _mml_fn(self, e: Expr) -> str:
        if e.name == "sqrt":
            return f"<msqrt>{self.mml(e.args[0])}</msqrt>"
        if e.name in _SPECIAL_FN:
            return self._mml_special_fn(e)
        return self._call(_FN_LATEX[e.name], e) if e.name in _FN_LATEX else _mrow(mml_of(self.latex.print(e)))

    def _mml_det(self, e: Expr) -> str:
        return self._call(r"\det", e)

    def _mml_trace(self, e: Expr) -> str:
        if e.args[0].op == "eye":
            return _mrow(mml_of(dim_latex(e.args[0].name)))
        return self._call(r"\operatorname{tr}", e)

    def _mml_diag(self, e: Expr) -> str:
        return self._call(r"\operatorname{diag}", e)

    _mml_diagpart = _mml_diag

    def _mml_sum(self, e: Expr) -> str:
        if e.args[0].op == "ones":          # sum(1_N) is the dimension N, as the LaTeX prints it
            return _mrow(mml_of(dim_latex(e.args[0].name)))
        return self._call(r"\operatorname{sum}", e)

    def _mml_norm(self, e: Expr) -> str:
        body = _fenced(self.mml(e.args[0]), "‖", "‖")
        sub = self._norm_sub(e.args[0])
        return f"<msub>{body}<mi>F</mi></msub>" if sub else body

    def _mml_pd(self, e: Expr) -> str:
        name = mml_of(self.names.get(e.name) or symbol_latex(e.name, False))
        a = e.args[int(e.value)]
        if a.op == "sym":
            return f"<mfrac>{_mrow('<mi>∂</mi>', name)}{_mrow('<mi>∂</mi>', self.mml(a))}</mfrac>"
        args = _mo(",").join(self.mml(x) for x in e.args)
        return _mrow(f"<msub><mi>∂</mi><mn>{int(e.value) + 1}</mn></msub>", name, _APPLY, _fenced(args))

    def _mml_apply(self, e: Expr) -> str:
        name = mml_of(self.names.get(e.name) or symbol_latex(e.name, False))
        return _mrow(name, _APPLY, _fenced(_mo(",").join(self.mml(a) for a in e.args)))

    # --- the language of issue 11: piecewise and vector functions, list literals, vec, K, N, π ----------

    def _mml_special_fn(self, e: Expr) -> str:
        """``LatexPrinter._print_special_fn``: log(1 + u), |u| and the step function 𝟙[u > 0]."""
        a = self.mml(e.args[0])
        if e.name == "log1p":
            return _mrow("<mi>log</mi>", _APPLY, _fenced(_mrow("<mn>1</mn>", _mo("+"), a)))
        if e.name == "abs":
            return _fenced(a, "|", "|")
        sides = step_sides(e.args[0])
        if sides is not None:       # 𝟙[a − b > 0] as 𝟙[a > b], 𝟙[1 − ys > 0] as 𝟙[ys < 1]
            a = _mrow(self.mml(sides[0]), _mo("&gt;" if sides[1] == ">" else "&lt;"), self.mml(sides[2]))
            return _mrow("<mn>𝟙</mn>", _APPLY, _fenced(a, "[", "]"))
        return _mrow("<mn>𝟙</mn>", _APPLY, _fenced(_mrow(a, _mo("&gt;"), "<mn>0</mn>"), "[", "]"))

    def _mml_max(self, e: Expr) -> str:
        return _mrow("<mi>max</mi>", _APPLY, _fenced(_mrow(self.mml(e.args[0]), _mo(","), self.mml(e.args[1]))))

    def _mml_vfn(self, e: Expr) -> str:
        return self._call(_VFN_LATEX[e.name], e)

    def _mml_vec(self, e: Expr) -> str:
        return self._call(r"\operatorname{vec}", e)

    def _mml_commutation(self, e: Expr) -> str:
        from .expr import commutation_dims
        dims = _mo(",").join(_mrow(mml_of(dim_latex(d))) for d in commutation_dims(e))
        return f"<msub><mi>𝐊</mi>{_mrow(dims)}</msub>"

    def _mml_dim(self, e: Expr) -> str:
        return _mrow(mml_of(self.names.get(e.name) or symbol_latex(e.name, False)))

    def _mml_const(self, e: Expr) -> str:
        return {"pi": "<mi>π</mi>", "e": '<mi mathvariant="normal">e</mi>'}[e.name]

    def _mml_stack(self, e: Expr) -> str:
        """A list literal: a column of its entries in square brackets (``bmatrix``), a zero row 𝟎ᵀ."""
        rows = "".join("<mtr><mtd>" + ("<msup><mn>𝟎</mn><mi>⊤</mi></msup>" if a.op == "zero" else self._mml_stack_row(a))
                       + "</mtd></mtr>" for a in e.args)
        return _mrow('<mo stretchy="true">[</mo>', f"<mtable>{rows}</mtable>", '<mo stretchy="true">]</mo>')

    def _mml_stack_row(self, a: Expr) -> str:
        """``LatexPrinter._stack_row``: a row of scalars written [a, b].T is the cells a, b of the row."""
        if a.op == "T" and a.args[0].op == "stack" and a.args[0].shape[1] == 1:
            return "</mtd><mtd>".join(self.mml(c) for c in a.args[0].args)
        return self.mml(a)
