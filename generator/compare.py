"""An answer against the derivation: equal, or what is wrong with it (``shape``, ``transposed``, ``factor``, ``sign``,
``assumption``, ``partial``, ``unknown_name``, ``syntax``).

Two expressions are compared by their values at the same random points
(``values``, with ``verify``'s evaluator: there is no second one), never
symbolically, so any correct form passes: factored or expanded, ``inv(S).T`` or
``inv(S.T)``.  ``compare`` judges the values and names the mistake where one is
easy to see; ``feedback`` says it in a sentence.  The instructor's ``answer:``
field uses this after solving (``check_answer``; its syntax and shape are
checked when the file is loaded, in ``spec.py``); grading a student's answer is
the same comparison with another text.

To add a diagnosis: try it in ``compare`` after the cheaper ones (each is a fit
of the answer to a simple transformation of the expected values), give it a
code, and a sentence in ``feedback``.  A diagnosis that needs other values
than the expected ones (``assumption``: both sides at points where a matrix is
symmetric; ``partial``: one partial of the chain, or the product in another
order) is an ``Alternative`` given to ``diagnose``, tried only when the cheap
ones found nothing; ``unknown_name`` and ``syntax`` are said of answers that do
not parse (``unreadable``).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable
from fractions import Fraction

import numpy as np

from . import expr as ex
from .errors import Location, StepgenError
from .verify import FLOOR, concrete, evaluate

TOLERANCE = 1e-8     # both sides are exact formulas: only round-off separates equal ones


@dataclass(frozen=True)
class Diagnosis:
    """The verdict on an answer: ``codes`` name its mistakes (empty when correct or not recognised)."""

    correct: bool
    codes: tuple[str, ...] = ()
    factor: Fraction | float | None = None    # with ``factor``: answer = factor × expected
    error: float = 0.0                          # largest relative error of the answer as given
    detail: str = ""                            # the sentence of an alternative's code (``explained``)


class AnswerMismatch(StepgenError):
    """The instructor's answer is not the derived result; ``loc`` is where its text is."""

    def __init__(self, message: str, loc: Location):
        super().__init__(message)
        self.loc = loc


def values(e: ex.Expr, points, sizes: dict[str, int]) -> list[np.ndarray]:
    """``e`` at each point, as 2-d arrays (a scalar is 1×1); not finite where it is undefined."""
    out = []
    for p in points:
        env = p.env if hasattr(p, "env") else p
        try:
            with np.errstate(all="ignore"):
                v = evaluate(e, env, sizes)
        except (np.linalg.LinAlgError, ZeroDivisionError, OverflowError):
            v = np.full(concrete(e.shape, sizes), np.nan)
        out.append(np.atleast_2d(np.asarray(v, dtype=float)))
    return out


def _rel_error(expected: list[np.ndarray], got: list[np.ndarray]) -> float:
    worst = 0.0
    for e, g in zip(expected, got):
        if e.shape != g.shape or not np.all(np.isfinite(g)):
            return float("inf")
        scale = max(float(np.max(np.abs(e))) if e.size else 0.0, FLOOR)
        worst = max(worst, float(np.max(np.abs(g - e))) / scale if e.size else 0.0)
    return worst


def _fit_factor(expected: list[np.ndarray], got: list[np.ndarray]) -> float | None:
    """The c with got = c × expected at every point (least squares), if it fits."""
    if any(e.shape != g.shape for e, g in zip(expected, got)):
        return None
    e = np.concatenate([a.ravel() for a in expected])
    g = np.concatenate([a.ravel() for a in got])
    norm = float(e @ e)
    if norm < FLOOR ** 2 or not np.all(np.isfinite(g)):
        return None
    c = float(e @ g) / norm
    if c == 0 or _rel_error([c * a for a in expected], got) > TOLERANCE:     # relative to c × expected already
        return None
    return c


def _nice(c: float) -> Fraction | float:
    """2, -1/2, 3/4 as fractions; anything else as a float."""
    f = Fraction(c).limit_denominator(24)
    return f if abs(float(f) - c) <= 1e-7 * max(1.0, abs(c)) else c


def compare(expected: list[np.ndarray], answer: list[np.ndarray]) -> Diagnosis:
    """Judge ``answer`` against ``expected`` (values at the same points, from ``values``)."""
    error = _rel_error(expected, answer)
    if error <= TOLERANCE:
        return Diagnosis(True, error=error)
    codes: tuple[str, ...] = ()
    if any(e.shape != a.shape for e, a in zip(expected, answer)):
        codes = ("shape",)
    transposed = [a.T for a in answer]
    for flip, candidate in ((False, answer), (True, transposed)):
        c = _fit_factor(expected, candidate)
        if c is None:
            continue
        c = _nice(c)
        codes += ("transposed",) if flip else ()
        if c == 1:
            return Diagnosis(False, codes, error=error)
        if c == -1:
            return Diagnosis(False, codes + ("sign",), error=error)
        return Diagnosis(False, codes + ("factor",), factor=c, error=error)
    return Diagnosis(False, codes, error=error)


