"""The expression language (SPEC §2): a safe parser, shapes, and a printer back to text.

Text is parsed with Python's ``ast`` module and *never evaluated*: every node of
the syntax tree is checked against a short whitelist and translated into our
own immutable ``Expr`` tree, whose shape is inferred and checked on the way.

Shapes are ``()`` for a scalar and ``(rows, cols)`` otherwise; a declared vector
is a column ``(D, 1)``; a product whose result is 1×1 is a scalar.  A dim is an
``int`` or the name of a declared dimension.

Arithmetic on numbers is done while parsing, exactly and bounded (``fold``), so
the limits on numbers and exponents apply to values (``10**10``, ``x**(64*64)``),
and a scalar without symbols (``exp(1000)``, ``1/(1 - 1)``) must be finite.

To add an operator: add it to ``_CALLS`` (arity and shape rule), to the printer
``to_text`` and the LaTeX printer, to the evaluator in ``verify.py`` and give
it a derivative rule in ``calculus/rules.py``.
"""
from __future__ import annotations

import ast
import difflib
import io
import keyword
import math
import tokenize
import warnings
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable, Iterator, Mapping, Union

from .errors import ExprError

Dim = Union[int, str]
Shape = tuple  # () or (Dim, Dim)

SCALAR: Shape = ()

ELEMENTWISE = ("exp", "log", "sin", "cos", "tan", "tanh", "sigmoid", "sqrt", "softplus",
               "cosh", "sinh", "log1p", "relu", "abs", "step", "sign")
# Piecewise functions: differentiable except where their argument is 0 (a kink); their derivatives
# use step(u) = 1[u > 0] (0 at the kink) and sign(u) (0 at 0), whose own derivative is 0 away from 0.
PIECEWISE = ("relu", "abs", "step", "sign")
MAX_FUNCS = ("max", "maximum")       # the elementwise maximum of two arrays, a scalar broadcast
VECTOR_FUNCS = ("softmax", "log_softmax", "logsumexp", "mean")     # functions of a whole vector
# vec(X): the columns of X stacked (Magnus & Neudecker (1999), ch. 2); commutation(M, N): K_{M,N}
MATRIX_FUNCS = ("inv", "det", "trace", "tr", "diag", "sum", "norm", "eye", "ones", "kron", "vec", "commutation")

MAX_TEXT = 4000        # characters in one expression
MAX_DEPTH = 60         # nesting depth of the syntax tree
MAX_NODES = 2000       # nodes in one expression
MAX_NUMBER = 10**6     # largest number, as written or computed from numbers (10**10 is refused)
MIN_NUMBER = Fraction(1, 10**12)   # smallest non-zero number
MAX_EXPONENT = 64      # largest magnitude of a constant exponent, as computed (64*64 is refused)
MAX_LITERAL_CHARS = 40  # characters of one numeric literal, checked before it is converted


@dataclass(frozen=True, slots=True)
class Expr:
    """One node: ``op`` names the operation, ``args`` its operands.

    ops: ``sym`` (name), ``num`` (value), ``add``, ``mul`` (scalar factors times at
    most one array), ``had`` (Hadamard), ``div`` (elementwise / by scalar),
    ``pow``, ``matmul``, ``T``, ``fn`` (elementwise function ``name``), ``inv``,
    ``det``, ``trace``, ``diag`` (vector -> matrix), ``diagpart`` (matrix -> vector),
    ``sum``, ``norm``, ``eye``, ``ones``, ``zero``, ``kron``, ``vec`` (columns stacked),
    ``apply`` (abstract function ``name``), ``max`` (elementwise maximum), ``vfn`` (``softmax``,
    ``log_softmax``, ``logsumexp``, ``mean`` of a vector: ``name``).
    """

    op: str
    args: tuple = ()
    shape: Shape = ()
    name: str = ""
    value: Fraction | None = None

    def __repr__(self) -> str:  # compact, for test failures
        return f"<{to_text(self)} : {shape_str(self.shape)}>"


# --- shapes -------------------------------------------------------------------

def shape_str(shape: Shape) -> str:
    """``1×D`` style; a scalar is ``1×1``."""
    if shape == ():
        return "1×1"
    return "×".join(str(d) for d in shape)


def as_2d(shape: Shape) -> tuple:
    return (1, 1) if shape == () else shape


def norm_shape(rows: Dim, cols: Dim) -> Shape:
    return () if (rows == 1 and cols == 1) else (rows, cols)


def _dim_product(a: Dim, b: Dim) -> Dim:
    if isinstance(a, int) and isinstance(b, int):
        return a * b
    if a == 1:
        return b
    if b == 1:
        return a
    return dim_product(a, b)


def dim_factors(d: Dim) -> list[Dim]:
    """The factors of a dim: ``"M*N"`` is M and N, ``"2*P"`` is 2 and P."""
    if isinstance(d, int):
        return [d]
    return [int(p) if p.isdigit() else p for p in d.split("*")]


def dim_product(*dims: Dim) -> Dim:
    """The product of dims as one Dim, written the same whichever way it arises (``x: [N*M]`` in a
    shape and the rows of ``kron(a, x)`` with a ∈ R^M, x ∈ R^N are both ``M*N``): numbers
    multiplied together in front, names in alphabetical order."""
    number, names = 1, []
    for d in dims:
        for f in dim_factors(d):
            if isinstance(f, int):
                number *= f
            else:
                names.append(f)
    if not names:
        return number
    return "*".join(([str(number)] if number != 1 else []) + sorted(names))


# --- constructors (shape-checked) --------------------------------------------

def sym(name: str, shape: Shape) -> Expr:
    return Expr("sym", (), shape, name=name)


def num(value) -> Expr:
    return Expr("num", (), (), value=Fraction(value))


ZERO = num(0)
ONE = num(1)


def zero(shape: Shape) -> Expr:
    return ZERO if shape == () else Expr("zero", (), shape)


def eye(n: Dim) -> Expr:
    return ONE if n == 1 else Expr("eye", (), (n, n), name=str(n))


def ones(n: Dim) -> Expr:
    return ONE if n == 1 else Expr("ones", (), (n, 1), name=str(n))


