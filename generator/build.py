"""The pipeline: load problems, solve, verify, render, write.

``solve_problem`` runs the engine and the numerical checks for every part;
a part that fails (for any reason) becomes that part's ``error`` and the
other parts stand.  ``build`` first loads every file (checked before it is
read) and settles duplicate ids, before anything is written; then it solves,
renders every requested format of a problem, and replaces that problem's
outputs together (``files.replace_together``): a failure, LaTeX's included,
leaves the previous outputs whole.  One bad problem never stops the others:
any exception of one problem becomes its error line in the ``BuildReport``.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from .assemble import title_of
from .errors import ProblemErrors, ProblemTimeout, StepgenError, describe, internal_error
from .files import clean_stale, replace_together, writable_folder, write_atomic  # noqa: F401 (write_atomic: API)
from .spec import Problem, collect_files, duplicates, load_problem
from .trace import PartSolution, Solution

FORMATS = ("md", "tex", "pdf", "json", "html")
TIME_LIMIT = 60.0   # seconds per problem
FAILED_DIR = "failed"   # <out>/failed/<stem>.tex and .log: what LaTeX could not compile


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
        except Exception as exc:     # noqa: BLE001 -- whatever breaks one part, the others stand
            # where: the find entry being derived or checked, else the part
            loc = getattr(exc, "loc", None) or (target.loc if target is not None else None)   # an answer's own
            where = f"{loc}: {loc.field}: {target.text}: " if target is not None else ""
            label = f"part ({part.id}): " if problem.has_parts else ""
            reason = (str(exc) if isinstance(exc, StepgenError) else "expression too deeply nested"
                      if isinstance(exc, RecursionError) else "internal error: " + describe(exc))
            parts.append(PartSolution(part, (), error=where + label + reason))
    return Solution(problem, tuple(parts))


def render_outputs(sol: Solution, formats, templates: str | None = None,
                   solutions: bool = True, problem_data: dict | None = None) -> dict[str, bytes]:
    """The requested formats of one problem as bytes, keyed by extension; a variant's JSON also
    carries ``problem_data``, the resolved problem it was built from."""
    from .render.view import solution_view

    context = {"doc": solution_view(sol, "html" in formats), "solutions": solutions, "depth": 0, "combined": False}
    out = _render(context, "solution", formats, templates, sol.problem.id)
    if "json" in formats and solutions:
        from .render.json import trace_json
        out["json"] = trace_json(sol).encode()
        if problem_data is not None:
            import json
            doc = json.loads(out["json"])
            doc["problem"] = problem_data      # last, in the file's order (define is ordered)
            out["json"] = (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()
    return out


def render_combined(sols: list[Solution], title: str, name: str, formats, templates: str | None = None,
                    solutions: bool = True) -> dict[str, bytes]:
    """One document for a set: a title page, the contents, one section per problem."""
    from .render.view import solution_view

    context = {"docs": [solution_view(s, "html" in formats) for s in sols], "title": title, "solutions": solutions,
               "depth": 1, "combined": True}
    return _render(context, "combined", [f for f in formats if f != "json"], templates, name)


def _render(context: dict, base: str, formats, templates: str | None, name: str) -> dict[str, bytes]:
    from .render import templates as tpl

    out: dict[str, bytes] = {}
    context = dict(context, L=tpl.labels(templates))
    if "md" in formats:
        out["md"] = tpl.render("md", f"{base}.md.j2", context, templates).encode()
    if "html" in formats:
        out["html"] = tpl.render("html", f"{base}.html.j2", context, templates).encode()
    if "tex" in formats or "pdf" in formats:
        tex = tpl.render("tex", f"{base}.tex.j2", context, templates)
        if "tex" in formats:
            out["tex"] = tex.encode()
        if "pdf" in formats:
            from .render.pdf import compile_pdf
            out["pdf"] = compile_pdf(tex, name, resources=tpl.resources(templates))
    return out


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
    notes: list[str] = field(default_factory=list)                 # said, not failures (variants that repeat)


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


def _same_outputs(a: str, b: str) -> bool:
    """Documents named ``a`` and ``b`` would write the same files (``id.md``, ``id-sheet.md``)."""
    return bool({_stem(a, True), _stem(a, False)} & {_stem(b, True), _stem(b, False)})


def _build_one(path: str, problem: Problem | None, opts: Options, cached: dict | None,
               keep_solution: bool, problem_data: dict | None = None) -> _One:
    """Solve, verify, render and write one problem (runs in a worker with --jobs).

    ``cached`` is the cache entry when the file and everything else are unchanged.
    Whatever goes wrong becomes the problem's error line; nothing escapes."""
    one = _One(path, problem.id if problem else (cached or {}).get("id", ""))
    try:
        _solve_and_write(one, problem, opts, cached, keep_solution, problem_data)
    except Exception as exc:     # noqa: BLE001 -- the net: one problem, one line, the build goes on
        one.failed, one.written, one.solution = internal_error(path, exc), [], None
    return one


