"""The chain rule over the ``define`` graph: one partial per edge, a product per path.

``solve_target(part, target)`` finds every path from the function to the
variable through the ``define`` names, derives each edge's partial with the
rules (other names held fixed), composes the partials along each path and
sums over paths (the total derivative), substitutes the definitions back and
simplifies with the declared assumptions.  A second derivative (``d2f/dx2``)
differentiates the gradient once more.
"""
from __future__ import annotations

import re
from dataclasses import replace

from .. import expr as ex
from ..errors import UnsupportedError
from ..expr import Expr
from ..printing import symbol_latex
from ..trace import Partial, Result, Step
from . import linear
from .rules import (Differentiator, compose, direction_symbol, identification_steps, jacobian_collected,
                    vec_dims, vec_jacobian_step,
                    jacobian_dims, transposed_in)
from .rewrite import _replace, cost, name_kept, scalar_into_kept, symmetric_inverse, textbook_form
from .steps_of_simplify import before_collecting, plain_simplifier, symmetry, visible_simplification, with_intermediates
from .simplify import Simplifier
from .tidy import tidy


def assumptions_of(part) -> dict[str, tuple[str, ...]]:
    return {s.name: s.assume for s in part.symbols if s.assume}


def shapes_of(part) -> dict[str, ex.Shape]:
    out = {s.name: s.shape for s in part.symbols if s.kind in ("scalar", "array")}
    out.update({d.name: d.expr.shape for d in part.define})
    return out


def dependency_paths(defs: dict[str, Expr], f: str, x: str) -> list[tuple[str, ...]]:
    """All paths f -> ... -> x through the define graph, in a stable order."""
    out: list[tuple[str, ...]] = []
    reach: dict[str, bool] = {}

    def reaches(n: str) -> bool:
        """Whether x is below n: only those branches are walked (no dead ends, however many)."""
        if n not in reach:
            reach[n] = False        # a cycle cannot reach through itself
            reach[n] = any(m == x or (m in defs and reaches(m)) for m in ex.free_symbols(defs[n]))
        return reach[n]

    def walk(node: str, path: tuple[str, ...]) -> None:
        names = _ordered_names(defs[node])
        for n in names:
            if n == x:
                out.append(path + (x,))
            elif n in defs and n not in path and reaches(n):
                walk(n, path + (n,))
            if len(out) > 64:
                raise UnsupportedError(f"more than 64 paths from {f} to {x}: split the problem")

    walk(f, (f,))
    return out


def _ordered_names(e: Expr) -> list[str]:
    """Symbols in the order they are written."""
    seen: list[str] = []

    def visit(n: Expr) -> None:
        if n.op == "sym":
            if n.name not in seen:
                seen.append(n.name)
            return
        for a in n.args:
            visit(a)

    visit(e)
    return seen


MAX_SUBSTITUTED = 20000


def contract(j: Expr, link: Partial, simp) -> Expr:
    """(∂f/∂A) contracted with the tensor ∂A/∂B, read off the differential dA[dB]:
    d f = (∂f/∂A) dA for a vector A, tr((∂f/∂A)ᵀ dA) for a matrix A (Matrix Cookbook (135)–(137))."""
    g = linear.gradient(simp(_paired(j, link.of_shape, link.step.result, link)), link.step.direction, link.wrt_shape)
    if link.wrt_shape != () and link.wrt_shape[1] == 1:
        return ex.transpose(g)
    return g


def _paired(j: Expr, a_shape: ex.Shape, dA: Expr, link: Partial) -> Expr:
    """(∂f/∂A) applied to dA (or to A itself): j dA for a vector A, tr(jᵀ dA) for a matrix A."""
    if a_shape != () and a_shape[1] == 1 and j.shape == (1, a_shape[0]):
        return ex.matmul(j, dA)
    if a_shape != () and j.shape == a_shape and len(a_shape) == 2:
        return ex.trace(ex.matmul(ex.transpose(j), dA))
    raise UnsupportedError(f"∂{link.of}/∂{link.wrt} is a tensor; stepgen contracts it only when the "
                           "function at the top of the chain is a scalar")


CONTRACTION_NOTES = {
    # (f, A, B, dA) as @0 … @3; indices: i (ij) over A, kl (k) over B
    "vector": r"$\frac{\partial @0}{\partial {@2}_{kl}} = \sum_{i} \frac{\partial @0}{\partial {@1}_{i}} "
              r"\frac{\partial {@1}_{i}}{\partial {@2}_{kl}}$: the tensor is contracted with the row "
              r"$\frac{\partial @0}{\partial @1}$ through the differential "
              r"$\mathrm{d}@0 = \frac{\partial @0}{\partial @1}\,\mathrm{d}@1$, with $\mathrm{d}@1 = @3$",
    "matrix": r"$\frac{\partial @0}{\partial {@2}_{kl}} = \sum_{i,j} \frac{\partial @0}{\partial {@1}_{ij}} "
              r"\frac{\partial {@1}_{ij}}{\partial {@2}_{kl}}$, that is $\operatorname{tr}\left(\left(\frac{\partial @0}{\partial @1}\right)^\top "
              r"\frac{\partial @1}{\partial {@2}_{kl}}\right)$: through the differential "
              r"$\mathrm{d}@0 = \operatorname{tr}\left(\left(\frac{\partial @0}{\partial @1}\right)^\top \mathrm{d}@1\right)$, "
              r"with $\mathrm{d}@1 = @3$",
}
MATRIX_CHAIN = (r"the chain rule through the matrix $@1$, $\frac{\partial @0}{\partial @2} = "
                r"\operatorname{tr}\left(\left(\frac{\partial @0}{\partial @1}\right)^\top \frac{\partial @1}{\partial @2}\right)$: "
                r"the trace sums the products of corresponding entries")


