"""The explanation of an optimizer (and the EMA): symbols, state, hyperparameters, update equations.

Everything printed is a SymPy object of the spec: the state's initial values (``spec.state``), the
hyperparameters' defaults and valid intervals (``spec.hypers``), the run-time conditions
(``spec.derived``, ``spec.requires``) and the update equations of every flag combination
(``spec.variants()``). The variants are merged into one listing (``program``): each distinct equation
once, in an order every variant respects, marked with the condition under which it applies, which
``sympy.logic.SOPform`` computes from the variants that contain it (combinations without a rule are
don't-cares). Teaching facts (Adam's bias correction, TensorFlow's epsilon hat, torch vs CS231n
Nesterov) come from ``symgrad.derive.facts``; the EMA's worked example runs the generated kernel.
Symbols are shown in torch.optim's notation (``DISPLAY``; lr as eta, exp_avg as m), the code's names
beside them.
"""
from __future__ import annotations

import itertools

import sympy as sp

from .model import Code, Document, Equation, Heading, Para, Table, m
from .names import DISPLAY, display_map, number, rename
from .teaching import add_facts
from .typeset import textbook
from .textbook import add_optimizer_form
from .strings import Strings
from .strings_docs import description
from .strings_kinds import MEANING_EN, MEANING_ZH
from ..targets.numpy.optimizer import optimizer_context

def program(spec, expand_derived: bool = True):
    """``[(Eq, condition)]``: every variant's equations merged, each with the flag condition it needs.

    The condition is a SymPy Boolean of the flag symbols with derived flags replaced by their
    definitions (``momentum != 0``); ``True`` when every variant has the equation. None if the variants
    order their equations inconsistently (then each variant is listed separately).
    """
    variants = spec.variants()
    flags = [sp.Symbol(n) for n in spec.flag_names]
    nodes, first, edges = [], {}, set()
    for v in variants:
        seen = {}
        keys = []
        for eq in v.equations:
            k = (eq, seen.get(eq, 0))
            seen[eq] = k[1] + 1
            if k not in first:
                first[k] = len(nodes)
                nodes.append(k)
            keys.append(k)
        edges |= {(a, b) for a, b in zip(keys, keys[1:])}
    order, placed = [], set()
    while len(order) < len(nodes):
        ready = [k for k in nodes if k not in placed and all(a in placed for a, b in edges if b == k)]
        if not ready:
            return None
        pick = min(ready, key=lambda k: (k[0].lhs.name == spec.param, first[k]))   # state first, p last
        order.append(pick)
        placed.add(pick)
    present = {v.flags: v for v in variants}
    allc = list(itertools.product((0, 1), repeat=len(flags)))
    dont = [list(c) for c in allc if tuple(zip(spec.flag_names, map(bool, c))) not in present]
    derived = {sp.Symbol(n): c for n, c in spec.derived.items()}
    out = []
    for k in order:
        mins = [[int(b) for _, b in v.flags] for v in variants if any((eq, i) == k for i, eq in _numbered(v))]
        cond = sp.true if len(mins) == len(variants) else sp.logic.SOPform(flags, mins, dont)
        out.append((k[0], cond.xreplace(derived) if expand_derived else cond))
    return out


def _numbered(v):
    seen = {}
    for eq in v.equations:
        yield seen.get(eq, 0), eq
        seen[eq] = seen.get(eq, 0) + 1


