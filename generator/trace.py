"""The data that flows from the engine to the renderers: frozen, comparable, serialisable.

A ``Step`` is one application of one named rule; a ``Partial`` is one edge
of the ``define`` graph with the step that derived it; a ``Result`` is one
derivative of ``find`` with its chain, product, simplification and check; a
``PartSolution`` and a ``Solution`` group them as the problem file does.
Renderers read these and nothing else.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .expr import Expr, Shape, to_text


@dataclass(frozen=True)
class Step:
    rule: str                   # stable id; also picks the template partial
    of: Expr
    wrt: str
    result: Expr
    dims: str                   # e.g. 1×D
    cites: str = ""             # "MML (5.107); Matrix Cookbook (81)"
    note: str = ""              # why, with {0} {1} ... standing for note_args
    note_args: tuple[Expr, ...] = ()
    substeps: tuple["Step", ...] = ()
    wrt_shape: Shape = ()
    direction: str = ""         # set for a differential: the result is d(of) in this direction
    label: str = ""             # the name ``of`` goes by in the document (dL = …) when it is not written out


@dataclass(frozen=True)
class Check:
    """A numerical comparison with central finite differences."""

    sizes: tuple[tuple[str, int], ...]
    points: int
    max_rel_error: float
    ok: bool


@dataclass(frozen=True)
class Partial:
    of: str
    wrt: str
    of_shape: Shape
    wrt_shape: Shape
    expr: Expr                  # the definition differentiated
    step: Step
    tensor: bool = False        # a tensor-valued derivative: step.result is the differential
    rewrites: tuple[Step, ...] = ()     # named rewrites of step.result into the textbook's form

    @property
    def result(self) -> Expr:
        return self.rewrites[-1].result if self.rewrites else self.step.result


@dataclass(frozen=True)
class Result:
    of: str
    wrt: str
    order: int
    text: str                   # as written in find
    layout: str
    paths: tuple[tuple[str, ...], ...]
    partials: tuple[Partial, ...]
    chain: tuple[tuple[Partial, ...], ...]     # per path, outermost first
    product: Expr               # the chain with the partials' results, unevaluated names
    substitutions: tuple[tuple[str, Expr], ...]
    expanded: Expr              # multiplied out, in the declared symbols, before simplifying
    result: Expr                # final
    dims: str
    shape_of: Shape
    shape_wrt: Shape
    assumptions_used: tuple[tuple[str, str], ...] = ()
    expand_product: bool = True
    extra_steps: tuple[Step, ...] = ()         # e.g. the Hessian's second differentiation
    componentwise: tuple = ()                  # written-out objects (method: componentwise)
    check: Check | None = None
    partial_checks: tuple[tuple[str, float], ...] = ()
    tensor: bool = False                       # result is the differential in ``direction``
    direction: str = ""
    answer: Expr | None = None                 # the instructor's form (answer:), checked equal to result
    rewrites: tuple[Step, ...] = ()            # named rewrites, product -> result (-> gradient for a Hessian)
    hessian_rewrites: tuple[Step, ...] = ()    # named rewrites after the second differentiation
    kept: tuple[tuple[str, Expr], ...] = ()    # define names kept in the display: (name, its value)
    display: Expr | None = None                # ``result`` with the ``kept`` names; None when none is kept
    symmetric: tuple[Step, ...] = ()           # M⁻ᵀ = M⁻¹ used for matrices symmetric by construction
    chain_steps: tuple[Step, ...] = ()         # products through a matrix or a tensor link

    @property
    def answer_same(self) -> bool:
        """The instructor's answer is the derived form as printed (2 (a)ᵀ X and (2 a)ᵀ X alike)."""
        return self.answer is not None and to_text(self.answer) in {
            to_text(e) for e in (self.result, self.display) if e is not None}


@dataclass(frozen=True)
class PartSolution:
    part: object                # spec.Part
    results: tuple[Result, ...] = ()
    error: str = ""             # set when the part could not be solved


@dataclass(frozen=True)
class Solution:
    problem: object             # spec.Problem
    parts: tuple[PartSolution, ...] = field(default_factory=tuple)

    @property
    def failed(self) -> list[str]:
        return [p.error for p in self.parts if p.error]
