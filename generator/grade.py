"""Grading: a student's answer against stepgen's derivation (``stepgen grade``).

The problem (a YAML file, or a variant's JSON carrying its resolved ``problem``) is
solved and checked as in a build, once.  Each find to grade becomes a ``Grader``: the
derived result's values at random points (``verify.Point``) at several concrete sizes.
An answer is untrusted text: it is parsed with the part's names (declared symbols and
``define`` names) by ``expr.parse``, whose limits on size, depth and numbers apply,
its arrays are bounded before they are evaluated (``sizes.expr_size_error``) and it
gets ``MAX_ANSWER_SECONDS``; it is evaluated at the same points (``compare.values``)
and judged by ``compare.diagnose``, with the alternatives that name a mistake
(``assumption``: right if a matrix, or all of them at once, were symmetric; ``transposed``: a
Hessian by vec(Xᵀ) instead of vec X; ``partial``: one partial of the
chain, or the product in another order).  An answer that does not parse is
``unknown_name`` or ``syntax`` (with the column).

Batch grading (``grade_table``) reads ``student,part,find,answer``, checks every row
before grading any, derives each find once and grades each distinct text once.

To add a diagnosis: see ``compare.py``; an alternative reading is one more generator
in ``Grader._alternatives``.
"""
from __future__ import annotations

import itertools
import json
import re
import zlib
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from . import expr as ex
from .compare import Alternative, Diagnosis, diagnose, feedback, unreadable, values
from .compare import by_matrix
from .errors import ExprError, Location, ProblemError, ProblemErrors, ProblemTimeout, StepgenError
from .spec import Part, Problem, Target, find_key, load_problem, parse_problem, scope_of

MAX_ANSWER_SECONDS = 2.0     # per distinct answer: parse, bound, evaluate
MAX_JSON_BYTES = 4 * 1024 * 1024
MAX_SYMMETRISED = 3          # matrices tried, one at a time, for ``assumption``
MAX_CHAIN_PERMUTED = 5       # factors of a chain whose other orders are tried for ``partial``
_SYMMETRIC = ("symmetric", "positive_definite", "diagonal", "orthogonal")


class GradeUsage(StepgenError):
    """The grading cannot start: an unknown part or find, a problem that does not load (exit 2)."""

    exit_code = 2


@dataclass(frozen=True)
class Verdict:
    """What a student is told: correct or not, the diagnosis codes, a sentence, both dimensions."""

    correct: bool
    diagnosis: tuple[str, ...]
    feedback: str
    expected_dims: str
    answer_dims: str | None      # None: the answer does not parse

    def to_json(self) -> dict:
        return {"correct": self.correct, "diagnosis": list(self.diagnosis), "feedback": self.feedback,
                "expected_dims": self.expected_dims, "answer_dims": self.answer_dims}


# --- the problem ------------------------------------------------------------------------------

def load(path: str | Path) -> Problem:
    """A problem file, or a variant's JSON (``"problem"``: the resolved problem in the file format)."""
    path = Path(path)
    if path.suffix.lower() != ".json":
        return load_problem(path)
    from .files import FileRefused, read_limited
    fname = str(path)
    try:
        data = json.loads(read_limited(path, MAX_JSON_BYTES).decode("utf-8"))
    except FileRefused as exc:
        raise ProblemErrors([ProblemError(Location(fname), str(exc))]) from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ProblemErrors([ProblemError(Location(fname), f"not a JSON file ({type(exc).__name__})")]) from None
    problem = data.get("problem") if isinstance(data, dict) else None
    if not isinstance(problem, dict):
        raise ProblemErrors([ProblemError(Location(fname), 'no "problem" in this JSON: only a variant\'s trace '
                                          "(stepgen build --variants/--roster) carries the problem it was built from")])
    import yaml
    try:
        text = yaml.safe_dump(problem, sort_keys=False, allow_unicode=True, width=10**6)
    except (yaml.YAMLError, RecursionError):
        raise ProblemErrors([ProblemError(Location(fname), '"problem" is not a problem in the file format')]) from None
    return parse_problem(text, f"{fname}#problem", default_id=path.stem)


def pick_part(problem: Problem, part_id: str | None) -> Part:
    if not problem.has_parts:
        if part_id:
            raise GradeUsage(f"{problem.path} has no parts; leave out --part")
        return problem.parts[0]
    ids = [p.id for p in problem.parts]
    if not part_id:
        raise GradeUsage(f"{problem.path} has parts: say which with --part ({', '.join(ids)})")
    for p in problem.parts:
        if p.id == part_id:
            return p
    raise GradeUsage(f"{problem.path} has no part {part_id!r} (parts: {', '.join(ids)})")


