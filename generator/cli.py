"""The command line: ``stepgen build | check | new | show | schema``.

Each command is a few lines; heavy imports (SymPy, NumPy, Jinja) happen inside
the commands that need them, so ``stepgen --help`` and ``stepgen check`` start
fast.  Exit status: 0 all good, 1 some problem failed, 2 bad usage.
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

from . import __version__


def _formats(value: str) -> tuple[str, ...]:
    from .build import FORMATS
    items = tuple(v.strip() for v in value.split(",") if v.strip())
    bad = [v for v in items if v not in FORMATS]
    if bad or not items:
        raise click.BadParameter(f"choose from {','.join(FORMATS)} (got {value!r})")
    return items


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="stepgen")
def main() -> None:
    """Turn calculus problems written in YAML into worked, step-by-step solutions."""


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--out", "out", default="output", show_default=True, type=click.Path(file_okay=False),
              help="Folder the outputs are written to.")
@click.option("--format", "fmt", default="md,tex,pdf,json", show_default=True,
              help="Comma-separated outputs: md, tex, pdf, json.")
@click.option("--no-solutions", is_flag=True, help="Write the exercise sheet (statements only).")
@click.option("--templates", type=click.Path(exists=True, file_okay=False),
              help="A folder of templates searched before the built-in ones.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=60.0, show_default=True,
              help="Seconds one problem may take before it is reported as failed.")
def build(paths, out, fmt, no_solutions, templates, timeout) -> None:
    """Solve the problems in PATHS (files or folders) and write the outputs."""
    from .build import build as run_build
    from .render.pdf import INSTALL_HINT, have_tex

    formats = _formats(fmt)
    if "pdf" in formats and not have_tex():
        click.echo("warning: " + INSTALL_HINT, err=True)
        formats = tuple(f for f in formats if f != "pdf")
    show = sys.stderr.isatty()
    report = run_build(paths, Path(out), formats, templates, solutions=not no_solutions,
                       progress=(lambda m: click.echo(m, err=True)) if show else None, timeout=timeout)
    for path in report.written:
        click.echo(f"wrote {path}")
    if report.failed:
        click.echo(f"\n{len(report.failed)} problem(s) failed:", err=True)
        for name, reason in report.failed:
            click.echo(f"  {name}: {reason}", err=True)
        sys.exit(1)
    click.echo(f"built {len(report.built)} problem(s) into {out}")


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
def check(paths) -> None:
    """Validate problem files and shapes without solving; report every error."""
    from .errors import ProblemErrors
    from .spec import collect_files, load_problem

    failed = 0
    files = collect_files(paths)
    for f in files:
        try:
            load_problem(f)
        except ProblemErrors as exc:
            failed += 1
            click.echo(exc.format(caret=True), err=True)
    if failed:
        click.echo(f"{failed} of {len(files)} file(s) have errors", err=True)
        sys.exit(1)
    click.echo(f"{len(files)} file(s) OK")


if __name__ == "__main__":  # pragma: no cover
    main()
