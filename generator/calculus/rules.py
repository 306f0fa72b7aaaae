"""The derivative rules: one small function per rule, each returning a ``Step``.

``Differentiator(wrt, shape).d(e)`` tries ``RULES`` in order; the first rule
that applies returns a ``Step`` whose result is the Jacobian of ``e`` with
respect to the variable ``wrt`` in numerator layout:

=================  ====================  ==========================
of                 with respect to        Jacobian
=================  ====================  ==========================
anything           scalar                 same shape as ``of``
scalar             vector (n)             row, 1×n
vector (m)         vector (n)             m×n
scalar             matrix (p×q)           p×q (written 1×(p×q))
=================  ====================  ==========================

A rule returns ``None`` when it does not apply.  Results are simplified and
their shape is checked against the table; a case no rule covers raises
``UnsupportedError`` — never a guess.  Each rule's docstring is its identity.

To add a rule: write ``def rule_x(e, D) -> Step | None`` with a one-line
docstring, return ``D.step("x", e, result, cites=..., note=...)`` and put it
in ``RULES``.  Give it a title in ``TITLES``.
"""
from __future__ import annotations

import re
from typing import Callable

from .. import expr as ex
from ..errors import UnsupportedError
from ..expr import Expr, shape_str
from ..trace import Step
from . import scalar
from .rewrite import TITLES as REWRITE_TITLES
from .steps_of_simplify import TITLES as SIMPLIFY_TITLES
from .simplify import Simplifier

TITLES = {
    "constant": "Constant",
    "identity": "Identity",
    "transpose": "Transpose",
    "sum": "Sum rule",
    "constant_factor": "Constant factor",
    "product": "Product rule",
    "linear_map": "Linear map",
    "linear_map_chain": "Chain rule through a linear map",
    "linear_form": "Linear form",
    "quadratic_form": "Quadratic form",
    "squared_norm": "Inner product with itself",
    "bilinear_form": "Bilinear form",
    "elementwise": "Elementwise function",
    "scalar_chain": "Chain rule",
    "power": "Power rule",
    "quotient": "Quotient rule",
    "hadamard": "Product rule for the Hadamard product",
    "sum_entries": "Sum of the entries",
    "norm": "Euclidean norm",
    "frobenius_norm": "Frobenius norm",
    "norm_squared": "Squared Euclidean norm",
    "frobenius_squared": "Squared Frobenius norm",
    "trace_linear": "Linearity of the trace",
    "trace_cyclic": "Cyclic property of the trace",
    "matrix_product_scalar": "Product rule for matrix products",
    "inverse_scalar": "Derivative of the inverse",
    "det_scalar": "Derivative of the determinant",
    "log_det": "Derivative of the log-determinant",
    "trace_scalar": "Derivative of the trace",
    "diag_scalar": "Derivative of a diagonal matrix",
    "kron_scalar": "Product rule for the Kronecker product",
    "kron_trace": "Trace of a Kronecker product",
    "kron_norm": "Frobenius norm of a Kronecker product",
    "kron_mixed_product": "Mixed-product property of the Kronecker product",
    "vec_linear": "vec is linear",
    "vec_kron": "vec of a product",
    "vec_jacobian": "Jacobian with respect to vec X",
    "vec_hessian": "Hessian with respect to vec X",
    "differential": "Differential, then identification",
    "differential_terms": "Expanding the differential",
    "trace_transpose": "Transpose inside a trace",
    "scalar_trace": "A scalar is its own trace",
    "scalar_transpose": "A scalar is its own transpose",
    "differential_collected": "Collecting the terms",
    "hadamard_sum": "Sum of a Hadamard product",
    "scalar_commutes": "A scalar factor commutes",
    "tensor_contraction": "Contraction with the tensor",
    "matrix_chain": "Chain rule through a matrix",
    "differential_chain": "Chain rule with differentials",
    "abstract_chain": "Chain rule through an abstract function",
    "stacking": "Stacking: the Jacobian row by row",
    "maximum": "Derivative of the maximum",
    "softmax": "Jacobian of the softmax",
    "log_softmax": "Jacobian of the log-softmax",
    "logsumexp": "Gradient of the log-sum-exp",
    "mean": "Derivative of the mean",
}
TITLES.update({"derivative_" + name: "Derivative of " + word for name, word in scalar.NAMES.items()})
TITLES.update(REWRITE_TITLES)       # the simplifier's named rewrites (calculus/rewrite.py)
TITLES.update(SIMPLIFY_TITLES)      # its symmetry and scalar algebra (calculus/steps_of_simplify.py)


def direction_symbol(name: str, shape: ex.Shape) -> Expr:
    """The differential dX of the variable X, as a symbol no problem file can declare."""
    return ex.sym("d:" + name, shape)


class Differentiator:
    """Differentiates expressions with respect to one variable, recording steps."""

    def __init__(self, wrt: str, wrt_shape: ex.Shape, simplifier: Simplifier | None = None,
                 direction: Expr | None = None):
        self.x = wrt
        self.xshape = wrt_shape
        self.simp = simplifier or Simplifier()
        self.direction = direction      # differentials: d(x) = direction, results have the shape of ``of``
        if wrt_shape == () or direction is not None:
            self.kind = "scalar"
        elif wrt_shape[1] == 1:
            self.kind = "vector"
        else:
            self.kind = "matrix"
        self.xvar = ex.sym(wrt, wrt_shape)

    # -- shapes
    def jshape(self, of_shape: ex.Shape) -> ex.Shape | None:
        if self.kind == "scalar":
            return of_shape
        if of_shape == ():
            return (1, self.xshape[0]) if self.kind == "vector" else self.xshape
        if self.kind == "vector":
            r, c = of_shape
            if c == 1:
                return ex.norm_shape(r, self.xshape[0])
            if r == 1:
                return ex.norm_shape(c, self.xshape[0])
        return None

    def dims(self, of_shape: ex.Shape) -> str:
        if self.direction is not None:
            return shape_str(of_shape)
        return jacobian_dims(of_shape, self.xshape)

    def const(self, e: Expr) -> bool:
        return not ex.depends_on(e, self.x)

    # -- the driver
    def d(self, e: Expr) -> Step:
        if self.jshape(e.shape) is None:
            raise UnsupportedError(
                f"the derivative of a {shape_str(e.shape)} expression with respect to the "
                f"{shape_str(self.xshape)} {self.x} is a tensor; stepgen does not yet derive it "
                f"({ex.to_text(e)})")
        failures: list[UnsupportedError] = []
        for rule in RULES:
            try:
                step = rule(e, self)
            except UnsupportedError as exc:     # e.g. a tensor inside: a later rule may still apply
                failures.append(exc)
                continue
            if step is not None:
                return step
        if failures:
            raise failures[0]
        raise UnsupportedError(f"no rule differentiates {ex.to_text(e)} with respect to {self.x}")

    def step(self, rule: str, e: Expr, result: Expr, *, cites: str = "", note: str = "",
             args: tuple = (), subs: tuple = (), simplify: bool = True, label: str = "") -> Step:
        """A step of ``rule``; ``simplify=False`` keeps a rewritten form as it is written; ``label``
        names ``e`` in the document when it is not written out (see ``Step``)."""
        want = self.jshape(e.shape)
        if simplify:
            result = self.simp(result)
        if result == ex.ZERO and want != ():
            result = ex.zero(want)
        if result.shape != want:
            raise UnsupportedError(
                f"internal: rule {rule} gave {shape_str(result.shape)} for {ex.to_text(e)}, "
                f"expected {shape_str(want)}")
        note = unclash(note, tuple(args), lambda: ex.free_symbols(e) | {self.x})
        return Step(rule=rule, of=e, wrt=self.x, result=result, dims=self.dims(e.shape),
                    cites=cites, note=note, note_args=tuple(args), substeps=tuple(subs),
                    wrt_shape=self.xshape, direction=self.direction.name if self.direction is not None else "",
                    label=label)

    # -- Jacobian algebra
    def zero(self, e: Expr) -> Expr:
        return ex.zero(self.jshape(e.shape))

    def times_scalar_jac(self, a: Expr, js: Expr) -> Expr:
        """Jacobian of ``s * a`` through ``s`` only: ``a`` times the Jacobian of the scalar ``s``."""
        if a.shape == () or js.shape == ():
            return ex.mul(js, a) if a.shape == () else ex.mul(js, a if self.kind == "scalar" else col(a))
        return ex.matmul(col(a), js)


