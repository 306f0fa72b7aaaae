"""The machine-readable trace, ``"format": "stepgen-trace/1"`` (SPEC §4).

Per part: the ``steps`` (rule, text, LaTeX, dimensions, nested substeps) and
the ``results``, each with ``of``, ``wrt``, ``layout``, ``dims``, ``shape``,
``expr`` (the expression language, which parses again), ``latex``,
``partials`` and ``check``.  Keys are written sorted, so the file is
byte-identical from run to run.
"""
from __future__ import annotations

import json

from .. import __version__
from .. import expr as ex
from ..calculus.chain import flipped
from ..calculus.rules import TITLES, transposed_in
from ..calculus.simplify import simplify
from ..printing import LatexPrinter
from ..trace import Result, Solution, Step
from .view import names_of, part_error
from .view import _layout as layout_dims     # dims as the document labels them


def _shape(shape) -> list[str]:
    return [str(d) for d in shape]


def _step(step: Step, P: LatexPrinter) -> dict:
    return {
        "rule": step.rule,
        "title": TITLES.get(step.rule, step.rule),
        "cites": step.cites,
        "of": ex.to_text(step.of),
        "wrt": step.wrt,
        "text": f"{_lhs(step)} = {ex.to_text(step.result)}",
        "differential": bool(step.direction),
        "latex": rf"\frac{{\partial}}{{\partial {P.names.get(step.wrt, step.wrt)}}}\left({P(step.of)}\right) = {P(step.result)}",
        "dims": step.dims,
        "substeps": [_step(s, P) for s in step.substeps],
    }


def _lhs(step: Step) -> str:
    """d[of] for a differential, d/dx [of] otherwise; dL, dL/dx when the step names ``of`` (its label)."""
    if step.label:
        return f"d{step.label}" if step.direction else f"d{step.label}/d{step.wrt}"
    return f"d[{ex.to_text(step.of)}]" if step.direction else f"d/d{step.wrt} [{ex.to_text(step.of)}]"


def _result(r: Result, P: LatexPrinter, declared: frozenset = frozenset()) -> dict:
    """``declared``: the problem's names; a result that needs a built-in function of one of those
    names has no text form there (its ``expr`` is null)."""
    partials = []
    for p in r.partials:
        flip = transposed_in(r.layout, p.wrt_shape) and not p.tensor
        res = simplify(ex.transpose(p.result)) if flip else p.result
        partials.append({
            "of": p.of, "wrt": p.wrt, "layout": r.layout,
            "dims": layout_dims(p.step.dims, flip, r.layout),
            "shape": {"of": _shape(p.of_shape), "wrt": _shape(p.wrt_shape)},
            "expr": None if p.tensor or ex.has_op(res, "pd") or ex.shadowed_in_text(res, declared)
            else ex.to_text(res),
            "differential": ex.to_text(p.step.result) if p.tensor else None,
            "latex": P(res),
            "rule": p.step.rule,
            "rewrites": [_rewrite(s) for s in (flipped(p.rewrites, simplify) if flip else p.rewrites)],
            "check": _rounded(dict(r.partial_checks).get(f"{p.of}/{p.wrt}")),
        })
    check = None
    if r.check:
        check = {"sizes": dict(r.check.sizes), "points": r.check.points,
                 "max_rel_error": _rounded(r.check.max_rel_error), "ok": r.check.ok}
    return {
        "of": r.of, "wrt": r.wrt, "order": r.order, "find": r.text, "layout": r.layout,
        "dims": r.dims if r.order == 2 else layout_dims(r.dims, False, r.layout),
        "shape": {"of": _shape(r.shape_of), "wrt": _shape(r.shape_wrt)},
        "expr": None if r.tensor or ex.has_op(r.result, "pd") or ex.shadowed_in_text(r.result, declared)
        else ex.to_text(r.result),
        "differential": ex.to_text(r.result) if r.tensor else None,
        "latex": P(r.result),
        "answer": None if r.answer is None else ex.to_text(r.answer),
        "product": ex.to_text(r.product),
        "expand_product": r.expand_product,
        "assumptions_used": [f"{n}: {a}" for n, a in r.assumptions_used],
        "partials": partials,
        "check": check,
        # the simplifier's named rewrites, product -> result, and the names kept for display
        "rewrites": [_rewrite(s) for s in r.rewrites + r.hessian_rewrites],
        "display": None if r.display is None else ex.to_text(r.display),
        "where": {n: ex.to_text(e) for n, e in r.kept},
    }


def declared_names(part) -> frozenset:
    return frozenset([s.name for s in part.symbols] + [d.name for d in part.define])


def _rewrite(s: Step) -> dict:
    return {"rule": s.rule, "title": TITLES.get(s.rule, s.rule), "cites": s.cites,
            "before": ex.to_text(s.of), "after": ex.to_text(s.result)}


def _rounded(x: float | None) -> float | None:
    """One significant digit: enough to read, stable from machine to machine."""
    return None if x is None else float(f"{x:.0e}")


def trace_json(sol: Solution) -> str:
    p = sol.problem
    parts = []
    for ps in sol.parts:
        P = LatexPrinter(names_of(ps.part))
        steps = []
        for r in ps.results:
            for partial in r.partials:
                steps.append(_step(partial.step, P))
            steps.extend(_step(s, P) for s in r.chain_steps + r.extra_steps)
        parts.append({
            "id": ps.part.id,
            "method": ps.part.method,
            "define": {d.name: d.text for d in ps.part.define},
            "steps": steps,
            "results": [_result(r, P, declared_names(ps.part)) for r in ps.results],
            "error": part_error(ps.error, p.path) if ps.error else None,
        })
    doc = {
        "format": "stepgen-trace/1",
        "generator": f"stepgen {__version__}",
        "id": p.id,
        "title": p.title,
        "source": p.source,
        "parts": parts,
    }
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