def pick_target(part: Part, find: str) -> Target:
    if not find.strip():          # an answers CSV may leave it out: a variant's find differs (df/dx, df/du)
        if len(part.find) == 1:
            return part.find[0]
        raise GradeUsage(f"{'part ' + part.id if part.id else 'this problem'} has several finds: say which "
                         f"({', '.join(t.text for t in part.find)})")
    key = find_key(find)
    for t in part.find:
        if key is not None and find_key(t.text) == key:
            return t
    raise GradeUsage(f"{find!r} is not a find of {'part ' + part.id if part.id else 'this problem'} "
                     f"(finds: {', '.join(t.text for t in part.find)})")


# --- one find ------------------------------------------------------------------------------------

class Grader:
    """One find of one part, derived and checked once; ``grade`` judges one answer's text."""

    def __init__(self, problem: Problem, part: Part, target: Target, result):
        from .sizes import ORDERS
        self.problem, self.part, self.target, self.result = problem, part, target, result
        self.scope = scope_of({s.name: s for s in part.symbols})
        self.shapes = {d.name: d.expr.shape for d in part.define}
        self.groups = self._points(part, ORDERS, "grade")
        self.expected = self._values(result.result, self.groups)
        self.expected_dims = ex.shape_str(result.result.shape)
        self.what = f"{target.text} in {result.layout} layout"
        if by_matrix(result):       # M×N in both layouts: the layout is no part of what it is
            self.what = target.text
        self.cache: dict[str, Verdict] = {}

    def _points(self, part: Part, orders, salt: str) -> list[tuple[dict, list]]:
        """(sizes, points) for each assignment of sizes where random points can be drawn."""
        from .errors import UnsupportedError
        from .sizes import dim_sizes
        from .verify import POINTS, Point
        groups = []
        for i, order in enumerate(orders):
            sizes = dim_sizes(part.dims, order)
            if any(sizes == g[0] for g in groups):
                continue
            rng = np.random.default_rng(zlib.crc32(f"{salt}/{self.problem.id}/{part.id}/{i}".encode()))
            try:
                groups.append((sizes, [Point(part, sizes, rng) for _ in range(POINTS)]))
            except UnsupportedError:
                continue
        if not groups:
            raise GradeUsage(f"{self.target.text}: no random point where every definition is finite was found")
        return groups

    @staticmethod
    def _values(e: ex.Expr, groups) -> list[np.ndarray]:
        return [v for sizes, points in groups for v in values(e, points, sizes)]

    def grade(self, text: str) -> Verdict:
        key = text.strip()
        if key not in self.cache:
            from .build import time_limit
            try:
                with time_limit(MAX_ANSWER_SECONDS, "the answer"):
                    self.cache[key] = self._grade(key)
            except ProblemTimeout:
                self.cache[key] = Verdict(False, (), f"the answer is too much work to evaluate (more than "
                                          f"{MAX_ANSWER_SECONDS:g} s)", self.expected_dims, None)
            except RecursionError:
                self.cache[key] = Verdict(False, ("syntax",), "the answer is nested too deeply",
                                          self.expected_dims, None)
        return self.cache[key]

    def _grade(self, text: str) -> Verdict:
        from .sizes import expr_size_error
        if not text:
            return Verdict(False, ("syntax",), "the answer is empty", self.expected_dims, None)
        try:
            answer = ex.parse(text, self.scope, self.shapes.get)
        except ExprError as exc:
            d = self._unreadable(exc)
            return Verdict(False, d.codes, d.detail, self.expected_dims, None)
        answer_dims = ex.shape_str(answer.shape)
        for sizes, _ in self.groups:
            why = expr_size_error(answer, sizes)
            if why:
                return Verdict(False, (), f"the answer cannot be evaluated: {why}", self.expected_dims, answer_dims)
        got = self._values(answer, self.groups)
        d = diagnose(self.expected, got, self._alternatives(answer))
        if not d.correct and answer.shape != self.result.result.shape and "shape" not in d.codes \
                and not d.codes[:1] == ("partial",):
            d = replace(d, codes=("shape",) + d.codes)
        return Verdict(d.correct, d.codes, feedback(d, self.expected_dims, answer_dims, self.what,
                                                    not by_matrix(self.result)),
                       self.expected_dims, answer_dims)

    def _unreadable(self, exc: ExprError) -> Diagnosis:
        where = f"column {exc.col + 1}: " if exc.col is not None else ""
        msg = exc.message
        if msg.startswith("unknown function"):
            funcs = ex.ELEMENTWISE + ex.MATRIX_FUNCS + tuple(s.name for s in self.part.symbols if s.kind == "function")
            return unreadable("unknown_name", f"{where}{msg}; the functions are {', '.join(funcs)}")
        if msg.startswith("undeclared name"):
            names = [s.name for s in self.part.symbols] + [d.name for d in self.part.define]
            return unreadable("unknown_name", f"{where}{msg}{_look_alike(msg)}; the names of this problem are "
                              f"{', '.join(names)}")
        if "×" in msg:        # the shape rules of the parser name the dimensions they refuse
            return unreadable("shape", f"{where}{msg}")
        return unreadable("syntax", f"{where}{msg}")

    # alternatives: computed only for an answer that the cheap fits do not explain
    def _alternatives(self, answer: ex.Expr):
        yield from self._partials(answer)      # first: a part of the right derivative explains most
        yield from self._symmetrised(answer)
        yield from self._all_symmetrised(answer)
        yield from self._one_hot(answer)
        yield from self._vec_transposed(answer)
        yield from self._structured(answer)

    def _structured(self, answer: ex.Expr):
        """G + Gᵀ − G ⊙ I, the gradient within symmetric matrices (Cookbook (138)), by a declared symmetric X."""
        from .compare import STRUCTURED, structured, symmetric_wrt
        name = symmetric_wrt(self.part, self.result)
        if name:
            yield Alternative("structured", STRUCTURED.format(name), structured(self.expected),
                              self._values(answer, self.groups))

    def _one_hot(self, answer: ex.Expr):
        """Right if a vector not declared one-hot were (sum(y) = 1): (p − y)ᵀ for softmax cross-entropy."""
        vectors = [(s.name,) for s in self.part.symbols if s.kind == "array" and s.shape[1] == 1
                   and s.shape[0] != 1 and "one_hot" not in s.assume]
        yield from self._assumed(answer, "one_hot", vectors[:MAX_SYMMETRISED],
                                 lambda n: f"it would be right if {n[0]} were one-hot (sum({n[0]}) = 1), which the "
                                           "problem does not assume")

    def _square(self) -> list[str]:
        """The square matrices not declared symmetric, at most MAX_SYMMETRISED."""
        return [s.name for s in self.part.symbols if s.kind == "array" and s.shape[0] == s.shape[1]
                and s.shape[0] != 1 and not set(s.assume) & set(_SYMMETRIC)][:MAX_SYMMETRISED]

    def _symmetrised(self, answer: ex.Expr):
        yield from self._assumed(answer, "symmetric", [(n,) for n in self._square()],
                                 lambda n: f"it would be right if {n[0]} were symmetric, which the problem does "
                                           "not assume")

    def _all_symmetrised(self, answer: ex.Expr):
        """Right only if all the square matrices were symmetric at once: 2AXB for d tr(AXBXᵀ)/dX needs A
        and B symmetric, and neither alone explains it."""
        square = tuple(self._square())
        if len(square) < 2:
            return
        said = ", ".join(square[:-1]) + " and " + square[-1] + (" were both" if len(square) == 2 else " were all")
        yield from self._assumed(answer, "symmetric", [square],
                                 lambda n: f"it would be right if {said} symmetric, which the problem does not assume")

    def _vec_transposed(self, answer: ex.Expr):
        """A Hessian by a matrix X taken by vec(Xᵀ) instead of vec X: the expected one with rows and
        columns permuted by the commutation matrix (K H Kᵀ)."""
        from .verify import concrete
        r = self.result
        wrt = r.shape_wrt
        if r.order != 2 or len(wrt) != 2 or 1 in wrt or answer.shape != r.result.shape:
            return
        permuted = []
        for sizes, points in self.groups:
            m, n = concrete(wrt, sizes)
            perm = np.arange(m * n).reshape(n, m).T.ravel()     # vec(Xᵀ)[i n + j] = vec(X)[j m + i]
            permuted += [v[np.ix_(perm, perm)] if v.shape == (m * n, m * n) else v
                         for v in self._values(r.result, [(sizes, points)])]
        x = r.wrt
        yield Alternative("transposed", f"it is the Hessian by vec({x}ᵀ), not by vec {x}: its rows and columns are "
                          f"permuted by the commutation matrix (K H Kᵀ)", permuted, self._values(answer, self.groups))

    def _assumed(self, answer: ex.Expr, assumption: str, sets: list[tuple[str, ...]], sentence):
        """Right if the symbols of one of ``sets`` had ``assumption`` (all of a set at once): the
        derivation's result and the answer compared at points drawn under it (drawn once per grader)."""
        from .sizes import ORDERS
        cache = self.__dict__.setdefault("_under", {})
        for names in sets:
            key = (assumption, names)
            if key not in cache:
                cache[key] = None
                decls = tuple(replace(t, assume=t.assume + (assumption,)) if t.name in names else t
                              for t in self.part.symbols)
                label = f"{assumption.replace('_', '-')}-{'-'.join(names)}"
                try:
                    groups = self._points(replace(self.part, symbols=decls), ORDERS[:1], label)
                    cache[key] = (groups, self._values(self.result.result, groups))
                except GradeUsage:
                    pass
            if cache[key] is not None:
                groups, expected = cache[key]
                yield Alternative("assumption", sentence(names), expected, self._values(answer, groups))

    def _partials(self, answer: ex.Expr):
        from .calculus.rules import transposed_in
        r = self.result
        if r.order != 1 or getattr(r, "tensor", False) or not r.partials:
            return
        got = None
        for p in r.partials:
            if p.tensor or ex.has_op(p.result, "pd") or len(r.partials) == 1:
                continue
            vals = self._values(p.result, self.groups)
            if transposed_in(r.layout, p.wrt_shape):
                vals = [v.T for v in vals]
            got = got or self._values(answer, self.groups)
            yield Alternative("partial", _partial_said(r, p), vals, got)
        if len(r.chain) > 1:
            for path in r.chain:
                if len(path) > 1 and _simple(path):
                    vals = _product([self._values(p.result, self.groups) for p in path])
                    if vals is None:
                        continue
                    got = got or self._values(answer, self.groups)
                    via = ", ".join(p.of for p in path[1:])
                    names = " ".join(f"∂{p.of}/∂{p.wrt}" for p in path)
                    yield Alternative("partial", f"it is the path through {via} alone ({names}): d{r.of}/d{r.wrt} "
                                      "is the sum over the paths",
                                      [v.T for v in vals] if transposed_in(r.layout, r.shape_wrt) else vals, got)
        if len(r.chain) != 1 or not 2 <= len(r.chain[0]) <= MAX_CHAIN_PERMUTED:
            return
        chain = r.chain[0]
        if not _simple(chain):
            return
        factors = [self._values(p.result, self.groups) for p in chain]
        flip = transposed_in(r.layout, r.shape_wrt)
        for order in itertools.permutations(range(len(chain))):
            if order == tuple(range(len(chain))):
                continue
            vals = _product([factors[i] for i in order])
            if vals is None:
                continue
            got = got or self._values(answer, self.groups)
            names = " ".join(f"∂{chain[i].of}/∂{chain[i].wrt}" for i in order)
            yield Alternative("partial", f"it is the product of the partials in another order ({names}); "
                              "in the chain rule the outer function's partial comes first",
                              [v.T for v in vals] if flip else vals, got)


