"""Reading a derivative off a differential: the identification theorems.

The engine writes the differential of an expression in a direction ``H``
(``dX`` for a matrix ``X``, ``dx`` for a vector): an expression linear in ``H``.
This module turns it back into a derivative:

* ``gradient(e, H)`` for a scalar ``e``: the ``G`` of ``H``'s shape with
  ``e = tr(Gᵀ H)``.  For a matrix ``X`` that is ∂f/∂X (written 1×(p×q));
  for a vector, ``Gᵀ`` is the row ∂f/∂x.  Uses tr(L H R) = tr(R L H) (the
  cyclic property, Matrix Cookbook (16)) and tr(Aᵀ) = tr(A).
* ``jacobian(e, h)`` for a vector ``e`` and a vector ``h``: the ``J`` with
  ``e = J h``.
* ``entries(e, H)``: for a tensor-valued derivative, the terms ``c·L·H·R``
  from which ∂z_ij/∂H_kl = c L_ik R_lj is written entry by entry.
* ``identification_moves(e, h, …)``: the same reading written out for the
  document, one identity at a time (the terms, a scalar is its own trace or
  transpose, the cyclic trace, tr(Aᵀ) = tr(A), 1ᵀ(A ∘ B)1 = tr(BᵀA)); every
  intermediate form equals ``e``, so ``rules`` records each as a checked step.

Anything not linear in ``H`` in a way these rules recognise raises
``UnsupportedError``.
"""
from __future__ import annotations

from .. import expr as ex
from ..errors import UnsupportedError
from ..expr import Expr


def _has(e: Expr, h: str) -> bool:
    return ex.depends_on(e, h)


def _is_h(e: Expr, h: str) -> bool:
    return e.op == "sym" and e.name == h


def _expand(e: Expr, h: str) -> list[Expr]:
    """Terms whose sum is ``e``; each term has ``h`` in at most one leaf path without sums."""
    if not _has(e, h):
        return [e]
    op = e.op
    if op == "add":
        out = []
        for t in e.args:
            out.extend(_expand(t, h))
        return out
    if op == "mul":
        for i, f in enumerate(e.args):
            if _has(f, h):
                others = e.args[:i] + e.args[i + 1:]
                return [ex.mul(*others, t) if others else t for t in _expand(f, h)]
    if op == "matmul" and len(e.args) == 2 and e.shape == () and all(_is_vec(f) for f in e.args):
        # vec(P)ᵀ vec(Q) = tr(Pᵀ Q) (Magnus & Neudecker (1999), ch. 2)
        p, q = (_unvec(f) for f in e.args)
        return _expand(ex.trace(ex.matmul(_t(p), q)), h)
    if op == "matmul":
        for i, f in enumerate(e.args):
            if _has(f, h):
                left, right = e.args[:i], e.args[i + 1:]
                out = []
                for t in _expand(f, h):
                    scal, core = _split_scalar(t)
                    m = ex.matmul(*(left + (core,) + right)) if (left or right) else core
                    out.append(ex.mul(*scal, m) if scal else m)
                return out
    if op == "T":
        out = []
        for t in _expand(e.args[0], h):
            scal, core = _split_scalar(t)
            if core.op == "matmul":
                tc = ex.matmul(*[_t(f) for f in reversed(core.args)])
            else:
                tc = _t(core)
            out.append(ex.mul(*scal, tc) if scal else tc)
        return out
    if op == "trace":
        return [_trace_term(t) for t in _expand(e.args[0], h)]
    if op == "div" and not _has(e.args[1], h):
        return [ex.div(t, e.args[1]) for t in _expand(e.args[0], h)]
    if op == "had":
        factors: list[Expr] = []
        stack = [e]
        while stack:                          # (A ∘ dX) ∘ B: one product of factors
            f = stack.pop()
            if f.op == "had":
                stack.extend(reversed(f.args))
            else:
                factors.append(f)
        dep = [f for f in factors if _has(f, h)]
        if len(dep) != 1:
            return [e]
        inner = dep[0]
        rest = [f for f in factors if f is not inner]
        other = rest[0]
        for f in rest[1:]:
            other = ex.hadamard(other, f)
        if e.shape[1] == 1:
            # v ∘ u = diag(v) u for vectors: a product the rules below can read
            return _expand(ex.matmul(ex.diag(other), inner), h)
        if e.shape[0] == 1:
            return _expand(ex.matmul(inner, ex.diag(ex.transpose(other))), h)
        return [ex.hadamard(t, other) for t in _expand(inner, h)]
    if op == "diagpart":
        return [_scaled(t, lambda c: ex.Expr("diagpart", (c,), (c.shape[0], 1))) for t in _expand(e.args[0], h)]
    if op == "kron":
        a, b = e.args
        if _is_h(b, h) and not _has(a, h) and a.shape != () and a.shape[1] == 1 and b.shape[1] == 1:
            return [ex.matmul(ex.kron(a, ex.eye(b.shape[0])), b)]          # a ⊗ h = (a ⊗ I) h
        if _is_h(a, h) and not _has(b, h) and b.shape != () and b.shape[1] == 1 and a.shape[1] == 1:
            return [ex.matmul(ex.kron(ex.eye(a.shape[0]), b), a)]          # h ⊗ b = (I ⊗ b) h
        return _kron_terms(a, b, h) or [e]
    if op == "vec":
        return [_vec_term(t, h) for t in _expand(e.args[0], h)]
    if op == "sum":
        v = e.args[0]
        r, c = ex.as_2d(v.shape)
        return _expand(ex.matmul(ex.transpose(ex.ones(r)), v, ex.ones(c)) if c != 1 else
                       ex.matmul(ex.transpose(ex.ones(r)), v), h)
    return [e]


