"""The explanation of a recurrent layer (the LSTM): one time step in full, then through time.

The cell (``spec.cell``, a ``LayerSpec``) is explained by the layer builder, so its forward equations,
chain-rule steps (``spec.cell.derivation.steps``: slices of the stacked gates and their transposes, the
blocks ``dgates = [dz_i | dz_f | dz_g | dz_o]``), simplifications and saved values are the objects
that generate the kernel. Then back-propagation through time: the cell's upstream gradients at step t
(``dh_new[t] = dhs[t] + dh[t + 1]``), the parameter gradients summed over t (the cell's gradient with a
time index on every per-step value, ``dW_ih = sum_t sum_n dgates[t] x[t]``) and the sequence gradients,
all SymPy objects built from the cell's final gradients; and what ``symgrad.ir.recurrent.plan``
moves out of the loop, with the generated statements (``symgrad.targets.numpy.recurrent.context``).
"""
from __future__ import annotations

import sympy as sp

from ..ir.lower import lower
from ..spec import tensor as T
from .layers import PageBuilder
from .model import Code, Document, Equation, Heading, Para, Table, m
from .notation import Notation, Partial
from .gradients import shape_math
from .strings import Strings
from .textbook import add_recurrent_form
from .strings_docs import description
from ..targets.numpy.recurrent import context


def build(spec, lang: str = "en") -> Document:
    S = Strings(lang)
    cell = spec.cell
    kernel = lower(cell)
    nt = Notation(cell, kernel)
    tname = next(c for c in "tsuvw" if c not in nt.taken)
    nt.taken.add(tname)
    t = sp.Symbol(tname, integer=True)
    doc = Document(spec.name, spec.kind, lang, S.text("title", name=spec.name))
    first = description(spec, lang)
    if first:
        doc.add(Para(first))
    doc.add(Para(S("intro_recurrent", name=spec.name)))
    B = PageBuilder(cell, nt, S, doc, kernel)
    B.legend()
    dims = next(b for b in doc.blocks if isinstance(b, Table))
    seq = spec.sequence[0]
    dims.rows.insert(0, [[m(spec.time, text=str(spec.time))], [m(t)], S("dim_time", seq=m(sp.Symbol(seq)))])
    _sequence(doc, spec, S)
    B.forward("h_forward_step")
    _gates(doc, cell, nt, S)
    B.backward("h_backward_step")
    B.simplifications()
    B.final()
    _bptt(doc, spec, nt, S, t)
    _plan(doc, spec, S, nt)
    B.saved()
    add_recurrent_form(doc, cell, nt, S)
    doc.dims = {i: dd for dd, i in nt.index.items()}
    doc.dims[t] = spec.time
    doc.add(Para(S("code_note", name=spec.name)))
    return doc


def _sequence(doc, spec, S):
    cell = spec.cell
    doc.add(Heading(2, S.text("h_seq")))
    doc.add(Para(S("seq_intro")))
    rows = []
    for i in spec.inputs:
        if i.name in spec.sequence:
            role = S("seq_input", x=i.name)
        elif i.name[:-1] in spec.state:
            role = S("seq_state0", s=i.name[:-1])
        else:
            role = S("seq_param")
        rows.append([[i.name], [shape_math(i.shape, S)], role])
    outs = dict(zip(spec.state, cell.outputs))
    for o in spec.outputs:
        rows.append([[o + "s"], [shape_math((spec.time,) + outs[o].shape, S)], S("seq_outs", s=outs[o].name)])
    for s in spec.state:
        rows.append([[s + "T"], [shape_math(outs[s].shape, S)], S("seq_final")])
    doc.add(Table([S.text("col_code"), S.text("col_shape"), S.text("col_meaning")], rows))


def _gates(doc, cell, nt, S):
    slices = [n for n in cell.derivation.forward_nodes if isinstance(n, T.Slice)]
    if not slices:
        return
    src = slices[0].args[0]
    if any(s.args[0] is not src for s in slices):
        return
    parts = []
    for s in sorted(slices, key=lambda s: sp.default_sort_key(s.start)):
        parts += [m(sp.Symbol(nt.name(s)), text=nt.name(s)), f" = {nt.name(src)}[..., {s.start}:{s.stop}]", ", "]
    doc.add(Para(S("gates_intro", g=nt.name(src), w=m(slices[0].shape[-1], text=str(slices[0].shape[-1])),
                   parts=parts[:-1])))


