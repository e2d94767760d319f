"""One self-contained web page per derivation: MathML from SymPy's presentation printer, the graph's
SVG inline, a little CSS; no network access and no JavaScript (browsers lay MathML out natively).

``to_html(doc, svg)`` renders a document; ``write_site(folder)`` writes ``NAME.html`` and
``NAME.zh.html`` for every explainable kernel and an ``index.html`` listing them in English and Chinese.
"""
from __future__ import annotations

import html as _html
import re
from pathlib import Path

import sympy as sp
from sympy.printing.mathml import MathMLPresentationPrinter

from .model import Bullets, Code, Document, Equation, Heading, Math, Para, Table
from .render import inline_text
from .symbols import Partial
from .typeset import FUNCTIONS
from sympy.printing.latex import greek_letters_set

CSS = """body{font-family:'Noto Sans CJK SC','Noto Sans',sans-serif;max-width:60rem;margin:2rem auto;
padding:0 1rem;line-height:1.5;color:#222}math[display=block]{margin:.8em 0;font-size:1.15em}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:.2em .5em}
pre{background:#f5f5f5;padding:.6em;overflow-x:auto}svg{max-width:100%;height:auto}"""
REL = {"=": "=", "<-": "\u2190"}


class _MathML(MathMLPresentationPrinter):
    """SymPy's presentation MathML with the page's notation: x[n, d] as x with subscript n,d; dxhat as d x̂;
    multi-letter names upright; the display symbols of the explanations."""

    def _name(self, name: str):
        dom = self.dom
        head, _, tag = name.partition("_")
        letters = head.rstrip("0123456789")
        if head[:1] == "d" and len(head) > 1 and letters.lower() not in greek_letters_set:
            row = dom.createElement("mrow")
            d = dom.createElement("mi")
            d.appendChild(dom.createTextNode("d"))
            row.appendChild(d)
            row.appendChild(self._name(name[1:]))
            return row
        if head.endswith("hat") and len(head) > 3:
            over = dom.createElement("mover")
            over.appendChild(self._name(head[:-3]))
            hat = dom.createElement("mo")
            hat.appendChild(dom.createTextNode("^"))
            over.appendChild(hat)
            base = over
        elif len(letters) <= 1 or letters.lower() in greek_letters_set:
            base = MathMLPresentationPrinter._print_Symbol(self, sp.Symbol(head))
        else:
            base = dom.createElement("mi")
            base.setAttribute("mathvariant", "normal")
            base.appendChild(dom.createTextNode(head))
        if not tag:
            return base
        sup = dom.createElement("msup")
        sup.appendChild(base)
        t = dom.createElement("mi")
        t.appendChild(dom.createTextNode(tag))
        sup.appendChild(t)
        return sup

    def _print_Symbol(self, sym, style="plain"):
        if re.match(r"^[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)?$", sym.name) and sym.name not in greek_letters_set \
                and not re.match(r"^[A-Za-z]+\d+$", sym.name) and sym.name.split("_")[0] not in FUNCTIONS:
            return self._name(sym.name)
        return super()._print_Symbol(sym, style)

    def _print_Indexed(self, e):
        sub = self.dom.createElement("msub")
        sub.appendChild(self._name(str(e.base.label)))
        row = self.dom.createElement("mrow")
        for k, i in enumerate(e.indices):
            if k:
                comma = self.dom.createElement("mo")
                comma.appendChild(self.dom.createTextNode(","))
                row.appendChild(comma)
            row.appendChild(self._print(i))
        sub.appendChild(row)
        return sub

    def _print_Partial(self, e):
        frac = self.dom.createElement("mfrac")
        for a in e.args:
            row = self.dom.createElement("mrow")
            d = self.dom.createElement("mo")
            d.appendChild(self.dom.createTextNode("\u2202"))
            row.appendChild(d)
            row.appendChild(self._print(a))
            frac.appendChild(row)
        return frac

    def emptyPrinter(self, expr):
        t = self.dom.createElement("mtext")
        t.appendChild(self.dom.createTextNode(inline_text(expr)))
        return t


def math(x, display: bool = False, order=None) -> str:
    """MathML of a SymPy object (or of a ``Math`` with only LaTeX: its text form)."""
    if isinstance(x, Math):
        if x.expr is None or (x.latex is not None and x.expr is None):
            return _html.escape(x.text or x.latex or "")
        x = x.expr
    try:
        body = _MathML({"order": order} if order else {}).doprint(x)
    except Exception:     # noqa: BLE001 - an object SymPy cannot print as MathML: its text form
        body = "<mtext>%s</mtext>" % _html.escape(inline_text(x))
    return '<math%s>%s</math>' % (' display="block"' if display else "", body)