def _flat(op: str, items) -> tuple:
    out = []
    for t in items:
        if t.op == op:
            out.extend(t.args)
        else:
            out.append(t)
    return tuple(out)


def ones_like(shape: Shape) -> Expr:
    """An array of ones: 1 (D×1), or 1 1ᵀ for a matrix."""
    if shape == ():
        return ONE
    r, c = shape
    return ones(r) if c == 1 else matmul(ones(r), transpose(ones(c)))


def add(*terms: Expr) -> Expr:
    terms = _flat("add", terms)
    if len(terms) == 1:
        return terms[0]
    shape = ()
    for t in terms:
        if t.shape == ():
            continue
        if shape == ():
            shape = t.shape
        elif t.shape != shape:
            raise ExprError(f"{shape_str(shape)} + {shape_str(t.shape)}: shapes differ")
    return Expr("add", tuple(terms), shape)


def neg(a: Expr) -> Expr:
    return mul(num(-1), a)


def sub(a: Expr, b: Expr) -> Expr:
    return add(a, neg(b))


def mul(*factors: Expr) -> Expr:
    """Product where all factors but at most one are scalars."""
    factors = _flat("mul", factors)
    if len(factors) == 1:
        return factors[0]
    arrays = [f for f in factors if f.shape != ()]
    if len(arrays) > 1:
        if len(arrays) == 2 and arrays[0].shape == arrays[1].shape:
            scalars = [f for f in factors if f.shape == ()]
            h = hadamard(arrays[0], arrays[1])
            return mul(*scalars, h) if scalars else h
        raise ExprError(" * ".join(shape_str(a.shape) for a in arrays)
                        + ": * multiplies a scalar by anything, or two arrays of the same shape")
    shape = arrays[0].shape if arrays else ()
    return Expr("mul", tuple(factors), shape)


def hadamard(a: Expr, b: Expr) -> Expr:
    if a.shape != b.shape:
        raise ExprError(f"{shape_str(a.shape)} * {shape_str(b.shape)}: elementwise product needs equal shapes")
    return Expr("had", (a, b), a.shape)


def div(a: Expr, b: Expr) -> Expr:
    if b.shape != () and b.shape != a.shape:
        raise ExprError(f"{shape_str(a.shape)} / {shape_str(b.shape)}: divide by a scalar or an array of the same shape")
    if a.shape == () and b.shape != ():
        raise ExprError(f"1×1 / {shape_str(b.shape)}: divide by a scalar or an array of the same shape")
    return Expr("div", (a, b), a.shape)


def power(a: Expr, b: Expr) -> Expr:
    if b.shape != ():
        raise ExprError(f"** {shape_str(b.shape)}: the exponent must be a scalar")
    return Expr("pow", (a, b), a.shape)


def matmul(*factors: Expr) -> Expr:
    factors = _flat("matmul", factors)
    if len(factors) == 1:
        return factors[0]
    rows, cols = as_2d(factors[0].shape)
    for f in factors[1:]:
        r, c = as_2d(f.shape)
        if cols != r:
            raise ExprError(f"({shape_str((rows, cols))}) @ ({shape_str((r, c))}) do not conform")
        cols = c
    return Expr("matmul", tuple(factors), norm_shape(rows, cols))


def transpose(a: Expr) -> Expr:
    if a.shape == ():
        return a
    return Expr("T", (a,), (a.shape[1], a.shape[0]))


def fn(name: str, a: Expr) -> Expr:
    return Expr("fn", (a,), a.shape, name=name)


def _square(a: Expr, what: str) -> None:
    s = as_2d(a.shape)
    if s[0] != s[1]:
        raise ExprError(f"{what} needs a square matrix, got {shape_str(a.shape)}")


def inv(a: Expr) -> Expr:
    _square(a, "inv")
    if a.shape == ():
        return power(a, num(-1))
    return Expr("inv", (a,), a.shape)


def det(a: Expr) -> Expr:
    _square(a, "det")
    return Expr("det", (a,), ())


def trace(a: Expr) -> Expr:
    _square(a, "trace")
    if a.shape == ():
        return a
    return Expr("trace", (a,), ())


def diag(a: Expr) -> Expr:
    """diag(v): vector -> diagonal matrix; diag(A): the diagonal of a square matrix."""
    if a.shape == ():
        return a
    r, c = a.shape
    if c == 1:
        return Expr("diag", (a,), (r, r))
    if r == c:
        return Expr("diagpart", (a,), (r, 1))
    raise ExprError(f"diag needs a vector or a square matrix, got {shape_str(a.shape)}")


def vsum(a: Expr) -> Expr:
    return a if a.shape == () else Expr("sum", (a,), ())


def norm(a: Expr) -> Expr:
    return Expr("norm", (a,), ())


def kron(a: Expr, b: Expr) -> Expr:
    ra, ca = as_2d(a.shape)
    rb, cb = as_2d(b.shape)
    return Expr("kron", (a, b), norm_shape(_dim_product(ra, rb), _dim_product(ca, cb)))


def vec(a: Expr) -> Expr:
    """vec(X): the columns of X stacked into one column, (m·n)×1; a column vector is its own vec."""
    if a.shape == () or a.shape[1] == 1:
        return a
    return Expr("vec", (a,), (_dim_product(a.shape[0], a.shape[1]), 1))


def commutation(m: Dim, n: Dim) -> Expr:
    """K_{mn}: the (mn)×(mn) permutation with K vec(A) = vec(Aᵀ) for A ∈ R^{m×n} (Magnus &
    Neudecker (1999), ch. 3); its dims are kept in ``name`` as "m,n"."""
    d = _dim_product(m, n)
    return ONE if d == 1 else Expr("commutation", (), (d, d), name=f"{m},{n}")


def commutation_dims(e: Expr) -> tuple[Dim, Dim]:
    m, n = e.name.split(",")
    return tuple(int(d) if d.isdigit() else d for d in (m, n))


def maximum(a: Expr, b: Expr) -> Expr:
    """max(a, b) entry by entry; a scalar is compared with every entry of the other."""
    if a.shape != () and b.shape != () and a.shape != b.shape:
        raise ExprError(f"max({shape_str(a.shape)}, {shape_str(b.shape)}): the arguments need equal "
                        "shapes, or one of them a scalar")
    return Expr("max", (a, b), a.shape if a.shape != () else b.shape)


