"""From a ``Solution`` to what the templates show: plain data, every formula as LaTeX.

The Markdown and LaTeX templates read the same view; only instructor text
differs between them (escaped for LaTeX, kept as Markdown for ``.md``),
which is why each text field comes in a ``md`` and a ``tex`` version. The HTML
templates read it too: a formula printed from a tree has its MathML twin beside
it (``*_mml``, from ``MathMLPrinter``, computed only when a page is rendered).
Nothing here decides mathematics: it only lays out what the engine derived.
"""
from __future__ import annotations

import re
from dataclasses import replace

from .. import expr as ex
from .. import texsafe
from ..calculus.rules import TITLES, jacobian_dims, transposed_in
from ..expr import Expr
from ..printing import INDENT, InlinePrinter, LatexPrinter, aligned, dims_latex, fill, latex_width, symbol_latex
from ..printing import kink_places
from ..printing import dim_latex
from ..printing import MathMLPrinter, mml_of
from ..trace import PartSolution, Result, Solution, Step


DISPLAY = 38.0        # ems of a display line (16 cm of 11pt text, less a margin)
WITH = r"\text{with }"  # the templates put their word (labels.yaml: with) in its place
LIST_INDENT = 2.5     # ems each level of a list indents
GRAPH_EM = 0.39       # cm in an em of 11pt text
GRAPH_WIDTH = 15.5    # cm the dependency graph may take; a wider one is scaled down
TABLE_WIDTH = 16.0    # ems of a formula in the summary table; a longer one is referred to above


def names_of(part) -> dict[str, str]:
    out = {}
    for s in part.symbols:
        out[s.name] = s.latex or symbol_latex(s.name, s.shape != ())
    for d in part.define:
        out.setdefault(d.name, symbol_latex(d.name, d.expr.shape != ()))
    return out


def text(s: str) -> dict:
    return {"md": texsafe.markdown_safe(s), "tex": texsafe.markdown_to_latex(s), "plain": s}


def fmt_error(err: float) -> str:
    """2e-10 as LaTeX: 2 \\times 10^{-10}."""
    if err == 0:
        return "0"
    m, e = f"{err:.0e}".split("e")
    return rf"{m} \times 10^{{{int(e)}}}"


def space_latex(shape, names=None) -> str:
    if shape == ():
        return r"\mathbb{R}"
    r, c = shape
    if c == 1:
        return r"\mathbb{R}^{" + dims_latex(str(r)) + "}"
    return r"\mathbb{R}^{" + dims_latex(f"{r}×{c}") + "}"


def jac_space(dims: str) -> str:
    return r"\mathbb{R}^{" + dims_latex(dims) + "}"


class _NoMathML:
    """Stands in for the MathML printer when no HTML page is rendered: no twins computed."""

    def mml(self, e) -> str:
        return ""

    def equation(self, *args) -> str:
        return ""

    applied = equation


def _kron_terms(e: Expr) -> bool:
    """Every term of ``e`` a Kronecker product, up to a scalar factor or divisor."""
    for t in e.args if e.op == "add" else (e,):
        while t.op in ("mul", "div") and sum(a.shape != () for a in t.args) == 1:
            t = next(a for a in t.args if a.shape != ())
        if t.op != "kron":
            return False
    return True


