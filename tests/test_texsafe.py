"""Instructor TeX: what ``check`` accepts compiles, what it refuses is reported where it was written,
and nothing from a problem file reaches the outputs as code, HTML or invisible characters."""
from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from generator import expr as ex
from generator import texsafe
from generator.assemble import combine_md
from generator.build import build
from generator.cli import main
from generator.errors import StepgenError
from generator.printing import LatexPrinter
from generator.render import pdf
from generator.render.pdf import compile_pdf, have_tex

needs_tex = pytest.mark.skipif(not have_tex(), reason="no TeX")

# Every command, control symbol and environment the whitelist allows, each used as a statement would.
EVERY_COMMAND = [
    r"\alpha\beta\gamma\delta\epsilon\varepsilon\zeta\eta\theta\vartheta\iota\kappa\lambda\mu\nu\xi\pi"
    r"\varpi\rho\varrho\sigma\varsigma\tau\upsilon\phi\varphi\chi\psi\omega",
    r"\Gamma\Delta\Theta\Lambda\Xi\Pi\Sigma\Upsilon\Phi\Psi\Omega",
    r"\mathbf{x}, \boldsymbol{\mu}, \bm{\Sigma}^{-1}, \mathrm{d}x, \mathit{loss}, \mathbb{R}^{D}, \mathcal{L},"
    r" \mathsf{T}, \mathtt{x}, \operatorname{softmax}(\mathbf{z}), \operatorname*{arg\,max}_k z_k",
    r"\text{if } x > 0, \textbf{bold}, \textit{italic}",
    r"\frac{a}{b} + \dfrac{1}{2} + \tfrac{1}{2} + \sqrt{x} + \sqrt[3]{y} + \binom{n}{k}",
    r"\sum_{i=1}^{N} \prod_{j} \int_0^1 \oint \bigcup_i A_i \bigcap_j B_j \bigoplus_k V_k \bigotimes_l W_l",
    r"\lim_{n \to \infty} \limsup_n \liminf_n \max_x \min_x \sup_x \inf_x \arg\max"
    r" \argmax_\theta \argmin_{\mathbf{w}} \Pr(A)",
    r"\exp(x) \log x \ln x \sin x \cos x \tan x \sinh x \cosh x \tanh x \det \mathbf{A} \tr(\mathbf{A})"
    r" \diag(\mathbf{x}) \rank(\mathbf{A}) \dim V \ker \mathbf{A}",
    r"\ell(\theta), \partial f, \nabla f, \infty, \mathbf{x}^\top, \mathbf{A}^\intercal, f', f^\prime,"
    r" \mathbf{A}^\dagger, \emptyset, \varnothing",
    r"a \cdot b \times c \div d \pm e \mp f \circ g \bullet h \odot i \otimes j \oplus k \oslash n \ast l \star m"
    r" \setminus n \wedge o \vee p",
    r"a \le b \leq c \ge d \geq e \ll f \gg g \approx h \equiv i \sim j \simeq k \propto l \prec m"
    r" \preceq n \succ o \succeq p \perp q \parallel r \mid s \ne t \neq u",
    r"x \in A \ni y, z \notin B, A \subset B \subseteq C, C \supset D \supseteq E, A \cup B \cap C",
    r"h\colon \mathbb{R}^D \to \mathbb{R}, x \rightarrow y \leftarrow z \leftrightarrow w \Rightarrow p"
    r" \Leftarrow q \Leftrightarrow r \longrightarrow s \iff t \implies u, x \mapsto x^2",
    r"\forall x \exists y \neg p \land q \lor r",
    r"\left( \frac{a}{b} \right) \left[ x \right] \left\{ y \right\} \left\langle u, v \right\rangle"
    r" \left\lVert \mathbf{x} \right\rVert \left\lvert x \right\rvert \left\Vert y \right\Vert"
    r" \left\vert z \right\vert \left\lfloor a \right\rfloor \left\lceil b \right\rceil"
    r" \left\lbrace c \middle| d \right\rbrace \left. e \right|_{x=0}",
    r"\big( \Big( \bigg( \Bigg( x \Bigg) \bigg) \Big) \big) \bigl( y \bigr) \Bigl[ z \Bigr]"
    r" \biggl\{ w \biggr\} \Biggl| v \Biggr|",
    r"\hat{y} \bar{x} \tilde{z} \vec{v} \dot{x} \ddot{x} \check{x} \overline{AB} \underline{x}"
    r" \widehat{xy} \widetilde{xy} \underbrace{a+b}_{n} \overbrace{c+d}^{m} \boxed{x = 1}",
    r"x_1, \ldots, x_n, x_1 + \cdots + x_n, a_1 \dots a_n, \vdots, \ddots",
    r"a \quad b \qquad c \, d \; e \: f \! g \ h, {\displaystyle \sum_i x_i}, {\textstyle \sum_i x_i},"
    r" {\scriptstyle x}, \sum\limits_i x_i, \int\nolimits_0^1 f",
    r"\{ x \}, \| \mathbf{x} \|, 5\%, \#S, A \& B, \$3, x\_1",
    r"\overset{\text{def}}{=} \underset{x}{\operatorname{arg\,min}}",
]
EVERY_DISPLAY = [
    r"\begin{pmatrix} a & b \\ c & d \end{pmatrix} \begin{bmatrix} 1 \end{bmatrix}"
    r" \begin{Bmatrix} x \end{Bmatrix} \begin{vmatrix} a & b \\ c & d \end{vmatrix}"
    r" \begin{Vmatrix} v \end{Vmatrix} \begin{matrix} 1 & 0 \end{matrix}",
    r"f(x) = \begin{cases} 1 & x > 0 \\ 0 & \text{otherwise} \end{cases} \qquad"
    r" \begin{aligned} a &= b \\ &= c \end{aligned} \qquad \begin{array}{c|c} 1 & 2 \\ 3 & 4 \end{array}",
]


