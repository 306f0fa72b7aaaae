"""Benchmarks, run by hand: `python benchmarks/run.py [--quick]` prints a table.

Each figure is the median of several runs, and a ratio against a baseline
measured in the same run on the same machine, so the table reads the same on a
slow or a fast machine.  Nothing here is a unit test: the targets are checked by
reading the table (the last column says "ok" or "MISSED").
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
STEPGEN = [PY, "-m", "generator.cli"]


def median_time(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def sh(cmd, **kw) -> None:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, **kw)


def make_set(folder: Path, n: int) -> list[Path]:
    """n problems: the bank's, copied with new ids until there are n."""
    bank = sorted((ROOT / "problems").rglob("*.yaml"))
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        text = bank[i % len(bank)].read_text()
        if re.search(r"^id: .*$", text, flags=re.M):
            text = re.sub(r"^id: .*$", f"id: p{i:04d}", text, count=1, flags=re.M)
        else:
            text = f"id: p{i:04d}\n" + text
        p = folder / f"p{i:04d}.yaml"
        p.write_text(text)
        out.append(p)
    return out


def row(name, value, unit, baseline, ratio, target, ok) -> tuple:
    return (name, f"{value:.3g} {unit}", baseline, f"{ratio:.2f}×" if ratio is not None else "—", target,
            "ok" if ok else "MISSED")


def bench_engine(runs: int) -> list[tuple]:
    import sympy as sp
    from generator import expr as ex
    from generator.calculus.rules import Differentiator
    from generator.calculus.simplify import Simplifier

    D = sp.Symbol("D", integer=True, positive=True)
    x, b = sp.MatrixSymbol("x", D, 1), sp.MatrixSymbol("b", D, 1)
    A, X, B = sp.MatrixSymbol("A", D, D), sp.MatrixSymbol("X", D, D), sp.MatrixSymbol("B", D, D)
    scope = ex.Scope(dims=frozenset({"D"}), shapes={"x": ("D", 1), "b": ("D", 1), "A": ("D", "D"),
                                                      "X": ("D", "D"), "B": ("D", "D")})
    cases = [
        ("quadratic form", lambda: (x.T * A * x).diff(x), "x.T @ A @ x", "x"),
        ("trace(A @ X @ B)", lambda: sp.Trace(A * X * B).diff(X), "trace(A @ X @ B)", "X"),
        ("x.T @ x", lambda: (x.T * x).diff(x), "x.T @ x", "x"),
        ("sin(A @ x + b)", lambda: (A * x + b).applyfunc(sp.sin).diff(x), "sin(A @ x + b)", "x"),
    ]
    rows = []
    for name, sympy_fn, text, wrt in cases:
        e = ex.parse(text, scope)
        shape = scope.shapes[wrt]

        def ours():
            Differentiator(wrt, shape, Simplifier()).d(e)

        loops = 200
        t_sympy = median_time(lambda: [sympy_fn() for _ in range(loops)], runs) / loops
        t_ours = median_time(lambda: [ours() for _ in range(loops)], runs) / loops
        ratio = t_ours / t_sympy
        rows.append(row(f"engine: {name}", t_ours * 1e6, "µs", f"SymPy .diff {t_sympy * 1e6:.0f} µs", ratio,
                        "≤ 1.0×", ratio <= 1.0))
    return rows