def _is_vec(f: Expr) -> bool:
    """vec(P) or vec(P)ᵀ."""
    return f.op == "vec" or (f.op == "T" and f.args[0].op == "vec")


def _unvec(f: Expr) -> Expr:
    return f.args[0].args[0] if f.op == "T" else f.args[0]


def _kron_terms(a: Expr, b: Expr, h: str) -> list[Expr] | None:
    """a ⊗ (L h) = (a ⊗ L) h and (L h) ⊗ b = (L ⊗ b) h for columns, by the mixed product
    (Magnus & Neudecker (1999), ch. 2): the factor that depends on the vector h, term by term."""
    if _has(a, h) == _has(b, h) or ex.as_2d(a.shape)[1] != 1 or ex.as_2d(b.shape)[1] != 1:
        return None
    inner, const = (b, a) if _has(b, h) else (a, b)
    out = []
    for t in _expand(inner, h):
        scal, core = _split_scalar(t)
        fs = core.args if core.op == "matmul" else (core,)
        if not _is_h(fs[-1], h) or any(_has(f, h) for f in fs[:-1]) or any(_has(s, h) for s in scal):
            return None
        L = ex.matmul(*fs[:-1]) if len(fs) > 1 else ex.eye(fs[-1].shape[0])
        k = ex.kron(const, L) if inner is b else ex.kron(L, const)
        m = ex.matmul(k, fs[-1])
        out.append(ex.mul(*scal, m) if scal else m)
    return out


def _scaled(t: Expr, wrap) -> Expr:
    """wrap(core) with the scalar factors of ``t`` kept outside."""
    scal, core = _split_scalar(t)
    out = wrap(core)
    return ex.mul(*scal, out) if scal else out


def _trace_term(t: Expr) -> Expr:
    scal, core = _split_scalar(t)
    tr = ex.trace(core) if core.shape != () else core
    return ex.mul(*scal, tr) if scal else tr


def _t(a: Expr) -> Expr:
    """Transpose, cancelling double transposes."""
    if a.shape == () or a.op in ("eye", "diag"):
        return a
    if a.op == "T":
        return a.args[0]
    return ex.transpose(a)


def _split_scalar(t: Expr) -> tuple[tuple[Expr, ...], Expr]:
    """(scalar factors, the rest) of a product."""
    if t.op == "mul":
        scal = tuple(f for f in t.args if f.shape == ())
        arrays = [f for f in t.args if f.shape != ()]
        if len(arrays) == 1:
            return scal, arrays[0]
        if not arrays:
            # all scalar: keep the one with h as the core
            return scal[:-1], scal[-1]
    return (), t


def gradient(e: Expr, h: str, hshape: ex.Shape) -> Expr:
    """G (``hshape``) with e = tr(Gᵀ H), for a scalar e linear in H."""
    if e.shape != ():
        raise UnsupportedError("internal: gradient of a non-scalar")
    terms = []
    for t in _expand(e, h):
        if not _has(t, h):
            continue      # a constant left over: its differential is zero
        terms.append(_gradient_term(t, h, hshape))
    if not terms:
        return ex.zero(hshape)
    return ex.add(*terms)


