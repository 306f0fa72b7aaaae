"""Scalar algebra by SymPy: the last simplification of a result, as a textbook would write it.

The scalar parts of a result (a whole scalar result, or the scalar factors in
front of an array) are translated into SymPy — every piece that involves
arrays (``w.T @ x``, ``det(X)``, ``norm(x)``) becomes an opaque symbol — then
simplified (``cancel``, then ``factor``) and translated back, and kept only if shorter.  The
translation is from our own trees: no text from a problem file reaches SymPy.
"""
from __future__ import annotations

from fractions import Fraction

import sympy as sp

from .. import expr as ex
from ..expr import Expr

_FUNCS = {"exp": sp.exp, "log": sp.log, "sin": sp.sin, "cos": sp.cos, "tan": sp.tan, "tanh": sp.tanh}
_OPAQUE_FUNCS = ("sigmoid", "softplus")
MAX_OPS = 80


class _Translation:
    def __init__(self, assumptions: dict[str, tuple[str, ...]]):
        self.assumptions = assumptions
        self.atoms: dict[sp.Symbol, Expr] = {}
        self.back: dict[Expr, sp.Symbol] = {}
        self.funcs = {n: sp.Function(n) for n in _OPAQUE_FUNCS}

    def atom(self, e: Expr) -> sp.Symbol:
        if e not in self.back:
            s = sp.Symbol(f"_atom{len(self.atoms)}", real=True)
            self.atoms[s] = e
            self.back[e] = s
        return self.back[e]

    def to(self, e: Expr):
        op = e.op
        if e.shape != ():
            raise ValueError("array")
        if op == "num":
            return sp.Rational(e.value.numerator, e.value.denominator)
        if op == "sym":
            positive = "positive" in self.assumptions.get(e.name, ())
            return sp.Symbol(e.name, positive=True) if positive else sp.Symbol(e.name, real=True)
        if op == "add":
            return sp.Add(*(self.to(a) for a in e.args))
        if op == "mul":
            return sp.Mul(*(self.to(a) for a in e.args))
        if op == "div":
            return self.to(e.args[0]) / self.to(e.args[1])
        if op == "pow":
            return self.to(e.args[0]) ** self.to(e.args[1])
        if op == "fn" and e.name in _FUNCS:
            return _FUNCS[e.name](self.to(e.args[0]))
        if op == "fn" and e.name == "sqrt":
            return sp.sqrt(self.to(e.args[0]))
        if op == "fn" and e.name in self.funcs:
            return self.funcs[e.name](self.to(e.args[0]))
        return self.atom(e)

    def back_to(self, s) -> Expr:
        if s in self.atoms:
            return self.atoms[s]
        if s.is_Rational:
            return ex.num(Fraction(int(s.p), int(s.q)))
        if s.is_Symbol:
            return ex.sym(s.name, ())
        if s.is_Add:
            return ex.add(*(self.back_to(a) for a in _ordered(s.args)))
        if s.is_Mul:
            return ex.mul(*(self.back_to(a) for a in _ordered(s.args)))
        if s.is_Pow:
            base, p = s.args
            if p == sp.Rational(1, 2):
                return ex.fn("sqrt", self.back_to(base))
            if p == sp.Rational(-1, 2):
                return ex.power(ex.fn("sqrt", self.back_to(base)), ex.num(-1))
            return ex.power(self.back_to(base), self.back_to(p))
        if isinstance(s, sp.exp):
            return ex.fn("exp", self.back_to(s.args[0]))
        for name, f in _FUNCS.items():
            if isinstance(s, f):
                return ex.fn(name, self.back_to(s.args[0]))
        for name, f in self.funcs.items():
            if isinstance(s, f):
                return ex.fn(name, self.back_to(s.args[0]))
        raise ValueError(f"cannot translate {s}")


def _ordered(args):
    """Numbers first, then SymPy's canonical order: deterministic output."""
    return sorted(args, key=lambda a: (not a.is_Number, sp.default_sort_key(a)))


def _simplest(e: Expr, assumptions) -> Expr:
    t = _Translation(assumptions)
    try:
        s = t.to(e)
    except ValueError:
        return e
    ops = sp.count_ops(s)
    # rational simplification: cancel, then factor; much cheaper than sympy.simplify
    # (whose trigsimp dominated a profile of building the problem bank) and enough for
    # the scalar coefficients the rules produce
    cancelled = sp.cancel(s)
    candidates = [cancelled] if ops > MAX_OPS else [cancelled, sp.factor(cancelled)]
    candidate = min(candidates, key=sp.count_ops)
    if sp.count_ops(candidate) >= ops:
        return e
    try:
        return t.back_to(candidate)
    except (ValueError, TypeError):
        return e


def tidy(e: Expr, assumptions: dict[str, tuple[str, ...]] | None = None) -> Expr:
    """``e`` with its scalar algebra simplified where SymPy finds a shorter form."""
    assumptions = assumptions or {}
    if e.shape == ():
        if e.op in ("sym", "num"):
            return e
        return _simplest(e, assumptions)
    if e.op == "mul":
        scal = [f for f in e.args if f.shape == ()]
        arrays = [tidy(f, assumptions) for f in e.args if f.shape != ()]
        if scal:
            s = _simplest(ex.mul(*scal) if len(scal) > 1 else scal[0], assumptions)
            if s.op == "num" and s.value == 1:
                return arrays[0]
            return ex.mul(s, *arrays)
        return ex.mul(*arrays)
    if e.op == "add":
        return ex.add(*(tidy(t, assumptions) for t in e.args))
    if e.op in ("T", "diag", "matmul", "had"):
        return ex.rebuild(e, tuple(tidy(a, assumptions) for a in e.args))
    return e
