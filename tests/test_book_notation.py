"""What an instructor would correct in the documents: −δ_ik (not −1 δ_ik), one pair of brackets
around an entry of the step function, a derivative said once after a contraction, and the rule name
"Scalar arithmetic" where only numbers, scalars and signs move."""
from __future__ import annotations

from pathlib import Path

import pytest

from generator.build import render_outputs, solve_problem
from generator.spec import load_problem

ROOT = Path(__file__).resolve().parent.parent


def _md(path: str) -> str:
    return render_outputs(solve_problem(load_problem(ROOT / f"problems/{path}.yaml")), ("md",))["md"].decode()


@pytest.mark.parametrize("path, entry", [
    ("matrix/gaussian-log-likelihood", r"\frac{\partial {R}_{ij}}{\partial {\mu}_{k}} = -\delta_{ik}."),
    ("matrix/multi-output-regression", r"\frac{\partial {E}_{ij}}{\partial {W}_{kl}} = -{\Phi}_{ik} \delta_{lj}."),
    ("vector/relu-two-layer", r"= \mathbb{1}\left[\left(\mathbf{W}_{1} \mathbf{x} + \mathbf{b}_{1}\right)_{i} > 0\right]"
                              r"\,\delta_{ik} {x}_{l}."),
])
def test_entry_formulas_read_as_the_book_writes_them(path, entry):
    md = _md(path)
    assert entry in md
    assert "-1 \\delta" not in md and "-1 {" not in md and r"\right]\right]_{" not in md


@pytest.mark.parametrize("path", ["vector/relu-two-layer", "vector/softmax-builtin", "matrix/multi-output-regression"])
def test_a_contraction_is_not_followed_by_the_same_derivative_twice(path):
    md = _md(path)
    assert "Contraction with the tensor" in md
    assert "So $$" not in md        # the product's equation right after it says it, with its "with"


def test_only_numbers_and_signs_moving_is_scalar_arithmetic():
    sol = solve_problem(load_problem(ROOT / "problems/vector/softmax-builtin.yaml"))
    rules = [s.rule for r in sol.parts[0].results for s in r.rewrites]
    assert "scalar_arithmetic" in rules and "entrywise_algebra" not in rules
    md = _md("vector/mse-and-attention")
    assert "*Scalar arithmetic:*" in md


def test_a_function_of_the_variable_itself_names_its_own_rule():
    sol = solve_problem(load_problem(ROOT / "problems/scalar/hyperbolic.yaml"))
    rules = {s.rule for ps in sol.parts for r in ps.results for p in r.partials for s in _all(p.step)}
    assert "derivative_sinh" in rules and "derivative_cosh" in rules
    md = _md("scalar/hyperbolic")
    assert "*Derivative of the hyperbolic sine:*" in md


def _all(step):
    yield step
    for s in step.substeps:
        yield from _all(s)


def test_relu_is_cited_and_a_linear_map_of_a_function_is_a_chain_rule():
    md = _md("vector/residual-block")
    assert "*Elementwise function (Parr & Howard §5):*" in md
    assert "*Chain rule through a linear map:*" in md


def test_the_elementwise_note_uses_no_dummy_u_of_its_own():
    from generator.calculus.rules import rule_fn  # noqa: F401 (the note is the rule's)
    md = _md("vector/relu-two-layer")
    assert r"\frac{\partial f_i}{\partial u_j}" not in md
    assert "so the Jacobian is the diagonal matrix of the entries' derivatives, with $" in md
    assert "f'(" not in md           # no letter f of the rule's own beside the problem's f


def test_the_log_softmax_jacobian_is_cited():
    md = _md("vector/softmax-builtin")
    assert "Jacobian of the log-softmax (Bishop, PRML §4.3.4, (4.106))" in md


def test_a_hadamard_square_lists_its_factor_once():
    md = _md("vector/mean-squared-error")
    lines = [ln for ln in md.splitlines()
             if "*Identity:*" in ln and r"$\frac{\partial}{\partial \mathbf{r}}\left(\mathbf{r}\right)" in ln]
    assert len(lines) == 1