def _gradient_term(t: Expr, h: str, hshape) -> Expr:
    if t.op == "mul" and all(f.shape == () for f in t.args):
        dep = [f for f in t.args if _has(f, h)]
        if len(dep) == 1:
            # c · s(H) with c free of H: c times the gradient of s
            others = [f for f in t.args if f is not dep[0]]
            return ex.mul(*others, gradient(dep[0], h, hshape))
    scal, core = _split_scalar(t)
    dep_scal = [s for s in scal if _has(s, h)]
    if dep_scal:
        raise UnsupportedError(f"cannot read a derivative off {ex.to_text(t)}")
    if core.op == "div" and not _has(core.args[1], h):
        g = _gradient_term(core.args[0], h, hshape)
        return ex.mul(*scal, ex.div(g, core.args[1])) if scal else ex.div(g, core.args[1])
    if core.op == "trace":
        g = _trace_gradient(core.args[0], h, hshape)
    elif core.op == "matmul" and core.shape == ():
        g = _trace_gradient(core, h, hshape)
    elif core.op == "T":
        g = _gradient_term(core.args[0], h, hshape)
    elif _is_h(core, h) and hshape == ():
        g = ex.ONE
    elif core.op == "mul":
        g = _gradient_term(core, h, hshape)
    else:
        raise UnsupportedError(f"cannot read a derivative off {ex.to_text(core)}")
    return ex.mul(*scal, g) if scal else g


def _trace_gradient(m: Expr, h: str, hshape) -> Expr:
    """G with tr(m) = tr(Gᵀ H), m a product with H (or Hᵀ) as one factor."""
    scal, core = _split_scalar(m)
    if scal:
        return ex.mul(*scal, _trace_gradient(core, h, hshape))
    if _is_h(core, h):
        return ex.eye(hshape[0]) if hshape != () else ex.ONE
    if core.op == "T":
        return _trace_gradient(core.args[0], h, hshape)
    if core.op == "had":
        a, b = core.args
        other = b if _has(a, h) else a
        inner = a if _has(a, h) else b
        if _is_h(inner, h):
            # tr(A ∘ H) = sum_i A_ii H_ii
            return ex.hadamard(ex.eye(hshape[0]), other) if hshape[1] != 1 else ex.hadamard(other, ex.ones(hshape[0]))
    if core.op != "matmul":
        raise UnsupportedError(f"cannot read a derivative off tr({ex.to_text(core)})")
    fs = core.args
    idx = [i for i, f in enumerate(fs) if _has(f, h)]
    if len(idx) != 1:
        raise UnsupportedError(f"cannot read a derivative off tr({ex.to_text(core)})")
    i = idx[0]
    f = fs[i]
    left, right = fs[:i], fs[i + 1:]
    # tr(L F R) = tr(R L F)
    rl = list(right) + list(left)
    P = ex.matmul(*rl) if len(rl) > 1 else (rl[0] if rl else None)
    if _is_h(f, h):
        # tr(P H) -> G = Pᵀ
        return ex.transpose(P) if P is not None else ex.eye(hshape[0])
    if f.op == "T" and _is_h(f.args[0], h):
        # tr(P Hᵀ) = tr(H Pᵀ) = tr(Pᵀ... ) -> G = P
        return P if P is not None else ex.eye(hshape[0])
    if f.op == "diag" and _is_h(f.args[0], h):
        # tr(P diag(h)) = sum_i P_ii h_i -> G = diag(P) as a column
        return ex.diag(P) if P is not None else ex.ones(hshape[0])
    if f.op == "had":
        a, b = f.args
        other = b if _has(a, h) else a
        inner = a if _has(a, h) else b
        if _is_h(inner, h):
            # tr(P (A ∘ H)) = sum_ij P_ji A_ij H_ij -> G = Pᵀ ∘ A
            return ex.hadamard(ex.transpose(P), other) if P is not None else ex.hadamard(ex.eye(hshape[0]), other)
        if inner.op == "T" and _is_h(inner.args[0], h):
            return ex.transpose(ex.hadamard(ex.transpose(P), ex.transpose(other)))
    raise UnsupportedError(f"cannot read a derivative off tr({ex.to_text(core)})")