def _solve_and_write(one: _One, problem: Problem | None, opts: Options, cached: dict | None,
                     keep_solution: bool, problem_data: dict | None = None) -> None:
    if problem is None or (cached is not None and not keep_solution):
        one.skipped = True
        return
    needs_solving = any(opts.kinds) or keep_solution
    sol = solve_problem(problem, opts.timeout) if needs_solving else _unsolved(problem)
    one.failed = "; ".join(sol.failed)
    if len(sol.failed) == len(sol.parts):
        return                      # nothing is right: nothing is written, the old outputs stay
    if keep_solution:
        one.solution = sol
    if cached is not None and not one.failed:
        one.skipped = True
        return
    from .render.pdf import LatexError
    outputs: dict[Path, bytes] = {}
    for solutions in opts.kinds:
        stem = _stem(problem.id, solutions)
        try:
            data = render_outputs(sol, opts.formats, opts.templates, solutions, problem_data)
        except LatexError as exc:
            # keep every old output of the problem; what TeX could not compile goes to failed/
            tex = render_outputs(sol, ["tex"], opts.templates, solutions)["tex"]
            failed = {opts.out / FAILED_DIR / f"{stem}.tex": tex}
            if exc.log:
                failed[opts.out / FAILED_DIR / f"{stem}.log"] = exc.log.encode()
            replace_together(failed)
            one.failed = "; ".join(filter(None, [one.failed, f"{exc} (kept the previous outputs; "
                                                 f"the .tex and TeX's log are in {opts.out / FAILED_DIR})"]))
            return
        except StepgenError as exc:
            one.failed = "; ".join(filter(None, [one.failed, str(exc)]))
            return
        outputs.update({opts.out / f"{stem}.{ext}": data[ext] for ext in opts.formats if ext in data})
    try:
        replace_together(outputs)
    except OSError as exc:
        one.failed = f"cannot write the outputs into {opts.out}: {exc.strerror or exc}"
        return
    one.written = [str(p) for p in outputs]
    for stem in {_stem(problem.id, s) for s in opts.kinds}:
        _forget_failure(opts.out, stem)


def _forget_failure(out: Path, stem: str) -> None:
    """A problem that compiles again: its earlier failed .tex and log are out of date."""
    for ext in ("tex", "log"):
        try:
            (out / FAILED_DIR / f"{stem}.{ext}").unlink()
        except OSError:
            pass
    try:
        (out / FAILED_DIR).rmdir()      # only if empty
    except OSError:
        pass


def _unsolved(problem: Problem) -> Solution:
    return Solution(problem, tuple(PartSolution(p) for p in problem.parts))


def _load_all(files: list[str], hits: dict, keep: bool, report: BuildReport) -> dict[str, Problem | None]:
    """Every file's problem (None: unchanged, its id known from the cache), before anything is
    written; a file that cannot be loaded is reported and left out."""
    loaded: dict[str, Problem | None] = {}
    for f in files:
        hit = hits.get(f)
        if hit is not None and not keep and isinstance(hit.get("id"), str):
            loaded[f] = None
            continue
        try:
            loaded[f] = load_problem(f)
        except ProblemErrors as exc:
            report.failed.append((f, exc.format(caret=False)))
        except Exception as exc:     # noqa: BLE001
            report.failed.append((f, internal_error(f, exc)))
    return loaded


def _end_with_parent(parent: int) -> None:
    """In a worker process: end when the build that started it is gone.  A build killed with
    SIGKILL cannot end its workers, which would otherwise wait for work forever."""
    def watch():
        # signals (SIGTERM, the time limit's SIGALRM) are for the main thread, whose blocking
        # calls they interrupt; one taken by this thread would wait for the main thread's turn
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGALRM})
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)
    threading.Thread(target=watch, daemon=True).start()


def _result(fut):
    """``fut.result()``, waking every half second: a signal (SIGTERM) that the kernel gives to one
    of the pool's threads is then handled by the main thread at once, not when a problem ends."""
    from concurrent.futures import wait
    while not fut.done():
        wait([fut], timeout=0.5)
    return fut.result()


