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
    from .compare import check_answer
    from .verify import Checker, evaluate, ex_substitute_all

    parts = []
    for part in problem.parts:
        target = None
        try:
            solved = []
            for target in part.find:
                solved.append(solve_target(part, target))
            target = None
            checker = Checker(part, f"{problem.id}/{part.id}")
            results = []
            for target, r in zip(part.find, solved):
                cw = None
                if part.method == "componentwise":
                    f_expr = ex_substitute_all(part, target.of, keep=target.wrt)
                    cw = componentwise(f_expr, target.wrt, checker.shapes[target.wrt])
                    for p in checker.points:
                        err = check_entries(cw, p.env, checker.sizes, evaluate(r.result, p.env, checker.sizes))
                        if err > 1e-8:
                            raise StepgenError(f"componentwise entries disagree with {r.text} ({err:.1e})")
                check, per = checker.check_result(r)
                answer = check_answer(checker, r, target.answer) if target.answer else None
                results.append(replace(r, check=check, partial_checks=per, componentwise=cw or (), answer=answer))
            parts.append(PartSolution(part, tuple(results)))
        except ProblemTimeout:
            raise
        except StepgenError as exc:
            # where: the find entry being derived or checked, else the part
            loc = getattr(exc, "loc", None) or (target.loc if target is not None else None)   # an answer's own
            where = f"{loc}: {loc.field}: {target.text}: " if target is not None else ""
            label = f"part ({part.id}): " if problem.has_parts else ""
            parts.append(PartSolution(part, (), error=where + label + str(exc)))
    return Solution(problem, tuple(parts))


def render_outputs(sol: Solution, formats, templates: str | None = None,
                   solutions: bool = True) -> dict[str, bytes]:
    """The requested formats of one problem as bytes, keyed by extension."""
    from .render.view import solution_view

    context = {"doc": solution_view(sol), "solutions": solutions, "depth": 0, "combined": False}
    out = _render(context, "solution", formats, templates, sol.problem.id)
    if "json" in formats and solutions:
        from .render.json import trace_json
        out["json"] = trace_json(sol).encode()
    return out


def render_combined(sols: list[Solution], title: str, name: str, formats, templates: str | None = None,
                    solutions: bool = True) -> dict[str, bytes]:
    """One document for a set: a title page, the contents, one section per problem."""
    from .render.view import solution_view

    context = {"docs": [solution_view(s) for s in sols], "title": title, "solutions": solutions,
               "depth": 1, "combined": True}
    return _render(context, "combined", [f for f in formats if f != "json"], templates, name)


def _render(context: dict, base: str, formats, templates: str | None, name: str) -> dict[str, bytes]:
    from .render import templates as tpl

    out: dict[str, bytes] = {}
    context = dict(context, L=tpl.labels(templates))
    if "md" in formats:
        out["md"] = tpl.render("md", f"{base}.md.j2", context, templates).encode()
    if "tex" in formats or "pdf" in formats:
        tex = tpl.render("tex", f"{base}.tex.j2", context, templates)
        if "tex" in formats:
            out["tex"] = tex.encode()
        if "pdf" in formats:
            from .render.pdf import compile_pdf
            out["pdf"] = compile_pdf(tex, name, resources=tpl.resources(templates))
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


SHEETS = ("solutions", "exercises", "both")


@dataclass(frozen=True)
class Options:
    out: Path
    formats: tuple[str, ...] = FORMATS
    templates: str | None = None
    sheets: str = "solutions"
    timeout: float | None = TIME_LIMIT
    combine: str | None = None
    title: str | None = None
    jobs: int = 1
    force: bool = False
    shard: tuple[int, int] | None = None      # (K, N): build the files i with i % N == K - 1

    @property
    def kinds(self) -> tuple[bool, ...]:
        """Which documents: True for worked solutions, False for the exercise sheet."""
        return {"solutions": (True,), "exercises": (False,), "both": (True, False)}[self.sheets]


@dataclass
class BuildReport:
    built: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)                 # unchanged since the last build
    failed: list[tuple[str, str]] = field(default_factory=list)    # (file or id, reason)
    written: list[Path] = field(default_factory=list)


@dataclass
class _One:
    """What building one file gave: sent back from a worker process."""

    path: str
    id: str = ""
    failed: str = ""
    written: list[str] = field(default_factory=list)
    solution: Solution | None = None
    skipped: bool = False


def _stem(pid: str, solutions: bool) -> str:
    return pid if solutions else f"{pid}-sheet"


