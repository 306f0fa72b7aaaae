"""Independent numerical truth for a solved problem: its JSON trace against its YAML.

Reads the problem file with ``yaml.safe_load`` (not the project's loader),
draws random values that respect the declared assumptions, and compares each
printed ``expr`` (results and partials) with central finite differences of
the definitions, all through ``independent.py``.
"""
from __future__ import annotations

import numpy as np
import yaml

from independent import define_value, fd_jacobian, rel_error, value

SIZES = [3, 4, 2, 5, 6]


def _parts(doc: dict) -> list[dict]:
    base = {k: v for k, v in doc.items() if k != "parts"}
    if "parts" not in doc:
        return [dict(base, id="")]
    out = []
    for i, p in enumerate(doc["parts"]):
        merged = dict(base)
        merged["symbols"] = dict(base.get("symbols", {}), **p.get("symbols", {}))
        for k, v in p.items():
            if k != "symbols":
                merged[k] = v
        merged["id"] = p.get("id", chr(ord("a") + i))
        out.append(merged)
    return out


def _decl(decl):
    if decl == "dim":
        return "dim", None, []
    if decl == "scalar":
        return "var", [], []
    if isinstance(decl, list):
        return "var", decl, []
    if decl.get("kind") == "dim":
        return "dim", None, []
    if decl.get("function"):
        return "function", None, []
    assume = decl.get("assume", [])
    return "var", decl.get("shape", []), [assume] if isinstance(assume, str) else assume


def random_env(symbols: dict, rng, positive=False, sizes=SIZES):
    dims, env = {}, {}
    i = 0
    for name, decl in symbols.items():
        kind, _, _ = _decl(decl)
        if kind == "dim":
            dims[name] = sizes[i % len(sizes)]
            i += 1
    for name, decl in symbols.items():
        kind, shape, assume = _decl(decl)
        if kind != "var":
            continue
        shp = [_size(d, dims) for d in shape]
        if not shp:
            env[name] = float(rng.uniform(0.5, 1.5) if positive or "positive" in assume else rng.uniform(-1, 1))
            continue
        if len(shp) == 1:
            shp = [shp[0], 1]
        a = rng.uniform(0.5, 1.5, size=shp) if positive else rng.uniform(-1, 1, size=shp)
        if "one_hot" in assume:         # a label of the 1-of-K coding, as the problem declares
            a = np.zeros(shp)
            a[rng.integers(shp[0]), 0] = 1.0
        if shp[0] == shp[1] and shp[0] > 1:
            n = shp[0]
            if "orthogonal" in assume:
                q, _ = np.linalg.qr(rng.normal(size=(n, n)))
                a = q
            elif "diagonal" in assume:
                a = np.diag(rng.uniform(0.5, 1.5, size=n))
            elif "positive_definite" in assume:
                a = a @ a.T + n * np.eye(n)
            elif "symmetric" in assume:
                a = (a + a.T) / 2 + n * np.eye(n)
            else:
                a = a + n * np.eye(n)
        env[name] = a
    return dims, env


def _size(d, dims: dict) -> int:
    """A dim's size: a number, a dim's name, or a product of them (M*N)."""
    if isinstance(d, int):
        return d
    return int(np.prod([int(p) if p.strip().isdigit() else dims[p.strip()] for p in d.split("*")]))


def _vec_order(fd: np.ndarray, x0, rows_too: bool) -> np.ndarray:
    """Differences over a matrix's entries in NumPy's row-major order, reordered to vec X's order
    (column after column), for a Jacobian by vec X (and both sides of a Hessian by vec X)."""
    p, q = np.shape(x0)
    order = np.arange(p * q).reshape(p, q).T.reshape(-1)
    fd = fd[:, order]
    return fd[order, :] if rows_too else fd


def _by_matrix(x0) -> bool:
    return np.ndim(x0) == 2 and 1 not in np.shape(x0)


def _arrange(val, of_shape_len: int, wrt_shape: list) -> np.ndarray:
    v = np.atleast_2d(np.asarray(val, dtype=float))
    if not wrt_shape:                       # by a scalar: the shape of f, flattened to a column
        return v.reshape(-1, 1)
    if of_shape_len == 0:                   # a scalar: one row
        return v.reshape(1, -1)
    return v


def _claimed(entry: dict, env: dict, dims: dict) -> np.ndarray:
    """A printed derivative (a result or a partial of the trace) as (entries of f) × (entries of x)."""
    val = value(entry["expr"], env, dims)
    wrt = entry["shape"]["wrt"]
    by_matrix = len(wrt) == 2 and wrt[1] != "1"
    if entry["layout"] == "denominator" and not by_matrix:
        val = np.transpose(val)
    return _arrange(val, len(entry["shape"]["of"]), wrt)


def _first_choices(doc: dict) -> dict:
    """A file with ``vary``: its placeholders replaced by their first choices (what a plain build
    solves), written here apart from ``generator/variants.py``; in an expression in parentheses,
    which Python's ast drops (``(tanh)(z)`` is ``tanh(z)``)."""
    vary = doc.pop("vary", None) or {}
    first = {"{" + k + "}": str(v[0]) for k, v in vary.items()}

    def sub(v, expr: bool):
        if isinstance(v, dict):
            return {sub(k, False): sub(x, expr or k == "define") for k, x in v.items()}
        if isinstance(v, list):
            return [sub(x, expr) for x in v]
        if isinstance(v, str):
            for k, c in first.items():
                v = v.replace(k, f"({c})" if expr else c)
        return v
    return sub(doc, False) if first else doc


