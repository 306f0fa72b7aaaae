"""The Jinja environments: an instructor's folder first, then the built-in templates.

Markdown templates use Jinja's usual delimiters; LaTeX templates use
``((* block *))``, ``((( var )))`` and ``((= comment =))`` so they do not fight
TeX's braces.  An override can extend the original with ``{% extends "!name" %}``
(``((* extends "!name" *))``): the ``!`` prefix skips the instructor's folder.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from .. import texsafe
from ..errors import StepgenError


def builtin_dir() -> Path:
    """``templates/`` of a checkout, or the copy installed with the package."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here.parent / "templates", here / "templates"):
        if (candidate / "solution.md.j2").is_file():
            return candidate
    raise FileNotFoundError("stepgen's built-in templates are missing")


class _Loader(jinja2.BaseLoader):
    """User folder, then built-in; ``!name`` means the built-in one."""

    def __init__(self, user: Path | None):
        self.user = jinja2.FileSystemLoader(str(user)) if user else None
        self.builtin = jinja2.FileSystemLoader(str(builtin_dir()))

    def get_source(self, environment, template):
        if template.startswith("!"):
            return self.builtin.get_source(environment, template[1:])
        if self.user is not None:
            try:
                return self.user.get_source(environment, template)
            except jinja2.TemplateNotFound:
                pass
        return self.builtin.get_source(environment, template)


def _capfirst(s: str) -> str:
    return s[:1].upper() + s[1:] if s and not s.startswith("$") else s


@lru_cache(maxsize=8)
def environment(kind: str, user: str | None = None) -> jinja2.Environment:
    # sandboxed: a template (an instructor's folder in a course repository) reaches the data it
    # is given, not Python's internals (``''.__class__.__mro__``)
    loader = _Loader(Path(user) if user else None)
    if kind == "tex":
        env = SandboxedEnvironment(
            loader=loader, block_start_string="((*", block_end_string="*))",
            variable_start_string="(((", variable_end_string=")))",
            comment_start_string="((=", comment_end_string="=))",
            trim_blocks=False, autoescape=False, undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True)
    elif kind == "html":
        from .html import FILTERS
        env = SandboxedEnvironment(loader=loader, trim_blocks=True, lstrip_blocks=True, autoescape=True,
                                   undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
        env.filters.update(FILTERS)
    else:
        env = SandboxedEnvironment(loader=loader, trim_blocks=True, lstrip_blocks=True, autoescape=False,
                                 undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["tex"] = texsafe.escape_text
    env.filters["mdtex"] = texsafe.markdown_to_latex
    env.filters["capfirst"] = _capfirst
    return env


def render(kind: str, name: str, context: dict, user: str | None = None) -> str:
    try:
        text = environment(kind, user).get_template(name).render(**context)
    except jinja2.TemplateSyntaxError as exc:
        raise StepgenError(f"template {exc.filename or exc.name}:{exc.lineno}: {exc.message}") from None
    except jinja2.TemplateError as exc:
        raise StepgenError(f"template {name}: {exc}") from None
    # collapse runs of blank lines so output does not depend on template whitespace quirks
    lines, out, blank = text.splitlines(), [], 0
    for line in lines:
        line = line.rstrip()
        blank = blank + 1 if not line else 0
        if blank <= 1:
            out.append(line)
    return "\n".join(out).strip() + "\n"


RESOURCE_SUFFIXES = (".png", ".jpg", ".jpeg", ".pdf", ".eps")


def resources(user: str | None) -> tuple[Path, ...]:
    """Images in the instructor's templates folder, for \\includegraphics (a course logo)."""
    if not user:
        return ()
    return tuple(sorted(p for p in Path(user).iterdir() if p.suffix.lower() in RESOURCE_SUFFIXES and p.is_file()))


@lru_cache(maxsize=8)
def labels(user: str | None = None) -> dict:
    """The words of the documents: the built-in labels.yaml, updated by the instructor's."""
    import yaml
    with open(builtin_dir() / "labels.yaml", encoding="utf-8") as fh:
        out = dict(yaml.safe_load(fh))
    if user and (Path(user) / "labels.yaml").exists():
        from ..files import FileRefused, read_limited
        try:     # a regular file only: a FIFO there must not hang the build
            extra = yaml.safe_load(read_limited(Path(user) / "labels.yaml", 256 * 1024).decode("utf-8")) or {}
        except (FileRefused, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise StepgenError(f"{Path(user) / 'labels.yaml'}: {exc}") from None
        if not isinstance(extra, dict):
            raise StepgenError(f"{Path(user) / 'labels.yaml'}: a mapping of label: text")
        extra = {str(k): str(v) for k, v in extra.items()}
        problem = _label_problem(extra, out)
        if problem:
            raise StepgenError(f"{Path(user) / 'labels.yaml'}: {problem}")
        out.update(extra)
    return out


# labels the templates fill in with str.format, and the names they are given
FORMAT_LABELS = {"gradient_above": {"gradient"}, "checked_text": {"points", "sizes", "error"}, "one_entry": {"entry"}}
_LANG = re.compile(r"[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*")


def _label_problem(extra: dict, builtin: dict) -> str | None:
    """What is wrong with an instructor's labels: no control or bidi characters (as in a problem file's
    text: a label is printed to every page), ``lang`` is a language tag (it is the page's ``lang``),
    a label filled in by the templates names only the placeholders of the built-in one, plainly
    (``{points}``: no ``{0}``, ``{points.real}``, ``{points:>9999999}``)."""
    import string
    from ..errors import is_unsafe_char
    for key, text in extra.items():
        bad = next((c for c in text if is_unsafe_char(c)), None)
        if bad is not None:
            return f"{key}: the invisible or control character U+{ord(bad):04X} is not allowed"
    if "lang" in extra and not _LANG.fullmatch(extra["lang"]):
        return f"lang: {extra['lang']!r} is not a language tag (en, de, pt-BR)"
    for key, names in FORMAT_LABELS.items():
        if key not in extra:
            continue
        try:
            fields = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(extra[key]) if f is not None]
        except ValueError as exc:
            return f"{key}: {exc} (write {{{{ and }}}} for a brace)"
        for f, spec, conv in fields:
            if f not in names or spec or conv:
                return (f"{key}: unknown placeholder {{{f}{'!' + conv if conv else ''}{':' + spec if spec else ''}}} "
                        f"(it may use {', '.join('{' + n + '}' for n in sorted(names))})")
    return None
