"""An evaluator of the expression language written apart from the project's code.

Used by the tests to check what stepgen prints (the JSON ``expr`` fields)
against finite differences of what the problem file defines, without going
through ``generator``'s parser, evaluator or checker.  It walks Python's
``ast`` itself and maps each construct to NumPy.
"""
from __future__ import annotations

import ast

import numpy as np

FUNCS = {
    "exp": np.exp, "log": np.log, "sin": np.sin, "cos": np.cos, "tan": np.tan, "tanh": np.tanh,
    "sigmoid": lambda a: 1.0 / (1.0 + np.exp(-a)), "sqrt": np.sqrt,
    "softplus": lambda a: np.log1p(np.exp(a)),
    "cosh": lambda a: (np.exp(a) + np.exp(-a)) / 2, "sinh": lambda a: (np.exp(a) - np.exp(-a)) / 2,
    "log1p": lambda a: np.log(1.0 + a), "relu": lambda a: np.where(np.asarray(a) > 0, a, 0.0) * 1.0,
    "abs": lambda a: np.sqrt(np.square(a)), "step": lambda a: (np.asarray(a) > 0) * 1.0,
    "sign": lambda a: (np.asarray(a) > 0) * 1.0 - (np.asarray(a) < 0) * 1.0,
}


def _softmax(v):
    e = np.exp(np.asarray(v, dtype=float) - np.max(v))
    return e / np.sum(e)


VECTOR_FUNCS = {
    "softmax": _softmax,
    "log_softmax": lambda v: np.log(_softmax(v)),
    "logsumexp": lambda v: float(np.log(np.sum(np.exp(np.asarray(v, dtype=float))))),
    "mean": lambda v: float(np.sum(v)) / np.size(v),
}


def _as_scalar(v):
    a = np.asarray(v)
    if a.size == 1 and a.ndim == 2:
        return float(a.reshape(-1)[0])
    return v


def value(text: str, env: dict, dims: dict):
    return _eval(ast.parse(text, mode="eval").body, env, dims)


def _eval(n, env, dims):
    if isinstance(n, ast.Constant):
        return float(n.value)
    if isinstance(n, ast.Name):
        if n.id in env:             # a declared name shadows a dimension and the constants
            return env[n.id]
        if n.id in dims:
            return float(dims[n.id])
        return {"pi": np.pi, "e": np.e}[n.id]
    if isinstance(n, ast.List):     # a column of scalars, or rows stacked
        return np.vstack([np.reshape(np.asarray(_eval(a, env, dims), dtype=float), (1, -1)) for a in n.elts])
    if isinstance(n, ast.UnaryOp):
        v = _eval(n.operand, env, dims)
        return -v if isinstance(n.op, ast.USub) else v
    if isinstance(n, ast.Attribute):
        assert n.attr == "T"
        return np.transpose(_eval(n.value, env, dims))
    if isinstance(n, ast.BinOp):
        a, b = _eval(n.left, env, dims), _eval(n.right, env, dims)
        if isinstance(n.op, ast.Add):
            return a + b
        if isinstance(n.op, ast.Sub):
            return a - b
        if isinstance(n.op, ast.Mult):
            return a * b
        if isinstance(n.op, ast.Div):
            return a / b
        if isinstance(n.op, ast.Pow):
            return a ** b
        if isinstance(n.op, ast.MatMult):
            return _as_scalar(np.atleast_2d(a) @ np.atleast_2d(b))
    if isinstance(n, ast.Call):
        name = n.func.id
        if name == "commutation":
            m, k = (_dim(a, dims) for a in n.args)
            K = np.zeros((m * k, m * k))
            for i in range(m):          # K vec(A) = vec(Aᵀ): column-major vec, A is m×k
                for j in range(k):
                    K[j + i * k, i + j * m] = 1.0
            return K
        if name in ("eye", "ones"):
            arg = n.args[0]
            k = _dim(arg, dims)
            return np.eye(k) if name == "eye" else np.ones((k, 1))
        args = [_eval(a, env, dims) for a in n.args]
        if name in FUNCS:
            return _as_scalar(FUNCS[name](args[0])) if np.ndim(args[0]) == 0 else FUNCS[name](args[0])
        if name in VECTOR_FUNCS:
            return VECTOR_FUNCS[name](args[0])
        if name in ("max", "maximum"):
            a, b = args
            return np.where(np.asarray(a) >= np.asarray(b), a, b) * 1.0 if np.ndim(a) or np.ndim(b) \
                else float(a if a >= b else b)
        a = args[0]
        if name == "inv":
            return np.linalg.inv(a)
        if name == "det":
            return float(np.linalg.det(a))
        if name in ("trace", "tr"):
            return float(np.trace(a))
        if name == "sum":
            return float(np.sum(a))
        if name == "norm":
            return float(np.linalg.norm(a))
        if name == "diag":
            a = np.atleast_2d(a)
            if a.shape[1] == 1:
                return np.diag(a[:, 0])
            return np.diag(a).reshape(-1, 1)
        if name == "kron":
            return np.kron(np.atleast_2d(args[0]), np.atleast_2d(args[1]))
        if name == "vec":
            return np.atleast_2d(a).T.reshape(-1, 1)       # column after column
    raise ValueError(f"unsupported: {ast.dump(n)}")


