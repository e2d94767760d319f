"""``symgrad.explain(NAME)``: the derivation of a kernel printed like a textbook (text, LaTeX, Markdown).

The printout is collected from the very objects that generate the kernel (``spec.derivation`` and the
kernel IR of ``symgrad.lower``), never from separately written formulas. One builder per kernel kind
(``BUILDERS``; layers, activations and losses share ``symgrad.explain.layers``); a new kind such as
optimizers registers its own with ``@register_builder("optimizer")``.

    >>> ex = symgrad.explain("dense_sigmoid", lang="zh")
    >>> print(ex)                      # Unicode text;  ex.latex(), ex.markdown()
"""
from __future__ import annotations

from typing import Callable

from ..errors import SymgradError
from .model import Document
from .render import FORMATS, RENDERERS, latex_document
from .strings import LANGS

BUILDERS: dict[str, Callable] = {}


def register_builder(*kinds: str):
    """Decorator: ``fn(spec, lang) -> Document`` explains every kernel of the given kinds."""
    def deco(fn):
        for k in kinds:
            BUILDERS[k] = fn
        return fn
    return deco


def _layers_builder(spec, lang):
    from .layers import build
    return build(spec, lang)


register_builder("layer", "activation", "loss")(_layers_builder)


@register_builder("optimizer")
def _optimizer_builder(spec, lang):
    from .optimizers import build
    return build(spec, lang)


@register_builder("schedule")
def _schedule_builder(spec, lang):
    from .schedules import build
    return build(spec, lang)


@register_builder("recurrent")
def _recurrent_builder(spec, lang):
    from .recurrent import build
    return build(spec, lang)


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
        from .render import eq_latex
        return "\n".join(f"$${eq_latex(e)}$$" for e in self.doc.equations())


def explain(name, lang: str = "en") -> Explanation:
    """Explain a registered kernel (by name) or a spec object: ``print(symgrad.explain("dense"))``."""
    from ..registry import REGISTRY
    if lang not in LANGS:
        raise ValueError(f"lang: expected one of {', '.join(LANGS)}, got {lang!r}")
    spec = REGISTRY.get(name) if isinstance(name, str) else name
    builder = BUILDERS.get(getattr(spec, "kind", None))
    if builder is None:
        raise SymgradError(f"explain: no explanation builder for kind {getattr(spec, 'kind', None)!r} "
                           f"(have: {', '.join(sorted(BUILDERS))})")
    return Explanation(builder(spec, lang), spec)


def explainable(names=None) -> list[str]:
    from ..registry import REGISTRY
    return [s.name for s in REGISTRY if s.kind in BUILDERS and (names is None or s.name in names)]


__all__ = ["BUILDERS", "Explanation", "explain", "explainable", "register_builder"]