def compose(j1: Expr, j2: Expr, v_shape: ex.Shape, wrt_kind: str) -> Expr:
    """(∂F/∂V)(∂V/∂X) for numerator-layout Jacobians, by the shape of V."""
    if v_shape == ():
        if j1.shape == () or j2.shape == ():
            return ex.mul(j1, j2)
        return ex.matmul(j1, j2)
    if v_shape[1] == 1 or v_shape[0] == 1:
        return ex.matmul(j1, j2)
    if wrt_kind == "scalar" and j1.shape == v_shape:
        return ex.trace(ex.matmul(ex.transpose(j1), j2))
    raise UnsupportedError("a chain through a matrix-valued link needs a tensor; not derived yet")


def partial_of_function(name: str, args: tuple, i: int, out_shape: ex.Shape) -> Expr:
    """∂p/∂(argument i) of an abstract function, evaluated at ``args``."""
    shape = Differentiator("_", args[i].shape).jshape(out_shape)
    if shape is None:
        raise UnsupportedError(f"the derivative of {name} with respect to its argument {i + 1} is a tensor")
    return ex.Expr("pd", tuple(args), shape, name=name, value=ex.Fraction(i))


def transposed_in(layout: str, wrt_shape: ex.Shape) -> bool:
    """Whether ``layout`` shows the transpose of our numerator-layout Jacobian: yes for
    derivatives by a scalar or a vector; a gradient by a matrix has the matrix's shape in both
    (as in the Matrix Cookbook)."""
    return layout == "denominator" and (wrt_shape == () or wrt_shape[1] == 1)


def col(a: Expr) -> Expr:
    """A vector as a column."""
    if a.shape != () and a.shape[0] == 1 and a.shape[1] != 1:
        return a.args[0] if a.op == "T" else ex.transpose(a)
    return a


def jacobian_dims(of_shape: ex.Shape, wrt_shape: ex.Shape) -> str:
    """Dims of a Jacobian as the book writes them (numerator layout)."""
    def n(s):
        if s == ():
            return "1"
        r, c = s
        if c == 1:
            return str(r)
        if r == 1:
            return str(c)
        return f"({r}×{c})"
    if wrt_shape == ():
        return shape_str(of_shape)
    if of_shape == ():
        if wrt_shape[1] == 1:
            return f"1×{wrt_shape[0]}"
        return f"1×({wrt_shape[0]}×{wrt_shape[1]})"
    return f"{n(of_shape)}×{n(wrt_shape)}"


# --- rules ----------------------------------------------------------------------

def rule_constant(e: Expr, D: Differentiator) -> Step | None:
    """∂c/∂x = 0 when c does not depend on x."""
    if not D.const(e):
        return None
    return D.step("constant", e, D.zero(e), note="$@0$ does not depend on $@1$", args=(e, D.xvar))


def rule_identity(e: Expr, D: Differentiator) -> Step | None:
    """∂x/∂x = I."""
    if e.op != "sym" or e.name != D.x:
        return None
    if D.direction is not None:
        return D.step("identity", e, D.direction, note=r"the differential of the variable itself")
    if D.kind == "scalar":
        res = ex.ONE
    elif D.kind == "vector":
        res = ex.eye(D.xshape[0])
    else:
        return None
    return D.step("identity", e, res, note=r"the derivative of a variable with respect to itself is the identity")


def rule_transpose(e: Expr, D: Differentiator) -> Step | None:
    """∂(aᵀ)/∂x = (∂a/∂x)ᵀ — MML (5.99); for a vector, aᵀ has the same Jacobian as a."""
    if e.op != "T":
        return None
    a = e.args[0]
    sub = D.d(a)
    if D.kind == "scalar":
        res = ex.transpose(sub.result)
        return D.step("transpose", e, res, cites="MML (5.99)", subs=(sub,))
    if a.shape != () and 1 in a.shape:
        return D.step("transpose", e, sub.result, subs=(sub,),
                      note=r"a row vector and its column have the same entries, so the same Jacobian")
    return None


def rule_sum(e: Expr, D: Differentiator) -> Step | None:
    """∂(a + b)/∂x = ∂a/∂x + ∂b/∂x."""
    if e.op != "add":
        return None
    subs = [D.d(t) for t in e.args]
    parts = []
    for t, s in zip(e.args, subs):
        if t.shape == () and e.shape != () and D.kind != "scalar":
            # a scalar added to every entry: s·1
            parts.append(ex.matmul(ex.ones(col(e).shape[0]), s.result) if s.result.shape != () else
                         ex.mul(s.result, ex.ones(col(e).shape[0])))
        elif t.shape == () and e.shape != ():
            parts.append(ex.mul(s.result, ex.ones_like(e.shape)))
        else:
            parts.append(s.result)
    return D.step("sum", e, ex.add(*parts), subs=tuple(subs),
                  note=r"differentiate term by term")


def _with(letter: str, e: Expr, i: int, what: str = "") -> str:
    """", with u = @i" naming what the letter of an identity stands for; nothing when ``e`` is a
    symbol of that very name (never "u = u")."""
    if e.op == "sym" and e.name == letter:
        return ""
    return ", with " + (what + " " if what else "") + "$" + (r"\mathbf{%s}" % letter if e.shape != () else letter) + " = @" + str(i) + "$"


# --- placeholder letters of an identity that clash with the problem's names -------------

_BOUND = re.compile(r"\$(?:\\mathbf\{([A-Za-z])\}|([A-Za-z])) = @(\d+)")
_MATH = re.compile(r"\$[^$]*\$")
_MATH_TOKEN = re.compile(r"\\(?:operatorname|mathrm|text|mathbb|mathcal)\{[^}]*\}|\\[A-Za-z]+|[A-Za-z]")
_SPARE = {True: "CMPQSUVWGH", False: "vwzts"}


def unclash(note: str, args: tuple, names) -> str:
    """``note`` with each identity letter bound by "with L = @i" renamed where the problem uses
    that name for something else (``names``: the names in sight, or a function giving them):
    never "with B = B ⊗ A" — the identity reads uᵀ(C + Cᵀ) and "with C = B ⊗ A" instead."""
    if not _BOUND.search(note):
        return note
    if callable(names):
        names = names()
    bound = {}
    for m in _BOUND.finditer(note):
        letter, i = m.group(1) or m.group(2), int(m.group(3))
        if i < len(args):
            bound[letter] = args[i]
    taken = set(names).union(*(ex.free_symbols(a) for a in args if isinstance(a, Expr)))
    clashes = [L for L, a in bound.items()
               if L in taken and not (isinstance(a, Expr) and a.op == "sym" and a.name == L)]
    if not clashes:
        return note
    used = {t for m in _MATH.finditer(note) for t in _MATH_TOKEN.findall(m.group()) if len(t) == 1}
    for L in clashes:
        new = next((c for c in _SPARE[L.isupper()] if c not in taken and c not in used), None)
        if new is None:
            continue
        used.add(new)
        note = _MATH.sub(lambda m: _MATH_TOKEN.sub(lambda t: new if t.group() == L else t.group(), m.group()), note)
    return note


CONSTANT_FACTOR = "$@0$ does not depend on $@1$ and stays as a factor"


def rule_mul(e: Expr, D: Differentiator) -> Step | None:
    """∂(c a)/∂x = c ∂a/∂x for a constant c; otherwise the product rule ∂(uv)/∂x = v ∂u/∂x + u ∂v/∂x."""
    if e.op != "mul":
        return None
    dep = [i for i, f in enumerate(e.args) if not D.const(f)]
    if len(dep) == 1:
        i = dep[0]
        c = [f for j, f in enumerate(e.args) if j != i]
        sub = D.d(e.args[i])
        a = e.args[i]
        coeff = ex.mul(*c) if len(c) > 1 else c[0]
        if a.shape == () and e.shape != ():
            # s(x) times a constant array
            res = D.times_scalar_jac(coeff, sub.result) if coeff.shape != () else ex.mul(coeff, sub.result)
        else:
            res = ex.mul(coeff, sub.result)
        return D.step("constant_factor", e, res, subs=(sub,),
                      note=CONSTANT_FACTOR, args=(coeff, D.xvar))
    subs = [D.d(e.args[i]) for i in dep]
    terms = []
    for i, s in zip(dep, subs):
        others = [f for j, f in enumerate(e.args) if j != i]
        other = ex.mul(*others) if len(others) > 1 else others[0]
        if e.args[i].shape == () and other.shape != ():
            terms.append(D.times_scalar_jac(other, s.result))
        else:
            terms.append(ex.mul(other, s.result))
    return D.step("product", e, ex.add(*terms), subs=tuple(subs),
                  note=r"each factor differentiated in turn, the others kept")


