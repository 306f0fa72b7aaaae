"""The command line: ``stepgen build | check | new | show | schema | grade``.

Each command is a few lines; heavy imports (SymPy, NumPy, Jinja) happen inside
the commands that need them, so ``stepgen --help`` and ``stepgen check`` start
fast.  Exit status: 0 all good, 1 some problem failed, 2 bad usage.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import click

from . import __version__
from .errors import printable

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
def echo(text: str, err: bool = False) -> None:
    click.echo(printable(text), err=err)


def _shard(value: str) -> tuple[int, int]:
    m = re.match(r"^(\d+)/(\d+)$", value)
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise click.BadParameter("write K/N with 1 <= K <= N, e.g. 2/4", param_hint="--shard")
    return int(m.group(1)), int(m.group(2))


def _formats(value: str) -> tuple[str, ...]:
    from .build import FORMATS
    items = tuple(v.strip() for v in value.split(",") if v.strip())
    bad = [v for v in items if v not in FORMATS]
    if bad or not items:
        raise click.BadParameter(f"choose from {','.join(FORMATS)} (got {value!r})")
    return items


def unwind_on_sigterm() -> None:
    """A cancelled CI job sends SIGTERM: unwind like Ctrl-C, so LaTeX's process groups are killed
    and temporary files removed, instead of dying with pdflatex left running."""
    import signal

    def terminate(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, terminate)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="stepgen")
def main() -> None:
    """Turn calculus problems written in YAML into worked, step-by-step solutions."""


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--out", "out", default="output", show_default=True, type=click.Path(file_okay=False),
              help="Folder the outputs are written to.")
@click.option("--format", "fmt", default="md,tex,pdf,json,html", show_default=True,
              help="Comma-separated outputs: md, tex, pdf, json, html.")
@click.option("--combine", metavar="NAME", help="Also write one document NAME.{md,tex,pdf,html} for the whole set: "
              "a title page, the contents, one section per problem.")
@click.option("--title", help="Title of the combined document (default: NAME in words, problem-set: Problem set).")
@click.option("--sheets", type=click.Choice(["solutions", "exercises", "both"]), default="solutions",
              show_default=True, help="Worked solutions, the exercise sheet (statements only, <id>-sheet.*), "
              "or both from the same run.")
@click.option("--no-solutions", is_flag=True, help="Same as --sheets exercises.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=1, show_default=True,
              help="Problems built in parallel.")
@click.option("--force", is_flag=True, help="Rebuild even what did not change since the last build.")
@click.option("--templates", type=click.Path(exists=True, file_okay=False),
              help="A folder of templates searched before the built-in ones.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=60.0, show_default=True,
              help="Seconds one problem may take before it is reported as failed.")
@click.option("--shard", metavar="K/N", help="Build only share K of N of the files (for a CI matrix); "
              "assemble the shares' outputs with `stepgen combine`.")
@click.option("--variants", type=click.IntRange(1, 999), metavar="N",
              help="Write N variants <id>-v01… of each problem with vary:, and <id>-variants.csv.")
@click.option("--seed", type=int, default=0, show_default=True, help="Picks the variants (same seed, same files).")
@click.option("--roster", type=click.Path(exists=True, dir_okay=False),
              help="A CSV with a column student: one variant per student, <id>-<student>.*")
def build(paths, out, fmt, combine, title, sheets, no_solutions, jobs, force, templates, timeout, shard,
          variants=None, seed=0, roster=None) -> None:
    """Solve the problems in PATHS (files or folders, recursively) and write the outputs."""
    from .build import Options, build as run_build
    from .render.pdf import INSTALL_HINT, have_tex

    unwind_on_sigterm()

    formats = _formats(fmt)
    if combine is not None and not _ID.match(combine):
        raise click.BadParameter("use letters, digits, '.', '_' and '-'", param_hint="--combine")
    if "pdf" in formats and not have_tex():
        echo("warning: " + INSTALL_HINT, err=True)
        formats = tuple(f for f in formats if f != "pdf")
    share = _shard(shard) if shard else None
    opts = Options(Path(out), formats, templates, "exercises" if no_solutions else sheets, timeout,
                   combine, title, jobs, force, share)
    show = sys.stderr.isatty()
    if variants is not None or roster is not None:
        report = _build_variants(paths, opts, variants, seed, roster, combine, shard, show)
    else:
        report = run_build(paths, opts, progress=(lambda m: echo(m, err=True)) if show else None)
    for note in report.notes:
        echo("note: " + note, err=True)
    for path in report.written:
        echo(f"wrote {path}")
    summary = f"built {len(report.built)} problem(s) into {out}"
    if report.skipped:
        summary += f"; {len(report.skipped)} unchanged"
    if report.failed:
        echo(f"\n{len(report.failed)} problem(s) failed:", err=True)
        for name, reason in report.failed:
            own = reason.startswith(name) or reason.startswith(f"internal error in {name}:")
            echo("  " + (reason if own else f"{name}: {reason}"), err=True)
        echo(summary, err=True)
        sys.exit(1)
    echo(summary)


def _build_variants(paths, opts, variants, seed, roster, combine, shard, show):
    from .build import build_variants
    from .errors import ProblemErrors
    from .variants import read_roster
    if variants is not None and roster is not None:
        raise click.UsageError("give --variants N or --roster CSV, not both")
    if combine or shard:
        raise click.UsageError("--variants and --roster build each variant on its own: no --combine, no --shard")
    students = ()
    if roster is not None:
        try:
            students = read_roster(roster)
        except ProblemErrors as exc:
            echo(exc.format(caret=True), err=True)
            sys.exit(2)
    return build_variants(paths, opts, variants, seed, students,
                          progress=(lambda m: echo(m, err=True)) if show else None)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
def check(paths) -> None:
    """Validate problem files and shapes without solving; report every error."""
    from .errors import ProblemErrors, internal_error
    from .spec import collect_files, duplicates, load_problem

    failed = 0
    files = collect_files(paths)
    ids = {}
    from .variants import check_combinations
    for f in files:
        try:
            ids[f] = load_problem(f).id
            bad = check_combinations(f)       # vary: every combination of the choices loads
            if bad:
                failed += 1
                echo("\n".join(bad), err=True)
        except ProblemErrors as exc:
            failed += 1
            echo(exc.format(caret=True), err=True)
        except Exception as exc:     # noqa: BLE001 -- one line per file, whatever happened
            failed += 1
            echo(internal_error(str(f), exc), err=True)
    for f, first in duplicates(ids).items():
        failed += 1
        echo(f"{f}: id {ids[f]!r} is also used by {first}; build would build only {first}", err=True)
    if failed:
        echo(f"{failed} of {len(files)} file(s) have errors", err=True)
        sys.exit(1)
    echo(f"{len(files)} file(s) OK")


@main.command()
@click.argument("folders", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--name", required=True, help="The combined document's file name (NAME.md, NAME.tex, NAME.pdf).")
@click.option("--title", help="Its title (default: NAME in words, problem-set: Problem set).")
@click.option("--out", default="output", show_default=True, type=click.Path(file_okay=False))
@click.option("--format", "fmt", default="md,tex,pdf", show_default=True, help="Comma-separated: md, tex, pdf.")
@click.option("--sheets", type=click.Choice(["solutions", "exercises", "both"]), default="solutions",
              show_default=True)
def combine(folders, name, title, out, fmt, sheets) -> None:
    """Assemble one document from the per-problem outputs in FOLDERS (e.g. the shards of a CI matrix)."""
    formats = _formats(fmt)
    if "html" in formats:       # a page is assembled from the solutions, not from other pages
        raise click.BadParameter("combine writes md, tex and pdf; the combined HTML page is written by "
                                 "build --combine NAME --format html", param_hint="--format")
    if not _ID.match(name):
        raise click.BadParameter("use letters, digits, '.', '_' and '-'", param_hint="--name")
    kinds = {"solutions": (False,), "exercises": (True,), "both": (False, True)}[sheets]
    try:
        _combine(folders, name, title, Path(out), formats, kinds)
    except OSError as exc:
        raise click.ClickException(f"cannot write into {out}: {exc.strerror or exc}") from None


def _combine(folders, name, title, out: Path, formats, kinds) -> None:
    from .assemble import combine_md, combine_tex, title_of
    from .files import write_atomic
    from .render.pdf import compile_pdf
    for sheet in kinds:
        stem = f"{name}-sheet" if sheet else name
        if "md" in formats:
            write_atomic(out / f"{stem}.md", combine_md(folders, name, title or title_of(name), sheet).encode())
            echo(f"wrote {out / f'{stem}.md'}")
        if "tex" in formats or "pdf" in formats:
            tex = combine_tex(folders, name, title or title_of(name), sheet)
            if "tex" in formats:
                write_atomic(out / f"{stem}.tex", tex.encode())
                echo(f"wrote {out / f'{stem}.tex'}")
            if "pdf" in formats:
                write_atomic(out / f"{stem}.pdf", compile_pdf(tex, stem))
                echo(f"wrote {out / f'{stem}.pdf'}")


@main.command()
@click.argument("id")
@click.option("--dir", "folder", default=".", show_default=True, type=click.Path(file_okay=False),
              help="Folder to write ID.yaml into.")
def new(id, folder) -> None:
    """Write ID.yaml, a commented problem skeleton that passes check and builds."""
    from .skeleton import write_skeleton
    from .spec import MAX_ID
    if not re.match(r"^[a-z0-9][a-z0-9._-]*$", id) or len(id) > MAX_ID:
        raise click.BadParameter(f"an id is lower-case letters, digits, '.', '_' and '-', at most {MAX_ID} "
                                 "characters", param_hint="ID")
    path = Path(folder) / f"{id}.yaml"
    write_skeleton(path, id)
    echo(f"wrote {path}; check it with: stepgen check {path}")


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def show(file) -> None:
    """Print the worked solution of FILE in the terminal."""
    from .build import solve_problem
    from .errors import ProblemErrors
    from .render.text import solution_text
    from .spec import load_problem
    from .errors import internal_error
    try:
        problem = load_problem(file)
        sol = solve_problem(problem)
        text = solution_text(sol)
    except ProblemErrors as exc:
        echo(exc.format(caret=True), err=True)
        sys.exit(1)
    except Exception as exc:     # noqa: BLE001
        echo(internal_error(file, exc), err=True)
        sys.exit(1)
    echo(text)       # the file's text, with control characters and escape sequences made visible
    if sol.failed:
        sys.exit(1)


@main.command()
def schema() -> None:
    """Print the JSON Schema of the problem format (for editors)."""
    import json
    from .schema import SCHEMA
    echo(json.dumps(SCHEMA, indent=2))


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--part", "part_id", metavar="ID", help="The part the find belongs to (files with parts).")
@click.option("--find", metavar="df/dx", help="The derivative the answer is for.")
@click.option("--answer", metavar="EXPR", help="The student's answer, in the expression language of the problem.")
@click.option("--answers", type=click.Path(exists=True, dir_okay=False),
              help="A CSV of answers: columns student, part, find, answer (part and find may be left out "
              "where there is one).")
@click.option("--out", type=click.Path(dir_okay=False), help="With --answers: write the results CSV here "
              "(default: print it).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def grade(file, part_id, find, answer, answers, out, as_json) -> None:
    """Judge a student's answer to a find of FILE (a problem file, or a variant's JSON; or, with
    --answers, the <id>-variants.csv of a --roster build: each student against their own variant).

    Exit status: 0 correct, 1 incorrect or unreadable, 2 bad usage.  With --answers, every row
    is graded (exit 0) and a summary per find is printed."""
    from .errors import ProblemErrors
    from .grade import Session, load

    if (answer is None) == (answers is None):
        raise click.UsageError("give one of --answer EXPR or --answers CSV")
    if answer is not None and not find:
        raise click.UsageError("--answer needs --find (the derivative, like df/dx)")
    if answers is not None and (find or part_id):
        raise click.UsageError("with --answers, the part and find of each answer are columns of the CSV")
    if out is not None and answers is None:
        raise click.UsageError("--out is for --answers")
    if file.endswith(".csv"):
        if answers is None:
            raise click.UsageError("a variants CSV (from build --roster) is graded with --answers CSV")
        from .grade import grade_roster
        try:
            graded = grade_roster(file, answers, out)
        except ProblemErrors as exc:
            echo(exc.format(caret=True), err=True)
            sys.exit(2)
        _grade_report(graded, out, as_json)
        return
    from .grade import refuse_overwrite
    refuse_overwrite(out, [file, answers])
    try:
        session = Session(load(file))
        if answer is not None:
            verdict = session.grader(part_id, find).grade(answer)
        else:
            from .grade import grade_table
            graded = grade_table(session, answers)
    except ProblemErrors as exc:
        echo(exc.format(caret=True), err=True)
        sys.exit(2)
    if answer is not None:
        if as_json:
            echo(_json_text(verdict.to_json()))
        else:
            codes = f" [{', '.join(verdict.diagnosis)}]" if verdict.diagnosis else ""
            echo(("correct" if verdict.correct else "incorrect" + codes) + ": " + verdict.feedback)
        sys.exit(0 if verdict.correct else 1)
    _grade_report(graded, out, as_json)


def _json_text(data, indent=None) -> str:
    """JSON with ``×`` and ``∂`` as they are, but every invisible or control character a student's
    text may hold escaped (``\u202e``): the same data, safe on a terminal."""
    import json
    from .errors import is_unsafe_char
    return "".join(json.dumps(ch)[1:-1] if is_unsafe_char(ch) else ch
                   for ch in json.dumps(data, ensure_ascii=False, indent=indent))


def _grade_report(graded, out, as_json) -> None:
    from .files import write_atomic
    from .grade import results_csv, summary
    lines = summary(graded)
    if as_json:
        data = {"results": [dict(g.verdict.to_json(), student=g.student, part=g.part, find=g.find) for g in graded],
                "summary": lines}
        text = _json_text(data, indent=2) + "\n"
    else:
        text = results_csv(graded)
    if out:
        try:
            write_atomic(Path(out), text.encode())
        except OSError as exc:
            raise click.ClickException(f"cannot write {out}: {exc.strerror or exc}") from None
        echo(f"wrote {out}: {len(graded)} answer(s)")
    else:
        click.echo(text, nl=False)
    for line in lines:
        echo(line, err=not out)


if __name__ == "__main__":  # pragma: no cover
    main()
