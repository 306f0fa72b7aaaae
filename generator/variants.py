"""Variants: a problem's ``vary:`` placeholders resolved into ordinary problems, before loading.

A problem file may declare placeholders with their choices::

    vary:
      g: [exp, tanh, sigmoid]     # a function
      c: [2, 3, 5]                # a number
      v: [x, u]                   # a symbol name

and write ``{g}``, ``{c}``, ``{v}`` in its texts: define, find, answer, symbols (a key
written ``"{v}": [D]``), statement, hint, title.  A *variant* is one choice per
placeholder: the file's text with every placeholder replaced where it is written (in the
scalars of the YAML tree, never inside ``vary``), then loaded by ``spec`` like any problem.
An error of a variant is reported at its place in the original file (``_Edits`` maps
columns back) with the choices that caused it.  Nothing below ``spec`` knows about
variants; ``spec.load_problem`` loads a file with ``vary`` as its first choices.

``plan`` picks the variants of a build: ``--variants N --seed S`` samples N distinct
combinations (all of them, then again, when there are fewer), ``--roster`` gives each
student the combination picked by a hash of the seed and the student id.  Both depend on
the seed only (``random.Random`` on an int, SHA-256), never on ``PYTHONHASHSEED``.
``check_combinations`` loads every combination up to ``MAX_CHECKED`` (beyond, each choice
at least once, changed one at a time, and a seeded sample) and names the choices that break the problem.

To add a kind of choice: accept it in ``_choice`` and say how it is written into an
expression in ``_written``.
"""
from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass, replace
from math import prod
from pathlib import Path

import yaml

from .errors import Location, ProblemError, ProblemErrors
from .printing import function_latex

PLACEHOLDER = re.compile(r"\{([A-Za-z][A-Za-z0-9_]*)\}")
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)?$")
NUMBER = re.compile(r"^-?(\d+(\.\d+)?|\.\d+)(/\d+)?$")
MAX_PLACEHOLDERS = 10
MAX_CHOICES = 50              # per placeholder
MAX_CHOICE_CHARS = 40
MAX_CHECKED = 64              # combinations ``check`` loads
MAX_CHECKED_CHARS = 4 * 1024 * 1024    # ... and characters of them in all (a large file: fewer)
MAX_VARIANTS = 999
HAS_VARY = re.compile(r"""^["']?vary["']?\s*:""", re.M)
# fields whose text is an expression (or a name): a placeholder there must be declared, and a
# negative or fractional number is written in parentheses
EXPRESSION_FIELDS = ("define", "find", "answer", "keep", "symbols")


@dataclass(frozen=True)
class Vary:
    """The placeholders of a file, their choices (as text) and where they are written."""

    names: tuple[str, ...]
    choices: tuple[tuple[str, ...], ...]
    spans: tuple[tuple[int, int, str, bool], ...]    # (start, end, name, in an expression) in the text
    math: frozenset[int] = frozenset()               # starts of the spans inside $...$ of a text field

    @property
    def count(self) -> int:
        return prod(len(c) for c in self.choices)

    def combination(self, index: int) -> tuple[int, ...]:
        """The ``index``-th combination (mixed radix, the first placeholder slowest)."""
        out = []
        for c in reversed(self.choices):
            index, k = divmod(index, len(c))
            out.append(k)
        return tuple(reversed(out))

    def label(self, combo: tuple[int, ...]) -> str:
        return ", ".join(f"{n}={c[k]}" for n, c, k in zip(self.names, self.choices, combo))


@dataclass(frozen=True)
class Variant:
    """One variant of a build: its name (``v07`` or a student id), choices, problem and resolved data."""

    name: str
    combo: tuple[int, ...]
    problem: object              # spec.Problem
    data: dict                   # the resolved problem in the file format (the JSON's ``problem``)


def has_vary(text: str) -> bool:
    return bool(HAS_VARY.search(text))


# --- reading vary ----------------------------------------------------------------------------