def rule_factor_out_of_product(e: Expr, D: Differentiator) -> Step | None:
    """(c A) B = c (A B) for a constant scalar c, in a product with the variable on both sides:
    pulled out first, so that the product left is a form the rules below recognise (−½ yᵀ S⁻¹ y
    is −½ times a quadratic form, MML (5.107), not a bilinear form in −½y and y)."""
    if e.op != "matmul" or D.kind == "scalar" or sum(not D.const(f) for f in e.args) < 2:
        return None
    coeff: list[Expr] = []
    rest = []
    for f in e.args:
        if f.op == "mul":
            c = [a for a in f.args if a.shape == () and D.const(a)]
            kept = [a for a in f.args if not (a.shape == () and D.const(a))]
            if c and kept:
                coeff.extend(c)
                f = ex.mul(*kept)
        rest.append(f)
    if not coeff:
        return None
    inner = ex.matmul(*rest)
    sub = D.d(inner)
    c = ex.mul(*coeff)
    return D.step("constant_factor", e, ex.mul(c, sub.result), subs=(sub,),
                  note=CONSTANT_FACTOR, args=(c, D.xvar))


def rule_matmul(e: Expr, D: Differentiator) -> Step | None:
    """Products with @: linear maps, linear, bilinear and quadratic forms (MML (5.104)–(5.107))."""
    if e.op != "matmul":
        return None
    fs = e.args
    dep = [i for i, f in enumerate(fs) if not D.const(f)]
    if D.kind == "scalar":
        subs = [D.d(fs[i]) for i in dep]
        terms = [ex.matmul(*(fs[:i] + (s.result,) + fs[i + 1:])) for i, s in zip(dep, subs)]
        return D.step("matrix_product_scalar", e, ex.add(*terms), subs=tuple(subs),
                      note=r"each factor differentiated in turn, the order of the factors kept")
    if D.kind != "vector":
        return None
    n = len(fs)
    if len(dep) == 1:
        i = dep[0]
        f = fs[i]
        left, right = fs[:i], fs[i + 1:]
        if f.shape != () and f.shape[1] == 1 and not right:
            # L @ v(x): a linear map applied to a vector
            L = ex.matmul(*left)
            sub = D.d(f)
            if L.shape[0] == 1 or L.shape == ():
                rule, cites = "linear_form", "MML (5.105); Matrix Cookbook (69)"
                note = "a linear form $@0 @1$: its gradient is $@0$"
            else:
                rule, cites = "linear_map", ""
                note = "the linear map $@0$ applied to $@1$: its Jacobian is $@0$"
                if not (f.op == "sym" and f.name == D.x):     # A u(x): A times the Jacobian of u
                    rule = "linear_map_chain"
                    note += r", times the Jacobian of $@1$: $\frac{\partial (\mathbf{A}\mathbf{u})}{\partial \mathbf{x}} = \mathbf{A}\,\frac{\partial \mathbf{u}}{\partial \mathbf{x}}$"
            return D.step(rule, e, ex.matmul(L, sub.result), cites=cites, note=note, args=(L, f),
                          subs=(sub,) if not (f.op == "sym" and f.name == D.x) else ())
        if f.shape != () and f.shape[0] == 1 and not left:
            # u(x)ᵀ @ R: the same as Rᵀ u
            R = ex.matmul(*right)
            sub = D.d(f)
            Rt = ex.transpose(R)
            if e.shape == ():
                rule, cites = "linear_form", "MML (5.104); Matrix Cookbook (69)"
                note = r"a linear form in $@0$: $\frac{\partial\, \mathbf{u}^\top \mathbf{a}}{\partial \mathbf{u}} = \mathbf{a}^\top$ with $\mathbf{a} = @1$"
            else:
                rule, cites = "linear_map", ""
                note = r"$@0^\top @1$ is the transpose of $@2 @0$, a linear map: a row vector and its column have the same Jacobian $@2$"
            return D.step(rule, e, ex.matmul(Rt, sub.result), cites=cites, note=note, args=(col(f), R, Rt),
                          subs=(sub,) if not (f.op == "T" and f.args[0].op == "sym" and f.args[0].name == D.x) else ())
        return None
    if len(dep) == 2 and dep == [0, n - 1] and e.shape == ():
        u_row, v = fs[0], fs[-1]
        mid = fs[1:-1]
        u = col(u_row)
        if u_row.shape[0] != 1 or v.shape[1] != 1:
            return None
        su = D.d(u)
        if u == v:
            if not mid:
                return D.step("squared_norm", e, ex.mul(ex.num(2), ex.matmul(ex.transpose(u), su.result)),
                              cites="Matrix Cookbook (131)", note=r"$\frac{\partial\, \mathbf{u}^\top \mathbf{u}}{\partial \mathbf{u}} = 2\mathbf{u}^\top$" + _with("u", u, 0), args=(u,),
                              subs=(su,) if u != D.xvar else ())
            B = ex.matmul(*mid)
            res = ex.matmul(ex.transpose(u), ex.add(B, ex.transpose(B)), su.result)
            return D.step("quadratic_form", e, res, cites="MML (5.107); Matrix Cookbook (81), transposed",
                          note=r"a quadratic form: $\frac{\partial\, \mathbf{u}^\top \mathbf{B} \mathbf{u}}{\partial \mathbf{u}} = \mathbf{u}^\top (\mathbf{B} + \mathbf{B}^\top)$" + _with("u", u, 0) + _with("B", B, 1),
                          args=(u, B), subs=(su,) if u != D.xvar else ())
        sv = D.d(v)
        if mid:
            B = ex.matmul(*mid)
            t1 = ex.matmul(ex.transpose(v), ex.transpose(B), su.result)
            t2 = ex.matmul(ex.transpose(u), B, sv.result)
            note = r"a bilinear form in $@0$ and $@1$: differentiate through each side in turn"
        else:
            t1 = ex.matmul(ex.transpose(v), su.result)
            t2 = ex.matmul(ex.transpose(u), sv.result)
            note = r"an inner product of $@0$ and $@1$: differentiate through each side in turn"
        return D.step("bilinear_form", e, ex.add(t1, t2), cites="Matrix Cookbook (78), transposed",
                      note=note, args=(u, v), subs=(su, sv))
    return None


def rule_log_det(e: Expr, D: Differentiator) -> Step | None:
    """∂ log det X/∂X = X⁻ᵀ — Matrix Cookbook (57); ∂ log det Z = tr(Z⁻¹ ∂Z) — Matrix Cookbook (43):
    directly, so that no det(Z) is written only to cancel against 1/det(Z)."""
    if e.op != "fn" or e.name != "log" or e.args[0].op != "det":
        return None
    z = e.args[0].args[0]
    if D.kind == "scalar":
        sub = D.d(z)
        return D.step("log_det", e, ex.trace(ex.matmul(ex.inv(z), sub.result)), cites="Matrix Cookbook (43)",
                      note=r"$\partial \log\det \mathbf{Z} = \operatorname{tr}(\mathbf{Z}^{-1} \partial\mathbf{Z})$ with $\mathbf{Z} = @0$",
                      args=(z,), subs=() if z == D.xvar else (sub,))
    if D.kind == "matrix" and z == D.xvar:
        return D.step("log_det", e, ex.transpose(ex.inv(z)), cites="Matrix Cookbook (57)",
                      note=r"$\frac{\partial \log\det \mathbf{X}}{\partial \mathbf{X}} = \mathbf{X}^{-\top}$")
    return rule_differential(e, D)      # d log det Z = tr(Z⁻¹ dZ), above, then identification


def rule_fn(e: Expr, D: Differentiator) -> Step | None:
    """∂f(u)/∂x = f'(u) ∂u/∂x; entrywise on a vector, the Jacobian of f is diag(f'(u))."""
    if e.op != "fn":
        return None
    u = e.args[0]
    fprime = scalar.derivative(e.name, u)
    sub = D.d(u)
    direct = u.op == "sym" and u.name == D.x
    if u.shape == ():
        res = ex.mul(fprime, sub.result)
        cites = identity_citation(e, D.x) if D.kind == "matrix" else scalar.CITES.get(e.name, "")
        # of the variable itself no chain: the rule is the function's own (d/dx sinh x = cosh x)
        return D.step("derivative_" + e.name if direct else "scalar_chain", e, res, cites=cites,
                      note="$" + scalar.LATEX_RULES[e.name] + "$" + _with("u", u, 0, "the inner function"),
                      args=(u,), subs=() if direct else (sub,))
    if D.kind == "scalar":
        return D.step("elementwise", e, ex.hadamard(fprime, sub.result), note=r"entrywise, with $" + scalar.LATEX_RULES[e.name] + "$",
                      args=(u,), subs=() if direct else (sub,), cites=scalar.CITES.get(e.name, ""))
    if u.shape[1] != 1 and u.shape[0] != 1:
        return None
    res = ex.matmul(ex.diag(col(fprime)), sub.result)
    return D.step("elementwise", e, res,
                  note=r"the function acts on each entry of $@0$: entry $i$ of the result depends only on entry $i$ "
                       r"of $@0$, so the Jacobian is the diagonal matrix of the entries' derivatives, with $"
                       + scalar.LATEX_RULES[e.name] + "$",
                  args=(u,), subs=() if direct else (sub,), cites=scalar.CITES.get(e.name, ""))