def _eq(e: Equation) -> str:
    order = "none" if e.role in ("update", "variant", "schedule", "fact", "textbook") else None
    lhs = math(e.lhs, order=order)[len("<math>"):-len("</math>")] if not isinstance(e.lhs, Math) or e.lhs.expr \
        is not None else "<mtext>%s</mtext>" % _html.escape(e.lhs.text or "")
    rhs = math(e.rhs, order=order)[len("<math>"):-len("</math>")]
    cond = ""
    if e.when is not None:
        cond = "<mspace width=\"2em\"/><mtext>%s</mtext>%s" % (_html.escape(e.note[0] if e.note else "if "),
                                                                  math(e.when)[6:-7])
    return '<math display="block"><mrow>%s<mo>%s</mo>%s%s</mrow></math>' % (lhs, REL.get(e.rel, e.rel), rhs, cond)


def _parts(parts) -> str:
    return "".join(_html.escape(p) if isinstance(p, str) else math(p) for p in parts)


def to_html(doc: Document, svg: str | None = None) -> str:
    out = ["<!DOCTYPE html>", f'<html lang="{"zh-CN" if doc.lang == "zh" else "en"}">', "<head>",
           '<meta charset="utf-8">', f"<title>{_html.escape(doc.title)}</title>", f"<style>{CSS}</style>",
           "</head>", "<body>", f"<!-- @generated by symgrad from the derivation of {doc.name} -- do not edit -->",
           f"<h1>{_html.escape(doc.title)}</h1>"]
    if svg:
        out.append('<figure class="graph">' + re.sub(r"^<\?xml[^>]*>\s*(<!DOCTYPE[^>]*>\s*)?", "", svg) + "</figure>")
    for b in doc.blocks:
        if isinstance(b, Heading):
            lvl = min(b.level, 6)
            out.append(f"<h{lvl}>{_html.escape(b.text)}</h{lvl}>")
        elif isinstance(b, Para):
            out.append(f"<p>{_parts(b.parts)}</p>")
        elif isinstance(b, Equation):
            out.append(_eq(b))
        elif isinstance(b, Bullets):
            out.append("<ul>" + "".join(f"<li>{_parts(it)}</li>" for it in b.items) + "</ul>")
        elif isinstance(b, Table):
            head = "".join(f"<th>{_html.escape(h)}</th>" for h in b.header)
            rows = "".join("<tr>" + "".join(f"<td>{_parts(c)}</td>" for c in r) + "</tr>" for r in b.rows)
            out.append(f"<table><tr>{head}</tr>{rows}</table>")
        elif isinstance(b, Code):
            out.append("<pre><code>" + _html.escape("\n".join(b.lines)) + "</code></pre>")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


def render_site(names=None) -> dict:
    from . import explain, explainable        # the package (this module is one of its parts)
    from .graph import to_svg
    from ..registry import REGISTRY
    names = explainable(names)
    files = {}
    for name in names:
        for lang, suffix in (("en", ".html"), ("zh", ".zh.html")):
            ex = explain(name, lang=lang)
            files[name + suffix] = to_html(ex.doc, to_svg(ex.doc))
    rows = "".join(f'<tr><td><code>{n}</code></td><td>{REGISTRY.get(n).kind}</td><td><a href="{n}.html">English</a>'
                   f'</td><td><a href="{n}.zh.html">中文</a></td></tr>' for n in names)
    files["index.html"] = ("<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>symgrad derivations"
                           f" / 推导</title><style>{CSS}</style></head>\n<body>\n<h1>Derivations / 推导</h1>\n"
                           "<p>Each page derives one kernel step by step. 每页逐步推导一个算子。</p>\n"
                           f"<table><tr><th>kernel</th><th>kind</th><th>English</th><th>中文</th></tr>{rows}</table>\n"
                           "</body>\n</html>\n")
    return files


def write_site(folder, names=None) -> list:
    from ..codegen.render import write_atomic
    folder = Path(folder)
    out = []
    for rel, text in render_site(names).items():
        write_atomic(folder / rel, text)
        out.append(str(folder / rel))
    return out
