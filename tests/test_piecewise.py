"""Piecewise functions (relu, abs, max) and the functions of a whole vector (softmax, logsumexp,
log_softmax, mean): the numerical check keeps away from kinks, the document states the convention
at a kink once, and what is printed parses again and matches finite differences."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from generator import expr as ex
from generator.build import render_outputs, solve_problem
from generator.errors import ExprError
from generator.render.text import solution_text
from generator.spec import load_problem, parse_problem
from generator.verify import KINK_MARGIN, Point, evaluate, near_kink
from independent import define_value, fd_jacobian, rel_error, value

ROOT = Path(__file__).resolve().parent.parent
SCOPE = ex.Scope(dims=frozenset({"D"}), shapes={"x": ("D", 1), "s": (), "A": ("D", "D")})


def test_a_kink_is_found_where_the_argument_of_relu_abs_or_max_is_near_0():
    e = ex.parse("relu(x) + abs(s) * x + max(s, 2 * s) * x", SCOPE)
    sizes = {"D": 2}
    away = {"x": np.array([[0.5], [-0.7]]), "s": 0.3}
    assert not near_kink([e], away, sizes, KINK_MARGIN)
    for name, value in (("x", np.array([[0.5], [1e-4]])), ("s", -1e-4)):
        assert near_kink([e], {**away, name: value}, sizes, KINK_MARGIN)


def test_the_check_draws_its_points_away_from_kinks():
    # |s / 50| < 0.01 for half of the draws of s in (-1, 1): each point is drawn again until it is away
    problem = parse_problem("id: kinks\nsymbols: {s: scalar}\ndefine:\n  f: abs(s / 50) + relu(s / 50)\n"
                            "find: df/ds\n", "kinks.yaml")
    part = problem.parts[0]
    rng = np.random.default_rng(0)
    points = [Point(part, {}, rng) for _ in range(20)]
    assert all(abs(p.env["s"] / 50) >= KINK_MARGIN for p in points)
    sol = solve_problem(problem)
    assert not sol.failed
    check = sol.parts[0].results[0].check
    assert check.points >= 1 and check.max_rel_error <= 1e-6


def test_near_a_kink_is_measured_against_the_steps_of_the_differences():
    # relu(1000 s - 500): 0.01 from the kink in u is 1e-5 in s, inside the stencil (±1e-4 at s = 0.5);
    # a point is near when the widest step moves u by more than a tenth of its distance to 0
    problem = parse_problem("id: kinks\nsymbols: {s: scalar}\ndefine:\n  f: relu(1000 * s - 500)\n"
                            "find: df/ds\n", "kinks.yaml")
    p = Point(problem.parts[0], {}, np.random.default_rng(1))
    for s, near in ((0.5 + 5e-5, True), (0.5 - 3e-4, True), (0.5 + 0.05, False), (0.2, False)):
        p.env["s"] = s
        assert p._near_kink(1.0) == near, s


def test_a_function_that_is_near_a_kink_everywhere_is_not_called_checked():
    problem = parse_problem("id: kinks\nsymbols: {s: scalar}\ndefine:\n  f: abs(s / 1000)\nfind: df/ds\n",
                            "kinks.yaml")
    sol = solve_problem(problem)
    assert sol.failed and "kink" in sol.failed[0]


def test_the_document_states_the_convention_at_a_kink_once():
    sol = solve_problem(load_problem(ROOT / "problems/vector/relu-two-layer.yaml"))
    out = render_outputs(sol, ("md", "tex"))
    assert out["md"].decode().count("**At a kink.**") == 1
    assert out["tex"].decode().count(r"\textbf{At a kink.}") == 1
    # before the first derivative that uses the step function (dL/dW2 does not)
    md = out["md"].decode()
    assert md.index("The derivative $dL / d\\mathbf{b}_{2}$") < md.index("At a kink") \
        < md.index("The derivative $dL / d\\mathbf{W}_{1}$") + 60
    assert solution_text(sol).count("at a kink (W1 @ x + b1 = 0): step(u) = 1 where u > 0") == 1  # stepgen show
    sol = solve_problem(load_problem(ROOT / "problems/vector/logsumexp-builtin.yaml"))
    assert "At a kink" not in render_outputs(sol, ("md",))["md"].decode()
    assert "at a kink" not in solution_text(sol)


@pytest.mark.parametrize("path", ["vector/relu-neuron", "vector/relu-two-layer", "vector/residual-block",
                                  "vector/svm-hinge", "vector/softmax-builtin", "vector/logsumexp-builtin",
                                  "vector/mean-squared-error"])
def test_bank_results_match_independent_finite_differences(path):
    """Each JSON ``expr`` against central differences of the definitions, through the independent
    evaluator, at a point away from kinks."""
    import yaml
    raw = yaml.safe_load((ROOT / f"problems/{path}.yaml").read_text())
    sol = solve_problem(load_problem(ROOT / f"problems/{path}.yaml"))
    assert not sol.failed
    trace = json.loads(render_outputs(sol, ("json",))["json"])
    dims = {k: 3 + i for i, (k, v) in enumerate(raw["symbols"].items()) if v == "dim"}
    rng = np.random.default_rng(11)
    env = {}
    for name, decl in raw["symbols"].items():
        if decl == "scalar":
            env[name] = float(rng.uniform(0.5, 1.5))
        elif isinstance(decl, list):
            env[name] = rng.uniform(-1, 1, size=(dims[decl[0]], dims[decl[1]] if len(decl) > 1 else 1))
        elif isinstance(decl, dict) and "one_hot" in decl.get("assume", []):     # a one-hot label
            env[name] = np.zeros((dims[decl["shape"][0]], 1))
            env[name][rng.integers(dims[decl["shape"][0]]), 0] = 1.0
    defs = raw["define"]
    full = {n: define_value(defs, n, env, dims) for n in defs}
    for r in trace["parts"][0]["results"]:
        if r["order"] != 1:
            continue
        of, wrt = r["of"], r["wrt"]
        values = {**env, **full}

        def fun(v, of=of, wrt=wrt):     # every define name recomputed from the symbols
            e2 = dict(env)
            e2[wrt] = v
            return define_value(defs, of, e2, dims)

        fd = fd_jacobian(fun, values[wrt])
        got = np.atleast_2d(np.asarray(value(r["expr"], values, dims), dtype=float))
        assert rel_error(got.reshape(fd.shape), fd) < 1e-5, (path, of, wrt, r["expr"])


def test_shapes_and_arities_are_refused_with_their_reason():
    for text, message in (("softmax(s)", "softmax needs a vector, got 1×1"),
                          ("logsumexp(A)", "logsumexp needs a vector, got D×D"),
                          ("max(x, ones(3))", "the arguments need equal shapes, or one of them a scalar"),
                          ("max(x)", "max() takes 2 arguments, got 1"),
                          ("relu", "relu is a function; call it with its arguments")):
        with pytest.raises(ExprError, match=message.replace("(", r"\(").replace(")", r"\)")):
            ex.parse(text, SCOPE)


def test_printed_as_the_books_write_them():
    from generator.printing import LatexPrinter
    P = LatexPrinter()
    assert P(ex.parse("softmax(x)", SCOPE)) == r"\operatorname{softmax}\left(\mathbf{x}\right)"
    assert P(ex.parse("log_softmax(x)", SCOPE)).startswith(r"\log\operatorname{softmax}")
    assert P(ex.parse("step(x)", SCOPE)) == r"\mathbb{1}\left[\mathbf{x} > 0\right]"
    assert P(ex.parse("max(0, s)", SCOPE)) == r"\max\left(0, s\right)"
    assert P(ex.parse("cosh(s) + sinh(s) + log1p(s)", SCOPE)) == \
        r"\cosh\left(s\right) + \sinh\left(s\right) + \log\left(1 + s\right)"
    assert P(ex.parse("mean(x) * sum(ones(D))", SCOPE)).endswith("D")


def test_the_evaluator_agrees_with_numpy():
    env = {"x": np.array([[1.0], [-2.0], [0.5]]), "s": 0.3}
    sizes = {"D": 3}
    z = env["x"]
    p = np.exp(z) / np.exp(z).sum()
    assert np.allclose(evaluate(ex.parse("softmax(x)", SCOPE), env, sizes), p)
    assert np.allclose(evaluate(ex.parse("log_softmax(x)", SCOPE), env, sizes), np.log(p))
    assert np.isclose(evaluate(ex.parse("logsumexp(x)", SCOPE), env, sizes), np.log(np.exp(z).sum()))
    assert np.isclose(evaluate(ex.parse("mean(x)", SCOPE), env, sizes), z.mean())
    assert np.allclose(evaluate(ex.parse("max(x, s)", SCOPE), env, sizes), np.maximum(z, 0.3))
    assert np.allclose(evaluate(ex.parse("step(x) - sign(x) + abs(x)", SCOPE), env, sizes),
                       (z > 0) - np.sign(z) + np.abs(z))


def test_check_accepts_the_examples_of_the_issue(tmp_path):
    from click.testing import CliRunner
    from generator.cli import main
    f = tmp_path / "ml.yaml"
    f.write_text("""\
