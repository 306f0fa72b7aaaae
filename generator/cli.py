"""The command line: ``stepgen build | check | new | show | schema``.

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
@click.option("--title", help="Title of the combined document (default: NAME).")
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
def build(paths, out, fmt, combine, title, sheets, no_solutions, jobs, force, templates, timeout, shard) -> None:
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
    report = run_build(paths, opts, progress=(lambda m: echo(m, err=True)) if show else None)
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


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
def check(paths) -> None:
    """Validate problem files and shapes without solving; report every error."""
    from .errors import ProblemErrors, internal_error
    from .spec import collect_files, duplicates, load_problem

    failed = 0
    files = collect_files(paths)
    ids = {}
    for f in files:
        try:
            ids[f] = load_problem(f).id
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
@click.option("--title", help="Its title (default: NAME).")
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
    from .assemble import combine_md, combine_tex
    from .files import write_atomic
    from .render.pdf import compile_pdf
    for sheet in kinds:
        stem = f"{name}-sheet" if sheet else name
        if "md" in formats:
            write_atomic(out / f"{stem}.md", combine_md(folders, name, title or name, sheet).encode())
            echo(f"wrote {out / f'{stem}.md'}")
        if "tex" in formats or "pdf" in formats:
            tex = combine_tex(folders, name, title or name, sheet)
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


if __name__ == "__main__":  # pragma: no cover
    main()