def _indicator_times(s: Expr, t: Expr, jt: Expr, e: Expr, D: Differentiator) -> Expr:
    """The Jacobian of an entrywise ``s ⊙ t`` through ``t`` alone, ``s`` held fixed (``jt`` the
    Jacobian of ``t``; a scalar ``t`` is broadcast to the shape of ``e``, as in max(0, z))."""
    if e.shape == ():
        return ex.mul(s, jt)
    if D.kind == "scalar":
        return ex.mul(jt, s) if t.shape == () else ex.hadamard(s, jt)
    if t.shape == ():
        return ex.matmul(col(s), jt) if jt.shape != () else ex.mul(jt, col(s))
    if 1 in t.shape:
        return ex.matmul(ex.diag(col(s)), jt)
    raise UnsupportedError(f"the Jacobian of {ex.to_text(e)} with respect to {D.x} is a tensor; "
                           "stepgen does not yet derive it")


def rule_max(e: Expr, D: Differentiator) -> Step | None:
    """∂max(a, b)/∂x = 1[a > b] ∂a/∂x + 1[a ≤ b] ∂b/∂x, entry by entry — Parr & Howard §5
    (the neuron max(0, wᵀx + b)); 1[u > 0] is the step function, 0 at the kink u = 0."""
    if e.op != "max":
        return None
    a, b = e.args
    ca, cb = D.const(a), D.const(b)

    def minus(u: Expr, v: Expr) -> Expr:
        return u if v == ex.ZERO else ex.sub(u, v)

    if ca or cb:        # max(c, u): 1[u > c] ∂u/∂x
        c, u = (a, b) if ca else (b, a)
        gap = minus(u, c)
        ind = ex.fn("step", gap)
        sub = D.d(u)
        res = _indicator_times(ind, u, sub.result, e, D)
        note = (r"$\frac{\partial}{\partial u} \max(c, u) = \mathbb{1}[u > c]$, with $c = @1$ fixed"
                if c != ex.ZERO else r"$\frac{d}{du} \max(0, u) = \mathbb{1}[u > 0]$") + _with("u", u, 2)
        return D.step("maximum", e, res, cites="Parr & Howard §5", note=note, args=(gap, c, u),
                      subs=() if u == D.xvar else (sub,))
    gap = ex.sub(a, b)
    ind = ex.fn("step", gap)
    sa, sb = D.d(a), D.d(b)
    other = ex.add(ex.ONE, ex.neg(ind))
    res = ex.add(_indicator_times(ind, a, sa.result, e, D), _indicator_times(other, b, sb.result, e, D))
    return D.step("maximum", e, res, cites="Parr & Howard §5", args=(gap,), subs=(sa, sb),
                  note=r"$\max(a, b)$ follows $a$ where $a > b$ and $b$ elsewhere: "
                       r"$\mathbb{1}[a > b]\,\partial a + (1 - \mathbb{1}[a > b])\,\partial b$")


def _n_entries(v: Expr) -> Expr:
    """The number of entries of the vector ``v``: a number, or sum(1_N) (printed N)."""
    n = col(v).shape[0]
    return ex.num(n) if isinstance(n, int) else ex.vsum(ex.ones(n))


VECTOR_FN_NOTES = {
    "softmax": (r"$\frac{\partial \operatorname{softmax}(\mathbf{u})}{\partial \mathbf{u}} = "
                r"\operatorname{diag}(\mathbf{p}) - \mathbf{p}\mathbf{p}^\top$ with $\mathbf{p} = \operatorname{softmax}(\mathbf{u})$",
                "Bishop, PRML §4.3.4"),
    "log_softmax": (r"$\log\operatorname{softmax}(\mathbf{u}) = \mathbf{u} - \operatorname{logsumexp}(\mathbf{u})\,\mathbf{1}$, "
                    r"so its Jacobian is $\mathbf{I} - \mathbf{1}\mathbf{p}^\top$ with $\mathbf{p} = \operatorname{softmax}(\mathbf{u})$"
                    r" (the softmax Jacobian divided row by row by $\mathbf{p}$)", "Bishop, PRML §4.3.4, (4.106)"),
    "logsumexp": (r"$\frac{\partial}{\partial \mathbf{u}} \log \sum_i e^{u_i} = \frac{\exp(\mathbf{u})^\top}{\sum_i e^{u_i}}"
                  r" = \operatorname{softmax}(\mathbf{u})^\top$", ""),
    "mean": (r"$\operatorname{mean}(\mathbf{u}) = \frac{1}{n} \mathbf{1}^\top \mathbf{u}$, linear in $\mathbf{u}$ "
             r"($n = @0$ entries)", ""),
}


def rule_vector_fn(e: Expr, D: Differentiator) -> Step | None:
    """∂softmax(u)/∂u = diag(p) − ppᵀ with p = softmax(u) — Bishop, PRML §4.3.4; ∂ log softmax(u)/∂u
    = I − 1pᵀ; ∂ logsumexp(u)/∂u = pᵀ; ∂ mean(u)/∂u = 1ᵀ/n; then the chain rule."""
    if e.op != "vfn":
        return None
    if D.kind == "matrix":
        return None         # through the differential (rule_differential)
    u = e.args[0]
    uc = col(u)
    n = uc.shape[0]
    p = ex.vector_fn("softmax", uc)
    if e.name == "softmax":
        J = ex.add(ex.diag(p), ex.neg(ex.matmul(p, ex.transpose(p))))
    elif e.name == "log_softmax":
        J = ex.add(ex.eye(n), ex.neg(ex.matmul(ex.ones(n), ex.transpose(p))))
    elif e.name == "logsumexp":
        J = ex.transpose(p)
    else:
        J = ex.div(ex.transpose(ex.ones(n)), _n_entries(u))
    sub = D.d(u)
    if D.kind == "scalar":
        res = ex.matmul(J, col(sub.result))
        if e.shape != () and e.shape[0] == 1:
            res = ex.transpose(res)
    else:
        res = ex.matmul(J, sub.result)
    note, cites = VECTOR_FN_NOTES[e.name]
    return D.step(e.name, e, res, cites=cites, note=note + _with("u", uc, 1),
                  args=(_n_entries(u), uc), subs=() if u == D.xvar else (sub,))


def rule_norm_squared(e: Expr, D: Differentiator) -> Step | None:
    """∂‖v‖²/∂x = 2vᵀ ∂v/∂x, as ‖v‖² = vᵀv — Matrix Cookbook (131); ∂‖X‖_F²/∂X = 2X, as
    ‖X‖_F² = tr(XᵀX) — Matrix Cookbook (132), (115).  Tried before the power rule, which would go
    through ‖v‖ (not differentiable at 0) and leave 2‖v‖·vᵀ/‖v‖ to cancel."""
    if e.op != "pow" or e.args[0].op != "norm" or e.args[1] != ex.num(2):
        return None
    v = e.args[0].args[0]
    if D.kind == "matrix" and v != D.xvar:
        return rule_differential(e, D)      # d‖V‖² = 2 tr(Vᵀ dV), below, then identification
    sub = D.d(v) if D.kind != "matrix" else None
    subs = () if v == D.xvar else (sub,)
    if 1 in v.shape:
        v_t = ex.transpose(col(v))
        res = ex.mul(ex.num(2), ex.matmul(v_t, col(sub.result) if D.kind == "scalar" else sub.result))
        return D.step("norm_squared", e, res, cites="Matrix Cookbook (131), transposed", subs=subs,
                      note=r"$\lVert @0 \rVert^{2} = @1 @0$, an inner product with itself: $\frac{\partial\, \mathbf{u}^\top \mathbf{u}}{\partial \mathbf{u}} = 2\mathbf{u}^\top$",
                      args=(col(v), v_t))
    note = r"$\lVert \mathbf{X} \rVert_F^{2} = \operatorname{tr}(\mathbf{X}^\top \mathbf{X})$"
    if D.kind == "scalar":
        res = ex.mul(ex.num(2), ex.trace(ex.matmul(ex.transpose(v), sub.result)))
        return D.step("frobenius_squared", e, res, subs=subs,
                      note=note + r", so its derivative is $2 \operatorname{tr}(\mathbf{X}^\top \partial\mathbf{X})$")
    if D.kind == "matrix" and v == D.xvar:
        return D.step("frobenius_squared", e, ex.mul(ex.num(2), v), cites="Matrix Cookbook (132), (115)",
                      note=note + r", whose gradient is $2\mathbf{X}$")
    return None


