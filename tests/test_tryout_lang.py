"""A new user's tryout (fix2-lang): names that print like a built-in, errors that say what to
write, the JSON ``expr`` of a dim as a number, ``dims`` in denominator layout, grade's wording."""
from __future__ import annotations

import json
import textwrap

import pytest

from generator.build import render_outputs, solve_problem
from generator.render.json import trace_json
from generator.spec import load_problem


def solve(tmp_path, text, name="p.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    sol = solve_problem(load_problem(p))
    assert not sol.failed, sol.failed
    return sol, json.loads(trace_json(sol))


# --- 1. a declared I or K prints as the identity or the commutation matrix does --------------

def test_a_declared_I_and_K_are_noted_as_not_the_built_in_matrices(tmp_path):
    sol, _ = solve(tmp_path, """\
        id: decli
        title: t
        symbols: {D: dim, x: [D], I: {shape: [D, D], assume: [symmetric]}, K: [D, D]}
        define:
          f: x.T @ I @ x + x.T @ K @ x
        find: df/dx
        """)
    md = render_outputs(sol, ("md",))["md"].decode()
    assert ("here $\\mathbf{I}$ is the declared symbol, not the identity matrix (the identity matrix is "
            "written $\\mathbf{I}$ with its size, e.g. $\\mathbf{I}_{D}$)") in md
    assert "here $\\mathbf{K}$ is the declared symbol, not the commutation matrix" in md


def test_no_note_for_I_when_nothing_is_called_I(tmp_path):
    sol, _ = solve(tmp_path, """\
        id: noi
        title: t
        symbols: {D: dim, x: [D], A: [D, D]}
        define:
          f: x.T @ A @ x
        find: df/dx
        """)
    md = render_outputs(sol, ("md",))["md"].decode()
    assert "identity matrix" not in md and "commutation matrix" not in md
