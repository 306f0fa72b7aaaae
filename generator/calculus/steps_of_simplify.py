"""The simplifier's work between the substituted product and the result, as named steps.

``Simplifier`` uses symmetry (assumed, or by construction) and ``tidy`` does
scalar algebra by SymPy; both rewrite the product silently.  Here each is
made a ``Step`` the document shows ("= … by Rule: identity") and the verifier
checks (before and after equal at the random points), like the rewrites of
``rewrite.py``:

- ``symmetric_matrix``: Sᵀ = S, S⁻ᵀ = S⁻¹ written into the product, with the
  reason (assumed, or why the construction is symmetric);
- ``collect_terms``: the equal terms and powers that then collect
  (xᵀB + xᵀB = 2xᵀB, −½ · 2 = −1);
- ``scalar_algebra``: the scalar algebra, as "before = after" of the part
  that changed (p(1 − p)(−y/p + (1 − y)/(1 − p)) = p − y);
- ``with_intermediates``: a rewrite that splits a product (det(XXX),
  (XXX)⁻¹) written first as split, then the cancellations.
"""
from __future__ import annotations

from dataclasses import replace

from .. import expr as ex
from ..expr import Expr
from ..trace import Step
from .rewrite import RULES, _replace, symmetric_inverse
from .simplify import Simplifier
from .tidy import tidy

TITLES = {
    "symmetric_matrix": "A symmetric matrix",
    "orthogonal_matrix": "An orthogonal matrix",
    "collect_terms": "Collecting equal terms",
    "scalar_algebra": "Scalar algebra",
}

_COLLECTED = {      # rewrites shown split, then cancelled and collected: what the second step uses
    "inverse_of_product": r"$\mathbf{A}^{-1}\mathbf{A} = \mathbf{I}$, $\mathbf{A}^{-\top}\mathbf{A}^\top = \mathbf{I}$, "
                          r"equal terms added",
    "det_of_product": r"$u^a u^b = u^{a + b}$",
}
_SPLIT = tuple(_COLLECTED)


def visible_simplification(expanded: Expr, simp: Simplifier, assumptions: dict,
                           names=()) -> tuple[Expr, tuple[Step, ...]]:
    """``simp(tidy(simp(expanded)))`` with the steps that use symmetry or scalar algebra.
    ``names``: (name, value) pairs of the definitions, to say the scalar algebra in them."""
    e, done = symmetry(expanded, simp, assumptions)
    steps = list(done)
    tidied = simp(tidy(e, assumptions))
    if tidied != e:
        before, after = _changed(e, tidied)
        fb, fa = _in_names(before, names), _in_names(after, names)
        note = "$@0 = @1$"
        args = (fb, fa)
        if (fb, fa) != (before, after):
            note += " with " + ", ".join(f"$@{2 + 2 * i} = @{3 + 2 * i}$" for i in range(len(_used(names, fb))))
            for n, v in _used(names, fb):
                args += (n, v)
        steps.append(Step(rule="scalar_algebra", of=e, wrt="", result=tidied, dims=ex.shape_str(tidied.shape),
                          note=note, note_args=args))
    return tidied, tuple(steps)


def plain_simplifier() -> Simplifier:
    """The silent identities only (A I = A, (Aᵀ)ᵀ = A): no symmetry, assumed or by construction."""
    return Simplifier({}, by_construction=False)


def symmetry(e: Expr, simp: Simplifier, assumptions: dict,
             constructed: dict | None = None) -> tuple[Expr, tuple[Step, ...]]:
    """``simp(e)``, with the steps in which the symmetry of a matrix changes it.  ``constructed``:
    define names whose value is symmetric by construction (C for C = WWᵀ + s²I), name → value."""
    constructed = constructed or {}
    plain = plain_simplifier()(e)
    trial = Simplifier({**assumptions, **{n: ("symmetric",) for n in constructed}})
    sym = trial(plain)
    out = simp(plain)
    if any(n in constructed for n, _ in trial.used):
        out = simp(sym)
    return out, tuple(_symmetry_steps(plain, sym, trial, constructed)) if sym != plain else ()