def vector_fn(name: str, a: Expr) -> Expr:
    """softmax, log_softmax (a vector of the same shape), logsumexp, mean (a scalar) of a vector."""
    if a.shape == () or 1 not in a.shape:
        raise ExprError(f"{name} needs a vector, got {shape_str(a.shape)}")
    return Expr("vfn", (a,), a.shape if name in ("softmax", "log_softmax") else (), name=name)


def apply(name: str, args: tuple, shape: Shape) -> Expr:
    return Expr("apply", tuple(args), shape, name=name)


# --- numbers with a name: a dimension used as a number, the constants pi and e ------------
# A declared dim ``N`` in scalar arithmetic (``1/N * sum(v)``) is ``Expr("dim", name="N")``: a
# scalar whose value is the size the numerical check gives N; its derivative is 0.  ``pi`` and
# ``e`` are ``Expr("const", name=...)``, unless the problem declares those names (they shadow).

CONSTANTS = {"pi": math.pi, "e": math.e}


def dim_value(name: str) -> Expr:
    return Expr("dim", (), (), name=name)


def const(name: str) -> Expr:
    return Expr("const", (), (), name=name)


# --- list literals: [a, b, c] is a column vector ------------------------------------------
# Entries are scalars (a column, Parr & Howard §4.5.3) or rows 1×n of the same n (a matrix, row
# by row: what the Jacobian of a column of scalars by a vector is).  ``Expr("stack", entries)``.

MAX_LIST = 20           # entries of one list literal: each a row of the printed matrix, which fits a page


def stack(entries) -> Expr:
    entries = tuple(entries)
    if not entries:
        raise ExprError("an empty list is not a vector")
    if len(entries) > MAX_LIST:
        raise ExprError(f"a list has more than {MAX_LIST} entries")
    first = entries[0].shape
    for i, a in enumerate(entries):
        if a.shape != () and a.shape[0] != 1:
            raise ExprError(f"entry {i + 1} of the list is {shape_str(a.shape)}: a list's entries are "
                            "scalars (a column vector) or rows of equal length (a matrix, row by row); "
                            "nested lists and column vectors are not entries")
        if a.shape != first:
            raise ExprError(f"entry {i + 1} of the list is {shape_str(a.shape)}, entry 1 is "
                            f"{shape_str(first)}: all entries have the same shape")
    cols = 1 if first == () else first[1]
    return Expr("stack", entries, norm_shape(len(entries), cols))


def into_stack(op: str, args: tuple) -> Expr | None:
    """Scalars times a list, lists (plus scalars) added, a list divided by a scalar, the
    Hadamard product of two lists, as one list, entry by entry (``2 [a, b] + [c, d]`` is
    ``[2 a + c, 2 b + d]``); ``None`` where ``op(args)`` is not that."""
    if op == "div" and args[0].op == "stack" and args[1].shape == ():
        return stack(div(t, args[1]) for t in args[0].args)
    if op == "matmul":
        return _stack_product(*args) if len(args) == 2 else None
    if op == "had" and args[0].op == "stack" and args[1].op == "stack" and args[0].shape == args[1].shape:
        return stack(mul(a, b) for a, b in zip(args[0].args, args[1].args))
    if op not in ("mul", "add"):
        return None
    arrays = [a for a in args if a.shape != ()]
    if not arrays or any(a.op != "stack" for a in arrays):
        return None
    scalars = [a for a in args if a.shape == ()]
    if op == "mul":
        if len(arrays) != 1:
            return None
        return stack(mul(*scalars, t) for t in arrays[0].args)
    n = len(arrays[0].args)
    if any(len(a.args) != n for a in arrays):
        return None
    return stack(add(*scalars, *(a.args[i] for a in arrays)) for i in range(n))


def _row_entries(r: Expr) -> tuple | None:
    """The scalars of a row written as a list, [a, b].T; None for any other row."""
    return r.args[0].args if r.op == "T" and r.args[0].op == "stack" and r.args[0].shape[1] == 1 else None


def _stack_product(a: Expr, b: Expr) -> Expr | None:
    """A matrix written row by row with rows of scalars times a list, as one list: entry i is
    Σⱼ a_ij b_j (the vector chain rule's ∂f/∂g ∂g/∂x, Parr & Howard §4.5.3)."""
    if a.op != "stack" or b.op != "stack" or a.shape[1] != len(b.args):
        return None
    rows = [_row_entries(r) for r in a.args]
    if any(r is None for r in rows):
        return None
    return stack(add(*(mul(c, t) for c, t in zip(r, b.args))) for r in rows)


def function_names() -> frozenset[str]:
    """Every built-in function name: the one list that errors, shadowing and notes use (a new
    table of functions joins here)."""
    return frozenset(ELEMENTWISE) | frozenset(MATRIX_FUNCS) | frozenset(MAX_FUNCS) | frozenset(VECTOR_FUNCS)


def builtin_calls(e: Expr) -> frozenset[str]:
    """The built-in function names that ``to_text(e)`` writes (``diag`` for ``diagpart``)."""
    out = set()
    names = function_names()
    for n in nodes(e):
        if n.op in ("fn", "vfn"):
            out.add(n.name)
        elif n.op in names:
            out.add(n.op)
        elif n.op == "diagpart":
            out.add("diag")
        elif n.op == "zero":
            out.add("ones")             # 0 * ones(D)
    return frozenset(out)


def shadowed_in_text(e: Expr, declared) -> frozenset[str]:
    """The built-in functions ``to_text(e)`` calls whose names the problem declares: there the
    text would mean the declared name, so ``e`` has no text form in that problem."""
    return builtin_calls(e) & frozenset(declared)


def builtin_names() -> tuple[str, ...]:
    """The names the language gives a meaning; a problem that declares one shadows it."""
    return tuple(sorted(function_names() | set(CONSTANTS) | {"T"}))


# --- traversal ------------------------------------------------------------------

