"""The explanation of a schedule (``exponential_decay``): arguments, one formula per flag value, values.

The formulas are ``spec.variants()`` (the SymPy objects that generate ``value``), printed with lr as
eta like the optimizer pages; the table of values is computed by the generated kernel
(``symgrad.load(name).value``), so the smooth and the staircase form can be compared step by step.
"""
from __future__ import annotations

from ..runtime import load
from .model import Document, Equation, Heading, Para, Table, m
from .names import display_map, number, rename
from .strings import Strings
from .strings_docs import description
from .strings_kinds import MEANING_EN, MEANING_ZH

EXAMPLE = {"lr": 0.1, "decay_steps": 3.0, "decay_rate": 0.5}
STEPS = tuple(range(8))


def example_values(spec, args=None, steps=STEPS) -> dict:
    """{flags tuple: [value at each global_step]} from the generated kernel."""
    k = load(spec.name)
    args = dict(EXAMPLE if args is None else args)
    out = {}
    for v in spec.variants():
        out[v.flags] = [k.value(**{**args, "global_step": float(s)}, **dict(v.flags)) for s in steps]
    return out


def build(spec, lang: str = "en") -> Document:
    S = Strings(lang)
    meaning = MEANING_ZH if lang == "zh" else MEANING_EN
    doc = Document(spec.name, spec.kind, lang, S.text("title_schedule", name=spec.name))
    first = description(spec, lang)
    if first:
        doc.add(Para(first))
    doc.add(Para(S("intro_schedule", name=spec.name)))
    names = display_map(list(spec.args))
    words = [v for v in names.values() if "_" in v]
    doc.symbols = {v: k for k, v in names.items()}
    sy = vars(spec.symbols)

    doc.add(Heading(2, S.text("h_hypers")))
    rows = []
    for n, h in spec.args.items():
        dflt = [S.text("required")] if h.default is None else [number(h.default)]
        rows.append([[m(rename(sy[n], names, words))], [n], dflt, [m(h.valid)], [meaning.get(n, "")]])
    for n, d in spec.flags.items():
        rows.append([[n], [n], [str(d)], ["True, False"], [meaning.get(n, "")]])
    doc.add(Table([S.text(k) for k in ("col_symbol", "col_code", "col_default", "col_valid", "col_meaning")], rows))

    doc.add(Heading(2, S.text("h_sched_formula")))
    for v in spec.variants():
        eq = v.equations[0]
        flags = ", ".join(f"{n} = {b}" for n, b in v.flags)
        doc.add(Para(S("sched_variant", flags=flags)))
        doc.add(Equation(eq.lhs, rename(eq.rhs, names, words), defines=str(eq.lhs), role="schedule",
                         note=list(v.flags)))
    doc.add(Para(S("sched_note")))

    if all(a in spec.args for a in EXAMPLE) and "global_step" in spec.args:
        vals = example_values(spec)
        doc.add(Heading(2, S.text("h_worked")))
        args = ", ".join(f"{k} = {v:g}" for k, v in EXAMPLE.items())
        doc.add(Para(S("sched_worked", name=spec.name, args=args)))
        header = [S.text("col_global_step")] + [", ".join(f"{n}={b}" for n, b in f) for f in vals]
        rows = [[[str(s)]] + [[f"{vals[f][i]:.6g}"] for f in vals] for i, s in enumerate(STEPS)]
        doc.add(Table(header, rows))
    doc.add(Para(S("code_note", name=spec.name)))
    return doc