def chain_step(f: str, j: Expr, link: Partial, composed: Expr, simp) -> Step | None:
    """The step that multiplies ``j`` = ∂f/∂A into the link ∂A/∂B where it is more than a
    product of matrices: a contraction with a tensor, or a trace through a matrix A
    (∂f/∂s = tr((∂f/∂A)ᵀ ∂A/∂s), Matrix Cookbook (135)–(137)).  Its ``of`` is f with ∂f/∂A held
    fixed, j·A(B) (tr(jᵀ A(B))), so the step is checked like any other; None where that cannot
    be written (∂f/∂A itself depends on B) or there is nothing to say."""
    matrix_a = link.of_shape != () and 1 not in link.of_shape
    if not (link.tensor or matrix_a) or ex.depends_on(j, link.wrt):
        return None
    names = (ex.sym(f, ()), ex.sym(link.of, link.of_shape), ex.sym(link.wrt, link.wrt_shape))
    j = simp(j)
    of = _paired(j, link.of_shape, link.expr, link)
    D = Differentiator(link.wrt, link.wrt_shape, simp)
    if not link.tensor:
        return D.step("matrix_chain", of, composed, simplify=False, cites="Matrix Cookbook (135)–(137)",
                      note=MATRIX_CHAIN, args=names, label=f)
    Dd = Differentiator(link.wrt, link.wrt_shape, simp, direction=direction_symbol(link.wrt, link.wrt_shape))
    composed = simp(composed)
    df = simp(_paired(j, link.of_shape, link.step.result, link))
    grad = composed if link.wrt_shape[1] != 1 else ex.transpose(composed)
    substituted = Dd.step("differential_chain", of, df, simplify=False, label=f, note=DIFFERENTIAL_CHAIN,
                          args=(names[0], _paired(j, link.of_shape, direction_symbol(link.of, link.of_shape), link),
                                direction_symbol(link.of, link.of_shape), link.step.result))
    subs = (substituted,) + identification_steps(of, df, simp(grad), Dd, f)
    note = CONTRACTION_NOTES["matrix" if matrix_a else "vector"]
    if link.wrt_shape[1] == 1:
        note = note.replace("_{kl}", "_{k}")
    return D.step("tensor_contraction", of, composed, simplify=False, cites="Matrix Cookbook (135)–(137)",
                  note=note, args=names + (link.step.result,), subs=subs, label=f)


def substitute_all(e: Expr, defs: dict[str, Expr]) -> Expr:
    """Replace define names until only declared symbols remain (bounded in size).

    Each definition is resolved once, innermost first, so a chain of L links costs
    O(L) substitutions rather than L passes over the whole expression."""
    resolved: dict[str, Expr] = {}

    def resolve(name: str, depth: int = 0) -> Expr:
        if name not in resolved:
            if depth > len(defs):
                raise UnsupportedError("circular definitions")
            inner = ex.free_symbols(defs[name]) & defs.keys()
            out = ex.substitute(defs[name], {n: resolve(n, depth + 1) for n in inner}) if inner else defs[name]
            if ex.tree_size(out, MAX_SUBSTITUTED) > MAX_SUBSTITUTED:
                raise UnsupportedError(f"the expression grows past {MAX_SUBSTITUTED} terms when the "
                                       "definitions are substituted; split the problem")
            resolved[name] = out
        return resolved[name]

    names = ex.free_symbols(e) & defs.keys()
    if not names:
        return e
    out = ex.substitute(e, {n: resolve(n) for n in names})
    if ex.tree_size(out, MAX_SUBSTITUTED) > MAX_SUBSTITUTED:
        raise UnsupportedError(f"the expression grows past {MAX_SUBSTITUTED} terms when the "
                               "definitions are substituted; split the problem")
    return out


def solve_target(part, target) -> Result:
    """The derivative of ``target``; with no ``keep:``, a long intermediate name is kept when the
    derivation with it kept finds a shorter result (the softmax Jacobian written in p)."""
    try:
        try:
            r = _solve(part, target)
        except UnsupportedError as first:
            if not _scalar_by_vec(part, target):
                raise
            # a scalar written with vec X (aᵀ vec X): its derivative as Magnus & Neudecker write it,
            # the row ∂f/∂(vec X)ᵀ of the first identification theorem (ch. 9)
            try:
                if target.order == 2:
                    return _solve_hessian_by_vec(part, target)
                return _solve_by_vec(part, target, shapes_of(part), Simplifier(assumptions_of(part)))
            except UnsupportedError:
                raise first from None
    except UnsupportedError as exc:         # the direction d:X is the engine's name: a reader writes dX
        raise UnsupportedError(_DIRECTION.sub(r"d\1", exc.message)) from None
    if part.keep:
        return r
    defs = {d.name: d.expr for d in part.define}
    simp = Simplifier(assumptions_of(part))
    best, best_cost = r, cost(r.result)
    tried = 0
    for n in _on_paths(defs, target.of, target.wrt):
        value = simp(substitute_all(defs[n], defs))
        if cost(value) < AUTO_KEEP_TOKENS:
            continue
        if tried == AUTO_KEEP_TRIALS:       # each trial is a whole derivation: keep chains linear
            break
        tried += 1
        try:
            k = _solve(replace(part, keep=(n,)), target)
        except UnsupportedError:
            continue
        if k.display is not None and cost(k.result) < best_cost:
            best, best_cost = k, cost(k.result)
    return best


