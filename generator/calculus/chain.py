"""The chain rule over the ``define`` graph: one partial per edge, a product per path.

``solve_target(part, target)`` finds every path from the function to the
variable through the ``define`` names, derives each edge's partial with the
rules (other names held fixed), composes the partials along each path and
sums over paths (the total derivative), substitutes the definitions back and
simplifies with the declared assumptions.  A second derivative (``d2f/dx2``)
differentiates the gradient once more.
"""
from __future__ import annotations

from dataclasses import replace

from .. import expr as ex
from ..errors import UnsupportedError
from ..expr import Expr
from ..trace import Partial, Result, Step
from . import linear
from .rules import Differentiator, compose, direction_symbol, jacobian_dims, transposed_in
from .rewrite import _replace, cost, name_kept, symmetric_inverse, textbook_form
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
    a_shape, dA, h = link.of_shape, link.step.result, link.step.direction
    if a_shape != () and a_shape[1] == 1 and j.shape == (1, a_shape[0]):
        s = ex.matmul(j, dA)
    elif a_shape != () and j.shape == a_shape and len(a_shape) == 2:
        s = ex.trace(ex.matmul(ex.transpose(j), dA))
    else:
        raise UnsupportedError(f"∂{link.of}/∂{link.wrt} is a tensor; stepgen contracts it only when the "
                               "function at the top of the chain is a scalar")
    g = linear.gradient(simp(s), h, link.wrt_shape)
    if link.wrt_shape != () and link.wrt_shape[1] == 1:
        return ex.transpose(g)
    return g


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
    defs = {d.name: d.expr for d in part.define}
    shapes = shapes_of(part)
    simp = Simplifier(assumptions_of(part))
    f, x = target.of, target.wrt
    fshape, xshape = shapes[f], shapes[x]
    kind = Differentiator(x, xshape).kind
    tensor = Differentiator(x, xshape).jshape(fshape) is None
    if tensor and target.order == 2:
        raise UnsupportedError(f"{target.text}: a second derivative of a tensor is not derived")
    paths = dependency_paths(defs, f, x)
    named = frozenset(simp(substitute_all(defs[n], defs)) for n in defs if n != f)   # their signs stay
    if part.method == "direct":
        # the whole expression at once
        full = substitute_all(defs[f], defs)
        partial = _partial(f, x, full, fshape, xshape, simp, named, _kept_forms(part, defs, simp))
        edges, chain, paths = [partial], ((partial,),), [(f, x)]
        product = partial.result
    else:
        edges, chain = [], []
        cache: dict[tuple[str, str], Partial] = {}
        for path in paths:
            links = []
            kept_forms = _kept_forms(part, defs, simp)
            for a, b in zip(path, path[1:]):
                if (a, b) not in cache:
                    cache[(a, b)] = _partial(a, b, defs[a], shapes[a], shapes[b], simp, named, kept_forms)
                    edges.append(cache[(a, b)])
                links.append(cache[(a, b)])
            chain.append(tuple(links))
        terms = []
        for links in chain:
            try:
                terms.append(_along(links, kind, tensor, simp))
            except UnsupportedError:
                if not any(l.tensor for l in links):
                    raise
                terms.append(_forward(links, fshape, x, xshape, tensor, simp))
        product = simp(ex.add(*terms)) if any(l.tensor for l in edges) else (
            ex.add(*terms) if len(terms) > 1 else terms[0])
    substitutions = tuple((n, defs[n]) for n in _ordered_defs(paths, f, x))
    expanded = substitute_all(product, defs)
    result = simp(tidy(simp(expanded), assumptions_of(part)))
    rewrites: tuple[Step, ...] = ()
    if not tensor:
        result, rewrites = textbook_form(result, simp, assumptions_of(part), named)
    used = tuple(simp.used)
    extra: tuple[Step, ...] = ()
    hessian_rewrites: tuple[Step, ...] = ()
    dims = jacobian_dims(fshape, xshape)
    if target.order == 2:
        grad = simp(ex.transpose(result)) if result.shape != () else result
        step2 = Differentiator(x, xshape, simp).d(grad)
        extra = (step2,)
        result = simp(tidy(step2.result, assumptions_of(part)))
        result, hessian_rewrites = textbook_form(result, simp, assumptions_of(part), named)
        dims = jacobian_dims(grad.shape, xshape)
        used = tuple(simp.used)
    transposed = target.order == 1 and not tensor and transposed_in(part.layout, xshape)
    if transposed:
        result = simp(ex.transpose(result))
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
    return Result(
        of=f, wrt=x, order=target.order, text=target.text, layout=part.layout,
        paths=tuple(paths), partials=tuple(edges), chain=tuple(chain), product=product,
        substitutions=substitutions, expanded=expanded, result=result,
        dims=_swap_dims(dims) if transposed else dims, shape_of=fshape, shape_wrt=xshape,
        assumptions_used=used, expand_product=part.expand_product, extra_steps=extra,
        tensor=tensor, direction=direction_symbol(x, xshape).name if tensor else "",
        rewrites=rewrites, hessian_rewrites=hessian_rewrites, kept=kept, display=display,
        symmetric=tuple(symmetric_inverse(m, simp) for m in simp.derived),
    )