def rule_power(e: Expr, D: Differentiator) -> Step | None:
    """∂(uⁿ)/∂x = n uⁿ⁻¹ ∂u/∂x (entrywise on arrays); u^v = exp(v log u) when the exponent varies."""
    if e.op != "pow":
        return None
    u, p = e.args
    if not D.const(p):
        if e.shape != ():
            return None
        su, sp = D.d(u), D.d(p)
        res = ex.mul(e, ex.add(ex.mul(ex.fn("log", u), sp.result), ex.mul(p, ex.power(u, ex.num(-1)), su.result)))
        return D.step("power", e, res, note=r"$u^{v} = \exp(v \log u)$, then the chain and product rules", subs=(su, sp))
    sub = D.d(u)
    dp = ex.mul(p, ex.power(u, ex.add(p, ex.num(-1))))
    if u.shape == ():
        return D.step("power", e, ex.mul(dp, sub.result), note=r"$\frac{d}{du} u^{n} = n u^{n-1}$",
                      subs=() if u == D.xvar else (sub,))
    if D.kind == "scalar":
        return D.step("power", e, ex.hadamard(dp, sub.result), note=r"entrywise: $\frac{d}{du} u^{n} = n u^{n-1}$",
                      subs=() if u == D.xvar else (sub,))
    if 1 not in u.shape:
        return None
    res = ex.matmul(ex.diag(col(dp)), sub.result)
    return D.step("power", e, res, note=r"entrywise ($\frac{d}{du} u^{n} = n u^{n-1}$): a diagonal Jacobian",
                  subs=() if u == D.xvar else (sub,))


def rule_div(e: Expr, D: Differentiator) -> Step | None:
    """∂(u/v)/∂x = (v ∂u/∂x − u ∂v/∂x) / v²."""
    if e.op != "div":
        return None
    u, v = e.args
    if D.const(v):
        sub = D.d(u)
        if v.shape == ():
            return D.step("constant_factor", e, ex.div(sub.result, v),
                          note="dividing by $@0$, which does not depend on $@1$", args=(v, D.xvar), subs=(sub,))
        if D.kind == "scalar":
            return D.step("constant_factor", e, ex.div(sub.result, v), subs=(sub,),
                          note="entrywise division by $@0$, which does not depend on $@1$", args=(v, D.xvar))
        if 1 in u.shape:
            return D.step("constant_factor", e, ex.matmul(ex.diag(col(ex.power(v, ex.num(-1)))), sub.result),
                          subs=(sub,), note="entrywise division by $@0$: a diagonal factor", args=(v, D.xvar))
        return None
    su, sv = D.d(u), D.d(v)
    if e.shape == ():
        res = ex.div(ex.add(ex.mul(v, su.result), ex.neg(ex.mul(u, sv.result))), ex.power(v, ex.num(2)))
        return D.step("quotient", e, res, note=r"$\left(\frac{u}{v}\right)' = \frac{v u' - u v'}{v^{2}}$", subs=(su, sv))
    if v.shape == ():
        # vector over scalar
        t1 = ex.div(su.result, v)
        t2 = ex.div(D.times_scalar_jac(u, sv.result), ex.power(v, ex.num(2)))
        return D.step("quotient", e, ex.add(t1, ex.neg(t2)), note=r"the denominator is a scalar",
                      subs=(su, sv))
    if D.kind == "scalar":
        res = ex.add(ex.div(su.result, v), ex.neg(ex.hadamard(ex.div(u, ex.power(v, ex.num(2))), sv.result)))
        return D.step("quotient", e, res, note=r"entrywise", subs=(su, sv))
    if 1 not in u.shape:
        return None
    res = ex.add(ex.matmul(ex.diag(col(ex.power(v, ex.num(-1)))), su.result),
                 ex.neg(ex.matmul(ex.diag(col(ex.div(u, ex.power(v, ex.num(2))))), sv.result)))
    return D.step("quotient", e, res, note=r"entrywise: diagonal factors", subs=(su, sv))


def rule_hadamard(e: Expr, D: Differentiator) -> Step | None:
    """∂(u ∘ v)/∂x = diag(v) ∂u/∂x + diag(u) ∂v/∂x."""
    if e.op != "had":
        return None
    u, v = e.args
    su, sv = D.d(u), D.d(v)
    if D.kind == "scalar":
        res = ex.add(ex.hadamard(su.result, v), ex.hadamard(u, sv.result))
    elif 1 in u.shape:
        res = ex.add(ex.matmul(ex.diag(col(v)), su.result), ex.matmul(ex.diag(col(u)), sv.result))
    else:
        return None
    return D.step("hadamard", e, res, note=r"$\mathbf{u} \odot \mathbf{v} = \operatorname{diag}(\mathbf{v})\,\mathbf{u} = \operatorname{diag}(\mathbf{u})\,\mathbf{v}$, then the product rule",
                  subs=tuple(s for s in ((su,) if u == v else (su, sv)) if s.rule != "constant"))   # r ⊙ r: once


def rule_sum_entries(e: Expr, D: Differentiator) -> Step | None:
    """∂ sum(v)/∂x = 1ᵀ ∂v/∂x."""
    if e.op != "sum":
        return None
    v = e.args[0]
    sub = D.d(v)
    if D.kind == "scalar":
        res = ex.vsum(sub.result)
    elif 1 in v.shape:
        res = ex.matmul(ex.transpose(ex.ones(col(v).shape[0])), sub.result)
    else:
        return None
    return D.step("sum_entries", e, res, note=r"$\operatorname{sum}(\mathbf{v}) = \mathbf{1}^\top \mathbf{v}$ is linear in $\mathbf{v}$", subs=() if v == D.xvar else (sub,))


def rule_norm(e: Expr, D: Differentiator) -> Step | None:
    """∂‖v‖/∂x = vᵀ/‖v‖ ∂v/∂x — Matrix Cookbook (129), transposed."""
    if e.op != "norm":
        return None
    v = e.args[0]
    sub = D.d(v)
    if D.kind == "scalar":
        res = ex.div(ex.trace(ex.matmul(ex.transpose(v), sub.result)) if 1 not in v.shape else
                     ex.matmul(ex.transpose(col(v)), col(sub.result)), e)
    elif 1 in v.shape:
        res = ex.matmul(ex.div(ex.transpose(col(v)), e), sub.result)
    else:
        return None
    if 1 not in v.shape:
        return D.step("frobenius_norm", e, res, note=r"$\lVert \mathbf{X} \rVert_F = \operatorname{tr}(\mathbf{X}^\top \mathbf{X})^{1/2}$, "
                      r"so $\mathrm{d}\lVert \mathbf{X} \rVert_F = \operatorname{tr}(\mathbf{X}^\top \mathrm{d}\mathbf{X}) / \lVert \mathbf{X} \rVert_F$",
                      subs=() if v == D.xvar else (sub,))
    return D.step("norm", e, res, cites="Matrix Cookbook (129), transposed", note=r"$\lVert \mathbf{v} \rVert = (\mathbf{v}^\top \mathbf{v})^{1/2}$, so $\frac{\partial \lVert \mathbf{v} \rVert}{\partial \mathbf{v}} = \frac{\mathbf{v}^\top}{\lVert \mathbf{v} \rVert}$",
                  subs=() if v == D.xvar else (sub,))


def rule_trace(e: Expr, D: Differentiator) -> Step | None:
    """tr is linear (MML (5.100)) and cyclic: tr(ABC) = tr(CAB)."""
    if e.op != "trace":
        return None
    m = e.args[0]
    if D.kind == "scalar":
        sub = D.d(m)
        return D.step("trace_scalar", e, ex.trace(sub.result), cites="MML (5.100)",
                      note=r"the trace is linear: $\frac{\partial \operatorname{tr}(\mathbf{M})}{\partial s} = \operatorname{tr}\left(\frac{\partial \mathbf{M}}{\partial s}\right)$", subs=(sub,))
    if m.op == "add":
        sub = D.d(ex.add(*(ex.trace(t) if t.shape != () else t for t in m.args)))
        return D.step("trace_linear", e, sub.result, cites="MML (5.100)",
                      note=r"the trace of a sum is the sum of the traces", subs=(sub,))
    if m.op == "mul":
        sub = D.d(ex.mul(*(ex.trace(f) if f.shape != () else f for f in m.args)))
        return D.step("trace_linear", e, sub.result, note=r"scalar factors move out of the trace", subs=(sub,))
    if m.op == "matmul":
        fs = m.args
        for j, f in enumerate(fs):
            if j > 0 and f.shape != () and f.shape[0] == 1:
                rotated = ex.matmul(*(fs[j:] + fs[:j]))
                sub = D.d(rotated)
                return D.step("trace_cyclic", e, sub.result, cites="Matrix Cookbook (16)",
                              note=r"by the cyclic property, $\operatorname{tr}\left(@0\right) = @1$, a scalar", args=(m, rotated),
                              subs=(sub,))
    return None