def _on_paths(defs: dict[str, Expr], f: str, x: str) -> list[str]:
    """The define names between ``f`` and ``x`` on some path of the chain, in define order."""
    inner = {n for path in dependency_paths(defs, f, x) for n in path[1:-1]}
    return [n for n in defs if n in inner]


def _solve(part, target) -> Result:
    defs = {d.name: d.expr for d in part.define}
    shapes = shapes_of(part)
    simp = Simplifier(assumptions_of(part))
    f, x = target.of, target.wrt
    fshape, xshape = shapes[f], shapes[x]
    kind = Differentiator(x, xshape).kind
    tensor = Differentiator(x, xshape).jshape(fshape) is None
    if tensor and target.order == 2:
        raise UnsupportedError(f"{target.text}: a second derivative of a tensor is not derived")
    if tensor and _by_vec(defs, f, fshape, xshape):
        return _solve_by_vec(part, target, shapes, simp)
    paths = dependency_paths(defs, f, x)
    named = frozenset(simp(substitute_all(defs[n], defs)) for n in defs if n != f)   # their signs stay
    vector = None if part.method == "direct" or target.order != 1 else _vector_of_scalars(part, defs, shapes, f, x, paths)
    if vector is not None:
        edges, chain, paths, chain_steps, substitutions = _vector_chain(
            vector, defs, shapes, f, x, simp, named, _kept_forms(part, defs, simp))
        product = _along(chain[0], kind, False, simp, chain_steps)
    elif part.method == "direct":
        # the whole expression at once
        full = substitute_all(defs[f], defs)
        partial = _partial(f, x, full, fshape, xshape, simp, named, _kept_forms(part, defs, simp))
        edges, chain, paths = [partial], ((partial,),), [(f, x)]
        chain_steps = []
        product = partial.result
    else:
        edges, chain = [], []
        cache: dict[tuple[str, str], Partial] = {}
        chain_steps: list[Step] = []
        for path in paths:
            links = []
            kept_forms = _kept_forms(part, defs, simp)
            for a, b in zip(path, path[1:]):
                if (a, b) not in cache:
                    cache[(a, b)] = _partial(a, b, defs[a], shapes[a], shapes[b], simp, named, kept_forms,
                                             _constructed(defs, shapes, f, simp.assumptions))
                    edges.append(cache[(a, b)])
                links.append(cache[(a, b)])
            chain.append(tuple(links))
        terms = []
        for links in chain:
            try:
                terms.append(_along(links, kind, tensor, simp, chain_steps))
            except UnsupportedError:
                if not any(l.tensor for l in links):
                    raise
                terms.append(_forward(links, fshape, x, xshape, tensor, simp, chain_steps))
        product = simp(ex.add(*terms)) if any(l.tensor for l in edges) else (
            ex.add(*terms) if len(terms) > 1 else terms[0])
    if vector is None:
        substitutions = tuple((n, defs[n]) for n in _ordered_defs(paths, f, x))
    expanded = substitute_all(product, defs)
    values = tuple((ex.sym(n, shapes[n]), simp(substitute_all(defs[n], defs))) for n in defs if n != f)
    result, rewrites = visible_simplification(expanded, simp, assumptions_of(part), values)
    if not tensor:
        result, more = textbook_form(result, simp, assumptions_of(part), named)
        rewrites += with_intermediates(more, assumptions_of(part))
    used = tuple(simp.used)
    extra: tuple[Step, ...] = ()
    hessian_rewrites: tuple[Step, ...] = ()
    dims = jacobian_dims(fshape, xshape)
    if target.order == 2 and _is_matrix(xshape):
        # the Hessian with respect to vec X: d vec(∂f/∂X) = H vec(dX) (Magnus & Neudecker (1999), ch. 10)
        step2 = vec_jacobian_step(result, x, xshape, simp, rule="vec_hessian")
        extra = (step2,)
        result, hessian_rewrites = visible_simplification(step2.result, simp, assumptions_of(part), values)
        result, more = textbook_form(result, simp, assumptions_of(part), named)
        hessian_rewrites += with_intermediates(more, assumptions_of(part))
        dims = vec_dims(xshape, xshape)
        used = tuple(simp.used)
    elif target.order == 2:
        grad = simp(ex.transpose(result)) if result.shape != () else result
        step2 = Differentiator(x, xshape, simp).d(grad)
        extra = (step2,)
        result, hessian_rewrites = visible_simplification(step2.result, simp, assumptions_of(part), values)
        result, more = textbook_form(result, simp, assumptions_of(part), named)
        hessian_rewrites += with_intermediates(more, assumptions_of(part))
        dims = jacobian_dims(grad.shape, xshape)
        used = tuple(simp.used)
    transposed = target.order == 1 and not tensor and transposed_in(part.layout, xshape)
    if transposed:
        result = simp(ex.transpose(result))
        rewrites = flipped(rewrites, simp)
    display, kept, fold = keep_names(result, part, defs, x, simp)
    if kept:
        # the rewrites written with the kept names too, then those the names make shorter ((p − y)ᵀ)
        rewrites, hessian_rewrites = (tuple(replace(s, of=fold(s.of), result=fold(s.result),
                                                    note_args=tuple(fold(a) for a in s.note_args)) for s in group)
                                      for group in (rewrites, hessian_rewrites))
        if not tensor:
            display, more = textbook_form(display, simp, assumptions_of(part), named)
            if more:
                result = simp(substitute_all(display, defs))
                if target.order == 2:
                    hessian_rewrites += more
                else:
                    rewrites += more
    if part.keep and target.order == 1 and not tensor:
        in_names = _in_kept_names(product, part, defs, simp, named)
        if in_names is not None and cost(in_names[0]) < cost(display if display is not None else result):
            display, expanded, rewrites, kept = in_names
            result = simp(substitute_all(display, defs))
            if transposed:
                display, result = simp(ex.transpose(display)), simp(ex.transpose(result))
                rewrites = flipped(rewrites, simp)
    if part.keep and target.order == 2:
        # the Hessian written in the kept names: diag(p) − p pᵀ for p = softmax(x)
        start = simp(tidy(extra[0].result, assumptions_of(part)))
        in_p, into = scalar_into_kept(start, _kept_forms(part, defs, simp), simp)
        if into is not None:
            shown, more = textbook_form(in_p, simp, assumptions_of(part), named)
            if cost(shown) < cost(display if display is not None else result):
                display, hessian_rewrites = shown, (into,) + more
                kept = _kept_pairs(display, part, defs, simp)
                result = simp(substitute_all(display, defs))
    if kept and target.order == 2:
        # the Hessian's own steps in the kept names too: p, not softmax(Ax + b) five times
        names = {n for n, _ in kept}
        forms = [(v, n) for v, n, _ in _kept_forms(part, defs, simp) if n.op == "sym" and n.name in names]
        extra = tuple(_folded_step(s, forms) for s in extra)
    return Result(
        of=f, wrt=x, order=target.order, text=target.text, layout=part.layout,
        paths=tuple(paths), partials=tuple(edges), chain=tuple(chain), product=product,
        substitutions=substitutions, expanded=expanded, result=result,
        dims=_swap_dims(dims) if transposed else dims, shape_of=fshape, shape_wrt=xshape,
        assumptions_used=used, expand_product=part.expand_product, extra_steps=extra,
        tensor=tensor, direction=direction_symbol(x, xshape).name if tensor else "",
        rewrites=rewrites, hessian_rewrites=hessian_rewrites, kept=kept, display=display,
        symmetric=tuple(symmetric_inverse(m, simp) for m in simp.derived
                        if not any(ex.transpose(ex.inv(m)) in s.note_args for s in rewrites + hessian_rewrites
                                   + tuple(x for p in edges for x in p.rewrites))),
        chain_steps=tuple(chain_steps),
    )