class PartView:
    def __init__(self, ps: PartSolution, problem, mathml: bool = True):
        self.ps = ps
        self.path = problem.path
        self.part = ps.part
        self.label = f"{problem.id}:{ps.part.id}"       # \label prefix, unique in a combined document
        self.names = names_of(self.part)
        for r in ps.results:        # a link the chain introduces (the vector g = [g₁, g₂] of §4.5.3)
            for q in r.partials:
                self.names.setdefault(q.wrt, symbol_latex(q.wrt, q.wrt_shape != ()))
        self.P = LatexPrinter(self.names)
        self.inline = InlinePrinter(self.names)
        # the MathML twins of the formulas printed from trees (for the HTML page only)
        self.M = MathMLPrinter(self.names) if mathml else _NoMathML()

    def name(self, n: str) -> str:
        return self.names.get(n, n)

    def frac(self, f: str, x: str, partial: bool, order: int = 1, vec: bool = False) -> str:
        d = r"\partial " if partial else "d"
        if vec:         # by vec X, as Magnus & Neudecker write it: ∂f/∂(vec X)ᵀ, ∂²f/∂(vec X)∂(vec X)ᵀ
            v = rf"(\operatorname{{vec}} {self.name(x)})"
            return (rf"\frac{{\partial^{{2}} {self.name(f)}}}{{\partial {v} \, \partial {v}^\top}}" if order == 2
                    else rf"\frac{{\partial {self.name(f)}}}{{\partial {v}^\top}}")
        if order == 2:
            return rf"\frac{{d^{{2}} {self.name(f)}}}{{d {self.name(x)}^{{2}}}}"
        return rf"\frac{{{d}{self.name(f)}}}{{{d}{self.name(x)}}}"

    def slash(self, f: str, x: str, partial: bool, order: int = 1, vec: bool = False) -> str:
        """Inline form for headings: ∂f / ∂x."""
        if vec:
            v = rf"(\operatorname{{vec}} {self.name(x)})"
            return (rf"\partial^{{2}} {self.name(f)} / \partial {v} \, \partial {v}^\top" if order == 2
                    else rf"\partial {self.name(f)} / \partial {v}^\top")
        if order == 2:
            return rf"d^{{2}} {self.name(f)} / d {self.name(x)}^{{2}}"
        d = r"\partial " if partial else "d"
        return rf"{d}{self.name(f)} / {d}{self.name(x)}"

    def juxtapose(self, exprs, width: float = DISPLAY) -> list[str]:
        """Factors side by side, each in parentheses where a sum or a sign needs them, in pieces a
        line may break between (a factor too long for a line broken inside its parentheses)."""
        out: list[str] = []
        for e in exprs:
            pieces = self.P.segments(e, width - INDENT)
            if e.op == "add" or (e.op == "mul" and e.args[0].op == "num" and e.args[0].value < 0 and out):
                pieces = ([r"\left(" + pieces[0] + r"\right)"] if len(pieces) == 1
                          else [r"\bigl(" + pieces[0]] + pieces[1:-1] + [pieces[-1] + r"\bigr)"])
            if out:   # a number after a number needs its dot: 1 · 2x, never 1 2x
                pieces[0] = (r"\cdot " if pieces[0][:1].isdigit() else r"\, ") + pieces[0]
            out += pieces
        return out

    def chain_steps(self, r: Result) -> list[dict]:
        """The steps of a product through a tensor or a matrix; a contraction's closing "So ∂L/∂W = …"
        left out where the product's equation right after it says the same (it is said once)."""
        views = [self.step_view(s, 1) for s in r.chain_steps]
        for s, v in zip(r.chain_steps, views):
            if s.rule == "tensor_contraction" and s.result == r.product:
                v["equation"] = v["equation_mml"] = ""
        return views

    def answer_same(self, r: Result, shown: Expr) -> bool:
        """The instructor's answer reads as the boxed result: the same text, or the same formula once
        printed (2/m * rᵀX and 2 * rᵀX / m are both (2/m) rᵀX): not printed a second time."""
        if r.answer is None:
            return False
        return r.answer_same or _spaceless(self.P(r.answer)) == _spaceless(self.P(shown))

    def kink_places(self, r: Result) -> list[str]:
        """Where the result's step functions jump, in this problem's symbols (the boxed form; the
        partials' where the result has none): "at wᵀx + b = 0", "where an entry of W₁x + b₁ is 0"."""
        places = kink_places([r.display if r.display is not None else r.result]) or \
            kink_places([p.result for p in r.partials])
        out = []
        for a, b in places:
            if a.shape == () and b.shape == ():
                out.append(f"at ${self.P(a)} = {self.P(b)}$")
            elif b.op in ("num", "ones") or b.shape == ():
                out.append(f"where an entry of ${self.P(a)}$ is ${'1' if b.op == 'ones' else self.P(b)}$")
            else:
                out.append(f"where ${self.P(a)}$ and ${self.P(b)}$ agree in an entry")
        return out

    def note(self, step: Step) -> str:
        s = step.note
        for i, a in enumerate(step.note_args):
            # a long formula in a sentence: brackets TeX may break the line inside
            latex = self.P(a)
            s = s.replace(f"@{i}", self.inline(a) if latex_width(latex) > DISPLAY / 3 else latex)
        return s

    def note_mml(self, step: Step) -> dict:
        """A rule's note for HTML: the text with ``@i`` kept, and the MathML of each formula ``@i``."""
        return {"text": step.note, "args": tuple(self.M.mml(a) for a in step.note_args),
                "latex": tuple(self.P(a) for a in step.note_args)}

    def mathml(self, fn, *args) -> str:
        """The MathML of the formula ``fn`` lays out, printed by the MathML printer (the same breaks)."""
        if not isinstance(self.M, MathMLPrinter):
            return ""
        P, self.P = self.P, self.M
        try:
            return mml_of(fn(*args))
        finally:
            self.P = P

    def step_lhs(self, step: Step) -> tuple[str, bool]:
        """The left side of a step's equation, and whether it is applied to the expression:
        dL, ∂L/∂x for a step labelled with its partial's name; d(…), ∂/∂x (…) otherwise."""
        if step.label:
            what = self.name(step.label)
            return (rf"\mathrm{{d}}{what}" if step.direction
                    else rf"\frac{{\partial {what}}}{{\partial {self.name(step.wrt)}}}"), False
        if step.rule in ("vec_jacobian", "vec_hessian"):       # ∂vec(G)/∂(vec X)ᵀ
            return rf"\frac{{\partial}}{{\partial (\operatorname{{vec}} {self.name(step.wrt)})^\top}}", True
        return (r"\mathrm{d}" if step.direction else rf"\frac{{\partial}}{{\partial {self.name(step.wrt)}}}"), True

    def step_view(self, step: Step, depth: int = 0) -> dict:
        of = self.P(step.of)
        title = TITLES.get(step.rule, step.rule.replace("_", " "))
        head, applied = self.step_lhs(step)
        equation = (rf"{head}\left({of}\right)" if applied else head) + f" = {self.P(step.result)}"
        width = DISPLAY - LIST_INDENT * max(depth, 1)
        # a step too long for a line of the list gets a display of its own, broken on the tree
        display = latex_width(equation) > width
        # the formula on a line of its own when it does not fit beside the title (TeX would rather
        # run the line off the page than leave the title alone on a stretched line)
        note = self.note(step)
        newline = not display and latex_width(equation) + 0.45 * len(title + step.cites + note) + 3 > width
        return {
            "rule": step.rule,
            "title": title,
            "cites": step.cites,
            "note": note,
            "note_tex": texsafe.markdown_to_latex(note),
            "note_mml": self.note_mml(step),
            "of": of,
            "wrt": self.name(step.wrt),
            "equation": ((self.P.applied(head, step.of, step.result, width) if applied
                          else self.P.equation(head, step.result, width)) if display else equation),
            "display": display,
            "equation_mml": ((self.M.applied(head, step.of, step.result, width if display else 1e9)) if applied
                             else self.M.equation(head, step.result, width if display else 1e9)),
            "newline": newline,
            "dims": dims_latex(step.dims),
            "differential": bool(step.direction),
            "substeps": ([self.step_view(s, depth + 1) for s in _interesting(step.substeps)] if depth < MAX_DEPTH
                         else [self.step_view(s, MAX_DEPTH + 1) for s in _descendants(step)]),
            "depth": depth,
        }

    def rewrite_view(self, step: Step) -> dict:
        """A named rewrite of the result: the expression after it, the rule and its identity."""
        return {"rule": step.rule, "title": TITLES.get(step.rule, step.rule.replace("_", " ")),
                "cites": step.cites, "note": self.note(step), "note_tex": texsafe.markdown_to_latex(self.note(step)),
                "note_mml": self.note_mml(step),
                "after": self.P.equation("", step.result, DISPLAY - 2),     # broken on the tree when long
                "after_mml": self.M.equation("", step.result, DISPLAY - 2)}

    def given(self) -> dict:
        defs = [f"{self.name(d.name)} = {self.P(d.expr)}" for d in self.part.define]
        if latex_width(r", \qquad ".join(defs)) <= DISPLAY:
            display = r", \qquad ".join(defs)
        else:                       # one definition a row, each broken where too long
            rows: list[str] = []
            for i, d in enumerate(self.part.define):
                rows += self.P.rows(d.expr, DISPLAY, f"{self.name(d.name)} = ",
                                    "," if i < len(self.part.define) - 1 else "")
            display = aligned(rows)
        groups: dict[str, list[str]] = {}
        used = set().union(*(ex.free_symbols(d.expr) for d in self.part.define), (t.wrt for t in self.part.find))
        for s in self.part.symbols:
            if s.kind in ("scalar", "array") and (s.name in used or not self.part.define):
                groups.setdefault(space_latex(s.shape), []).append(self.name(s.name))
        where = ", \\quad ".join(", ".join(v) + r" \in " + k for k, v in groups.items())
        assumptions = []
        for s in self.part.symbols:
            for a in s.assume:
                assumptions.append(f"${self.name(s.name)}$ is {a.replace('_', ' ')}")
            assumptions += self.symmetric_wrt_note(s)
        assumptions += self.shadow_notes()
        assumptions += self.vec_order_notes()
        display_mml = [self.M.equation(self.name(d.name), d.expr, DISPLAY, "," if i < len(self.part.define) - 1 else "")
                       for i, d in enumerate(self.part.define)]
        return {"defs": defs, "display": display, "where": where, "assumptions": assumptions,
                "display_mml": display_mml}

    def symmetric_wrt_note(self, s) -> list[str]:
        """For a symmetric matrix the part differentiates by, once: what the derivative means. The
        engine (and its check, entry by entry) treats the entries as independent; the symmetry
        only simplifies the result (Σ⁻ᵀ = Σ⁻¹)."""
        if not ({"symmetric", "positive_definite"} & set(s.assume)) or s.name not in {t.wrt for t in self.part.find}:
            return []
        x = self.name(s.name)
        return [f"a derivative by ${x}$ treats its entries as independent (Matrix Cookbook (32)) and uses "
                f"the symmetry of ${x}$ only to simplify; the derivative within symmetric matrices is "
                rf"$\mathbf{{G}} + \mathbf{{G}}^\top - \mathbf{{G}} \odot \mathbf{{I}}$, with $\mathbf{{G}}$ the one derived here "
                "(Matrix Cookbook (138))"]

    def vec_order_notes(self) -> list[str]:
        """For a Hessian by a matrix written with Kronecker products, once per matrix: the order of vec it
        belongs to (the columns stacked); ordered by the rows (blocks by the rows wₖ, as Bishop's), the
        factors swap: K (A ⊗ B) Kᵀ = B ⊗ A with vec(Xᵀ) = K vec(X) (Magnus & Neudecker (1999), ch. 3)."""
        out, seen = [], set()
        for r in self.ps.results:
            if r.order != 2 or r.wrt in seen or not any(s.rule == "vec_hessian" for s in r.extra_steps) \
                    or not _kron_terms(r.result) or ex.has_op(r.result, "commutation"):
                continue
            seen.add(r.wrt)
            x = self.name(r.wrt)
            taken = {s.name for s in self.part.symbols} | {d.name for d in self.part.define}
            free = [rf"\mathbf{{{c}}}" for c in "ABPQUVCDGF" if c not in taken]
            a, b = (free + [r"\mathbf{P}_1", r"\mathbf{P}_2"])[:2]
            out.append(rf"the Kronecker form of the Hessian by ${x}$ belongs to $\operatorname{{vec}} {x}$, the columns "
                       rf"of ${x}$ stacked; ordered by the rows of ${x}$ ($\operatorname{{vec}} {x}^\top$, a block "
                       rf"for each pair of rows) each ${a} \otimes {b}$ reads ${b} \otimes {a}$ "
                       "(Magnus & Neudecker (1999), ch. 3)")
        return out

    def shadow_notes(self) -> list[str]:
        """One note per declared name that is also a built-in one: here it means what was declared."""
        out = []
        declared = [(s.name, "declared symbol") for s in self.part.symbols] + \
                   [(d.name, "name defined above") for d in self.part.define]
        for n, what in declared:
            if n in PRINTS_LIKE_BUILTIN and n not in ex.builtin_names() and _BOLD.match(self.name(n)) \
                    and (n != "K" or self.may_print_commutation()):
                out.append(self.prints_like_note(n, what))
                continue
            if n not in ex.builtin_names():
                continue
            if n == "T":
                out.append(f"here ${self.name(n)}$ is the {what}, and the superscript $\\top$ still means the transpose")
                continue
            builtin = {"e": "Euler's number", "pi": r"the constant $\pi$"}.get(n, f"the built-in function {n}")
            out.append(f"here ${self.name(n)}$ is the {what}, not {builtin}")
        return out

    def may_print_commutation(self) -> bool:
        """Whether the part's working may show a commutation matrix K: through vec or kron, or in a
        Hessian by a matrix.  Elsewhere (attention's keys K) a bold K is only what was declared."""
        by_matrix = any(t.order == 2 and len(getattr(self.part.symbol(t.wrt), "shape", ())) == 2
                        and 1 not in self.part.symbol(t.wrt).shape for t in self.part.find)
        return by_matrix or any(ex.has_op(d.expr, op) for d in self.part.define for op in ("vec", "kron"))

    def prints_like_note(self, n: str, what: str) -> str:
        """A declared name printed as a built-in matrix is (bold I, K): say it is not that matrix,
        and how the built-in one is written (with its size)."""
        matrix, example = PRINTS_LIKE_BUILTIN[n]
        shape = next((s.shape for s in self.part.symbols if s.name == n), ())
        if len(shape) == 2 and shape[0] == shape[1] and n == "I":
            example = dim_latex(shape[0])
        return (f"here ${self.name(n)}$ is the {what}, not the {matrix} (the {matrix} is written "
                f"${self.name(n)}$ with its size, e.g. ${self.name(n)}_{{{example}}}$)")

    def chain_equation(self, r: Result, chains: list[dict], space: str, dims: str) -> str:
        """∂f/∂x = the named partials, each with its dims under it, and the product of the dims."""
        paths = [r"\;".join(rf"\underbrace{{{f['frac']}}}_{{{f['dims']}}}" for f in c["factors"]) for c in chains]
        products = ["".join(f"({f['dims']})" for f in c["factors"]) for c in chains]
        head = self.frac(r.of, r.wrt, False) + " = "
        one = head + " + ".join(paths) + rf" \in {space}, \qquad " + " + ".join(products) + f" = {dims}."
        if latex_width(one) <= DISPLAY:
            return one
        rows = fill([paths[0]] + ["+ " + p for p in paths[1:]], DISPLAY - 4, latex_width(head))
        rows[0] = head + rows[0]
        rows[-1] += rf" \in {space},"
        rows += fill([products[0]] + ["+ " + p for p in products[1:]], DISPLAY - 4, INDENT)
        rows[-1] += f" = {dims}."
        return aligned(rows)

    def product(self, r: Result, denominator: bool) -> list[str]:
        """The product of the partials, in pieces a line may break between."""
        if self.part.method == "direct" or r.chain_steps or any(l.tensor for links in r.chain for l in links):
            # direct, or through a tensor or a matrix: no plain product of the partials to show
            return self.P.segments(r.product, DISPLAY - INDENT)
        out: list[str] = []
        for results in as_written(r)["product"]:
            path = self.juxtapose(results)
            if out:
                path[0] = "- " + path[0][1:] if path[0].startswith("-") else "+ " + path[0]
            out += path
        return out

    def product_equation(self, r: Result, denominator: bool) -> str:
        """∂f/∂x = (the product), with the substitutions on a row of their own when long."""
        head = self.frac(r.of, r.wrt, False) + " = "
        rows = fill(self.product(r, denominator), DISPLAY, latex_width(head))
        rows[0] = head + rows[0]
        if r.substitutions:
            subs = [self.name(n) + " = " + self.P(e) for n, e in r.substitutions]
            pieces = [WITH + subs[0]] + [r"\; " + x for x in subs[1:]]
            tail = fill([p + "," for p in pieces[:-1]] + pieces[-1:], DISPLAY, INDENT)
            if len(rows) == 1 and len(tail) == 1 and latex_width(rows[0] + tail[0]) + 3 <= DISPLAY:
                rows[0] += r", \qquad " + tail[0]
            else:
                rows[-1] += ","
                rows += tail
        rows[-1] += "."
        return aligned(rows)

    def result_view(self, r: Result) -> dict:
        shown = r.result if r.display is None else r.display       # with the kept names
        chain_views = []
        for links in r.chain:
            chain_views.append({
                "arrow": r" \;\longrightarrow\; ".join(self.name(n) for n in reversed((links[0].of,) + tuple(l.wrt for l in links))),
                "factors": [{"frac": self.frac(l.of, l.wrt, True), "dims": dims_latex(l.step.dims)} for l in links],
            })
        denominator = transposed_in(r.layout, r.shape_wrt)
        if denominator:
            for c, links in zip(chain_views, r.chain):
                c["factors"] = list(reversed(c["factors"]))
                for f, l in zip(c["factors"], reversed(links)):      # each partial's dims as this layout writes it
                    f["dims"] = dims_latex(_layout(l.step.dims, transposed_in(r.layout, l.wrt_shape), r.layout))
        dims_product = " + ".join("".join(f"({f['dims']})" for f in c["factors"]) for c in chain_views)
        partials = []
        written = as_written(r)
        # innermost link first, as a student works
        for p, w in reversed(list(zip(r.partials, written["partials"]))):
            res, raw = w["result"], w["raw"]
            partials.append({
                "key": (p.of, p.wrt, ex.to_text(p.expr), ex.to_text(res)),
                "label": f"eq:{self.label}:{p.of}:{p.wrt}",
                "anchor": _anchor(f"eq:{self.label}:{p.of}:{p.wrt}"),
                "ref": None,
                "referred": False,
                "of": self.name(p.of), "wrt": self.name(p.wrt),
                "frac": self.frac(p.of, p.wrt, True, vec=p.step.rule == "vec_jacobian"),
                "slash": self.slash(p.of, p.wrt, True, vec=p.step.rule == "vec_jacobian"),
                "definition": f"{self.name(p.of)} = {self.P(p.expr)}",
                "definition_display": (self.P.equation(self.name(p.of), p.expr, DISPLAY, ".")
                                       if latex_width(self.P(p.expr)) > DISPLAY / 2 else None),
                "definition_mml": self.M.equation(self.name(p.of), p.expr, DISPLAY, "."),
                "step": self.step_view(w["step"]),
                "result": self.P(res),
                "raw": self.P(raw),         # before the rewrites
                "rewrites": [self.rewrite_view(s) for s in w["rewrites"]],
                "equation": self.P.equation(self.frac(p.of, p.wrt, True, vec=p.step.rule == "vec_jacobian"), raw, DISPLAY, r" \in " + jac_space(
                    _layout(p.step.dims, denominator and transposed_in(r.layout, p.wrt_shape), r.layout)) + "."),
                "table": self.P(res) if not p.tensor and latex_width(self.P(res)) <= TABLE_WIDTH else None,
                "table_mml": self.M.mml(res),
                "equation_mml": self.M.equation(self.frac(p.of, p.wrt, True, vec=p.step.rule == "vec_jacobian"), raw, DISPLAY, r" \in " + jac_space(
                    _layout(p.step.dims, denominator and transposed_in(r.layout, p.wrt_shape), r.layout)) + "."),
                "result_text": ex.to_text(res),
                "dims": dims_latex(_layout(p.step.dims, denominator and transposed_in(r.layout, p.wrt_shape), r.layout)),
                "space": jac_space(_layout(p.step.dims, denominator and transposed_in(r.layout, p.wrt_shape), r.layout)),
                "diagonal": None if p.tensor else _diagonal_entries(p.result),
                "tensor": self.tensor_view(p) if p.tensor else None,
            })
        subs = [f"{self.name(n)} = {self.P(e)}" for n, e in r.substitutions]
        simplifications = []
        if _eyes(r.product) > _eyes(r.result):      # only when one does drop
            simplifications.append(r"identity factors drop out ($\mathbf{A}\mathbf{I} = \mathbf{A}$)")
        stated = {n for s in r.rewrites + r.hessian_rewrites + sum((p.rewrites for p in r.partials), ())
                  if s.rule in ("symmetric_matrix", "symmetric_transpose")
                  for a in s.note_args for n in ex.free_symbols(a)}      # said where it is used
        for name, i in sorted(_positional_partials(shown)):      # ∂₂p(…) said once, where it appears
            fn = self.P.names.get(name) or symbol_latex(name, False)
            simplifications.append(rf"$\partial_{{{i + 1}}} {fn}$ is the derivative of ${fn}$ with respect to its "
                                   rf"argument {i + 1}, taken at the arguments written after it")
        for name, what in r.assumptions_used:
            if what in ("symmetric", "positive_definite", "diagonal") and name not in stated:
                simplifications.append(
                    f"${self.name(name)}$ is {what.replace('_', ' ')}, so ${self.name(name)}^\\top = {self.name(name)}$"
                    f" and ${self.name(name)}^{{-\\top}} = {self.name(name)}^{{-1}}$")
        for s in r.symmetric:        # symmetric by construction, so M⁻ᵀ = M⁻¹
            simplifications.append(self.note(s) + r", so $\left(" + self.P(s.result) + r"\right)^\top = "
                                   + self.P(s.result) + "$")
        check = r.check
        cw = r.componentwise
        graph = self.graph(r)
        chain_space = jac_space(jacobian_dims(r.shape_of, r.shape_wrt)) if r.order == 2 else jac_space(_layout(r.dims, False, r.layout))
        chain_dims = dims_latex(jacobian_dims(r.shape_of, r.shape_wrt)) if r.order == 2 else dims_latex(_layout(r.dims, False, r.layout))
        single = len(r.chain) == 1 and len(r.chain[0]) == 1
        return {
            "label": f"eq:{self.label}:{r.of}:{r.wrt}:{r.order}",
            "anchor": _anchor(f"eq:{self.label}:{r.of}:{r.wrt}:{r.order}"),
            "referred": False,
            "show_convention": True,
            "show_kink": False,
            "kinked": any(_kinked(e) for e in [r.result] + [p.result for p in r.partials]),
            "kink_places": self.kink_places(r),
            "kink_fns": [f for f in _KINK_FNS if any(_kink_fn(n) == f for d in self.part.define
                                                     for n in ex.nodes(d.expr))],
            "kink_sign": any(n.op == "fn" and n.name == "sign" for n in ex.nodes(r.result)),
            "gradient_ref": None,
            "show_chain": not single,    # one link: no chain rule to state, the derivation is the partial
            "of": self.name(r.of), "wrt": self.name(r.wrt), "text": r.text, "order": r.order,
            "frac": self.frac(r.of, r.wrt, False, r.order, _by_vec(r)),
            "chain_frac": self.frac(r.of, r.wrt, False),
            "chain_space": chain_space,
            "chain_dims": chain_dims,
            "chain_equation": self.chain_equation(r, chain_views, chain_space, chain_dims),
            "trivial_product": len(r.chain) == 1 and len(r.chain[0]) == 1 and not r.substitutions,
            "slash": self.slash(r.of, r.wrt, False, r.order, _by_vec(r)),
            "chains": chain_views,
            "several_paths": len(chain_views) > 1,
            "dims_product": dims_product,
            "dims": dims_latex(_layout(r.dims, False, r.layout)),
            "space": jac_space(_layout(r.dims, False, r.layout)),
            "partials": partials,
            "product": " ".join(self.product(r, denominator)),
            "product_equation": self.product_equation(r, denominator),
            "product_equation_mml": self.mathml(self.product_equation, r, denominator),
            "result_mml": self.M.mml(shown),
            "substitutions": subs,
            "simplifications": simplifications,
            "expand_product": r.expand_product,
            "result": self.P(shown),
            "result_equation": self.P.equation(self.frac(r.of, r.wrt, False, r.order, _by_vec(r)), shown, DISPLAY - 1,
                                               r" \in " + jac_space(_layout(r.dims, False, r.layout))),
            "result_equation_mml": self.M.equation(self.frac(r.of, r.wrt, False, r.order, _by_vec(r)), shown, DISPLAY - 1,
                                                   r" \in " + jac_space(_layout(r.dims, False, r.layout))),
            "answer_mml": None if r.answer is None or self.answer_same(r, shown) else self.M.mml(r.answer),
            "kept_mml": [self.M.equation(self.name(n), e, 1e9) for n, e in r.kept],
            "result_text": ex.to_text(r.result),
            # the instructor's form under the box when it differs from ours, else a sentence saying it agrees
            "answer": None if r.answer is None or self.answer_same(r, shown) else self.P(r.answer),
            "answer_same": self.answer_same(r, shown),
            # (not under a product the exercise asks not to multiply out)
            "rewrites": [self.rewrite_view(s) for s in r.rewrites] if r.expand_product else [],
            "hessian_rewrites": [self.rewrite_view(s) for s in r.hessian_rewrites],
            "kept": [f"{self.name(n)} = {self.P(e)}" for n, e in r.kept],
            "hessian_steps": [self.step_view(s, 1) for s in written["extra_steps"]],
            "hessian_by_vec": any(s.rule == "vec_hessian" for s in r.extra_steps),
            "chain_steps": self.chain_steps(r),
            "tensor": self.tensor_entries(r.of, r.wrt, r.shape_of, r.shape_wrt, r.result, r.direction)
            if r.tensor else None,
            "layout": r.layout,
            # a scalar by an M×N matrix: the matrix G with df = tr(Gᵀ dX), its size written 1×(M×N)
            "by_matrix": r.shape_of == () and r.order == 1 and len(r.shape_wrt) == 2 and 1 not in r.shape_wrt
            and not _by_vec(r) and r.layout == "numerator",
            "show_by_matrix": False,
            "check": None if check is None else {
                "sizes": ", ".join(f"{self.name(n)} = {v}" for n, v in check.sizes) or self.no_sizes(),
                "points": check.points,
                "error": fmt_error(check.max_rel_error),
            },
            "componentwise": None if not cw else {
                "written": [{"expr": self.P(w.expr), "rows": [" & ".join(row) for row in w.rows],
                             "expr_mml": self.M.mml(w.expr)} for w in cw.written],
                "scalar": cw.scalar_latex,
                "entry": cw.entry_symbol,
                "entry_derivative": cw.entry_derivative,
                "row": " & ".join(cw.row),
                "index": cw.index,
                "wrt_name": self.name(r.wrt),
            },
            "direct": self.part.method == "direct",
            "graph": graph,
        }

    def no_sizes(self) -> str:
        """What the check sentence says where no dimension had a size to choose."""
        if all(s.shape == () for s in self.part.symbols if s.kind in ("scalar", "array")):
            return r"\text{every variable a scalar}"
        return r"\text{the sizes as declared}"

    def graph(self, r: Result) -> dict:
        """The dependency graph x -> y -> z -> f, each edge labelled with its partial and dims."""
        edges = [(p.wrt, p.of, p) for p in r.partials]
        written = {p: w["dims"] for p, w in zip(r.partials, as_written(r)["partials"])}    # as the layout writes them
        names: list[str] = []
        for a, b, _ in edges:
            for n in (a, b):
                if n not in names:
                    names.append(n)
        level = {n: 0 for n in names}
        for _ in names:                      # longest path from the variable: a DAG, so |V| rounds
            for a, b, _ in edges:
                level[b] = max(level[b], level[a] + 1)
        shapes = shapes_of_part(self.part)
        for p in r.partials:
            shapes.setdefault(p.wrt, p.wrt_shape)
        latex = {n: self.name(n) + r" \in " + space_latex(shapes.get(n, ())) for n in names}
        # columns far enough apart that each edge's label (∂z/∂y over its dims) clears both nodes
        half = {}
        for n in names:
            half[level[n]] = max(half.get(level[n], 0.0), GRAPH_EM * latex_width(latex[n]) / 2 + 0.15)
        gap = {}
        for a, b, p in edges:
            if level[b] == level[a] + 1:
                label = max(0.7 * latex_width(self.frac(p.of, p.wrt, True)), 0.7 * latex_width(dims_latex(written[p])))
                gap[level[a]] = max(gap.get(level[a], 0.0), GRAPH_EM * label + 0.6)
        x = [0.0]
        for k in range(1, max(level.values()) + 1):
            x.append(x[-1] + half[k - 1] + max(gap.get(k - 1, 1.0), 1.0) + half[k])
        rows: dict[int, int] = {}
        nodes = []
        for n in sorted(names, key=lambda n: (level[n], names.index(n))):
            row = rows.get(level[n], 0)
            rows[level[n]] = row + 1
            nodes.append({"id": n, "x": x[level[n]], "y": 0.0 - 2.2 * row, "latex": latex[n],
                          "text": n + " ∈ " + _space_text(shapes.get(n, ()))})
        width = x[-1] + half[0] + half[len(x) - 1]
        y = {n["id"]: n["y"] for n in nodes}
        return {
            "scale": "%.2f" % min(1.0, GRAPH_WIDTH / width),
            "nodes": nodes,
            "edges": [{"from": a, "to": b, "frac": self.frac(p.of, p.wrt, True),
                       "label": f"∂{p.of}/∂{p.wrt}: {written[p]}", "dims": dims_latex(written[p]),
                       "bend": "bend left=30" if level[b] - level[a] > 1 else "",
                       # an edge between rows: its labels on the side away from the edges along the rows
                       "slant": "" if y[a] == y[b] else "below left" if y[b] < y[a] else "below right"}
                      for a, b, p in edges],
        }

    def tensor_view(self, p) -> dict:
        """A tensor-valued partial: its differential and its entries ∂z_ij/∂W_kl."""
        return self.tensor_entries(p.of, p.wrt, p.of_shape, p.wrt_shape, p.step.result, p.step.direction)

    def tensor_entries(self, of: str, wrt: str, of_shape, wrt_shape, differential: Expr, direction: str) -> dict:
        from ..calculus.linear import linear_terms
        from ..errors import UnsupportedError
        d_of = r"\mathrm{d}" + self.name(of)
        out = {"differential": self.P.equation(d_of, differential, DISPLAY - 2), "entries": None,
               "differential_mml": self.M.equation(d_of, differential, DISPLAY - 2)}
        m, n = ex.as_2d(of_shape)
        q1, q2 = ex.as_2d(wrt_shape)
        oi, oj = ("i" if m != 1 else None), ("j" if n != 1 else None)
        hk, hl = ("k" if q1 != 1 else None), ("l" if q2 != 1 else None)
        try:
            terms = linear_terms(differential, direction)
        except UnsupportedError:
            return out
        parts = []
        for scal, L, transposed, R in terms:
            a, b = (hl, hk) if transposed else (hk, hl)
            factors = [self.P(c) for c in scal] + [self._entry(L, oi, a), self._entry(R, b, oj)]
            factors = [f for f in factors if f and f != "1"]
            if len(factors) > 1 and factors[0] == "-1":     # −δ_ik, never −1 δ_ik
                factors = ["-" + factors[1]] + factors[2:]
            parts.append(" ".join(factors))
        lhs = (rf"\frac{{\partial {_plain(self.name(of))}_{{{''.join(i for i in (oi, oj) if i)}}}}}"
               rf"{{\partial {_plain(self.name(wrt))}_{{{''.join(i for i in (hk, hl) if i)}}}}}")
        parts = parts or ["0"]
        rows = fill([parts[0]] + [("- " + p[1:]) if p.startswith("-") else "+ " + p for p in parts[1:]],
                    DISPLAY - 2, latex_width(lhs) + 1.4)
        out["entries"] = aligned([lhs + " = " + rows[0]] + rows[1:])
        return out

    def _entry(self, M, r, c) -> str:
        idx = [i for i in (r, c) if i]
        if M is None or M.op == "eye":
            return rf"\delta_{{{''.join(idx)}}}" if len(idx) == 2 else "1"
        if M.op == "T" and M.args[0].op == "sym":
            M, r, c = M.args[0], c, r
            idx = [i for i in (r, c) if i]
        if M.op == "sym":
            return _plain(self.name(M.name)) + (f"_{{{''.join(idx)}}}" if idx else "")
        if M.op == "diag" and len(idx) == 2:
            return self._vector_entry(M.args[0], idx[0]) + rf"\,\delta_{{{''.join(idx)}}}"
        if M.op == "ones" or (M.op == "T" and M.args[0].op == "ones"):     # every entry of 1 is 1
            return "1"
        if M.op == "fn" and M.name == "step" and len(idx) == 1:
            return self._step_entry(M.args[0], idx[0])
        return r"\left[" + self.P(M) + r"\right]" + (f"_{{{''.join(idx)}}}" if idx else "")

    def _step_entry(self, u: Expr, i: str) -> str:
        """Entry i of 𝟙[u > 0]: 𝟙[(u)_i > 0], not the nested [𝟙[u > 0]]_i."""
        entry = (_plain(self.name(u.name)) if u.op == "sym" else r"\left(" + self.P(u) + r"\right)") + f"_{{{i}}}"
        return r"\mathbb{1}\left[" + entry + r" > 0\right]"

    def _vector_entry(self, v: Expr, i: str) -> str:
        """Entry i of a vector expression, written with SymPy's index notation (1 - tanh²(z_i))."""
        from ..calculus.componentwise import _latex, _Translator
        from ..errors import UnsupportedError
        import sympy as sp
        if v.op == "fn" and v.name == "step":
            return self._step_entry(v.args[0], i)
        try:
            tr = _Translator(display=True, reserved=("i", "j", "k", "l"))
            return r"\left(" + _latex(tr.c(v, sp.Symbol(i), 1)) + r"\right)"
        except UnsupportedError:
            return r"\left[" + self.P(v) + r"\right]_{" + i + "}"

    def view(self) -> dict:
        part = self.part
        return {
            "id": part.id,
            "title": part.title,
            "title_md": texsafe.markdown_safe(part.title),
            "statement": text(part.statement) if part.statement else None,
            "hint": text(part.hint) if part.hint else None,
            "given": self.given(),
            "find": [self.frac(t.of, t.wrt, False, t.order) for t in part.find],
            "method": part.method,
            "layout": part.layout,
            "results": _refer_to_earlier([self.result_view(r) for r in self.ps.results]),
            "error": _error_text(self.ps.error, self.path) if self.ps.error else None,
        }