def nodes(*roots: Expr) -> Iterator[Expr]:
    """Every node under ``roots``, each shared subtree once (no recursion: trees may be deep)."""
    seen: set[int] = set()
    stack = list(roots)
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        yield n
        stack.extend(n.args)


def free_symbols(e: Expr) -> frozenset[str]:
    return frozenset(n.name for n in nodes(e) if n.op == "sym")


def depends_on(e: Expr, name: str) -> bool:
    return name in free_symbols(e)


def substitute(e: Expr, mapping: Mapping[str, Expr], _memo: dict | None = None) -> Expr:
    """Replace symbols by expressions of the same shape (shared subtrees visited once)."""
    memo = {} if _memo is None else _memo
    key = id(e)
    if key in memo:
        return memo[key]
    if e.op == "sym":
        out = mapping.get(e.name, e)
    elif not e.args:
        out = e
    else:
        new = tuple(substitute(a, mapping, memo) for a in e.args)
        out = e if all(n is o for n, o in zip(new, e.args)) else rebuild(e, new)
    memo[key] = out
    return out


def rebuild(e: Expr, args: tuple) -> Expr:
    """The same operation on new operands (shapes re-inferred)."""
    op = e.op
    if op == "add":
        return add(*args)
    if op == "mul":
        return mul(*args)
    if op == "matmul":
        return matmul(*args)
    if op in _UNARY_BUILDERS:
        return _UNARY_BUILDERS[op](args[0])
    if op == "fn":
        return fn(e.name, args[0])
    if op == "had":
        return hadamard(*args)
    if op == "div":
        return div(*args)
    if op == "pow":
        return power(*args)
    if op == "kron":
        return kron(*args)
    if op == "apply":
        return apply(e.name, args, e.shape)
    if op == "max":
        return maximum(*args)
    if op == "vfn":
        return vector_fn(e.name, args[0])
    if op == "pd":
        return Expr("pd", tuple(args), e.shape, name=e.name, value=e.value)
    if op == "stack":
        return stack(args)
    raise ExprError(f"cannot rebuild {op}")


_UNARY_BUILDERS: dict[str, Callable[[Expr], Expr]] = {
    "T": transpose, "inv": inv, "det": det, "trace": trace, "sum": vsum, "norm": norm,
    "diag": lambda a: Expr("diag", (a,), (a.shape[0], a.shape[0])),
    "diagpart": lambda a: Expr("diagpart", (a,), (a.shape[0], 1)),
}
_UNARY_BUILDERS["vec"] = vec


def has_op(e: Expr, op: str) -> bool:
    stack = [e]
    while stack:
        n = stack.pop()
        if n.op == op:
            return True
        stack.extend(n.args)
    return False


def tree_size(e: Expr, limit: int | None = None) -> int:
    """Nodes of ``e`` written out as a tree (shared subtrees counted each time), in time
    linear in the number of distinct nodes; stops counting past ``limit``."""
    memo: dict[int, int] = {}

    def size(n: Expr) -> int:
        key = id(n)
        if key not in memo:
            total = 1
            for a in n.args:
                total += size(a)
                if limit is not None and total > limit:
                    break
            memo[key] = total
        return memo[key]

    return size(e)


# --- constants --------------------------------------------------------------------
# Arithmetic on numbers is done at parse time, exactly, so the limits apply to the value
# (10**10 and x**(64*64) are refused like 10000000000 and x**4096); each operand is bounded
# before an operation, so the work of one operation is bounded too.

def bounded(v: Fraction) -> Fraction:
    """``v`` if it is within the limits on numbers, else an ``ExprError``; a fraction with
    more digits than a float holds is rounded to the float's 17 digits (as it is printed)."""
    if v != 0 and not MIN_NUMBER <= abs(v) <= MAX_NUMBER:
        raise ExprError(f"the number {_magnitude(v)} is out of range (0, or between 1e-12 and "
                        f"{MAX_NUMBER} in magnitude)")
    if v.denominator > 10**30:
        v = Fraction(repr(float(v)))
    return v


def _magnitude(v: Fraction) -> str:
    try:
        f = float(v)
    except OverflowError:
        f = 0.0
    if f != 0 or v == 0:
        return f"{f:.6g}"
    # beyond a float: the order of magnitude from the bit lengths
    bits = abs(v.numerator).bit_length() - v.denominator.bit_length()
    return f"{'-' if v < 0 else ''}1e{round(bits * math.log10(2)):+d} (about)"


def fold(op: str, a: Fraction, b: Fraction) -> Fraction | None:
    """``a op b`` for two bounded numbers, exactly; ``None`` where the result is irrational
    (a fractional power) or ``op`` is not arithmetic.  Errors for a division by zero and an
    exponent out of range."""
    if op == "+":
        return bounded(a + b)
    if op == "-":
        return bounded(a - b)
    if op == "*":
        return bounded(a * b)
    if op == "/":
        if b == 0:
            raise ExprError("division by zero")
        return bounded(a / b)
    if op == "**":
        check_exponent(float(b))
        if b.denominator != 1:
            if a < 0:
                raise ExprError("a negative number to a fractional power is not a real number")
            return None
        if a == 0 and b < 0:
            raise ExprError("division by zero (0 to a negative power)")
        return bounded(a ** int(b))
    return None         # @ of two numbers: refused with its own message


def check_exponent(p: float) -> None:
    if not math.isfinite(p):
        raise ExprError("the exponent is not a finite number")
    if abs(p) > MAX_EXPONENT:
        raise ExprError(f"the exponent {p:.6g} is too large (at most {MAX_EXPONENT} in magnitude)")


def _softplus(a: float) -> float:
    return max(a, 0.0) + math.log1p(math.exp(-abs(a)))


_SCALAR_FN = {
    "exp": math.exp, "log": math.log, "sin": math.sin, "cos": math.cos, "tan": math.tan, "tanh": math.tanh,
    "sigmoid": lambda a: 0.5 * (1.0 + math.tanh(0.5 * a)), "sqrt": math.sqrt, "softplus": _softplus,
    "cosh": math.cosh, "sinh": math.sinh, "log1p": math.log1p, "relu": lambda a: max(a, 0.0), "abs": abs,
    "step": lambda a: float(a > 0), "sign": lambda a: float((a > 0) - (a < 0)),
}


