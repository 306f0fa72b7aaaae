"""Numerical checks: every step and every result against central finite differences.

Differences are central, of fourth order (step 1e-4), so round-off stays far below
the tolerance.  Each dim gets a small concrete size (3, 4, 2, 5, ...: distinct, so a
transposition cannot pass by accident), each declared symbol a random value
that respects its assumptions, and each ``define`` name the value of its
definition.  A Jacobian in numerator layout is compared entry by entry with
central differences of the expression it claims to differentiate, at
``POINTS`` points; the largest relative error is reported, and a step beyond
``TOLERANCE`` is an error (``CheckFailed``), never a footnote.

The random points are seeded from the problem's id, so documents are
byte-identical from run to run.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from .errors import CheckFailed, UnsupportedError
from .expr import Expr, to_text
from .calculus.rules import transposed_in
from .trace import Check, Result, Step

SIZES = (3, 4, 2, 5, 6, 7, 8, 9)
POINTS = 3
TOLERANCE = 1e-6
FLOOR = 1e-3   # errors are relative to max(|J|, FLOOR)


# central differences of fourth order: (-f(x+2h) + 8 f(x+h) - 8 f(x-h) + f(x-2h)) / 12h
FD_STEP = 1e-4
FD_STENCIL = (2, 1, -1, -2)


def _stencil(vals):
    return (-vals[0] + 8 * vals[1] - 8 * vals[2] + vals[3]) / 12


def _sigmoid(a):
    return 0.5 * (1.0 + np.tanh(0.5 * a))


_FN = {
    "exp": np.exp, "log": np.log, "sin": np.sin, "cos": np.cos, "tan": np.tan, "tanh": np.tanh,
    "sigmoid": _sigmoid, "sqrt": np.sqrt, "softplus": lambda a: np.logaddexp(0.0, a),
}


def dim_sizes(part, order=SIZES) -> dict[str, int]:
    dims = [s.name for s in part.symbols if s.kind == "dim"]
    return {d: order[i % len(order)] + (i // len(order)) for i, d in enumerate(dims)}


MAX_CHECK_SIZE = 8


def _size(d, sizes: dict[str, int]) -> int:
    if isinstance(d, int):
        # a large literal size (x: [10000]) is checked at a small one: the identities hold at any
        # size, and the check must stay cheap; the same literal always maps to the same size
        return d if d <= MAX_CHECK_SIZE else MAX_CHECK_SIZE + d % 3
    if "*" in str(d):
        out = 1
        for p in str(d).split("*"):
            out *= _size(int(p) if p.isdigit() else p, sizes)
        return out
    return sizes[d]


def concrete(shape, sizes: dict[str, int]) -> tuple[int, ...]:
    return tuple(_size(d, sizes) for d in shape)


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
        return np.zeros(concrete(e.shape, sizes))
    if op == "eye":
        return np.eye(_size(e.shape[0], sizes))
    if op == "ones":
        return np.ones((_size(e.shape[0], sizes), 1))
    args = [evaluate(a, env, sizes) for a in e.args]
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
        return args[0] / args[1]
    if op == "pow":
        base, p = args
        if isinstance(base, float) and base < 0 and float(p) != int(p):
            return float("nan")
        with np.errstate(all="ignore"):
            return np.power(base, p)
    if op == "matmul":
        out = np.atleast_2d(args[0])
        for a in args[1:]:
            out = out @ np.atleast_2d(a)
        return _scalar_if_1x1(out, e)
    if op == "T":
        return np.asarray(args[0]).T
    if op == "fn":
        with np.errstate(all="ignore"):
            return _FN[e.name](args[0])
    if op == "inv":
        return np.linalg.inv(args[0])
    if op == "det":
        return float(np.linalg.det(args[0]))
    if op == "trace":
        return float(np.trace(args[0]))
    if op == "diag":
        return np.diag(np.asarray(args[0]).ravel())
    if op == "diagpart":
        return np.diag(args[0]).reshape(-1, 1)
    if op == "sum":
        return float(np.sum(args[0]))
    if op == "norm":
        return float(np.linalg.norm(args[0]))
    if op == "kron":
        return np.kron(np.atleast_2d(args[0]), np.atleast_2d(args[1]))
    if op == "apply":
        return _instance(env, e.name)(args)
    if op == "pd":
        return _instance(env, e.name).jacobian(args, int(e.value), concrete(e.shape, sizes))
    raise UnsupportedError(f"cannot evaluate {op} numerically ({to_text(e)})")


def _scalar_if_1x1(a, e: Expr):
    if e.shape == ():
        return float(np.asarray(a).reshape(-1)[0])
    return a


def random_value(decl, sizes: dict[str, int], rng: np.random.Generator, positive: bool):
    shape = concrete(decl.shape, sizes)
    assume = set(decl.assume)
    lo, hi = (0.5, 1.5) if positive else (-1.0, 1.0)
    if shape == ():
        if "positive" in assume:
            return float(rng.uniform(0.5, 1.5))
        return float(rng.uniform(lo, hi))
    a = rng.uniform(lo, hi, size=shape)
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

    def __init__(self, part, sizes: dict[str, int], rng: np.random.Generator):
        self.sizes = sizes
        self.defs = {d.name: d.expr for d in part.define}
        for positive in (False, True):
            self.env = {}
            for s in part.symbols:
                if s.kind in ("scalar", "array"):
                    self.env[s.name] = random_value(s, sizes, rng, positive)
                elif s.kind == "function":
                    self.env[("fn", s.name)] = RandomFunction(
                        [concrete(a, sizes) for a in s.args], concrete(s.shape, sizes), rng)
            try:
                self._fill()
            except (FloatingPointError, np.linalg.LinAlgError):
                continue
            if all(np.all(np.isfinite(np.asarray(v))) for k, v in self.env.items() if isinstance(k, str)) \
                    and self._well_conditioned():
                return
        raise UnsupportedError("no random point where every definition is finite was found (a log of a "
                               "non-positive number, or a singular matrix at sizes "
                               + ", ".join(f"{k}={v}" for k, v in sizes.items()) + "?)")

    def _well_conditioned(self) -> bool:
        """Every matrix that a definition inverts or takes the determinant of is far from
        singular here: near a singular matrix finite differences say nothing."""
        seen: set[int] = set()
        stack = list(self.defs.values())
        while stack:
            e = stack.pop()
            if id(e) in seen:
                continue
            seen.add(id(e))
            if e.op in ("inv", "det") and e.args[0].shape != ():
                with np.errstate(all="ignore"):
                    m = np.asarray(evaluate(e.args[0], self.env, self.sizes), dtype=float)
                if not np.all(np.isfinite(m)) or np.linalg.cond(m) > 1e8:
                    return False
            stack.extend(e.args)
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


def fd_jacobian(of: Expr, wrt: str, env: dict, sizes: dict[str, int], defs: dict[str, Expr] | None = None):
    """Central differences of ``of`` w.r.t. ``wrt`` in numerator layout (see ``rules``)."""
    x0 = np.array(env[wrt], dtype=float)
    xshape = x0.shape
    flat = x0.reshape(-1).copy()
    cols = []
    for k in range(flat.size):
        h = FD_STEP * max(1.0, abs(flat[k]))
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
        for order in (SIZES, SIZES[1::-1] + SIZES[2:], tuple(reversed(SIZES))):
            # another assignment of sizes when a definition is undefined at the first
            # (log det(XᵀX) needs X tall)
            self.sizes = dim_sizes(self.part, order)
            rng = np.random.default_rng(zlib.crc32(self.seed_text.encode()))
            try:
                self.points = [Point(self.part, self.sizes, rng) for _ in range(POINTS)]
                break
            except UnsupportedError as exc:
                failure = exc
        else:
            raise failure
        self.shapes = {s.name: s.shape for s in self.part.symbols if s.kind in ("scalar", "array")}
        self.shapes.update({d.name: d.expr.shape for d in self.part.define})

    def check_expr(self, of: Expr, wrt: str, claimed: Expr, what: str, transpose: bool = False,
                   recompute: bool = False) -> float:
        worst = 0.0
        defs = {d.name: d.expr for d in self.part.define} if recompute else None
        for p in self.points:
            try:
                with np.errstate(all="ignore"):
                    fd = fd_jacobian(of, wrt, p.env, self.sizes, defs)
                    val = evaluate(claimed, p.env, self.sizes)
            except np.linalg.LinAlgError as exc:
                raise CheckFailed(f"{what}: could not evaluate ({exc})") from None
            if transpose:
                val = np.asarray(val).T
            c = claimed_jacobian(val, of.shape, self.shapes.get(wrt, ()))
            err = compare(c, fd)
            if not err <= TOLERANCE:
                raise CheckFailed(f"{what}: the result {to_text(claimed)} disagrees with finite "
                                  f"differences (relative error {err:.1e})")
            worst = max(worst, err)
        return worst

    def check_direction(self, of: Expr, wrt: str, direction: str, claimed: Expr, what: str) -> float:
        """A differential: d(of) in a random direction against (of(x + hH) - of(x - hH)) / 2h."""
        worst = 0.0
        rng = np.random.default_rng(len(self.points) + 17)
        for p in self.points:
            x0 = np.asarray(p.env[wrt], dtype=float)
            H = rng.uniform(-1, 1, size=x0.shape)
            h = FD_STEP * max(1.0, float(np.max(np.abs(x0))))
            vals = []
            with np.errstate(all="ignore"):
                for step in FD_STENCIL:
                    e2 = dict(p.env)
                    e2[wrt] = x0 + step * h * H if x0.shape else float(x0 + step * h * H)
                    vals.append(np.asarray(evaluate(of, e2, self.sizes), dtype=float))
                fd = _stencil(vals) / h
                e3 = dict(p.env)
                e3[direction] = H if x0.shape else float(H)
                got = np.asarray(evaluate(claimed, e3, self.sizes), dtype=float)
            err = compare(np.atleast_2d(got), np.atleast_2d(fd))
            if not err <= TOLERANCE:
                raise CheckFailed(f"{what}: the differential {to_text(claimed)} disagrees with finite "
                                  f"differences (relative error {err:.1e})")
            worst = max(worst, err)
        return worst

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
        worst = max(e for _, e in per)
        return Check(tuple(sorted(self.sizes.items())), len(self.points), worst, True), tuple(per)

    def _check_hessian(self, f_expr: Expr, r: Result) -> float:
        worst = 0.0
        for p in self.points:
            x0 = np.array(p.env[r.wrt], dtype=float)
            flat = x0.reshape(-1)
            n = flat.size
            H = np.zeros((n, n))
            for i in range(n):
                hi = 1e-4 * max(1.0, abs(flat[i]))
                for j in range(n):
                    hj = 1e-4 * max(1.0, abs(flat[j]))
                    acc = 0.0
                    for si, sj, w in ((1, 1, 1), (1, -1, -1), (-1, 1, -1), (-1, -1, 1)):
                        xp = flat.copy()
                        xp[i] += si * hi
                        xp[j] += sj * hj
                        e2 = dict(p.env)
                        e2[r.wrt] = xp.reshape(x0.shape) if x0.shape else float(xp[0])
                        acc += w * float(evaluate(f_expr, e2, self.sizes))
                    H[i, j] = acc / (4 * hi * hj)
            val = np.atleast_2d(np.asarray(evaluate(r.result, p.env, self.sizes), dtype=float))
            err = compare(val, H)
            if not err <= 1e-4:
                raise CheckFailed(f"d2{r.of}/d{r.wrt}2: the Hessian {to_text(r.result)} disagrees with "
                                  f"finite differences (relative error {err:.1e})")
            worst = max(worst, err)
        return worst


def ex_substitute_all(part, name: str, keep: str = "") -> Expr:
    """The definition of ``name`` in the declared symbols; ``keep`` (a define name that a
    derivative is taken with respect to) stays a variable."""
    from .calculus.chain import substitute_all
    defs = {d.name: d.expr for d in part.define if d.name != keep}
    return substitute_all(defs[name], defs)