def _refer_to_earlier(results: list[dict]) -> list[dict]:
    """Each partial derived once per part: a later find refers to it by its equation; a Hessian
    whose gradient is also found in the part refers to that gradient instead of deriving it again."""
    derived: dict[tuple, dict] = {}
    gradients: dict[tuple, dict] = {}
    for r in results:
        if r["order"] == 2 and (r["of"], r["wrt"]) in gradients:
            r["gradient_ref"] = gradients[(r["of"], r["wrt"])]
            r["gradient_ref"]["referred"] = True
            continue
        for p in r["partials"]:
            if p["key"] in derived:
                p["ref"] = derived[p["key"]]
                p["ref"]["referred"] = True
            else:
                derived[p["key"]] = p
        if r["order"] == 1:
            gradients[(r["of"], r["wrt"])] = r
    return results


def _spaceless(latex: str) -> str:
    """LaTeX without its spaces (thin and medium spaces, blanks): what a reader would call the same formula."""
    return re.sub(r"\\[,;!]|\s+", "", latex)


def _anchor(label: str) -> str:
    """A Markdown anchor for an equation label: letters, digits and hyphens."""
    return re.sub(r"[^A-Za-z0-9]+", "-", label)


def _convention_once(parts: list[dict]) -> list[dict]:
    """The layout convention stated before the first derivative, and again only where it changes."""
    last = None
    for part in parts:
        for r in part["results"]:
            r["show_convention"] = r["layout"] != last
            last = r["layout"]
    return parts


