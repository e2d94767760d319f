"""Renderers of an explanation ``Document``: Unicode text, a LaTeX fragment, Markdown with ``$$`` blocks.

One function per format; mathematics is printed by SymPy (``sympy.pretty`` for text, ``sympy.latex``
for LaTeX and Markdown). ``latex_document`` wraps the fragment into a compilable document.
"""
from __future__ import annotations

import re
import textwrap

import sympy as sp
from sympy.printing.latex import LatexPrinter

from .typeset import indexed_latex, symbol_latex
from .model import Bullets, Code, Document, Equation, Heading, Math, Para, Table

FORMATS = ("text", "latex", "markdown")


# -- printing mathematics ------------------------------------------------------------------------------
UPDATE_ROLES = ("update", "variant", "schedule", "fact", "textbook")   # in the order built (typeset.textbook)


class _Latex(LatexPrinter):
    """SymPy's LaTeX, except an element of an array named ``a_tag`` prints as ``a^{tag}_{n,k}``
    (``h_new[n, k]`` as h^{new}_{n,k}, ``W_ih[j, d]`` as W^{ih}_{j,d}), not as a double subscript."""

    def _print_Indexed(self, expr):
        idx = ",".join(self._print(i) for i in expr.indices)
        return indexed_latex(str(expr.base.label), idx) or super()._print_Indexed(expr)

    def _print_Symbol(self, expr, style="plain"):
        return symbol_latex(expr.name) or super()._print_Symbol(expr, style)


def latex_of(x, order=None) -> str:
    if isinstance(x, Math):
        return x.latex if x.latex is not None else latex_of(x.expr)
    # a row break followed by a braced symbol (cases: ``\\{z}_{n}``) reads as an escaped brace to
    # many readers and checkers: keep a space after every row break
    return _Latex(dict(mul_symbol=None, order=order)).doprint(x).replace("\\\\{", "\\\\ {")


def _order(e: Equation):
    return "none" if e.role in UPDATE_ROLES else None


def inline_text(x) -> str:
    if isinstance(x, Math):
        if x.text is not None:
            return x.text
        x = x.expr
    p = sp.pretty(x, use_unicode=True, wrap_line=False)
    return p if "\n" not in p else _one_line(x)


def _one_line(x) -> str:
    """``sympy.sstr`` with symbols as ``sympy.pretty`` shows them (beta1 -> β₁) and ** as ^."""
    s = sp.sstr(x).replace("**", "^")
    for sym in sorted(x.free_symbols, key=lambda a: -len(str(a))):
        shown = sp.pretty(sym, use_unicode=True)
        if "\n" not in shown and shown != str(sym) and "_" not in str(sym):   # beta1 -> β₁, not z_i -> zᵢ
            s = re.sub(r"(?<![\w.])%s(?![\w])" % re.escape(str(sym)), shown, s)
    return s


def eq_latex(e: Equation) -> str:
    rel = {"=": "=", "<-": r"\leftarrow"}.get(e.rel, e.rel)
    tail = ""
    if e.when is not None:
        tail = r" \qquad \text{%s} %s" % (_if_word(e), latex_of(e.when))
    return f"{latex_of(e.lhs, _order(e))} {rel} {latex_of(e.rhs, _order(e))}{tail}"


def _if_word(e: Equation) -> str:
    return e.note[0] if e.note and isinstance(e.note[0], str) else "if "


def _pretty(x, order=None) -> str:
    if isinstance(x, Math):
        return x.text if x.text is not None else _pretty(x.expr)
    return sp.pretty(x, use_unicode=True, wrap_line=False, order=order)


def eq_text(e: Equation) -> str:
    lhs = _pretty(e.lhs, _order(e))
    rhs = _pretty(e.rhs, _order(e))
    rel = {"<-": "←"}.get(e.rel, e.rel)
    if e.when is None:
        return _side_by_side(lhs, f" {rel} ", rhs)
    cond = sp.pretty(e.when, use_unicode=True, wrap_line=False)
    return _side_by_side(lhs, f" {rel} ", rhs, "      " + _if_word(e), cond)


def _side_by_side(*blocks: str) -> str:
    cols = [b.split("\n") for b in blocks]
    h = max(len(c) for c in cols)
    out = []
    for c in cols:
        w = max(len(line) for line in c)
        top = (h - len(c)) // 2
        padded = [""] * top + c + [""] * (h - len(c) - top)
        out.append([line.ljust(w) for line in padded])
    return "\n".join("".join(row).rstrip() for row in zip(*out))