def jacobian(e: Expr, h: str, n) -> Expr:
    """J with e = J h, for a vector e linear in the vector h (n×1)."""
    terms = []
    for t in _expand(e, h):
        if not _has(t, h):
            continue
        terms.append(_jacobian_term(t, h, n))
    if not terms:
        return ex.zero(ex.norm_shape(ex.as_2d(e.shape)[0], n))
    return ex.add(*terms)


def _jacobian_term(t: Expr, h: str, n) -> Expr:
    scal, core = _split_scalar(t)
    dep = [s for s in scal if _has(s, h)]
    if dep and len(dep) == 1 and not _has(core, h):
        # s(h) v: v times the row of s
        others = [s for s in scal if s is not dep[0]]
        row = ex.transpose(gradient(dep[0], h, (n, 1)))
        out = ex.matmul(core, row) if core.shape != () else ex.mul(core, row)
        return ex.mul(*others, out) if others else out
    if dep:
        raise UnsupportedError(f"cannot read a Jacobian off {ex.to_text(t)}")
    if _is_h(core, h):
        j = ex.eye(n)
    elif core.op == "matmul":
        fs = core.args
        idx = [i for i, f in enumerate(fs) if _has(f, h)]
        if len(idx) != 1:
            raise UnsupportedError(f"cannot read a Jacobian off {ex.to_text(core)}")
        i = idx[0]
        f, left, right = fs[i], fs[:i], fs[i + 1:]
        L = ex.matmul(*left) if left else None
        R = ex.matmul(*right) if right else None
        if _is_h(f, h) and (R is None or R.shape == ()):
            # L h r with r a 1×1 factor
            j = L if L is not None else ex.eye(n)
            if R is not None:
                j = ex.mul(R, j)
        elif f.op == "T" and _is_h(f.args[0], h) and R is not None and R.shape != () and R.shape[1] == 1 \
                and L is not None and L.shape != () and L.shape[1] == 1:
            # L hᵀ r = L rᵀ h
            j = ex.matmul(L, ex.transpose(R))
        elif f.op == "diag" and _is_h(f.args[0], h) and right:
            # L diag(h) r = L diag(r) h
            j = ex.matmul(*((L,) if L is not None else ()), ex.diag(ex.matmul(*right)))
        elif f.op == "T" and _is_h(f.args[0], h) and core.shape == ():
            # hᵀ r = rᵀ h
            j = ex.transpose(ex.matmul(*right))
        else:
            raise UnsupportedError(f"cannot read a Jacobian off {ex.to_text(core)}")
    elif core.op == "had":
        a, b = core.args
        other, inner = (b, a) if _has(a, h) else (a, b)
        if _is_h(inner, h):
            j = ex.diag(other)
        else:
            raise UnsupportedError(f"cannot read a Jacobian off {ex.to_text(core)}")
    elif core.op == "div" and not _has(core.args[1], h):
        j = ex.div(_jacobian_term(core.args[0], h, n), core.args[1])
    elif core.op == "diagpart" and core.args[0].op == "matmul":
        # the diagonal of L h rᵀ is diag(r) L h; of l hᵀ R it is diag(l) Rᵀ h
        fs = core.args[0].args
        idx = [i for i, f in enumerate(fs) if _has(f, h)]
        if len(idx) != 1:
            raise UnsupportedError(f"cannot read a Jacobian off {ex.to_text(core)}")
        i = idx[0]
        f = fs[i]
        L = ex.matmul(*fs[:i]) if i else None
        R = ex.matmul(*fs[i + 1:]) if i < len(fs) - 1 else None
        if _is_h(f, h) and R is not None and R.shape != () and R.shape[0] == 1:
            j = ex.matmul(ex.diag(ex.transpose(R)), L) if L is not None else ex.diag(ex.transpose(R))
        elif f.op == "T" and _is_h(f.args[0], h) and L is not None and L.shape != () and L.shape[1] == 1:
            j = ex.matmul(ex.diag(L), ex.transpose(R)) if R is not None else ex.diag(L)
        else:
            raise UnsupportedError(f"cannot read a Jacobian off {ex.to_text(core)}")
    else:
        raise UnsupportedError(f"cannot read a Jacobian off {ex.to_text(core)}")
    return ex.mul(*scal, j) if scal else j