def _look_alike(msg: str) -> str:
    """For a name with letters outside ASCII (a Cyrillic S pasted for S): which letters they are."""
    import unicodedata
    odd = [ch for ch in dict.fromkeys(msg.partition("'")[2].rpartition("'")[0]) if not ch.isascii()]
    return f" ({', '.join(f'{ch} is {unicodedata.name(ch, hex(ord(ch)))}' for ch in odd[:3])})" if odd else ""


def _partial_said(r, p) -> str:
    """What an answer equal to the partial ``p`` of the result ``r`` is."""
    if (p.of, p.wrt) == (r.of, r.wrt):      # the direct edge of a sum over paths
        via = ", ".join(dict.fromkeys(n for path in r.paths if len(path) > 2 for n in path[1:-1]))
        return f"it is ∂{p.of}/∂{p.wrt}, the direct dependence alone: d{r.of}/d{r.wrt} also has the path through {via}"
    return f"it is ∂{p.of}/∂{p.wrt}, one partial of the chain, not the whole derivative d{r.of}/d{r.wrt}"


def _simple(path) -> bool:
    """A path whose partials are matrices multiplied in numerator layout (no tensor, no abstract partial,
    no matrix variable)."""
    return not any(p.tensor or ex.has_op(p.result, "pd") or (p.wrt_shape != () and p.wrt_shape[1] != 1)
                   for p in path)