# -- text ------------------------------------------------------------------------------------------------
def _parts_text(parts) -> str:
    return "".join(p if isinstance(p, str) else inline_text(p) for p in parts)


def to_text(doc: Document) -> str:
    out = [doc.title, "=" * _width(doc.title), ""]
    for b in doc.blocks:
        if isinstance(b, Heading):
            line = "=" if b.level <= 1 else ("-" if b.level == 2 else "·")
            out += ["", b.text, line * _width(b.text), ""]
        elif isinstance(b, Para):
            out += [_wrap(_parts_text(b.parts), 100), ""]
        elif isinstance(b, Equation):
            out += [textwrap.indent(eq_text(b), "    "), ""]
        elif isinstance(b, Bullets):
            for it in b.items:
                out.append(_wrap(_parts_text(it), 100, "  - ", "    "))
            out.append("")
        elif isinstance(b, Table):
            out += [_table_text(b), ""]
        elif isinstance(b, Code):
            out += ["    " + line for line in b.lines] + [""]
    return "\n".join(out).rstrip() + "\n"


_TOKEN = re.compile(r"\s+|[\u2e80-\u9fff\uff00-\uffef\u3000-\u303f]|[^\s\u2e80-\u9fff\uff00-\uffef\u3000-\u303f]+")


def _wrap(text: str, width: int, first: str = "", rest: str = "") -> str:
    """Greedy fill by display width; breaks at spaces and between CJK characters (2 columns each)."""
    lines, line = [], first
    for tok in _TOKEN.findall(text):
        if tok.isspace():
            tok = " "
        if _width(line) + _width(tok) > width and line.strip():
            lines.append(line.rstrip())
            line = rest
            if tok == " ":
                continue
        line += tok
    lines.append(line.rstrip())
    return "\n".join(lines)


def _width(s: str) -> int:
    import unicodedata
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)


def _table_text(t: Table, width: int = 100) -> str:
    """Columns padded to their widest cell; the widest column wraps so a row fits in ``width``."""
    rows = [t.header] + [[_parts_text(c) for c in r] for r in t.rows]
    widths = [max(_width(r[k]) for r in rows) for k in range(len(t.header))]
    k = max(range(len(widths)), key=lambda c: (widths[c], c))      # the widest column wraps
    room = width - 2 - sum(w + 2 for c, w in enumerate(widths) if c != k)
    if widths[k] > room >= 16:
        widths[k] = room
    lines = []
    for i, r in enumerate(rows):
        wrapped = _wrap(r[k], widths[k]).split("\n") if i else [r[k]]
        for j, part in enumerate(wrapped):
            cells = list(r) if j == 0 else [""] * len(r)
            cells[k] = part
            lines.append("  " + "  ".join(c + " " * (w - _width(c)) for c, w in zip(cells, widths)).rstrip())
        if i == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# -- LaTeX -----------------------------------------------------------------------------------------------
_TEX_ESC = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
            "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
            "∂": r"$\partial$", "×": r"$\times$", "θ": r"$\theta$", "η": r"$\eta$", "←": r"$\leftarrow$",
            "−": r"$-$", "ᵀ": r"${}^{T}$", "`": "", "·": r"$\cdot$",
            "β": r"$\beta$", "ε": r"$\epsilon$", "μ": r"$\mu$", "λ": r"$\lambda$", "τ": r"$\tau$",
            "Δ": r"$\Delta$", "√": r"$\surd$", "≠": r"$\neq$", "₀": r"$_0$", "₁": r"$_1$", "₂": r"$_2$",
            "ᵗ": r"${}^{t}$", "²": r"${}^{2}$", "|": r"$|$", "<": r"$<$", ">": r"$>$"}
_TEX_SEQ = {"ε̂": r"$\hat{\epsilon}$"}   # combining characters first


def tex_escape(s: str) -> str:
    for k, v in _TEX_SEQ.items():
        s = s.replace(k, "\0" + v + "\0")
    parts = s.split("\0")
    return "".join(p if p in _TEX_SEQ.values() else "".join(_TEX_ESC.get(ch, ch) for ch in p) for p in parts)


def _parts_latex(parts) -> str:
    return "".join(tex_escape(p) if isinstance(p, str) else f"${latex_of(p)}$" for p in parts)


