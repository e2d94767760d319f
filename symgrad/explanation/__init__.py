"""``symgrad.explain(NAME)``: the derivation of a kernel printed like a textbook (text, LaTeX, Markdown).

The printout is collected from the very objects that generate the kernel (``spec.derivation`` and the
kernel IR of ``symgrad.ir.lower``), never from separately written formulas. One builder per kernel
kind, registered as the kind's ``explain`` rule (layers, activations and losses share ``layers.build``).

    >>> ex = symgrad.explain("dense_sigmoid", lang="zh")
    >>> print(ex)                      # Unicode text;  ex.latex(), ex.markdown()
"""
from __future__ import annotations

from ..errors import SymgradError
from ..registry import REGISTRY
from .layers import build as build_layer
from .model import Document, Equation, Heading
from .optimizers import build as build_optimizer
from .recurrent import build as build_recurrent
from .render import FORMATS, RENDERERS, latex_document
from .schedules import build as build_schedule
from .strings import LANGS, Strings

SUMMARY_SECTIONS = ("h_legend", "h_final", "h_saved", "h_bptt", "h_opt_symbols", "h_state", "h_hypers", "h_update",
                    "h_sched_formula")
from .render import eq_latex

REGISTRY.register_rule("explain", ("layer", "activation", "loss"))(build_layer)
REGISTRY.register_rule("explain", ("recurrent",))(build_recurrent)
REGISTRY.register_rule("explain", ("optimizer",))(build_optimizer)
REGISTRY.register_rule("explain", ("schedule",))(build_schedule)


class Explanation:
    """A derivation document; shows itself as text (``str``), LaTeX and Markdown (Jupyter too)."""

    def __init__(self, doc: Document, spec=None):
        self.doc, self.spec = doc, spec

    @property
    def name(self) -> str:
        return self.doc.name

    @property
    def lang(self) -> str:
        return self.doc.lang

    def render(self, format: str = "text") -> str:  # noqa: A002 - mirrors the CLI option
        if format not in RENDERERS:
            raise ValueError(f"format: expected one of {', '.join(FORMATS)}, got {format!r}")
        return RENDERERS[format](self.doc)

    def summary(self) -> "Explanation":
        """The board version: the legend, the final gradients (or update rule) and the saved values."""
        S = Strings(self.lang)
        keep = {S.text(k) for k in SUMMARY_SECTIONS}
        blocks, on, final = [], False, S.text("h_final")
        finals = [e for e in self.doc.equations("final")]
        for b in self.doc.blocks:
            if isinstance(b, Heading) and b.level == 2:
                on = b.text in keep
            if on and not (isinstance(b, Equation) and b.role == "final"):
                blocks.append(b)
            if isinstance(b, Heading) and b.text == final:
                blocks += finals          # every final gradient, also those computed in a step's last line
        d = self.doc
        return Explanation(Document(d.name, d.kind, d.lang, d.title, blocks, d.dims, d.symbols, d.saved, d.inputs),
                           self.spec)

    def text(self) -> str:
        return self.render("text")

    def latex(self, standalone: bool = False) -> str:
        frag = self.render("latex")
        return latex_document(frag, self.lang) if standalone else frag

    def markdown(self) -> str:
        return self.render("markdown")

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        return f"<symgrad explanation of {self.name} ({self.doc.kind}, {self.lang})>"

    def _repr_markdown_(self) -> str:
        return self.markdown()

    def _repr_latex_(self) -> str:
        """The display equations only (MathJax renders math, not sectioning commands)."""
        return "\n".join(f"$${eq_latex(e)}$$" for e in self.doc.equations())


def explain(name, lang: str = "en") -> Explanation:
    """Explain a registered kernel (by name) or a spec object: ``print(symgrad.explain("dense"))``."""
    if lang not in LANGS:
        raise ValueError(f"lang: expected one of {', '.join(LANGS)}, got {lang!r}")
    spec = REGISTRY.get(name) if isinstance(name, str) else name
    builder = REGISTRY.rule("explain", spec)
    if builder is None:
        raise SymgradError(f"explain: no explanation builder for kind {getattr(spec, 'kind', None)!r}")
    return Explanation(builder(spec, lang), spec)


def explainable(names=None) -> list[str]:
    return [s.name for s in REGISTRY if REGISTRY.rule("explain", s) is not None and (names is None or s.name in names)]


__all__ = ["Explanation", "explain", "explainable"]