def build(spec, lang: str = "en") -> Document:
    S = Strings(lang)
    meaning = MEANING_ZH if lang == "zh" else MEANING_EN
    doc = Document(spec.name, spec.kind, lang, S.text("title_optimizer", name=spec.name))
    first = description(spec, lang)
    if first:
        doc.add(Para(first))
    tracking = spec.meta.get("sanity") == "tracking"
    doc.add(Para(S("intro_average" if tracking else "intro_optimizer", name=spec.name)))
    sy = vars(spec.symbols)
    names = display_map([spec.param, spec.grad, "t", *spec.hypers, *spec.state])
    doc.symbols = {v: k for k, v in names.items()}
    words = list(spec.flag_names) + [n for n in names.values() if "_" in n and n not in DISPLAY.values()]
    D = lambda e: rename(e, names, words=words)  # noqa: E731
    code_arg = dict(zip((spec.param, spec.grad), spec.meta.get("arg_names", (spec.param, spec.grad))))

    doc.add(Heading(2, S.text("h_opt_symbols")))
    doc.add(Para(S("opt_symbols_intro")))
    rows = [[[m(D(sy[spec.param]))], [code_arg[spec.param]], [meaning.get(spec.param) or S.text("sym_p")]],
            [[m(D(sy[spec.grad]))], [code_arg[spec.grad]], [meaning.get(spec.grad) or S.text("sym_g")]],
            [[m(sy["t"])], ['state["step"]'], [S.text("sym_t")]]]
    if spec.param == "avg":
        rows[0][2], rows[1][2] = [meaning["avg"]], [meaning["x"]]
    doc.add(Table([S.text("col_symbol"), S.text("col_code"), S.text("col_meaning")], rows))

    doc.add(Heading(2, S.text("h_state")))
    if spec.state:
        doc.add(Para(S("state_intro")))
        doc.add(Table([S.text(k) for k in ("col_symbol", "col_code", "col_init", "col_meaning")],
                      [[[m(D(sy[n]))], [n], [m(D(v))], [meaning.get(n, "")]] for n, v in spec.state.items()]))
    else:
        doc.add(Para(S("state_none")))

    doc.add(Heading(2, S.text("h_hypers")))
    doc.add(Para(S("hypers_intro")))
    rows = []
    for n, h in spec.hypers.items():
        dflt = [S.text("required")] if h.default is None else [number(h.default)]
        extra = S.text("init_hyper") if n in spec.init_hypers else ""
        rows.append([[m(D(sy[n]))], [n], dflt, [m(h.valid)], [meaning.get(n, "") + extra]])
    doc.add(Table([S.text(k) for k in ("col_symbol", "col_code", "col_default", "col_valid", "col_meaning")], rows))

    if spec.flag_names:
        doc.add(Heading(2, S.text("h_flags")))
        doc.add(Para(S("flags_intro")))
        rows = [[[n], S("flag_bool", d=d), [meaning.get(n, "")]] for n, d in spec.flags.items()]
        rows += [[[n], [m(D(c))], [meaning.get(n, "")]] for n, c in spec.derived.items()]
        doc.add(Table([S.text("col_code"), S.text("col_when"), S.text("col_meaning")], rows))
        if spec.requires:
            doc.add(Para(S("requires_intro")))
            for r in spec.requires:
                doc.add(Para([f"{r.name}: ", m(D(r.condition)), f"  ({r.message})"]))

    doc.add(Heading(2, S.text("h_update")))
    arrays = [D(sy[n]) for n in (spec.param, spec.grad, *spec.state)]
    tb = lambda eq: textbook(D(eq.rhs), D(eq.lhs), arrays)  # noqa: E731 - beta1 m + (1 - beta1) g
    variants = spec.variants()
    prog = program(spec)
    if prog is not None:
        doc.add(Para(S("update_intro", k=len(variants))))
        for eq, cond in prog:
            doc.add(Equation(D(eq.lhs), tb(eq), [S.text("update_if")], defines=eq.lhs.name, role="update",
                             rel="<-", when=None if cond == sp.true else D(cond)))
    else:
        doc.add(Para(S("variants_list")))
        for v in variants:
            doc.add(Para([", ".join(f"{n}={b}" for n, b in v.flags) + ":"]))
            for eq in v.equations:
                doc.add(Equation(D(eq.lhs), tb(eq), defines=eq.lhs.name, role="variant", rel="<-"))

    add_facts(doc, spec, S, D)
    add_optimizer_form(doc, spec, S, D)
    _code(doc, spec, S, variants)
    doc.add(Para(S("code_note", name=spec.name)))
    return doc


def _code(doc, spec, S, variants):
    """The generated fused function that serves the default flags (derived flags False, t > 1)."""
    ctx = optimizer_context(spec)
    want = tuple(spec.flags.get(n, False) for n in spec.flag_names)
    fn = dict(ctx["dispatch"]).get(want, ctx["dispatch"][0][1])
    f = next(f for f in ctx["functions"] if f["fn"] == fn)
    doc.add(Heading(2, S.text("h_code_opt")))
    flags = ", ".join(f"{n}={v}" for n, v in zip(spec.flag_names, want)) or "(no flags)"
    doc.add(Para(S("code_opt", fn=fn, name=spec.name, flags=flags)))
    doc.add(Code([f"{n} = {c}" for n, c in f["hoisted"]] + list(f["body"])))
