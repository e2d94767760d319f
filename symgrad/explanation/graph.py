"""The computational graph of a derivation as an SVG picture, drawn from the page's own equations.

Forward: one box per value (inputs at the left, the output at the right), its defining expression
under its name, solid arrows from the values it reads. Backward: dashed red arrows from each value back
to the values it was computed from, labelled with the local derivative the chain rule used (the page's
``local`` equations, SymPy's). Values forward saves for backward have a thick blue border. For an
optimizer or a schedule the graph is the data flow of its update equations (``m ← …`` makes a new
version of m).

Drawn with matplotlib rather than Graphviz: matplotlib is already a dependency of the examples and the
tests, needs no system binary (``dot``) on the user's or the CI machine, and writes byte-identical SVG
for the committed pages (fixed hash salt, no date; text as paths with the bundled DejaVu font) -- which
a Graphviz layout would only do for one exact ``dot`` version. The graphs are small DAGs, so a layered
layout (column = longest path from an input) is enough.
"""
from __future__ import annotations

import io

import sympy as sp

from .model import Document
from .render import inline_text, latex_of
from .symbols import Partial

FORWARD_ROLES = ("forward",)
UPDATE_ROLES = ("update", "variant", "schedule")


def _names(expr) -> list:
    out = []
    for a in sp.preorder_traversal(expr):
        if isinstance(a, sp.Indexed):
            out.append(str(a.base))
        elif isinstance(a, sp.Symbol) and not a.is_integer:
            out.append(a.name)
    return sorted(set(out))      # by name: Max(v, v_max) orders its arguments by hash


def _base(x) -> str:
    return str(x.base) if isinstance(x, sp.Indexed) else str(x)


def graph_of(doc: Document) -> dict:
    """``{"nodes": [(id, label, detail, kind)], "edges": [(src, dst, label, style)]}`` of a document."""
    nodes, edges, kind = {}, [], {}
    fwd = [e for e in doc.equations() if e.role in FORWARD_ROLES and e.defines]
    if fwd:
        defined = {e.defines for e in fwd}
        for e in fwd:
            for a in _names(e.rhs):
                if a not in defined and a not in nodes and a in (doc.inputs or [a]):
                    nodes[a] = (a, "", "input")
        for e in fwd:
            nodes[e.defines] = (e.defines, _math(e.rhs), "value")
            edges += [(a, e.defines, "", "forward") for a in _names(e.rhs) if a in nodes and a != e.defines]
        local = {}
        for e in doc.equations("local"):
            if isinstance(e.lhs, Partial):
                y, x = (_base(a) for a in e.lhs.args)
                local[(y, x)] = e.rhs                       # the last one is the form the engine used
        for (y, x), rhs in local.items():
            if y in nodes and x in nodes:
                edges.append((y, x, _math(rhs), "backward"))
        for s in doc.saved:
            if s in nodes:
                kind[s] = "saved"
    else:
        version: dict = {}
        for k, e in enumerate(doc.equations()):
            if e.role not in UPDATE_ROLES:
                continue
            lhs = _base(e.lhs)
            srcs = []
            for a in _names(e.rhs):
                if a not in version:
                    version[a] = a
                    nodes[a] = (a, "", "input")
                srcs.append(version[a])
            new = f"{lhs}#{k}"
            nodes[new] = (lhs, _math(e.rhs) + (f"   [{inline_text(e.when)}]" if e.when is not None else ""), "value")
            edges += [(s, new, "", "forward") for s in srcs]
            version[lhs] = new
    out = [(i, lab, det, kind.get(i, k)) for i, (lab, det, k) in nodes.items()]
    return {"nodes": out, "edges": edges}


def _math(expr) -> str:
    return "$%s$" % latex_of(expr)


def _layers(g) -> dict:
    depth = {i: 0 for i, *_ in g["nodes"]}
    for _ in range(len(depth)):
        changed = False
        for s, d, _lab, style in g["edges"]:
            if style == "forward" and depth[d] < depth[s] + 1:
                depth[d], changed = depth[s] + 1, True
        if not changed:
            break
    return depth


def to_svg(doc: Document, fmt: str = "svg"):
    """The graph of ``doc`` as SVG text (deterministic: the same document gives the same bytes)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    g = graph_of(doc)
    depth = _layers(g)
    cols: dict = {}
    for i, *_ in g["nodes"]:
        cols.setdefault(depth[i], []).append(i)
    width, height = max(cols) + 1 if cols else 1, max(len(c) for c in cols.values()) if cols else 1
    pos = {i: (3.2 * c, -1.6 * (r - (len(ids) - 1) / 2)) for c, ids in cols.items() for r, i in enumerate(ids)}
    info = {i: (lab, det, kind) for i, lab, det, kind in g["nodes"]}
    with matplotlib.rc_context({"svg.hashsalt": "symgrad", "svg.fonttype": "path", "font.size": 9,
                                "mathtext.fontset": "dejavusans"}):
        fig, ax = plt.subplots(figsize=(2.6 * width + 1, 1.35 * height + 1.4))
        for s, d, lab, style in g["edges"]:
            (x0, y0), (x1, y1) = pos[s], pos[d]
            back = style == "backward"
            ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                        arrowprops=dict(arrowstyle="-|>", color="#c0392b" if back else "#333333",
                                        linestyle="--" if back else "-", lw=1.0, shrinkA=22, shrinkB=22,
                                        connectionstyle="arc3,rad=%s" % (0.35 if back else 0.0)))
            if back and lab:
                mx, my = (x0 + x1) / 2, (y0 + y1) / 2 + 0.32 + 0.18 * abs(x1 - x0) / 3.2
                _text(ax, mx, my, lab, 9, "#c0392b")
        for i, (x, y) in pos.items():
            lab, det, kind = info[i]
            ec, lw = ("#1f5fa8", 2.6) if kind == "saved" else ("#333333", 1.0)
            fc = "#eef3fb" if kind == "input" else "white"
            ax.add_patch(FancyBboxPatch((x - 0.75, y - 0.28), 1.5, 0.56, boxstyle="round,pad=0.05",
                                        ec=ec, fc=fc, lw=lw))
            _text(ax, x, y + 0.06, _label(lab), 13, "black")
            if det:
                _text(ax, x, y - 0.5, det, 8.5, "#555555")
        ax.set_xlim(-1.3, 3.2 * (width - 1) + 1.3)
        ax.set_ylim(-0.8 * height - 1.2, 0.8 * height + 0.9)
        ax.axis("off")
        ax.text(0.0, 1.0, "solid: forward   dashed: backward (local derivative)   thick blue: saved for backward",
                transform=ax.transAxes, fontsize=7, color="#555555", va="top")
        buf = io.StringIO() if fmt == "svg" else io.BytesIO()
        fig.savefig(buf, format=fmt, metadata={"Date": None} if fmt == "svg" else None, bbox_inches="tight", dpi=80)
        plt.close(fig)
    return buf.getvalue()


def _label(name: str) -> str:
    return "$%s$" % latex_of(sp.Symbol(name.split("#")[0]))


def _text(ax, x, y, s, size, color):
    """Mathematics through mathtext; what mathtext cannot parse is shown as plain text."""
    from matplotlib.mathtext import MathTextParser
    try:
        MathTextParser("path").parse(s)
    except ValueError:
        s = s.replace("$", "").replace("\\", "")
    ax.text(x, y, s, ha="center", va="center", fontsize=size, color=color)