def feedback(d: Diagnosis, expected_dims: str, answer_dims: str, what: str = "the result",
             other_layout: bool = True) -> str:
    """One sentence on a diagnosis: ``expected_dims`` and ``answer_dims`` as ``1×D``.  ``other_layout``:
    whether the transpose is what the other layout gives (not for a gradient by a matrix: M×N in both)."""
    if d.codes and (d.codes[0] in EXPLAINED or d.detail):
        rest = replace(d, codes=d.codes[1:], detail="")
        return d.detail + ("; " + feedback(rest, expected_dims, answer_dims, "that", other_layout)
                           if rest.codes else "")
    if d.correct:
        return f"it equals {what}"
    said = []
    if "shape" in d.codes:
        said.append(f"it is {answer_dims} instead of {expected_dims}" if what == "that" else
                    f"it is {answer_dims}, {what} is {expected_dims}")
    if "transposed" in d.codes:
        said.append(f"it is the transpose of {what}" + (" (the other layout)" if "shape" in d.codes and other_layout
                                                         else ""))
    if "sign" in d.codes:
        said.append("it has the opposite sign" + (" as well" if "transposed" in d.codes else ""))
    if "factor" in d.codes:
        said.append(f"it is {d.factor} times {what}" + (" transposed" if "transposed" in d.codes else ""))
    if not said:
        said.append(f"it is not finite at the random points where {what} is" if d.error == float("inf") else
                    f"it differs from {what} (relative error {d.error:.0e})")
    return "; ".join(said)


# --- diagnoses that need other values ---------------------------------------------------------

EXPLAINED = ("assumption", "partial", "unknown_name", "syntax", "structured")   # codes whose sentence is ``detail``
_FITS = ("transposed", "sign", "factor")


@dataclass(frozen=True)
class Alternative:
    """Another reading of an answer: it is ``code`` (said by ``detail``) when ``answer`` fits ``expected``,
    exactly or by one of the cheap fits (then both codes are given: ``assumption`` and ``sign``)."""

    code: str
    detail: str
    expected: list
    answer: list


def diagnose(expected: list[np.ndarray], answer: list[np.ndarray],
             alternatives: Iterable[Alternative] = ()) -> Diagnosis:
    """``compare``, then, when it names no fit, the first ``Alternative`` the answer equals, else the
    first that fits by a sign or a transpose, else by a factor (any scalar fits some factor, so it
    explains least); computed lazily: pass a generator, and a right answer costs nothing more."""
    d = compare(expected, answer)
    if d.correct or any(c in _FITS for c in d.codes):
        return d
    best, best_rank = d, 3
    for alt in alternatives:
        sub = compare(alt.expected, alt.answer)
        if not sub.correct and not any(c in _FITS for c in sub.codes):
            continue
        rank = 0 if sub.correct else 2 if "factor" in sub.codes else 1
        if rank < best_rank:
            best, best_rank = Diagnosis(False, (alt.code,) + sub.codes, sub.factor, d.error, alt.detail), rank
        if rank == 0:
            break
    return best


def unreadable(code: str, detail: str) -> Diagnosis:
    """An answer that does not parse: ``unknown_name`` or ``syntax`` (the detail says where)."""
    return Diagnosis(False, (code,), error=float("inf"), detail=detail)


# --- the structured gradient by a symmetric matrix (Matrix Cookbook (138)) -------------------------

STRUCTURED = ("it is the structured gradient for a symmetric {0} (Matrix Cookbook (138)), G + Gᵀ − G ⊙ I; "
              "stepgen's is the gradient with independent entries, G")


def symmetric_wrt(part, result) -> str | None:
    """The name of the matrix a scalar's gradient is by, when that matrix is declared symmetric: there the
    structured gradient G + Gᵀ − G ⊙ I (Cookbook (138)) is a common answer, and not stepgen's G."""
    if result.order != 1 or result.shape_of != () or getattr(result, "tensor", False):
        return None
    s = next((s for s in part.symbols if s.name == result.wrt and s.kind == "array"), None)
    if s is None or s.shape[0] != s.shape[1] or s.shape[0] == 1:
        return None
    return s.name if {"symmetric", "positive_definite"} & set(s.assume) else None


def structured(expected: list[np.ndarray]) -> list[np.ndarray]:
    """G + Gᵀ − G ⊙ I of each G: the gradient within symmetric matrices (Matrix Cookbook (138))."""
    return [g + g.T - np.diag(np.diag(g)) if g.ndim == 2 and g.shape[0] == g.shape[1] else g for g in expected]


def check_answer(checker, result, answer) -> ex.Expr:
    """The instructor's answer, if it equals ``result`` at the checker's points; else ``AnswerMismatch``."""
    d = compare(values(result.result, checker.points, checker.sizes),
                values(answer.expr, checker.points, checker.sizes))
    if d.correct:
        return answer.expr
    codes = f"[{', '.join(d.codes)}] " if d.codes else ""
    derived = ex.to_text(result.result)
    what = f"the derived {derived}" if len(derived) <= 80 else "the derived result"
    name = symmetric_wrt(checker.part, result)
    if name and not d.codes and compare(structured(values(result.result, checker.points, checker.sizes)),
                                        values(answer.expr, checker.points, checker.sizes)).correct:
        said = STRUCTURED.format(name).replace("it is", f"the answer {answer.text.strip()} is", 1)
        raise AnswerMismatch(f"[structured] {said}" + (f" = {derived}" if len(derived) <= 80 else "")
                             + ": write G as the answer", answer.loc)
    raise AnswerMismatch(f"{codes}the answer {answer.text.strip()} is wrong: "
                         + feedback(d, ex.shape_str(result.result.shape), ex.shape_str(answer.expr.shape), what,
                                    not by_matrix(result)),
                         answer.loc)


def by_matrix(result) -> bool:
    """A first derivative of a scalar by a matrix: it has the matrix's shape in either layout, so its
    transpose is a mistake, not the other layout."""
    wrt = result.shape_wrt
    return result.order == 1 and result.shape_of == () and len(wrt) == 2 and 1 not in wrt
