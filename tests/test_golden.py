"""Golden files: the seed's .md and .json, byte for byte. Regenerate with --update-golden and review the diff."""
from __future__ import annotations

from pathlib import Path

import pytest

from generator.build import render_outputs, solve_problem
from generator.spec import load_problem

ROOT = Path(__file__).parent.parent
CASES = sorted(ROOT.glob("problems/**/*.yaml"))


@pytest.mark.parametrize("path", CASES, ids=lambda p: str(p.relative_to(ROOT / "problems")))
@pytest.mark.parametrize("ext", ["md", "json"])
def test_golden(path, ext, root, update_golden):
    problem = load_problem(path)
    pid = problem.id
    got = render_outputs(solve_problem(problem), [ext])[ext]
    path = root / "tests" / "golden" / f"{pid}.{ext}"
    if update_golden:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(got)
    assert path.exists(), f"no golden file {path}; run pytest --update-golden"
    assert got == path.read_bytes(), f"{path} differs; review with --update-golden and git diff"


def test_output_is_deterministic(root):
    problem = load_problem(root / "problems" / "mml-5.8.yaml")
    a = render_outputs(solve_problem(problem), ["md", "tex", "json"])
    b = render_outputs(solve_problem(load_problem(root / "problems" / "mml-5.8.yaml")), ["md", "tex", "json"])
    assert a == b
