"""What an instructor reads in the vec/Kronecker/Hessian documents (review of issue 11): an
identity's letters never clash with the problem's names, Kronecker results in Magnus &
Neudecker's form, the right chapter cited, the Hessian by vec X labelled as the book does."""
from __future__ import annotations

import re

import numpy as np

from generator import expr as ex
from generator.calculus.rules import unclash
from independent import jacobian_error, vec_hessian_error
from test_kron import SIZES, _values, solved


def _notes(step) -> list[str]:
    return [step.note] + [n for s in step.substeps for n in _notes(s)]


def _bound_letters(note: str) -> list[str]:
    return re.findall(r"\$(?:\\mathbf\{([A-Za-z])\}|[A-Za-z]) = @\d", note)


def test_an_identity_letter_that_names_a_problem_matrix_is_renamed():
    r = solved("{M: dim, N: dim, x: [M*N], A: [M, M], B: [N, N]}", "x.T @ kron(B, A) @ x", "df/dx")
    note = r.partials[0].step.note
    assert r"\mathbf{B} = @" not in note                   # never "with B = B ⊗ A"
    assert r"\mathbf{C} = @1" in note and r"(\mathbf{C} + \mathbf{C}^\top)" in note
    assert "B" not in _bound_letters(note) and "A" not in _bound_letters(note)


def test_a_scalar_placeholder_is_renamed_everywhere_in_its_identity():
    r = solved("{N: dim, u: [N]}", "sin(u.T @ u)", "df/du")
    note = r.partials[0].step.note
    assert r"\frac{d}{dv} \sin v = \cos v" in note and "$v = @0$" in note


def test_unclash_leaves_a_letter_bound_to_itself_and_words_alone():
    B = ex.sym("B", (3, 3))
    note = r"a form: $\mathbf{B}^\top$, with $\mathbf{B} = @0$"
    assert unclash(note, (B,), {"B"}) == note
    C = ex.sym("C", (3, 3))
    out = unclash(r"a form: $\mathbf{a}^\top \mathbf{B}$, with $\mathbf{B} = @0$", (ex.add(B, C),), {"B", "C"})
    assert out == r"a form: $\mathbf{a}^\top \mathbf{M}$, with $\mathbf{M} = @0$"


def test_the_kronecker_quadratic_form_ends_in_the_books_form():
    r = solved("{M: dim, N: dim, x: [M*N], A: [M, M], B: [N, N]}", "x.T @ kron(B, A) @ x", "df/dx")
    assert ex.to_text(r.result) == "x.T @ (kron(B, A) + kron(B.T, A.T))"
    assert [s.rule for s in r.partials[0].rewrites] == ["kron_transpose"]
    values = _values({"x": (6, 1), "A": (2, 2), "B": (3, 3)}, np.random.default_rng(3))
    assert jacobian_error("x.T @ kron(B, A) @ x", "x", ex.to_text(r.result), values, SIZES) < 1e-6


def test_the_log_det_hessian_has_the_commutation_matrix_in_front():
    r = solved("{D: dim, X: [D, D]}", "log(det(X))", "d2f/dX2")
    # −K(X⁻ᵀ ⊗ X⁻¹), Magnus & Neudecker's form, by a named step from −(X⁻¹ ⊗ X⁻ᵀ)K
    assert ex.to_text(r.result) == "-(commutation(D, D) @ kron(inv(X).T, inv(X)))"
    assert [s.rule for s in r.hessian_rewrites] == ["commutation_swap"]
    values = _values({"X": (3, 3)}, np.random.default_rng(4))
    values["X"] = values["X"] + 3 * np.eye(3)
    assert vec_hessian_error("log(det(X))", "X", ex.to_text(r.result), values, {"D": 3}) < 1e-5


def _md(path: str) -> str:
    from pathlib import Path

    from generator.build import render_outputs, solve_problem
    from generator.spec import load_problem
    root = Path(__file__).parent.parent
    return render_outputs(solve_problem(load_problem(root / path)), ["md"])["md"].decode()


def test_a_jacobian_by_vec_x_cites_the_identification_and_is_labelled_as_the_book_does():
    r = solved("{M: dim, N: dim, P: dim, Q: dim, A: [M, N], X: [N, P], B: [P, Q]}", "vec(A @ X @ B)")
    step = r.partials[0].step
    assert step.rule == "vec_jacobian" and step.cites == "Magnus & Neudecker (1999), ch. 9"
    # one term: the vec-of-a-product line is already J vec(dX), no "Collecting the terms" repeating it
    assert [s.rule for s in step.substeps] == ["vec_linear", "vec_kron"]
    md = _md("problems/kronecker/vec-product.yaml")
    assert r"\frac{\partial \mathbf{y}}{\partial (\operatorname{vec} \mathbf{X})^\top} = \mathbf{B}^\top \otimes" in md
    assert "Collecting the terms" not in md