def _used(formulas):
    words, symbols, envs = set(), set(), set()
    for f in formulas:
        toks = texsafe.tokens(f)
        for i, t in enumerate(toks):
            if t.kind == "word":
                words.add(t.value)
            elif t.kind == "symbol":
                symbols.add(t.value)
            if t.kind == "word" and t.value == "begin":
                envs.add(re.match(r"\{(\w+)\}", f[toks[i + 1].at:]).group(1))
    return words, symbols, envs


def test_the_every_command_document_covers_the_whole_list():
    words, symbols, envs = _used(EVERY_COMMAND + EVERY_DISPLAY)
    assert words == texsafe.MATH_COMMANDS
    assert symbols == texsafe._CONTROL_SYMBOLS
    assert envs == set(texsafe.ENVIRONMENTS)
    for f in EVERY_COMMAND + EVERY_DISPLAY:
        assert texsafe.check_math(f) is None, (f, texsafe.check_math(f))


def _yaml_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


@needs_tex
def test_one_document_with_every_allowed_command_compiles(tmp_path):
    statement = "\n\n".join(f"${f}$" for f in EVERY_COMMAND) + "\n\n" + "\n\n".join(f"$${f}$$" for f in EVERY_DISPLAY)
    p = tmp_path / "every.yaml"
    p.write_text("id: every\ntitle: Every command\nstatement: " + _yaml_str(statement) + "\n"
                 "symbols: {D: dim, x: {shape: [D], latex: " + _yaml_str(r"\hat{\boldsymbol{\theta}}_{\mathrm{MAP}}")
                 + "}, A: {shape: [D, D], latex: " + _yaml_str(r"{\bm{\Sigma}^{-1}}") + "}}\n"
                 "define: {f: x.T @ A @ x}\nfind: df/dx\n", encoding="utf-8")
    report = build([p], tmp_path / "out", ("tex", "pdf"))
    assert not report.failed, report.failed
    tex = (tmp_path / "out" / "every.tex").read_text()
    assert r"$h\colon \mathbb{R}^D \to \mathbb{R}" in tex and r"\texttt{" not in tex   # kept as math
    text = subprocess.run(["pdftotext", str(tmp_path / "out" / "every.pdf"), "-"], capture_output=True,
                          text=True).stdout
    for word in ("colon", "mathbf", "operatorname", "begin", "left", "argmax", "ell"):
        assert word not in text                            # no command printed as raw text


@needs_tex
def test_common_symbols_in_plain_text_reach_the_pdf(tmp_path):
    """"§4.3", "±", "x²", Greek letters in a title or source print as themselves, not as '?'."""
    p = tmp_path / "u.yaml"
    p.write_text("id: u\ntitle: Bishop §4.3 ± x² ≈ α−β, Σ\nsource: PRML §3.1 (½ of it, 90°)\n"
                 "symbols: {D: dim, x: [D]}\ndefine: {f: x.T @ x}\nfind: df/dx\n", encoding="utf-8")
    report = build([p], tmp_path / "out", ("tex", "pdf"))
    assert not report.failed, report.failed
    text = subprocess.run(["pdftotext", str(tmp_path / "out" / "u.pdf"), "-"], capture_output=True,
                          text=True).stdout
    assert "§4.3" in text and "§3.1" in text and "±" in text and "α" in text and "Σ" in text
    assert "?" not in text.split("Checked")[0]