def flipped(steps: tuple[Step, ...], simp) -> tuple[Step, ...]:
    """Named rewrites of a numerator-layout Jacobian written in denominator layout: each side
    transposed, so every line conforms as the layout writes it; a rewrite the transpose makes
    empty (both sides the same) is left out."""
    out = []
    for s in steps:
        of, result = simp(ex.transpose(s.of)), simp(ex.transpose(s.result))
        if of != result:
            out.append(replace(s, of=of, result=result))
    return tuple(out)


def _folded_step(s: Step, forms) -> Step:
    """A step and its substeps with their results written in kept names (``forms``: pairs (value,
    name)); what is differentiated stays written out (it depends on the variable through the name)."""
    return replace(s, result=_fold(s.result, forms), substeps=tuple(_folded_step(t, forms) for t in s.substeps))


def _is_matrix(shape: ex.Shape) -> bool:
    return shape != () and shape[0] != 1 and shape[1] != 1


def _by_vec(defs: dict[str, Expr], f: str, fshape: ex.Shape, xshape: ex.Shape) -> bool:
    """A column vector written with vec, by a matrix: its Jacobian with respect to vec X
    (Magnus & Neudecker), rather than a tensor given by its differential."""
    return (_is_matrix(xshape) and fshape != () and fshape[1] == 1
            and ex.has_op(substitute_all(defs[f], defs), "vec"))


_DIRECTION = re.compile(r"\bd:([A-Za-z_][A-Za-z_0-9]*)")


def _scalar_by_vec(part, target) -> bool:
    """A scalar written with vec, by a matrix, to first order."""
    defs = {d.name: d.expr for d in part.define}
    shapes = shapes_of(part)
    return (target.order in (1, 2) and shapes[target.of] == () and _is_matrix(shapes[target.wrt])
            and ex.has_op(substitute_all(defs[target.of], defs), "vec"))


