"""Loading: YAML problem files -> frozen ``Problem`` objects, positions kept.

The file is read as bytes (size-limited), decoded as UTF-8, composed into a
node tree by PyYAML's *safe* loader (nothing is constructed from tags), and
converted by hand so that every value keeps its line and column.  Every field
of SPEC §1 is validated and *all* errors of a file are collected before one
``ProblemErrors`` is raised; each names file, line, column and field.  The work
is bounded by the file: an expression text reached through many aliases (or
inherited by many parts) is parsed once and its error reported once, and the
sizes the numerical check would refuse (``sizes.py``) are refused here too.

To add a field: add it to ``_FIELDS`` (or ``_PART_ONLY``), validate it in
``_Reader.part_fields`` and carry it on ``Part``.

``answer`` (the instructor's form of a result) is parsed here like a definition,
over the part's symbols and ``define`` names, and carried on its ``Target``;
whether it is *right* is decided after solving (``compare.py``).
"""
from __future__ import annotations

import difflib
import gc
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from . import expr as ex
from .errors import ExprError, Location, ProblemError, ProblemErrors
from .files import read_utf8
from .sizes import part_size_errors

MAX_FILE_BYTES = 256 * 1024
MAX_YAML_NODES = 20000
MAX_ID = 100          # characters: an id names files
MAX_PARSED_CHARS = 4 * MAX_FILE_BYTES   # characters of expressions parsed per file, in total

ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)?$")
FIND_RE = re.compile(r"^\s*d(?P<f>[A-Za-z][A-Za-z0-9_]*)\s*/\s*d(?P<x>[A-Za-z][A-Za-z0-9_]*)\s*$")
FIND2_RE = re.compile(r"^\s*d2(?P<f>[A-Za-z][A-Za-z0-9_]*)\s*/\s*d(?P<x>[A-Za-z][A-Za-z0-9_]*)2\s*$")

METHODS = ("chain_rule", "componentwise", "direct")
LAYOUTS = ("numerator", "denominator")
ASSUMPTIONS = ("symmetric", "positive_definite", "diagonal", "orthogonal", "invertible", "positive")
ASSUMPTIONS += ("one_hot",)     # a label vector of the 1-of-K coding: entries 0 and one 1, so sum(y) = 1


def _did_you_mean(word, known) -> str:
    """``"; did you mean one_hot?"`` for a near miss (``onehot``), as for unknown functions."""
    near = difflib.get_close_matches(str(word), known, n=1, cutoff=0.6)
    return f"; did you mean {near[0]}?" if near else ""

_FIELDS = ("id", "title", "source", "statement", "hint", "symbols", "define", "find",
           "method", "layout", "expand_product", "answer", "keep")
_TOP_ONLY = ("parts", "vary")     # vary: resolved before loading (variants.py); read as is here


@dataclass(frozen=True)
class SymbolDecl:
    name: str
    kind: str                 # dim | scalar | array | function
    shape: ex.Shape = ()
    assume: tuple[str, ...] = ()
    latex: str | None = None
    args: tuple = ()          # functions: the shapes of the arguments


@dataclass(frozen=True)
class Definition:
    name: str
    expr: ex.Expr
    text: str


@dataclass(frozen=True)
class Answer:
    """The instructor's answer to one find, as the textbook states it (``answer:``)."""

    expr: ex.Expr
    text: str
    loc: Location             # of the answer's text, for errors


@dataclass(frozen=True)
class Target:
    of: str
    wrt: str
    order: int
    text: str
    loc: Location
    answer: Answer | None = None


@dataclass(frozen=True)
class Part:
    id: str
    title: str
    statement: str
    hint: str
    symbols: tuple[SymbolDecl, ...]
    define: tuple[Definition, ...]
    find: tuple[Target, ...]
    method: str
    layout: str
    expand_product: bool
    loc: Location
    keep: tuple[str, ...] = ()      # define names kept in the displayed result ("where p = …")

    def symbol(self, name: str) -> SymbolDecl | None:
        for s in self.symbols:
            if s.name == name:
                return s
        return None

    def definition(self, name: str) -> Definition | None:
        for d in self.define:
            if d.name == name:
                return d
        return None

    @property
    def dims(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.symbols if s.kind == "dim")


@dataclass(frozen=True)
class Problem:
    id: str
    title: str
    source: str
    statement: str
    hint: str
    parts: tuple[Part, ...]
    path: str
    text: str             # the file's text, for errors with carets

    @property
    def has_parts(self) -> bool:
        return not (len(self.parts) == 1 and self.parts[0].id == "")


# --- YAML with positions ---------------------------------------------------------

class _Pos(dict):
    """path tuple -> (line, col, quoted) of the value; keys under ('key',)+path."""


def _yaml_tree(text: str, fname: str, source: str):
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        msg = exc.problem or exc.context or "invalid YAML"
        raise ProblemErrors([ProblemError(
            Location(fname, (mark.line + 1) if mark else 0, (mark.column + 1) if mark else 0),
            f"invalid YAML: {msg}", source)]) from None
    except yaml.YAMLError as exc:
        raise ProblemErrors([ProblemError(Location(fname), f"invalid YAML: {exc}", source)]) from None
    except RecursionError:
        raise ProblemErrors([ProblemError(Location(fname), "invalid YAML: nested too deeply", source)]) from None
    return node