def constant_value(e: Expr, memo: dict | None = None) -> float | None:
    """The value of a scalar without symbols (``exp(2) / 3``) as a float (inf or nan where it
    is not finite); ``None`` if ``e`` depends on a symbol or is an array."""
    memo = {} if memo is None else memo
    key = id(e)
    if key not in memo:
        memo[key] = (e, _constant_value(e, memo))      # e kept alive: ids stay unique
    return memo[key][1]


def _constant_value(e: Expr, memo: dict) -> float | None:
    if e.op == "num":
        return float(e.value)
    if e.op == "const":
        return CONSTANTS[e.name]
    if e.shape != () or not e.args or e.op in ("apply", "pd"):
        return None
    vals = []
    for a in e.args:
        v = constant_value(a, memo)
        if v is None:
            return None
        vals.append(v)
    try:
        if e.op == "add":
            return math.fsum(vals)
        if e.op in ("mul", "had", "kron"):
            return math.prod(vals)
        if e.op == "div":
            return vals[0] / vals[1] if vals[1] != 0 else math.nan
        if e.op == "pow":
            return math.pow(vals[0], vals[1])
        if e.op == "fn":
            return _SCALAR_FN[e.name](vals[0])
        if e.op == "norm":
            return abs(vals[0])
        if e.op == "max":
            return max(vals)
        if e.op in ("det", "trace", "sum", "diag", "diagpart", "T"):
            return vals[0]
    except OverflowError:
        return math.inf
    except (ValueError, ZeroDivisionError):
        return math.nan
    return None


# --- parser ------------------------------------------------------------------------

@dataclass(frozen=True)
class Scope:
    """What names mean while parsing: dims, typed symbols, abstract functions."""

    dims: frozenset = frozenset()
    shapes: Mapping[str, Shape] = field(default_factory=dict)
    functions: Mapping[str, tuple] = field(default_factory=dict)   # name -> (arg shapes, result shape)


_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.MatMult: "@", ast.Pow: "**"}
_OTHER_BINOPS = {ast.BitXor: "^", ast.BitOr: "|", ast.BitAnd: "&", ast.Mod: "%", ast.FloorDiv: "//",
                 ast.LShift: "<<", ast.RShift: ">>"}

_CONSTRUCT_NAMES = {
    ast.Lambda: "a lambda", ast.ListComp: "a comprehension", ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension", ast.GeneratorExp: "a generator expression",
    ast.Subscript: "a subscript", ast.Compare: "a comparison", ast.BoolOp: "a boolean operator",
    ast.IfExp: "a conditional expression", ast.List: "a list", ast.Tuple: "a tuple",
    ast.Dict: "a dict", ast.Set: "a set", ast.JoinedStr: "an f-string", ast.Starred: "a starred argument",
    ast.NamedExpr: "an assignment expression", ast.Await: "await", ast.Yield: "yield",
    ast.YieldFrom: "yield",
}


def _family(op: ast.operator) -> str | None:
    """Operators whose chains build one flat node (``add``, ``mul``, ``matmul``)."""
    return {ast.Add: "+", ast.Sub: "+", ast.Mult: "*", ast.MatMult: "@"}.get(type(op))


def _missing_operator(text: str) -> ExprError | None:
    """Two operands side by side (``W x``, ``2x``), as a book writes a product: say which operator
    to write, with the caret between them.  ``None`` where the text has no such pair."""
    toks = []
    try:                # the tokens before an unclosed bracket still count: "sum(W x"
        for t in tokenize.generate_tokens(io.StringIO(text).readline):
            if t.type in (tokenize.NAME, tokenize.NUMBER, tokenize.OP):
                toks.append(t)
    except (tokenize.TokenError, SyntaxError):
        pass
    operand = (tokenize.NAME, tokenize.NUMBER)
    for a, b in zip(toks, toks[1:]):
        if keyword.iskeyword(a.string) or keyword.iskeyword(b.string) or a.start[0] != b.start[0]:
            continue
        if (a.type in operand or a.string in (")", "]")) and b.type in operand:
            if a.type not in operand:
                return ExprError(f"missing operator before {b.string}: write @ (or *) between the two operands",
                                 col=a.end[1])
            fix = f"{a.string} * {b.string}" if tokenize.NUMBER in (a.type, b.type) else \
                f"{a.string} @ {b.string} (or {a.string} * {b.string})"
            return ExprError(f"missing operator between {a.string} and {b.string}: write {fix}", col=a.end[1])
    return None