def bench_build(tmp: Path, runs: int, n: int) -> list[tuple]:
    t_sympy = median_time(lambda: sh([PY, "-c", "import sympy"]), runs)
    src = tmp / "set"
    files = make_set(src, n)
    rows = []

    def cold():
        shutil.rmtree(tmp / "out", ignore_errors=True)
        sh(STEPGEN + ["build", str(src), "--out", str(tmp / "out"), "--format", "md,json"])

    t = median_time(cold, runs)
    rows.append(row(f"{n} problems → md + json, cold", t, "s", f"import sympy {t_sympy:.2f} s", t / t_sympy,
                    "≤ 10×", t / t_sympy <= 10))
    t_md = t

    def cold_html():
        shutil.rmtree(tmp / "out", ignore_errors=True)
        sh(STEPGEN + ["build", str(src), "--out", str(tmp / "out"), "--format", "md,json,html"])

    t = median_time(cold_html, runs)
    rows.append(row(f"{n} problems → md + json + html (MathML), cold", t, "s", f"md + json {t_md:.2f} s",
                    t / t_md, "≤ 1.5×", t / t_md <= 1.5))
    t = median_time(lambda: sh(STEPGEN + ["build", str(src), "--out", str(tmp / "out"), "--format", "md,json"]),
                    runs)
    rows.append(row("  rebuilt, nothing changed", t, "s", "same", t / t_sympy, "≤ 2×", t / t_sympy <= 2))

    def edit_one():
        f = files[0]
        f.write_text(f.read_text() + f"\n# edited {time.perf_counter()}\n")
        sh(STEPGEN + ["build", str(src), "--out", str(tmp / "out"), "--format", "md,json"])

    t = median_time(edit_one, runs)
    rows.append(row("  rebuilt after editing one problem", t, "s", "same", t / t_sympy, "≤ 3×", t / t_sympy <= 3))
    return rows