def linear_terms(e: Expr, h: str) -> list[tuple[tuple[Expr, ...], Expr | None, bool, Expr | None]]:
    """Terms (scalars, L, transposed, R) with e = Σ scalars · L · H(ᵀ) · R, for writing tensor entries."""
    out = []
    for t in _expand(e, h):
        if not _has(t, h):
            continue
        scal, core = _split_scalar(t)
        if any(_has(s, h) for s in scal):
            raise UnsupportedError(f"cannot write {ex.to_text(t)} entry by entry")
        fs = core.args if core.op == "matmul" else (core,)
        idx = [i for i, f in enumerate(fs) if _has(f, h)]
        if len(idx) != 1:
            raise UnsupportedError(f"cannot write {ex.to_text(core)} entry by entry")
        i = idx[0]
        f = fs[i]
        if _is_h(f, h):
            transposed = False
        elif f.op == "T" and _is_h(f.args[0], h):
            transposed = True
        else:
            raise UnsupportedError(f"cannot write {ex.to_text(core)} entry by entry")
        L = ex.matmul(*fs[:i]) if i > 0 else None
        R = ex.matmul(*fs[i + 1:]) if i < len(fs) - 1 else None
        out.append((scal, L, transposed, R))
    return out


def identification_moves(e: Expr, h: str, hshape: ex.Shape, simp=None) -> list[tuple[str, Expr, Expr, Expr]]:
    """The rewrites that bring a differential ``e`` (linear in ``h``) towards tr(Gᵀ H) (gᵀ h for
    a vector h; J h for a vector ``e``), one identity at a time: (rule, term before, term after,
    the whole differential after).  Every form equals ``e``; ``gradient`` and ``jacobian`` read
    G and J off the same terms.  ``simp`` tidies each term (1ᵀ diag(u) v is uᵀ v) where the
    term keeps its form L·H·R."""
    terms = [_tidied(t, h, simp) for t in _expand(e, h) if _has(t, h)]
    moves = []
    if terms and ex.add(*terms) != e:
        moves.append(("differential_terms", e, ex.add(*terms), ex.add(*terms)))
    term_moves = _term_moves if e.shape == () else _jacobian_term_moves
    for k, t in enumerate(terms):
        for rule, after in term_moves(t, h, hshape):
            before, terms[k] = terms[k], after
            moves.append((rule, before, after, ex.add(*terms)))
    return moves


def _jacobian_term_moves(t: Expr, h: str, hshape: ex.Shape) -> list[tuple[str, Expr]]:
    """The successive forms of one term of a vector's differential on the way to J h:
    L h (rᵀ s) = (rᵀ s) L h, a scalar factor moved to the front; l hᵀ r = l rᵀ h."""
    scal, core = _split_scalar(t)
    if core.op != "matmul" or hshape == () or hshape[1] != 1:
        return []
    fs = core.args
    idx = [i for i, f in enumerate(fs) if _has(f, h)]
    if len(idx) != 1:
        return []
    i = idx[0]
    f, left, right = fs[i], fs[:i], fs[i + 1:]
    H = ex.sym(h, hshape)
    if _is_h(f, h) and right and ex.matmul(*right).shape == ():
        moved = ex.mul(*scal, ex.matmul(*right), ex.matmul(*left, H) if left else H)
        return [("scalar_commutes", moved)]
    if f.op == "T" and _is_h(f.args[0], h) and left and right and ex.matmul(*left).shape[1] == 1 \
            and ex.matmul(*right).shape[1] == 1:
        r = ex.matmul(*right)
        out = ex.matmul(*left, _t(r), H)
        return [("scalar_transpose", ex.mul(*scal, out) if scal else out)]
    return []


def _scalars_out(m: Expr) -> tuple[tuple[Expr, ...], Expr]:
    """(c A) B = c (A B): the scalar factors of a matrix product's factors, and the product without them."""
    scal: list[Expr] = []
    fs = []
    for f in m.args:
        s, core = _split_scalar(f) if f.op == "mul" and f.shape != () else ((), f)
        scal.extend(s)
        fs.append(core)
    return tuple(scal), (ex.matmul(*fs) if scal else m)


def _is_ones_row(fs: list[Expr]) -> bool:
    return len(fs) == 1 and fs[0].op == "T" and fs[0].args[0].op == "ones"


def _is_ones_col(fs: list[Expr]) -> bool:
    return len(fs) == 1 and fs[0].op == "ones"