def _solve_by_vec(part, target, shapes: dict, simp: Simplifier) -> Result:
    """∂vec(F)/∂(vec X)ᵀ, of the whole definition at once: d vec(F) = J vec(dX), J read off by
    vec(A dX B) = (Bᵀ ⊗ A) vec(dX)."""
    defs = {d.name: d.expr for d in part.define}
    f, x = target.of, target.wrt
    fshape, xshape = shapes[f], shapes[x]
    full = substitute_all(defs[f], defs)
    if part.layout != "numerator":
        raise UnsupportedError(f"∂{f}/∂{x}: the Jacobian with respect to vec {x} is written in numerator layout "
                               "(Magnus & Neudecker); layout: denominator is not derived for it")
    try:
        step = vec_jacobian_step(full, x, xshape, simp, label=f)
    except UnsupportedError as exc:
        raise UnsupportedError(f"∂{f}/∂{x}: {exc}") from None
    partial = Partial(f, x, fshape, xshape, full, step)
    values = tuple((ex.sym(n, shapes[n]), simp(substitute_all(defs[n], defs))) for n in defs if n != f)
    result, rewrites = visible_simplification(step.result, simp, assumptions_of(part), values)
    named = frozenset(simp(substitute_all(defs[n], defs)) for n in defs if n != f)
    result, more = textbook_form(result, simp, assumptions_of(part), named)      # (B ⊗ A)ᵀ = Bᵀ ⊗ Aᵀ
    rewrites += with_intermediates(more, assumptions_of(part))
    paths = dependency_paths(defs, f, x)
    return Result(
        of=f, wrt=x, order=1, text=target.text, layout=part.layout, paths=((f, x),), partials=(partial,),
        chain=((partial,),), product=step.result,
        substitutions=tuple((n, defs[n]) for n in _ordered_defs(paths, f, x)), expanded=step.result,
        result=result, dims=step.dims, shape_of=fshape, shape_wrt=xshape, assumptions_used=tuple(simp.used),
        expand_product=part.expand_product, rewrites=rewrites)


def _solve_hessian_by_vec(part, target) -> Result:
    """The Hessian with respect to vec X of a scalar written with vec X (vec(X)ᵀ S vec(X)): the row
    ∂f/∂(vec X)ᵀ as ``_solve_by_vec`` reads it, then d of its transpose, the column g linear in vec X,
    written d g = H vec(dX) — Magnus & Neudecker (1999), ch. 10 (S + Sᵀ for the quadratic form)."""
    shapes, simp = shapes_of(part), Simplifier(assumptions_of(part))
    first = _solve_by_vec(part, replace(target, order=1), shapes, simp)
    x, xshape = target.wrt, shapes[target.wrt]
    grad = simp(ex.add(*[ex.transpose(t) for t in linear._expand(first.expanded, x)]))
    try:
        step2 = vec_jacobian_step(grad, x, xshape, simp, rule="vec_hessian")
    except UnsupportedError as exc:
        raise UnsupportedError(f"{target.text}: {exc}") from None
    defs = {d.name: d.expr for d in part.define}
    values = tuple((ex.sym(n, shapes[n]), simp(substitute_all(defs[n], defs))) for n in defs if n != target.of)
    named = frozenset(v for _, v in values)
    result, hessian_rewrites = visible_simplification(step2.result, simp, assumptions_of(part), values)
    result, more = textbook_form(result, simp, assumptions_of(part), named)
    hessian_rewrites += with_intermediates(more, assumptions_of(part))
    return replace(first, order=2, text=target.text, result=result, dims=vec_dims(xshape, xshape),
                   extra_steps=(step2,), hessian_rewrites=hessian_rewrites, assumptions_used=tuple(simp.used))


AUTO_KEEP_TOKENS = 8      # a define name is kept when its value (this many tokens or more) would repeat
AUTO_KEEP_TRIALS = 3      # long names tried as kept without keep:, outermost first
AUTO_KEEP_LONG = 12       # a name defined through other names is kept, even once, when its value is this long


def keep_names(result: Expr, part, defs: dict[str, Expr], x: str, simp):
    """``result`` with define names folded back in for display: those in ``keep:``, and any
    whose value, of ``AUTO_KEEP_TOKENS`` tokens or more, occurs more than once.  The names
    are folded innermost first, so a kept name may use another; the pairs (name, value)
    say what each stands for ("where C = …"); the third value folds them into any expression."""
    names = [d.name for d in part.define][1:]           # never the function itself
    shown = _scalars_in_front(result, simp)
    kept: list[tuple[str, Expr]] = []
    folds: list[tuple[Expr, Expr]] = []
    for n in reversed(names):
        if n == x:
            continue
        written = simp(substitute_all(defs[n], defs))
        value = _scalars_in_front(written, simp)
        if value.op == "sym" or ex.tree_size(value) < 2:
            continue
        forms = [(value, ex.sym(n, value.shape))]
        if value.shape != () and simp(ex.transpose(value)) != value:
            forms.append((simp(ex.transpose(value)), ex.transpose(ex.sym(n, value.shape))))
        # written in the names kept so far: a = softmax(s) is found in a result that already keeps s
        forms += [(_fold(f, folds), name) for f, name in forms if folds and _fold(f, folds) != f]
        count = sum(_occurrences(shown, f) for f, _ in forms)
        if count and (n in part.keep or (count > 1 and cost(value) >= AUTO_KEEP_TOKENS)
                      or (cost(value) >= AUTO_KEEP_LONG and ex.free_symbols(defs[n]) & defs.keys())):
            folded = _fold(written, folds)     # in the names kept so far
            if folded == written and _fold(value, folds) != value:
                folded = _fold(value, folds)
            kept.append((n, folded))
            folds.extend(forms)
            shown = _fold(shown, folds)
    # a name kept early that a later one took in (s in a = softmax(s)): said only where it is still used
    kept = [(n, v) for n, v in kept if ex.depends_on(shown, n) or any(ex.depends_on(w, n) for m, w in kept if m != n)]
    if not kept:
        return None, (), None
    return shown, tuple(reversed(kept)), lambda e: _fold(_scalars_in_front(e, simp), folds)