def test_the_hessian_steps_use_the_kept_name():
    md = _md("vector/logsumexp-builtin")
    hessian = md[md.index("**Second derivative.**"):md.index("**Result.**", md.index("**Second derivative.**"))]
    assert r"\operatorname{diag}\left(\mathbf{p}\right) - \mathbf{p} \mathbf{p}^\top" in hessian
    steps = [ln.rsplit("$", 2)[-2] for ln in hessian.splitlines() if ln.lstrip().startswith("- *")]
    assert steps and all(r"\operatorname{softmax}" not in eq.rsplit(" = ", 1)[1] for eq in steps)   # results in p


def test_a_quotient_of_vectors_and_a_negative_first_factor_print_as_the_books():
    from generator import expr as ex
    from generator.printing import LatexPrinter
    P = LatexPrinter()
    scope = ex.Scope(dims=frozenset({"D"}), shapes={"y": ("D", 1), "p": ("D", 1)})
    assert P(ex.parse("y * p**(-1)", scope)) == r"\mathbf{y} \oslash \mathbf{p}"
    assert P(ex.parse("-y.T @ log(p)", scope)) == r"-\mathbf{y}^\top \log\left(\mathbf{p}\right)"
    assert r"\left(-\mathbf{y}^\top\right)" not in _md("vector/softmax-builtin")


RELU_SQUARED = """
id: relu-squared
symbols: {N: dim, D: dim, A: [N, D], x: [D], s: scalar}
define:
  f: norm(relu(A @ x))**2
  g: relu(s)**2
find: [df/dx, d2f/dx2, dg/ds]
"""


def test_the_step_function_squared_or_against_relu_goes_by_a_named_rewrite():
    from generator import expr as ex
    from generator.spec import parse_problem
    from independent import rel_error, value
    import numpy as np
    sol = solve_problem(parse_problem(RELU_SQUARED, "relu-squared.yaml"))
    assert not sol.failed, sol.failed
    r = {r.text: r for r in sol.parts[0].results}
    assert ex.to_text(r["d2f/dx2"].result) == "2 * A.T @ diag(step(A @ x)) @ A"
    assert ex.to_text(r["dg/ds"].result) == "2 * relu(s)"
    assert ex.to_text(r["df/dx"].result) == "2 * relu(A @ x).T @ A"
    rules = {s.rule for x in r.values() for s in x.rewrites + x.hessian_rewrites + tuple(
        t for p in x.partials for t in p.rewrites)}
    assert "indicator_idempotent" in rules
    # the Hessian against second differences of f, away from the kinks (independent evaluator)
    rng = np.random.default_rng(5)
    env = {"A": rng.uniform(-1, 1, (3, 2)), "x": rng.uniform(-1, 1, (2, 1)), "s": 0.5}
    dims = {"N": 3, "D": 2}
    h, H = 1e-4, np.zeros((2, 2))
    for i in range(2):
        for j in range(2):
            def f(di, dj):
                x = env["x"].copy()
                x[i, 0] += di
                x[j, 0] += dj
                return float(value("norm(relu(A @ x))**2", dict(env, x=x), dims))
            H[i, j] = (f(h, h) - f(h, -h) - f(-h, h) + f(-h, -h)) / (4 * h * h)
    assert rel_error(np.asarray(value(ex.to_text(r["d2f/dx2"].result), env, dims)), H) < 1e-5


def test_every_nested_step_states_its_identity_in_md_and_tex():
    """A sub-step gives its rule's identity (the note), as the HTML does, not the rule's name alone."""
    sol = solve_problem(load_problem(ROOT / "problems/mml-5.8.yaml"))
    out = render_outputs(sol, ("md", "tex"))
    md, tex = out["md"].decode(), out["tex"].decode()
    assert "- *Identity:* The derivative of a variable with respect to itself is the identity: $" in md
    assert r"\textit{Identity:} The derivative of a variable with respect to itself is the identity:" in tex


def test_a_scalar_by_a_matrix_says_once_how_its_derivative_is_written():
    said = "is written as the $M \\times N$ matrix"
    assert _md("matrix/det").count(said) == 1
    assert _md("vector/softmax-builtin").count(said) == 1          # four finds by z and W: said once
    assert said not in _md("mml-5.8")                               # by vectors only: nothing to say