def _kinked(e: Expr) -> bool:
    """Whether ``e`` holds the step or the sign function: a derivative of relu, abs or max."""
    return any(n.op == "fn" and n.name in ("step", "sign") for n in ex.nodes(e))


# Names that are no built-in of the language but PRINT like a built-in matrix: a declared I is a
# bold I, as the identity is; a declared K a bold K, as the commutation matrix is.  The note says so.
PRINTS_LIKE_BUILTIN = {"I": ("identity matrix", "D"), "K": ("commutation matrix", "m, n")}

_KINK_FNS = (r"$\max$", r"$\operatorname{ReLU}$", r"$\lvert\cdot\rvert$")


def _kink_fn(n: Expr) -> str | None:
    """Which of ``_KINK_FNS`` the node is: max, relu or abs."""
    if n.op == "max":
        return _KINK_FNS[0]
    if n.op == "fn" and n.name in ("relu", "abs"):
        return _KINK_FNS[1 if n.name == "relu" else 2]
    return None


def _by_matrix_once(parts: list[dict]) -> list[dict]:
    """How a scalar's derivative by a matrix is written (the matrix G, its size 1×(M×N)), said once,
    before the first such result."""
    first = next((r for part in parts for r in part["results"] if r.get("by_matrix")), None)
    if first is not None:
        first["show_by_matrix"] = True
    return parts


