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
    def __init__(self, assumptions: dict[str, tuple[str, ...]], shape: ex.Shape = ()):
        self.assumptions = assumptions
        self.shape = shape          # () for scalar algebra; an array shape for entrywise algebra
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
        if e.shape not in ((), self.shape):
            raise ValueError("array")
        if e.shape != () and op not in ("add", "mul", "had", "div", "pow", "fn", "ones"):
            return self.atom(e)         # an array of the right shape, taken entry by entry
        if op == "ones":
            return sp.Integer(1)
        if op == "had":
            return sp.Mul(*(self.to(a) for a in e.args))
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
        if s.is_Add:      # a − b rather than −b + a
            return ex.add(*(self.back_to(a) for a in sorted(_ordered(s.args), key=lambda a: a.could_extract_minus_sign())))
        if s.is_Mul:
            coeff, rest = s.as_coeff_mul()
            sums = [a for a in _ordered(rest) if a.is_Add]
            if coeff < 0 and sums:
                # −(u − 1) v reads better as (1 − u) v
                flipped = [sp.expand(-a) if a is sums[0] else a for a in rest]
                return self.back_to(sp.Mul(-coeff, *flipped, evaluate=False)) if -coeff != 1 else \
                    self.back_to(sp.Mul(*flipped, evaluate=False))
            factors = [self.back_to(a) for a in sorted(_ordered(s.args), key=lambda a: a.is_Add)]   # σ (1 − σ)
            arrays = [f for f in factors if f.shape != ()]
            scalars = [f for f in factors if f.shape == ()]
            if len(arrays) > 1:             # entry by entry: a Hadamard product
                h = arrays[0]
                for a in arrays[1:]:
                    h = ex.hadamard(h, a)
                arrays = [h]
            return ex.mul(*scalars, *arrays)
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
        return in_written_order(t.back_to(candidate), e)
    except (ValueError, TypeError):
        return e


def entrywise_forms(e: Expr, assumptions, special: bool = False) -> list[Expr]:
    """Equal forms of an array expression taken entry by entry (Hadamard products and
    elementwise functions are scalar algebra per entry): expanded, cancelled, factored.
    With ``special``, the forms in σ or tanh of an expression in exponentials
    (e^u = σ(u)/(1 − σ(u)), e^{2u} = (1 + tanh u)/(1 − tanh u)), where no exponential is left."""
    t = _Translation(assumptions, e.shape)
    try:
        s = t.to(e)
        if special:
            candidates = _special(s, t)
        else:
            cancelled = sp.cancel(s)
            candidates = [sp.factor(cancelled), -sp.factor(-cancelled)]
            if sp.denom(cancelled) != 1:
                candidates.append(cancelled)     # (not for a polynomial: σ(1 − σ) stays, not σ − σ²)
    except (ValueError, TypeError, sp.PolynomialError):
        return []
    out = []
    for c in candidates:
        try:
            b = t.back_to(c)
        except (ValueError, TypeError, Exception):   # a form we cannot print back
            continue
        b = in_written_order(b, e)
        if b.shape == e.shape and b not in out:
            out.append(b)
    return out


def in_written_order(out: Expr, before: Expr) -> Expr:
    """``out`` with each sum whose terms are those of a sum in ``before`` in that sum's order:
    SymPy orders terms its own way (b − ½Ax for −½Ax + b), so an expression written with one
    choice of a variant would come back in another order than with the next."""
    order: dict[frozenset, tuple] = {}

    def key(args) -> frozenset:
        return frozenset((a, args.count(a)) for a in args)

    def collect(e: Expr) -> None:
        if e.op == "add":
            order.setdefault(key(e.args), e.args)
        for a in e.args:
            collect(a)

    def reorder(e: Expr) -> Expr:
        if not e.args:
            return e
        args = tuple(reorder(a) for a in e.args)
        if e.op == "add":
            args = order.get(key(args), args)
        return e if args == e.args else ex.rebuild(e, args)

    collect(before)
    return reorder(out) if order else out


def _special(s, t: _Translation) -> list:
    s = sp.cancel(s)            # e^{-x} = 1/e^{x}: (e^x − e^{−x})/(e^x + e^{−x}) = (e^{2x} − 1)/(e^{2x} + 1)
    exps = list(s.atoms(sp.exp))
    parts = [a.args[0].as_coeff_Mul() for a in exps]
    if not exps or any(m != parts[0][1] or not c.is_Rational for c, m in parts):
        return []
    g = sp.Integer(0)
    for c, _ in parts:
        g = sp.gcd(g, abs(c))
    u = g * parts[0][1]
    v = sp.Dummy("v")
    out = []
    # e^{ku} = (σ(u) / (1 − σ(u)))^k;  e^{ku} = ((1 + tanh(u/2)) / (1 − tanh(u/2)))^k
    for ratio, f in ((v / (1 - v), t.funcs["sigmoid"](u)), ((1 + v) / (1 - v), sp.tanh(u / 2))):
        r = sp.factor(sp.cancel(s.xreplace({a: ratio ** (c / g) for a, (c, _) in zip(exps, parts)})))
        if not r.has(sp.exp):
            out.append(r.xreplace({v: f}))
    return out


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