class _Parser:
    def __init__(self, text: str, scope: Scope, lookup: Callable[[str], Shape | None] | None):
        self.text = text
        self.scope = scope
        self.lookup = lookup
        self.nodes = 0
        self.consts: dict = {}      # memo of constant_value
        self.depths: dict = {}      # memo of _depth: id -> (expr kept alive, depth)

    def error(self, node, message: str) -> ExprError:
        return ExprError(message, col=getattr(node, "col_offset", 0))

    def parse(self) -> Expr:
        text = self.text
        if len(text) > MAX_TEXT:
            raise ExprError(f"expression longer than {MAX_TEXT} characters")
        depth = 0
        for i, ch in enumerate(text):
            if ch in "([{":
                depth += 1
                if depth > MAX_DEPTH:
                    raise ExprError(f"expression nested more than {MAX_DEPTH} deep", col=i)
            elif ch in ")]}":
                depth -= 1
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")       # SyntaxWarning on odd literals: we report errors ourselves
                tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as exc:
            if not exc.offset and exc.msg == "invalid syntax":     # Python gives no column at the end
                raise ExprError("syntax error: the expression ends too early (an operand is missing)",
                                col=len(text.rstrip())) from None
            missing = _missing_operator(text)
            if missing:
                raise missing from None
            col = max((exc.offset or 1) - 1, 0)
            raise ExprError(f"syntax error: {exc.msg}", col=col) from None
        except (RecursionError, MemoryError, ValueError) as exc:
            raise ExprError(f"expression too complex to parse ({type(exc).__name__})") from None
        offset = len(text) - len(text.lstrip())
        try:
            e = self.visit(tree.body, 0)
        except RecursionError:
            raise ExprError(f"expression nested more than {MAX_DEPTH} deep") from None
        except ExprError as exc:
            if exc.col is not None:
                exc.col += offset
            raise
        return e

    def visit(self, node, depth: int) -> Expr:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.error(node, f"expression has more than {MAX_NODES} parts")
        if depth > MAX_DEPTH:
            raise self.error(node, f"expression nested more than {MAX_DEPTH} deep")
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            what = _CONSTRUCT_NAMES.get(type(node), type(node).__name__)
            raise self.error(node, f"{what} is not part of the expression language")
        try:
            e = method(node, depth + 1)
            if e.op != "num" and e.shape == ():
                self._check_constant(e)
            return e
        except ExprError as exc:
            if exc.col is None:
                exc.col = getattr(node, "col_offset", 0)
            raise

    def _check_constant(self, e: Expr) -> None:
        """A scalar without symbols (``exp(1000)``, ``2**0.5``) is within the limits on numbers."""
        v = constant_value(e, self.consts)
        if v is None:
            return
        if not math.isfinite(v):
            raise ExprError(f"{to_text(e)} is not a finite number")
        if abs(v) > MAX_NUMBER:
            raise ExprError(f"{to_text(e)} is larger than {MAX_NUMBER}")

    def visit_Constant(self, node, depth) -> Expr:
        v = node.value
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise self.error(node, f"the literal {v!r} is not a number")
        if isinstance(v, float) and not math.isfinite(v):
            raise self.error(node, "numbers must be finite")
        if (node.end_col_offset or 0) - node.col_offset > MAX_LITERAL_CHARS:
            raise self.error(node, f"a number is longer than {MAX_LITERAL_CHARS} characters")
        return num(bounded(Fraction(repr(v)) if isinstance(v, float) else Fraction(v)))

    def visit_Name(self, node, depth) -> Expr:
        name = node.id
        if name.startswith("_"):
            raise self.error(node, f"the name {name!r} is not allowed")
        if name in self.scope.shapes:
            return sym(name, self.scope.shapes[name])
        if self.lookup is not None:
            shape = self.lookup(name)
            if shape is not None:
                return sym(name, shape)
        if name in self.scope.dims:
            return dim_value(name)          # N as a number: the size of the dimension
        if name in self.scope.functions:
            raise self.error(node, f"{name} is a function; call it with its arguments")
        if name in function_names():
            raise self.error(node, f"{name} is a function; call it with its arguments")
        if name in CONSTANTS:
            return const(name)
        raise self.error(node, f"undeclared name {name!r}")

    def visit_List(self, node, depth) -> Expr:
        """``[a, b, c]``: a column vector of scalars (rows of equal length: a matrix, row by row)."""
        if len(node.elts) > MAX_LIST:
            raise self.error(node, f"a list has more than {MAX_LIST} entries")
        entries = []
        for a in node.elts:
            if isinstance(a, ast.List):
                raise self.error(a, "nested lists are not part of the expression language: a list is a "
                                    "column of scalars; to stack rows, write [u.T, v.T]")
            entries.append(self.visit(a, depth))
        if len(entries) == 1 and entries[0].shape == ():
            return entries[0]
        try:
            return stack(entries)
        except ExprError as exc:
            raise self.error(node, exc.message) from None

    def _not_a_function(self, name: str) -> str:
        """Why ``name(...)`` is not a call here: ``name`` is declared as something else, which
        shadows a built-in function of that name.  ``""`` if it may be a function."""
        if name in self.scope.functions:
            return ""
        if name in self.scope.shapes:
            what = "a declared " + ("scalar" if self.scope.shapes[name] == () else "array")
        elif name in self.scope.dims:
            what = "a declared dimension"
        elif self.lookup is not None and self.lookup(name) is not None:
            what = "a name from define"
        else:
            return ""
        if name in function_names():
            return f"{name} is {what} in this problem, so {name}() is not the built-in function here"
        return f"{name} is {what}, not a function"

    def _unknown_function(self, name: str) -> str:
        """``unknown function 'x'``, the nearest name that exists, and the list of them."""
        known = sorted(function_names() | set(self.scope.functions))
        near = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f"; did you mean {near[0]}?" if near else ""
        return f"unknown function {name!r}{hint} (the functions: {', '.join(known)})"

    def visit_UnaryOp(self, node, depth) -> Expr:
        a = self.visit(node.operand, depth)
        if isinstance(node.op, ast.USub):
            if a.op == "num":
                return num(-a.value)
            return neg(a)
        if isinstance(node.op, ast.UAdd):
            return a
        raise self.error(node, "only unary + and - are allowed")

    def visit_BinOp(self, node, depth) -> Expr:
        if isinstance(node.op, ast.BitXor):     # checked before the operands: in X^T, T is no name
            raise ExprError("`^` is not a power or transpose here: write `X.T` or `x**2`",
                            col=self._op_col(node, "^"))
        # A chain ``a + b - c + ...`` (or ``a * b * c``, ``a @ b @ c``) is one n-ary node, not one
        # level per operator: it is built in a loop, and its depth is that of the tree it builds.
        chain = [node]
        while isinstance(chain[-1].left, ast.BinOp) and _family(chain[-1].left.op) == _family(node.op) is not None:
            chain.append(chain[-1].left)
            self.nodes += 1
            if self.nodes > MAX_NODES:
                raise self.error(node, f"expression has more than {MAX_NODES} parts")
        e = self.visit(chain[-1].left, depth)
        for link in reversed(chain):
            e = self._binop(link, e, self.visit(link.right, depth))
            if link is not node and e.op != "num" and e.shape == ():
                self._check_constant(e)         # (the last one is checked by ``visit``)
            if self._depth(e) > MAX_DEPTH:
                raise self.error(link, f"expression nested more than {MAX_DEPTH} deep")
        return e

    def _depth(self, e: Expr) -> int:
        """Nesting depth of ``e``; each link of a chain is remembered, so this stays shallow."""
        key = id(e)
        if key not in self.depths:
            self.depths[key] = (e, 1 + max((self._depth(a) for a in e.args), default=0))
        return self.depths[key][1]

    def _binop(self, node, a: Expr, b: Expr) -> Expr:
        op = _BINOPS.get(type(node.op))
        if op is None:
            sign = _OTHER_BINOPS.get(type(node.op))
            what = f"`{sign}`" if sign else type(node.op).__name__
            raise ExprError(f"the operator {what} is not part of the expression language",
                            col=self._op_col(node, sign) if sign else node.col_offset)
        col = self._op_col(node, op)
        try:
            if a.op == "num" and b.op == "num":
                folded = fold(op, a.value, b.value)
                if folded is not None:
                    return num(folded)
            if op == "+":
                return add(a, b)
            if op == "-":
                return sub(a, b)
            if op == "*":
                if a.shape != () and b.shape != () and a.shape == b.shape:
                    return hadamard(a, b)
                return mul(a, b)
            if op == "/":
                if constant_value(b, self.consts) == 0:
                    raise ExprError("division by zero")
                return div(a, b)
            if op == "@":
                if a.shape == () or b.shape == ():
                    raise ExprError(f"({shape_str(a.shape)}) @ ({shape_str(b.shape)}): @ needs arrays on both sides; use * for a scalar")
                return matmul(a, b)
            if op == "**":
                if b.shape != ():
                    raise ExprError("** needs a scalar exponent")
                p = constant_value(b, self.consts)
                if p is not None:
                    check_exponent(p)
                return power(a, b)
        except ExprError as exc:
            raise ExprError(exc.message, col=col) from None
        raise self.error(node, "unsupported operator")

    def _op_col(self, node, op: str) -> int:
        """The column of the operator between the two operands, for errors that point at it."""
        left_end = getattr(node.left, "end_col_offset", None)
        right_start = node.right.col_offset
        if getattr(node.left, "end_lineno", 1) == getattr(node.right, "lineno", 1) == 1 and left_end is not None:
            text = self.text.strip()
            found = text.find(op, left_end, right_start)
            if found >= 0:
                return found
        return node.col_offset

    def visit_Attribute(self, node, depth) -> Expr:
        if node.attr != "T":
            raise self.error(node, f"attribute access .{node.attr} is not allowed (only .T, the transpose)")
        a = self.visit(node.value, depth)
        return transpose(a)

    def _dim_arg(self, node) -> Dim:
        if isinstance(node, ast.Name) and node.id in self.scope.dims:
            return node.id
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            # a product of dims, eye(M*N): the size of vec X or of a Kronecker product
            d = dim_product(self._dim_arg(node.left), self._dim_arg(node.right))
            if isinstance(d, int) and not 1 <= d <= 10000:
                raise self.error(node, "expected a declared dimension or a positive integer")
            return d
        if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
            if 1 <= node.value <= 10000:
                return node.value
        raise self.error(node, "expected a declared dimension or a positive integer")

    def visit_Call(self, node, depth) -> Expr:
        if not isinstance(node.func, ast.Name):
            raise self.error(node, "only calls of named functions are allowed")
        if node.keywords:
            raise self.error(node, "keyword arguments are not allowed")
        name = node.func.id
        if name.startswith("_"):
            raise self.error(node, f"the name {name!r} is not allowed")
        shadowed = self._not_a_function(name)
        if shadowed:
            raise self.error(node, shadowed)
        nargs = len(node.args)
        if name in ("eye", "ones"):
            if nargs != 1:
                raise self.error(node, f"{name}() takes one dimension")
            n = self._dim_arg(node.args[0])
            return eye(n) if name == "eye" else ones(n)
        if name == "commutation":
            if nargs != 2:
                raise self.error(node, "commutation() takes two dimensions, commutation(M, N)")
            return commutation(self._dim_arg(node.args[0]), self._dim_arg(node.args[1]))
        if name in self.scope.functions:
            arg_shapes, result = self.scope.functions[name]
            args = tuple(self.visit(a, depth) for a in node.args)
            if len(args) != len(arg_shapes):
                raise self.error(node, f"{name} takes {len(arg_shapes)} arguments, got {len(args)}")
            for a, s, an in zip(args, arg_shapes, node.args):
                if a.shape != s:
                    raise self.error(an, f"argument of {name}: expected {shape_str(s)}, got {shape_str(a.shape)}")
            return apply(name, args, result)
        if name in MAX_FUNCS or name in VECTOR_FUNCS:
            return self._function_of_arrays(node, name, depth)
        arity = 2 if name == "kron" else 1
        if name not in ELEMENTWISE and name not in MATRIX_FUNCS:
            raise self.error(node, self._unknown_function(name))
        if nargs != arity:
            raise self.error(node, f"{name}() takes {arity} argument{'s' if arity > 1 else ''}, got {nargs}")
        args = [self.visit(a, depth) for a in node.args]
        try:
            if name in ELEMENTWISE:
                return fn(name, args[0])
            if name == "kron":
                return kron(*args)
            if name == "vec":
                return vec(args[0])
            builder = {"inv": inv, "det": det, "trace": trace, "tr": trace, "diag": diag,
                       "sum": vsum, "norm": norm}[name]
            return builder(args[0])
        except ExprError as exc:
            raise ExprError(exc.message, col=node.col_offset) from None

    def _function_of_arrays(self, node, name: str, depth: int) -> Expr:
        """max(a, b) / maximum(a, b), and the functions of a whole vector (softmax, ...)."""
        arity = 2 if name in MAX_FUNCS else 1
        if len(node.args) != arity:
            raise self.error(node, f"{name}() takes {arity} argument{'s' if arity > 1 else ''}, "
                                   f"got {len(node.args)}")
        args = [self.visit(a, depth) for a in node.args]
        try:
            return maximum(*args) if arity == 2 else vector_fn(name, args[0])
        except ExprError as exc:
            raise ExprError(exc.message, col=node.col_offset) from None


