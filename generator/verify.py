"""Numerical checks: every step and every result against central finite differences.

Differences are central, of fourth order, with a step relative to each entry
(1e-4 of its magnitude, at least 1e-5), so log(u) at u = 1e-3 stays in its domain.
Each dim gets a small concrete size (``sizes.py``; every array's size is bounded
before it is allocated), each declared symbol a random value that respects its
assumptions, and each ``define`` name the value of its definition.  A Jacobian
in numerator layout is compared entry by entry with central differences of the
expression it claims to differentiate, at ``POINTS`` points; the largest
relative error is reported.  A disagreement is confirmed with smaller steps (a
second opinion) before a step is called wrong (``CheckFailed``, never a
footnote).  A point that says nothing (values 0, infinite, undefined or too small
to compare; differences unstable) is replaced by another, drawn at smaller scales
too; a check where no point says anything fails the problem, it is never
reported as checked.  A point near a kink (where the argument of relu, abs, step
or sign, or a - b of max(a, b), is near 0) is drawn again: differences across a
kink say nothing about the derivative on either side.

The random points are seeded from the problem's id, so documents are
byte-identical from run to run.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from math import prod

import numpy as np

from .errors import CheckFailed, ExprError, UnsupportedError
from .expr import CONSTANTS, MAX_NODES, MAX_TEXT, Expr, Scope, commutation_dims, has_op, nodes, parse, shadowed_in_text, to_text, \
    tree_size
from .calculus.rules import transposed_in
from .calculus.simplify import simplify
from .sizes import MAX_ENTRIES, ORDERS, concrete, dim_sizes, part_size_errors, too_large
from .sizes import size as _size
from .trace import Check, Result, Step

POINTS = 3
TOLERANCE = 1e-6
HESSIAN_TOLERANCE = 1e-4   # second differences lose more digits
HESSIAN_STEP_SCALE = 5     # ... and take larger steps: round-off grows as 1/h²
FLOOR = 1e-3   # errors are relative to max(|J|, FLOOR)


# central differences of fourth order: (-f(x+2h) + 8 f(x+h) - 8 f(x-h) + f(x-2h)) / 12h
FD_STEP = 1e-4
FD_FLOOR = 0.1         # entries smaller than this get the step of an entry of this size
SECOND_OPINION = 1 / 8  # a disagreement is confirmed with steps this much smaller
EXTRA_SCALES = (1.0, 0.1, 0.01, 1.0, 0.1, 0.01)   # the points drawn beyond POINTS where one says nothing
FD_STENCIL = (2, 1, -1, -2)


def _stencil(vals):
    return (-vals[0] + 8 * vals[1] - 8 * vals[2] + vals[3]) / 12


def _sigmoid(a):
    return 0.5 * (1.0 + np.tanh(0.5 * a))


_FN = {
    "exp": np.exp, "log": np.log, "sin": np.sin, "cos": np.cos, "tan": np.tan, "tanh": np.tanh,
    "sigmoid": _sigmoid, "sqrt": np.sqrt, "softplus": lambda a: np.logaddexp(0.0, a),
    "cosh": np.cosh, "sinh": np.sinh, "log1p": np.log1p, "relu": lambda a: np.maximum(a, 0.0),
    "abs": np.abs, "step": lambda a: np.heaviside(a, 0.0), "sign": np.sign,
}

KINK_MARGIN = 1e-2     # a point is this far (times its scale) from every kink: |u| for relu(u), |a - b| for max(a, b)
KINK_TRIES = 20        # draws before a point near a kink is given up
KINK_SAFETY = 10       # ... and this many times what the widest difference step moves its argument


def _logsumexp(v):
    m = float(np.max(v))
    return m + float(np.log(np.sum(np.exp(v - m))))


def _vector_fn(name: str, v):
    """softmax, log_softmax, logsumexp, mean of a vector (a column or a row), stably."""
    v = np.asarray(v, dtype=float)
    if name == "mean":
        return float(np.mean(v))
    lse = _logsumexp(v)
    if name == "logsumexp":
        return lse
    return v - lse if name == "log_softmax" else np.exp(v - lse)


def kink_arguments(e: Expr):
    """The arguments whose sign changes where ``e`` has a kink: u of relu(u), abs(u), step(u),
    sign(u), and a - b of max(a, b)."""
    from .expr import PIECEWISE, sub
    for n in nodes(e):
        if n.op == "fn" and n.name in PIECEWISE:
            yield n.args[0]
        elif n.op == "max":
            yield sub(n.args[0], n.args[1])


def near_kink(exprs, env: dict, sizes: dict[str, int], margin: float, moved: dict | None = None) -> bool:
    """Whether some kink argument of ``exprs`` has an entry within ``margin`` of 0 at this point, or
    (given ``moved``, the point moved by a step of the differences) within ``KINK_SAFETY`` times what
    that step moves it: finite differences across a kink say nothing about either side."""
    for u in (u for e in exprs for u in kink_arguments(e)):
        with np.errstate(all="ignore"):
            here = np.asarray(evaluate(u, env, sizes), dtype=float)
            gap = np.full(here.shape, margin)
            if moved is not None:
                gap = np.maximum(gap, KINK_SAFETY * np.abs(np.asarray(evaluate(u, moved, sizes), dtype=float) - here))
        if np.any(~(np.abs(here) >= gap)):
            return True
    return False


def _allocate(shape: tuple[int, ...], what: str) -> tuple[int, ...]:
    """``shape``, after checking the size of the array about to be allocated."""
    n = prod(shape)
    if n > MAX_ENTRIES:
        raise UnsupportedError(too_large(n, what))
    return shape


def evaluate(e: Expr, env: dict[str, np.ndarray], sizes: dict[str, int]):
    """The value of ``e``: a float for a scalar, a 2-d array otherwise."""
    op = e.op
    if op == "sym":
        try:
            return env[e.name]
        except KeyError:
            raise UnsupportedError(f"no value for {e.name}") from None
    if op == "num":
        return float(e.value)
    if op == "zero":
        return np.zeros(_allocate(concrete(e.shape, sizes), to_text(e)))
    if op == "eye":
        n = _size(e.shape[0], sizes)
        return np.eye(*_allocate((n, n), to_text(e)))
    if op == "ones":
        return np.ones((_size(e.shape[0], sizes), 1))
    if op == "dim":
        return float(_size(e.name, sizes))        # the size this check gives the dimension
    if op == "const":
        return CONSTANTS[e.name]
    if op == "commutation":
        return _commutation(*(_size(d, sizes) for d in commutation_dims(e)))
    args = [evaluate(a, env, sizes) for a in e.args]
    if op == "stack":
        return np.vstack([np.asarray(a, dtype=float).reshape(1, -1) for a in args])
    if op == "add":
        out = args[0]
        for a in args[1:]:
            out = out + a
        return out
    if op in ("mul", "had"):
        out = args[0]
        for a in args[1:]:
            out = out * a
        return out
    if op == "div":
        with np.errstate(all="ignore"):     # x / (N - N): infinite, a point that says nothing, not a crash
            return np.divide(args[0], args[1])
    if op == "pow":
        base, p = args
        if isinstance(base, float) and base < 0 and float(p) != int(p):
            return float("nan")
        with np.errstate(all="ignore"):
            return np.power(base, p)
    if op == "matmul":
        out = np.atleast_2d(args[0])
        for a in args[1:]:
            a = np.atleast_2d(a)
            _allocate((out.shape[0], a.shape[1]), to_text(e))
            out = out @ a
        return _scalar_if_1x1(out, e)
    if op == "T":
        return np.asarray(args[0]).T
    if op == "fn":
        with np.errstate(all="ignore"):
            return _FN[e.name](args[0])
    if op == "max":
        return _scalar_if_1x1(np.maximum(args[0], args[1]), e)
    if op == "vfn":
        with np.errstate(all="ignore"):
            return _vector_fn(e.name, args[0])
    if op == "inv":
        return np.linalg.inv(args[0])
    if op == "det":
        return float(np.linalg.det(args[0]))
    if op == "trace":
        return float(np.trace(args[0]))
    if op == "diag":
        v = np.asarray(args[0]).ravel()
        _allocate((v.size, v.size), to_text(e))
        return np.diag(v)
    if op == "diagpart":
        return np.diag(args[0]).reshape(-1, 1)
    if op == "sum":
        return float(np.sum(args[0]))
    if op == "norm":
        return float(np.linalg.norm(args[0]))
    if op == "kron":
        a, b = np.atleast_2d(args[0]), np.atleast_2d(args[1])
        _allocate((a.shape[0] * b.shape[0], a.shape[1] * b.shape[1]), to_text(e))
        return np.kron(a, b)
    if op == "vec":
        return np.asarray(args[0]).reshape(-1, 1, order="F")      # the columns stacked
    if op == "apply":
        return _instance(env, e.name)(args)
    if op == "pd":
        return _instance(env, e.name).jacobian(args, int(e.value), concrete(e.shape, sizes))
    raise UnsupportedError(f"cannot evaluate {op} numerically ({to_text(e)})")


def _commutation(m: int, n: int) -> np.ndarray:
    """K with K vec(A) = vec(Aᵀ) for A ∈ R^{m×n}: A_ij is entry i + j m of vec(A), j + i n of vec(Aᵀ)."""
    K = np.zeros(_allocate((m * n, m * n), f"commutation({m}, {n})"))
    for i in range(m):
        for j in range(n):
            K[j + i * n, i + j * m] = 1.0
    return K


def _scalar_if_1x1(a, e: Expr):
    if e.shape == ():
        return float(np.asarray(a).reshape(-1)[0])
    return a


def random_value(decl, sizes: dict[str, int], rng: np.random.Generator, positive: bool, scale: float = 1.0):
    shape = concrete(decl.shape, sizes)
    assume = set(decl.assume)
    lo, hi = (0.5 * scale, 1.5 * scale) if positive else (-scale, scale)
    if shape == ():
        if "positive" in assume:
            return float(rng.uniform(0.5 * scale, 1.5 * scale))
        return float(rng.uniform(lo, hi))
    a = rng.uniform(lo, hi, size=shape)
    if "one_hot" in assume:     # on the simplex: sum 1 as a one-hot label, no entry exactly 0
        b = rng.uniform(0.5, 1.5, size=shape)
        return b / b.sum()
    if len(shape) == 2 and shape[0] == shape[1] and shape[0] > 1:
        n = shape[0]
        if "orthogonal" in assume:
            q, r = np.linalg.qr(rng.normal(size=(n, n)))
            return q * np.sign(np.diag(r))
        if "diagonal" in assume:
            return np.diag(rng.uniform(0.5, 1.5, size=n))
        if "positive_definite" in assume:
            b = rng.uniform(-1, 1, size=(n, n))
            return b @ b.T + n * np.eye(n)
        if "symmetric" in assume:
            return (a + a.T) / 2 + n * np.eye(n)
        # a well-conditioned matrix with a positive determinant
        return a + n * np.eye(n)
    return a


class RandomFunction:
    """A concrete smooth stand-in for an abstract function: 4 + W tanh(Σ Mᵢ vec(aᵢ) + c), positive
    (so log p is defined) and with an exact Jacobian."""

    def __init__(self, arg_shapes, out_shape, rng: np.random.Generator, width: int = 3):
        self.M = [rng.uniform(-1, 1, size=(width, int(np.prod(s)) if s else 1)) for s in arg_shapes]
        self.c = rng.uniform(-1, 1, size=width)
        self.W = rng.uniform(-1, 1, size=(int(np.prod(out_shape)) if out_shape else 1, width))
        self.out = out_shape

    def _u(self, args):
        return sum(M @ np.asarray(a, dtype=float).reshape(-1) for M, a in zip(self.M, args)) + self.c

    def __call__(self, args):
        v = 4.0 + self.W @ np.tanh(self._u(args))
        return float(v[0]) if not self.out else v.reshape(self.out)

    def jacobian(self, args, i: int, shape):
        u = self._u(args)
        J = self.W @ np.diag(1 - np.tanh(u) ** 2) @ self.M[i]
        return float(J.reshape(-1)[0]) if not shape else J.reshape(shape)


def _instance(env: dict, name: str) -> RandomFunction:
    try:
        return env[("fn", name)]
    except KeyError:
        raise UnsupportedError(f"no stand-in for the function {name}") from None


class Point:
    """Values of every symbol and define name at one random point."""

    def __init__(self, part, sizes: dict[str, int], rng: np.random.Generator, scale: float = 1.0):
        self.sizes = sizes
        self.defs = {d.name: d.expr for d in part.define}
        kinked = False
        for positive in (False, True):
            for _ in range(KINK_TRIES):
                self.env = {}
                for s in part.symbols:
                    if s.kind in ("scalar", "array"):
                        self.env[s.name] = random_value(s, sizes, rng, positive, scale)
                    elif s.kind == "function":
                        self.env[("fn", s.name)] = RandomFunction(
                            [concrete(a, sizes) for a in s.args], concrete(s.shape, sizes), rng)
                try:
                    self._fill()
                except (FloatingPointError, np.linalg.LinAlgError):
                    break
                if not (all(np.all(np.isfinite(np.asarray(v))) for k, v in self.env.items() if isinstance(k, str))
                        and self._well_conditioned()):
                    break
                if not self._near_kink(scale):
                    return
                kinked = True   # near a kink of relu, abs or max: another point (other problems' points stay)
        if kinked:
            raise UnsupportedError(f"no random point away from the kinks (relu, abs, max: where their argument "
                                   f"is 0) was found in {2 * KINK_TRIES} tries")
        raise UnsupportedError("no random point where every definition is finite was found (a log of a "
                               "non-positive number, or a singular matrix at sizes "
                               + ", ".join(f"{k}={v}" for k, v in sizes.items()) + "?)")

    def _near_kink(self, scale: float) -> bool:
        """Whether the point is near a kink of relu, abs, step, sign or max (``near_kink``), measured
        against the widest step of the differences (a Hessian's), each entry moved up or down."""
        if not any(True for e in self.defs.values() for _ in kink_arguments(e)):
            return False
        moved = dict(self.env)
        rng = np.random.default_rng(0)
        for s in self.env:
            if isinstance(s, str) and s not in self.defs:
                a = np.asarray(self.env[s], dtype=float)
                step = 2 * HESSIAN_STEP_SCALE * fd_steps(a) * rng.choice([-1.0, 1.0], size=a.shape)
                moved[s] = a + step if a.shape else float(a + step)
        with np.errstate(all="ignore"):
            _recompute(moved, self.defs, self.sizes, "")
        return near_kink(self.defs.values(), self.env, self.sizes, KINK_MARGIN * scale, moved)

    def _well_conditioned(self) -> bool:
        """Every matrix that a definition inverts or takes the determinant of is far from
        singular here: near a singular matrix finite differences say nothing."""
        for e in nodes(*self.defs.values()):
            if e.op in ("inv", "det") and e.args[0].shape != ():
                with np.errstate(all="ignore"):
                    m = np.asarray(evaluate(e.args[0], self.env, self.sizes), dtype=float)
                if not np.all(np.isfinite(m)) or np.linalg.cond(m) > 1e8:
                    return False
        return True

    def _fill(self) -> None:
        pending = dict(self.defs)
        for _ in range(len(pending) + 1):
            for name, e in list(pending.items()):
                from .expr import free_symbols
                if free_symbols(e) & pending.keys():
                    continue
                self.env[name] = evaluate(e, self.env, self.sizes)
                del pending[name]
            if not pending:
                return


def fd_steps(x: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """A step per entry, relative to the entry's magnitude: log(u) at u = 1e-3 needs a step
    far below 1e-3 (an absolute step would leave the function's domain)."""
    return scale * FD_STEP * np.maximum(np.abs(x), FD_FLOOR)


def fd_jacobian(of: Expr, wrt: str, env: dict, sizes: dict[str, int], defs: dict[str, Expr] | None = None,
                scale: float = 1.0):
    """Central differences of ``of`` w.r.t. ``wrt`` in numerator layout (see ``rules``)."""
    x0 = np.array(env[wrt], dtype=float)
    xshape = x0.shape
    flat = x0.reshape(-1).copy()
    steps = fd_steps(flat, scale)
    cols = []
    for k in range(flat.size):
        h = steps[k]
        vals = []
        for step in FD_STENCIL:
            xp = flat.copy()
            xp[k] += step * h
            e2 = dict(env)
            e2[wrt] = xp.reshape(xshape) if xshape else float(xp[0])
            if defs:
                _recompute(e2, defs, sizes, wrt)
            vals.append(np.asarray(evaluate(of, e2, sizes), dtype=float))
        cols.append((_stencil(vals) / h).reshape(-1))
    jac = np.stack(cols, axis=1)            # (entries of f) × (entries of x)
    return jac


def _recompute(env: dict, defs: dict[str, Expr], sizes, changed: str) -> None:
    from .expr import free_symbols
    done: set[str] = set()
    pending = {n: e for n, e in defs.items() if n != changed}
    for _ in range(len(pending) + 1):
        for n, e in list(pending.items()):
            if free_symbols(e) & pending.keys():
                continue
            env[n] = evaluate(e, env, sizes)
            del pending[n]
            done.add(n)
        if not pending:
            return


def claimed_jacobian(value, of_shape, wrt_shape) -> np.ndarray:
    """The claimed Jacobian rearranged as (entries of f) × (entries of x)."""
    v = np.atleast_2d(np.asarray(value, dtype=float))
    if wrt_shape == () or of_shape == ():
        return v.reshape(-1, 1) if wrt_shape == () else v.reshape(1, -1)
    return v


def compare(claimed: np.ndarray, fd: np.ndarray) -> float:
    if claimed.shape != fd.shape:
        if claimed.size == fd.size:
            claimed = claimed.reshape(fd.shape)
        else:
            return float("inf")
    if not np.all(np.isfinite(claimed)):
        return float("inf")
    scale = max(float(np.max(np.abs(fd))) if fd.size else 0.0, FLOOR)
    return float(np.max(np.abs(claimed - fd))) / scale if fd.size else 0.0


@dataclass
class Checker:
    """Checks the steps and results of one part at a few random points."""

    part: object
    seed_text: str

    def __post_init__(self):
        failure = None
        defs = {d.name: d.expr for d in self.part.define}
        shapes = {s.name: s.shape for s in self.part.symbols}
        shapes.update({n: e.shape for n, e in defs.items()})
        too_big = part_size_errors(self.part.dims, defs, [(t.wrt, shapes[t.wrt]) for t in self.part.find])
        if too_big:       # what check refuses too (spec calls the same function)
            name, why = too_big[0]
            raise UnsupportedError(f"define.{name}: {why}")
        for order in ORDERS:
            # another assignment of sizes when a definition is undefined at the first
            # (log det(XᵀX) needs X tall)
            self.sizes = dim_sizes(self.part.dims, order)
            rng = np.random.default_rng(zlib.crc32(self.seed_text.encode()))
            try:
                self.points = [Point(self.part, self.sizes, rng) for _ in range(POINTS)]
                break
            except UnsupportedError as exc:
                failure = exc
        else:
            raise failure
        self.used = POINTS       # the fewest points that said something, in one result's checks
        self.shapes = {s.name: s.shape for s in self.part.symbols if s.kind in ("scalar", "array")}
        self.shapes.update({d.name: d.expr.shape for d in self.part.define})

    def _points(self):
        """The points to check at: the first ``POINTS``, then more (drawn only when needed), at
        smaller scales too (exp(-1000 x'x) underflows at x of size 1, not at 0.01)."""
        yield from self.points
        rng = np.random.default_rng(zlib.crc32((self.seed_text + "/more").encode()))
        for scale in EXTRA_SCALES:
            try:
                yield Point(self.part, self.sizes, rng, scale)
            except UnsupportedError:
                continue

    def _over_points(self, at_point, what: str) -> float:
        """``at_point(p)`` is the relative error at ``p``, or a reason why ``p`` says nothing
        (values 0, infinite or undefined, differences unstable there).  Points are tried until
        ``POINTS`` say something; a check where none does is a failure, never "checked", and the
        number that did is what the document reports."""
        worst, used, reasons = 0.0, 0, []
        for p in self._points():
            r = at_point(p)
            if isinstance(r, str):
                if r not in reasons:
                    reasons.append(r)
                continue
            worst, used = max(worst, r), used + 1
            if used == POINTS:
                break
        if used == 0:
            raise CheckFailed(f"{what}: cannot be checked numerically: at every point tried, "
                              + "; ".join(reasons))
        self.used = min(self.used, used)
        return worst

    def _judge(self, what: str, shown: str, claimed, estimate, size: float, tolerance: float = TOLERANCE,
               second: float = SECOND_OPINION) -> float | str:
        """The error of ``claimed`` against central differences ``estimate(scale)``; a disagreement
        is confirmed with smaller steps (a second opinion) before the step is called wrong.
        ``size`` is the largest magnitude of the function's values at the point; ``second`` the
        scale of the second opinion's steps (larger for second differences, whose round-off
        grows as 1/h²)."""
        fd = estimate(1.0)
        if not np.all(np.isfinite(fd)) or not np.all(np.isfinite(claimed)):
            return "the values are infinite or undefined"
        if 0 < np.max(np.abs(fd), initial=0.0) < FLOOR * TOLERANCE and size < FLOOR * TOLERANCE:
            # the comparison is relative to FLOOR: when the function itself is this small (an
            # underflow) any claim near 0 would pass
            return "the values are too small to compare (an underflow?)"
        err = compare(claimed, fd)
        if err <= tolerance:
            return err
        fd2 = estimate(second)
        if not np.all(np.isfinite(fd2)):
            return "the values are infinite or undefined"
        err2 = compare(claimed, fd2)
        if err2 <= tolerance:
            return err2
        if compare(fd2, fd) * 10 >= min(err, err2):
            return "finite differences with two step sizes disagree"
        raise CheckFailed(f"{what}: the {shown} disagrees with finite differences (relative error "
                          f"{min(err, err2):.1e})")

    def check_expr(self, of: Expr, wrt: str, claimed: Expr, what: str, transpose: bool = False,
                   recompute: bool = False) -> float:
        defs = {d.name: d.expr for d in self.part.define} if recompute else None

        def at_point(p):
            with np.errstate(all="ignore"):
                degenerate, size = _degenerate(of, p.env, self.sizes)
                if degenerate:
                    return degenerate
                try:
                    val = evaluate(claimed, p.env, self.sizes)
                except np.linalg.LinAlgError as exc:
                    raise CheckFailed(f"{what}: could not evaluate ({exc})") from None
                if transpose:
                    val = np.asarray(val).T
                c = claimed_jacobian(val, of.shape, self.shapes.get(wrt, ()))
                by_vec = of.shape != () and of.shape[1] == 1 and _matrix(self.shapes.get(wrt, ()))
                # a scalar's derivative written as the row ∂f/∂(vec X)ᵀ (a gradient by X is p×q, p > 1)
                by_vec = by_vec or (of.shape == () and claimed.shape != () and claimed.shape[0] == 1
                                    and _matrix(self.shapes.get(wrt, ())))
                return self._judge(what, f"result {to_text(claimed)}", c,
                                   lambda scale: _by_vec(fd_jacobian(of, wrt, p.env, self.sizes, defs, scale),
                                                         p.env[wrt], by_vec, False), size)
        return self._over_points(at_point, what)

    def check_direction(self, of: Expr, wrt: str, direction: str, claimed: Expr, what: str) -> float:
        """A differential: d(of) in a random direction against (of(x + hH) - of(x - hH)) / 2h."""
        rng = np.random.default_rng(len(self.points) + 17)

        def at_point(p):
            x0 = np.asarray(p.env[wrt], dtype=float)
            H = rng.uniform(-1, 1, size=x0.shape)

            def estimate(scale):
                h = scale * FD_STEP * max(FD_FLOOR, float(np.max(np.abs(x0))))
                vals = []
                for step in FD_STENCIL:
                    e2 = dict(p.env)
                    e2[wrt] = x0 + step * h * H if x0.shape else float(x0 + step * h * H)
                    vals.append(np.asarray(evaluate(of, e2, self.sizes), dtype=float))
                return np.atleast_2d(_stencil(vals) / h)

            with np.errstate(all="ignore"):
                degenerate, size = _degenerate(of, p.env, self.sizes)
                if degenerate:
                    return degenerate
                e3 = dict(p.env)
                e3[direction] = H if x0.shape else float(H)
                got = np.atleast_2d(np.asarray(evaluate(claimed, e3, self.sizes), dtype=float))
                return self._judge(what, f"differential {to_text(claimed)}", got, estimate, size)
        return self._over_points(at_point, what)

    def check_step(self, step: Step) -> float:
        worst = 0.0
        for s in step.substeps:
            worst = max(worst, self.check_step(s))
        if step.wrt not in self.shapes:
            return worst
        if step.direction:
            return max(worst, self.check_direction(step.of, step.wrt, step.direction, step.result,
                                                   f"step {step.rule} (d of {to_text(step.of)})"))
        return max(worst, self.check_expr(step.of, step.wrt, step.result,
                                          f"step {step.rule} (∂/∂{step.wrt} of {to_text(step.of)})"))

    def check_rewrite(self, step: Step) -> float:
        """A named rewrite of the simplifier: before and after equal at every point."""
        worst = 0.0
        for p in self.points:
            with np.errstate(all="ignore"):
                a = np.atleast_2d(np.asarray(evaluate(step.of, p.env, self.sizes), dtype=float))
                b = np.atleast_2d(np.asarray(evaluate(step.result, p.env, self.sizes), dtype=float))
            err = compare(b, a) if a.shape == b.shape else float("inf")
            if not err <= TOLERANCE:
                raise CheckFailed(f"rewrite {step.rule}: {to_text(step.result)} is not equal to "
                                  f"{to_text(step.of)} (relative error {err:.1e})")
            worst = max(worst, err)
        return worst

    def check_result(self, r: Result) -> tuple[Check, tuple[tuple[str, float], ...]]:
        self.used = POINTS
        per = []
        for p in r.partials:
            per.append((f"{p.of}/{p.wrt}", max([self.check_step(p.step)] + [self.check_rewrite(s) for s in p.rewrites])))
        for s in r.rewrites + r.hessian_rewrites + r.symmetric:
            per.append((f"rewrite {s.rule}", self.check_rewrite(s)))
        if r.display is not None:
            per.append(("kept names", self.check_rewrite(Step("keep", r.result, "", r.display, r.dims))))
        for s in r.chain_steps:
            per.append(("chain", self.check_step(s)))
        f_expr = ex_substitute_all(self.part, r.of, keep=r.wrt)
        if r.tensor:
            err = self.check_direction(f_expr, r.wrt, r.direction, r.result, f"d{r.of}/d{r.wrt}")
        elif r.order == 1:
            err = self.check_expr(f_expr, r.wrt, r.result, f"d{r.of}/d{r.wrt}",
                                  transpose=transposed_in(r.layout, r.shape_wrt))
        else:
            for s in r.extra_steps:
                per.append(("hessian", self.check_step(s)))
            # the Hessian against differences of the gradient, both from the definitions alone
            grad_fd_err = self._check_hessian(f_expr, r)
            err = grad_fd_err
        per.append((f"d{r.of}/d{r.wrt}", err))
        self._check_text(r)
        worst = max(e for _, e in per)
        return Check(tuple(sorted(self.sizes.items())), self.used, worst, True), tuple(per)

    def _check_text(self, r: Result) -> None:
        """The result as text (the JSON trace's ``expr``) parses again, within the limits on
        input, to the same value."""
        if r.tensor or has_op(r.result, "pd"):
            return          # no text form: the trace says null
        if shadowed_in_text(r.result, [s.name for s in self.part.symbols] + [d.name for d in self.part.define]):
            return          # it calls a built-in the problem shadows: the trace says null
        text = to_text(r.result)
        symbols = self.part.symbols
        scope = Scope(dims=frozenset(self.part.dims),
                      shapes={s.name: s.shape for s in symbols if s.kind in ("scalar", "array")},
                      functions={s.name: (s.args, s.shape) for s in symbols if s.kind == "function"})
        what = f"d{r.of}/d{r.wrt}: the result written as text, {text[:60]}{'…' if len(text) > 60 else ''},"
        if len(text) > MAX_TEXT or tree_size(r.result, MAX_NODES) > MAX_NODES:
            return          # longer than an input expression may be: the limits on numbers are what matter
        try:
            again = parse(text, scope)
        except ExprError as exc:
            if "nested more than" in exc.message:
                return
            raise CheckFailed(f"{what} does not parse again ({exc.message})") from None
        p = self.points[0]
        with np.errstate(all="ignore"):
            a = np.asarray(evaluate(again, p.env, self.sizes), dtype=float)
            b = np.asarray(evaluate(r.result, p.env, self.sizes), dtype=float)
        if a.shape != b.shape or not np.allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True):
            raise CheckFailed(f"{what} has another value")

    def _check_hessian(self, f_expr: Expr, r: Result) -> float:
        what = f"d2{r.of}/d{r.wrt}2"

        def at_point(p):
            with np.errstate(all="ignore"):
                degenerate, size = _degenerate(f_expr, p.env, self.sizes)
                if degenerate:
                    return degenerate
                val = np.atleast_2d(np.asarray(evaluate(r.result, p.env, self.sizes), dtype=float))
                by_vec = _matrix(r.shape_wrt)
                return self._judge(what, f"Hessian {to_text(r.result)}", val,
                                   lambda scale: _by_vec(self._fd_hessian(f_expr, r.wrt, p.env, scale),
                                                         p.env[r.wrt], by_vec, True), size,
                                   HESSIAN_TOLERANCE, second=4.0)
        return self._over_points(at_point, what)

    def _fd_hessian(self, f_expr: Expr, wrt: str, env: dict, scale: float = 1.0) -> np.ndarray:
        x0 = np.array(env[wrt], dtype=float)
        flat = x0.reshape(-1)
        steps = fd_steps(flat, HESSIAN_STEP_SCALE * scale)
        n = flat.size
        H = np.zeros((n, n))
        for i in range(n):
            for j in range(n):
                acc = 0.0
                for si, sj, w in ((1, 1, 1), (1, -1, -1), (-1, 1, -1), (-1, -1, 1)):
                    xp = flat.copy()
                    xp[i] += si * steps[i]
                    xp[j] += sj * steps[j]
                    e2 = dict(env)
                    e2[wrt] = xp.reshape(x0.shape) if x0.shape else float(xp[0])
                    acc += w * float(evaluate(f_expr, e2, self.sizes))
                H[i, j] = acc / (4 * steps[i] * steps[j])
        return H


def _matrix(shape) -> bool:
    return shape != () and shape[0] != 1 and shape[1] != 1


def _by_vec(fd: np.ndarray, x0, by_vec: bool, rows_too: bool) -> np.ndarray:
    """Differences taken entry by entry of X in NumPy's row-major order, reordered to vec X's
    order (column after column): the columns of a Jacobian by vec X (and the rows of a Hessian)."""
    if not by_vec:
        return fd
    p, q = np.shape(x0)
    order = np.arange(p * q).reshape(p, q).T.reshape(-1)
    fd = fd[:, order]
    return fd[order, :] if rows_too else fd


def _degenerate(of: Expr, env: dict, sizes: dict[str, int]) -> tuple[str, float]:
    """Why the values of ``of`` at this point make no check (all 0: an underflow; infinite or
    undefined: an overflow or a point outside the domain), or ``""``; and their largest magnitude."""
    v = np.asarray(evaluate(of, env, sizes), dtype=float)
    if not np.all(np.isfinite(v)):
        return "the values are infinite or undefined", np.inf
    if not np.any(v) and not _identically_zero(of):
        return "the values are 0 (an underflow?)", 0.0
    return "", float(np.max(np.abs(v)))


def _identically_zero(e: Expr) -> bool:
    """``e`` is 0 by its form (``x * 0``, ``x - x``), not by an underflow: its derivative is
    checked against differences that are exactly 0, which a claim other than 0 fails."""
    s = simplify(e)
    return (s.op == "zero" or (s.op == "num" and s.value == 0)
            or (s.op == "mul" and any(f.op == "num" and f.value == 0 for f in s.args)))


def ex_substitute_all(part, name: str, keep: str = "") -> Expr:
    """The definition of ``name`` in the declared symbols; ``keep`` (a define name that a
    derivative is taken with respect to) stays a variable."""
    from .calculus.chain import substitute_all
    defs = {d.name: d.expr for d in part.define if d.name != keep}
    return substitute_all(defs[name], defs)
