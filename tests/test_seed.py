"""Exercise 5.8 end to end: the partials, their dims and the results, without the seed's slips."""
from __future__ import annotations

import json

import pytest

from bank_check import check_trace
from generator.build import solve_problem
from generator.expr import to_text
from generator.render.json import trace_json
from generator.spec import load_problem


@pytest.fixture(scope="module")
def seed(request):
    root = request.config.rootpath
    problem = load_problem(root / "problems" / "mml-5.8.yaml")
    return problem, solve_problem(problem)


def result(sol, part_id):
    ps = next(p for p in sol.parts if p.part.id == part_id)
    assert not ps.error, ps.error
    return ps.results[0]


def partials(r):
    return {(p.of, p.wrt): (to_text(p.result), p.step.dims, p.step.rule) for p in r.partials}


def test_part_a_partials_and_dims(seed):
    r = result(seed[1], "a")
    ps = partials(r)
    assert ps[("f", "z")] == ("-1/2 * exp(-1/2 * z)", "1×1", "scalar_chain")
    assert ps[("z", "y")] == ("y.T @ (inv(S) + inv(S).T)", "1×D", "quadratic_form")
    assert ps[("y", "x")] == ("eye(D)", "D×D", "sum")
    assert r.dims == "1×D"
    assert to_text(r.result) == ("-1/2 * exp(-1/2 * (x - mu).T @ inv(S) @ (x - mu))"
                                 " * (x - mu).T @ (inv(S) + inv(S).T)")


def test_part_a_cites_the_book(seed):
    r = result(seed[1], "a")
    step = next(p.step for p in r.partials if p.of == "z")
    assert "MML (5.107)" in step.cites and "Cookbook (81)" in step.cites


def test_part_b_written_out_outer_product_has_the_right_entries(seed):
    r = result(seed[1], "b")
    assert to_text(r.result) == "2 * x.T" and r.dims == "1×D"
    rows = r.componentwise.written[0].rows
    # row 2 is x_2 x_1, x_2^2, ..., x_2 x_D -- the seed wrote x_2^2 in the first column
    assert rows[1][0] == "{x}_{2} {x}_{1}"
    assert rows[1][1] == "{x}_{2}^{2}"
    assert rows[1][3] == "{x}_{2} {x}_{D}"
    # the last row starts x_D x_1 -- the seed wrote x_D^2
    assert rows[3][0] == "{x}_{D} {x}_{1}"
    assert rows[3][3] == "{x}_{D}^{2}"
    assert r.componentwise.row == ("2 {x}_{1}", "2 {x}_{2}", r"\cdots", "2 {x}_{D}")


def test_part_c_diagonal_in_z_not_x(seed):
    r = result(seed[1], "c")
    ps = partials(r)
    assert ps[("f", "z")] == ("diag(1 - tanh(z)**2)", "M×M", "elementwise")
    assert ps[("z", "x")] == ("A", "M×N", "sum")
    assert r.dims == "M×N"
    assert not r.expand_product
    assert to_text(r.result) == "diag(1 - tanh(A @ x + b)**2) @ A"


def test_part_c_document_shows_tanh_of_z_i(seed, tmp_path):
    from generator.build import render_outputs
    md = render_outputs(seed[1], ["md"])["md"].decode()
    assert r"1 - \tanh^{2}{\left({z}_{1} \right)}" in md
    assert r"1 - \tanh^{2}{\left({z}_{M} \right)}" in md
    assert r"{x}_{1} \right)}" not in md


def test_every_seed_result_against_independent_finite_differences(seed, request):
    problem, sol = seed
    trace = json.loads(trace_json(sol))
    worst = check_trace(request.config.rootpath / "problems" / "mml-5.8.yaml", trace)
    assert worst < 1e-6


def test_in_tool_check_is_reported(seed):
    for ps in seed[1].parts:
        for r in ps.results:
            assert r.check is not None and r.check.ok
            assert r.check.max_rel_error < 1e-6
            assert r.check.points == 3