def _in_kept_names(product: Expr, part, defs: dict[str, Expr], simp, named: frozenset):
    """(display, expanded, rewrites, kept): the product with every name but those of ``keep:``
    substituted, then in the textbook's form ((sum(y) p − y)ᵀ with p kept); None if no kept name
    is left in it."""
    others = {n: v for n, v in defs.items() if n not in part.keep}
    expanded = simp(tidy(simp(substitute_all(product, others)), assumptions_of(part)))
    display, rewrites = textbook_form(expanded, simp, assumptions_of(part), named)
    folds = [(simp(substitute_all(v, others)), n) for v, n, _ in _kept_forms(part, defs, simp)]
    folded = _fold(display, folds)          # a kept name met inside a tensor's partial: σ(W₁x) = h
    if folded != display:
        rewrites += (name_kept(display, folded, [(ex.sym(n, v.shape), defs[n])
                                                 for n, v in _kept_pairs(folded, part, defs, simp)]),)
        display = folded
    kept = _kept_pairs(display, part, defs, simp)
    return (display, expanded, rewrites, kept) if kept else None


def _kept_pairs(display: Expr, part, defs: dict[str, Expr], simp) -> tuple[tuple[str, Expr], ...]:
    """(name, value) for each name of ``keep:`` in ``display``, its value in the symbols."""
    others = {n: v for n, v in defs.items() if n not in part.keep}
    return tuple((n, simp(substitute_all(defs[n], others))) for n in part.keep if ex.depends_on(display, n))


def _scalars_in_front(e: Expr, simp) -> Expr:
    """a / s as s⁻¹ a for a scalar s, the form the rules write: so a kept value is found."""
    if not e.args:
        return e
    args = tuple(_scalars_in_front(a, simp) for a in e.args)
    if e.op == "div" and e.shape != () and e.args[1].shape == ():
        return simp(ex.mul(ex.power(args[1], ex.num(-1)), args[0]))
    return e if all(a is b for a, b in zip(args, e.args)) else simp(ex.rebuild(e, args))


def _fold(e: Expr, folds) -> Expr:
    for f, name in folds:
        e = _replace(e, f, name)
    return e


def _occurrences(e: Expr, f: Expr) -> int:
    if e == f:
        return 1
    return sum(_occurrences(a, f) for a in e.args)


def _constructed(defs: dict[str, Expr], shapes: dict, f: str, assumptions: dict) -> dict[str, Expr]:
    """The define names whose value is symmetric by construction (C = WWᵀ + s²I): name → value."""
    plain = plain_simplifier()
    out = {}
    for n, d in defs.items():
        shape = shapes[n]
        if n != f and len(shape) == 2 and shape[0] == shape[1] and shape[0] != 1:
            value = plain(substitute_all(d, defs))
            if value.op != "sym" and Simplifier(assumptions).symmetric(value):
                out[n] = value
    return out


def _partial(a: str, b: str, e: Expr, a_shape, b_shape, simp, named: frozenset = frozenset(),
             kept_forms=(), constructed=None) -> Partial:
    """The partial ∂a/∂b of the definition ``e``, in the textbook's form by named rewrites and
    with the names of ``keep:`` written in; a tensor keeps its differential."""
    D = Differentiator(b, b_shape, plain_simplifier())    # the symmetry used is a step of its own
    tensor = D.jshape(a_shape) is None
    if tensor:
        D = Differentiator(b, b_shape, simp, direction=direction_symbol(b, b_shape))
    try:
        step = D.d(e)
    except UnsupportedError as exc:
        raise UnsupportedError(f"∂{a}/∂{b}: {exc}") from None
    if tensor:
        step = replace(step, dims=jacobian_dims(a_shape, b_shape))
        return Partial(a, b, a_shape, b_shape, e, _named(step, a), tensor)
    step, collected = before_collecting(_named(step, a))
    done, rewrites = symmetry(step.result, simp, simp.assumptions,
                              {n: v for n, v in (constructed or {}).items() if n != a})
    rewrites = collected + rewrites
    done = rewrites[-1].result if rewrites and done == step.result else done
    done, more = textbook_form(done, simp, simp.assumptions, named)
    rewrites += with_intermediates(more, simp.assumptions)
    done, into = scalar_into_kept(done, kept_forms, simp)
    rewrites += (into,) if into else ()
    folded = _fold(_scalars_in_front(done, simp), [(f, n) for f, n, _ in kept_forms])
    if folded != _scalars_in_front(done, simp):
        used = [(n, d) for f, n, d in kept_forms if n.op == "sym" and _occurrences(folded, n)]
        rewrites += (name_kept(done, folded, used),)
    return Partial(a, b, a_shape, b_shape, e, step, tensor, rewrites)


