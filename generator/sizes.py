"""Concrete sizes for the numerical checks, and the bound on every array they allocate.

Each dim gets a small concrete size (3, 4, 2, 5, ...: distinct, so a transposition
cannot pass by accident); a literal size is kept up to ``MAX_LITERAL``, a larger one
is checked at a small stand-in (the identities hold at any size).  The size of every
array is computed from the shapes *before* anything is allocated, and an array of
more than ``MAX_ENTRIES`` entries is refused: ``check`` (through ``spec``) and the
checker of ``build`` (through ``verify``) call the same ``part_size_errors``, so both
refuse the same problems for the same reason.
"""
from __future__ import annotations

from math import prod
from typing import Iterable, Mapping

from . import expr as ex

SIZES = (3, 4, 2, 5, 6, 7, 8, 9)
ORDERS = (SIZES, SIZES[1::-1] + SIZES[2:], tuple(reversed(SIZES)))   # tried in turn by the checker
MAX_LITERAL = 16        # literal sizes up to this are checked as written (kron(eye(3), eye(3)) is 9×9)
MAX_ENTRIES = 10**6     # entries of one array, or of one Jacobian, in a check


def dim_sizes(dims: Iterable[str], order=SIZES) -> dict[str, int]:
    return {d: order[i % len(order)] + (i // len(order)) for i, d in enumerate(dims)}


def size(d: ex.Dim, sizes: Mapping[str, int]) -> int:
    if isinstance(d, int):
        # the same literal always maps to the same size
        return d if d <= MAX_LITERAL else MAX_LITERAL // 2 + d % 3
    if "*" in d:
        return prod(size(int(p) if p.isdigit() else p, sizes) for p in d.split("*"))
    return sizes[d]


def concrete(shape: ex.Shape, sizes: Mapping[str, int]) -> tuple[int, ...]:
    return tuple(size(d, sizes) for d in shape)


def entries(shape: ex.Shape, sizes: Mapping[str, int]) -> int:
    return prod(concrete(shape, sizes))


def too_large(n: int, what: str) -> str:
    return f"{what} would have {n:,} entries at the check's sizes (at most {MAX_ENTRIES:,})"


def expr_size_error(e: ex.Expr, sizes: Mapping[str, int]) -> str:
    """Why ``e`` cannot be evaluated at ``sizes`` (an array too large, a literal size that the
    check's stand-in makes disagree with a product of sizes), or ``""``.  Shared subtrees once."""
    for n in ex.nodes(e):
        count = entries(n.shape, sizes)
        if count > MAX_ENTRIES:
            return too_large(count, ex.to_text(n)[:60])
        if n.op == "kron":
            (ra, ca), (rb, cb) = (ex.as_2d(a.shape) for a in n.args)
            want = (size(ra, sizes) * size(rb, sizes), size(ca, sizes) * size(cb, sizes))
            if want != concrete(ex.as_2d(n.shape), sizes):
                return (f"{ex.to_text(n)[:60]} is {ex.shape_str(n.shape)}, a literal size above "
                        f"{MAX_LITERAL} that the numerical check cannot reproduce at its small sizes; "
                        "declare the dims by name")
    return ""


def part_size_errors(dims: Iterable[str], defs: Mapping[str, ex.Expr],
                     wrts: Iterable[tuple[str, ex.Shape]]) -> list[tuple[str, str]]:
    """(define name, reason) for each definition that the checks cannot evaluate at one of the
    size assignments they try.  ``wrts`` are the variables (name, shape) of the derivatives to
    find: the Jacobian of every definition that depends on one is computed by differences, and
    its entries are bounded too."""
    dims, wrts = list(dims), list(wrts)
    deps = {n: _depends(n, defs) for n in defs}
    out: dict[str, str] = {}
    for order in ORDERS:
        sizes = dim_sizes(dims, order)
        for name, e in defs.items():
            if name in out:
                continue
            why = expr_size_error(e, sizes)
            for wrt, wrt_shape in wrts:
                count = entries(e.shape, sizes) * entries(wrt_shape, sizes)
                if not why and wrt in deps[name] and count > MAX_ENTRIES:
                    why = too_large(count, f"the Jacobian d{name}/d{wrt}")
            if why:
                out[name] = why
    return list(out.items())


def _depends(name: str, defs: Mapping[str, ex.Expr]) -> set[str]:
    """The names ``name`` depends on through the definitions."""
    out: set[str] = set()
    stack = [name]
    while stack:
        for m in ex.free_symbols(defs[stack.pop()]):
            if m not in out:
                out.add(m)
                if m in defs:
                    stack.append(m)
    return out