def _product(factors: list[list[np.ndarray]]) -> list[np.ndarray] | None:
    """The products, point by point, with 1×1 factors as scalars; None if the shapes do not conform."""
    out = []
    for k in range(len(factors[0])):
        acc = None
        for f in factors:
            v = f[k]
            if v.shape == (1, 1):
                acc = v if acc is None else acc * v[0, 0]
            elif acc is None or acc.shape == (1, 1):
                acc = v if acc is None else v * acc[0, 0]
            elif acc.shape[1] == v.shape[0]:
                acc = acc @ v
            else:
                return None
        out.append(acc)
    return out


# --- problems, finds, answers -------------------------------------------------------------------

class Session:
    """A problem solved once, with a ``Grader`` per find asked for."""

    def __init__(self, problem: Problem, timeout: float | None = None):
        from .build import TIME_LIMIT, solve_problem
        self.problem = problem
        self.solution = solve_problem(problem, timeout or TIME_LIMIT)
        self.graders: dict[tuple[str, str], Grader] = {}

    def grader(self, part_id: str | None, find: str) -> Grader:
        part = pick_part(self.problem, part_id)
        target = pick_target(part, find)
        key = (part.id, target.text)
        if key not in self.graders:
            ps = next(s for s in self.solution.parts if s.part is part)
            if ps.error:
                raise GradeUsage(f"cannot grade: stepgen could not derive this problem: {ps.error}")
            result = next(r for r in ps.results if (r.of, r.wrt, r.order) == (target.of, target.wrt, target.order))
            if getattr(result, "tensor", False):
                raise GradeUsage(f"{target.text} is a tensor, which no expression of the language writes: "
                                 "it cannot be answered as one")
            self.graders[key] = Grader(self.problem, part, target, result)
        return self.graders[key]