def test_several_terms_are_still_collected_into_j():
    r = solved("{M: dim, N: dim, X: [M, N], A: [M, M], B: [N, N]}", "trace(A @ X @ B @ X.T)", "d2f/dX2")
    (step,) = r.extra_steps
    assert step.cites == "Magnus & Neudecker (1999), ch. 10"
    assert [s.rule for s in step.substeps][-1] == "differential_collected"


def test_the_hessian_by_a_matrix_reads_as_math_with_the_books_label():
    md = _md("problems/kronecker/trace-hessian.yaml")
    part_a = md.split("## Part (b)")[0]
    assert r"with respect to $\operatorname{vec} \mathbf{X}$, the columns of $\mathbf{X}$ stacked" in part_a
    assert r"$\mathrm{d} \operatorname{vec}\left(\frac{\partial f}{\partial \mathbf{X}}\right) = \mathbf{H}" in part_a
    assert "d vec(G)" not in md and "respect to vec X," not in md
    assert (r"\boxed{\frac{\partial^{2} f}{\partial (\operatorname{vec} \mathbf{X}) \, "
            r"\partial (\operatorname{vec} \mathbf{X})^\top} = ") in part_a
    assert r"\frac{\partial}{\partial (\operatorname{vec} \mathbf{X})^\top}\left(\operatorname{vec}" in part_a


def test_the_where_line_lists_only_the_names_the_part_uses():
    md = _md("problems/kronecker/trace-hessian.yaml")
    part_a, part_b = md.split("## Part (b)")
    where_a = next(line for line in part_a.splitlines() if line.startswith("where "))
    where_b = next(line for line in part_b.splitlines() if line.startswith("where "))
    assert r"\mathbf{B} \in" not in where_a and r"\mathbf{A} \in" in where_a
    assert r"\mathbf{B} \in" in where_b


# --- errors that did not teach: derived now (Magnus & Neudecker's exercises) ---------------------

VEC_SIZES = {"M": 2, "N": 3, "P": 3}


def test_a_linear_form_in_vec_x_is_the_row_a_transposed_by_the_first_identification_theorem():
    from independent import vec_jacobian_error as vje
    r = solved("{M: dim, N: dim, X: [M, N], a: [M*N]}", "a.T @ vec(X)")
    assert ex.to_text(r.result) == "a.T" and r.partials[0].step.rule == "vec_jacobian"
    assert r.partials[0].step.cites == "Magnus & Neudecker (1999), ch. 9"
    values = _values({"X": (2, 3), "a": (6, 1)}, np.random.default_rng(8))
    assert vje("a.T @ vec(X)", "X", ex.to_text(r.result), values, VEC_SIZES) < 1e-6


def test_a_quadratic_form_in_vec_x_is_derived_in_the_books_form():
    from independent import vec_jacobian_error as vje
    f = "vec(X).T @ kron(B, A) @ vec(X)"
    r = solved("{M: dim, N: dim, X: [M, N], A: [M, M], B: [N, N]}", f)
    assert ex.to_text(r.result) == "vec(X).T @ (kron(B.T, A.T) + kron(B, A))"
    values = _values({"X": (2, 3), "A": (2, 2), "B": (3, 3)}, np.random.default_rng(9))
    assert vje(f, "X", ex.to_text(r.result), values, VEC_SIZES) < 1e-6


def test_the_trace_of_a_product_of_kronecker_products_goes_through_the_mixed_product():
    f = "trace(kron(A, X) @ kron(B, X))"
    r = solved("{M: dim, P: dim, A: [M, M], B: [M, M], X: [P, P]}", f)
    step = r.partials[0].step
    assert step.rule == "kron_mixed_product" and step.substeps[0].rule == "kron_trace"
    assert ex.to_text(r.result) == "2 * trace(A @ B) * X.T"
    values = _values({"A": (2, 2), "B": (2, 2), "X": (4, 4)}, np.random.default_rng(10))
    assert jacobian_error(f, "X", ex.to_text(r.result), values, SIZES) < 1e-6


def test_the_differential_of_a_kronecker_product_has_no_zero_term():
    r = solved("{M: dim, P: dim, A: [M, M], X: [P, P]}", "kron(A, X)")
    assert r.tensor and ex.to_text(r.result) == "kron(A, d:X)"     # dF = A ⊗ dX, not 0 ⊗ X + A ⊗ dX
    assert "constant" not in [s.rule for s in r.partials[0].step.substeps]


