"""The componentwise method (``method: componentwise``): objects written out entry by entry.

The expression is translated into index notation with SymPy (``Indexed``
entries, ``Sum`` over dummy indices, ``KroneckerDelta`` for the identity),
the array-valued pieces are shown as matrices with dots for symbolic sizes
(first, second and last rows and columns), the function is written as a sum,
and it is differentiated with respect to one entry ``x_k`` at a time.  The
vector form of the result comes from the rules (``chain.solve_target``); the
componentwise entries are checked against it numerically in ``verify``.

Supported: sums, scalar and Hadamard products, ``@``, transposes, ``eye``,
``ones``, ``trace``, ``sum``, ``norm``, ``diag`` and the elementwise
functions.  Anything else is reported as unsupported for this method.
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .. import expr as ex
from ..errors import UnsupportedError
from ..sizes import MAX_LITERAL
from ..expr import Expr

_FUNCS = {
    "exp": sp.exp, "log": sp.log, "sin": sp.sin, "cos": sp.cos, "tan": sp.tan, "tanh": sp.tanh,
    "sqrt": sp.sqrt,
    "sigmoid": lambda u: 1 / (1 + sp.exp(-u)),
    "softplus": lambda u: sp.log(1 + sp.exp(u)),
    "cosh": sp.cosh, "sinh": sp.sinh, "log1p": lambda u: sp.log(1 + u),
}
# relu, abs, step and sign are not given to SymPy: its derivatives of Max and Abs are Heaviside and
# sign functions with its own values at the kink, not the convention the documents state.
_SIGMA = sp.Function("sigma")          # opaque: the entries shown keep the name σ


@dataclass(frozen=True)
class WrittenOut:
    """One array written out: its expression and the LaTeX of its displayed entries."""

    expr: Expr
    rows: tuple[tuple[str, ...], ...]       # LaTeX entries; '\\cdots' etc. for the dots


@dataclass(frozen=True)
class Componentwise:
    written: tuple[WrittenOut, ...]
    scalar_latex: str                # f written with sums
    entry_symbol: str                # LaTeX of x_k
    entry_derivative: str            # LaTeX of ∂f/∂x_k
    row: tuple[str, ...]             # LaTeX of the displayed entries of the gradient
    index: str                       # the index letter, 'k'
    sympy_derivative: object         # for the numerical check
    sympy_symbols: object


class _Translator:
    def __init__(self, display: bool, reserved: tuple[str, ...] = ()):
        self.display = display
        self.names = [n for n in "ijlmnpqrst" if n not in reserved]
        self.dims: dict[str, sp.Symbol] = {}
        self.bases: dict[str, sp.IndexedBase] = {}
        self.scalars: dict[str, sp.Symbol] = {}
        self.counter = 0

    def dim(self, d) -> sp.Expr:
        if isinstance(d, int):
            if d > MAX_LITERAL:
                # SymPy would write out a sum of d terms (x: [10000] never ends)
                raise UnsupportedError(f"componentwise: literal sizes are written out up to {MAX_LITERAL}, "
                                       f"not {d}; name the dim (N: dim)")
            return sp.Integer(d)
        if "*" in str(d):
            raise UnsupportedError("componentwise: products of dims are not supported")
        return self.dims.setdefault(d, sp.Symbol(d, integer=True, positive=True))

    def dummy(self) -> sp.Symbol:
        names = self.names
        name = names[self.counter % len(names)] + ("" if self.counter < len(names) else str(self.counter))
        self.counter += 1
        return sp.Symbol(name, integer=True)

    def _mul(self, *fs):
        if not self.display:
            return sp.Mul(*fs)
        fs = [f for f in fs if f != 1]
        if not fs:
            return sp.Integer(1)
        if len(fs) == 1:
            return fs[0]
        if all(f == fs[0] for f in fs):
            return sp.Pow(fs[0], len(fs))
        return sp.Mul(*fs, evaluate=False)

    def c(self, e: Expr, i, j) -> sp.Expr:
        op = e.op
        if op == "sym":
            if e.shape == ():
                return self.scalars.setdefault(e.name, sp.Symbol(e.name, real=True))
            base = self.bases.setdefault(e.name, sp.IndexedBase(e.name, real=True))
            r, cdim = e.shape
            if cdim == 1:
                return base[i]
            if r == 1:
                return base[j]
            return base[i, j]
        if op == "num":
            return sp.Rational(e.value.numerator, e.value.denominator)
        if op == "zero":
            return sp.Integer(0)
        if op == "eye":
            return sp.KroneckerDelta(i, j)
        if op == "ones":
            return sp.Integer(1)
        if op == "add":
            return sp.Add(*(self.c(a, i, j) for a in e.args))
        if op in ("mul", "had"):
            return self._mul(*(self.c(a, i, j) for a in e.args))
        if op == "div":
            return self.c(e.args[0], i, j) / self.c(e.args[1], i, j)
        if op == "pow":
            return self.c(e.args[0], i, j) ** self.c(e.args[1], i, j)
        if op == "T":
            return self.c(e.args[0], j, i)
        if op == "fn" and self.display and e.name == "sigmoid":
            return _SIGMA(self.c(e.args[0], i, j))      # written out as σ(z₁), not 1/(1 + e^{−z₁})
        if op == "fn" and e.name not in _FUNCS:
            raise UnsupportedError(f"componentwise: {e.name} is piecewise; it is not written out entry by "
                                   "entry (use method: chain_rule)")
        if op == "fn":
            return _FUNCS[e.name](self.c(e.args[0], i, j))
        if op == "matmul":
            # entry (i, j) of L @ R = sum_k L_ik R_kj, folded left to right
            return self._matmul(list(e.args), i, j)
        if op == "trace":
            k = self.dummy()
            n = self.dim(e.args[0].shape[0])
            return sp.Sum(self.c(e.args[0], k, k), (k, 1, n))
        if op == "sum":
            k = self.dummy()
            n = self.dim(ex.as_2d(e.args[0].shape)[0])
            return sp.Sum(self.c(e.args[0], k, 1), (k, 1, n))
        if op == "norm":
            k = self.dummy()
            n = self.dim(ex.as_2d(e.args[0].shape)[0])
            return sp.sqrt(sp.Sum(self.c(e.args[0], k, 1) ** 2, (k, 1, n)))
        if op == "diag":
            return sp.KroneckerDelta(i, j) * self.c(e.args[0], i, 1)
        if op == "diagpart":
            return self.c(e.args[0], i, i)
        if op == "dim":                 # a dimension used as a number: the same symbol as its size
            return self.dim(e.name)
        if op == "const":
            return {"pi": sp.pi, "e": sp.E}[e.name]
        raise UnsupportedError(f"componentwise: cannot write {ex.to_text(e)} entry by entry "
                               "(use method: chain_rule)")

    def _matmul(self, fs: list[Expr], i, j) -> sp.Expr:
        if len(fs) == 1:
            return self.c(fs[0], i, j)
        a, rest = fs[0], fs[1:]
        inner = ex.as_2d(a.shape)[1]
        if inner == 1:
            return self._mul(self.c(a, i, 1), self._matmul(rest, 1, j))
        k = self.dummy()
        return sp.Sum(self._mul(self.c(a, i, k), self._matmul(rest, k, j)), (k, 1, self.dim(inner)))


def _latex(e) -> str:
    return sp.latex(e, order="none")


def _first_branch(e):
    return e.replace(lambda t: isinstance(t, sp.Piecewise), lambda t: t.args[0][0])


def _index_positions(n) -> list:
    """Rows to show for a size n: all of them up to 3, else 1, 2, ..., n."""
    if isinstance(n, sp.Integer) and int(n) <= 3:
        return [sp.Integer(k) for k in range(1, int(n) + 1)]
    return [sp.Integer(1), sp.Integer(2), None, n]


def write_out(e: Expr, tr: _Translator) -> WrittenOut:
    r, c = ex.as_2d(e.shape)
    rows_idx = _index_positions(tr.dim(r))
    cols_idx = _index_positions(tr.dim(c))
    rows = []
    for ri in rows_idx:
        row = []
        for ci in cols_idx:
            if ri is None and ci is None:
                row.append(r"\ddots" if len(cols_idx) > 1 and len(rows_idx) > 1 else r"\vdots")
            elif ri is None:
                row.append(r"\vdots")
            elif ci is None:
                row.append(r"\cdots")
            else:
                val = tr.c(e, ri, ci)
                if isinstance(val, sp.Expr):
                    val = val.doit() if val.has(sp.Sum) else val
                row.append(_latex(val))
        rows.append(tuple(row))
    return WrittenOut(e, tuple(rows))


def _pieces(e: Expr, x: str) -> list[Expr]:
    """Array-valued parts depending on x whose parent is scalar-valued: the objects to write out."""
    out: list[Expr] = []

    def visit(n: Expr, parent_scalar: bool) -> None:
        if n.shape != () and parent_scalar and ex.depends_on(n, x) and n.op not in ("sym", "T"):
            if n.op == "add":
                for a in n.args:
                    visit(a, True)
                return
            if n not in out:
                out.append(n)
            return
        for a in n.args:
            visit(a, n.shape == ())

    visit(e, True)
    return out


def componentwise(f_expr: Expr, x: str, x_shape) -> Componentwise:
    if f_expr.shape != () or x_shape == () or x_shape[1] != 1:
        raise UnsupportedError("componentwise: written out for a scalar function of a vector")
    try:
        return _componentwise(f_expr, x, x_shape)
    except (TypeError, ValueError, ZeroDivisionError, AttributeError) as exc:
        # SymPy's own failures (a comparison it cannot decide, a complex value): no answer
        raise UnsupportedError(f"componentwise: SymPy cannot write this out ({type(exc).__name__}: "
                               f"{str(exc)[:80]}); use method: chain_rule") from None


def _componentwise(f_expr: Expr, x: str, x_shape) -> Componentwise:
    shown = _Translator(display=True)
    written = tuple(write_out(p, shown) for p in _pieces(f_expr, x))
    calc = _Translator(display=False)
    f_sym = calc.c(f_expr, 1, 1)
    scalar_form = f_sym.expand().doit() if f_sym.has(sp.Sum) else f_sym
    k = sp.Symbol("k", integer=True, positive=True)
    base = calc.bases.get(x) or sp.IndexedBase(x, real=True)
    deriv = sp.diff(scalar_form, base[k]).doit()
    deriv = sp.simplify(_first_branch(deriv))
    n = calc.dim(x_shape[0])
    row = []
    for pos in _index_positions(n):
        if pos is None:
            row.append(r"\cdots")
        else:
            row.append(_latex(deriv.subs(k, pos)))
    return Componentwise(
        written=written,
        scalar_latex=_latex(scalar_form),
        entry_symbol=_latex(base[k]),
        entry_derivative=_latex(deriv),
        row=tuple(row),
        index="k",
        sympy_derivative=deriv,
        sympy_symbols=(calc, k, base),
    )


def check_entries(cw: Componentwise, env: dict, sizes: dict[str, int], claimed_row) -> float:
    """Largest difference between the componentwise entries and the claimed gradient row."""
    import numpy as np
    calc, k, base = cw.sympy_symbols
    subs = {sym: sizes[name] for name, sym in calc.dims.items()}
    values = {}
    for name, b in calc.bases.items():
        arr = np.atleast_2d(np.asarray(env[name], dtype=float))
        for (r, c), v in np.ndenumerate(arr):
            if arr.shape[1] == 1:
                values[b[r + 1]] = v
            elif arr.shape[0] == 1:
                values[b[c + 1]] = v
            else:
                values[b[r + 1, c + 1]] = v
    for name, s in calc.scalars.items():
        values[s] = float(env[name])
    row = np.asarray(claimed_row, dtype=float).reshape(-1)
    worst = 0.0
    for idx in range(row.size):
        e = cw.sympy_derivative.subs(subs).subs(k, idx + 1).doit()
        try:
            val = float(e.subs(values).evalf())
        except TypeError:     # complex, or a symbol left over: the entries say nothing here
            raise UnsupportedError(f"componentwise: entry {idx + 1} of the derivative has no real "
                                   "value at the check's point") from None
        worst = max(worst, abs(val - row[idx]) / max(abs(row[idx]), 1e-3))
    return worst
