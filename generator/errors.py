"""Errors for people: one base class, a few kinds, each printable without a traceback.

``StepgenError`` is a ``click.ClickException`` so the CLI prints its message
and exits with status 1.  ``ProblemError`` carries the file, line, column and
field of a problem file (``file:line:col: field: message``) and can show the
offending source line with a caret under the column.  ``ProblemErrors`` prints
the first ``MAX_SHOWN`` errors of a file and counts the rest, in time linear in
the file (its text is split into lines once).
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import click

def is_unsafe_char(ch: str) -> bool:
    """C0/C1 controls (other than newline and tab), DEL, bidi and other invisible format characters,
    lone surrogates: what no output and no terminal may receive from a file (ESC starts the escape
    sequences that move the cursor, retitle the window, ...)."""
    o = ord(ch)
    if ch in "\n\t":
        return False
    return o < 32 or 127 <= o < 160 or unicodedata.category(ch) in ("Cf", "Cs", "Co", "Cn", "Zl", "Zp")


def printable(text: str) -> str:
    """``text`` safe for a terminal: each unsafe character shown as an escape (``\\x1b``, ``\\u202e``)."""
    return "".join((f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}") if is_unsafe_char(ch)
                   else ch for ch in text)


def width(text: str) -> int:
    """Columns ``text`` takes on a terminal: East Asian wide and fullwidth characters two,
    combining marks and invisible format characters none."""
    return sum(0 if unicodedata.category(ch) in ("Mn", "Me", "Cf")
               else 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


class StepgenError(click.ClickException):
    """Base of every error stepgen reports to a user."""

    exit_code = 1

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ExprError(StepgenError):
    """An error inside one expression; ``col`` is the 0-based column in its text."""

    def __init__(self, message: str, col: int | None = None):
        super().__init__(message)
        self.col = col


class UnsupportedError(StepgenError):
    """No rule of the engine applies: the problem is reported, never answered wrongly."""


class CheckFailed(StepgenError):
    """A step's result disagreed with finite differences."""


class ProblemTimeout(StepgenError):
    """A problem ran past its time limit."""


@dataclass(frozen=True)
class Location:
    file: str
    line: int = 0        # 1-based; 0 when unknown
    col: int = 0         # 1-based; 0 when unknown
    field: str = ""

    def __str__(self) -> str:
        where = self.file
        if self.line:
            where += f":{self.line}:{max(self.col, 1)}"
        return where


class ProblemError(StepgenError):
    """An error in a problem file, with its position; ``source`` is the file's text."""

    def __init__(self, loc: Location, message: str, source: str | None = None):
        self.loc = loc
        self.detail = message
        self.source = source
        super().__init__(self.format(caret=False))

    def format(self, caret: bool = True, lines: list[str] | None = None) -> str:
        """``file:line:col: field: message``, and with ``caret`` the source line with a caret
        under the column; ``lines`` is the source split once for all the errors of a file."""
        head = f"{self.loc}: "
        if self.loc.field:
            head += f"{self.loc.field}: "
        text = head + self.detail
        if caret and self.source and self.loc.line:
            if lines is None:
                lines = self.source.splitlines()
            if 0 < self.loc.line <= len(lines):
                # shown as printed (tabs as one space, controls escaped): the caret's column is
                # the width of what precedes it on the terminal
                line = lines[self.loc.line - 1][:201].replace("\t", " ")
                src = printable(line[:200]) + ("…" if len(line) > 200 else "")
                pad = " " * width(printable(line[:min(max(self.loc.col - 1, 0), 200)]))
                text += f"\n    {src}\n    {pad}^"
        return text


MAX_SHOWN = 50   # errors printed per file; the rest are counted


class ProblemErrors(StepgenError):
    """All the errors of one file, reported at once (the first ``MAX_SHOWN``, then a count)."""

    def __init__(self, errors: list[ProblemError]):
        self.errors = errors
        super().__init__(self.format(caret=False))

    def format(self, caret: bool = True) -> str:
        shown = self.errors[:MAX_SHOWN]
        sources: dict[int, list[str]] = {}     # each file's text split into lines once
        out = []
        for e in shown:
            lines = None
            if caret and e.source:
                lines = sources.setdefault(id(e.source), e.source.splitlines())
            out.append(e.format(caret, lines))
        if len(self.errors) > MAX_SHOWN:
            out.append(f"... and {len(self.errors) - MAX_SHOWN} more errors in this file")
        return "\n".join(out)


def describe(exc: BaseException) -> str:
    """An unexpected exception in one line: its type and message, printable, bounded."""
    if isinstance(exc, RecursionError):
        return "RecursionError: expression too deeply nested"
    msg = " ".join(str(exc).split())
    msg = msg.encode("utf-8", "backslashreplace").decode("utf-8")    # a lone surrogate, printable
    if len(msg) > 300:
        msg = msg[:300] + "…"
    return type(exc).__name__ + (f": {msg}" if msg else "")


def internal_error(where: str, exc: BaseException) -> str:
    """The error line of a problem that failed for a reason stepgen did not foresee."""
    return f"internal error in {where}: {describe(exc)}"