def check_trace(problem_path, trace: dict, points: int = 3, tol: float = 1e-5) -> float:
    with open(problem_path, encoding="utf-8") as fh:
        doc = _first_choices(yaml.safe_load(fh))
    parts = {p["id"]: p for p in _parts(doc)}
    rng = np.random.default_rng(12345)
    worst = 0.0
    checked = 0
    for tpart in trace["parts"]:
        part = parts[tpart["id"]]
        # a YAML list (f: [log(x), sin(x)]) is the list literal
        defs = {k: "[" + ", ".join(map(str, v)) + "]" if isinstance(v, list) else str(v)
                for k, v in part["define"].items()}
        if any(_decl(d)[0] == "function" for d in part["symbols"].values()):
            # abstract functions cannot be evaluated independently: the tool's own check
            # (with random stand-in functions) must have passed
            for r in tpart["results"]:
                assert r["check"]["ok"] and r["check"]["max_rel_error"] < 1e-6, (problem_path, r["find"])
                checked += 1
            continue
        for _ in range(points):
            # the sizes the tool reports having used first (they are not what is under test:
            # some definitions are undefined at other sizes, log det(XᵀX) with X wide)
            checks = [r["check"] for r in tpart["results"] if r.get("check")]
            reported = checks[0]["sizes"] if checks else {}
            dim_names = [n for n, d in part["symbols"].items() if _decl(d)[0] == "dim"]
            first = [reported[n] for n in dim_names] if reported and all(n in reported for n in dim_names) else SIZES
            orders = (first, SIZES, list(reversed(SIZES)))
            attempts = [(p, s) for s in orders for p in (False, True)]
            for positive, sizes in attempts:
                dims, env = random_env(part["symbols"], rng, positive, sizes)
                full = dict(env)
                with np.errstate(all="ignore"):
                    ok = True
                    for n in defs:
                        full[n] = define_value(defs, n, env, dims)
                        v = np.asarray(full[n], dtype=float)
                        ok = ok and np.all(np.isfinite(v))
                        if ok and v.ndim == 2 and v.shape[0] == v.shape[1] and v.shape[0] > 1:
                            ok = np.linalg.cond(v) < 1e8      # no (nearly) singular matrices
                    for v in env.values():
                        v = np.asarray(v, dtype=float)
                        if ok and v.ndim == 2 and v.shape[0] == v.shape[1] and v.shape[0] > 1:
                            ok = np.linalg.cond(v) < 1e8
                if ok:
                    break
            for r in tpart["results"]:
                f, x = r["of"], r["wrt"]
                x0 = env[x] if x in env else full[x]

                def fun(xv, f=f, x=x):
                    e2 = dict(env)
                    e2[x] = xv
                    return define_value(defs, f, e2, dims)

                if r["expr"] is None and r.get("differential"):
                    # a tensor: compare the differential in a random direction
                    H = rng.uniform(-1, 1, size=np.shape(x0))
                    h = 1e-6
                    fd = (np.asarray(fun(x0 + h * H)) - np.asarray(fun(x0 - h * H))) / (2 * h)
                    text = r["differential"].replace("d:", "d__")
                    claimed = value(text, dict(env, **{"d__" + x: H}), dims)
                    err = rel_error(np.asarray(claimed).reshape(np.shape(fd)), fd)
                    assert err < tol, (problem_path, r["find"], text, err)
                    worst = max(worst, err)
                    checked += 1
                    continue
                if r["order"] == 2:
                    claimed = np.atleast_2d(value(r["expr"], env, dims))
                    g = lambda xv: fd_jacobian(fun, xv, 1e-5).reshape(-1)
                    fd = fd_jacobian(g, x0, 1e-5)
                    if _by_matrix(x0):          # the Hessian with respect to vec X
                        fd = _vec_order(fd, x0, True)
                    err = rel_error(claimed, fd)
                    assert err < 1e-4, (problem_path, r["find"], err)
                    worst = max(worst, err)
                    checked += 1
                    continue
                if r["expr"] is None:
                    # no text form (it calls a built-in whose name the problem declares):
                    # the tool's own check must have passed
                    assert r["check"]["ok"] and r["check"]["max_rel_error"] < 1e-6, (problem_path, r["find"])
                    checked += 1
                    continue
                fd = fd_jacobian(fun, x0)
                if _by_matrix(x0) and len(r["shape"]["of"]) == 2 and r["shape"]["of"][1] == "1":
                    fd = _vec_order(fd, x0, False)        # a column by a matrix: the Jacobian by vec X
                err = rel_error(_claimed(r, env, dims).reshape(fd.shape), fd)
                assert err < tol, (problem_path, tpart["id"], r["find"], r["expr"], err)
                worst = max(worst, err)
                checked += 1
                for p in r["partials"]:
                    if p["of"] not in defs or tpart["method"] == "direct" or p["expr"] is None:
                        continue
                    w = p["wrt"]
                    if w not in full:
                        # a vector of intermediates the chain introduces (g = [g1, g2], Parr & Howard
                        # §4.5.3): its entries are checked by the tool, the result above by us
                        continue

                    def pfun(wv, p=p, w=w):
                        e2 = dict(full)
                        e2[w] = wv
                        return value(defs[p["of"]], e2, dims)

                    fdp = fd_jacobian(pfun, full[w])
                    if _by_matrix(full[w]) and len(p["shape"]["of"]) == 2 and p["shape"]["of"][1] == "1":
                        fdp = _vec_order(fdp, full[w], False)
                    errp = rel_error(_claimed(p, full, dims).reshape(fdp.shape), fdp)
                    assert errp < tol, (problem_path, tpart["id"], "partial", p["of"], p["wrt"], p["expr"], errp)
                    worst = max(worst, errp)
                    checked += 1
    assert checked > 0, f"{problem_path}: nothing was checked"
    return worst
