"""LaTeX for expressions, in the book's notation: bold vectors and matrices, ^\\top, \\mathbf{I}_D.

``LatexPrinter(names).print(e)`` dispatches on ``e.op`` (``_print_<op>``), the
way SymPy's printers dispatch on the class name.  ``names`` maps each symbol to
its LaTeX; ``symbol_latex`` gives the defaults of SPEC §1 (bold upright for
arrays, ``\\boldsymbol`` for Greek, italic for scalars).  The output uses only
commands on ``texsafe.MATH_COMMANDS``.
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
    "sigmoid": r"\operatorname{sigmoid}", "softplus": r"\operatorname{softplus}",
}


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
    return str(d).replace("*", r" \cdot ")


def dims_latex(dims: str) -> str:
    """'1×(E×F)' -> '1 \\times (E \\times F)'."""
    return dims.replace("×", r" \times ").replace("*", r" \cdot ")


class LatexPrinter:
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
        if op in ("T", "inv", "pow"):
            return 4
        return 5

    def paren(self, e: Expr, prec: int) -> str:
        s = self.print(e)
        if self.prec(e) < prec:
            return r"\left(" + s + r"\right)"
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
                out += " + " + self.print(t)
        return out

    def factor(self, f: Expr) -> str:
        """A factor of a juxtaposed product: sums, signs and ⊙/⊗ products in parentheses."""
        s = self.print(f)
        if self.prec(f) < 2 or f.op in ("had", "kron") or (f.op == "num" and f.value < 0):
            return r"\left(" + s + r"\right)"
        return s

    def _mul_body(self, c: Fraction, factors) -> str:
        parts = []
        if c != 1:
            parts.append(num_latex(c))
        for f in factors:
            parts.append(self.factor(f))
        return r" \, ".join(parts) if len(parts) > 1 and any(_ends_with_letter(p) for p in parts[:-1]) else " ".join(parts)

    def _print_mul(self, e: Expr) -> str:
        args = e.args
        den = [f for f in args if f.op == "pow" and f.shape == () and f.args[1].op == "num" and f.args[1].value < 0]
        if den:
            c = args[0].value if args[0].op == "num" else Fraction(1)
            rest = [f for f in args if f not in den and f.op != "num"]
            from . import expr as ex
            bottom = [f.args[0] if f.args[1].value == -1 else ex.power(f.args[0], ex.num(-f.args[1].value))
                      for f in den]
            upstairs = [f for f in rest if f.shape == ()]
            rest = [f for f in rest if f.shape != ()]
            top = " ".join(([str(abs(c.numerator))] if abs(c.numerator) != 1 or not upstairs else [])
                           + [self.factor(f) for f in upstairs])
            below = ([str(c.denominator)] if c.denominator != 1 else []) + [
                self.print(b) if len(bottom) == 1 and c.denominator == 1 else self.factor(b) for b in bottom]
            frac = r"\frac{" + top + "}{" + " ".join(below) + "}"
            body = " ".join([frac] + [self.factor(f) for f in rest])
            return ("-" if c < 0 else "") + body
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
        return " ".join(self.factor(f) for f in e.args)

    def _print_had(self, e: Expr) -> str:
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
        exp = self.print(p)
        if a.op == "fn" and a.name in ("sin", "cos", "tan", "tanh", "sigmoid", "softplus", "log"):
            return _FN_LATEX[a.name] + "^{" + exp + r"}\left(" + self.print(a.args[0]) + r"\right)"
        base = self.print(a)
        if a.op in ("sym", "num") and self.prec(a) == 5 and not ("^" in base):
            return base + "^{" + exp + "}"
        return r"\left(" + base + r"\right)^{" + exp + "}"

    def _print_T(self, e: Expr) -> str:
        a = e.args[0]
        if a.op == "inv" and self.prec(a.args[0]) == 5 and a.args[0].op == "sym":
            return self.print(a.args[0]) + r"^{-\top}"
        if a.op in ("sym", "eye", "ones", "zero") or (self.prec(a) == 5 and a.op not in ("fn",)):
            return self.print(a) + r"^\top"
        return r"\left(" + self.print(a) + r"\right)^\top"

    def _print_inv(self, e: Expr) -> str:
        a = e.args[0]
        if a.op == "sym":
            return self.print(a) + "^{-1}"
        return r"\left(" + self.print(a) + r"\right)^{-1}"

    def _print_fn(self, e: Expr) -> str:
        a = e.args[0]
        if e.name == "sqrt":
            return r"\sqrt{" + self.print(a) + "}"
        return _FN_LATEX[e.name] + r"\left(" + self.print(a) + r"\right)"

    def _wrap_call(self, name: str, e: Expr) -> str:
        return name + r"\left(" + self.print(e.args[0]) + r"\right)"

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

    def _print_sum(self, e: Expr) -> str:
        return self._wrap_call(r"\operatorname{sum}", e)

    def _print_norm(self, e: Expr) -> str:
        return r"\left\lVert " + self.print(e.args[0]) + r" \right\rVert"

    def _print_pd(self, e: Expr) -> str:
        name = self.names.get(e.name) or symbol_latex(e.name, False)
        a = e.args[int(e.value)]
        if a.op == "sym":
            return r"\frac{\partial " + name + r"}{\partial " + self.print(a) + "}"
        return r"\partial_{" + str(int(e.value) + 1) + "} " + name + r"\left(" + ", ".join(self.print(x) for x in e.args) + r"\right)"

    def _print_apply(self, e: Expr) -> str:
        name = self.names.get(e.name) or symbol_latex(e.name, False)
        return name + r"\left(" + ", ".join(self.print(a) for a in e.args) + r"\right)"


def ex_mul(c: Fraction, rest) -> Expr:
    from . import expr as ex
    factors = tuple(rest) if c == 1 else (ex.num(c),) + tuple(rest)
    return factors[0] if len(factors) == 1 else ex.mul(*factors)


def _ends_with_letter(s: str) -> bool:
    return bool(s) and (s[-1].isalpha() or s[-1] == "}")