class _Converter:
    def __init__(self, fname: str, source: str):
        self.fname = fname
        self.source = source
        self.pos = _Pos()
        self.plain: dict[tuple, str] = {}     # the source text of plain scalars (ids are read as written)
        self.count = 0
        self.errors: list[ProblemError] = []
        self.constructor = SafeConstructor()

    def err(self, node, path: tuple, message: str) -> None:
        self.errors.append(ProblemError(
            Location(self.fname, node.start_mark.line + 1, node.start_mark.column + 1, _path_str(path)),
            message, self.source))

    def _value_column(self, node) -> int:
        """The 0-based column where a scalar's text starts: after an anchor (``&e``) or a tag,
        where PyYAML's mark points, so that columns inside an expression stay right."""
        mark = node.start_mark
        text, i = self.source, mark.index
        if not isinstance(node, yaml.ScalarNode) or i >= len(text) or text[i] not in "&!":
            return mark.column
        while i < len(text) and text[i] in "&!":
            while i < len(text) and text[i] not in " \t\n":
                i += 1
            while i < len(text) and text[i] in " \t":
                i += 1
        return mark.column + (i - mark.index) if i < len(text) and text[i] != "\n" else mark.column

    def convert(self, node, path: tuple = (), depth: int = 0) -> Any:
        self.count += 1
        if self.count > MAX_YAML_NODES:
            raise _TooBig(node)
        if depth > 50:
            raise _TooBig(node)
        quoted = isinstance(node, yaml.ScalarNode) and node.style in ("'", '"')
        self.pos[path] = (node.start_mark.line + 1, self._value_column(node) + 1, quoted)
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _PLAIN_TAGS:
            self.err(node, path, f"unsupported YAML tag {node.tag}")
            return None
        if isinstance(node, yaml.MappingNode):
            out: dict = {}
            for knode, vnode in node.value:
                if not isinstance(knode, yaml.ScalarNode):
                    self.err(knode, path, "keys must be plain names")
                    continue
                key = knode.value
                if _SURROGATE.search(key):
                    self.err(knode, path, _SURROGATE_MSG)
                    continue
                if knode.tag == "tag:yaml.org,2002:merge":
                    self.err(knode, path, "YAML merge keys (<<) are not supported")
                    continue
                if key in out:
                    self.err(knode, path + (key,), f"duplicate key {key!r}")
                    continue
                self.pos[("key",) + path + (key,)] = (knode.start_mark.line + 1, knode.start_mark.column + 1, False)
                out[key] = self.convert(vnode, path + (key,), depth + 1)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(v, path + (i,), depth + 1) for i, v in enumerate(node.value)]
        if node.style is None:
            self.plain[path] = node.value
        if _SURROGATE.search(node.value):
            self.err(node, path, _SURROGATE_MSG)
            return None
        if node.tag in _NUMBER_TAGS and len(node.value) > ex.MAX_LITERAL_CHARS:
            # refused before int() reads it: converting a long literal costs time or fails
            self.err(node, path, f"a number with more than {ex.MAX_LITERAL_CHARS} digits")
            return None
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError:
            self.err(node, path, f"unsupported YAML tag {node.tag}")
            return None
        except (ValueError, OverflowError):
            self.err(node, path, f"cannot read the value {node.value[:40]!r}")
            return None


_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")
# "\ud800" in a double-quoted string: not a character, and no output can encode it
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_MSG = "a lone surrogate escape (\\ud800-\\udfff) is not a character"
_NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")


class _TooBig(Exception):
    def __init__(self, node):
        self.node = node


def _path_str(path: tuple) -> str:
    out = ""
    for p in path:
        if p == "key":
            continue
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out


# --- reading and validation ----------------------------------------------------------

def read_text(path: Path) -> str:
    """The file's text; errors (kind, size, bytes, missing) as ``ProblemErrors``.

    The file is checked before it is read (``files.read_limited``): a FIFO, a
    device or a link is refused without opening it, a large file without reading it."""
    fname = str(path)
    text = read_utf8(path, MAX_FILE_BYTES)
    bad = _NOT_YAML.search(text)
    if bad:
        before = text[: bad.start()]
        line, col = before.count("\n") + 1, bad.start() - (before.rfind("\n") + 1) + 1
        raise ProblemErrors([ProblemError(Location(fname, line, col),
                                          f"the control character U+{ord(bad.group()):04X} is not allowed")])
    return text


# the characters YAML refuses (its reader would say so on two lines, without the line and column)
_NOT_YAML = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def load_problem(path: str | Path) -> Problem:
    path = Path(path)
    text = read_text(path)
    if "vary" in text:
        from .variants import has_vary, load_first
        if has_vary(text):      # placeholders: the problem with the first choices (variants.py)
            return load_first(text, str(path), path.stem)
    return parse_problem(text, str(path), default_id=path.stem)


def parse_problem(text: str, fname: str, default_id: str = "problem") -> Problem:
    # the node tree of a large file is many small objects that live until the end: the cyclic
    # collector would traverse them again and again (half the time of a 250 KB file), and
    # reading creates no garbage cycles worth collecting
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _parse_problem(text, fname, default_id)
    finally:
        if enabled:
            gc.enable()


