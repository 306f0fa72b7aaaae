"""The PDF: latexmk (pdflatex) on the generated ``.tex``, never with shell escape.

TeX runs in a private temporary folder with ``-no-shell-escape`` and kpathsea's
paranoid file access (``openin_any=p``, ``openout_any=p``: no absolute paths,
no ``..``), under a time limit that grows with the document (``time_limit``).
latexmk and the pdflatex it starts run in a process group of their own, and the
whole group is killed when the limit passes or anything interrupts the build,
so no TeX process outlives stepgen.  ``SOURCE_DATE_EPOCH`` is honoured (0 when
unset) and the trailer ID is fixed, so two builds give the same PDF.  A failure
reports TeX's own error line and keeps the ``.tex`` and ``.log``.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from ..errors import StepgenError

TIMEOUT = 180          # seconds, for the largest documents
BASE_TIMEOUT = 30      # seconds, plus one per KiB of source
INSTALL_HINT = ("PDF output needs TeX Live: on Debian/Ubuntu run\n"
                "  sudo apt-get install -y --no-install-recommends texlive-latex-base "
                "texlive-latex-recommended texlive-fonts-recommended latexmk lmodern\n"
                "(the other formats were written; use --format md,tex,json to skip the PDF)")


class LatexError(StepgenError):
    def __init__(self, message: str, log: str = ""):
        super().__init__(message)
        self.log = log


def have_tex() -> bool:
    return shutil.which("latexmk") is not None and shutil.which("pdflatex") is not None


def tex_error_lines(log: str) -> str:
    """TeX's own error: the '! ...' line and the 'l.NN ...' line after it."""
    lines = log.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("! "):
            out = [line]
            for follow in lines[i + 1:i + 12]:
                if follow.startswith("l."):
                    out.append(follow)
                    break
            return " / ".join(out)
    return "see the log"


def time_limit(tex_source: str) -> int:
    """Seconds LaTeX may take: 30 s plus 1 s per KiB of source, at most ``TIMEOUT``."""
    return min(TIMEOUT, BASE_TIMEOUT + len(tex_source.encode("utf-8")) // 1024)


def _run_group(cmd: list[str], cwd: str, env: dict, timeout: float) -> int | None:
    """Run ``cmd`` in a new process group; its return code, or None when ``timeout`` passed.

    On the time limit or any exception (KeyboardInterrupt too) the whole group is
    killed, not only latexmk: its pdflatex would run on at full CPU."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)      # the group's id is latexmk's pid
        except ProcessLookupError:
            pass
        proc.wait()


def compile_pdf(tex_source: str, name: str, resources: tuple[Path, ...] = (),
                timeout: float | None = None) -> bytes:
    """The PDF of ``tex_source`` as bytes; raises ``LatexError`` with the log.

    ``resources`` (a logo from the instructor's templates folder) are copied beside the
    ``.tex``, where the paranoid file access lets TeX read them.  ``timeout`` (seconds)
    replaces ``time_limit``'s."""
    if not have_tex():
        raise LatexError(INSTALL_HINT)
    env = dict(os.environ)
    env.setdefault("SOURCE_DATE_EPOCH", "0")
    env["FORCE_SOURCE_DATE"] = "1"
    env["openin_any"] = "p"
    env["openout_any"] = "p"
    env["shell_escape"] = "f"          # kpathsea: \write18 disabled (f = false), besides -no-shell-escape
    with tempfile.TemporaryDirectory(prefix="stepgen-tex-") as tmp:
        src = Path(tmp) / f"{name}.tex"
        src.write_text(tex_source, encoding="utf-8")
        for r in resources:
            shutil.copyfile(r, Path(tmp) / r.name)
        cmd = ["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape",
               "-quiet", "-pdflatex=pdflatex -no-shell-escape -interaction=nonstopmode -halt-on-error %O %S",
               src.name]
        limit = timeout if timeout is not None else time_limit(tex_source)
        code = _run_group(cmd, tmp, env, limit)
        log_path = Path(tmp) / f"{name}.log"
        log = log_path.read_text(encoding="utf-8", errors="replace") if log_path.exists() else ""
        if code is None:
            raise LatexError(f"{name}: LaTeX ran longer than {limit:g} s", log)
        pdf = Path(tmp) / f"{name}.pdf"
        if code != 0 or not pdf.exists():
            raise LatexError(f"{name}: LaTeX failed: {tex_error_lines(log)}", log)
        return pdf.read_bytes()