def _build_one(path: str, opts: Options, cached: dict | None, keep_solution: bool) -> _One:
    """Load, solve, verify, render and write one problem file (runs in a worker with --jobs).

    ``cached`` is the cache entry when the file and everything else are unchanged."""
    one = _One(path)
    if cached is not None and not keep_solution:
        one.id, one.skipped = cached.get("id", ""), True
        return one
    try:
        problem = load_problem(path)
    except ProblemErrors as exc:
        one.failed = exc.format(caret=False)
        return one
    one.id = problem.id
    needs_solving = any(opts.kinds) or keep_solution
    sol = solve_problem(problem, opts.timeout) if needs_solving else _unsolved(problem)
    if sol.failed:
        one.failed = "; ".join(sol.failed)
        return one
    if keep_solution:
        one.solution = sol
    if cached is not None:
        one.skipped = True
        return one
    from .render.pdf import LatexError
    for solutions in opts.kinds:
        stem = _stem(problem.id, solutions)
        try:
            data = render_outputs(sol, opts.formats, opts.templates, solutions)
        except LatexError as exc:
            # keep the .tex and TeX's log for inspection; the old PDF stays as it was
            keep = render_outputs(sol, [f for f in opts.formats if f not in ("pdf",)] + ["tex"], opts.templates,
                                  solutions)
            for ext, blob in keep.items():
                write_atomic(opts.out / f"{stem}.{ext}", blob)
            if exc.log:
                write_atomic(opts.out / f"{stem}.log", exc.log.encode())
            one.failed = str(exc)
            return one
        except StepgenError as exc:
            one.failed = str(exc)
            return one
        for ext in opts.formats:
            if ext in data:
                write_atomic(opts.out / f"{stem}.{ext}", data[ext])
                one.written.append(str(opts.out / f"{stem}.{ext}"))
    return one


def _unsolved(problem: Problem) -> Solution:
    return Solution(problem, tuple(PartSolution(p) for p in problem.parts))


def build(paths, out: Path | Options, formats=FORMATS, templates: str | None = None, solutions: bool = True,
          progress: Callable[[str], None] | None = None, timeout: float | None = TIME_LIMIT) -> BuildReport:
    """Build every problem file under ``paths``; see ``Options`` for what and how."""
    opts = out if isinstance(out, Options) else Options(
        Path(out), tuple(formats), templates, "solutions" if solutions else "exercises", timeout)
    report = BuildReport()
    files = [str(f) for f in collect_files(paths)]
    if opts.shard:
        k, n = opts.shard
        files = [f for i, f in enumerate(files) if i % n == k - 1]
    from . import cache
    keys = cache.keys(files, opts)
    cached = {} if opts.force else cache.load(opts.out)
    hits = {f: cache.hit(opts.out, cached, f, keys[f]) for f in files if f in keys}
    combined_key = cache.combined_key(keys, files, opts) if opts.combine else ""
    combined_fresh = bool(opts.combine) and all(hits.get(f) for f in files) and \
        cache.hit(opts.out, cached, cache.COMBINED, combined_key) is not None
    keep = opts.combine is not None and not combined_fresh
    results: list[_One] = []
    if opts.jobs > 1 and len(files) > 1:
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(max_workers=opts.jobs) as pool:
            futures = [pool.submit(_build_one, f, opts, hits.get(f), keep) for f in files]
            for i, fut in enumerate(futures, 1):
                results.append(fut.result())
                if progress:
                    progress(f"[{i}/{len(files)}] {files[i - 1]}")
    else:
        for i, f in enumerate(files, 1):
            if progress:
                progress(f"[{i}/{len(files)}] {f}")
            results.append(_build_one(f, opts, hits.get(f), keep))
    seen: dict[str, str] = {}
    solved: list[Solution] = []
    fresh: dict[str, dict] = {}
    for one in results:
        if one.id and one.id in seen:
            report.failed.append((one.path, f"id {one.id!r} is also used by {seen[one.id]}"))
            continue
        if one.id:
            seen[one.id] = one.path
        if one.failed:
            report.failed.append((one.path, one.failed))
            continue
        if one.skipped:
            report.skipped.append(one.id)
        else:
            report.built.append(one.id)
            report.written.extend(Path(w) for w in one.written)
            if one.path in keys:
                fresh[one.path] = {"key": keys[one.path], "id": one.id,
                                   "outputs": sorted(Path(w).name for w in one.written)}
        if one.solution is not None:
            solved.append(one.solution)
    if opts.combine is not None and not combined_fresh:
        written = _write_combined(solved, opts, report)
        if written and not report.failed:
            fresh[cache.COMBINED] = {"key": combined_key, "outputs": sorted(p.name for p in written)}
    if fresh:
        cache.save(opts.out, cached, fresh)
    return report


def _write_combined(solved: list[Solution], opts: Options, report: BuildReport) -> list[Path]:
    from .render.pdf import LatexError
    title = opts.title or opts.combine
    written: list[Path] = []
    for solutions in opts.kinds:
        stem = _stem(opts.combine, solutions)
        try:
            data = render_combined(solved, title, stem, opts.formats, opts.templates, solutions)
        except LatexError as exc:
            if exc.log:
                write_atomic(opts.out / f"{stem}.log", exc.log.encode())
            report.failed.append((stem, str(exc)))
            continue
        for ext, blob in data.items():
            write_atomic(opts.out / f"{stem}.{ext}", blob)
            written.append(opts.out / f"{stem}.{ext}")
    report.written.extend(written)
    return written