def _tidied(t: Expr, h: str, simp) -> Expr:
    """``t`` simplified, where that keeps it a single term L·H·R."""
    if simp is None:
        return t
    s = simp(t)
    return s if _expand(s, h) == [s] else t


def _term_moves(t: Expr, h: str, hshape: ex.Shape) -> list[tuple[str, Expr]]:
    """The successive forms of one term c·(L H R) or c·tr(L H R) on the way to c·tr(P H)."""
    scal, core = _split_scalar(t)

    def wrap(c: Expr) -> Expr:
        return ex.mul(*scal, c) if scal else c

    if core.op == "div" and not _has(core.args[1], h):
        return [(r, wrap(ex.div(f, core.args[1]))) for r, f in _term_moves(core.args[0], h, hshape)]
    traced = core.op == "trace"
    m = core.args[0] if traced else core
    if m.op != "matmul" or (not traced and m.shape != ()):
        return []
    inner, m = _scalars_out(m)
    scal = scal + inner
    fs = m.args
    idx = [i for i, f in enumerate(fs) if _has(f, h)]
    if len(idx) != 1:
        return []
    i = idx[0]
    f, left, right = fs[i], list(fs[:i]), list(fs[i + 1:])
    vector = hshape != () and hshape[1] == 1
    moves: list[tuple[str, Expr]] = []
    if f.op == "T" and _is_h(f.args[0], h):
        # tr(L Hᵀ R) = tr(Rᵀ H Lᵀ); a scalar lᵀ Hᵀ r is its own transpose, rᵀ H l
        left, right = [_t(a) for a in reversed(right)], [_t(a) for a in reversed(left)]
        m = ex.matmul(*left, ex.sym(h, hshape), *right)
        moves.append(("trace_transpose" if traced else "scalar_transpose", wrap(ex.trace(m) if traced else m)))
    elif f.op == "had" and not traced and _is_ones_row(left) and _is_ones_col(right):
        # 1ᵀ (H ∘ B) 1 = Σ_ij H_ij B_ij = tr(Bᵀ H)
        a, b = f.args
        other = b if _is_h(a, h) else a
        if (_is_h(a, h) or _is_h(b, h)) and not _has(other, h):
            return [("hadamard_sum", wrap(ex.trace(ex.matmul(_t(other), ex.sym(h, hshape)))))]
        return []
    elif not _is_h(f, h):
        return []
    if (not right and (traced or vector)) or (vector and not traced):
        return moves            # already tr(P H) or gᵀ h (a vector h with a factor after it is left as it is)
    rotated = ex.matmul(*right, *left, ex.sym(h, hshape)) if (right or left) else ex.sym(h, hshape)
    moves.append(("trace_cyclic" if traced else "scalar_trace", wrap(ex.trace(rotated))))
    return moves


# --- vec: Jacobians with respect to vec X (Magnus & Neudecker (1999), ch. 2 and 9) ---------------

COMMUTATION = ("has dXᵀ inside a term that is not L dXᵀ R, where the commutation matrix (vec(dXᵀ) = "
               "K vec(dX)) would apply: not derived")


def _vec_term(t: Expr, h: str) -> Expr:
    """vec(c L H R) = c (Rᵀ ⊗ L) vec(H) (Magnus & Neudecker (1999), ch. 2); other terms stay vec(t)."""
    scal, core = _split_scalar(t)
    inner, core = _scalars_out(core) if core.op == "matmul" else ((), core)
    scal = scal + inner
    fs = core.args if core.op == "matmul" else (core,)
    idx = [i for i, f in enumerate(fs) if _has(f, h)]
    if len(idx) == 1 and fs[idx[0]].op == "T" and _is_h(fs[idx[0]].args[0], h) and 1 not in fs[idx[0]].shape:
        out = _vec_transposed_term(fs, idx[0])
        return ex.mul(*scal, out) if scal else out
    if len(idx) != 1 or not _is_h(fs[idx[0]], h):
        return _scaled(t, ex.vec)
    i = idx[0]
    H = fs[i]
    if len(fs) == 1:
        return _scaled(t, ex.vec)                       # vec(dX) itself
    p, q = H.shape if H.shape != () else (1, 1)
    L = ex.matmul(*fs[:i]) if i > 0 else ex.eye(p)
    R = ex.matmul(*fs[i + 1:]) if i < len(fs) - 1 else ex.eye(q)
    if q == 1 and R == ex.eye(q):
        out = ex.matmul(L, H) if i > 0 else H            # a column: vec(L h) = L h
    else:
        out = ex.matmul(ex.kron(_t(R) if R.shape != () else R, L), ex.vec(H))
    return ex.mul(*scal, out) if scal else out