def _timed(expr, t, per_step: set):
    """``expr`` with the time index ``t`` put first on every per-step array (not on parameters)."""
    return expr.replace(lambda e: isinstance(e, sp.Indexed) and str(e.base) in per_step,
                        lambda e: e.base[(t,) + tuple(e.indices)])


def _bptt(doc, spec, nt, S, t):
    cell = spec.cell
    d = cell.derivation
    doc.add(Heading(2, S.text("h_bptt")))
    h, c = (spec.state + ("",))[:2]
    doc.add(Para(S("bptt_intro", h=h, c=c or h)))
    outs = dict(zip(spec.state, cell.outputs))
    ups = {g.upstream_of.id: g for g in d.grad_inputs}
    for s in spec.state:
        o = outs[s]
        g = ups[o.id]
        idx = nt.idx(o.shape)
        nxt = sp.IndexedBase("d" + s)[(t + 1,) + tuple(idx)]
        rhs = nxt + sp.IndexedBase("d" + s + "s")[(t,) + tuple(idx)] if s in spec.outputs else nxt
        doc.add(Equation(sp.IndexedBase(g.name)[(t,) + tuple(idx)], rhs, defines=g.name, indices=(t,) + tuple(idx),
                         role="bptt"))
    doc.add(Para(S("bptt_start", h="d" + h, c="d" + (c or h), hT="d" + h + "T", cT="d" + (c or h) + "T")))
    for s in spec.state:
        idx = nt.idx(outs[s].shape)
        lhs = Partial(sp.Symbol("L"), sp.IndexedBase(s + "0")[tuple(idx)])     # the gradient of the initial state
        doc.add(Equation(lhs, sp.IndexedBase("d" + s)[(0,) + tuple(idx)],
                         defines="d" + s + "0", indices=tuple(idx), role="bptt"))
    params = [i for i in cell.diff_inputs if i.name not in spec.state and i.name not in spec.sequence]
    seqs = [i for i in cell.diff_inputs if i.name in spec.sequence]
    named = {e.defines: e for e in doc.equations("final")}
    per_step = {nt.names[n.id] for n in d.forward_nodes if n.name not in {p.name for p in params}}
    per_step |= {nt.names[a.id] for a in d.adjoints.values() if a.id in nt.names}
    per_step |= {g.name for g in d.grad_inputs}
    for group, key, summed in ((params, "bptt_params", True), (seqs, "bptt_seq", False)):
        if not group:
            continue
        doc.add(Para(S(key)))
        for i in group:
            e = named.get("d" + i.name)
            if e is None:
                continue
            rhs = _timed(e.rhs, t, per_step)
            idx = tuple(e.indices)
            if summed:
                rhs = sp.Sum(rhs, (t, 0, spec.time - 1))
            else:
                idx = (t,) + idx
            lhs = sp.IndexedBase(e.defines)[idx] if idx else sp.Symbol(e.defines)
            doc.add(Equation(lhs, rhs, defines=e.defines, indices=idx, role="bptt"))


def _plan(doc, spec, S, nt):
    ctx = context(spec)
    p = ctx["p"]
    doc.add(Heading(2, S.text("h_plan")))
    temps = sorted(((code, nid) for nid, code in ctx["k"].node_names.items() if code[:1] == "t" and code[1:].isdigit()),
                   key=lambda cn: int(cn[0][1:]))
    names = [[code, " = ", m(sp.Symbol(nt.names[nid]), text=nt.names[nid]), ", "] for code, nid in temps
             if nid in nt.names]
    for key, lines in (("plan_intro", ctx["pre"]), ("plan_loop", ctx["fwd"]), ("plan_bloop", ctx["bwd"])):
        doc.add(Para(S(key)))
        doc.add(Code(lines) if lines else Para(S("plan_none")))
    doc.add(Para(S("plan_post", stacked=", ".join(p.post_inputs))))
    doc.add(Code(ctx["post"]) if ctx["post"] else Para(S("plan_none")))
    if names:
        doc.add(Para(S("plan_names", names=[p for row in names for p in row][:-1])))