def read_vary(text: str, fname: str) -> Vary | None:
    """The file's ``vary`` (None without one, or when the YAML is broken: ``spec`` says why)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except (yaml.YAMLError, RecursionError):
        return None
    if not isinstance(root, yaml.MappingNode):
        return None
    node = next((v for k, v in root.value if isinstance(k, yaml.ScalarNode) and k.value == "vary"), None)
    if node is None:
        return None
    errors: list[ProblemError] = []

    def err(n, path: str, message: str) -> None:
        errors.append(ProblemError(Location(fname, n.start_mark.line + 1, n.start_mark.column + 1, path),
                                   message, text))

    names, choices = [], []
    if not isinstance(node, yaml.MappingNode) or not node.value:
        err(node, "vary", "vary is a mapping of placeholder: [choices], like g: [exp, tanh]")
    elif len(node.value) > MAX_PLACEHOLDERS:
        err(node, "vary", f"at most {MAX_PLACEHOLDERS} placeholders")
    else:
        for k, v in node.value:
            name = k.value if isinstance(k, yaml.ScalarNode) else None
            if name is None or not NAME.match(name):
                err(k, "vary", f"{name!r} is not a placeholder name (letters and digits, like g or c1)")
                continue
            if name in names:
                err(k, f"vary.{name}", f"the placeholder {name} is declared twice")
                continue
            if not isinstance(v, yaml.SequenceNode) or not v.value:
                err(v, f"vary.{name}", "the choices are a non-empty list, like [exp, tanh, sigmoid]")
                continue
            if len(v.value) > MAX_CHOICES:
                err(v, f"vary.{name}", f"at most {MAX_CHOICES} choices")
                continue
            got = []
            for i, c in enumerate(v.value):
                why = _choice(c)
                if why:
                    err(c, f"vary.{name}[{i}]", why)
                elif c.value in got:
                    err(c, f"vary.{name}[{i}]", f"the choice {c.value} is given twice")
                else:
                    got.append(c.value)
            names.append(name)
            choices.append(tuple(got))
    math: set[int] = set()
    spans = _spans(root, node, text, set(names), fname, errors, math)
    used = {s[2] for s in spans}
    for k, _ in (node.value if isinstance(node, yaml.MappingNode) else []):
        if isinstance(k, yaml.ScalarNode) and k.value in names and k.value not in used:
            err(k, f"vary.{k.value}", f"the placeholder {{{k.value}}} is not used (write it in define, "
                                      "statement, hint or title)")
    if errors:
        raise ProblemErrors(sorted(errors, key=lambda e: (e.loc.line, e.loc.col)))
    return Vary(tuple(names), tuple(choices), tuple(spans), frozenset(math))


def _choice(node) -> str:
    """Why this choice cannot be used ("" if it can): a number, or a name (a function, a symbol)."""
    if not isinstance(node, yaml.ScalarNode):
        return "a choice is a number or a name, not a list or a mapping"
    v = node.value
    if len(v) > MAX_CHOICE_CHARS:
        return f"a choice is at most {MAX_CHOICE_CHARS} characters"
    if node.tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float") and NUMBER.match(v):
        return ""
    if node.tag == "tag:yaml.org,2002:str" and (NAME.match(v) or NUMBER.match(v)):
        return ""
    return f"{v!r}: a choice is a number (2, 0.5, -1/2) or a name (exp, x)"


def _spans(root, vary_node, text: str, names: set, fname: str, errors: list, math: set | None = None) -> list:
    """Where each placeholder is written: in the scalars (keys and values) outside ``vary``; the
    starts of those inside the math of a text (statement, title, hint) are added to ``math``."""
    out, seen = [], set()
    stack = [(root, ())]
    while stack:
        node, path = stack.pop()
        if id(node) in seen or node is vary_node:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = k.value if isinstance(k, yaml.ScalarNode) else "?"
                stack.append((v, path + (key,)))
                stack.append((k, path + (key,)))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((v, path + (i,)) for i, v in enumerate(node.value))
        elif "{" in node.value:
            field = next((p for p in path if isinstance(p, str) and p != "parts"), "")
            expression = field in EXPRESSION_FIELDS
            start, end = node.start_mark.index, node.end_mark.index
            for m in PLACEHOLDER.finditer(text, start, end):
                if m.group(1) in names:
                    out.append((m.start(), m.end(), m.group(1), expression))
                    if math is not None and not expression and _in_math(text[start:m.start()]):
                        math.add(m.start())
                elif expression:
                    line = text.count("\n", 0, m.start())
                    col = m.start() - (text.rfind("\n", 0, m.start()) + 1)
                    errors.append(ProblemError(
                        Location(fname, line + 1, col + 1, ".".join(str(p) for p in path)),
                        f"unknown placeholder {m.group()} (vary declares: {', '.join(sorted(names)) or 'none'})",
                        text))
    return sorted(set(out))


# --- one variant -------------------------------------------------------------------------------

def _written(choice: str, expression: bool) -> str:
    """A choice as written in the text: in an expression a negative or fractional number is in
    parentheses (``x - {c}`` with c = -1/2 is ``x - (-1/2)``)."""
    if expression and NUMBER.match(choice) and (choice.startswith("-") or "/" in choice):
        return f"({choice})"
    return choice


def _in_math(before: str) -> bool:
    """Whether text ending with ``before`` is inside $...$ (an odd number of unescaped dollars)."""
    return len(re.findall(r"(?<!\\)\$", before)) % 2 == 1


MATH_WRAPPERS = (r"\mathrm{", r"\operatorname{", r"\mathit{", r"\text{")


def _written_in_math(choice: str) -> str | None:
    r"""A choice as the book prints it in a statement's math: a function by its LaTeX name
    (tanh as \tanh, sigmoid as \sigma, the name printing.py uses in the solution), a fraction
    as \frac{1}{2}; None where the choice is written as it is (a symbol name, 2, 0.5)."""
    fn = function_latex(choice)
    if fn and choice in ("log1p", "step"):       # printed with their argument changed: log(1 + z), 𝟙[z > 0]
        return r"\operatorname{" + choice + "}"
    if fn:
        return fn
    m = re.match(r"^(-?)(\d+)/(\d+)$", choice)
    if m:
        return m.group(1) + r"\frac{" + m.group(2) + "}{" + m.group(3) + "}"
    return None


def _in_wrapper(text: str, start: int, end: int) -> tuple[int, int]:
    r"""(start, end) grown over ``\mathrm{`` … ``}`` written around the placeholder, if it is."""
    for w in MATH_WRAPPERS:
        if text.startswith(w, start - len(w)) and text.startswith("}", end):
            return start - len(w), end + 1
    if text[start - 1:start] == "\\":         # \{g}: the author's own backslash, \sin not \\sin
        return start - 1, end
    return start, end


class _Edits:
    """Columns of the resolved text mapped back to the original's (a choice may be longer or
    shorter than its placeholder; lines stay the same: choices hold no newline)."""

    def __init__(self):
        self.by_line: dict[int, list[tuple[int, int, int, int]]] = {}

    def add(self, line: int, res_start: int, res_end: int, orig_start: int, orig_end: int) -> None:
        self.by_line.setdefault(line, []).append((res_start, res_end, orig_start, orig_end))

    def original_col(self, line: int, col: int) -> int:
        """1-based ``col`` on 1-based ``line`` of the resolved text, in the original."""
        c, out = col - 1, col - 1
        for rs, re_, os_, oe in self.by_line.get(line - 1, []):
            if c < rs:
                break
            out = os_ if c < re_ else oe + (c - re_)
        return out + 1


def resolve(text: str, vary: Vary, combo: tuple[int, ...]) -> tuple[str, _Edits]:
    """The text of one variant, and the map of its columns back to the original."""
    chosen = {n: c[k] for n, c, k in zip(vary.names, vary.choices, combo)}
    pieces, pos, edits = [], 0, _Edits()
    line, res_line_start, orig_line_start = 0, 0, 0
    res_len = 0
    for start, end, name, expression in vary.spans:
        in_math = start in vary.math and _written_in_math(chosen[name])
        if in_math and function_latex(chosen[name]):
            start, end = _in_wrapper(text, start, end)      # \mathrm{{g}}: \tanh, not \mathrm{\tanh}
        chunk = text[pos:start]
        pieces.append(chunk)
        res_len += len(chunk)
        nl = chunk.rfind("\n")
        if nl >= 0:
            line += chunk.count("\n")
            res_line_start = res_len - (len(chunk) - nl - 1)
            orig_line_start = pos + nl + 1
        new = in_math or _written(chosen[name], expression)
        edits.add(line, res_len - res_line_start, res_len - res_line_start + len(new),
                  start - orig_line_start, end - orig_line_start)
        pieces.append(new)
        res_len += len(new)
        pos = end
    pieces.append(text[pos:])
    return "".join(pieces), edits


def load_variant(text: str, fname: str, vary: Vary, combo: tuple[int, ...], default_id: str,
                 pid: str | None = None):
    """One variant as a ``Problem`` (id ``pid``, else the file's) and its resolved data; errors point
    into the original file and say which choices made them."""
    from .spec import parse_problem
    resolved, edits = resolve(text, vary, combo)
    try:
        problem = parse_problem(resolved, fname, default_id=default_id)
    except ProblemErrors as exc:
        label = vary.label(combo)
        raise ProblemErrors([ProblemError(
            replace(e.loc, col=edits.original_col(e.loc.line, e.loc.col)) if e.loc.line else e.loc,
            f"{e.detail} (with {label})", text) for e in exc.errors]) from None
    if pid is not None:
        problem = replace(problem, id=pid)
    return problem, resolved


def load_first(text: str, fname: str, default_id: str):
    """A file with ``vary`` loaded as its first choices (what ``build`` without --variants writes)."""
    from .spec import parse_problem
    vary = read_vary(text, fname)
    if vary is None:
        return parse_problem(text, fname, default_id=default_id)
    return load_variant(text, fname, vary, (0,) * len(vary.names), default_id)[0]


def resolved_data(resolved: str, pid: str) -> dict:
    """The resolved problem in the file format, without ``vary`` (the text was loaded: it is safe)."""
    data = yaml.safe_load(resolved)
    data.pop("vary", None)
    data["id"] = pid
    return _plain(data)


def _plain(v):
    """JSON's types only (YAML may read a date or bytes where the file meant text)."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v if v is None or isinstance(v, (bool, int, float, str)) else str(v)


# --- a build's variants ---------------------------------------------------------------------------

STUDENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def pick(vary: Vary, n: int | None, seed: int, students: tuple[str, ...] = ()) -> tuple[list, str]:
    """(name, combination) per variant, and a note when the choices cannot make them all differ."""
    total = vary.count
    if students:
        out = [(s, vary.combination(int.from_bytes(hashlib.sha256(f"{seed}\0{s}".encode()).digest()[:8], "big")
                                    % total)) for s in students]
        return out, ""
    width = max(2, len(str(n)))
    if n <= total:
        order = random.Random(seed).sample(range(total), n)
        note = ""
    else:
        order = random.Random(seed).sample(range(total), total)
        note = f"only {total} different combination(s) of choices: {n} variants repeat them"
    return [(f"v{k + 1:0{width}d}", vary.combination(order[k % total])) for k in range(n)], note


def plan(path: str | Path, n: int | None, seed: int, students: tuple[str, ...] = ()):
    """The variants of one file (None when it has no ``vary``), and a note."""
    from .spec import read_text
    path = Path(path)
    text = read_text(path)
    vary = read_vary(text, str(path)) if has_vary(text) else None
    if vary is None:
        return None, ""
    from .spec import parse_problem
    base = parse_problem(resolve(text, vary, (0,) * len(vary.names))[0], str(path), default_id=path.stem)
    picked, note = pick(vary, n, seed, students)
    out = []
    for name, combo in picked:
        pid = f"{base.id}-{name.lower()}"        # an id is lower case (a student's may not be)
        problem, resolved = load_variant(text, str(path), vary, combo, path.stem, pid)
        out.append(Variant(name, combo, problem, resolved_data(resolved, pid)))
    return (vary, base.id, out), note


def read_roster(path: str) -> tuple[str, ...]:
    """The student ids of a roster CSV (column ``student``): each names files, so letters, digits,
    ``. _ -``, at most 64 characters, each once."""
    from .csvfiles import read_table
    table = read_table(path, ("student",))
    errors, seen, lines = list(table.errors), {}, {}
    for row in table.rows:
        s = row.cells["student"].strip()
        if len(seen) == MAX_VARIANTS:
            errors.append(table.error(row, "student", f"more than {MAX_VARIANTS} students: a roster builds one "
                                      "variant each; split the class into several rosters"))
            break
        if not STUDENT_RE.match(s):
            errors.append(table.error(row, "student", f"{s[:40]!r}: a student id names files: letters, digits, "
                                      "'.', '_', '-', at most 64 characters, starting with a letter or digit"))
        elif s.lower().endswith("-sheet"):
            errors.append(table.error(row, "student", f"{s}: an id ending in -sheet would name another student's "
                                      "exercise sheet (<id>-<student>-sheet.*)"))
        elif s.lower() in lines:     # files are named in lower case: Ana and ana would be one student's
            errors.append(table.error(row, "student", f"{s} is also on line {lines[s.lower()]}"))
        else:
            seen[s] = lines[s.lower()] = row.line
    if errors:
        raise ProblemErrors(sorted(errors, key=lambda e: e.loc.line))
    if not seen:
        raise ProblemErrors([ProblemError(Location(path, 1, 1), "the roster names no student")])
    return tuple(seen)


def variants_table(vary: Vary, variants: list[Variant], roster: bool) -> str:
    """``<id>-variants.csv``: each variant's name, file stem and choices."""
    from .csvfiles import table_text
    return table_text(("student" if roster else "variant", "id") + vary.names,
                      ((v.name, v.problem.id) + tuple(c[k] for c, k in zip(vary.choices, v.combo))
                       for v in variants))


# --- check ---------------------------------------------------------------------------------------

def check_combinations(path: str | Path) -> list[str]:
    """Every combination of a file's choices loaded (up to ``MAX_CHECKED``); the errors, naming the
    choices that break the problem.  [] when all load (or the file has no ``vary``)."""
    from .spec import read_text
    path = Path(path)
    text = read_text(path)
    vary = read_vary(text, str(path)) if has_vary(text) else None
    if vary is None:
        return []
    total = vary.count
    # MAX_CHECKED loads, or more to load each choice once (one changed at a time: at most 10 × 50), and
    # fewer of a large file: the work stays a bounded multiple of one load
    singles = [tuple(k if j == i else 0 for j in range(len(vary.names)))
               for i, c in enumerate(vary.choices) for k in range(len(c))]
    singles = list(dict.fromkeys(singles))
    bound = max(1, min(max(MAX_CHECKED, len(singles)), MAX_CHECKED_CHARS // max(len(text), 1)))
    if total <= bound:
        combos = [vary.combination(i) for i in range(total)]
    else:
        # each choice at least once, then a seeded sample
        combos = singles
        rest = random.Random(0).sample(range(total), min(total, bound))
        combos = list(dict.fromkeys(combos + [vary.combination(i) for i in rest]))[:bound]
    failed: list[tuple[tuple[int, ...], ProblemErrors]] = []
    for combo in combos:
        try:
            load_variant(text, str(path), vary, combo, path.stem)
        except ProblemErrors as exc:
            failed.append((combo, exc))
    if not failed:
        return []
    broken = {combo for combo, _ in failed}
    pairs = dict.fromkeys((i, k) for combo in combos for i, k in enumerate(combo))
    culprits = [p for p in pairs if all(c in broken for c in combos if c[p[0]] == p[1])
                and len(vary.choices[p[0]]) > 1]
    checked = f"{len(failed)} of {len(combos)} combination(s) of the choices" + \
        ("" if len(combos) == total else f" checked (of {total})") + " fail"
    said = "".join(f"; every one with {vary.names[i]}={vary.choices[i][k]}" for i, k in culprits)
    out = [f"{path}: vary: {checked}{said}"]
    shown = set()
    for i, k in culprits[:3] or [None]:
        combo, exc = next((c, e) for c, e in failed if i is None or c[i] == k)
        if combo not in shown:
            shown.add(combo)
            out.append(exc.format(caret=True))
    return out