id: ml
symbols: {D: dim, H: dim, K: dim, w: [D], x: [D], b: scalar, y: scalar, s: scalar, W1: [H, D], W2: [K, H],
          V: [D, H], U: [H, D], t: [K], z: [K]}
define:
  a: max(0, w.T @ x + b)
  hinge: max(0, 1 - y * s)
  r: x + V @ relu(U @ x)
  L: norm(W2 @ maximum(W1 @ x, 0) - t)**2
  c: -t.T @ log(softmax(z)) - t.T @ log_softmax(z) + logsumexp(z) + mean(z)
  g: cosh(s) + sinh(s) + log1p(s**2) + abs(s)
find: [da/dw, da/db, dhinge/ds, dr/dx, dL/dW1, dL/dW2, dc/dz, dg/ds]
""")
    res = CliRunner().invoke(main, ["check", str(f)])
    assert res.exit_code == 0, res.output
    sol = solve_problem(load_problem(f))
    assert not sol.failed and all(r.check.max_rel_error <= 1e-6 for r in sol.parts[0].results)


@pytest.mark.parametrize("path, place", [
    ("vector/relu-neuron", r"At $\mathbf{w}^\top \mathbf{x} + b = 0$ (a kink of $\max$)"),
    ("vector/svm-hinge", r"At $y \, \left(\mathbf{w}^\top \mathbf{x} + b\right) = 1$ (a kink of $\max$)"),
    ("vector/residual-block", r"Where an entry of $\mathbf{W}_{1} \mathbf{x}$ is $0$ (a kink of $\operatorname{ReLU}$)"),
])
def test_the_kink_note_names_the_problems_own_kink(path, place):
    """Once, in the problem's own symbols: no placeholder u = a − b that clashes with its names, no
    |u| or sign where neither occurs."""
    md = render_outputs(solve_problem(load_problem(ROOT / f"problems/{path}.yaml")), ("md",))["md"].decode()
    note = md[md.index("**At a kink.**"):].split("\n")[0]
    assert place in note and r"\mathbb{1}[0 > 0] = 0" in note and "subgradient" in note
    assert "u = a - b" not in note and "sign" not in note and "lvert" not in note


def test_the_step_function_is_written_as_the_books_compare():
    from generator.printing import LatexPrinter
    P = LatexPrinter()
    scope = ex.Scope(dims=frozenset(), shapes={"y": (), "s": (), "a": (), "b": ()})
    assert P(ex.parse("step(1 - y * s)", scope)) == r"\mathbb{1}\left[y \, s < 1\right]"
    assert P(ex.parse("step(a - b)", scope)) == r"\mathbb{1}\left[a > b\right]"
    assert P(ex.parse("step(-a)", scope)) == r"\mathbb{1}\left[a < 0\right]"
    assert P(ex.parse("step(a + b)", scope)) == r"\mathbb{1}\left[a + b > 0\right]"