def parse(text: str, scope: Scope, lookup: Callable[[str], Shape | None] | None = None) -> Expr:
    """Parse ``text`` into an ``Expr`` (shapes checked). Raises ``ExprError`` with a column."""
    if not isinstance(text, str):
        raise ExprError("an expression must be a string or a number")
    if "\x00" in text:
        raise ExprError("the expression contains a NUL byte")
    return _Parser(text, scope, lookup).parse()


# --- printer back to text ------------------------------------------------------------
# Precedence follows Python's: ** > unary - > * / @ > + -.

_PREC = {"add": 1, "mul": 2, "had": 2, "div": 2, "matmul": 2, "neg": 3, "pow": 4, "atom": 5}


def _prec(e: Expr) -> int:
    if e.op == "num":
        return _PREC["atom"] if e.value >= 0 and e.value.denominator == 1 else _PREC["mul"]
    if e.op == "mul" and e.args and e.args[0].op == "num" and e.args[0].value == -1:
        return _PREC["neg"] - 0.5 if len(e.args) == 2 else _PREC["mul"]
    return _PREC.get(e.op, _PREC["atom"])


def _num_text(v: Fraction) -> str:
    if v.denominator == 1:
        return str(v.numerator)
    if max(abs(v.numerator), v.denominator) > MAX_NUMBER:
        return repr(float(v))          # 646410.5, not 1292821/2: literals stay within MAX_NUMBER
    return f"{v.numerator}/{v.denominator}"