def rule_scalar_wrt(e: Expr, D: Differentiator) -> Step | None:
    """Matrix functions with respect to a scalar: inv (MML (5.102)), det (MML (5.101)), diag, kron."""
    if D.kind != "scalar":
        return None
    op = e.op
    if op == "inv":
        a = e.args[0]
        sub = D.d(a)
        res = ex.neg(ex.matmul(e, sub.result, e))
        return D.step("inverse_scalar", e, res, cites="MML (5.102); Matrix Cookbook (59)",
                      note=r"$\frac{\partial \mathbf{A}^{-1}}{\partial s} = -\mathbf{A}^{-1} \frac{\partial \mathbf{A}}{\partial s} \mathbf{A}^{-1}$", subs=(sub,))
    if op == "det":
        a = e.args[0]
        sub = D.d(a)
        res = ex.mul(e, ex.trace(ex.matmul(ex.inv(a), sub.result)))
        return D.step("det_scalar", e, res, cites="MML (5.101); Matrix Cookbook (42)",
                      note=r"$\frac{\partial \det \mathbf{A}}{\partial s} = \det(\mathbf{A}) \operatorname{tr}\left(\mathbf{A}^{-1} \frac{\partial \mathbf{A}}{\partial s}\right)$", subs=(sub,))
    if op in ("diag", "diagpart"):
        sub = D.d(e.args[0])
        res = ex.Expr(op, (sub.result,), e.shape)
        return D.step("diag_scalar", e, res, note=r"$\operatorname{diag}$ is linear", subs=(sub,))
    if op == "kron":
        a, b = e.args
        sa, sb = D.d(a), D.d(b)
        # a constant factor's term is 0 ⊗ B: left out, never printed "0 ⊗ X + A ⊗ dX"
        terms = [t for t, c in ((ex.kron(sa.result, b), D.const(a)), (ex.kron(a, sb.result), D.const(b))) if not c]
        res = ex.add(*terms) if terms else D.zero(e)
        return D.step("kron_scalar", e, res, note=r"the Kronecker product is bilinear",
                      subs=tuple(s for s, c in ((sa, D.const(a)), (sb, D.const(b))) if not c))
    return None


# The Cookbook's numbers for the Kronecker identities (section 10.2) are not in the verified table
# (/work/shared/IDENTITIES.md): these cite Magnus & Neudecker (1999), chapter 2, instead.
KRON_CITE = "Magnus & Neudecker (1999), ch. 2"


def _kron_factors(f: Expr) -> tuple[Expr, Expr] | None:
    """(A, B) with f = A ⊗ B; a transposed product (A ⊗ B)ᵀ = Aᵀ ⊗ Bᵀ."""
    if f.op == "kron":
        return f.args
    if f.op == "T" and f.args[0].op == "kron":
        a, b = f.args[0].args
        return ex.transpose(a), ex.transpose(b)
    return None


def _square(a: Expr) -> bool:
    return a.shape != () and a.shape[0] == a.shape[1]


def rule_kron_trace(e: Expr, D: Differentiator) -> Step | None:
    """tr(A ⊗ B) = tr(A) tr(B) for square A, B — Magnus & Neudecker (1999), ch. 2."""
    if e.op != "trace" or e.args[0].op != "kron":
        return None
    a, b = e.args[0].args
    if not (_square(a) and _square(b)):
        return None
    split = ex.mul(ex.trace(a), ex.trace(b))
    sub = D.d(split)
    return D.step("kron_trace", e, sub.result, cites=KRON_CITE, args=(split,), subs=(sub,),
                  note=r"$\operatorname{tr}(\mathbf{A} \otimes \mathbf{B}) = \operatorname{tr}(\mathbf{A})\,"
                       r"\operatorname{tr}(\mathbf{B})$ for square $\mathbf{A}$, $\mathbf{B}$: the function is $@0$")


def rule_kron_norm(e: Expr, D: Differentiator) -> Step | None:
    """‖A ⊗ B‖_F = ‖A‖_F ‖B‖_F, so ‖A ⊗ B‖_F^p = ‖A‖_F^p ‖B‖_F^p — Magnus & Neudecker (1999), ch. 2
    (tr((A ⊗ B)ᵀ(A ⊗ B)) = tr(AᵀA ⊗ BᵀB) = tr(AᵀA) tr(BᵀB))."""
    inner, p = (e.args[0], e.args[1]) if e.op == "pow" and D.const(e.args[1]) else (e, None)
    if inner.op != "norm" or inner.args[0].op != "kron":
        return None
    a, b = inner.args[0].args
    na, nb = ex.norm(a), ex.norm(b)
    split = ex.mul(na, nb) if p is None else ex.mul(ex.power(na, p), ex.power(nb, p))
    sub = D.d(split)
    return D.step("kron_norm", e, sub.result, cites=KRON_CITE, args=(split,), subs=(sub,),
                  note=r"$\lVert \mathbf{A} \otimes \mathbf{B} \rVert_F = \lVert \mathbf{A} \rVert_F\,"
                       r"\lVert \mathbf{B} \rVert_F$, as $\operatorname{tr}((\mathbf{A} \otimes \mathbf{B})^\top"
                       r"(\mathbf{A} \otimes \mathbf{B})) = \operatorname{tr}(\mathbf{A}^\top\mathbf{A})\,"
                       r"\operatorname{tr}(\mathbf{B}^\top\mathbf{B})$: the function is $@0$")


def kron_mixed_product(e: Expr) -> Expr | None:
    """``e`` with one pair of adjacent Kronecker factors multiplied out, (A ⊗ B)(C ⊗ D) = AC ⊗ BD
    (where the sizes conform), a 1×1 factor written as a scalar (s ⊗ B = sB); None if none."""
    if e.op != "matmul":
        return None
    fs = e.args
    for i in range(len(fs) - 1):
        left, right = _kron_factors(fs[i]), _kron_factors(fs[i + 1])
        if left is None or right is None:
            continue
        (a, b), (c, d) = left, right
        if ex.as_2d(a.shape)[1] != ex.as_2d(c.shape)[0] or ex.as_2d(b.shape)[1] != ex.as_2d(d.shape)[0]:
            continue
        ac, bd = ex.matmul(a, c), ex.matmul(b, d)
        joined = ex.mul(ac, bd) if ac.shape == () or bd.shape == () else ex.kron(ac, bd)
        rest = fs[:i] + (joined,) + fs[i + 2:]
        return ex.matmul(*rest) if len(rest) > 1 else joined
    return None


def rule_kron_trace_of_product(e: Expr, D: Differentiator) -> Step | None:
    """tr((A ⊗ B)(C ⊗ D)) = tr(AC ⊗ BD), by the mixed product — Magnus & Neudecker (1999), ch. 2;
    then tr(P ⊗ Q) = tr(P) tr(Q) (``rule_kron_trace``)."""
    if e.op != "trace":
        return None
    joined = kron_mixed_product(e.args[0])
    if joined is None or joined.shape != e.args[0].shape:
        return None
    sub = D.d(ex.trace(joined))
    return D.step("kron_mixed_product", e, sub.result, cites=KRON_CITE, args=(e.args[0], joined), subs=(sub,),
                  note=r"$(\mathbf{A} \otimes \mathbf{B})(\mathbf{C} \otimes \mathbf{D}) = "
                       r"\mathbf{A}\mathbf{C} \otimes \mathbf{B}\mathbf{D}$: $@0 = @1$")


def rule_kron_mixed_product(e: Expr, D: Differentiator) -> Step | None:
    """(A ⊗ B)ᵀ(C ⊗ D) = AᵀC ⊗ BᵀD, the mixed-product property — Magnus & Neudecker (1999), ch. 2;
    1×1 factors are scalars: (a ⊗ x)ᵀ(a ⊗ x) = (aᵀa)(xᵀx)."""
    joined = kron_mixed_product(e)
    if joined is None or joined.shape != e.shape:
        return None
    sub = D.d(joined)
    return D.step("kron_mixed_product", e, sub.result, cites=KRON_CITE, args=(e, joined), subs=(sub,),
                  note=r"$(\mathbf{A} \otimes \mathbf{B})(\mathbf{C} \otimes \mathbf{D}) = "
                       r"\mathbf{A}\mathbf{C} \otimes \mathbf{B}\mathbf{D}$ and "
                       r"$(\mathbf{A} \otimes \mathbf{B})^\top = \mathbf{A}^\top \otimes \mathbf{B}^\top$ "
                       r"(a $1 \times 1$ factor is a scalar): $@0 = @1$")