def test_an_error_that_remains_writes_dx_never_the_engines_d_colon_x():
    from generator.build import solve_problem
    from generator.spec import parse_problem
    from test_kron import PROBLEM
    sol = solve_problem(parse_problem(PROBLEM.format(symbols="{P: dim, X: [P, P]}", expr="trace(diag(vec(X)))",
                                                     find="df/dX"), "k.yaml"))
    assert sol.failed
    text = str(sol.failed)
    assert "vec(dX)" in text and "d:X" not in text


# --- nits ----------------------------------------------------------------------------------------

def test_a_product_of_dims_is_written_as_the_book_does():
    from generator.printing import dim_latex, dims_latex
    assert dims_latex("M*Q×N*P") == r"MQ \times NP"
    assert dims_latex("1×(M*N)") == r"1 \times (MN)"
    assert dim_latex("H1*N") == r"H1 \, N"          # longer names keep a thin space between them
    assert dim_latex("N*2") == r"N \cdot 2" and dim_latex("2*N") == "2N"
    assert dims_latex("D*D×D*D") == r"D^{2} \times D^{2}"
    assert r"\in \mathbb{R}^{MQ \times NP}}" in _md("problems/kronecker/vec-product.yaml")


def test_a_symmetric_matrix_differentiated_by_says_once_what_the_derivative_means():
    md = _md("problems/matrix/gaussian-log-likelihood.yaml")
    assert md.count("treats its entries as independent") == 1
    assert r"\mathbf{G} + \mathbf{G}^\top - \mathbf{G} \odot \mathbf{I}" in md
    # a symmetric matrix that is only a constant: nothing to say
    assert "treats its entries" not in _md("problems/matrix/symmetric-construction.yaml")


SOFTMAX = """\
id: s
symbols: {K: dim, M: dim, W: [K, M], phi: [M], t: {shape: [K], assume: [one_hot]}}
define:
  E: -t.T @ log(y)
  y: softmax(W @ phi)
find: d2E/dW2
"""


def test_a_kronecker_hessian_says_which_vec_order_it_belongs_to():
    """kron(φφᵀ, diag(p) − ppᵀ) is the Hessian by vec W (columns stacked); by the rows of W (Bishop's blocks
    by w_k, vec Wᵀ) it is (diag(p) − ppᵀ) ⊗ φφᵀ: the note says so, and the swap holds numerically."""
    from generator.build import render_outputs, solve_problem
    from generator.spec import parse_problem
    from independent import value
    sol = solve_problem(parse_problem(SOFTMAX, "s.yaml"))
    assert not sol.failed, sol.failed
    (r,) = sol.parts[0].results
    md = render_outputs(sol, ("md",))["md"].decode()
    assert md.count("the Kronecker form of the Hessian by") == 1
    assert r"belongs to $\operatorname{vec} \mathbf{W}$, the columns of $\mathbf{W}$ stacked" in md
    assert r"each $\mathbf{A} \otimes \mathbf{B}$ reads $\mathbf{B} \otimes \mathbf{A}$" in md
    K, M = 3, 4
    rng = np.random.default_rng(8)
    W, phi = rng.normal(size=(K, M)), rng.normal(size=(M, 1))
    env = {"W": W, "phi": phi, "t": np.eye(K)[:, [1]]}
    H = np.asarray(value(ex.to_text(r.result), env, {"K": K, "M": M}))
    rows = np.arange(K * M).reshape(M, K).T.reshape(-1)      # vec Wᵀ's entries as positions in vec W
    p = np.exp(W @ phi) / np.exp(W @ phi).sum()
    assert np.allclose(H[np.ix_(rows, rows)], np.kron(np.diagflat(p) - p @ p.T, phi @ phi.T))
    assert not np.allclose(H, np.kron(np.diagflat(p) - p @ p.T, phi @ phi.T))


def test_no_vec_order_note_without_a_kronecker_hessian():
    from generator.build import render_outputs, solve_problem
    from generator.spec import parse_problem
    text = "id: q\nsymbols: {M: dim, N: dim, X: [M, N], S: [M*N, M*N]}\ndefine: {f: vec(X).T @ S @ vec(X)}\nfind: d2f/dX2\n"
    md = render_outputs(solve_problem(parse_problem(text, "q.yaml")), ("md",))["md"].decode()
    assert "Kronecker form" not in md


def test_the_vec_order_note_uses_letters_the_problem_does_not():
    from generator.build import render_outputs, solve_problem
    from generator.spec import parse_problem
    text = "id: t\nsymbols: {M: dim, N: dim, X: [M, N], A: [M, M]}\ndefine: {f: trace(X.T @ A @ X)}\nfind: d2f/dX2\n"
    md = render_outputs(solve_problem(parse_problem(text, "t.yaml")), ("md",))["md"].decode()
    assert r"each $\mathbf{B} \otimes \mathbf{P}$ reads $\mathbf{P} \otimes \mathbf{B}$" in md
