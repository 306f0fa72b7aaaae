"""The language of issue 11: dims as numbers, the constants pi and e, list literals (the
stacking rule), declared names that shadow built-ins, and errors that teach."""
from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

from generator import expr as ex
from generator.build import solve_problem
from generator.errors import ExprError, ProblemErrors
from generator.printing import LatexPrinter
from generator.render.json import trace_json
from generator.spec import load_problem
from generator.verify import evaluate
from independent import jacobian_error, value

SCOPE = ex.Scope(dims=frozenset({"D", "N"}),
                 shapes={"x": ("D", 1), "v": ("N", 1), "X": ("D", "D"), "s": (), "t": ()})


def parse(text, scope=SCOPE):
    return ex.parse(text, scope)


def solve(tmp_path, text, name="p.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    sol = solve_problem(load_problem(p))
    assert not sol.failed, sol.failed
    return sol, json.loads(trace_json(sol))


def load_errors(tmp_path, text) -> list[str]:
    p = tmp_path / "p.yaml"
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(ProblemErrors) as info:
        load_problem(p)
    return [e.format(caret=False) for e in info.value.errors]


# --- 3. dimensions and constants as numbers ----------------------------------------------

@pytest.mark.parametrize("text, latex", [
    ("1/N * sum(v)", r"\frac{1}{N}"),
    ("N/2 * log(det(X))", r"\frac{N}{2}"),
    ("log(2*pi)", r"\log\left(2 \pi\right)"),
    ("e**s", r"\mathrm{e}^{s}"),
    ("x / sqrt(D)", r"\sqrt{D}"),
])
def test_dims_and_constants_are_scalars_printed_by_name(text, latex):
    e = parse(text)
    assert "sum(1" not in ex.to_text(e) and latex in LatexPrinter()(e)
    assert parse(ex.to_text(e)) == e          # the text form parses again to the same tree


@pytest.mark.parametrize("sizes", [{"D": 3, "N": 4}, {"D": 5, "N": 2}])
def test_a_dim_has_the_value_of_the_size_of_each_check(sizes):
    env = {"v": np.arange(1.0, sizes["N"] + 1).reshape(-1, 1), "s": 0.5}
    got = evaluate(parse("1/N * sum(v) + pi * e * s"), env, sizes)
    want = np.mean(env["v"]) + np.pi * np.e * 0.5
    assert got == pytest.approx(want)
    assert value("1/N * sum(v) + pi * e * s", env, sizes) == pytest.approx(want)


def test_a_dim_in_arithmetic_is_constant_for_the_derivative(tmp_path):
    _, trace = solve(tmp_path, """\
        id: mean
        title: t
        symbols: {N: dim, v: [N]}
        define:
          m: 1/N * sum(v) + N * log(2*pi)
        find: dm/dv
        """)
    r = trace["parts"][0]["results"][0]
    assert r["expr"] == "1 / N * ones(N).T" or r["expr"] == "ones(N).T / N"
    sizes = r["check"]["sizes"]
    env = {"v": np.linspace(-1, 1, sizes["N"]).reshape(-1, 1)}
    assert jacobian_error("1/N * sum(v) + N * log(2*pi)", "v", r["expr"], env, sizes) < 1e-6


def test_constants_without_symbols_stay_within_the_limits_on_numbers():
    with pytest.raises(ExprError, match="not a finite number"):
        parse("exp(1000 * pi)")


# --- 4. declared names shadow the built-ins -----------------------------------------------

SHADOWING = """\
    id: shadow
    title: t
    symbols: {D: dim, x: [D], e: [D], E: [D, D], I: [D, D], T: [D, D], pi: scalar, diag: [D], mean: scalar}
    define:
      f: pi * mean * e.T @ T.T @ x + diag.T @ E @ I @ x + x.T @ x
    find: df/dx
    """


def test_declared_built_in_names_mean_what_was_declared(tmp_path):
    sol, trace = solve(tmp_path, SHADOWING)
    r = trace["parts"][0]["results"][0]
    env_shapes = {"x": (3, 1), "e": (3, 1), "E": (3, 3), "I": (3, 3), "T": (3, 3), "diag": (3, 1)}
    rng = np.random.default_rng(1)
    env = {n: rng.normal(size=s) for n, s in env_shapes.items()}
    env.update(pi=0.7, mean=-1.3)
    f = "pi * mean * e.T @ T.T @ x + diag.T @ E @ I @ x + x.T @ x"
    assert r["expr"] is not None and "diag" in r["expr"]
    assert jacobian_error(f, "x", r["expr"], env, {"D": 3}) < 1e-6


def test_the_document_notes_each_shadowed_name(tmp_path):
    from generator.build import render_outputs
    sol, _ = solve(tmp_path, SHADOWING)
    md = render_outputs(sol, ("md",))["md"].decode()
    assert "here $\\mathbf{e}$ is the declared symbol, not Euler's number" in md
    assert "here $\\pi$ is the declared symbol, not the constant $\\pi$" in md
    assert "not the built-in function diag" in md and "not the built-in function mean" in md
    assert md.count("not the built-in function") == 2        # x and E are no functions: no note
    assert "the superscript $\\top$ still means the transpose" in md


def test_a_define_name_e_is_the_residual_not_eulers_number(tmp_path):
    _, trace = solve(tmp_path, """\
        id: residual
        title: t
        symbols: {N: dim, D: dim, y: [N], Phi: [N, D], theta: [D]}
        define:
          L: e.T @ e
          e: y - Phi @ theta
        find: dL/dtheta
        """)
    assert trace["parts"][0]["results"][0]["expr"] == "-2 * (y - Phi @ theta).T @ Phi"


def test_calling_a_declared_name_says_it_is_declared():
    scope = ex.Scope(dims=frozenset({"D"}), shapes={"x": ("D", 1), "diag": ("D", 1), "ones": ()})
    with pytest.raises(ExprError, match="diag is a declared array in this problem, so diag"):
        ex.parse("diag(x)", scope)
    with pytest.raises(ExprError, match="ones is a declared scalar"):
        ex.parse("ones(D)", scope)
    with pytest.raises(ExprError, match="x is a declared array, not a function"):
        ex.parse("x(1)", scope)


def test_a_result_that_needs_a_shadowed_built_in_has_no_text_form(tmp_path):
    """With a symbol called diag, diag(...) in the trace would mean the symbol: expr is null,
    and the document (which prints the built-in as an operator) is still checked."""
    sol, trace = solve(tmp_path, """\
        id: shadow-diag
        title: t
        symbols: {D: dim, x: [D], diag: [D]}
        define:
          f: tanh(x) + diag
        find: df/dx
        """)
    r = trace["parts"][0]["results"][0]
    assert r["expr"] is None and r["check"]["ok"]
    assert r"\operatorname{diag}" in r["latex"]


# --- 5. list literals ------------------------------------------------------------------------

@pytest.mark.parametrize("text, shape", [
    ("[log(s**2), sin(3*s)]", (2, 1)),
    ("[s, t, 1, x.T @ x]", (4, 1)),
    ("[x.T, 2 * x.T]", (2, "D")),
    ("[s]", ()),
    ("[s, t].T", (1, 2)),
    ("X @ x + [1, 2, 3].T @ [s, t, s] * x", ("D", 1)),
])
def test_list_literals_are_columns_of_scalars(text, shape):
    e = parse(text)
    assert e.shape == shape
    assert parse(ex.to_text(e)) == e


@pytest.mark.parametrize("text, message", [
    ("[[1, 2], [3, 4]]", "nested lists are not part of the expression language"),
    ("[x, x]", "entry 1 of the list is D×1"),
    ("[s, x.T]", "entry 2 of the list is 1×D, entry 1 is 1×1"),
    ("[]", "an empty list is not a vector"),
    ("[" + ", ".join(["s"] * 21) + "]", "more than 20 entries"),
    ("x + [s, t]", "shapes differ"),
])
def test_bad_lists_are_clean_errors(text, message):
    with pytest.raises(ExprError, match=message.replace("[", r"\[").replace("(", r"\(")):
        parse(text)


def test_a_huge_list_is_refused_before_it_is_built():
    with pytest.raises(ExprError, match="parts|entries|longer"):
        parse("[" + ", ".join(["s"] * 3000) + "]")


def test_a_list_prints_as_a_bracketed_column():
    latex = LatexPrinter()(parse("[log(s**2), sin(3*s)]"))
    assert latex.startswith(r"\begin{bmatrix}") and r" \\ " in latex


PARR_HOWARD_4_5_3 = """\
    id: ph
    title: t
    symbols: {x: scalar}
    define:
      y: [log(g1), sin(g2)]
      g1: x**2
      g2: 3*x
    find: dy/dx
    """


def test_parr_howard_vector_chain_rule(tmp_path):
    """Parr & Howard §4.5.3: y = [ln(g1), sin(g2)], g = [x², 3x]: dy/dx = [2/x, 3cos(3x)]."""
    sol, trace = solve(tmp_path, PARR_HOWARD_4_5_3)
    r = trace["parts"][0]["results"][0]
    assert r["expr"] == "[2 / x, 3 * cos(3 * x)]"
    rules = {p["rule"] for p in r["partials"]}
    assert "stacking" in rules
    for x0 in (0.4, -1.3):
        assert jacobian_error("[log(x**2), sin(3*x)]", "x", r["expr"], {"x": x0}, {}) < 1e-6


def test_the_vector_chain_rule_is_one_link_through_g(tmp_path):
    """Parr & Howard §4.5.3 multiply the 2×2 Jacobian ∂y/∂g (diagonal, columns g₁, g₂) by the
    2×1 ∂g/∂x: one vector link g = [g₁, g₂], not a sum over two scalar paths."""
    sol, trace = solve(tmp_path, PARR_HOWARD_4_5_3)
    r = sol.parts[0].results[0]
    assert r.paths == (("y", "g", "x"),)
    outer, inner = r.partials
    assert (outer.of, outer.wrt, outer.step.dims, inner.of, inner.wrt, inner.step.dims) == (
        "y", "g", "2×2", "g", "x", "2×1")
    assert ex.to_text(outer.result) == "[[g1**(-1), 0].T, [0, cos(g2)].T]"
    assert [s.wrt for s in outer.step.substeps] == ["g1", "g2"]
    assert trace["parts"][0]["results"][0]["expr"] == "[2 / x, 3 * cos(3 * x)]"
    latex = LatexPrinter()(outer.result)
    assert latex.count("&") == 2 and r"^\top" not in latex


def test_the_vector_chain_rule_by_a_vector(tmp_path):
    """The same link when x is a vector: ∂g/∂x has rows, ∂y/∂g mixes g₁ and g₂."""
    _, trace = solve(tmp_path, """\
        id: phv
        title: t
        symbols: {D: dim, x: [D], a: [D]}
        define:
          y: [g1 * g2, exp(g2)]
          g1: a.T @ x
          g2: x.T @ x
        find: dy/dx
        """)
    r = trace["parts"][0]["results"][0]
    assert [(p["of"], p["wrt"]) for p in r["partials"]] == [("y", "g"), ("g", "x")]
    sizes = r["check"]["sizes"]
    rng = np.random.default_rng(5)
    env = {"x": rng.normal(size=(sizes["D"], 1)), "a": rng.normal(size=(sizes["D"], 1))}
    assert jacobian_error("[(a.T @ x) * (x.T @ x), exp(x.T @ x)]", "x", r["expr"], env, sizes) < 1e-6


def test_the_jacobian_of_a_list_by_a_vector_is_taken_row_by_row(tmp_path):
    _, trace = solve(tmp_path, """\
        id: rows
        title: t
        symbols: {D: dim, x: [D], A: [2, D]}
        define:
          f: [x.T @ x, sum(exp(x)), 2]
          g: norm(A @ x - [1, -2])**2
        find: [df/dx, dg/dx]
        """)
    rf, rg = trace["parts"][0]["results"]
    assert rf["dims"] == "3×D" and rf["expr"].startswith("[")
    sizes = rf["check"]["sizes"]
    rng = np.random.default_rng(3)
    env = {"x": rng.normal(size=(sizes["D"], 1)), "A": rng.normal(size=(2, sizes["D"]))}
    assert jacobian_error("[x.T @ x, sum(exp(x)), 2]", "x", rf["expr"], env, sizes) < 1e-6
    assert jacobian_error("norm(A @ x - [1, -2])**2", "x", rg["expr"], env, sizes) < 1e-6


def test_a_list_by_a_matrix_is_a_tensor_given_as_its_differential(tmp_path):
    _, trace = solve(tmp_path, """\
        id: tens
        title: t
        symbols: {D: dim, X: [D, D]}
        define:
          f: [trace(X), det(X)]
        find: df/dX
        """)
    r = trace["parts"][0]["results"][0]
    assert r["expr"] is None and r["differential"].startswith("[") and r["check"]["ok"]


# --- 8. errors that teach ------------------------------------------------------------------------

def test_caret_is_not_a_power_or_transpose():
    for text, col in (("X^T", 1), ("x.T @ X^T @ x", 7), ("s^2 + 1", 1)):
        with pytest.raises(ExprError) as info:
            parse(text)
        assert info.value.message == "`^` is not a power or transpose here: write `X.T` or `x**2`"
        assert info.value.col == col


def test_unknown_function_names_the_nearest_and_lists_them():
    with pytest.raises(ExprError) as info:
        parse("sigmoidd(s)")
    msg = info.value.message
    assert msg.startswith("unknown function 'sigmoidd'; did you mean sigmoid?")
    assert all(name in msg for name in ex.ELEMENTWISE + ex.MATRIX_FUNCS)
    with pytest.raises(ExprError) as info:
        parse("zzz(s)")
    assert "did you mean" not in info.value.message


def test_a_flow_mapping_split_by_a_comma_says_to_quote(tmp_path):
    errs = load_errors(tmp_path, """\
        id: flow
        title: t
        symbols: {D: dim, w: [D], x: [D], b: scalar}
        define: {f: exp(w.T @ x + b), g: kron(w, x)}
        find: df/dw
        """)
    assert len(errs) == 1 and "quote the expression" in errs[0] and "block style" in errs[0]
    assert ":4:" in errs[0]


def test_a_flow_mapping_split_by_a_comma_names_the_key_before_the_split(tmp_path):
    """``define: {f: max(0, w.T @ x + b)}``: the field is define.f, not define.w.T @ x + b)."""
    errs = load_errors(tmp_path, """\
        id: flow
        title: t
        symbols: {D: dim, w: [D], x: [D], b: scalar}
        define: {f: max(0, w.T @ x + b)}
        find: df/dw
        """)
    assert len(errs) == 1 and "define.f:" in errs[0] and "define.w.T" not in errs[0], errs
    assert ":4:13:" in errs[0]


def test_a_yaml_list_is_the_list_literal(tmp_path):
    sol, trace = solve(tmp_path, """\
        id: yaml-list
        title: t
        symbols: {x: scalar}
        define:
          y: [log(x**2), exp(x * 2)]
        find: dy/dx
        answer: [2 / x, 2 * exp(2 * x)]
        """)
    assert trace["parts"][0]["define"]["y"] == "[log(x**2), exp(x * 2)]"
    assert trace["parts"][0]["results"][0]["answer"] is not None


# --- property tests: the grammar of test_properties, with dims, constants and lists ------------

from hypothesis import given  # noqa: E402

from test_properties import SETTINGS, check, trees  # noqa: E402


@SETTINGS
@given(trees)
def test_random_lists_of_scalars_and_dims_as_numbers(t):
    s, v, m = t
    for text in (f"[{s}, D * ({s}), pi]", f"({s}) / D + log(2 * pi) * sum({v})",
                 f"[({v}).T @ ({v}), sum({v}) / D].T @ [e, ({s})]"):
        for wrt in ("x", "s"):
            check(text, wrt)


@SETTINGS
@given(trees)
def test_random_lists_by_a_matrix_are_tensors_or_right(t):
    check(f"[{t[0]}, 1].T @ [2, D]", "A")


def test_lists_in_shapes_and_dim_arguments_are_clean_errors(tmp_path):
    errs = load_errors(tmp_path, """\
        id: hostile
        title: t
        parts:
          - symbols: {N: dim, x: [[N]]}
            define: {f: N}
            find: df/dN
          - symbols: {N: dim, x: [N]}
            define:
              f: eye([1, 2]) @ x
            find: df/dx
          - symbols: {N: dim, x: [N]}
            define:
              f: [[x.T @ x], [sum(x)]]
            find: df/dx
          - symbols: {N: dim, x: [N]}
            define:
              f: [x.T @ x, [sum(x)]]
            find: df/dx
        """)
    text = "\n".join(errs)
    assert "symbols.x[0]: a dim is a declared dim name or a positive integer, not ['N']" in text
    assert "expected a declared dimension or a positive integer" in text
    assert text.count("nested lists are not part of the expression language") == 2
    assert all(":" in e.split(" ")[0] for e in errs)      # file:line:col on every line


def test_an_answer_in_a_flow_mapping_split_by_a_comma_says_to_quote(tmp_path):
    errs = load_errors(tmp_path, """\
        id: flow-answer
        title: t
        symbols: {D: dim, w: [D], x: [D]}
        define:
          f: exp(w.T @ x)
        find: df/dw
        answer: {df/dw: exp(w.T @ x) * x.T, x)}
        """)
    assert any("'x)' is not a find" in e and "quote the expression" in e for e in errs)


def test_a_zero_denominator_made_of_dims_is_a_clean_failure_not_a_crash(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text(textwrap.dedent("""\
        id: zero
        title: t
        symbols: {N: dim, x: [N]}
        define:
          f: x.T @ x / (N - N)
        find: df/dx
        """), encoding="utf-8")
    sol = solve_problem(load_problem(p))
    assert sol.failed and "no random point where every definition is finite" in sol.parts[0].error


@pytest.mark.parametrize("text", ["2 * [s, t] + [t, 1]", "[s, t] / s", "[s, t] * [t, 2]", "[s, t] + s"])
def test_the_simplifier_works_on_lists_entry_by_entry(text):
    from generator.calculus.simplify import simplify
    e = parse(text)
    out = simplify(e)
    assert out.op == "stack" and len(out.args) == 2
    env = {"s": 0.7, "t": -1.1}
    np.testing.assert_allclose(value(ex.to_text(out), env, {}), value(text, env, {}))


def test_the_check_sentence_says_what_no_sizes_means(tmp_path):
    """No dimension to give a size: "with every variable a scalar", or "the sizes as declared"
    for arrays of fixed size, never the odd "with scalars only"."""
    from generator.build import render_outputs
    sol, _ = solve(tmp_path, """\
        id: sc
        title: t
        symbols: {x: scalar}
        define: {f: sin(x)**2}
        find: df/dx
        """)
    md = render_outputs(sol, ("md",))["md"].decode()
    assert r"random points with $\text{every variable a scalar}$;" in md and "scalars only" not in md
    sol, _ = solve(tmp_path, """\
        id: fixed
        title: t
        symbols: {x: [2], A: [2, 2]}
        define: {f: x.T @ A @ x}
        find: df/dx
        """, name="q.yaml")
    md = render_outputs(sol, ("md",))["md"].decode()
    assert r"random points with $\text{the sizes as declared}$;" in md


def test_a_shadowed_name_is_said_once(root):
    """mml-residual declares e (the book's residual): the document says once that e is not Euler's
    number (the generated note), not in the statement too."""
    from generator.build import render_outputs, solve_problem
    sol = solve_problem(load_problem(root / "problems" / "vector" / "mml-residual.yaml"))
    md = render_outputs(sol, ("md",))["md"].decode()
    assert md.count("Euler's number") == 1