def _symmetry_steps(plain: Expr, sym: Expr, trial: Simplifier, constructed: dict) -> list[Step]:
    """plain → (Sᵀ replaced by S, nothing else) → sym, the second step only if it does more."""
    parts, args, raw = [], [], plain
    orthogonal = False
    for name, what in trial.used:
        s = next(_syms(plain, name), None)
        if s is None:
            continue
        i = len(args)
        if name in constructed:
            fact = symmetric_inverse(constructed[name], trial)
            why = fact.note.split(": ", 1)[1]
            for k in range(len(fact.note_args)):
                why = why.replace(f"@{k}", f"@{i + 2 + k}")
            args += [s, constructed[name], *fact.note_args]
            n = len(args)
            args += [ex.transpose(s), ex.transpose(ex.inv(s)), ex.inv(s)]
            facts = [f"$@{n} = @{i}$"] if _mentions(raw, args[n]) else []
            facts += [f"$@{n + 1} = @{n + 2}$"] if _mentions(raw, args[n + 1]) else []
            parts.append(f"$@{i} = @{i + 1}$ is symmetric: {why}" + (", so " + " and ".join(facts) if facts else ""))
            raw = _replace(_replace(raw, ex.transpose(ex.inv(s)), ex.inv(s)), ex.transpose(s), s)
            continue
        if what == "orthogonal":
            orthogonal = True
            args += [s, ex.matmul(ex.transpose(s), s), ex.matmul(s, ex.transpose(s))]
            parts.append(f"$@{i}$ is orthogonal (assumed), so $@{i + 1} = @{i + 2} = \\mathbf{{I}}$")
            continue
        args += [s, ex.transpose(s), ex.transpose(ex.inv(s)), ex.inv(s)]
        facts = [f"$@{i + 1} = @{i}$"] if _mentions(raw, args[i + 1]) else []
        facts += [f"$@{i + 2} = @{i + 3}$"] if _mentions(raw, args[i + 2]) else []
        parts.append(f"$@{i}$ is {'symmetric' if what == 'symmetric' else what.replace('_', ' ') + ', so symmetric'}"
                     " (assumed)" + (", so " + " and ".join(facts) if facts else ""))
        raw = _replace(_replace(raw, ex.transpose(ex.inv(s)), ex.inv(s)), ex.transpose(s), s)
    for m in trial.derived:
        fact = symmetric_inverse(m, trial)
        i = len(args)
        note = fact.note
        for k in range(len(fact.note_args)):
            note = note.replace(f"@{k}", f"@{i + k}")
        args += list(fact.note_args)
        args += [fact.of, fact.result]
        n = len(args)
        parts.append(note + f", so $@{n - 2} = @{n - 1}$")
        raw = _replace(raw, fact.of, fact.result)
    note = "; ".join(parts)
    if orthogonal:
        return [_step("orthogonal_matrix", plain, sym, note, tuple(args))]
    if raw == plain or plain_simplifier()(raw) != plain_simplifier()(sym) or raw == sym:
        return [_step("symmetric_matrix", plain, sym, note, tuple(args))]
    return [_step("symmetric_matrix", plain, raw, note, tuple(args)),
            _step("collect_terms", raw, sym, r"$a\mathbf{A} + b\mathbf{A} = (a + b)\mathbf{A}$, "
                  r"$u^a u^b = u^{a + b}$, numbers multiplied", ())]


def _syms(e: Expr, name: str):
    if e.op == "sym" and e.name == name:
        yield e
    for a in e.args:
        yield from _syms(a, name)


def _step(rule: str, before: Expr, after: Expr, note: str, args: tuple, cites: str = "") -> Step:
    return Step(rule=rule, of=before, wrt="", result=after, dims=ex.shape_str(after.shape), note=note,
                note_args=args, cites=cites)


def _changed(a: Expr, b: Expr) -> tuple[Expr, Expr]:
    """The smallest pair of subexpressions in which ``a`` and ``b`` differ."""
    while True:
        if a.op == b.op == "mul" and a.args[-1] == b.args[-1] and a.args[-1].shape != () and a.shape != ():
            a, b = (ex.mul(*x.args[:-1]) if len(x.args) > 2 else x.args[0] for x in (a, b))   # (…) xᵀ
            continue
        if not (a.op == b.op and len(a.args) == len(b.args) and a.args and ex.rebuild(a, b.args) == b):
            return a, b
        diff = [(x, y) for x, y in zip(a.args, b.args) if x != y]
        if len(diff) != 1:
            return a, b
        a, b = diff[0]


def _in_names(e: Expr, names) -> Expr:
    """``e`` with the scalar values of the definitions written as their names (p for σ(wᵀx))."""
    for n, v in sorted(names, key=lambda nv: -ex.tree_size(nv[1])):
        if v.shape == () and v.args:
            e = _replace(e, v, n)
    return e


def _used(names, e: Expr):
    return [(n, v) for n, v in names if v.shape == () and v.args and _mentions(e, n)]


def _mentions(e: Expr, n: Expr) -> bool:
    return e == n or any(_mentions(a, n) for a in e.args)


def with_intermediates(steps: tuple[Step, ...], assumptions: dict) -> tuple[Step, ...]:
    """Each rewrite of ``_SPLIT`` shown as split ((XXX)⁻¹ = X⁻¹X⁻¹X⁻¹), then cancelled and collected."""
    out: list[Step] = []
    rules = {r.__name__[5:]: r for r in RULES}
    for s in steps:
        raw = _split_form(s, rules.get(s.rule), assumptions) if s.rule in _SPLIT else None
        if raw is None:
            out.append(s)
            continue
        out.append(Step(rule=s.rule, of=s.of, wrt="", result=raw, dims=s.dims, cites=s.cites, note=s.note,
                        note_args=s.note_args))
        out.append(_step("collect_terms", raw, s.result, _COLLECTED[s.rule], ()))
    return tuple(out)


def _split_form(s: Step, rule, assumptions: dict) -> Expr | None:
    """s.of with the rule applied and nothing cancelled yet, when that is what s did."""
    check = Simplifier(assumptions)
    seen: set = set()
    stack = [s.of]
    while stack:
        node = stack.pop(0)
        if node in seen:
            continue
        seen.add(node)
        stack.extend(node.args)
        new = rule(node, None)
        if new is None or new == node:
            continue
        raw = _replace(s.of, node, new)
        if raw != s.result and check(raw) == s.result:
            return raw
    return None


def before_collecting(step: Step) -> tuple[Step, tuple[Step, ...]]:
    """A power rule n uⁿ⁻¹ · u' of a scalar u written as it comes (3 det(X)² · det(X) X⁻ᵀ), then
    the powers collected (3 det(X)³ X⁻ᵀ) as a step; any other step as it is."""
    e = step.of
    if step.rule != "power" or e.op != "pow" or e.args[0].shape != () or e.args[1].op != "num" \
            or len(step.substeps) != 1:
        return step, ()
    u, n = e.args[0], e.args[1].value
    raw = ex.mul(ex.num(n), u if n == 2 else ex.power(u, ex.num(n - 1)), step.substeps[0].result)
    if raw == step.result or plain_simplifier()(raw) != step.result:
        return step, ()
    return replace(step, result=raw), (_step("collect_terms", raw, step.result, r"$u^a u^b = u^{a + b}$, $u / u = 1$", ()),)