def _kink_once(parts: list[dict]) -> list[dict]:
    """The convention at a kink (the step function's value at 0) stated once, before the first
    derivative that uses it, naming this problem's kinks in its own symbols."""
    results = [r for part in parts for r in part["results"] if r["kinked"]]
    if not results:
        return parts
    places = list(dict.fromkeys(p for r in results for p in r["kink_places"]))
    fns = list(dict.fromkeys(f for r in results for f in r["kink_fns"]))
    where = " and ".join(places) or "at the kink"
    of = f" (a kink of {' and '.join(fns)})" if fns else ""
    values = r"$\mathbb{1}[0 > 0] = 0$" + (r" and $\operatorname{sign}(0) = 0$"
                                           if any(r["kink_sign"] for r in results) else "")
    results[0]["show_kink"] = True
    results[0]["kink"] = {"where": where[0].upper() + where[1:], "of": of, "values": values,
                          "it": "these kinks" if len(places) > 1 else "the kink"}
    return parts


_BOLD = re.compile(r"^\\(?:mathbf|boldsymbol)\{(.*?)\}(.*)$")


def part_error(error: str, path: str) -> str:
    """A part's error for a document: without the file's place on the build machine (the field and
    the reason stay), so the outputs do not depend on where the build ran."""
    if error.startswith(path + ":"):
        error = re.sub(r"^\d+:\d+: ", "", error[len(path) + 1:])
    return error


