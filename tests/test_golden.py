"""Golden files: the seed's .md and .json, byte for byte. Regenerate with --update-golden and review the diff."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from generator.build import render_outputs, solve_problem
from generator.spec import load_problem

ROOT = Path(__file__).parent.parent
CASES = sorted(ROOT.glob("problems/**/*.yaml"))

# The size of a finite-difference error near rounding level depends on the BLAS and NumPy build,
# not on stepgen: golden files are compared with those figures masked.
_ERRORS = [(re.compile(rb"\$\d(?:\.\d+)? \\times 10\^\{-?\d+\}\$"), rb"$ERR$"),
           (re.compile(rb"(\"(?:max_rel_error|check)\": )\d(?:\.\d+)?e-?\d+"), rb"\1ERR"),
           (re.compile(rb"(largest relative error )\d(?:\.\d+)?e-?\d+"), rb"\1ERR")]


def _masked(data: bytes) -> bytes:
    for pattern, repl in _ERRORS:
        data = pattern.sub(repl, data)
    return data


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
    assert _masked(got) == _masked(path.read_bytes()), f"{path} differs; review with --update-golden and git diff"


# HTML for a few problems (the seed, a long one, a componentwise one): the page's markup and MathML
HTML_CASES = ["mml-5.8", "gp-evidence", "sigmoid-tanh-written-out"]
_HTML_ERRORS = (re.compile(rb"<mn>\d(?:\.\d+)?</mn><mo>\xc3\x97</mo><msup><mn>10</mn><mrow>(?:<mo>\xe2\x88\x92</mo>)?<mn>\d+</mn>"),
                rb"ERR")


@pytest.mark.parametrize("pid", HTML_CASES)
def test_golden_html(pid, root, update_golden):
    got = render_outputs(solve_problem(load_problem(next(ROOT.glob(f"problems/**/{pid}.yaml")))), ["html"])["html"]
    path = root / "tests" / "golden" / f"{pid}.html"
    if update_golden:
        path.write_bytes(got)
    assert path.exists(), f"no golden file {path}; run pytest --update-golden"
    masked = [_HTML_ERRORS[0].sub(_HTML_ERRORS[1], d) for d in (got, path.read_bytes())]
    assert masked[0] == masked[1], f"{path} differs; review with --update-golden and git diff"


def test_output_is_deterministic(root):
    problem = load_problem(root / "problems" / "mml-5.8.yaml")
    a = render_outputs(solve_problem(problem), ["md", "tex", "json"])
    b = render_outputs(solve_problem(load_problem(root / "problems" / "mml-5.8.yaml")), ["md", "tex", "json"])
    assert a == b


def test_output_does_not_depend_on_the_hash_seed(tmp_path, root):
    import os
    import subprocess
    import sys
    outs = []
    for seed in ("1", "2"):
        out = tmp_path / seed
        env = dict(os.environ, PYTHONHASHSEED=seed)
        subprocess.run([sys.executable, "-m", "generator.cli", "build", str(root / "problems" / "mml-5.8.yaml"),
                        str(root / "problems" / "abstract"), "--out", str(out), "--format", "md,tex,json"],
                       check=True, env=env, cwd=root, capture_output=True)
        outs.append(out)
    names = sorted(p.name for p in outs[0].glob("*.*") if not p.name.startswith("."))
    assert names
    for name in names:
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