AUTO_KEEP_TOKENS = 8      # a define name is kept when its value (this many tokens or more) would repeat


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
        count = sum(_occurrences(shown, f) for f, _ in forms)
        if count and (n in part.keep or (count > 1 and cost(value) >= AUTO_KEEP_TOKENS)):
            kept.append((n, _fold(written, folds)))     # in the names kept so far
            folds.extend(forms)
            shown = _fold(shown, folds)
    if not kept:
        return None, (), None
    return shown, tuple(reversed(kept)), lambda e: _fold(_scalars_in_front(e, simp), folds)


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


def _partial(a: str, b: str, e: Expr, a_shape, b_shape, simp, named: frozenset = frozenset(),
             kept_forms=()) -> Partial:
    """The partial ∂a/∂b of the definition ``e``, in the textbook's form by named rewrites and
    with the names of ``keep:`` written in; a tensor keeps its differential."""
    D = Differentiator(b, b_shape, simp)
    tensor = D.jshape(a_shape) is None
    if tensor:
        D = Differentiator(b, b_shape, simp, direction=direction_symbol(b, b_shape))
    try:
        step = D.d(e)
    except UnsupportedError as exc:
        raise UnsupportedError(f"∂{a}/∂{b}: {exc}") from None
    if tensor:
        step = replace(step, dims=jacobian_dims(a_shape, b_shape))
        return Partial(a, b, a_shape, b_shape, e, step, tensor)
    done, rewrites = textbook_form(step.result, simp, simp.assumptions, named)
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


def _along(links: tuple[Partial, ...], kind: str, tensor_target: bool, simp) -> Expr:
    """The chain rule along one path; for a tensor-valued target, the differential of the function."""
    if not tensor_target:
        j = links[0].result
        for link in links[1:]:
            j = contract(j, link, simp) if link.tensor else compose(j, link.result, link.of_shape, kind)
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
        return ex.mul(j, d_last)
    if a_shape[1] == 1:
        return ex.matmul(j, d_last)
    raise UnsupportedError("a chain through a matrix into a tensor-valued result is not derived")


def _forward(links: tuple[Partial, ...], fshape, x: str, xshape, tensor_target: bool, simp) -> Expr:
    """The chain rule as differentials, from the variable up: d(link) with d(inner) substituted
    for the inner variable's differential; then the derivative is read off (or, for a tensor,
    the differential is the result).  Handles tensor links anywhere in the chain."""
    from . import linear
    d = None
    for link in reversed(links):
        dl = link.step.result if link.tensor else _as_differential(link)
        if d is not None:
            dl = ex.substitute(dl, {direction_symbol(link.wrt, link.wrt_shape).name: d})
        d = simp(dl)
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
