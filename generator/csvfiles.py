"""CSV tables in and out: the answers and rosters instructors give, the results stepgen writes.

In: a table is read with the care of a problem file (``files.read_limited``: a regular
file, no link, a size limit), decoded as UTF-8, at most ``MAX_ROWS`` rows under a header
that names the columns (case and spaces ignored; columns stepgen does not know are
ignored, so an export with an ``email`` column is fine).  Every error of the file is
collected and raised at once as ``ProblemErrors`` (``file:line:col: message`` with the
line and a caret).  Out: every cell made safe for a spreadsheet: a text starting with
``= + - @`` or a tab (a formula to Excel or LibreOffice, ``=HYPERLINK(...)``) gets a
leading ``'`` (numbers like ``-2`` stay numbers), control characters are escaped.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import Location, ProblemError, ProblemErrors, printable
from .files import read_utf8

MAX_CSV_BYTES = 16 * 1024 * 1024
MAX_ROWS = 100_000
MAX_CELL = 10_000          # characters in one cell (an answer is at most expr.MAX_TEXT)
MAX_ERRORS = 50

_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?(/\d+)?$")   # a number or a fraction: no formula


@dataclass(frozen=True)
class Row:
    line: int                  # 1-based line of the record in the file
    cells: dict[str, str]      # known column -> text


@dataclass(frozen=True)
class Table:
    path: str
    text: str
    rows: tuple[Row, ...]
    errors: tuple[ProblemError, ...] = ()     # of single rows: the caller adds its own and raises them all

    def error(self, row: Row, column: str, message: str) -> ProblemError:
        """An error about one cell, at its line and column in the file."""
        return ProblemError(Location(self.path, row.line, _field_col(self.text, row.line, column, self), column),
                            message, self.text)


def _field_col(text: str, line: int, column: str, table: Table) -> int:
    """The 1-based column where ``column``'s cell starts on ``line`` (1 when it cannot be told)."""
    lines = text.splitlines()
    if not 0 < line <= len(lines):
        return 1
    header = next(csv.reader([lines[0]]), [])
    names = [_name(h) for h in header]
    if column not in names:
        return 1
    want, field, quoted = names.index(column), 0, False
    for i, ch in enumerate(lines[line - 1]):
        if field == want:
            return i + 1
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            field += 1
    return 1


def _name(header: str) -> str:
    return header.strip().lower()


def read_table(path: str | Path, required: tuple[str, ...], optional: tuple[str, ...] = (),
               lenient: tuple[str, ...] = ()) -> Table:
    """The rows of a CSV file with a header naming at least the ``required`` columns; the errors of
    single rows are in ``errors`` (the file as a whole unreadable: ``ProblemErrors``).  A cell of a
    ``lenient`` column (a student's answer) with a NUL or longer than ``MAX_CELL`` is kept, cut to
    ``MAX_CELL + 1`` characters, for the caller to judge that row alone."""
    fname = str(path)
    text = read_utf8(path, MAX_CSV_BYTES, ": a CSV file is text; save it as CSV (UTF-8)")
    nul = text.find("\x00")
    if nul >= 0 and lenient:
        nul = _nul_outside(text, lenient)
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise ProblemErrors([ProblemError(Location(fname, line, nul - (text.rfind("\n", 0, nul) + 1) + 1),
                                          "a NUL byte: this is not a text file", text)])
    errors: list[ProblemError] = []
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[Row] = []
    header: list[str] | None = None
    try:
        for record in reader:
            line = reader.line_num - record_lines(record) + 1
            if header is None:
                header = [_name(h) for h in record]
                errors += _header_errors(fname, text, header, required)
                if errors:
                    break
                continue
            if not any(c.strip() for c in record):
                continue              # a blank line
            if len(rows) >= MAX_ROWS:
                errors.append(ProblemError(Location(fname, line, 1), f"more than {MAX_ROWS:,} rows", text))
                break
            if len(record) != len(header):
                errors.append(ProblemError(Location(fname, line, 1), f"{len(record)} cells, but the header names "
                                           f"{len(header)} columns" + _quote_hint(record, header), text))
                continue
            cells = {h: c for h, c in zip(header, record) if h in required + optional}
            cells.update({h: cells[h][:MAX_CELL + 1] for h in lenient if h in cells})
            long = [h for h, c in cells.items() if len(c) > MAX_CELL and h not in lenient]
            if long:
                errors.append(ProblemError(Location(fname, line, 1, long[0]),
                                           f"a cell longer than {MAX_CELL:,} characters", text))
                continue
            rows.append(Row(line, cells))
            if len(errors) >= MAX_ERRORS:
                break
    except csv.Error as exc:
        errors.append(ProblemError(Location(fname, reader.line_num, 1), f"not valid CSV: {exc}", text))
    if header is None and not errors:
        errors.append(ProblemError(Location(fname, 1, 1), "the file is empty: a header line naming the columns "
                                   f"({', '.join(required)}) comes first", text))
    if errors and not rows:
        raise ProblemErrors(errors)
    return Table(fname, text, tuple(rows), tuple(errors))


def _nul_outside(text: str, columns: tuple[str, ...]) -> int:
    """The index of a NUL of ``text`` when one is outside the cells of ``columns`` (-1 if none): a NUL
    there makes the file unreadable; inside, only its row."""
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error:
        return text.find("\x00")
    header = [_name(h) for h in records[0]] if records else []
    for i, record in enumerate(records):
        named = [c for k, c in enumerate(record) if i == 0 or k >= len(header) or header[k] not in columns]
        if any("\x00" in c for c in named):
            return text.find("\x00")
    return -1


def record_lines(record: list[str]) -> int:
    """Physical lines a record took (a quoted cell may hold newlines)."""
    return 1 + sum(c.count("\n") for c in record)


def _header_errors(fname: str, text: str, header: list[str], required: tuple[str, ...]) -> list[ProblemError]:
    missing = [c for c in required if c not in header]
    dup = sorted({h for h in header if h and header.count(h) > 1})
    out = []
    if missing:
        out.append(ProblemError(Location(fname, 1, 1), f"the header lacks the column(s) {', '.join(missing)} "
                                f"(it has: {', '.join(printable(h)[:40] for h in header) or 'nothing'})", text))
    if dup:
        out.append(ProblemError(Location(fname, 1, 1), f"the column(s) {', '.join(dup)} appear twice", text))
    return out


def cell(value) -> str:
    """``value`` as a cell a spreadsheet shows as text, never runs as a formula."""
    text = printable("" if value is None else str(value)).replace("\n", " ").replace("\r", " ")
    if text[:1] in ("=", "+", "-", "@", "\t") and not _NUMBER.match(text):
        return "'" + text
    return text


def table_text(columns: tuple[str, ...], rows) -> str:
    """A CSV text (``\\n`` line ends) of ``rows`` (sequences in the order of ``columns``), cells made safe."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([cell(v) for v in r])
    return out.getvalue()


def _quote_hint(record: list, header: list) -> str:
    """More cells than columns: most likely a cell with a comma in it written without quotes."""
    if len(record) <= len(header):
        return ""
    if "answer" in header:
        return '; quote the answer: a cell with commas is written in double quotes ("kron(B.T, A)")'
    return "; a cell with commas is written in double quotes"
