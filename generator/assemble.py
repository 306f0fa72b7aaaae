"""``stepgen combine``: one document assembled from per-problem outputs (for sharded CI builds).

A CI matrix builds a large bank in N shares (``stepgen build --shard K/N``); a
last job gathers their output folders and runs ``stepgen combine`` on them: the
per-problem ``.md`` files are concatenated (headings one level down, after a
title and a list of contents) and the bodies of the per-problem ``.tex`` files
are put into one LaTeX document with a title page and a table of contents.
No problem is solved again, so the result is exactly what the shards wrote.
Only regular files are read: a symbolic link (or a FIFO, a device) among the
outputs is refused, never followed.
"""
from __future__ import annotations

import re
from pathlib import Path

from .errors import StepgenError
from .files import FileRefused, read_limited
from .texsafe import escape_text

_BODY = re.compile(r"\\begin\{document\}(.*)\\end\{document\}", re.S)
_SECTION = re.compile(r"\\section\*\{")


MAX_INPUT = 64 * 1024 * 1024      # one built document; far above what build writes


def _read_regular(f: Path) -> str:
    """The text of ``f`` if it is a regular file (links not followed, never blocking on a FIFO)."""
    try:
        return read_limited(f, MAX_INPUT).decode("utf-8")
    except FileRefused as exc:
        raise StepgenError(f"{f}: {exc}; combine reads regular files only") from None
    except UnicodeDecodeError:
        raise StepgenError(f"{f}: not UTF-8 text") from None


def _sources(folders, ext: str, sheet: bool, name: str) -> list[Path]:
    files: dict[str, Path] = {}
    for folder in folders:
        for f in sorted(Path(folder).glob(f"*.{ext}")):
            stem = f.stem
            if stem in (name, f"{name}-sheet") or stem.endswith("-sheet") != sheet:
                continue
            files.setdefault(f.name, f)
    if not files:
        raise StepgenError(f"no .{ext} files to combine in {', '.join(map(str, folders))}")
    return [files[k] for k in sorted(files)]


def title_of(name: str) -> str:
    """The title a combined document gets from its NAME when --title is not given: problem-set → Problem set."""
    words = name.replace("_", " ").replace("-", " ").split()
    return " ".join(words)[:1].upper() + " ".join(words)[1:] if words else name


def combine_md(folders, name: str, title: str, sheet: bool) -> str:
    parts, contents = [], []
    for f in _sources(folders, "md", sheet, name):
        text = _read_regular(f)
        fence = False
        lines = []
        for line in text.splitlines():
            if line.startswith("```"):
                fence = not fence
            if not fence and line.startswith("#"):
                line = "#" + line
            lines.append(line)
        heading = next((l[3:] for l in lines if l.startswith("## ")), f.stem)
        anchor = next((m.group(1) for m in re.finditer(r'<a id="([^"]+)"></a>', text)), None)
        contents.append(f"{len(contents) + 1}. [{heading}](#{anchor})" if anchor else f"{len(contents) + 1}. {heading}")
        parts.append("\n".join(lines).strip())
    return (f"# {title}\n\n**Contents**\n\n" + "\n".join(contents) + "\n\n" + "\n\n".join(parts) + "\n")


def combine_tex(folders, name: str, title: str, sheet: bool) -> str:
    preamble, bodies = None, []
    for f in _sources(folders, "tex", sheet, name):
        text = _read_regular(f)
        m = _BODY.search(text)
        if not m:
            raise StepgenError(f"{f}: not a stepgen document (no \\begin{{document}})")
        if preamble is None:
            preamble = text[:m.start()]
        bodies.append(_SECTION.sub(r"\\section{", m.group(1), count=1).strip())
    kind = "Exercise sheet" if sheet else "Worked solutions"
    head = (f"\\begin{{document}}\n\\title{{{escape_text(title)}}}\n\\date{{{kind}}}\n\\author{{}}\n\\maketitle\n"
            "\\thispagestyle{empty}\n\\tableofcontents\n\\clearpage\n")
    return preamble + head + "\n\\clearpage\n".join(bodies) + "\n\\end{document}\n"