def bench_pdf(tmp: Path, runs: int, n: int, jobs: int) -> list[tuple]:
    src = tmp / "pdfset"
    make_set(src, n)
    texdir = tmp / "tex"
    sh(STEPGEN + ["build", str(src), "--out", str(texdir), "--format", "tex", "--force"])
    texfiles = sorted(texdir.glob("*.tex"))

    def bare():
        work = tmp / "bare"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        for f in texfiles:
            shutil.copy(f, work / f.name)
        names = "\n".join(f.name for f in texfiles)
        subprocess.run(f"xargs -P {jobs} -n 1 latexmk -pdf -interaction=nonstopmode -halt-on-error -quiet",
                       shell=True, input=names.encode(), cwd=work, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def ours():
        shutil.rmtree(tmp / "pdfout", ignore_errors=True)
        sh(STEPGEN + ["build", str(src), "--out", str(tmp / "pdfout"), "--format", "pdf", "--jobs", str(jobs)])

    t_bare = median_time(bare, runs)
    t_ours = median_time(ours, runs)
    ratio = t_ours / t_bare
    return [row(f"{n} per-problem PDFs, --jobs {jobs}", t_ours, "s", f"bare latexmk -P {jobs} {t_bare:.1f} s",
                ratio, "≤ 1.15×", ratio <= 1.15)]


def bench_cli(tmp: Path, runs: int) -> list[tuple]:
    t_click = median_time(lambda: sh([PY, "-c", "import click"]), runs)
    t_help = median_time(lambda: sh(STEPGEN + ["--help"]), runs)
    f = ROOT / "problems" / "mml-5.8.yaml"
    t_check = median_time(lambda: sh(STEPGEN + ["check", str(f)]), runs)
    probe = ("import sys; from generator.cli import main\n"
             "try:\n    main(['check', sys.argv[1]])\nexcept SystemExit:\n    pass\n"
             "heavy = [m for m in ('sympy', 'numpy', 'jinja2') if m in sys.modules]\n"
             "print(','.join(heavy) or 'none')")
    heavy = subprocess.run([PY, "-c", probe, str(f)], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    heavy = heavy.splitlines()[-1] if heavy else "?"
    return [
        row("stepgen --help", t_help, "s", f"import click {t_click:.3f} s", t_help / t_click, "≤ 2×",
            t_help / t_click <= 2),
        row("stepgen check (one file)", t_check, "s", f"imports of sympy/numpy/jinja2: {heavy}",
            t_check / t_click, "no heavy imports", heavy == "none"),
    ]


def hostile_files(tmp: Path) -> list[tuple[str, Path]]:
    """127 KB files of YAML aliases of one expression (bad, good), and a 254 KB file of 16,000 errors."""
    def aliases(expr):
        lines = ["id: alias", "symbols: {D: dim, x: [D]}", "find: df/dx", f'title: &e "{expr}"', "parts:"]
        while sum(len(line) + 1 for line in lines) < 127_000:
            lines.append("  - {define: {f: *e}}")
        return lines
    good = "+".join(["sin(x.T@x)*cos(x.T@x)"] * 50)
    many = ["id: many", "symbols: {D: dim, x: [D]}", "find: df0/dx", "define:"]
    while sum(len(line) + 1 for line in many) < 254_000:
        many.append(f"  f{len(many)}: q{len(many)}")
    out = []
    for name, lines in (("aliases of an error", aliases(good + "+y")), ("aliases", aliases(good)),
                        ("errors", many)):
        path = tmp / f"hostile-{len(out)}.yaml"
        path.write_text("\n".join(lines) + "\n")
        out.append((name, path))
    return out


def bench_hostile(tmp: Path, runs: int) -> list[tuple]:
    """Loading is bounded by the file: check of a hostile file against PyYAML's own reading of it."""
    import yaml
    rows = []
    for name, path in hostile_files(tmp):
        text = path.read_text()
        t_yaml = median_time(lambda: yaml.compose(text, Loader=yaml.SafeLoader), runs)
        t_check = median_time(lambda: subprocess.run(STEPGEN + ["check", str(path)], capture_output=True,
                                                     cwd=ROOT), runs)
        rows.append(row(f"stepgen check ({name}, {len(text) // 1000} KB)", t_check, "s",
                        f"yaml.compose {t_yaml:.2f} s", t_check / t_yaml, "≤ 5×", t_check / t_yaml <= 5))
    return rows


def peak_rss_build(src: Path, out: Path) -> float:
    code = ("import resource, sys\nfrom generator.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    res = subprocess.run([PY, "-c", code, "build", str(src), "--out", str(out), "--format", "md,json"],
                         capture_output=True, text=True, cwd=ROOT)
    return int(res.stdout.strip().splitlines()[-1]) / 1024


def bench_memory(tmp: Path, small: int, big: int) -> list[tuple]:
    a, b = tmp / "mem-a", tmp / "mem-b"
    make_set(a, small)
    make_set(b, big)
    m_small = peak_rss_build(a, tmp / "mem-out-a")
    m_big = peak_rss_build(b, tmp / "mem-out-b")
    ratio = m_big / m_small
    return [row(f"peak memory, {big} problems", m_big, "MiB", f"{small} problems {m_small:.0f} MiB", ratio,
                "flat (≤ 1.2×)", ratio <= 1.2)]


def chain_problem(links: int, dim) -> str:
    lines = ["id: chain", "title: chain", "source: benchmark",
             f"symbols: {{D: dim, x: [{dim}], A: [{dim}, {dim}], b: [{dim}]}}", "define:", "  f: sum(z1)"]
    for k in range(1, links):
        lines.append(f"  z{k}: tanh(A @ z{k + 1} + b)")
    lines.append(f"  z{links}: A @ x + b")
    lines.append("find: df/dx")
    return "\n".join(lines) + "\n"


def bench_scaling(tmp: Path, runs: int) -> list[tuple]:
    from generator.calculus.chain import solve_target
    from generator.spec import parse_problem

    def engine_time(text):
        problem = parse_problem(text, "chain.yaml")
        part = problem.parts[0]
        return median_time(lambda: solve_target(part, part.find[0]), runs)

    rows = []
    per_link = []
    for links in (2, 4, 8, 16, 32):
        t = engine_time(chain_problem(links, "D"))
        per_link.append(t / links)
    spread = max(per_link) / min(per_link)
    rows.append(row("chain 2…32 links: time per link", statistics.median(per_link) * 1e3, "ms",
                    " / ".join(f"{p * 1e3:.1f}" for p in per_link) + " ms", spread, "linear (≤ 3× spread)",
                    spread <= 3))
    times = [engine_time(chain_problem(4, d)) for d in ("D", 3, 30, 300)]
    spread = max(times) / min(times)
    rows.append(row("symbolic work vs D (D, 3, 30, 300)", statistics.median(times) * 1e3, "ms",
                    " / ".join(f"{t * 1e3:.1f}" for t in times) + " ms", spread, "independent (≤ 1.5×)",
                    spread <= 1.5))
    return rows


def grade_answers(n: int) -> str:
    """An answers CSV for problems/mml-5.8.yaml: n distinct texts (each a new number written in, so
    nothing is graded twice), right and wrong in the proportions of a real class."""
    forms = [
        ("a", "{k}/{k} * -1/2 * exp(-z/2) * y.T @ (inv(S) + inv(S).T)"),     # right
        ("a", "{k}/{k} * -1/2 * exp(-z/2) * (inv(S) + inv(S).T) @ y"),     # transposed
        ("a", "{k}/{k} * -exp(-z/2) * y.T @ inv(S)"),                       # assumption
        ("a", "{k}/{k} * y.T @ (inv(S) + inv(S).T)"),                       # partial
        ("b", "{k}/{k} * 2 * x.T"),                                         # right
        ("b", "{k}/{k} * 2 * x"),                                           # transposed
        ("b", "{k}/{k} * -2 * x.T"),                                        # sign
        ("c", "{k}/{k} * diag(1 - tanh(z)**2) @ A"),                        # right
        ("c", "{k}/{k} * A.T @ diag(1 - tanh(z)**2)"),                      # transposed
        ("c", "{k}/{k} * diag(1 - tanh(z)**2) @ A @ q"),                    # unknown name
        ("c", "{k}/{k} * diag(1 - tanh(z)**2 @ A"),                         # syntax
    ]
    lines = ["student,part,find,answer"]
    for i in range(n):
        part, form = forms[i % len(forms)]
        lines.append(f's{i:05d},{part},df/dx,"{form.format(k=1000 + i)}"')
    return "\n".join(lines) + "\n"


def bench_grade(tmp: Path, runs: int, n: int) -> list[tuple]:
    answers = tmp / "answers.csv"
    answers.write_text(grade_answers(n))
    problem = ROOT / "problems" / "mml-5.8.yaml"

    def one():
        subprocess.run(STEPGEN + ["grade", str(problem), "--part", "a", "--find", "df/dx", "--answer", "x.T"],
                       cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def batch():
        sh(STEPGEN + ["grade", str(problem), "--answers", str(answers), "--out", str(tmp / "results.csv")])

    t_one = median_time(one, runs)
    t = median_time(batch, max(1, runs // 2))
    return [row(f"grade {n:,} distinct answers, CSV → CSV (each find derived once)", t, "s",
                f"grade one answer {t_one:.2f} s", t / t_one, "≤ 20 s", t <= 20)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer runs and smaller sets (a rough look)")
    ap.add_argument("--no-pdf", action="store_true", help="skip the PDF figure (needs TeX)")
    ap.add_argument("--only", choices=["grade", "build"], help="only this figure")
    args = ap.parse_args()
    runs = 3 if args.quick else 5
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    rows = []
    with tempfile.TemporaryDirectory(prefix="stepgen-bench-") as t:
        tmp = Path(t)
        if args.only == "grade":
            rows += bench_grade(tmp, runs, 10_000)
            return _table(rows)
        if args.only == "build":
            rows += bench_build(tmp, runs, 100)
            return _table(rows)
        rows += bench_engine(runs)
        rows += bench_build(tmp, runs, 100)
        if not args.no_pdf and shutil.which("latexmk"):
            rows += bench_pdf(tmp, 3 if args.quick else 3, 20 if args.quick else 100, 2)
        rows += bench_cli(tmp, runs)
        rows += bench_hostile(tmp, runs)
        rows += bench_memory(tmp, 100, 300 if args.quick else 1000)
        rows += bench_scaling(tmp, runs)
        rows += bench_grade(tmp, runs, 10_000)
    _table(rows)


def _table(rows) -> None:
    head = ("figure", "value", "baseline", "ratio", "target", "")
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, {sys.platform}")
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))


if __name__ == "__main__":
    main()