def rule_vec(e: Expr, D: Differentiator) -> Step | None:
    """d vec(F) = vec(dF): vec is linear — Magnus & Neudecker (1999), ch. 2.  (By a vector, the
    differential below reads the Jacobian; by a matrix, ``vec_jacobian_step``.)"""
    if e.op != "vec" or D.kind != "scalar":
        return None
    sub = D.d(e.args[0])
    return D.step("vec_linear", e, ex.vec(sub.result), cites=KRON_CITE, subs=(sub,),
                  note=r"$\operatorname{vec}$ stacks the columns, a linear map: "
                       r"$\operatorname{d}\operatorname{vec}(\mathbf{F}) = \operatorname{vec}(\mathrm{d}\mathbf{F})$")


VEC_JACOBIAN_NOTE = (r"the Jacobian with respect to $\operatorname{vec} @1$ (the columns of $@1$ stacked, "
                     r"Magnus & Neudecker): take the differential in the direction $@0$, write it as "
                     r"$\mathbf{J} \operatorname{vec}(@0)$ by $\operatorname{vec}(\mathbf{A}\mathbf{X}\mathbf{B}) = "
                     r"(\mathbf{B}^\top \otimes \mathbf{A}) \operatorname{vec}(\mathbf{X})$, and read off $\mathbf{J}$")
VEC_KRON_NOTE = (r"by $\operatorname{vec}(\mathbf{A}\mathbf{X}\mathbf{B}) = (\mathbf{B}^\top \otimes \mathbf{A})"
                 r" \operatorname{vec}(\mathbf{X})$")
VEC_COMMUTATION_NOTE = (r", and $\operatorname{vec}(\mathbf{X}^\top) = \mathbf{K} \operatorname{vec}(\mathbf{X})$ "
                        r"with the commutation matrix $\mathbf{K}$ (a permutation)")
VEC_ROW_NOTE = (r"a scalar written with $\operatorname{vec} @1$: its derivative as Magnus & Neudecker write it, "
                r"the row $\partial f / \partial (\operatorname{vec} @1)^\top$ (the first identification theorem: "
                r"$\mathrm{d}f = \mathbf{a}^\top \operatorname{vec}(@0)$ gives $\mathbf{a}^\top$); "
                r"take the differential in the direction $@0$, write it as $\mathbf{a}^\top \operatorname{vec}(@0)$ "
                r"by $\operatorname{vec}(\mathbf{A}\mathbf{X}\mathbf{B}) = (\mathbf{B}^\top \otimes \mathbf{A}) "
                r"\operatorname{vec}(\mathbf{X})$ and $s = s^\top$ for a scalar, and read off $\mathbf{a}^\top$")
VEC_COLLECTED_NOTE = r"the form $\mathbf{J} @0$ of the identification, with $\mathbf{J}$ written out"


def vec_dims(of_shape: ex.Shape, wrt_shape: ex.Shape) -> str:
    """(m·n)×(p·q): the dims of a Jacobian of vec F by vec X."""
    return f"{ex.dim_product(*ex.as_2d(of_shape))}×{ex.dim_product(*wrt_shape)}"


def vec_jacobian_step(e: Expr, x: str, xshape: ex.Shape, simp: Simplifier, label: str = "",
                      rule: str = "vec_jacobian") -> Step:
    """∂vec(F)/∂(vec X)ᵀ for an array F of the matrix X: the differential d vec(F) = J vec(dX),
    each term c L dX R written c (Rᵀ ⊗ L) vec(dX) — Magnus & Neudecker (1999), ch. 2 and 9 (the
    first identification theorem).  A term in dXᵀ needs the commutation matrix: refused, saying so."""
    from . import linear
    H = direction_symbol(x, xshape)
    Dd = Differentiator(x, xshape, simp, direction=H)
    target = e if e.shape == () or e.shape[1] == 1 else ex.vec(e)
    sub = Dd.d(target)
    dfx = simp(sub.result)
    J = simp(linear.vec_jacobian(dfx, H.name, xshape))
    steps = [sub]
    terms = [t for t in linear._expand(dfx, H.name) if ex.depends_on(t, H.name)]
    if terms and ex.add(*terms) != dfx:
        expanded = ex.add(*terms)
        note = VEC_KRON_NOTE + (VEC_COMMUTATION_NOTE if ex.has_op(expanded, "commutation") else "")
        steps.append(Dd.step("vec_kron", target, expanded, simplify=False, note=note, label=label,
                             cites=KRON_CITE + (" and 3" if ex.has_op(expanded, "commutation") else "")))
    # one term: the line above is already J vec(dX) (and a differential already in that form)
    if (len(terms) != 1 or len(steps) == 1) and ex.matmul(J, ex.vec(H)) != dfx:
        steps.append(Dd.step("differential_collected", target, ex.matmul(J, ex.vec(H)), simplify=False,
                             note=VEC_COLLECTED_NOTE, args=(ex.vec(H),), label=label))
    # the identification of Jacobians is ch. 9 (the vec and Kronecker identities, ch. 2); Hessians ch. 10
    cites = "Magnus & Neudecker (1999), ch. 9" if rule == "vec_jacobian" else "Magnus & Neudecker (1999), ch. 10"
    return Step(rule=rule, of=target, wrt=x, result=J, dims=vec_dims(target.shape, xshape), cites=cites,
                note=VEC_ROW_NOTE if target.shape == () else VEC_JACOBIAN_NOTE,
                note_args=(H, ex.sym(x, xshape)), substeps=tuple(steps),
                wrt_shape=xshape, label=label)


def rule_apply(e: Expr, D: Differentiator) -> Step | None:
    """∂p(a₁, …, aₙ)/∂x = Σᵢ (∂p/∂aᵢ)(∂aᵢ/∂x): the Jacobians of p stay symbols of the right dims."""
    if e.op != "apply":
        return None
    terms, subs, pds = [], [], []
    for i, a in enumerate(e.args):
        if D.const(a):
            continue
        pd = partial_of_function(e.name, e.args, i, e.shape)
        sub = D.d(a)
        subs.append(sub)
        pds.append(pd)
        if D.direction is not None:
            if a.shape == ():
                terms.append(ex.mul(pd, sub.result))
            elif a.shape[1] == 1:
                terms.append(ex.matmul(pd, sub.result))
            elif e.shape == ():
                terms.append(ex.trace(ex.matmul(ex.transpose(pd), sub.result)))
            else:
                raise UnsupportedError(f"the derivative of {e.name} is a tensor")
        else:
            terms.append(compose(pd, sub.result, a.shape, D.kind))
    dims = ", ".join(f"$@{k}$" for k in range(len(pds)))
    return D.step("abstract_chain", e, ex.add(*terms), subs=tuple(subs), args=tuple(pds),
                  note=r"the chain rule through $" + e.name + r"$, whose Jacobians stay as symbols: " + dims)


def rule_stacking(e: Expr, D: Differentiator) -> Step | None:
    """∂[f₁, …, fₘ]/∂x = [∂f₁/∂x; …; ∂fₘ/∂x]: the Jacobian of a stacked vector, row by row —
    Parr & Howard §4.5.3 (the vector chain rule)."""
    if e.op != "stack" or D.kind == "matrix" or (e.args[0].shape != () and D.kind != "scalar"):
        return None
    subs = [D.d(a) for a in e.args]
    rows = []
    for s in subs:
        r = s.result
        if D.kind == "vector" and r.shape == () and D.xshape[0] != 1:      # a 0 row, written 0ᵀ
            r = ex.zero((1, D.xshape[0]))
        rows.append(r)
    return D.step("stacking", e, ex.stack(rows), cites="Parr & Howard §4.5.3",
                  subs=tuple(s for s in subs if s.rule != "constant"),
                  note=r"row $i$ of the Jacobian of a stacked vector is the derivative of its entry $i$")


def rule_differential(e: Expr, D: Differentiator) -> Step | None:
    """Take the differential d f in the direction dX, then read the derivative off:
    d f = tr(Gᵀ dX) gives ∂f/∂X = G (Matrix Cookbook (16), the cyclic trace); d f = J dx gives J."""
    if D.kind == "scalar":
        return None
    from . import linear
    H = direction_symbol(D.x, D.xshape)
    Dd = Differentiator(D.x, D.xshape, D.simp, direction=H)
    sub = Dd.d(e)
    dfx = D.simp(sub.result)
    if e.shape == ():
        G = D.simp(linear.gradient(dfx, H.name, D.xshape))
        res = G if D.kind == "matrix" else ex.transpose(G)
        subs = (sub,) + identification_steps(e, dfx, G, Dd)
        note = DIFFERENTIAL_NOTE + (r"$\mathrm{d}f = \operatorname{tr}(\mathbf{G}^\top @0)$, "
                                    r"and read off $\frac{\partial f}{\partial @1} = \mathbf{G}$"
                                    if D.kind == "matrix" else
                                    r"$\mathrm{d}f = \mathbf{g}^\top @0$, "
                                    r"and read off $\frac{\partial f}{\partial @1} = \mathbf{g}^\top$")
    elif D.kind == "vector":
        res = linear.jacobian(dfx, H.name, D.xshape[0])
        note = DIFFERENTIAL_NOTE + r"$\mathrm{d}\mathbf{f} = \mathbf{J}\,@0$, and read off the Jacobian $\mathbf{J}$"
        subs = (sub,) + jacobian_collected(e, dfx, D.simp(res), Dd)
    else:
        return None
    return D.step("differential", e, res, cites=identity_citation(e, D.x), note=note, args=(H, D.xvar), subs=subs)