def _kept_forms(part, defs: dict[str, Expr], simp) -> list[tuple[Expr, Expr, Expr]]:
    """(form, name, definition) for each name of ``keep:``, as written in ``define`` (a partial
    is in the define names): its value, and its transpose."""
    out = []
    for n in part.keep:
        value = _scalars_in_front(simp(defs[n]), simp)
        name = ex.sym(n, value.shape)
        out.append((value, name, defs[n]))
        if value.shape != () and simp(ex.transpose(value)) != value:
            out.append((simp(ex.transpose(value)), ex.transpose(name), defs[n]))
    return out


def _named(step: Step, name: str) -> Step:
    """A differential read off for the partial of ``name``: its differentials shown as d``name`` = …"""
    if step.rule != "differential":
        return step
    return replace(step, substeps=tuple(replace(s, label=name) if s.direction and s.of == step.of else s
                                        for s in step.substeps))


def _along(links: tuple[Partial, ...], kind: str, tensor_target: bool, simp, steps: list[Step]) -> Expr:
    """The chain rule along one path; for a tensor-valued target, the differential of the function.
    Appends to ``steps`` the products that are more than a matrix product (``chain_step``)."""
    if not tensor_target:
        j = links[0].result
        found = []
        for link in links[1:]:
            nxt = contract(j, link, simp) if link.tensor else compose(j, link.result, link.of_shape, kind)
            found.append(chain_step(links[0].of, j, link, nxt, simp))
            j = nxt
        steps.extend(s for s in found if s is not None)
        return j
    last = links[-1]
    if any(l.tensor for l in links[:-1]):
        raise UnsupportedError("a tensor in the middle of a chain whose result is a tensor is not derived")
    d_last = last.step.result if last.tensor else _as_differential(last)
    if len(links) == 1:
        return d_last
    j = links[0].result
    for link in links[1:-1]:
        j = compose(j, link.result, link.of_shape, "vector" if link.wrt_shape != () else "scalar")
    a_shape = last.of_shape
    if a_shape == ():
        out = ex.mul(j, d_last)
    elif a_shape[1] == 1:
        out = ex.matmul(j, d_last)
    else:
        raise UnsupportedError("a chain through a matrix into a tensor-valued result is not derived")
    if not _direct(links, last.wrt):
        dA = direction_symbol(last.of, a_shape)
        D = Differentiator(last.wrt, last.wrt_shape, simp, direction=direction_symbol(last.wrt, last.wrt_shape))
        steps.append(D.step("differential_chain", _path_expr(links), out, simplify=False, label=links[0].of,
                            note=_differential_chain_note(last),
                            args=(ex.sym(links[0].of, links[0].of_shape), ex.mul(j, dA) if a_shape == () else ex.matmul(j, dA),
                                  dA, d_last) + _link_names(last)))
    return out


def _direct(links: tuple[Partial, ...], x: str) -> bool:
    """Whether a definition above the last link uses ``x`` itself (another path): then the
    differential along this path alone is not that of the path's expression, and is not recorded."""
    return any(ex.depends_on(l.expr, x) for l in links[:-1])


def _path_expr(links: tuple[Partial, ...]) -> Expr:
    """The function at the top of the path in terms of the variable at its bottom, along the path."""
    e = links[-1].expr
    for link in reversed(links[:-1]):
        e = ex.substitute(link.expr, {link.wrt: e})
    return e


def _link_names(link: Partial) -> tuple[Expr, Expr]:
    return ex.sym(link.of, link.of_shape), ex.sym(link.wrt, link.wrt_shape)


DIFFERENTIAL_CHAIN = r"$\mathrm{d}@0 = @1$ with the differential $@2 = @3$ of the link below substituted"


def _differential_chain_note(inner: Partial) -> str:
    """The note of a differential_chain step; a scalar-by-matrix link brings in a trace: say why."""
    if not inner.tensor and inner.of_shape == () and inner.wrt_shape != () and 1 not in inner.wrt_shape:
        return DIFFERENTIAL_CHAIN + (r", where $@2 = \operatorname{tr}\left(\left(\frac{\partial @4}{\partial @5}\right)^\top "
                                     r"\mathrm{d}@5\right)$ is the differential of a scalar of a matrix "
                                     r"(the identification read backwards)")
    return DIFFERENTIAL_CHAIN


def _forward(links: tuple[Partial, ...], fshape, x: str, xshape, tensor_target: bool, simp,
             steps: list[Step]) -> Expr:
    """The chain rule as differentials, from the variable up: d(link) with d(inner) substituted
    for the inner variable's differential; then the derivative is read off (or, for a tensor,
    the differential is the result).  Handles tensor links anywhere in the chain.  Each
    substitution is recorded in ``steps`` (``differential_chain``), the read-off below the last."""
    d = None
    H = direction_symbol(x, xshape)
    D = Differentiator(x, xshape, simp, direction=H)
    of = None
    found = []
    below = None
    for link in reversed(links):
        dl = link.step.result if link.tensor else _as_differential(link)
        if d is None:
            of = link.expr
        else:
            inner = direction_symbol(link.wrt, link.wrt_shape)
            of = ex.substitute(link.expr, {link.wrt: of})
            composed = simp(ex.substitute(dl, {inner.name: d}))
            found.append(D.step("differential_chain", of, composed, simplify=False, note=_differential_chain_note(below),
                                args=(ex.sym(link.of, link.of_shape), dl, inner, d) + _link_names(below), label=link.of))
            dl = composed
        d = simp(dl)
        below = link
    out = _read_off(d, fshape, x, xshape, tensor_target, simp)
    if found and not tensor_target and xshape != ():
        last = found[-1]
        if fshape == ():
            subs = identification_steps(of, d, simp(out if xshape[1] != 1 else ex.transpose(out)), D, links[0].of)
        else:
            subs = jacobian_collected(of, d, simp(out), D, links[0].of)
        found[-1] = replace(last, substeps=subs)
    if not _direct(links, x):
        steps.extend(found)
    return out