def to_latex(doc: Document) -> str:
    out = [f"% @generated by symgrad from the derivation of {doc.name} -- do not edit",
           r"\section*{%s}" % tex_escape(doc.title), ""]
    for b in doc.blocks:
        if isinstance(b, Heading):
            cmd = {1: "section*", 2: "subsection*"}.get(b.level, "subsubsection*")
            out += [r"\%s{%s}" % (cmd, tex_escape(b.text)), ""]
        elif isinstance(b, Para):
            out += [_parts_latex(b.parts), ""]
        elif isinstance(b, Equation):
            out += [r"\begin{equation*}", eq_latex(b), r"\end{equation*}", ""]
        elif isinstance(b, Bullets):
            out.append(r"\begin{itemize}")
            out += [r"\item " + _parts_latex(it) for it in b.items]
            out += [r"\end{itemize}", ""]
        elif isinstance(b, Table):
            out.append(r"\begin{tabular}{%sp{0.4\linewidth}}" % ("l" * (len(b.header) - 1)))
            out.append(" & ".join(r"\textbf{%s}" % tex_escape(h) for h in b.header) + r" \\ \hline")
            out += [" & ".join(_parts_latex(c) for c in r) + r" \\" for r in b.rows]
            out += [r"\end{tabular}", ""]
        elif isinstance(b, Code):
            out += [r"\begin{verbatim}"] + list(b.lines) + [r"\end{verbatim}", ""]
    return "\n".join(out).rstrip() + "\n"


def latex_document(fragment: str, lang: str = "en") -> str:
    """A complete pdflatex document around ``fragment`` (Chinese through the CJK package, font gbsn)."""
    pre = [r"\documentclass{article}", r"\usepackage{amsmath}", r"\usepackage{amssymb}",
           r"\usepackage[margin=2cm]{geometry}"]
    if lang == "zh":
        pre.append(r"\usepackage{CJKutf8}")
    pre.append(r"\begin{document}")
    body = fragment if lang != "zh" else "\\begin{CJK}{UTF8}{gbsn}\n" + fragment + "\\end{CJK}\n"
    return "\n".join(pre) + "\n" + body + r"\end{document}" + "\n"


# -- Markdown --------------------------------------------------------------------------------------------
def _md_math(x) -> str:
    return "$" + latex_of(x) + "$"


def _parts_md(parts, cell=False) -> str:
    s = "".join(_md_escape(p) if isinstance(p, str) else _md_math(p) for p in parts)
    return s.replace("|", r"\vert ") if cell else s


def _md_escape(s: str) -> str:
    """Markdown's emphasis characters escaped, except inside `code spans` (shown verbatim)."""
    parts = s.split("`")
    return "`".join(p if k % 2 else p.replace("*", r"\*").replace("_", r"\_") for k, p in enumerate(parts))


def to_markdown(doc: Document) -> str:
    out = [f"<!-- @generated by symgrad from the derivation of {doc.name} -- do not edit -->", "",
           f"# {doc.title}", ""]
    run: list = []
    for b in doc.blocks + [None]:
        if run and not isinstance(b, Equation):
            out += _md_display(run)
            run = []
        if b is None:
            break
        if isinstance(b, Heading) and b.level >= 3:
            out += [f"**{b.text}.**", ""]          # a run-in head, joined to the paragraph that follows
        elif isinstance(b, Heading):
            out += ["#" * min(b.level, 6) + " " + b.text, ""]
        elif isinstance(b, Para):
            text = _parts_md(b.parts)
            if len(out) >= 2 and out[-2].startswith("**") and out[-2].endswith(".**") and out[-1] == "":
                out[-2:] = [out[-2] + " " + text, ""]
            else:
                out += [text, ""]
        elif isinstance(b, Equation):
            if run:                         # consecutive equations share one display block (gathered)
                run.append(b)
                continue
            run.append(b)
        elif isinstance(b, Bullets):
            out += ["- " + _parts_md(it) for it in b.items] + [""]
        elif isinstance(b, Table):
            out.append("| " + " | ".join(b.header) + " |")
            out.append("|" + "---|" * len(b.header))
            out += ["| " + " | ".join(_parts_md(c, cell=True) for c in r) + " |" for r in b.rows]
            out.append("")
        elif isinstance(b, Code):
            out += ["```" + b.language] + list(b.lines) + ["```", ""]
    return "\n".join(out).rstrip() + "\n"


def _md_display(eqs) -> list:
    """One ``$$`` block; several equations one per line in a ``gathered`` environment."""
    if len(eqs) == 1:
        return ["$$", eq_latex(eqs[0]), "$$", ""]
    lines = [eq_latex(e) + r" \\" for e in eqs]
    lines[0] = r"\begin{gathered}" + lines[0]
    lines[-1] = lines[-1][:-3] + r"\end{gathered}"
    return ["$$"] + lines + ["$$", ""]


RENDERERS = {"text": to_text, "latex": to_latex, "markdown": to_markdown}
