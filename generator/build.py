"""The pipeline: load problems, solve, verify, render, write.

``solve_problem`` runs the engine and the numerical checks for every part;
``build`` renders the requested formats and writes each file atomically
(a temporary file renamed into place), so a failure leaves the previous good
output untouched.  One bad problem never stops the others: failures are
collected and returned in the ``BuildReport``.
"""
from __future__ import annotations

import os
import signal
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from .errors import ProblemErrors, ProblemTimeout, StepgenError
from .spec import Problem, collect_files, load_problem
from .trace import PartSolution, Solution

FORMATS = ("md", "tex", "pdf", "json")
TIME_LIMIT = 60.0   # seconds per problem


@contextmanager
def time_limit(seconds: float | None, what: str):
    """Raise ``ProblemTimeout`` in the block after ``seconds`` (main thread, POSIX; else no limit)."""
    if not seconds or threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def expired(signum, frame):
        raise ProblemTimeout(f"{what}: gave up after the time limit of {seconds:g} s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def solve_problem(problem: Problem, timeout: float | None = TIME_LIMIT) -> Solution:
    """Solve and check every part; failures become the part's ``error``."""
    try:
        with time_limit(timeout, problem.id):
            return _solve(problem)
    except ProblemTimeout as exc:
        return Solution(problem, tuple(PartSolution(p, (), error=str(exc)) for p in problem.parts))
    except RecursionError:
        return Solution(problem, tuple(PartSolution(p, (), error="expression too deeply nested")
                                       for p in problem.parts))


def _solve(problem: Problem) -> Solution:
    from .calculus.chain import solve_target
    from .calculus.componentwise import check_entries, componentwise
    from .verify import Checker, evaluate, ex_substitute_all

    parts = []
    for part in problem.parts:
        try:
            solved = [solve_target(part, target) for target in part.find]
            checker = Checker(part, f"{problem.id}/{part.id}")
            results = []
            for target, r in zip(part.find, solved):
                cw = None
                if part.method == "componentwise":
                    f_expr = ex_substitute_all(part, target.of)
                    cw = componentwise(f_expr, target.wrt, checker.shapes[target.wrt])
                    for p in checker.points:
                        err = check_entries(cw, p.env, checker.sizes, evaluate(r.result, p.env, checker.sizes))
                        if err > 1e-8:
                            raise StepgenError(f"componentwise entries disagree with {r.text} ({err:.1e})")
                check, per = checker.check_result(r)
                results.append(replace(r, check=check, partial_checks=per, componentwise=cw or ()))
            parts.append(PartSolution(part, tuple(results)))
        except ProblemTimeout:
            raise
        except StepgenError as exc:
            label = f"part ({part.id}): " if problem.has_parts else ""
            parts.append(PartSolution(part, (), error=label + str(exc)))
    return Solution(problem, tuple(parts))


def render_outputs(sol: Solution, formats, templates: str | None = None,
                   solutions: bool = True) -> dict[str, bytes]:
    """The requested formats as bytes, keyed by extension."""
    from .render import templates as tpl
    from .render.view import solution_view

    out: dict[str, bytes] = {}
    context = solution_view(sol)
    context["solutions"] = solutions
    tex = None
    if "md" in formats:
        out["md"] = tpl.render("md", "solution.md.j2", context, templates).encode()
    if "tex" in formats or "pdf" in formats:
        tex = tpl.render("tex", "solution.tex.j2", context, templates)
        if "tex" in formats:
            out["tex"] = tex.encode()
    if "json" in formats and solutions:
        from .render.json import trace_json
        out["json"] = trace_json(sol).encode()
    if "pdf" in formats:
        from .render.pdf import compile_pdf
        out["pdf"] = compile_pdf(tex, sol.problem.id)
    return out


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


@dataclass
class BuildReport:
    built: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)    # (file or id, reason)
    written: list[Path] = field(default_factory=list)


def build(paths, out: Path, formats=FORMATS, templates: str | None = None, solutions: bool = True,
          progress: Callable[[str], None] | None = None, timeout: float | None = TIME_LIMIT) -> BuildReport:
    report = BuildReport()
    files = collect_files(paths)
    seen_ids: dict[str, str] = {}
    for i, f in enumerate(files, 1):
        if progress:
            progress(f"[{i}/{len(files)}] {f}")
        try:
            problem = load_problem(f)
        except ProblemErrors as exc:
            report.failed.append((str(f), exc.format(caret=False)))
            continue
        if problem.id in seen_ids:
            report.failed.append((str(f), f"id {problem.id!r} is also used by {seen_ids[problem.id]}"))
            continue
        seen_ids[problem.id] = str(f)
        sol = solve_problem(problem, timeout)
        if sol.failed:
            report.failed.append((str(f), "; ".join(sol.failed)))
            continue
        stem = problem.id if solutions else f"{problem.id}-sheet"
        try:
            data = render_outputs(sol, formats, templates, solutions)
        except StepgenError as exc:
            # keep the .tex for inspection when TeX failed
            from .render.pdf import LatexError
            if isinstance(exc, LatexError):
                keep = render_outputs(sol, [x for x in formats if x != "pdf"] + ["tex"], templates, solutions)
                for ext, blob in keep.items():
                    write_atomic(out / f"{stem}.{ext}", blob)
                if exc.log:
                    write_atomic(out / f"{stem}.log", exc.log.encode())
            report.failed.append((str(f), str(exc)))
            continue
        for ext in formats:
            if ext in data:
                path = out / f"{stem}.{ext}"
                write_atomic(path, data[ext])
                report.written.append(path)
        report.built.append(problem.id)
    return report