RESULT_COLUMNS = ("student", "part", "find", "correct", "diagnosis", "feedback")


@dataclass(frozen=True)
class Graded:
    student: str
    part: str
    find: str
    verdict: Verdict
    index: int = 0           # the find's place in its part: variants' finds (df/dx, df/du) are one exercise


def _graded(student: str, g: Grader, answer: str) -> Graded:
    index = next(i for i, t in enumerate(g.part.find) if t is g.target)
    return Graded(student, g.part.id, g.target.text, g.grade(answer), index)


def grade_table(session: Session, path: str) -> list[Graded]:
    """Every row of an answers CSV (``student,part,find,answer``), checked before any is graded."""
    from .csvfiles import read_table
    table = read_table(path, ANSWER_COLUMNS, ("part", "find"), lenient=("answer",))
    errors, todo = _checked(session, table, table.rows)
    errors = list(table.errors) + errors
    if errors:
        raise ProblemErrors(sorted(errors, key=lambda e: e.loc.line))
    return [_graded(student, g, answer) for _, student, g, answer in todo]


ANSWER_COLUMNS = ("student", "answer")      # part and find may be left out (one part, one find)


def _checked(session: Session, table, rows) -> tuple[list, list]:
    """The errors of ``rows`` (an empty student, an unknown part or find) and what to grade:
    (line, student, grader, answer text); each find is derived here, once."""
    errors, todo = [], []
    for row in rows:
        student = row.cells["student"].strip()
        if not student:
            errors.append(table.error(row, "student", "the student cell is empty"))
            continue
        part_id = row.cells.get("part", "").strip() or None
        try:
            pick_part(session.problem, part_id)
        except GradeUsage as exc:
            errors.append(table.error(row, "part", str(exc).replace("leave out --part", "leave the part cell empty")
                                      .replace("--part", "the part column")))
            continue
        try:
            g = session.grader(part_id, row.cells.get("find", "").strip())
        except GradeUsage as exc:
            errors.append(table.error(row, "find", str(exc)))
            continue
        todo.append((row.line, student, g, row.cells["answer"]))
    return errors, todo