def _dim(n, dims) -> int:
    """A size: a dim's name, a number, or a product of them (eye(M*N))."""
    if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Mult):
        return _dim(n.left, dims) * _dim(n.right, dims)
    return dims[n.id] if isinstance(n, ast.Name) else n.value


def define_value(defs: dict[str, str], name: str, env: dict, dims: dict):
    """The value of a define name, computing what it uses first."""
    cache = dict(env)

    def get(n):
        if n not in cache:
            text = defs[n]
            for used in {x.id for x in ast.walk(ast.parse(text, mode="eval")) if isinstance(x, ast.Name)}:
                if used in defs:
                    get(used)
            cache[n] = value(text, cache, dims)
        return cache[n]

    return get(name)


def fd_jacobian(fun, x0, h=1e-6):
    """Numerator-layout Jacobian by central differences: (entries of f) × (entries of x)."""
    x0 = np.asarray(x0, dtype=float)
    flat = x0.reshape(-1)
    cols = []
    for k in range(flat.size):
        step = h * max(1.0, abs(flat[k]))
        xp, xm = flat.copy(), flat.copy()
        xp[k] += step
        xm[k] -= step
        fp = np.asarray(fun(xp.reshape(x0.shape) if x0.shape else float(xp[0])), dtype=float)
        fm = np.asarray(fun(xm.reshape(x0.shape) if x0.shape else float(xm[0])), dtype=float)
        cols.append(((fp - fm) / (2 * step)).reshape(-1))
    return np.stack(cols, axis=1)


def rel_error(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    scale = max(float(np.max(np.abs(b))), 1e-3)
    return float(np.max(np.abs(a - b))) / scale


def jacobian_error(text: str, wrt: str, claimed_text: str, values: dict, dims: dict) -> float:
    """Relative error of the claimed numerator-layout Jacobian of ``text`` by ``wrt``."""
    def fun(v):
        e2 = dict(values)
        e2[wrt] = v
        return value(text, e2, dims)

    fd = fd_jacobian(fun, values[wrt])
    got = np.atleast_2d(np.asarray(value(claimed_text, values, dims), dtype=float))
    if got.size != fd.size:
        return float("inf")
    return rel_error(got.reshape(fd.shape), fd)


# --- vec X: Jacobians and Hessians with respect to the columns of X stacked -----------------------

def vec_of(a):
    return np.asarray(a).T.reshape(-1)          # column after column


def _unvec(v, shape):
    return np.asarray(v).reshape(shape[1], shape[0]).T


def vec_jacobian_error(text: str, wrt: str, claimed: str, values: dict, dims: dict, h: float = 1e-6) -> float:
    """The claimed ∂vec(f)/∂(vec X)ᵀ against central differences over the entries of vec X."""
    x0 = values[wrt]
    cols = []
    for k in range(x0.size):
        step = np.zeros(x0.size)
        step[k] = h
        plus, minus = dict(values), dict(values)
        plus[wrt], minus[wrt] = _unvec(vec_of(x0) + step, x0.shape), _unvec(vec_of(x0) - step, x0.shape)
        cols.append((vec_of(np.atleast_2d(value(text, plus, dims))) - vec_of(np.atleast_2d(value(text, minus, dims)))) / (2 * h))
    return rel_error(np.atleast_2d(value(claimed, values, dims)), np.stack(cols, axis=1))


def vec_hessian_error(text: str, wrt: str, claimed: str, values: dict, dims: dict, h: float = 1e-4) -> float:
    """The claimed Hessian of the scalar f with respect to vec X against second differences."""
    x0 = values[wrt]
    n = x0.size

    def f(v):
        e = dict(values)
        e[wrt] = _unvec(v, x0.shape)
        return float(value(text, e, dims))

    H = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            acc = 0.0
            for si, sj, w in ((1, 1, 1), (1, -1, -1), (-1, 1, -1), (-1, -1, 1)):
                v = vec_of(x0).copy()
                v[i] += si * h
                v[j] += sj * h
                acc += w * f(v)
            H[i, j] = acc / (4 * h * h)
    return rel_error(np.atleast_2d(value(claimed, values, dims)), H)