def _parse_problem(text: str, fname: str, default_id: str) -> Problem:
    node = _yaml_tree(text, fname, text)
    conv = _Converter(fname, text)
    if node is None:
        raise ProblemErrors([ProblemError(Location(fname, 1, 1), "the file is empty", text)])
    try:
        data = conv.convert(node)
    except _TooBig as big:
        raise ProblemErrors([ProblemError(
            Location(fname, big.node.start_mark.line + 1, big.node.start_mark.column + 1),
            f"the document is too large or too deep (more than {MAX_YAML_NODES} values after aliases)",
            text)]) from None
    reader = _Reader(fname, text, conv.pos, conv.plain)
    reader.errors.extend(conv.errors)
    problem = reader.problem(data, default_id)
    if reader.errors:
        # one error per place and message: a text reached through many aliases is one mistake
        unique = {(e.loc.line, e.loc.col, e.detail): e for e in reversed(reader.errors)}
        raise ProblemErrors(sorted(unique.values(), key=lambda e: (e.loc.line, e.loc.col)))
    return problem


class _Reader:
    def __init__(self, fname: str, source: str, pos: _Pos, plain: dict[tuple, str] | None = None):
        self.fname = fname
        self.source = source
        self.pos = pos
        self.plain = plain or {}
        self.errors: list[ProblemError] = []
        self.parsed: dict = {}          # (text, symbols) -> (Expr or ExprError, names looked up)
        self.parsed_chars = 0
        # an Expr parsed once is shared by every part that reaches its text: work on it once too
        self.free: dict[int, tuple] = {}        # id(Expr) -> (Expr, its free symbols)
        self.size_errors: dict[tuple, list] = {}

    # positions
    def loc(self, path: tuple, key: bool = False, offset: int | None = None) -> Location:
        p = self.pos.get(("key",) + path) if key else None
        p = p or self.pos.get(path)
        q = path
        while p is None and q:
            q = q[:-1]
            p = self.pos.get(q)
        line, col, quoted = p or (0, 0, False)
        if offset is not None:
            col += offset + (1 if quoted else 0)
        return Location(self.fname, line, col, _path_str(path))

    def err(self, path: tuple, message: str, key: bool = False, offset: int | None = None) -> None:
        self.errors.append(ProblemError(self.loc(path, key, offset), message, self.source))

    # fields
    def problem(self, data: Any, default_id: str) -> Problem:
        if not isinstance(data, dict):
            self.err((), f"a problem file holds a mapping of fields, not {_kind(data)}")
            return None  # type: ignore[return-value]
        allowed = _FIELDS + _TOP_ONLY
        for key in data:
            if key not in allowed:
                self.err((key,), f"unknown field {key!r} (known: {', '.join(allowed)})", key=True)
        pid = self.ident(data, ("id",), default_id)
        if pid is not None and len(pid) > MAX_ID:
            where = ("id",) if "id" in data else ()
            self.err(where, f"an id is at most {MAX_ID} characters (it names files); this one has {len(pid)}")
            pid = None
        elif pid is not None and not ID_RE.match(pid):
            if "id" in data:
                self.err(("id",), f"id {pid!r} must match [a-z0-9][a-z0-9._-]*")
            else:
                self.err((), f"the file name gives the id {pid!r}, which is not of the form "
                             "[a-z0-9][a-z0-9._-]*; set an id: field")
        base = {k: data[k] for k in _FIELDS if k in data}
        parts_data = data.get("parts")
        parts: list[Part] = []
        if parts_data is None:
            part = self.part(base, {}, (), "")
            if part:
                parts.append(part)
        elif not isinstance(parts_data, list) or not parts_data:
            self.err(("parts",), "parts must be a non-empty list of sub-problems")
        else:
            seen: set[str] = set()
            for i, pd in enumerate(parts_data):
                path = ("parts", i)
                if not isinstance(pd, dict):
                    self.err(path, f"a part is a mapping of fields, not {_kind(pd)}")
                    continue
                for key in pd:
                    if key not in _FIELDS:
                        self.err(path + (key,), f"unknown field {key!r} in a part", key=True)
                pid_ = self.ident(pd, path + ("id",), _letters(i))
                if pid_ and len(pid_) > MAX_ID:
                    self.err(path + ("id",), f"a part id is at most {MAX_ID} characters; this one has {len(pid_)}")
                    continue
                if pid_ in seen:
                    self.err(path + ("id",), f"duplicate part id {pid_!r}")
                seen.add(pid_)
                if pid_ and not ID_RE.match(pid_):
                    self.err(path + ("id",), f"part id {pid_!r} must match [a-z0-9][a-z0-9._-]*")
                part = self.part(base, pd, path, pid_ or _letters(i))
                if part:
                    parts.append(part)
        return Problem(
            id=pid or default_id,
            title=self.prose(data, ("title",), math=False),
            source=self.prose(data, ("source",)),
            statement=self.prose(data, ("statement",)),
            hint=self.prose(data, ("hint",)),
            parts=tuple(parts),
            path=self.fname,
            text=self.source,
        )

    def prose(self, data: dict, path: tuple, math: bool = True) -> str:
        """A Markdown field (title, source, statement, hint), refused where the renderers would refuse it."""
        from .texsafe import prose_problems
        s = self.string(data, path, "") or ""
        for offset, message in prose_problems(s, math):
            self.errors.append(ProblemError(self.text_loc(path, s, offset), message, self.source))
        return s

    def text_loc(self, path: tuple, text: str, offset: int) -> Location:
        """Where ``text[offset]`` was written: its line found in the file from the value's first line on."""
        loc = self.loc(path)
        line = text[text.rfind("\n", 0, offset) + 1:].split("\n")[0]
        col = offset - (text.rfind("\n", 0, offset) + 1)
        lines = self.source.splitlines()
        for needle, shift in ((line, col), (line[col:col + 12], 0)):
            for n in range(max(loc.line - 1, 0), min(len(lines), loc.line + 1 + text.count("\n"))):
                j = lines[n].find(needle) if needle else -1
                if j >= 0:
                    return Location(self.fname, n + 1, j + shift + 1, loc.field)
        return loc

    def string(self, data: dict, path: tuple, default: str | None) -> str | None:
        key = path[-1]
        if key not in data or data[key] is None:
            return default
        v = data[key]
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            self.err(path, f"{key} must be text, not {_kind(v)}")
            return default
        return str(v)

    def ident(self, data: dict, path: tuple, default: str | None) -> str | None:
        """An id as written: YAML would read ``5.10`` as 5.1 and ``0777`` as 511."""
        v = data.get(path[-1])
        if isinstance(v, (bool, int, float)) and path in self.plain:
            return self.plain[path]
        return self.string(data, path, default)

    def field(self, part: dict, base: dict, path: tuple, key: str):
        """A part's value, else the problem's; with the path where it was written."""
        if key in part:
            return part[key], path + (key,)
        if key in base:
            return base[key], (key,)
        return None, path + (key,)

    def part(self, base: dict, pdata: dict, path: tuple, pid: str) -> Part | None:
        n_err = len(self.errors)
        symbols = self.symbols(base, pdata, path)
        define_data, dpath = self.field(pdata, base, path, "define")
        method, mpath = self.field(pdata, base, path, "method")
        layout, lpath = self.field(pdata, base, path, "layout")
        expand, epath = self.field(pdata, base, path, "expand_product")
        find_data, fpath = self.field(pdata, base, path, "find")
        method = method if method is not None else "chain_rule"
        if method not in METHODS:
            self.err(mpath, f"method must be one of {', '.join(METHODS)}, not {method!r}")
        layout = layout if layout is not None else "numerator"
        if layout not in LAYOUTS:
            self.err(lpath, f"layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
        expand = True if expand is None else expand
        if not isinstance(expand, bool):
            self.err(epath, f"expand_product must be true or false, not {expand!r}")
            expand = True
        define = self.define(define_data, dpath, symbols)
        failed = set(define_data) - {d.name for d in define} if isinstance(define_data, dict) else set()
        find = self.find(find_data, fpath, symbols, define, failed)
        answer_data, apath = self.field(pdata, base, path, "answer")
        if answer_data is not None and find:
            find = self.answers(answer_data, apath, find, symbols, define, layout)
        keep_data, kpath = self.field(pdata, base, path, "keep")
        keep = self.keep(keep_data, kpath, define, failed)
        if len(self.errors) == n_err:
            self.sizes(symbols, define, find, dpath)
        for key in ("title", "statement", "hint"):
            if key in pdata:
                self.prose(pdata, path + (key,), math=key != "title")
        if len(self.errors) > n_err:
            return None
        return Part(
            id=pid,
            title=str(pdata.get("title") or ""),
            statement=str(pdata.get("statement") or ""),
            hint=str(pdata.get("hint") or ""),
            symbols=tuple(symbols.values()),
            define=define,
            find=find,
            method=method,
            layout=layout,
            expand_product=expand,
            loc=self.loc(path),
            keep=keep,
        )

    def keep(self, data, path: tuple, define, failed: set) -> tuple[str, ...]:
        """``keep: [p, delta]`` (or one name): define names other than the function."""
        if data is None:
            return ()
        items = [data] if isinstance(data, str) else data
        if not isinstance(items, list):
            self.err(path, f"keep must be a define name or a list of them, not {_kind(data)}")
            return ()
        names = [d.name for d in define]
        out = []
        for i, n in enumerate(items):
            where = path + (i,) if isinstance(data, list) else path
            if not isinstance(n, str) or (n not in names and n not in failed):
                self.err(where, f"keep: {n!r} is not a name from define")
            elif names and n == names[0]:
                self.err(where, f"keep: {n} is the function itself")
            elif n not in out:
                out.append(n)
        return tuple(out)

    def free_symbols(self, e: ex.Expr) -> frozenset[str]:
        if id(e) not in self.free:
            self.free[id(e)] = (e, ex.free_symbols(e))     # e kept alive: ids stay unique
        return self.free[id(e)][1]

    def sizes(self, symbols: dict[str, SymbolDecl], define: tuple[Definition, ...], find: tuple[Target, ...],
              dpath: tuple) -> None:
        """What the numerical check of ``build`` would refuse for its sizes, refused here."""
        defs = {d.name: d.expr for d in define}
        shapes = {n: s.shape for n, s in symbols.items()}
        shapes.update({n: e.shape for n, e in defs.items()})
        dims = [n for n, s in symbols.items() if s.kind == "dim"]
        wrts = [(t.wrt, shapes[t.wrt]) for t in find]
        key = (tuple(dims), tuple((n, id(e)) for n, e in defs.items()), tuple(wrts))
        if key not in self.size_errors:     # the exprs are kept alive by the parts: ids stay unique
            self.size_errors[key] = part_size_errors(dims, defs, wrts)
        for name, why in self.size_errors[key]:
            self.err(dpath + (name,), why)

    # symbols
    def symbols(self, base: dict, pdata: dict, path: tuple) -> dict[str, SymbolDecl]:
        out: dict[str, SymbolDecl] = {}
        sources = []
        if "symbols" in base:
            sources.append((base["symbols"], ("symbols",)))
        if "symbols" in pdata:
            sources.append((pdata["symbols"], path + ("symbols",)))
        if not sources:
            self.err(path or (), "no symbols are declared (symbols: {x: [D], D: dim, ...})")
        dims_all: set[str] = set()
        for data, spath in sources:
            if isinstance(data, dict):
                dims_all |= {k for k, v in data.items() if v == "dim" or (isinstance(v, dict) and v.get("kind") == "dim")}
        for data, spath in sources:
            if not isinstance(data, dict):
                self.err(spath, f"symbols is a mapping of name: declaration, not {_kind(data)}")
                continue
            for name, decl in data.items():
                sp = spath + (name,)
                if not isinstance(name, str) or not NAME_RE.match(name):
                    self.err(sp, f"{name!r} is not a valid name (letters and digits, optionally _subscript)", key=True)
                    continue
                d = self.symbol(name, decl, sp, dims_all)
                if d:
                    out[name] = d
        return out

    def dim_product(self, text: str, path: tuple, dims: set[str]) -> ex.Dim | None:
        """A dim written as a product, ``M*N`` (the size of vec X for X ∈ R^{M×N}, or of a
        Kronecker product): each factor a declared dim or a positive integer."""
        factors: list[ex.Dim] = []
        for part in text.split("*"):
            part = part.strip()
            if part.isdigit() and 1 <= int(part) <= 10000:
                factors.append(int(part))
            elif part in dims:
                factors.append(part)
            else:
                self.err(path, f"{text!r}: a product of dims is written M*N, each factor a declared dim "
                               f"or a positive integer, not {part!r}")
                return None
        d = ex.dim_product(*factors)
        if isinstance(d, int) and not 1 <= d <= 10000:
            self.err(path, f"a dim must be between 1 and 10000, not {text} = {d}")
            return None
        return d

    def shape(self, value, path: tuple, dims: set[str]) -> ex.Shape | None:
        if not isinstance(value, list) or len(value) > 2:
            self.err(path, "a shape is a list of at most two dims: [], [D] or [M, N]")
            return None
        shape = []
        for i, d in enumerate(value):
            if isinstance(d, bool) or not (isinstance(d, str) or isinstance(d, int)):
                self.err(path + (i,), f"a dim is a declared dim name or a positive integer, not {d!r}")
                return None
            if isinstance(d, int) and not 1 <= d <= 10000:
                self.err(path + (i,), f"a dim must be between 1 and 10000, not {d}")
                return None
            if isinstance(d, str) and "*" in d:
                d = self.dim_product(d, path + (i,), dims)
                if d is None:
                    return None
            elif isinstance(d, str) and d not in dims:
                self.err(path + (i,), f"{d!r} is not a declared dim (declare it: {d}: dim)")
                return None
            shape.append(d)
        if len(shape) == 0:
            return ()
        if len(shape) == 1:
            return (shape[0], 1) if shape[0] != 1 else ()
        return ex.norm_shape(shape[0], shape[1])

    def symbol(self, name: str, decl, path: tuple, dims: set[str]) -> SymbolDecl | None:
        if decl == "dim":
            return SymbolDecl(name, "dim")
        if decl == "scalar":
            return SymbolDecl(name, "scalar", ())
        if isinstance(decl, list):
            shape = self.shape(decl, path, dims)
            return None if shape is None else SymbolDecl(name, "array" if shape else "scalar", shape)
        if not isinstance(decl, dict):
            self.err(path, f"declare {name} as dim, scalar, a shape like [D] or [M, N], or a mapping")
            return None
        known = ("shape", "assume", "latex", "function", "args", "kind")
        for k in decl:
            if k not in known:
                self.err(path + (k,), f"unknown key {k!r} in a symbol declaration (known: {', '.join(known)})", key=True)
        kind = decl.get("kind")
        if kind not in (None, "dim", "scalar"):
            self.err(path + ("kind",), "kind must be dim or scalar")
        if kind == "dim":
            return SymbolDecl(name, "dim")
        shape = self.shape(decl.get("shape", []), path + ("shape",), dims)
        if shape is None:
            return None
        assume = decl.get("assume", [])
        if isinstance(assume, str):
            assume = [assume]
        if not isinstance(assume, list):
            self.err(path + ("assume",), "assume is a list of assumptions")
            assume = []
        for i, a in enumerate(assume):
            if a not in ASSUMPTIONS:
                self.err(path + ("assume", i), f"unknown assumption {a!r} (known: {', '.join(ASSUMPTIONS)})"
                         + _did_you_mean(a, ASSUMPTIONS))
            elif a == "positive" and shape != ():
                self.err(path + ("assume", i), "positive applies to scalars")
            elif a == "one_hot":
                if shape == () or shape[1] != 1:
                    self.err(path + ("assume", i), "one_hot applies to column vectors")
            elif a != "positive" and (shape == () or shape[0] != shape[1]):
                self.err(path + ("assume", i), f"{a} applies to square matrices")
        latex = decl.get("latex")
        if latex is not None and not isinstance(latex, str):
            self.err(path + ("latex",), "latex must be text")
            latex = None
        if latex is not None:
            from .texsafe import check_symbol_latex
            problem = check_symbol_latex(latex)
            if problem:
                self.err(path + ("latex",), problem)
                latex = None
        if decl.get("function"):
            args = decl.get("args", [])
            if not isinstance(args, list) or not args:
                self.err(path + ("args",), "a function needs args: a list of argument shapes")
                return None
            arg_shapes = []
            for i, a in enumerate(args):
                s = self.shape(a, path + ("args", i), dims)
                if s is None:
                    return None
                arg_shapes.append(s)
            return SymbolDecl(name, "function", shape, tuple(assume), latex, tuple(arg_shapes))
        return SymbolDecl(name, "array" if shape else "scalar", shape, tuple(assume), latex)

    # define
    def define(self, data, path: tuple, symbols: dict[str, SymbolDecl]) -> tuple[Definition, ...]:
        if data is None:
            self.err(path, "define is missing: give the function and its intermediate variables (f: ..., z: ...)")
            return ()
        if not isinstance(data, dict) or not data:
            self.err(path, f"define is a mapping of name: expression, not {_kind(data)}")
            return ()
        names = list(data)
        for n in names:
            if not isinstance(n, str) or not NAME_RE.match(n):
                if _split_by_flow_comma(n, data):
                    owner = _split_owner(n, data)
                    self.err(path + ((owner,) if owner else (n,)),
                             f"{n!r} is not a valid name: a comma split an expression of a "
                             "{...} mapping in two; quote the expression (f: \"max(0, x)\") "
                             "or use block style (one name: expression a line)", key=owner is None)
                    return ()
                self.err(path + (n,), f"{n!r} is not a valid name", key=True)
                return ()
            if n in symbols:
                self.err(path + (n,), f"{n!r} is both declared in symbols and defined", key=True)
                return ()
        scope = scope_of(symbols)
        scope_key = tuple(sorted(symbols.items()))
        parsed: dict[str, ex.Expr] = {}
        visiting: list[str] = []
        failed: set[str] = set()
        texts: dict[str, str] = {}

        def lookup(name: str):
            if name in parsed:
                return parsed[name].shape
            if name in failed:
                raise ExprError(f"{name} has an error of its own")
            if name not in data:
                return None
            if name in visiting:
                raise ExprError("circular definition: " + " -> ".join(visiting + [name]))
            visit(name)
            if name in failed:
                raise ExprError(f"{name} has an error of its own")
            return parsed[name].shape

        def visit(name: str) -> None:
            value = data[name]
            vpath = path + (name,)
            value = _list_literal(value)
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                self.err(vpath, f"an expression is text, not {_kind(value)}")
                failed.add(name)
                return
            text = str(value)
            texts[name] = text
            visiting.append(name)
            try:
                parsed[name] = self.parse(text, scope, scope_key, lookup)
            except ExprError as exc:
                failed.add(name)
                if "has an error of its own" not in exc.message:
                    self.err(vpath, exc.message, offset=exc.col if exc.col is not None else 0)
            finally:
                visiting.pop()

        for n in names:
            if n not in parsed and n not in failed:
                visit(n)
        return tuple(Definition(n, parsed[n], texts[n]) for n in names if n in parsed)

    def parse(self, text: str, scope: ex.Scope, scope_key: tuple, lookup) -> ex.Expr:
        """``ex.parse``, once per text and symbols: a text reached through YAML aliases (or a
        problem's define inherited by many parts) is parsed once, and the characters parsed per
        file are bounded."""
        key = (text, scope_key)
        if key in self.parsed:
            result, looked = self.parsed[key]
            try:
                same = all(lookup(n) == shape for n, shape in looked)
            except ExprError:
                same = False
            if same:
                if isinstance(result, ExprError):
                    raise result
                return result
        self.parsed_chars += len(text)
        if self.parsed_chars > MAX_PARSED_CHARS:
            raise ExprError(f"the file's expressions are too much work: more than {MAX_PARSED_CHARS:,} "
                            "characters to parse in all (aliases and inherited definitions count each time)")
        looked: list[tuple[str, ex.Shape | None]] = []
        failed_lookup = False

        def recording(name: str):
            nonlocal failed_lookup
            try:
                shape = lookup(name)
            except ExprError:
                failed_lookup = True
                raise
            looked.append((name, shape))
            return shape

        try:
            result = ex.parse(text, scope, recording)
        except ExprError as exc:
            if not failed_lookup:      # an error of the text itself, not of a definition it uses
                self.parsed[key] = (exc, looked)
            raise
        self.parsed[key] = (result, looked)
        return result

    # find
    def find(self, data, path: tuple, symbols: dict[str, SymbolDecl], define: tuple[Definition, ...],
             failed: set) -> tuple[Target, ...]:
        if data is None:
            self.err(path, "find is missing: the derivative to compute, like df/dx")
            return ()
        items = data if isinstance(data, list) else [data]
        if not items:
            self.err(path, "find is empty")
        defs = {d.name: d for d in define}
        out = []
        for i, item in enumerate(items):
            ipath = path + (i,) if isinstance(data, list) else path
            if not isinstance(item, str):
                self.err(ipath, f"a derivative is written df/dx or d2f/dx2, not {_kind(item)}")
                continue
            m2 = FIND2_RE.match(item)
            m1 = FIND_RE.match(item)
            m, order = None, 1
            if m2 and m2.group("f") in defs:
                m, order = m2, 2
            elif m1:
                m = m1
            if not m:
                self.err(ipath, f"{item!r}: write a derivative as df/dx (or d2f/dx2 for a Hessian)")
                continue
            f, x = m.group("f"), m.group("x")
            if f in failed or x in failed:
                continue    # its definition has an error of its own
            if f not in defs:
                self.err(ipath, f"{item!r}: {f!r} is not defined in define")
                continue
            xs = symbols.get(x)
            if xs is None:
                if x in defs:
                    pass  # a derivative w.r.t. an intermediate variable
                else:
                    self.err(ipath, f"{item!r}: {x!r} is not a declared symbol")
                    continue
            elif xs.kind not in ("scalar", "array"):
                self.err(ipath, f"{item!r}: {x!r} is a {xs.kind}, not a variable")
                continue
            if not _reaches(f, x, defs, self.free_symbols):
                self.err(ipath, f"{item!r}: {f} does not depend on {x} (not in its chain)")
                continue
            if order == 2:
                fs, xshape = defs[f].expr.shape, (xs.shape if xs else defs[x].expr.shape)
                if fs != ():
                    self.err(ipath, f"{item!r}: a Hessian is of a scalar (with respect to a scalar, a vector, "
                                    "or a matrix X: then with respect to vec X)")
                    continue
            out.append(Target(f, x, order, item.strip(), self.loc(ipath)))
        return tuple(out)


    # answer
    def answers(self, data, path: tuple, find: tuple[Target, ...], symbols: dict[str, SymbolDecl],
                define: tuple[Definition, ...], layout: str) -> tuple[Target, ...]:
        """The finds with their ``answer``: a mapping find -> expression, or one expression."""
        if isinstance(data, dict):
            items = list(data.items())
        elif len(find) == 1:
            items = [(find[0].text, data)]
        else:
            self.err(path, f"this part has {len(find)} finds: write answer as a mapping, "
                           f"{{{find[0].text}: ...}}")
            return find
        keyed = {find_key(t.text): i for i, t in enumerate(find)}
        scope = scope_of(symbols)
        shapes = {d.name: d.expr.shape for d in define}
        out = list(find)
        for key, value in items:
            vpath = path + (key,) if isinstance(data, dict) else path
            i = keyed.get(find_key(key)) if isinstance(key, str) else None
            if i is None:
                split = isinstance(data, dict) and _split_by_flow_comma(key, data)
                self.err(vpath, f"{key!r} is not a find of this part (finds: {', '.join(t.text for t in find)})"
                         + ("; a comma split an answer of a {...} mapping in two: quote the expression or "
                            "use block style" if split else ""), key=True)
                continue
            value = _list_literal(value)
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                self.err(vpath, f"an answer is an expression, not {_kind(value)}")
                continue
            text = str(value)
            try:
                expr = ex.parse(text, scope, shapes.get)
            except ExprError as exc:
                self.err(vpath, exc.message, offset=exc.col if exc.col is not None else 0)
                continue
            t = out[i]
            wrt_shape = symbols[t.wrt].shape if t.wrt in symbols else shapes[t.wrt]
            want = derivative_shape(shapes[t.of], wrt_shape, layout, t.order,
                                    by_vec=written_with_vec(t.of, define))
            if want is None:
                self.err(vpath, f"{t.text} is a tensor, which no expression writes; remove its answer")
            elif expr.shape != want and expr.shape != vec_row_shape(shapes[t.of], wrt_shape, layout, t.order,
                                                                    written_with_vec(t.of, define)):
                flipped = expr.shape != () and want != () and (expr.shape[1], expr.shape[0]) == want
                self.err(vpath, f"the answer is {ex.shape_str(expr.shape)}, but {t.text} in {layout} layout is "
                                f"{ex.shape_str(want)}" + (" (the transpose: the other layout?)" if flipped else ""))
            else:
                out[i] = replace(t, answer=Answer(expr, text, self.loc(vpath, offset=0)))
        return tuple(out)


def written_with_vec(name: str, define: tuple[Definition, ...]) -> bool:
    """Whether the definition of ``name``, or one it uses, applies vec."""
    defs = {d.name: d.expr for d in define}
    todo, seen = [name], set()
    while todo:
        n = todo.pop()
        if n in seen or n not in defs:
            continue
        seen.add(n)
        if ex.has_op(defs[n], "vec"):
            return True
        todo.extend(ex.free_symbols(defs[n]))
    return False


def vec_row_shape(of_shape: ex.Shape, wrt_shape: ex.Shape, layout: str, order: int, by_vec: bool) -> ex.Shape | None:
    """The row 1×(m·n) ∂f/∂(vec X)ᵀ that the engine may give for a scalar written with vec, by the matrix X
    (Magnus & Neudecker's first identification theorem), where ``derivative_shape`` says m×n: which of
    the two is known only once derived (norm(vec(X))**2 gives 2X)."""
    if by_vec and order == 1 and of_shape == () and wrt_shape != () and 1 not in wrt_shape and layout == "numerator":
        return (1, ex.dim_product(*wrt_shape))
    return None


def derivative_shape(of_shape: ex.Shape, wrt_shape: ex.Shape, layout: str, order: int = 1,
                     by_vec: bool = False) -> ex.Shape | None:
    """The shape of a derivative's expression (SPEC §4): in numerator layout a gradient by a vector
    is a row, a Jacobian M×N, a gradient by a matrix the matrix's shape; the denominator layout
    transposes all but the last.  None for a tensor, which no expression writes.  ``by_vec``: a
    column written with vec, by a matrix X, has its Jacobian with respect to vec X (numerator only)."""
    if by_vec and order == 1 and of_shape != () and of_shape[1] == 1 and wrt_shape != () \
            and 1 not in wrt_shape and layout == "numerator":
        return (of_shape[0], ex.dim_product(*wrt_shape))
    if order == 2 and wrt_shape != () and 1 not in wrt_shape:
        n = ex.dim_product(*wrt_shape)              # the Hessian with respect to vec X
        return (n, n)
    if order == 2:
        return () if wrt_shape == () else ex.norm_shape(wrt_shape[0], wrt_shape[0])
    of2 = ex.as_2d(of_shape)
    if wrt_shape == ():
        shape = of_shape
    elif wrt_shape[1] == 1 and of2[1] == 1:
        shape = ex.norm_shape(of2[0], wrt_shape[0])
    elif of_shape == ():
        return wrt_shape
    else:
        return None
    return ex.norm_shape(shape[1], shape[0]) if layout == "denominator" and shape != () else shape


def find_key(text: str) -> tuple | None:
    """``df/dx`` and ``d f / d x`` name the same find."""
    m2, m1 = FIND2_RE.match(text), FIND_RE.match(text)
    if m2:
        return (m2.group("f"), m2.group("x"), 2)
    return (m1.group("f"), m1.group("x"), 1) if m1 else None


def _list_literal(value):
    """``f: [log(x), sin(x)]`` is a YAML list of texts: the list literal, written again as text
    (YAML split it at the commas, also those inside a call, which joining puts back).  A list
    of lists becomes the nested literal, which the parser refuses with its own words."""
    def text(v):
        if isinstance(v, list) and v:
            parts = [text(a) for a in v]
            return None if None in parts else "[" + ", ".join(parts) + "]"
        if isinstance(v, (str, int, float)) and not isinstance(v, bool):
            return str(v)
        return None

    if isinstance(value, list):
        joined = text(value)
        return value if joined is None else joined
    return value


def _split_by_flow_comma(key, data: dict) -> bool:
    """``{f: max(0, x)}`` reads in YAML as ``{f: "max(0", "x)": null}``: a key with an unopened
    ``)`` (or ``]``) and no value, or a value with an unclosed ``(``."""
    if not isinstance(key, str):
        return False

    def unbalanced(t) -> int:
        t = str(t)
        return t.count("(") + t.count("[") - t.count(")") - t.count("]")

    return (data.get(key) is None and unbalanced(key) < 0) or \
        any(isinstance(v, str) and unbalanced(v) > 0 for v in data.values())


def _split_owner(key, data: dict) -> str | None:
    """The name whose expression the comma split (``f`` of ``{f: max(0, x)}``): the last key
    before ``key`` with a valid name and an unclosed ``(`` or ``[`` in its value."""
    owner = None
    for k, v in data.items():
        if k == key:
            return owner
        if isinstance(k, str) and NAME_RE.match(k) and isinstance(v, str) and \
                v.count("(") + v.count("[") > v.count(")") + v.count("]"):
            owner = k
    return None


def scope_of(symbols: dict[str, SymbolDecl]) -> ex.Scope:
    return ex.Scope(
        dims=frozenset(s.name for s in symbols.values() if s.kind == "dim"),
        shapes={s.name: s.shape for s in symbols.values() if s.kind in ("scalar", "array")},
        functions={s.name: (s.args, s.shape) for s in symbols.values() if s.kind == "function"},
    )


def _reaches(f: str, x: str, defs: dict[str, Definition], free_symbols=ex.free_symbols) -> bool:
    seen, stack = set(), [f]
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        names = free_symbols(defs[n].expr) if n in defs else frozenset()
        if x in names:
            return True
        stack.extend(m for m in names if m in defs)
    return False


def _kind(v) -> str:
    if v is None:
        return "nothing"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, dict):
        return "a mapping"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, (int, float)):
        return "a number"
    return "text"