def _error_text(error: str, path: str) -> dict:
    """Why a part could not be derived, shown as it is: code in Markdown, escaped text in LaTeX."""
    error = part_error(error, path)
    return {"md": "`" + error.replace("`", "'").replace("\n", " ") + "`", "tex": texsafe.escape_text(error),
            "plain": error}


def _plain(latex: str) -> str:
    """\\mathbf{x} -> {x}, \\boldsymbol{\\mu} -> {\\mu}: an entry is a scalar, ready for a subscript."""
    m = _BOLD.match(latex)
    return "{" + (m.group(1) + m.group(2) if m else latex) + "}"


def shapes_of_part(part) -> dict:
    out = {s.name: s.shape for s in part.symbols if s.kind in ("scalar", "array")}
    out.update({d.name: d.expr.shape for d in part.define})
    return out


def _space_text(shape) -> str:
    if shape == ():
        return "ℝ"
    r, c = shape
    return f"ℝ^{r}" if c == 1 else f"ℝ^({r}×{c})"


def _layout(dims: str, denominator: bool, layout: str = "") -> str:
    """``dims`` as the layout writes them: transposed, or in denominator layout a scalar's gradient
    by a matrix with the matrix's shape, M×N for MML's 1×(M×N) (as in the Matrix Cookbook)."""
    if layout == "denominator" and dims.startswith("1×("):
        return dims[3:-1]
    if not denominator:
        return dims
    a, _, b = dims.partition("×")
    return f"{b}×{a}" if b else dims