def _ends_in(core: Expr, v: Expr) -> bool:
    return core == v or (core.op == "matmul" and core.args[-1] == v)


def _vec_transposed_term(fs: tuple, i: int) -> Expr:
    """vec(L Hᵀ R) = (Rᵀ ⊗ L) K vec(H), with the commutation matrix K vec(H) = vec(Hᵀ) for H p×q
    (Magnus & Neudecker (1999), ch. 3)."""
    H = fs[i].args[0]
    p, q = H.shape
    K = ex.commutation(p, q)
    if len(fs) == 1:
        return ex.matmul(K, ex.vec(H))
    L = ex.matmul(*fs[:i]) if i > 0 else ex.eye(q)
    R = ex.matmul(*fs[i + 1:]) if i < len(fs) - 1 else ex.eye(p)
    return ex.matmul(ex.kron(_t(R) if R.shape != () else R, L), K, ex.vec(H))


def vec_jacobian(e: Expr, h: str, hshape: ex.Shape) -> Expr:
    """J with vec(e) = J vec(H), for an array ``e`` linear in the matrix H (p×q): a term
    c L H R gives c (Rᵀ ⊗ L), by vec(L H R) = (Rᵀ ⊗ L) vec(H) (Magnus & Neudecker (1999), ch. 2)."""
    rows = ex.dim_product(*ex.as_2d(e.shape)) if e.op != "vec" else e.shape[0]
    vec_h = ex.vec(ex.sym(h, hshape))
    terms = []
    for t in _expand(ex.vec(e) if e.op != "vec" and e.shape != () else e, h):
        if not _has(t, h):
            continue
        scal, core = _split_scalar(t)
        if core.shape == () and core.op == "matmul" and core.args[0] == _t(vec_h):
            core = ex.matmul(*[_t(f) for f in reversed(core.args)])    # a scalar is its transpose
        while core.op == "vec" and core.args[0].op in ("mul", "div"):
            a = core.args[0]                                # vec(c M) = c vec(M), vec(M / c) = vec(M) / c
            if a.op == "mul":
                inner, arr = _split_scalar(a)
                if not inner:
                    break
                scal, core = scal + inner, ex.vec(arr)
            elif a.args[1].shape == () and not _has(a.args[1], h):
                scal, core = scal + (ex.power(a.args[1], ex.num(-1)),), ex.vec(a.args[0])
            else:
                break
        dep = [s for s in scal if _has(s, h)]
        if len(dep) == 1 and not _has(core, h) and core.shape != () and core.shape[1] == 1:
            # s(dX) v: v times the row of the scalar s = tr(Gᵀ dX) = vec(G)ᵀ vec(dX)
            others = [s for s in scal if s is not dep[0]]
            j = ex.matmul(core, _t(ex.vec(gradient(dep[0], h, hshape))))
            terms.append(ex.mul(*others, j) if others else j)
            continue
        if dep:
            raise UnsupportedError(f"cannot read a Jacobian with respect to vec({h[2:] or h}) off {ex.to_text(t)}")
        if core.op != "vec" and not _ends_in(core, vec_h):
            scal, core = _split_scalar(_vec_term(t, h))     # a column or a scalar: its own vec
        if core == vec_h:
            j = ex.eye(vec_h.shape[0])
        elif core.op == "matmul" and core.args[-1] == vec_h and not _has(ex.matmul(*core.args[:-1]), h):
            j = ex.matmul(*core.args[:-1])
        elif ex.has_op(core, "T") and any(n.op == "T" and _is_h(n.args[0], h) for n in ex.nodes(core)):
            raise UnsupportedError(f"{ex.to_text(core)}: the Jacobian with respect to vec({h[2:] or h}) "
                                   + COMMUTATION)
        else:
            raise UnsupportedError(f"cannot read a Jacobian with respect to vec({h[2:] or h}) off {ex.to_text(core)}")
        terms.append(ex.mul(*scal, j) if scal else j)
    if not terms:
        return ex.zero((rows, vec_h.shape[0]))
    return ex.add(*terms)
