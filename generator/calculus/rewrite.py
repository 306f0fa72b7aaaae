"""Named rewrites from the simplified product to the textbook's form, each one a ``Step``.

``Simplifier`` canonicalises silently (``A I = A``, ``x + x = 2x``); what a
textbook does on the page — factor a common right factor, σ' = σ(1 − σ),
det(X³) = det(X)³, Mᵀ = M for a symmetric M — is a rule here.  A rule is a
small function ``rule(node, ctx) -> Expr | None`` whose docstring is its
identity; it rewrites one subexpression (every occurrence of it at once).
``textbook_form`` tries the rules in order at every subexpression, outermost
first, keeps the first application that makes the whole expression cheaper by
``cost`` (tokens of the expression language) once simplified, records it as a
``Step`` (rule id, before, after, citation, a note) and starts again, until
no rule shortens the expression.  The verifier checks every recorded step
numerically (before and after must be equal at the random points).

To add a rewrite: write ``rule_x`` with its identity as docstring, put it in
``RULES`` and give it a title in ``TITLES``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .. import expr as ex
from ..expr import Expr
from ..trace import Step
from .simplify import Simplifier
from .tidy import entrywise_forms

TITLES = {
    "transpose_of_sum": "Transpose of a sum",
    "common_right_factor": "Common right factor",
    "common_left_factor": "Common left factor",
    "sign_into_sum": "Sign into a difference",
    "entrywise_algebra": "Entrywise algebra",
    "sigmoid_form": "The logistic sigmoid",
    "tanh_form": "The hyperbolic tangent",
    "symmetric_transpose": "Transpose of a symmetric matrix",
    "symmetric_inverse": "Inverse of a symmetric matrix",
    "name_kept": "A name kept",
    "det_of_product": "Determinant of a product",
    "inverse_of_product": "Inverse of a product",
    "scalar_out_of_diag": "Scalar factor out of diag",
    "trace_split": "Linearity of the trace",
    "trace_to_scalar": "Trace of a product with a vector",
    "scalar_into_kept": "A scalar into the factors",
    "reciprocal_cancels": "Reciprocal against its own entries",
    "sum_of_entries": "A vector against the ones",
    "kron_transpose": "Transpose of a Kronecker product",
    "commutation_swap": "The commutation matrix swaps the factors",
    "one_hot_sum": "A one-hot vector sums to 1",
    "scalar_arithmetic": "Scalar arithmetic",
    "indicator_idempotent": "The step function is 0 or 1",
    "distribute_vector": "A vector into a sum",
    "sign_times_value": "The sign times the value",
}

MAX_ROUNDS = 12
MAX_NODES = 400           # larger results are left as the simplifier wrote them

_TOKEN = re.compile(r"[A-Za-z_][A-Za-z_0-9]*|\d+(?:\.\d+)?|\*\*|\S")


def cost(e: Expr) -> int:
    """The length of ``e`` in tokens of the expression language (names, numbers, operators,
    brackets); a transpose ``.T`` counts three, so (A + B)ᵀ is shorter than Aᵀ + Bᵀ."""
    tokens = _TOKEN.findall(ex.to_text(e))
    return len(tokens) + tokens.count("T")


@dataclass
class _Context:
    simp: Simplifier
    assumptions: dict
    as_written: frozenset = frozenset()       # the values of the define names: their signs stay
    note: str = ""                      # set by a rule that has something to say (why M is symmetric)
    note_args: tuple = ()


# --- the rules ------------------------------------------------------------------------


def rule_transpose_of_sum(e: Expr, c: _Context) -> Expr | None:
    """Aᵀ + Bᵀ = (A + B)ᵀ"""
    if e.op != "add" or e.shape == () or not all(ex.has_op(t, "T") for t in e.args):
        return None
    return ex.transpose(_positive_first([c.simp._transpose(t) for t in e.args]))


def _positive_first(terms) -> Expr:
    """A − B rather than −B + A."""
    return ex.add(*sorted(terms, key=lambda t: _coeff(t)[0] < 0))


def rule_common_right_factor(e: Expr, c: _Context) -> Expr | None:
    """A C + B C = (A + B) C"""
    return _factor_out(e, c, right=True)


def rule_common_left_factor(e: Expr, c: _Context) -> Expr | None:
    """C A + C B = C (A + B)"""
    return _factor_out(e, c, right=False)


def _factor_out(e: Expr, c: _Context, right: bool) -> Expr | None:
    if e.op != "add" or e.shape == ():
        return None
    groups: dict[Expr, list[Expr]] = {}
    order: list[Expr] = []
    for t in e.args:
        k, m = _coeff(t)
        if m.op != "matmul":
            continue
        f = m.args[-1] if right else m.args[0]
        rest = m.args[:-1] if right else m.args[1:]
        rest_e = ex.matmul(*rest) if len(rest) > 1 else rest[0]
        if f not in groups:
            groups[f] = []
            order.append(f)
        groups[f].append(ex.mul(ex.num(k), rest_e) if k != 1 else rest_e)
    for f in order:
        if len(groups[f]) < 2:
            continue
        inner = ex.add(*groups[f])
        factored = ex.matmul(inner, f) if right else ex.matmul(f, inner)
        others = [t for t in e.args if not _ends_with(t, f, right)]
        return ex.add(factored, *others) if others else factored
    return None


def _ends_with(t: Expr, f: Expr, right: bool) -> bool:
    m = _coeff(t)[1]
    return m.op == "matmul" and (m.args[-1] if right else m.args[0]) == f


def rule_sign_into_sum(e: Expr, c: _Context) -> Expr | None:
    """−(A − B) C = (B − A) C"""
    k, m = _coeff(e)
    if k >= 0 or e.op != "mul":
        return None
    flipped = _negate_a_sum(m, c.as_written)
    if flipped is None:
        return None
    return flipped if k == -1 else ex.mul(ex.num(-k), flipped)


def _negate_a_sum(m: Expr, as_written=frozenset()) -> Expr | None:
    """m with one sum in a linear position (a factor of a product, under a transpose) negated;
    never a difference the problem named (y = x − μ stays x − μ)."""
    if m.op == "add" and m in as_written:
        return None
    if m.op == "add":
        return _positive_first([_coeff(t)[1] if _coeff(t)[0] == -1 else ex.neg(t) for t in m.args])
    if m.op == "T":
        inner = _negate_a_sum(m.args[0], as_written)
        return None if inner is None else ex.transpose(inner)
    if m.op == "matmul":
        bases = [f.args[0] if f.op == "T" else f for f in m.args]
        for i, f in enumerate(m.args):
            if bases.count(bases[i]) > 1:
                continue        # (x − μ)ᵀ S (x − μ): a quadratic form keeps its two equal factors
            inner = _negate_a_sum(f, as_written) if f.op in ("add", "T") else None
            if inner is not None:
                return ex.matmul(*m.args[:i], inner, *m.args[i + 1:])
    return None


_ENTRYWISE_OPS = ("add", "had", "div", "pow", "mul")


def rule_entrywise_algebra(e: Expr, c: _Context):
    """(a ⊙ b + a ⊙ c) = a ⊙ (b + c), x^{−2} ⊙ 2x = 2 x^{−1}: scalar algebra entry by entry"""
    if e.shape == () or e.op not in _ENTRYWISE_OPS or _algebra_size(e) < 2:
        return None      # (a sum or a product of two atoms has nothing to cancel)
    return _forms(e, c.assumptions, False)


def _entrywise_work(e: Expr) -> bool:
    """Whether ``e`` has entrywise work in it: a ⊙, or an array divided, raised to a power or under an
    elementwise function (not only numbers and scalar factors of arrays)."""
    return any(n.op == "had" or (n.op in ("div", "pow", "fn") and n.shape != ()) for n in ex.nodes(e))


def _algebra_size(e: Expr) -> int:
    """Nodes of the entrywise algebra in e (its atoms not counted)."""
    if e.op not in _ENTRYWISE_OPS + ("fn",) or (e.shape != () and e.op == "mul" and len(e.args) == 1):
        return 0
    return 1 + sum(_algebra_size(a) for a in e.args)


def rule_sigmoid_form(e: Expr, c: _Context):
    """σ(u) = 1/(1 + e^{−u}), so e^{u}/(1 + e^{u})² = σ(u)(1 − σ(u))"""
    return _special(e, c, "sigmoid")


def rule_tanh_form(e: Expr, c: _Context):
    """tanh(u) = (e^{2u} − 1)/(e^{2u} + 1)"""
    return _special(e, c, "tanh")


def _special(e: Expr, c: _Context, name: str):
    if e.op not in _ENTRYWISE_OPS or not _mentions(e, "exp"):
        return None
    return [f for f in _forms(e, c.assumptions, True) if _mentions(f, name)]


_FORMS_CACHE: dict = {}


def _forms(e: Expr, assumptions: dict, special: bool) -> list[Expr]:
    """``entrywise_forms``, remembered: the driver asks again for the same nodes every round."""
    key = (e, special, tuple(sorted(assumptions.items())))
    if key not in _FORMS_CACHE:
        if len(_FORMS_CACHE) > 4096:
            _FORMS_CACHE.clear()
        _FORMS_CACHE[key] = entrywise_forms(e, assumptions, special)
    return _FORMS_CACHE[key]


def _mentions(e: Expr, name: str) -> bool:
    return (e.op == "fn" and e.name == name) or any(_mentions(a, name) for a in e.args)


def rule_symmetric_transpose(e: Expr, c: _Context) -> Expr | None:
    """Mᵀ = M for a symmetric M"""
    if e.op != "T" or e.args[0].op == "sym" or not c.simp.symmetric(e.args[0]):
        return None
    m = e.args[0]
    args = [m]
    c.note = "$@0$ is symmetric: " + _why_symmetric(m, c.simp, args)
    c.note_args = tuple(args)
    return m


def symmetric_inverse(m: Expr, simp: Simplifier) -> Step:
    """The fact M⁻ᵀ = M⁻¹ for an M symmetric by construction, with the reason, as a checkable step."""
    args = [m]
    note = "$@0$ is symmetric: " + _why_symmetric(m, simp, args)
    return Step(rule="symmetric_inverse", of=ex.transpose(ex.inv(m)), wrt="", result=ex.inv(m),
                dims=ex.shape_str(m.shape), note=note, note_args=tuple(args))


def name_kept(before: Expr, after: Expr, names) -> Step:
    """``before`` written with the names of ``keep:`` (pairs (name, its definition))."""
    text, args = _where(names)
    return Step(rule="name_kept", of=before, wrt="", result=after, dims=ex.shape_str(after.shape),
                note="with " + text, note_args=args)


def _where(names) -> tuple[str, tuple]:
    """"$@0 = @1$, $@2 = @3$" for pairs (name, definition), and the expressions @i stand for."""
    args: list[Expr] = []
    parts = []
    for n, d in names:
        parts.append(f"$@{len(args)} = @{len(args) + 1}$")
        args += [n, d]
    return ", ".join(parts), tuple(args)


def _why_symmetric(m: Expr, simp: Simplifier, args: list) -> str:
    """Why m is symmetric, from its construction; the expressions named go to ``args`` (@i)."""
    if m.op == "inv":
        args.append(m.args[0])
        return f"the inverse of $@{len(args) - 1}$, which is symmetric: " + _why_symmetric(m.args[0], simp, args)
    if m.op == "add" and all(simp.symmetric(t) for t in m.args):
        return "a sum of symmetric matrices"
    if m.op == "add":
        return "a sum of symmetric matrices and pairs $\\mathbf{A} + \\mathbf{A}^\\top$"
    if m.op == "mul":
        return "a multiple of a symmetric matrix"
    if m.op == "matmul":
        return "a product of the form $\\mathbf{A}\\mathbf{A}^\\top$ or $\\mathbf{A}\\mathbf{S}\\mathbf{A}^\\top$ with $\\mathbf{S}$ symmetric"
    return "by construction"


def rule_det_of_product(e: Expr, c: _Context) -> Expr | None:
    """det(AB) = det(A) det(B) for square A, B"""
    if e.op != "det" or e.args[0].op != "matmul" or not _all_square(e.args[0].args):
        return None
    return ex.mul(*(ex.det(f) for f in e.args[0].args))


def rule_inverse_of_product(e: Expr, c: _Context) -> Expr | None:
    """(AB)⁻¹ = B⁻¹A⁻¹ for square A, B (AB invertible makes each invertible)"""
    if e.op != "inv" or e.args[0].op != "matmul" or not _all_square(e.args[0].args):
        return None
    return ex.matmul(*(ex.inv(f) for f in reversed(e.args[0].args)))


def rule_scalar_out_of_diag(e: Expr, c: _Context) -> Expr | None:
    """diag(c v) = c diag(v)"""
    if e.op != "diag" or e.args[0].op != "mul":
        return None
    scal = [f for f in e.args[0].args if f.shape == ()]
    arr = [f for f in e.args[0].args if f.shape != ()]
    return ex.mul(*scal, ex.diag(arr[0])) if scal and len(arr) == 1 else None


def rule_trace_split(e: Expr, c: _Context) -> Expr | None:
    """tr(c A + B) = c tr(A) + tr(B), tr(Aᵀ) = tr(A)"""
    if e.op != "trace":
        return None
    a = e.args[0]
    if a.op == "T":
        return ex.trace(a.args[0])
    if a.op == "add":
        return ex.add(*(_trace_of_term(t) for t in a.args))
    if a.op == "mul":
        return _trace_of_term(a)
    return None


def _trace_of_term(t: Expr) -> Expr:
    if t.shape == ():
        return t      # a scalar in a sum of matrices stands for t I: never produced by the engine
    if t.op == "mul":
        scal = [f for f in t.args if f.shape == ()]
        return ex.mul(*scal, _trace_of_term(*(f for f in t.args if f.shape != ())))
    return rule_trace_to_scalar(ex.trace(t), None) or ex.trace(t)


def rule_trace_to_scalar(e: Expr, c: _Context) -> Expr | None:
    """tr(A u vᵀ B) = vᵀ B A u: the trace of a product with a vector in it is a number"""
    if e.op != "trace" or e.args[0].op != "matmul":
        return None
    fs = e.args[0].args
    for i, f in enumerate(fs):
        if f.shape[0] == 1 and i > 0:
            return ex.matmul(*fs[i:], *fs[:i])
    return None


def rule_sum_of_entries(e: Expr, c: _Context) -> Expr | None:
    """vᵀ 1 = 1ᵀ v = sum(v)"""
    if e.op != "matmul" or len(e.args) != 2:
        return None
    a, b = e.args
    if b.op == "ones" and a.op == "T" and a.args[0].shape[1] == 1:
        return ex.vsum(a.args[0])
    if a.op == "T" and a.args[0].op == "ones" and b.shape[1] == 1:
        return ex.vsum(b)
    return None


def _is_step(e: Expr) -> bool:
    return e.op == "fn" and e.name == "step"


def _absorbs(f: Expr, s: Expr) -> bool:
    """Whether f ⊙ 𝟙[u > 0] = f for the step s = 𝟙[u > 0]: f is s itself or ReLU(u)."""
    return f == s or (f.op == "fn" and f.name == "relu" and f.args[0] == s.args[0])


def rule_indicator_idempotent(e: Expr, c: _Context) -> Expr | None:
    """𝟙[u > 0]ᵏ = 𝟙[u > 0] and ReLU(u) ⊙ 𝟙[u > 0] = ReLU(u): the step function is 0 or 1, and 1
    where ReLU(u) is not 0"""
    if e.op == "pow" and _is_step(e.args[0]) and e.args[1].op == "num" and e.args[1].value.denominator == 1 \
            and e.args[1].value >= 1:
        return e.args[0]
    if e.op == "had":
        a, b = e.args
        return a if _is_step(b) and _absorbs(a, b) else b if _is_step(a) and _absorbs(b, a) else None
    if e.op == "mul":
        for i, s in enumerate(e.args):
            if _is_step(s) and any(_absorbs(f, s) for j, f in enumerate(e.args) if j != i):
                return ex.mul(*(e.args[:i] + e.args[i + 1:]))
    return None


def _power_of(f: Expr) -> tuple:
    """A factor as (base, numeric power): sign(u)² as (sign(u), 2), u as (u, 1)."""
    return (f.args[0], f.args[1].value) if f.op == "pow" and f.args[1].op == "num" else (f, 1)


def rule_sign_times_value(e: Expr, c: _Context) -> Expr | None:
    """sign(u)ᵏ uᵏ = |u|ᵏ for a scalar u, so sign(u) u / |u| = 1 (away from the kink u = 0)"""
    if e.op != "mul":
        return None
    fs = list(e.args)
    for i, f in enumerate(fs):
        s, k = _power_of(f)
        if not (s.op == "fn" and s.name == "sign" and s.shape == ()):
            continue
        for j, g in enumerate(fs):
            if j != i and _power_of(g) == (s.args[0], k):
                a = ex.fn("abs", s.args[0])
                fs[i] = a if k == 1 else ex.power(a, ex.num(k))
                del fs[j]
                return fs[0] if len(fs) == 1 else ex.mul(*fs)
    return None


def rule_one_hot_sum(e: Expr, c: _Context) -> Expr | None:
    """sum(y) = 1ᵀy = 1 for a one-hot y (declared ``assume: [one_hot]``)"""
    if e.op != "sum" or e.args[0].op != "sym" or "one_hot" not in c.assumptions.get(e.args[0].name, ()):
        return None
    c.note = r"$@0$ is one-hot, so $\mathbf{1}^\top @0 = \operatorname{sum}(@0) = 1$"
    c.note_args = (e.args[0],)
    return ex.ONE


def rule_distribute_vector(e: Expr, c: _Context) -> Expr | None:
    """vᵀ(A + B) = vᵀA + vᵀB, each term collected: vᵀ(1pᵀ − I) = (vᵀ1)pᵀ − vᵀ = sum(v)pᵀ − vᵀ
    (and (A + B)ᵀv the same way from the right)"""
    if e.op != "matmul":
        return None
    fs = e.args
    for i, f in enumerate(fs):
        inner = f.args[0] if f.op == "T" else f
        if inner.op != "add" or inner.shape == ():
            continue
        terms = [c.simp(ex.transpose(t)) if f.op == "T" else t for t in inner.args]
        if i > 0 and fs[i - 1].shape != () and fs[i - 1].shape[0] == 1:
            v, lo = fs[i - 1], i - 1
            done = [_entries_summed(c.simp(ex.matmul(v, t))) for t in terms]
        elif i + 1 < len(fs) and fs[i + 1].shape != () and fs[i + 1].shape[1] == 1:
            v, lo = fs[i + 1], i
            done = [_entries_summed(c.simp(ex.matmul(t, v))) for t in terms]
        else:
            continue
        if not any(ex.has_op(t, "sum") for t in done):
            continue            # only where a sum of entries comes out: else the brackets stay
        rest = fs[:lo] + (_positive_first(done),) + fs[lo + 2:]
        return rest[0] if len(rest) == 1 else ex.matmul(*rest)
    return None


def _entries_summed(e: Expr) -> Expr:
    """A product with vᵀ1 or 1ᵀv in it written with sum(v): p 1ᵀ y = sum(y) p."""
    k, m = _coeff(e)
    if m.op != "matmul":
        return e
    fs, scal = list(m.args), []
    i = 0
    while i + 1 < len(fs):
        a, b = fs[i], fs[i + 1]
        if a.op == "T" and a.args[0].op == "ones" and b.shape != () and b.shape[1] == 1:
            scal.append(ex.vsum(b))
        elif b.op == "ones" and a.op == "T" and a.args[0].shape != () and a.args[0].shape[1] == 1:
            scal.append(ex.vsum(a.args[0]))
        else:
            i += 1
            continue
        del fs[i:i + 2]
    if not scal:
        return e
    rest = [ex.matmul(*fs)] if len(fs) > 1 else fs
    return ex.mul(*([ex.num(k)] if k != 1 else []), *scal, *rest)


def rule_reciprocal_cancels(e: Expr, c: _Context) -> Expr | None:
    """(a ⊙ (1 ⊘ p))ᵀ diag(p) = aᵀ and (a ⊙ (1 ⊘ p))ᵀ p = sum(a), over a sum of such terms
    (and the transposes: diag(p) (a ⊙ (1 ⊘ p)) = a, pᵀ (a ⊙ (1 ⊘ p)) = sum(a))"""
    if e.op != "matmul":
        return None
    fs = e.args
    for i, f in enumerate(fs):
        row = f.op == "T"
        split = _over(f.args[0] if row else f)
        j = i + 1 if row else i - 1          # the factor it meets
        if split is None or not 0 <= j < len(fs):
            continue
        a, p = split
        terms = fs[j].args if fs[j].op == "add" else (fs[j],)
        if row:
            done = [_cancel(a, p, t) for t in terms]
        else:       # the transposed identity, read from the right
            done = [_cancel(a, p, c.simp(ex.transpose(t))) for t in terms]
            done = [None if t is None else c.simp(ex.transpose(t)) for t in done]
        if any(t is None for t in done):
            continue
        lo, hi = min(i, j), max(i, j)
        return ex.matmul(*fs[:lo], ex.add(*done), *fs[hi + 1:])
    return None


def _over(f: Expr):
    """(a, p) for f = a ⊙ p^{−1}, a column vector."""
    if f.op != "had" or f.shape[1] != 1:
        return None
    hs = f.args
    for j, h in enumerate(hs):
        if h.op == "pow" and h.args[1].op == "num" and h.args[1].value == -1:
            others = hs[:j] + hs[j + 1:]
            return (others[0] if len(others) == 1 else ex.Expr("had", others, f.shape)), h.args[0]
    return None


def _cancel(a: Expr, p: Expr, t: Expr) -> Expr | None:
    """(a ⊙ p^{−1})ᵀ t for a term t = k diag(p) R or k p R."""
    k, m = _coeff(t)
    fs = m.args if m.op == "matmul" else (m,)
    rest = fs[1:]
    if fs[0] == ex.diag(p):
        out = ex.matmul(ex.transpose(a), *rest)
    elif fs[0] == p:
        out = ex.mul(ex.vsum(a), ex.matmul(*rest)) if rest else ex.vsum(a)
    else:
        return None
    return ex.mul(ex.num(k), out) if k != 1 else out


def scalar_into_kept(e: Expr, kept_forms, simp: Simplifier) -> tuple[Expr, Step | None]:
    """``e`` with c diag(v) = diag(c v) and c² v vᵀ = (c v)(c v)ᵀ where c v is the value of a
    kept name, so the name can be written in (∂p/∂z = diag(p) − p pᵀ for p = softmax(z))."""
    pairs = [(v.args[0], v.args[1], n) for v, n, _ in kept_forms
             if n.op == "sym" and v.op == "mul" and len(v.args) == 2 and v.args[0].shape == ()]
    if not pairs:
        return e, None

    def go(n: Expr) -> Expr:
        if n.args:
            n = ex.rebuild(n, tuple(go(a) for a in n.args))
        if n.shape == () or n.op not in ("div", "mul"):
            return n
        if n.op == "div":
            if n.args[1].shape != ():
                return n
            scal, arr = [ex.power(n.args[1], ex.num(-1))], n.args[0]
        else:
            arrs = [f for f in n.args if f.shape != ()]
            scal, arr = [f for f in n.args if f.shape == () and f.op != "num"], arrs[0]
        nums = [f for f in n.args if f.op == "num"] if n.op == "mul" else []
        for k, v, name in pairs:
            fs = arr.args if arr.op == "matmul" else (arr,)
            if arr == ex.diag(v) and simp(ex.mul(*scal)) == simp(k):
                return ex.mul(*nums, ex.diag(name))
            outer = len(fs) > 1 and all(f in (v, ex.transpose(v)) for f in fs)
            if outer and simp(ex.mul(*scal)) == simp(ex.power(k, ex.num(len(fs)))):
                return ex.mul(*nums, ex.matmul(*(name if f == v else ex.transpose(name) for f in fs)))
        return n

    out = simp(go(e))
    if out.op == "add":
        out = _positive_first(out.args)         # diag(p) − p pᵀ, not −p pᵀ + diag(p)
    if out == e:
        return e, None
    text, args = _where((n, d) for _, n, d in kept_forms if n.op == "sym" and _occurrences(out, n))
    return out, Step(rule="scalar_into_kept", of=e, wrt="", result=out, dims=ex.shape_str(out.shape),
                     note=IDENTITIES["scalar_into_kept"] + " with " + text, note_args=args)


def _occurrences(e: Expr, f: Expr) -> int:
    return 1 if e == f else sum(_occurrences(a, f) for a in e.args)


def _all_square(fs) -> bool:
    return all(f.shape != () and f.shape[0] == f.shape[1] for f in fs)


def _coeff(t: Expr) -> tuple:
    """(c, rest) with t = c · rest for a number c."""
    if t.op == "mul" and t.args[0].op == "num":
        rest = t.args[1:]
        return t.args[0].value, rest[0] if len(rest) == 1 else ex.mul(*rest)
    return 1, t


# the identity of each rule as the document shows it (Markdown with $...$ math)
IDENTITIES = {
    "transpose_of_sum": r"$\mathbf{A}^\top + \mathbf{B}^\top = (\mathbf{A} + \mathbf{B})^\top$",
    "common_right_factor": r"$\mathbf{A}\mathbf{C} + \mathbf{B}\mathbf{C} = (\mathbf{A} + \mathbf{B})\mathbf{C}$",
    "common_left_factor": r"$\mathbf{C}\mathbf{A} + \mathbf{C}\mathbf{B} = \mathbf{C}(\mathbf{A} + \mathbf{B})$",
    "sign_into_sum": r"$-(\mathbf{A} - \mathbf{B})\mathbf{C} = (\mathbf{B} - \mathbf{A})\mathbf{C}$",
    "entrywise_algebra": r"entry by entry, $\odot$ and elementwise functions are scalar algebra",
    "sigmoid_form": r"$\sigma(u) = \frac{1}{1 + e^{-u}}$, so $e^{u} = \frac{\sigma(u)}{1 - \sigma(u)}$",
    "tanh_form": r"$\tanh(u) = \frac{e^{2u} - 1}{e^{2u} + 1}$",
    "symmetric_transpose": r"$\mathbf{M}^\top = \mathbf{M}$ for a symmetric $\mathbf{M}$",
    "symmetric_inverse": r"$\mathbf{M}^{-\top} = \mathbf{M}^{-1}$ for a symmetric $\mathbf{M}$",
    "det_of_product": r"$\det(\mathbf{A}\mathbf{B}) = \det(\mathbf{A})\det(\mathbf{B})$ for square $\mathbf{A}, \mathbf{B}$",
    "inverse_of_product": r"$(\mathbf{A}\mathbf{B})^{-1} = \mathbf{B}^{-1}\mathbf{A}^{-1}$ for square $\mathbf{A}, \mathbf{B}$",
    "scalar_out_of_diag": r"$\operatorname{diag}(c\,\mathbf{v}) = c \operatorname{diag}(\mathbf{v})$",
    "trace_split": r"$\operatorname{tr}(c\mathbf{A} + \mathbf{B}) = c\operatorname{tr}(\mathbf{A}) + \operatorname{tr}(\mathbf{B})$, $\operatorname{tr}(\mathbf{A}^\top) = \operatorname{tr}(\mathbf{A})$",
    "trace_to_scalar": r"$\operatorname{tr}(\mathbf{A}\mathbf{u}\mathbf{v}^\top\mathbf{B}) = \mathbf{v}^\top\mathbf{B}\mathbf{A}\mathbf{u}$",
    "scalar_into_kept": r"$c \operatorname{diag}(\mathbf{v}) = \operatorname{diag}(c\mathbf{v})$, $c^2 \mathbf{v}\mathbf{v}^\top = (c\mathbf{v})(c\mathbf{v})^\top$,",
    "sum_of_entries": r"$\mathbf{v}^\top\mathbf{1} = \mathbf{1}^\top\mathbf{v} = \operatorname{sum}(\mathbf{v})$",
    "scalar_arithmetic": r"numbers and scalar factors collected, a sign moved: $a\,(b\mathbf{A}) = (ab)\mathbf{A}$, "
                         r"$-(\mathbf{A} - \mathbf{B}) = \mathbf{B} - \mathbf{A}$",
    "indicator_idempotent": r"$\mathbb{1}[u > 0]^2 = \mathbb{1}[u > 0]$ and $\operatorname{ReLU}(u)\,\mathbb{1}[u > 0] = \operatorname{ReLU}(u)$, entry by entry: the step function is 0 or 1, and 1 where $\operatorname{ReLU}(u) \neq 0$",
    "sign_times_value": r"$\operatorname{sign}(u)\,u = |u|$, so $\operatorname{sign}(u)\,u \,/\, |u| = 1$ for $u \neq 0$ (away from the kink)",
    "one_hot_sum": r"a one-hot $\mathbf{y}$ has $\mathbf{1}^\top\mathbf{y} = \operatorname{sum}(\mathbf{y}) = 1$",
    "distribute_vector": r"$\mathbf{v}^\top(\mathbf{A} + \mathbf{B}) = \mathbf{v}^\top\mathbf{A} + \mathbf{v}^\top\mathbf{B}$ and $\mathbf{v}^\top\mathbf{1} = \operatorname{sum}(\mathbf{v})$",
    "reciprocal_cancels": r"$(\mathbf{a} \oslash \mathbf{p})^\top \operatorname{diag}(\mathbf{p}) = \mathbf{a}^\top$, $(\mathbf{a} \oslash \mathbf{p})^\top \mathbf{p} = \operatorname{sum}(\mathbf{a})$",
}

RULES = (rule_symmetric_transpose, rule_det_of_product, rule_inverse_of_product, rule_reciprocal_cancels,
         rule_sum_of_entries, rule_indicator_idempotent, rule_sign_times_value, rule_one_hot_sum, rule_distribute_vector, rule_entrywise_algebra,
         rule_sign_into_sum, rule_common_right_factor, rule_common_left_factor, rule_transpose_of_sum,
         rule_scalar_out_of_diag, rule_trace_split, rule_trace_to_scalar, rule_tanh_form, rule_sigmoid_form)

# rules with no inverse among RULES may apply at the same length or a little longer (no loop):
# a trace becomes a number at the cost of a pair of brackets; a common factor comes out at
# the same length, and a transpose of the sum may follow
_SLACK = {rule_trace_split: 3, rule_trace_to_scalar: 3, rule_common_right_factor: 0,
          rule_common_left_factor: 0}

CITES = {       # The Matrix Cookbook, 2012 numbering
    "det_of_product": "Matrix Cookbook (21)",
    "inverse_of_product": "Matrix Cookbook (1), (2)",
    "transpose_of_sum": "Matrix Cookbook (4)",
    "trace_split": "Matrix Cookbook (13), (15)",
    "trace_to_scalar": "Matrix Cookbook (16)",
    "one_hot_sum": "Bishop, PRML §4.3.4",
}


# --- Kronecker products in the book's form (Magnus & Neudecker (1999), ch. 2 and 3) ------------


def rule_kron_transpose(e: Expr, c: _Context) -> Expr | None:
    """(A ⊗ B)ᵀ = Aᵀ ⊗ Bᵀ"""
    if e.op != "T" or e.args[0].op != "kron":
        return None
    a, b = e.args[0].args
    new = ex.kron(c.simp._transpose(a), c.simp._transpose(b))
    return None if c.simp(new) == c.simp(e) else new


def rule_commutation_swap(e: Expr, c: _Context) -> Expr | None:
    """(A ⊗ B) K_{n,q} = K_{m,p} (B ⊗ A) for A m×n, B p×q"""
    if e.op != "matmul":
        return None
    fs = e.args
    for i in range(len(fs) - 1):
        k, K = fs[i], fs[i + 1]
        if k.op != "kron" or K.op != "commutation":
            continue
        a, b = k.args
        (m, n), (p, q) = ex.as_2d(a.shape), ex.as_2d(b.shape)
        if ex.commutation_dims(K) != (n, q):
            continue
        swapped = (ex.commutation(m, p), ex.kron(b, a))
        return ex.matmul(*(fs[:i] + swapped + fs[i + 2:]))
    return None


KRON_RULES = (rule_kron_transpose, rule_commutation_swap)
KRON_IDENTITIES = {
    "kron_transpose": r"$(\mathbf{P} \otimes \mathbf{Q})^\top = \mathbf{P}^\top \otimes \mathbf{Q}^\top$",
    "commutation_swap": (r"$(\mathbf{P} \otimes \mathbf{Q}) \mathbf{K}_{n,q} = \mathbf{K}_{m,p} (\mathbf{Q} \otimes \mathbf{P})$"
                         r" for $\mathbf{P} \in \mathbb{R}^{m \times n}$, $\mathbf{Q} \in \mathbb{R}^{p \times q}$"),
}
IDENTITIES.update(KRON_IDENTITIES)
RULES += KRON_RULES
# the book's form, not a shorter one: Aᵀ ⊗ Bᵀ costs a few tokens more than (A ⊗ B)ᵀ
_SLACK.update({rule_kron_transpose: 4, rule_commutation_swap: 0})
CITES.update({"kron_transpose": "Magnus & Neudecker (1999), ch. 2", "commutation_swap": "Magnus & Neudecker (1999), ch. 3"})


# --- the driver -----------------------------------------------------------------------


def textbook_form(e: Expr, simp: Simplifier, assumptions: dict,
                  as_written: frozenset = frozenset()) -> tuple[Expr, tuple[Step, ...]]:
    """``e`` rewritten by ``RULES`` while that shortens it; the steps in order.  ``as_written``:
    expressions the problem named (the values of its define names), whose sign is kept."""
    steps: list[Step] = []
    trial = Simplifier(assumptions)        # trial rewrites must not mark assumptions as used
    for _ in range(MAX_ROUNDS):
        if ex.tree_size(e, MAX_NODES) > MAX_NODES:
            break
        found = _first_improvement(e, trial, assumptions, as_written)
        if found is None:
            break
        rule, node, new, ctx = found
        rule(node, _Context(simp, assumptions, as_written))     # again with the real simplifier: it records
        after = simp(_replace(e, node, new))        # the assumptions used, for the document
        name = rule.__name__[5:]
        if rule is rule_entrywise_algebra and not (_entrywise_work(node) or _entrywise_work(new)):
            name = "scalar_arithmetic"      # only numbers, scalars and signs moved: no ⊙ to speak of
        steps.append(Step(rule=name, of=e, wrt="", result=after, dims=ex.shape_str(after.shape),
                          cites=CITES.get(name, ""), note=ctx.note or IDENTITIES[name],
                          note_args=ctx.note_args))
        e = after
    return e, tuple(steps)


def _first_improvement(e: Expr, trial: Simplifier, assumptions: dict, as_written: frozenset):
    base = cost(e)
    nodes = _subtrees(e)
    for rule in RULES:
        for node in nodes:
            ctx = _Context(trial, assumptions, as_written)
            out = rule(node, ctx)
            for new in (out if isinstance(out, list) else [out]):
                if new is None or new == node or new.shape != node.shape:
                    continue
                cand = trial(_replace(e, node, new))
                c = cost(cand)
                # the first improving form: the rules list the preferred first
                if c < base + _SLACK.get(rule, 0) or (c == base and rule in _SLACK):
                    return rule, node, new, ctx
    return None


def _subtrees(e: Expr) -> list[Expr]:
    """Distinct subexpressions, outermost first."""
    out: list[Expr] = []
    seen: set = set()
    stack = [e]
    while stack:
        n = stack.pop(0)
        if n in seen:
            continue
        seen.add(n)
        out.append(n)
        stack.extend(n.args)
    return out


def _replace(e: Expr, old: Expr, new: Expr) -> Expr:
    """Every occurrence of ``old`` in ``e`` replaced by ``new``."""
    memo: dict[int, Expr] = {}

    def go(n: Expr) -> Expr:
        if n == old:
            return new
        if not n.args:
            return n
        key = id(n)
        if key not in memo:
            args = tuple(go(a) for a in n.args)
            memo[key] = n if all(a is b for a, b in zip(args, n.args)) else ex.rebuild(n, args)
        return memo[key]

    return go(e)