def as_written(r: Result) -> dict:
    """The trees the document prints for ``r``, in its layout: in denominator layout every Jacobian
    by a scalar or a vector is the transpose of ours (numerator), so its step tree, its rewrites and
    the factors of the product are written transposed, each line conforming as written. Keys:
    ``partials`` (per partial, as ``r.partials``: dims, step, raw, result, rewrites), ``product`` (per
    path, the factors in the order printed, or None where the product is printed whole),
    ``extra_steps`` (the Hessian's)."""
    from ..calculus.chain import flipped
    from ..calculus.simplify import simplify
    denominator = transposed_in(r.layout, r.shape_wrt)
    partials = []
    for p in r.partials:
        flip = denominator and transposed_in(r.layout, p.wrt_shape) and not p.tensor
        partials.append({
            "dims": _layout(p.step.dims, denominator and transposed_in(r.layout, p.wrt_shape), r.layout),
            "step": _flipped_step(p.step, r.layout) if flip else p.step,
            "raw": _transposed(p.step.result) if flip else p.step.result,
            "result": _transposed(p.result) if flip else p.result,
            "rewrites": flipped(p.rewrites, simplify) if flip else p.rewrites,
        })
    product = []
    for links in r.chain:
        results = [l.result for l in links]
        product.append([_transposed(e) for e in reversed(results)] if denominator else results)
    extra = r.extra_steps
    if r.order == 2 and r.layout == "denominator" and transposed_in(r.layout, r.shape_wrt):
        # the Hessian is symmetric: its own line stays, the derivatives under it are written in the layout
        extra = tuple(replace(s, substeps=tuple(_flipped_step(t, r.layout) for t in s.substeps)) for s in extra)
    return {"partials": partials, "product": product, "extra_steps": extra}