def to_text(e: Expr) -> str:
    """Print back to the expression language; the text parses again to an equal value."""
    op = e.op
    if op == "sym":
        return e.name
    if op == "num":
        return _num_text(e.value)
    if op in ("dim", "const"):
        return e.name
    if op == "stack":
        return "[" + ", ".join(to_text(a) for a in e.args) + "]"
    if op == "zero":
        r, c = e.shape
        # 0 * ones(r) @ ones(c).T is the only way to write a zero array in the language
        if r == 1:
            return f"0 * ones({c}).T"
        return f"0 * ones({r}) @ ones({c}).T" if c != 1 else f"0 * ones({r})"
    if op in ("eye", "ones"):
        return f"{op}({e.name})"
    if op == "add":
        out = _wrap(e.args[0], _PREC["add"], False)
        for t in e.args[1:]:
            if t.op == "mul" and t.args[0].op == "num" and t.args[0].value < 0:
                c = -t.args[0].value
                rest = t.args[1:]
                inner = mul(num(c), *rest) if c != 1 else (rest[0] if len(rest) == 1 else mul(*rest))
                out += " - " + _wrap(inner, _PREC["add"], True)
            elif t.op == "num" and t.value < 0:
                out += " - " + _num_text(-t.value)
            else:
                out += " + " + _wrap(t, _PREC["add"], True)
        return out
    if op == "mul":
        args = list(e.args)
        den = [f for f in args if f.op == "pow" and f.shape == () and f.args[1].op == "num" and f.args[1].value < 0]
        if den and len(den) < len(args):
            # s**(-1) * x.T reads better as x.T / s
            top = [f for f in args if not any(f is d for d in den)]
            bottom = [d.args[0] if d.args[1].value == -1 else power(d.args[0], num(-d.args[1].value)) for d in den]
            numer = top[0] if len(top) == 1 else mul(*top)
            denom = bottom[0] if len(bottom) == 1 else mul(*bottom)
            return f"{_wrap(numer, _PREC['mul'], False)} / {_wrap(denom, _PREC['mul'], True)}"
        if args[0].op == "num" and args[0].value == -1 and len(args) > 1:
            rest = args[1:]
            inner = rest[0] if len(rest) == 1 else mul(*rest)
            return "-" + _wrap(inner, _PREC["neg"], False) if len(rest) == 1 else "-" + _wrap(inner, _PREC["mul"], False)
        # c * A @ B is (c * A) @ B in Python, equal to c * (A @ B) for a scalar c
        return " * ".join(_wrap(a, _PREC["mul"], i > 0 and not (a.op == "matmul" and i == len(args) - 1))
                          for i, a in enumerate(args))
    if op == "had":
        return f"{_wrap(e.args[0], 2, False)} * {_wrap(e.args[1], 2, True)}"
    if op == "div":
        return f"{_wrap(e.args[0], 2, False)} / {_wrap(e.args[1], 2, True)}"
    if op == "matmul":
        return " @ ".join(_wrap(a, 2, i > 0) for i, a in enumerate(e.args))
    if op == "pow":
        return f"{_wrap(e.args[0], _PREC['pow'], True)}**{_wrap(e.args[1], _PREC['pow'], False)}"
    if op == "T":
        return f"{_wrap(e.args[0], _PREC['atom'], False)}.T"
    if op == "fn":
        return f"{e.name}({to_text(e.args[0])})"
    if op == "sum" and e.args[0].op == "ones":
        return _count_text(e.args[0].name)
    if op in ("inv", "det", "trace", "sum", "norm", "diag", "diagpart"):
        name = "diag" if op == "diagpart" else op
        return f"{name}({to_text(e.args[0])})"
    if op == "vec":
        return f"vec({to_text(e.args[0])})"
    if op == "commutation":
        return "commutation({}, {})".format(*commutation_dims(e))
    if op == "pd":
        # no text form in the language: the derivative of an abstract function
        return f"d{e.name}_d{int(e.value) + 1}({', '.join(to_text(a) for a in e.args)})"
    if op == "vfn":
        return f"{e.name}({to_text(e.args[0])})"
    if op == "max":
        return f"max({to_text(e.args[0])}, {to_text(e.args[1])})"
    if op in ("kron", "apply"):
        name = "kron" if op == "kron" else e.name
        return f"{name}({', '.join(to_text(a) for a in e.args)})"
    raise ExprError(f"cannot print {op}")


def _count_text(n) -> str:
    """sum(ones(N)), the number of entries N, written as the README says a dim as a number is: ``N``
    (a product of dims in parentheses, ``(M * N)``)."""
    factors = [f.strip() for f in str(n).split("*")]
    return factors[0] if len(factors) == 1 else "(" + " * ".join(factors) + ")"


def _wrap(e: Expr, prec: float, right: bool) -> str:
    p = _prec(e)
    s = to_text(e)
    if p < prec or (right and p == prec and prec < _PREC["atom"]):
        return f"({s})"
    return s