def _build_parallel(todo: list[str], loaded: dict, ids: dict, opts: Options, hits: dict, keep: bool,
                    progress: Callable[[str], None] | None) -> list[_One]:
    """``_build_one`` in ``opts.jobs`` worker processes.  A worker that dies (killed by the system,
    a crash in a native library) takes the pool down with it: the files it left unfinished are
    built again one by one, each in a process of its own, so only the culprit is reported."""
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    def run(pool, f):
        return pool.submit(_build_one, f, loaded[f], opts, hits.get(f), keep)

    @contextmanager
    def workers(n):
        pool = ProcessPoolExecutor(max_workers=n, initializer=_end_with_parent, initargs=(os.getpid(),))
        try:
            yield pool
        except BaseException:
            # interrupted (Ctrl-C, SIGTERM): the workers stop now, each unwinding like this process
            # (LaTeX's process groups killed), instead of the pool finishing the whole build first
            procs = list((pool._processes or {}).values())
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.join(5)
                if proc.is_alive():      # stuck where a signal cannot reach it
                    proc.kill()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)

    results: dict[str, _One] = {}
    again: list[str] = []
    with workers(opts.jobs) as pool:
        futures = [(f, run(pool, f)) for f in todo]
        for i, (f, fut) in enumerate(futures, 1):
            try:
                results[f] = _result(fut)
            except BrokenProcessPool:
                again.append(f)
            except Exception as exc:     # noqa: BLE001
                results[f] = _One(f, ids[f], failed=internal_error(f, exc))
            if progress:
                progress(f"[{i}/{len(todo)}] {f}")
    for f in again:
        with workers(1) as pool:
            try:
                results[f] = _result(run(pool, f))
            except BrokenProcessPool:
                results[f] = _One(f, ids[f], failed=f"internal error in {f}: the process building it ended "
                                                    "abruptly (killed by the system, e.g. out of memory?)")
            except Exception as exc:     # noqa: BLE001
                results[f] = _One(f, ids[f], failed=internal_error(f, exc))
    return [results[f] for f in todo]


def build(paths, out: Path | Options, formats=FORMATS, templates: str | None = None, solutions: bool = True,
          progress: Callable[[str], None] | None = None, timeout: float | None = TIME_LIMIT) -> BuildReport:
    """Build every problem file under ``paths``; see ``Options`` for what and how.

    An output folder that cannot be written is a ``StepgenError`` before anything else."""
    opts = out if isinstance(out, Options) else Options(
        Path(out), tuple(formats), templates, "solutions" if solutions else "exercises", timeout)
    writable_folder(opts.out)
    clean_stale(opts.out)
    clean_stale(opts.out / FAILED_DIR)
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
    loaded = _load_all(files, hits, keep, report)
    ids = {f: (p.id if p is not None else hits[f]["id"]) for f, p in loaded.items()}
    dup = duplicates(ids)
    for f, first in dup.items():
        report.failed.append((f, f"id {ids[f]!r} is also used by {first}, which is built; not built "
                                 "(give this file another id)"))
    if opts.combine is not None:
        for f in files:
            if f in ids and f not in dup and _same_outputs(ids[f], opts.combine):
                dup[f] = opts.combine
                report.failed.append((f, f"id {ids[f]!r}: its outputs would be named like the combined document "
                                         f"(--combine {opts.combine}); not built (give this file another id)"))
    todo = [f for f in files if f in loaded and f not in dup]
    results: list[_One] = []
    if opts.jobs > 1 and len(todo) > 1:
        results = _build_parallel(todo, loaded, ids, opts, hits, keep, progress)
    else:
        for i, f in enumerate(todo, 1):
            if progress:
                progress(f"[{i}/{len(todo)}] {f}")
            results.append(_build_one(f, loaded[f], opts, hits.get(f), keep))
    solved: list[Solution] = []
    fresh: dict[str, dict] = {}
    for one in results:
        if one.failed:
            report.failed.append((one.path, one.failed))
        elif one.skipped:
            report.skipped.append(one.id)
        else:
            report.built.append(one.id)
            if one.path in keys:
                fresh[one.path] = {"key": keys[one.path], "id": one.id,
                                   "outputs": sorted(Path(w).name for w in one.written)}
        report.written.extend(Path(w) for w in one.written)
        if one.solution is not None:
            solved.append(one.solution)
    if opts.combine is not None and not combined_fresh:
        written = _write_combined(solved, opts, report)
        if written and not report.failed:
            fresh[cache.COMBINED] = {"key": combined_key, "outputs": sorted(p.name for p in written)}
    # forget what failed, and any other file whose outputs (same id) were written this time
    written_ids = {one.id: one.path for one in results if one.written}
    drop = {f for f, _ in report.failed} | {f for f, e in cached.items() if isinstance(e, dict)
                                           and written_ids.get(e.get("id"), f) != f}
    if fresh or drop & set(cached):
        try:
            cache.save(opts.out, cached, fresh, drop)
        except OSError as exc:
            report.failed.append((str(opts.out / cache.CACHE_NAME), f"cannot write: {exc.strerror or exc}"))
    return report


