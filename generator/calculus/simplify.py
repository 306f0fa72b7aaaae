"""Algebraic clean-up of engine results: flatten, fold numbers, drop identities.

``simplify`` is bottom-up and idempotent.  It knows the identities a textbook
uses silently (``A I = A``, ``(A^T)^T = A``, ``x + x = 2x``) and, from the
declared assumptions, ``S^T = S`` and ``S^{-T} = S^{-1}`` for a symmetric
``S``; every assumption it uses is reported in ``Simplifier.used`` so the
step can say so.

To add an identity: add a branch to the ``_op`` method of the operation it
rewrites, returning an equal expression of the same shape.
"""
from __future__ import annotations

from fractions import Fraction

from .. import expr as ex
from ..expr import Expr


class Simplifier:
    def __init__(self, assumptions: dict[str, tuple[str, ...]] | None = None, by_construction: bool = True):
        self.assumptions = assumptions or {}
        self.by_construction = by_construction    # M⁻ᵀ = M⁻¹ for M = AAᵀ etc. (False: a named step does it)
        self.used: list[tuple[str, str]] = []     # (symbol, assumption), in order of use
        self.derived: list[Expr] = []             # matrices found symmetric by construction, M⁻ᵀ = M⁻¹ used
        self._cache: dict[Expr, Expr] = {}
        self._flipping = False        # re-entrancy guards for the two rewrites that call back in
        self._distributing = False

    def _assume(self, name: str, what: str) -> bool:
        if what in self.assumptions.get(name, ()) or (
                what == "symmetric" and "positive_definite" in self.assumptions.get(name, ())) or (
                what == "symmetric" and "diagonal" in self.assumptions.get(name, ())):
            if (name, what) not in self.used:
                self.used.append((name, what))
            return True
        return False

    def symmetric(self, e: Expr) -> bool:
        if e.op == "sym":
            return self._assume(e.name, "symmetric")
        if e.op in ("eye", "diag", "zero"):
            return True
        if e.op == "inv":
            return self.symmetric(e.args[0])
        if e.op == "matmul":
            # Aᵀ A, A Aᵀ, A S Aᵀ (S symmetric): the factors read the same backwards, transposed
            fs = e.args
            n = len(fs)
            for i in range(n // 2):
                a, b = fs[i], fs[n - 1 - i]
                if not ((a.op == "T" and a.args[0] == b) or (b.op == "T" and b.args[0] == a)
                        or (a == b and self.symmetric(a))):
                    return False
            return n % 2 == 0 or self.symmetric(fs[n // 2])
        if e.op == "add":
            # symmetric terms, and the others in pairs A + Aᵀ
            rest = [a for a in e.args if not self.symmetric(a)]
            return all(any(self._transpose(a) == b for b in rest) for a in rest)
        if e.op == "mul":
            return all(a.shape == () or self.symmetric(a) for a in e.args)
        return False

    def __call__(self, e: Expr) -> Expr:
        return self.simplify(e)

    def simplify(self, e: Expr) -> Expr:
        hit = self._cache.get(e)
        if hit is not None:
            return hit
        if e.args:
            args = tuple(self.simplify(a) for a in e.args)
            out = self._op(e, args)
        else:
            out = e
        self._cache[e] = out
        return out

    def _op(self, e: Expr, args: tuple) -> Expr:
        op = e.op
        merged = ex.into_stack(op, args)        # c [a, b] = [c a, c b]; [a, b] + [c, d] = [a + c, b + d]
        if merged is not None:
            return self.simplify(merged)
        if op == "add":
            return self._add(args, e.shape)
        if op == "mul":
            return self._mul(args, e.shape)
        if op == "matmul":
            return self._matmul(args, e.shape)
        if op == "T":
            return self._transpose(args[0])
        if op == "had":
            return self._had(args, e.shape)
        if op == "div":
            a, b = args
            if b.op == "num":
                return self._mul((ex.num(1 / b.value), a), e.shape) if b.value != 0 else ex.div(a, b)
            if a.op in ("zero",) or (a.op == "num" and a.value == 0):
                return ex.zero(e.shape)
            if b.shape == () and a.op == "mul" and any(f == b for f in a.args):
                rest = list(a.args)
                rest.remove(b)
                return self._mul(tuple(rest), e.shape) if rest else ex.ONE
            if a == b and a.shape == ():
                return ex.ONE
            powers = _powers_over(a, b)
            if powers is not None:          # σ / σ⁴ = σ⁻³, (c σ) / σ⁴ = c σ⁻³: one scalar's powers collected
                return self._mul(powers, e.shape)
            ca, ra = _split_coeff(a)
            cb, rb = _split_coeff(b)
            if (ca != 1 or cb != 1) and cb != 0:
                # (c a) / (d b) = (c/d) (a / b)
                inner = ra if rb == ex.ONE else (ex.div(ra, rb) if ra != ex.ONE else ex.power(rb, ex.num(-1)))
                powers = _powers_over(ra, rb) if inner.op == "div" else None
                if powers is not None:      # (−4σ) / (4σ⁴) = −σ⁻³
                    inner = self._mul(powers, e.shape)
                return self._mul((ex.num(ca / cb), inner), e.shape)
            return ex.div(a, b)
        if op == "pow":
            a, b = args
            if b.op == "num":
                if b.value == 1:
                    return a
                if b.value == 0 and e.shape == ():
                    return ex.ONE
                if a.op == "num" and b.value.denominator == 1 and abs(b.value) <= 16 and (a.value != 0 or b.value > 0):
                    return ex.num(a.value ** int(b.value))
                if a.op == "pow" and a.args[1].op == "num" and b.value.denominator == 1 and a.args[1].value.denominator == 1:
                    return self._op(a, (a.args[0], ex.num(a.args[1].value * b.value)))
                c, rest = _split_coeff(a)
                if a.op == "mul" and c != 1 and c != 0 and b.value.denominator == 1 and abs(b.value) <= 16:
                    # (c u)ⁿ = cⁿ uⁿ: ½ a / (½ b) = a / b
                    return self._mul((ex.num(c ** int(b.value)), self._op(e, (rest, b))), e.shape)
            return ex.power(a, b)
        if op == "fn":
            a = args[0]
            if a.op == "num" and a.value == 0 and e.name in ("sin", "tan", "tanh", "sqrt"):
                return ex.ZERO
            if a.op == "num" and a.value == 0 and e.name in ("exp", "cos"):
                return ex.ONE
            if a.op == "num" and a.value == 1 and e.name == "log":
                return ex.ZERO
            if e.name == "log" and a.op == "fn" and a.args[0].shape == () and a.name == "exp":
                return a.args[0]
            return ex.fn(e.name, a)
        if op == "trace":
            a = args[0]
            if a.op == "zero":
                return ex.ZERO
            if a.op == "eye" and a.name.isdigit():
                return ex.num(int(a.name))
            return ex.trace(a)       # tr(I_D) stays: D is a dimension, not a scalar of the language
        if op == "diagpart":
            a = args[0]
            if a.op == "matmul" and len(a.args) == 2 and a.args[0].shape[1] == 1:
                # the diagonal of an outer product u vᵀ is u ∘ v
                u, vt = a.args
                return self._op(ex.hadamard(u, vt.args[0] if vt.op == "T" else ex.transpose(vt)),
                                (u, self._transpose(vt)))
            if a.op == "eye":
                return ex.ones(a.shape[0])
            return ex.rebuild(e, args)
        if op == "diag":
            a = args[0]
            if a.op == "zero":
                return ex.zero(e.shape)
            if a.op == "ones":
                return ex.eye(a.shape[0])
            return ex.rebuild(e, args)
        if op == "sum":
            a = args[0]
            if a.op == "zero":
                return ex.ZERO
            return ex.vsum(a)
        return ex.rebuild(e, args)

    # -- Hadamard products: like scalar products, entry by entry
    def _had(self, args: tuple, shape) -> Expr:
        factors: list[Expr] = []
        for a in args:
            factors.extend(a.args if a.op == "had" else (a,))
        if any(f.op == "zero" for f in factors):
            return ex.zero(shape)
        factors = [f for f in factors if not _all_ones(f)]
        merged: list[tuple[Expr, object]] = []
        for f in factors:
            base, p = (f.args[0], f.args[1].value) if f.op == "pow" and f.args[1].op == "num" else (f, 1)
            for i, (mb, mp) in enumerate(merged):
                if mb == base:
                    merged[i] = (mb, mp + p)
                    break
            else:
                merged.append((base, p))
        out = [b if p == 1 else ex.power(b, ex.num(p)) for b, p in merged if p != 0]
        if not out:
            return ex.ones_like(shape)
        result = out[0]
        for f in out[1:]:
            result = ex.hadamard(result, f)
        return result

    # -- add
    def _add(self, args: tuple, shape) -> Expr:
        terms: list[Expr] = []
        for a in args:
            if a.op == "add":
                terms.extend(a.args)
            else:
                terms.append(a)
        coeffs: dict[Expr, Fraction] = {}
        order: list[Expr] = []
        for t in terms:
            if t.op == "zero" or (t.op == "num" and t.value == 0):
                continue
            c, rest = _split_coeff(t)
            if rest not in coeffs:
                coeffs[rest] = Fraction(0)
                order.append(rest)
            coeffs[rest] += c
        diags = [r for r in order if r.op == "diag" and coeffs[r] != 0]
        if len(diags) > 1:
            # diag(a) + diag(b) = diag(a + b)
            inner = self._add(tuple(self._mul((ex.num(coeffs[d]), d.args[0]), d.args[0].shape) for d in diags),
                              diags[0].args[0].shape)
            for d in diags:
                coeffs[d] = Fraction(0)
            merged_diag = ex.diag(inner)
            coeffs[merged_diag] = coeffs.get(merged_diag, Fraction(0)) + 1
            if merged_diag not in order:
                order.append(merged_diag)
        out = []
        for rest in order:
            c = coeffs[rest]
            if c == 0:
                continue
            if rest == ex.ONE:
                out.append(ex.num(c))
            elif c == 1:
                out.append(rest)
            else:
                out.append(self._mul((ex.num(c), rest), rest.shape))
        if not out:
            return ex.zero(shape)
        if len(out) == 1:
            t = out[0]
            if t.shape != shape:   # a scalar term left in an array sum
                return ex.add(t, ex.zero(shape))
            return t
        return ex.add(*out)

    # -- mul
    def _mul(self, args: tuple, shape) -> Expr:
        factors: list[Expr] = []
        for a in args:
            if a.op == "mul":
                factors.extend(a.args)
            else:
                factors.append(a)
        c = Fraction(1)
        rest: list[Expr] = []
        for f in factors:
            if f.op == "num":
                c *= f.value
            elif f.op == "zero":
                return ex.zero(shape)
            else:
                rest.append(f)
        if c == 0:
            return ex.zero(shape)
        # scalars before the array; merge equal scalar factors into powers
        scalars = [f for f in rest if f.shape == ()]
        arrays = [f for f in rest if f.shape != ()]
        merged: list[Expr] = []
        for f in scalars:
            base, p = (f.args[0], f.args[1]) if f.op == "pow" and f.args[1].op == "num" else (f, ex.ONE)
            for i, m in enumerate(merged):
                mb, mp = (m.args[0], m.args[1]) if m.op == "pow" and m.args[1].op == "num" else (m, ex.ONE)
                if mb == base:
                    total = mp.value + p.value
                    merged[i] = ex.ONE if total == 0 else (base if total == 1 else ex.power(base, ex.num(total)))
                    break
            else:
                merged.append(f)
        merged = [m for m in merged if m != ex.ONE]
        for i, arr in enumerate(arrays):
            if arr.op == "div" and arr.args[1].shape == () and arr.args[1] in merged:
                merged.remove(arr.args[1])
                arrays[i] = arr.args[0]
        rest = merged + arrays
        if not rest:
            return ex.num(c)
        if c != 1:
            rest = [ex.num(c)] + rest
        if len(rest) == 1:
            return rest[0]
        product = ex.mul(*rest)
        if len(arrays) == 1 and arrays[0].op == "add" and merged and not self._distributing:
            # c (A + B) -> c A + c B when that cancels something: s⁻¹ (s X + s Y) = X + Y
            spread = self._distribute(rest[:-1], arrays[0], shape)
            if ex.tree_size(spread) < ex.tree_size(product):
                return spread
        return product

    def _distribute(self, scalars, total: Expr, shape) -> Expr:
        self._distributing = True
        try:
            return self._add(tuple(self._mul(tuple(scalars) + (t,), t.shape) for t in total.args), shape)
        finally:
            self._distributing = False

    # -- matmul
    def _matmul(self, args: tuple, shape) -> Expr:
        factors: list[Expr] = []
        for a in args:
            if a.op == "matmul":
                factors.extend(a.args)
            else:
                factors.append(a)
        scalars: list[Expr] = []
        core: list[Expr] = []
        for f in factors:
            if f.op == "zero":
                return ex.zero(shape)
            if f.op == "div" and f.args[1].shape == () and f.shape != ():
                scalars.append(ex.power(f.args[1], ex.num(-1)))     # (a / s) B = s⁻¹ (a B)
                f = f.args[0]
            if f.op == "mul":
                arr = [g for g in f.args if g.shape != ()]
                scalars.extend(g for g in f.args if g.shape == ())
                core.extend(arr)
            elif f.shape == () and len(factors) > 1:
                scalars.append(f)
            else:
                core.append(f)
        core = [f for f in core if f.op != "eye"] or [f for f in core[:1]]
        core = self._diag_pairs(core)
        if not core:
            # everything was an identity or a scalar
            base = ex.eye(shape[0]) if shape != () else ex.ONE
            core = [base]
        # A^{-1} A = I
        changed = True
        while changed and len(core) > 1:
            changed = False
            for i in range(len(core) - 1):
                a, b = core[i], core[i + 1]
                if (a.op == "inv" and a.args[0] == b) or (b.op == "inv" and b.args[0] == a) or \
                        _inverse_transposes(a, b) or self._orthogonal_pair(a, b):
                    core = core[:i] + core[i + 2:]
                    changed = True
                    break
        if not core:
            core = [ex.eye(shape[0])] if shape != () else [ex.ONE]
        m = ex.matmul(*core) if len(core) > 1 else core[0]
        if shape == () and m.op == "matmul" and not self._flipping:
            m = self._canonical_scalar(m)
        if scalars:
            return self._mul(tuple(scalars) + (m,), shape)
        return m

    def _canonical_scalar(self, m: Expr) -> Expr:
        """uᵀv and vᵀu are the same number: pick one orientation, so equal terms collect."""
        self._flipping = True
        try:
            flipped = self._matmul(tuple(self._transpose(f) for f in reversed(m.args)), ())
        finally:
            self._flipping = False
        if flipped.op != "matmul":
            return m
        a, b = ex.to_text(m), ex.to_text(flipped)
        return flipped if (len(b), b) < (len(a), a) else m

    def _orthogonal_pair(self, a: Expr, b: Expr) -> bool:
        """Qᵀ Q = Q Qᵀ = I for an orthogonal Q."""
        if a.op == "T" and a.args[0] == b and b.op == "sym":
            return self._assume(b.name, "orthogonal")
        if b.op == "T" and b.args[0] == a and a.op == "sym":
            return self._assume(a.name, "orthogonal")
        return False

    def _diag_pairs(self, core: list[Expr]) -> list[Expr]:
        """diag(a) diag(b) = diag(a ∘ b); diag(v) w = v ∘ w; uᵀ diag(v) = (u ∘ v)ᵀ; 1ᵀ diag(v) = vᵀ."""
        changed = True
        while changed and len(core) > 1:
            changed = False
            for i in range(len(core) - 1):
                a, b = core[i], core[i + 1]
                new = None
                if a.op == "diag" and b.op == "diag":
                    new = ex.diag(self._op(ex.hadamard(a.args[0], b.args[0]), (a.args[0], b.args[0])))
                elif a.op == "diag" and b.shape != () and b.shape[1] == 1:
                    new = self._op(ex.hadamard(a.args[0], b), (a.args[0], b))
                elif b.op == "diag" and a.shape != () and a.shape[0] == 1:
                    u = self._transpose(a)
                    new = self._transpose(self._op(ex.hadamard(u, b.args[0]), (u, b.args[0])))
                if new is not None:
                    core = core[:i] + [new] + core[i + 2:]
                    changed = True
                    break
        return core

    # -- transpose
    def _transpose(self, a: Expr) -> Expr:
        if a.shape == ():
            return a
        op = a.op
        if op == "T":
            return a.args[0]
        if op in ("eye", "diag"):
            return a
        if op == "zero":
            return ex.zero((a.shape[1], a.shape[0]))
        if op == "sym" and a.shape[0] == a.shape[1] and self.symmetric(a):
            return a
        if op == "inv" and (self.by_construction or a.args[0].op == "sym") and self.symmetric(a.args[0]):
            if a.args[0].op != "sym" and a.args[0] not in self.derived:
                self.derived.append(a.args[0])      # symmetric by construction: the document says why
            return a
        if op == "mul":
            return self._mul(tuple(self._transpose(f) for f in a.args), (a.shape[1], a.shape[0]))
        if op == "matmul":
            return self._matmul(tuple(self._transpose(f) for f in reversed(a.args)), (a.shape[1], a.shape[0]))
        return ex.transpose(a)


def _base_power(f: Expr):
    """A scalar factor as (base, its numeric power): σ⁴ as (σ, 4), σ as (σ, 1)."""
    return (f.args[0], f.args[1].value) if f.op == "pow" and f.args[1].op == "num" else (f, Fraction(1))


def _powers_over(a: Expr, b: Expr) -> tuple | None:
    """``a / b`` for a scalar ``b`` that is a power of a factor of ``a`` (σ / σ⁴, x σ² / σ): the
    factors of ``a`` with that one's power lowered by ``b``'s, else None."""
    if b.shape != () or b.op == "num":
        return None
    base, q = _base_power(b)
    factors = list(a.args) if a.op == "mul" else [a]
    for i, f in enumerate(factors):
        fb, p = _base_power(f)
        if f.shape == () and fb == base and f.op != "num":
            total = p - q
            factors[i] = ex.ONE if total == 0 else (base if total == 1 else ex.power(base, ex.num(total)))
            return tuple(factors)
    return None


def _inverse_transposes(a: Expr, b: Expr) -> bool:
    """A⁻ᵀ Aᵀ = Aᵀ A⁻ᵀ = I"""
    if a.op != "T" or b.op != "T":
        return False
    a, b = a.args[0], b.args[0]
    return (a.op == "inv" and a.args[0] == b) or (b.op == "inv" and b.args[0] == a)


def _all_ones(a: Expr) -> bool:
    if a.op == "ones":
        return True
    return a.op == "matmul" and len(a.args) == 2 and a.args[0].op == "ones" and \
        a.args[1].op == "T" and a.args[1].args[0].op == "ones"


def _split_coeff(t: Expr) -> tuple[Fraction, Expr]:
    if t.op == "num":
        return t.value, ex.ONE
    if t.op == "mul" and t.args[0].op == "num":
        rest = t.args[1:]
        return t.args[0].value, rest[0] if len(rest) == 1 else ex.mul(*rest)
    return Fraction(1), t


def simplify(e: Expr, assumptions: dict[str, tuple[str, ...]] | None = None) -> Expr:
    return Simplifier(assumptions)(e)