DIFFERENTIAL_NOTE = r"take the differential in the direction $@0$, bring it to the form "


REWRITE_NOTES = {       # the identity; "@0 = @1, " (the term before and after) goes in front when other terms stay
    "trace_cyclic": r"by $\operatorname{tr}(\mathbf{A}\mathbf{B}\mathbf{C}) = \operatorname{tr}(\mathbf{C}\mathbf{A}\mathbf{B})$",
    "scalar_trace": r"$s = \operatorname{tr}(s)$ for a scalar $s$, then $\operatorname{tr}(\mathbf{A}\mathbf{B}\mathbf{C}) = \operatorname{tr}(\mathbf{C}\mathbf{A}\mathbf{B})$",
    "trace_transpose": r"by $\operatorname{tr}(\mathbf{A}^\top) = \operatorname{tr}(\mathbf{A})$",
    "scalar_transpose": r"$s = s^\top$ for a scalar $s$",
    "scalar_commutes": r"$\mathbf{A}\,s = s\,\mathbf{A}$ for a scalar $s$",
    "hadamard_sum": r"by $\mathbf{1}^\top (\mathbf{A} \odot \mathbf{B}) \mathbf{1} = \sum_{ij} A_{ij} B_{ij} = \operatorname{tr}(\mathbf{B}^\top \mathbf{A})$",
}
REWRITE_CITES = {"trace_cyclic": "Matrix Cookbook (16)", "scalar_trace": "Matrix Cookbook (16)"}
COLLECTED_NOTES = {
    "matrix": r"the form $\mathrm{d}f = \operatorname{tr}(\mathbf{G}^\top @0)$ of the identification, with $\mathbf{G}$ written out",
    "vector": r"the form $\mathrm{d}f = \mathbf{g}^\top @0$ of the identification, with $\mathbf{g}$ written out",
    "jacobian": r"the form $\mathrm{d}\mathbf{f} = \mathbf{J}\,@0$ of the identification, with $\mathbf{J}$ written out",
}


def _expansion_note(before: Expr, after: Expr) -> str:
    """What expanding a differential into terms linear in the direction used."""
    gone = [op for op in ("sum", "had") if ex.has_op(before, op) and not ex.has_op(after, op)]
    used = {("sum", "had"): r"$\operatorname{sum}(\mathbf{u} \odot \mathbf{v}) = \mathbf{u}^\top \mathbf{v}$",
            ("sum",): r"$\operatorname{sum}(\mathbf{v}) = \mathbf{1}^\top \mathbf{v}$",
            ("had",): r"$\mathbf{u} \odot \mathbf{v} = \operatorname{diag}(\mathbf{u})\,\mathbf{v}$"}.get(tuple(gone))
    linear = r"a sum of terms each linear in $@2$" if after.op == "add" else r"linear in $@2$"
    return linear + (", by " + used if used else "")


def rewrite_steps(e: Expr, dfx: Expr, form: Expr, Dd: Differentiator, label: str = "") -> tuple[Step, ...]:
    """The differential ``dfx`` of ``e`` brought to ``form`` (tr(Gᵀ dX), gᵀ dx or J dx, with G, g
    or J written out), one identity per step.  Each step is the whole differential in the same
    direction (so each is checked, and shown as d``label`` = …); its note says which term
    changed and by which identity."""
    from . import linear
    H = Dd.direction
    row = e.shape != () and e.shape[1] != 1       # a row vector: its column's differential, transposed
    out = []
    for rule, before, after, whole in linear.identification_moves(ex.transpose(dfx) if row else dfx,
                                                                  H.name, H.shape, Dd.simp):
        if rule == "differential_terms":
            note = _expansion_note(before, after)
        else:
            note = ("$@0 = @1$, " if whole != after else "") + REWRITE_NOTES[rule]
        out.append(Dd.step(rule, e, ex.transpose(whole) if row else whole, simplify=False, label=label,
                           cites=REWRITE_CITES.get(rule, ""), note=note, args=(before, after, H)))
    kind = "jacobian" if e.shape != () else ("vector" if H.shape[1] == 1 else "matrix")
    out.append(Dd.step("differential_collected", e, form, simplify=False, label=label,
                       note=COLLECTED_NOTES[kind], args=(H,)))
    return tuple(out)


def identification_steps(e: Expr, dfx: Expr, G: Expr, Dd: Differentiator, label: str = "") -> tuple[Step, ...]:
    """The differential ``dfx`` of the scalar ``e`` brought to tr(Gᵀ dX) (gᵀ dx for a vector)."""
    gt_h = ex.matmul(G if G.op in ("eye", "diag") else ex.transpose(G), Dd.direction)     # Iᵀ = I
    return rewrite_steps(e, dfx, gt_h if Dd.direction.shape[1] == 1 else ex.trace(gt_h), Dd, label)


def jacobian_collected(e: Expr, dfx: Expr, J: Expr, Dd: Differentiator, label: str = "") -> tuple[Step, ...]:
    """The differential ``dfx`` of the vector ``e`` brought to J dx."""
    jdx = ex.matmul(J, Dd.direction)
    return rewrite_steps(e, dfx, jdx if e.shape[1] == 1 else ex.transpose(jdx), Dd, label)


def identity_citation(e: Expr, x: str) -> str:
    """The book's number for the identity that ``e`` is an instance of, if any."""

    def is_x(a: Expr) -> bool:
        return a.op == "sym" and a.name == x

    def const(a: Expr) -> bool:
        return not ex.depends_on(a, x)

    if e.op == "trace":
        m = e.args[0]
        if is_x(m):
            return "Matrix Cookbook (99)"
        if m.op == "matmul":
            fs = m.args
            xs = [i for i, f in enumerate(fs) if not const(f)]
            if len(fs) == 2 and is_x(fs[0]) and const(fs[1]):
                return "Matrix Cookbook (100)"
            if len(fs) == 3 and xs == [1] and is_x(fs[1]):
                return "Matrix Cookbook (101)"
            if len(fs) == 2 and fs[0].op == "T" and is_x(fs[0].args[0]) and is_x(fs[1]):
                return "Matrix Cookbook (115)"
            if len(fs) == 3 and fs[0].op == "T" and is_x(fs[0].args[0]) and const(fs[1]) and is_x(fs[2]):
                return "Matrix Cookbook (108)"
            if len(fs) == 2 and is_x(fs[0]) and is_x(fs[1]):
                return "Matrix Cookbook (106)"
            if len(fs) == 3 and fs[1].op == "inv" and is_x(fs[1].args[0]) and const(fs[0]) and const(fs[2]):
                return "Matrix Cookbook (63)"
    if e.op == "det" and is_x(e.args[0]):
        return "MML (5.101); Matrix Cookbook (49)"
    if e.op == "fn" and e.name == "log" and e.args[0].op == "det" and is_x(e.args[0].args[0]):
        return "Matrix Cookbook (57)"
    if e.op == "matmul" and len(e.args) == 3 and const(e.args[0]) and const(e.args[2]):
        mid = e.args[1]
        if is_x(mid):
            return "MML (5.106); Matrix Cookbook (70)" if e.args[0] != ex.transpose(e.args[2]) else "Matrix Cookbook (72)"
        if mid.op == "T" and is_x(mid.args[0]):
            return "Matrix Cookbook (71)"
        if mid.op == "inv" and is_x(mid.args[0]):
            return "MML (5.103); Matrix Cookbook (61)"
    if e.op == "pow" and e.args[0].op == "norm" and is_x(e.args[0].args[0]) and e.args[1] == ex.num(2):
        return "Matrix Cookbook (132)"
    return ""


RULES: tuple[Callable[[Expr, Differentiator], Step | None], ...] = (
    rule_constant,
    rule_identity,
    rule_transpose,
    rule_sum,
    rule_mul,
    rule_kron_trace,
    rule_kron_trace_of_product,
    rule_kron_norm,
    rule_kron_mixed_product,
    rule_factor_out_of_product,
    rule_matmul,
    rule_log_det,
    rule_fn,
    rule_max,
    rule_vector_fn,
    rule_norm_squared,
    rule_power,
    rule_div,
    rule_hadamard,
    rule_sum_entries,
    rule_norm,
    rule_trace,
    rule_scalar_wrt,
    rule_apply,
    rule_stacking,
    rule_vec,
    rule_differential,
)