def _letters(i: int) -> str:
    return chr(ord("a") + i) if i < 26 else f"p{i + 1}"


def collect_files(paths) -> list[Path]:
    """Problem files under the given files and folders, recursively, sorted."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            found = []
            for folder, dirs, names in os.walk(p, followlinks=False):   # linked folders are not entered
                dirs.sort()
                found.extend(Path(folder) / n for n in names if n.endswith((".yaml", ".yml")))
            out.extend(sorted(found))      # a linked file is listed, and refused by read_text
        else:
            out.append(p)
    return _once(out)


def _once(files: list[Path]) -> list[Path]:
    """Each file once, however it was named (``p/a.yaml`` and ``p/../p/a.yaml``, a file and its
    folder): by device and inode, without following links, else by absolute path."""
    seen, out = set(), []
    for f in files:
        try:
            st = os.lstat(f)
            key = (st.st_dev, st.st_ino)
        except OSError:
            key = os.path.abspath(f)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def duplicates(ids: dict) -> dict:
    """``{file: id}`` -> ``{file: the first file with its id}`` for every file whose id is taken:
    the first by sorted path keeps the id (its outputs are named by it)."""
    first: dict[str, Any] = {}
    out = {}
    for f in sorted(ids, key=str):
        if ids[f] in first:
            out[f] = first[ids[f]]
        else:
            first[ids[f]] = f
    return out