def _random_formula(rng: random.Random) -> str:
    pool = (["x", "2", " ", "{", "}", "{", "}", "^", "_", "'", "&", r"\\", "(", ")", "[", "]", "|", "+", "<", "*",
             r"\frac{", "}{", r"\sqrt[", r"\left(", r"\right)", r"\text{a b}", r"\begin{bmatrix}", r"\end{bmatrix}",
             r"\begin{cases}", r"\end{cases}", r"\begin{array}{c|c}", r"\end{array}", r"\{", r"\,"]
            + ["\\" + c for c in sorted(texsafe.MATH_COMMANDS) if c not in ("begin", "end")])
    return "".join(rng.choice(pool) for _ in range(rng.randint(1, 24)))


@needs_tex
def test_every_formula_check_accepts_compiles(tmp_path):
    rng = random.Random(10)
    accepted = []
    while len(accepted) < 400:
        f = _random_formula(rng)
        if texsafe.check_math(f) is None:
            accepted.append(f)
    p = tmp_path / "fuzz.yaml"
    statement = "\n\n".join(f"${f}$" for f in accepted)
    p.write_text("id: fuzz\nstatement: " + _yaml_str(statement) + "\nsymbols: {x: scalar}\n"
                 "define: {f: x * x}\nfind: df/dx\n", encoding="utf-8")
    report = build([p], tmp_path / "out", ("tex", "pdf"))
    assert not report.failed, report.failed


REFUSED = [r"\input{/etc/hostname}", r"\write18{touch PWNED}", r"\def\x{1}", r"\csname input\endcsname",
           r"\newcommand\x{1}", r"\foo{x}", r"\mathbbm{1}", r"\iint f", r"\hbox{x}",
           r"\label{eq}", r"\tag{1}", r"\href{u}{v}", r"\DeclareMathOperator{\x}{x}", r"\the\year",
           r"\operatornamewithlimits{x}", r"\ensuremath{x}", r"\directlua{x}", r"\^x", r"\@x"]


def test_every_refused_command_is_reported_by_check_and_build_at_its_place(tmp_path):
    probs = tmp_path / "problems"
    probs.mkdir()
    expected = {}
    for i, cmd in enumerate(REFUSED):
        f = probs / f"p{i}.yaml"
        f.write_text(f"id: p{i}\nstatement: |\n  A line first.\n  Then $x + {cmd}$.\nsymbols: {{x: scalar}}\n"
                     "define: {f: x * x}\nfind: df/dx\n", encoding="utf-8")
        expected[f] = f"{f}:4:{len('  Then $x + ') + 1}: statement: "
    res = CliRunner().invoke(main, ["check", str(probs)])
    assert res.exit_code == 1
    for f, where in expected.items():
        assert where in res.output, (where, res.output)
    out = tmp_path / "out"
    report = build(sorted(expected), out, ("md", "tex"))
    assert len(report.failed) == len(REFUSED)
    assert not list(out.glob("*.tex"))


@pytest.mark.parametrize("math", [r"\\%", r"\\#", r"\\$", r"\\{", r"x \\ % y", r"\\% \input{x}", "x^^5c", "\\",
                                  r"a & b", r"\left( x", r"x \right)", r"{x", r"x}", r"x^", r"x_", r"x^2^3",
                                  r"x_1_2", r"f^2'", r"\frac{a}", r"\sqrt[3", r"\text{$x$}", r"\text{\alpha}",
                                  r"\begin{foo}x\end{foo}", r"\begin{pmatrix}x\end{bmatrix}", r"\end{pmatrix}",
                                  r"\limits x", r"\middle| x", r"\left x \right)", "x ~ y", "x\x00y"])
def test_malformed_or_bypassing_math_is_refused(math):
    assert texsafe.check_math(math) is not None