def grade_roster(variants_csv: str, answers: str, out: str | None = None) -> list[Graded]:
    """A class on its variants: ``<id>-variants.csv`` of a ``--roster`` build says which variant each
    student has (its ``<variant id>.json`` beside it); each answer is graded against its student's.
    Every row is checked (every variant loaded, every find derived) before any is graded."""
    from .csvfiles import read_table
    roster = read_table(variants_csv, ("student", "id"))
    folder = Path(variants_csv).parent
    own = _variant_ids(roster)
    refuse_overwrite(out, [variants_csv, answers] + [folder / f"{pid}.json" for pid in own.values()])
    table = read_table(answers, ANSWER_COLUMNS, ("part", "find"), lenient=("answer",))
    errors, todo = list(table.errors), []
    by_variant: dict[str, list] = {}
    for row in table.rows:
        pid = own.get(row.cells["student"].strip())
        if pid is None:
            errors.append(table.error(row, "student", f"{row.cells['student'].strip()[:40]!r} is not in "
                                      f"{variants_csv}"))
            continue
        by_variant.setdefault(pid, []).append(row)
    for pid, rows in by_variant.items():
        try:
            session = Session(load(folder / f"{pid}.json"))
        except (ProblemErrors, GradeUsage) as exc:
            errors += [table.error(r, "student", f"the variant {pid}: {str(exc).splitlines()[0]}") for r in rows]
            continue
        e, t = _checked(session, table, rows)
        errors += e
        todo += t
    if errors:
        raise ProblemErrors(sorted(errors, key=lambda e: e.loc.line))
    return [_graded(student, g, answer) for _, student, g, answer in sorted(todo, key=lambda t: t[0])]


def _variant_ids(roster) -> dict[str, str]:
    """student -> variant id of a variants table; a row that could name no variant's file (an empty
    student, one twice, an id that is not a file name in the table's folder) is an error at its line."""
    errors, own, lines = list(roster.errors), {}, {}
    for r in roster.rows:
        student, pid = r.cells["student"].strip(), r.cells["id"].strip()
        if not student:
            errors.append(roster.error(r, "student", "the student cell is empty"))
        elif student in lines:
            errors.append(roster.error(r, "student", f"{student} is also on line {lines[student]}"))
        elif not re.match(r"^[a-z0-9][a-z0-9._-]*$", pid):
            errors.append(roster.error(r, "id", f"{pid[:40]!r} is not a variant's id (a file name "
                                       "<id>.json beside the table: lower-case letters, digits, '.', '_', '-')"))
        else:
            own[student], lines[student] = pid, r.line
    if errors:
        raise ProblemErrors(sorted(errors, key=lambda e: e.loc.line))
    return own


def refuse_overwrite(out: str | None, inputs) -> None:
    """``--out`` must not name a file the grading reads (the answers, the problem, a variant)."""
    if out is None:
        return
    target = Path(out).resolve()
    for f in inputs:
        if Path(f).resolve() == target or (target.is_file() and Path(f).is_file() and target.samefile(f)):
            raise GradeUsage(f"--out {out} would overwrite {f}, which the grading reads: write the results "
                             "to another file")


def results_csv(graded: list[Graded]) -> str:
    from .csvfiles import table_text
    return table_text(RESULT_COLUMNS, ((g.student, g.part, g.find, "true" if g.verdict.correct else "false",
                                        " ".join(g.verdict.diagnosis), g.verdict.feedback) for g in graded))


def summary(graded: list[Graded]) -> list[str]:
    """Per find: how many are correct, and the mistakes from the most common ("12 of 40 transposed").
    The finds of a class on variants (df/dx for some, df/du for others) are counted as one.  A
    student who answered one find more than once is counted once, with the last answer (each is
    graded in the results); the line says how many earlier answers it left out."""
    groups: dict[tuple[str, int], list[Verdict]] = {}
    finds: dict[tuple[str, int], dict[str, None]] = {}
    last = {(g.student, g.part, g.index): g for g in graded}
    earlier = Counter((g.part, g.index) for g in graded)
    earlier.subtract(Counter((g.part, g.index) for g in last.values()))
    for g in last.values():
        groups.setdefault((g.part, g.index), []).append(g.verdict)
        finds.setdefault((g.part, g.index), {})[g.find] = None
    lines = []
    for key, vs in groups.items():
        part, find = key[0], " or ".join(sorted(finds[key]))
        n = len(vs)
        codes = Counter(c for v in vs for c in set(v.diagnosis))
        unexplained = sum(1 for v in vs if not v.correct and not v.diagnosis)
        said = [f"{sum(v.correct for v in vs)} of {n} correct"]
        said += [f"{k} of {n} {code}" for code, k in sorted(codes.items(), key=lambda kv: (-kv[1], kv[0]))]
        if unexplained:
            said.append(f"{unexplained} of {n} wrong otherwise")
        if earlier[key]:
            said.append(f"{earlier[key]} earlier answer{'s' if earlier[key] > 1 else ''} of a student "
                        "who answered again not counted")
        lines.append(f"{'part ' + part + ' ' if part else ''}{find}: " + ", ".join(said))
    return lines