def _write_combined(solved: list[Solution], opts: Options, report: BuildReport) -> list[Path]:
    from .render.pdf import LatexError
    title = opts.title or title_of(opts.combine)
    written: list[Path] = []
    for solutions in opts.kinds:
        stem = _stem(opts.combine, solutions)
        try:
            data = render_combined(solved, title, stem, opts.formats, opts.templates, solutions)
        except StepgenError as exc:
            if isinstance(exc, LatexError) and exc.log:
                write_atomic(opts.out / FAILED_DIR / f"{stem}.log", exc.log.encode())
            report.failed.append((stem, str(exc)))
            continue
        except Exception as exc:     # noqa: BLE001
            report.failed.append((stem, internal_error(f"the combined document {stem}", exc)))
            continue
        try:
            replace_together({opts.out / f"{stem}.{ext}": blob for ext, blob in data.items()})
        except OSError as exc:
            report.failed.append((stem, f"cannot write into {opts.out}: {exc.strerror or exc}"))
            continue
        written.extend(opts.out / f"{stem}.{ext}" for ext in data)
    report.written.extend(written)
    return written


# --- variants (vary: resolved before loading, variants.py) ----------------------------------------

def build_variants(paths, opts: Options, count: int | None, seed: int, roster: tuple[str, ...] = (),
                   progress: Callable[[str], None] | None = None) -> BuildReport:
    """Per file with ``vary``: ``count`` variants ``<id>-v01…`` (or one per student of ``roster``,
    ``<id>-<student>``), each solved, checked and written like a problem, its JSON with the resolved
    ``problem``; and ``<id>-variants.csv``, the choices of each.  Files without ``vary`` are noted."""
    from .variants import plan, variants_table
    writable_folder(opts.out)
    clean_stale(opts.out)
    report = BuildReport()
    taken: dict[str, str] = {}      # file stem -> the problem file whose variant writes it
    for f in collect_files(paths):
        try:
            planned, note = plan(f, count, seed, roster)
        except ProblemErrors as exc:
            report.failed.append((str(f), exc.format(caret=False)))
            continue
        except Exception as exc:     # noqa: BLE001
            report.failed.append((str(f), internal_error(str(f), exc)))
            continue
        if planned is None:
            report.notes.append(f"{f}: no vary: field, so no variants (build it without --variants)")
            continue
        vary, base_id, variants = planned
        stems = [f"{base_id}-variants"] + [s for v in variants for s in (v.problem.id, f"{v.problem.id}-sheet")]
        clash = next((s for s in stems if s in taken), None)
        if clash:        # two files with one id: the second would overwrite the first one's variants
            said = (f"the same id as {taken[clash]}" if clash == f"{base_id}-variants"
                    else f"{clash}.* is also a variant of {taken[clash]}: the same id as a variant of it")
            report.failed.append((str(f), f"{said}; nothing written, give one of the files another id"))
            continue
        taken.update(dict.fromkeys(stems, str(f)))
        if note:
            report.notes.append(f"{f}: {note}")
        written = []          # the table names only variants whose files this build wrote
        for i, v in enumerate(variants, 1):
            if progress:
                progress(f"[{i}/{len(variants)}] {v.problem.id}")
            one = _build_one(str(f), v.problem, opts, None, False, v.data)
            if one.failed:
                report.failed.append((v.problem.id, one.failed))
            else:
                report.built.append(v.problem.id)
            if one.written:
                written.append(v)
            report.written.extend(Path(w) for w in one.written)
        if written:
            table = opts.out / f"{base_id}-variants.csv"
            write_atomic(table, variants_table(vary, written, bool(roster)).encode())
            report.written.append(table)
    return report