@pytest.mark.parametrize("math, why", [
    (r"\begin{array}{*{9999}{*{9999}{c}}} x \end{array}", "columns are l, c, r"),
    (r"\begin{array}{" + "c" * 11 + r"} x \end{array}", "1 to 10 columns"),
    (r"\begin{bmatrix}" + "x&" * 10 + r"x\end{bmatrix}", "more than 10 columns"),
    (r"\begin{bmatrix}" + "x\\\\" * 60 + r"\end{bmatrix}", "more than 50 rows"),
    ("{" * 13 + "x" + "}" * 13, "nested more than 12 deep"),
    (r"\frac{" * 13 + "x" + "}{y}" * 13, "nested more than 12 deep"),
    ("x" * 2001, "longer than 2000"),
])
def test_math_is_bounded(math, why):
    start = time.monotonic()
    assert why in texsafe.check_math(math)
    assert time.monotonic() - start < 1


@pytest.mark.parametrize("latex, ok", [("x^", False), ("x_", False), ("x^2", False), ("x'", True), ("{x^2}", True),
                                       (r"\lambda", True), (r"\mathbf{x}_{0}", True), ("", False), ("x\\", False),
                                       ("_1", False), ("'x", False), ("{}_1 x", True)])
def test_symbol_latex_must_take_what_the_printer_appends(latex, ok):
    assert (texsafe.check_symbol_latex(latex) is None) == ok


def test_printed_formulas_with_any_accepted_symbol_latex_are_well_formed():
    X, s = ex.sym("X", ("D", "D")), ex.sym("s", ())
    rng = random.Random(3)
    pool = ["x", "'", "^", "_", "2", "{", "}", r"\hat", r"\mathbf", r"\alpha", r"\prime", r"\top", " "]
    tried = 0
    for _ in range(3000):
        latex = "".join(rng.choice(pool) for _ in range(rng.randint(1, 6)))
        if texsafe.check_symbol_latex(latex) is not None:
            continue
        tried += 1
        P = LatexPrinter({"X": latex, "s": latex})
        for e in (ex.transpose(X), ex.inv(X), ex.transpose(ex.inv(X)), ex.power(s, ex.num(3)),
                  ex.matmul(X, ex.transpose(X)), ex.det(X)):
            out = P(e)
            assert "^^" not in out and texsafe.check_math(out) is None, (latex, out)
    assert tried > 50


# --- control, bidi and HTML ------------------------------------------------------------------

@pytest.mark.parametrize("ch", ["\u202e", "\u2066", "\u200b", "\ufeff", "\u061c"])
def test_invisible_characters_are_refused_at_their_place(tmp_path, ch):
    p = tmp_path / "p.yaml"
    p.write_text("id: p\ntitle: T\nstatement: |\n  Fine.\n  Evil" + ch + "here\nsymbols: {x: scalar}\n"
                 "define: {f: x * x}\nfind: df/dx\n", encoding="utf-8")
    res = CliRunner().invoke(main, ["check", str(p)])
    assert res.exit_code == 1 and f"{p}:5:7: statement: " in res.output and f"U+{ord(ch):04X}" in res.output


@pytest.mark.parametrize("ch", ["\x1b", "\x07", "\x85", "\x7f", "\x9b", "\u202e", "\ud800", "\u2028"])
def test_control_characters_are_refused_and_never_reach_an_output(tmp_path, ch):
    p = tmp_path / "p.yaml"
    p.write_text(f'id: p\ntitle: T\nsymbols: {{x: scalar}}\ndefine: {{f: x * x}}\nfind: df/dx\nparts:\n'
                 f'  - title: "a\\u{ord(ch):04x}b"\n', encoding="utf-8")
    res = CliRunner().invoke(main, ["check", str(p)])
    named = f"U+{ord(ch):04X}" in res.output or (0xD800 <= ord(ch) <= 0xDFFF and "surrogate" in res.output)
    assert res.exit_code == 1 and f"{p}:7:" in res.output and named
    assert "Traceback" not in res.output
    # and, should they come from elsewhere, never reach an output
    assert ch not in texsafe.markdown_safe("a" + ch + "b $x" + ch + "$") and "\ufffd" in texsafe.markdown_safe(ch)
    assert ch not in texsafe.markdown_to_latex("a" + ch + "b")