def _flipped_step(step: Step, layout: str) -> Step:
    """A step and its substeps in denominator layout: each derivative by a scalar or a vector
    transposed (a differential is the same in both layouts)."""
    flip = not step.direction and step.result.shape != ()
    cites = step.cites.replace(", transposed", "") if flip else step.cites    # the Cookbook's own layout
    # the rule's identity is stated in numerator layout: said so where the line is its transpose
    note = step.note + " (in numerator layout; the line is its transpose)" if flip and step.note else step.note
    return replace(step, result=_transposed(step.result) if flip else step.result, cites=cites, note=note,
                   dims=_layout(step.dims, flip, layout),
                   substeps=tuple(_flipped_step(s, layout) for s in step.substeps))


def _transposed(e: Expr) -> Expr:
    from ..calculus.simplify import simplify
    return _self_transposed_sums(simplify(ex.transpose(e)))


def _self_transposed_sums(e: Expr) -> Expr:
    """``e`` with (B + Bᵀ)ᵀ written B + Bᵀ: a sum whose terms transposed are its terms again."""
    from ..calculus.simplify import simplify
    if e.op == "T" and e.args[0].op == "add":
        terms = e.args[0].args
        if sorted(map(ex.to_text, terms)) == sorted(ex.to_text(simplify(ex.transpose(t))) for t in terms):
            return e.args[0]
    args = tuple(_self_transposed_sums(a) for a in e.args)
    return e if all(a is b for a, b in zip(args, e.args)) else ex.rebuild(e, args)


def _positional_partials(e: Expr) -> set:
    """(function, argument) of each ∂ᵢp(…) in ``e``: a partial by an argument that is not a name."""
    here = {(e.name, int(e.value))} if e.op == "pd" and e.args[int(e.value)].op != "sym" else set()
    return here.union(*(_positional_partials(a) for a in e.args))


def _eyes(e: Expr) -> int:
    """How many identity matrices ``e`` has."""
    return (e.op == "eye") + sum(_eyes(a) for a in e.args)


MAX_DEPTH = 5    # LaTeX nests lists six deep at most (templates/steps/_list.tex.j2): deeper steps are listed flat


def _descendants(step: Step) -> list[Step]:
    out = []
    for s in _interesting(step.substeps):
        out.append(replace(s, substeps=()))
        out.extend(_descendants(s))
    return out


def _interesting(steps) -> list[Step]:
    """The steps worth a line: not ∂1 = 0, nor d(X) = dX (said by every product it is in)."""
    return [s for s in steps if not (s.rule == "constant" and s.of.op == "num")
            and not (s.rule == "identity" and s.direction)]


def _diagonal_entries(e: Expr):
    """A diagonal Jacobian written out: its first, second and last diagonal entries."""
    if e.op != "diag":
        return None
    from ..calculus.componentwise import _Translator, _index_positions, _latex
    from ..errors import UnsupportedError
    tr = _Translator(display=True)
    n = e.shape[0]
    try:
        idx = _index_positions(tr.dim(n))
        entries = [None if i is None else _latex(tr.c(e.args[0], i, 1)) for i in idx]
    except UnsupportedError:
        return None
    rows = []
    for r, a in enumerate(entries):
        row = []
        for c, b in enumerate(entries):
            if a is None and b is None:
                row.append(r"\ddots")
            elif a is None:
                row.append(r"\vdots")
            elif b is None:
                row.append(r"\cdots")
            elif r == c:
                row.append(a)
            else:
                row.append("0")
        rows.append(" & ".join(row))
    return rows


def solution_view(sol: Solution, mathml: bool = True) -> dict:
    p = sol.problem
    return {
        "id": p.id,
        "anchor": "problem-" + p.id.replace(".", "-"),
        "title": p.title or p.id,
        "title_md": texsafe.markdown_safe(p.title or p.id),
        "source": text(p.source) if p.source else None,
        "statement": text(p.statement) if p.statement else None,
        "hint": text(p.hint) if p.hint else None,
        "has_parts": p.has_parts,
        "parts": _by_matrix_once(_kink_once(_convention_once([PartView(ps, p, mathml).view() for ps in sol.parts]))),
    }


def _by_vec(r: Result) -> bool:
    """Whether ``r`` is a derivative by vec X (a Jacobian of a vec, or a Hessian by a matrix)."""
    return any(s.rule == "vec_hessian" for s in r.extra_steps) or (
        r.order == 1 and len(r.partials) == 1 and r.partials[0].step.rule == "vec_jacobian")