def _read_off(d: Expr, fshape, x: str, xshape, tensor_target: bool, simp) -> Expr:
    """The derivative from the differential ``d`` of f in the direction dx (d itself for a tensor)."""
    if tensor_target:
        return d
    h = direction_symbol(x, xshape).name
    if xshape == ():
        return simp(ex.substitute(d, {h: ex.ONE}))
    if fshape == ():
        g = linear.gradient(d, h, xshape)
        return ex.transpose(g) if xshape[1] == 1 else g
    if xshape[1] == 1 and (fshape[1] == 1 or fshape[0] == 1):
        return linear.jacobian(d if fshape[1] == 1 else ex.transpose(d), h, xshape[0])
    raise UnsupportedError("a chain through a tensor to a tensor-valued result")


def _as_differential(link: Partial) -> Expr:
    """The differential of a link from its Jacobian: J dx, or tr(Gᵀ dX) for a scalar by a matrix."""
    h = direction_symbol(link.wrt, link.wrt_shape)
    J = link.result
    if link.wrt_shape == ():
        return ex.mul(J, h)
    if link.wrt_shape[1] == 1:
        d = ex.matmul(J, h)
        # a row-vector function: its Jacobian is that of its column, so transpose back
        return ex.transpose(d) if link.of_shape != () and link.of_shape[0] == 1 and link.of_shape[1] != 1 else d
    if link.of_shape == ():
        return ex.trace(ex.matmul(ex.transpose(J), h))
    raise UnsupportedError("a tensor-valued link")


def _swap_dims(dims: str) -> str:
    a, _, b = dims.partition("×")
    return f"{b}×{a}" if b else dims


def _ordered_defs(paths, f: str, x: str) -> list[str]:
    out: list[str] = []
    for p in paths:
        for n in p[1:-1]:
            if n not in out:
                out.append(n)
    return out


def _vector_of_scalars(part, defs: dict[str, Expr], shapes: dict, f: str, x: str,
                       paths) -> tuple[str, list[str]] | None:
    """The vector chain rule (Parr & Howard §4.5.3): ``f`` a list of entries in scalar intermediates
    g₁ … gₖ (k ≥ 2), each defined in ``x`` directly, is differentiated through one vector link
    g = [g₁, …, gₖ] (named by their common stem), not as a sum over k scalar paths.  (stem, names)
    or None where the chain is not that."""
    e = defs[f]
    if e.op != "stack" or e.shape[1] != 1 or x in ex.free_symbols(e):
        return None
    names = [n for n in _ordered_names(e) if n in defs]
    if len(names) < 2 or any(shapes[n] != () for n in names) or len(paths) != len(names):
        return None
    if sorted(p for p in paths) != sorted((f, n, x) for n in names):
        return None
    stems = {n.rstrip("0123456789").rstrip("_") for n in names}
    stem = stems.pop() if len(stems) == 1 else ""
    taken = {s.name for s in part.symbols} | set(defs) | set(ex.function_names())
    if not stem or stem in taken or not stem.isidentifier():
        return None
    return stem, names


VECTOR_LINK = (r"entry $(i, j)$ is the derivative of entry $i$ of $@0$ by ${@3}_{j}$, the other entries of "
               r"$@1 = @2$ held fixed: the vector chain rule takes the intermediates as one vector")


def _vector_chain(vector, defs: dict[str, Expr], shapes: dict, f: str, x: str, simp, named, kept_forms):
    """(edges, chain, paths, chain steps, substitutions) of f -> g -> x with g = [g₁, …, gₖ]:
    ∂f/∂g (k columns, one per intermediate) times ∂g/∂x, as Parr & Howard §4.5.3 writes it."""
    stem, names = vector
    g = ex.stack(ex.sym(n, ()) for n in names)
    e = defs[f]
    rows, subs = [], []
    for entry in e.args:
        cells = []
        for n in names:
            s = Differentiator(n, (), plain_simplifier()).d(entry)
            if s.rule != "constant":
                subs.append(s)
            cells.append(s.result)
        rows.append(ex.transpose(ex.stack(cells)))
    Dg = Differentiator(stem, g.shape, plain_simplifier())
    outer_step = Dg.step("stacking", e, ex.stack(rows), simplify=False, cites="Parr & Howard §4.5.3",
                         note=VECTOR_LINK.replace("@3", symbol_latex(stem, False)), args=(ex.sym(f, e.shape), ex.sym(stem, g.shape), g),
                         subs=tuple(subs))
    outer = Partial(f, stem, e.shape, g.shape, e, outer_step)
    inner = _partial(stem, x, ex.stack(defs[n] for n in names), g.shape, shapes[x], simp, named, kept_forms)
    edges = [outer, inner]
    substitutions = ((stem, g),) + tuple((n, defs[n]) for n in names)
    return edges, [tuple(edges)], [(f, stem, x)], [], substitutions