def test_html_never_reaches_the_markdown(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("id: p\ntitle: '<i>T</i>'\nstatement: 'Look: $<img src=x onerror=alert(1)>$ and <b>bold</b> &amp;'\n"
                 "symbols: {x: scalar}\ndefine: {f: x * x}\nfind: df/dx\n"
                 "parts:\n  - title: '<script>alert(1)</script>'\n    statement: '$$a<b>c$$'\n", encoding="utf-8")
    out = tmp_path / "out"
    report = build([p], out, ("md", "tex"))
    assert not report.failed, report.failed
    md = (out / "p.md").read_text()
    tags = re.findall(r"<[^>]*>", md)
    assert tags and all(t.startswith('<a id="') or t == "</a>" for t in tags), tags
    assert r"$\lt img src=x onerror=alert(1)\gt $" in md and r"$$a\lt b\gt c$$" in md
    assert "&lt;script&gt;" in md and "&amp;amp;" in md
    tex = (out / "p.tex").read_text()
    assert "$<img src=x onerror=alert(1)>$" in tex        # < and > are fine in TeX's math


def test_combine_refuses_symbolic_links(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.md").write_text("## A\n\ntext\n")
    (out / "b.md").symlink_to(secret)
    with pytest.raises(StepgenError, match="symbolic link"):
        combine_md([out], "all", "All", False)
    (out / "b.md").unlink()
    os.mkfifo(out / "c.md")
    with pytest.raises(StepgenError, match="regular files only"):
        combine_md([out], "all", "All", False)
    (out / "c.md").unlink()
    assert "text" in combine_md([out], "all", "All", False)


# --- the TeX process ----------------------------------------------------------------------------

def test_small_documents_get_a_small_time_limit():
    assert pdf.time_limit("x" * 1000) == 30
    assert pdf.time_limit("x" * 20 * 1024) == 50
    assert pdf.time_limit("x" * 10_000_000) == pdf.TIMEOUT == 180


def _tex_processes(marker: str) -> list[str]:
    """Live processes (not zombies) whose command line names ``marker``."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (d / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmd and state != "Z":
            found.append(cmd)
    return found


def _all_gone(marker: str, seconds: float = 3.0) -> bool:
    """No live process names ``marker`` within ``seconds`` (a SIGKILLed process takes a moment to exit)."""
    end = time.monotonic() + seconds
    while _tex_processes(marker):
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True


LOOP = "\\documentclass{article}\\begin{document}\\def\\x{\\x}\\x\\end{document}\n"


@needs_tex
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_a_looping_document_is_stopped_with_all_its_processes(tmp_path):
    marker = f"loop-{os.getpid()}"
    seen, done = [], threading.Event()

    def watch():
        while not done.is_set():
            seen.extend(_tex_processes(marker))
            time.sleep(0.05)
    watcher = threading.Thread(target=watch)
    watcher.start()
    start = time.monotonic()
    try:
        with pytest.raises(pdf.LatexError, match="longer than 5 s"):
            compile_pdf(LOOP, marker, timeout=5)
    finally:
        done.set()
        watcher.join()
    elapsed = time.monotonic() - start
    assert any("pdflatex" in c for c in seen)          # TeX did run, and looped
    assert elapsed < 10                                # killed on time (the machine may be busy)
    assert _all_gone(marker)


@needs_tex
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_an_interrupted_build_leaves_no_tex_process(monkeypatch):
    marker = f"intr-{os.getpid()}"
    real_wait = subprocess.Popen.wait

    def interrupted(self, timeout=None):
        if timeout is None:
            return real_wait(self)
        for _ in range(300):                           # until pdflatex runs, then Ctrl-C
            if any("pdflatex" in c for c in _tex_processes(marker)):
                raise KeyboardInterrupt
            time.sleep(0.05)
        raise AssertionError("pdflatex never started")
    monkeypatch.setattr(subprocess.Popen, "wait", interrupted)
    with pytest.raises(KeyboardInterrupt):
        compile_pdf(LOOP, marker, timeout=30)
    assert _all_gone(marker)


@needs_tex
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_a_terminated_build_leaves_no_tex_process(tmp_path):
    """SIGTERM (a cancelled CI job) unwinds the build: the LaTeX group is killed with it."""
    marker = f"term-{os.getpid()}"
    script = ("import sys; from generator.cli import unwind_on_sigterm; unwind_on_sigterm(); "
              "from generator.render.pdf import compile_pdf; "
              f"compile_pdf({LOOP!r}, {marker!r}, timeout=60)")
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).parent.parent)
    try:
        for _ in range(400):
            if any("pdflatex" in c for c in _tex_processes(marker)):
                break
            time.sleep(0.05)
        else:
            raise AssertionError("pdflatex never started")
        proc.terminate()
        assert proc.wait(timeout=20) == 128 + 15
        assert _all_gone(marker)
    finally:
        proc.kill()
