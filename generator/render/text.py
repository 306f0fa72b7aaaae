"""``stepgen show``: the worked solution as plain text for a terminal."""
from __future__ import annotations

import textwrap

from .. import expr as ex
from ..calculus.rules import TITLES
from ..printing import kink_places
from ..trace import Solution, Step


def _step_lines(step: Step, indent: int) -> list[str]:
    pad = "  " * indent
    title = TITLES.get(step.rule, step.rule)
    cite = f" [{step.cites}]" if step.cites else ""
    lhs = f"d({ex.to_text(step.of)})" if step.direction else f"∂/∂{step.wrt} ({ex.to_text(step.of)})"
    out = _wrapped(f"{pad}- {title}{cite}: {lhs} = {ex.to_text(step.result)}", pad + "    ")
    for s in step.substeps:
        out.extend(_step_lines(s, indent + 1))
    return out


def _rewrite_lines(steps) -> list[str]:
    """The named rewrites to the textbook's form, one line each: = after  (Title)."""
    return [line for st in steps for line in
            _wrapped(f"    = {ex.to_text(st.result)}  ({TITLES.get(st.rule, st.rule)})", "        ")]


WIDTH = 100     # columns of a terminal line; longer lines wrap at the spaces around operators


def _wrapped(line: str, indent: str) -> list[str]:
    return textwrap.wrap(line, WIDTH, subsequent_indent=indent, break_long_words=False,
                         break_on_hyphens=False) or [line]


KINK_TEXT = ("at a kink: step(u) = 1 where u > 0, else 0 (0 also at u = 0, where relu, abs and max have no "
             "derivative: a subgradient); sign(0) = 0")


def _kink_text(sol: Solution) -> str:
    """The convention at a kink, at this problem's own kinks: "at a kink (w.T @ x + b = 0): ..."."""
    shown = [r.display if r.display is not None else r.result for ps in sol.parts for r in ps.results]
    places = kink_places(shown) or kink_places([q.result for ps in sol.parts for r in ps.results
                                                for q in r.partials])
    where = ", ".join(f"{ex.to_text(a)} = {ex.to_text(b)}" for a, b in places)
    return KINK_TEXT.replace("at a kink:", f"at a kink ({where}):" if where else "at a kink:")


def _kinked(e: ex.Expr) -> bool:
    return any(n.op == "fn" and n.name in ("step", "sign") for n in ex.nodes(e))


def solution_text(sol: Solution) -> str:
    p = sol.problem
    kink_said = False
    lines = [p.title or p.id, "=" * len(p.title or p.id)]
    if p.source:
        lines.append(f"Source: {p.source}")
    if p.statement:
        lines += ["", p.statement]
    for ps in sol.parts:
        part = ps.part
        lines.append("")
        if p.has_parts:
            lines += [f"Part ({part.id})", "-" * (len(part.id) + 7)]
            if part.statement:
                lines.append(part.statement)
        for d in part.define:
            lines.append(f"  {d.name} = {ex.to_text(d.expr)}")
        if ps.error:
            lines.append(f"  NOT SOLVED: {ps.error}")
            continue
        derived = set()
        for r in ps.results:
            lines += ["", f"{r.text}  ({r.dims}, {r.layout} layout)"]
            for path in r.paths:
                lines.append("  chain: " + " → ".join(reversed(path)))
            for part_ in reversed(r.partials):
                kind = "tensor; differential " if part_.tensor else ""
                key = (part_.of, part_.wrt, part_.expr, part_.result)
                again = "  (derived above)" if key in derived else ""
                lines += _wrapped(f"  ∂{part_.of}/∂{part_.wrt}  [{part_.step.dims}]  {kind}= {ex.to_text(part_.result)}"
                                  f"{again}", "      ")
                if not again:
                    lines.extend(_step_lines(part_.step, 2))
                    lines.extend(_rewrite_lines(part_.rewrites))
                derived.add(key)
            if r.rewrites:
                lines += _wrapped(f"  multiplied: {r.text} = {ex.to_text(r.rewrites[0].of)}", "      ")
                lines.extend(_rewrite_lines(r.rewrites))
            if r.hessian_rewrites:
                lines += _wrapped(f"  Hessian: {r.text} = {ex.to_text(r.hessian_rewrites[0].of)}", "      ")
                lines.extend(_rewrite_lines(r.hessian_rewrites))
            label = "differential" if r.tensor else "result"
            shown = r.display if r.display is not None else r.result
            lines += _wrapped(f"  {label}: {r.text} = {ex.to_text(shown)}", "      ")
            if r.answer is not None and not r.answer_same:
                lines.append(f"  {' ' * len(label)}  {' ' * len(r.text)} = {ex.to_text(r.answer)}  (the textbook's form)")
            elif r.answer is not None:
                lines.append(f"  {' ' * len(label)}  (the textbook's form)")
            for name, value in r.kept:
                lines += _wrapped(f"    where {name} = {ex.to_text(value)}", "      ")
            if not kink_said and any(_kinked(e) for e in [r.result] + [q.result for q in r.partials]):
                lines += _wrapped(f"  {_kink_text(sol)}", "      ")
                kink_said = True
            if r.check:
                sizes = ", ".join(f"{n}={v}" for n, v in r.check.sizes) or "scalars"
                lines.append(f"  checked: {r.check.points} random points, {sizes}; "
                             f"largest relative error {r.check.max_rel_error:.0e}")
    return "\n".join(lines)
