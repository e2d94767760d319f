"""NumPy target for optimizers and schedules: update equations -> ``templates/numpy/optimizer.py.j2``.

Per flag combination the equations are put in single-assignment form (temporaries and intermediate
values inlined, so only the final value of the parameter and of each state array is written),
CSE'd, and compiled by ``ufunc_chain`` into in-place ufunc calls over cache-sized blocks.
"""
from __future__ import annotations

import re

import sympy as sp
from sympy.printing.pycode import PythonCodePrinter

from ...codegen.printers import mathstr, pycode, pyscalar
from ...codegen.render import render
from .ufunc_chain import count_uses, compile_assignments

BLOCK = 32768
"""Elements per block: the chain of ufunc calls runs on one block at a time, so its operands stay in
cache (32768 float32 = 128 KiB per operand) and each array is streamed from memory once per step;
larger blocks spill the cache, smaller ones pay Python's per-call overhead (bench/bench_optim_numpy.py)."""


def ssa(spec, equations):
    """The equations as an ordered list of items ``(kind, symbol, version, expr)``.

    kind "store": the final value of the parameter or of a state array (``version`` names it for
    later equations); kind "scalar": the final value of a scalar state entry (``spec.scalar_state``),
    computed once per step from scalars (its old value is ``_old_<name>``, its new one ``version``,
    ``_new_<name>``, on both targets); kind "temp": an array value used more than once, held in a register (``symbol``
    names it). Every other intermediate value (a temporary used once, a scalar, an alias, an earlier
    value of the parameter or a state array) is substituted into the equations that use it.
    """
    s = vars(spec.symbols)
    persistent = [s[spec.param]] + [s[n] for n in spec.array_state]
    env = {s[n]: sp.Symbol(f"_old_{n}", real=True) for n in spec.scalar_state}
    scalars = {s["t"], *(s[h] for h in spec.step_hypers), *env.values()}
    last = {eq.lhs: k for k, eq in enumerate(equations)}
    items = []
    for k, eq in enumerate(equations):
        rhs = eq.rhs.xreplace(env)
        if eq.lhs.name in spec.scalar_state:
            if last[eq.lhs] == k:
                ver = sp.Symbol(f"_new_{eq.lhs.name}", real=True)
                items.append(("scalar", eq.lhs, ver, rhs))
                rhs = ver
                scalars.add(ver)
            env[eq.lhs] = rhs
        elif eq.lhs in persistent and last[eq.lhs] == k:
            ver = sp.Symbol(f"_new_{eq.lhs.name}", real=True)
            items.append(("store", eq.lhs, ver, rhs))
            env[eq.lhs] = ver
        elif _uses(eq.lhs, equations[k + 1:]) > 1 and not (
                rhs.free_symbols <= scalars or rhs.is_Symbol or (-rhs).is_Symbol):
            tmp = sp.Symbol(f"_y{len(items)}", real=True)
            items.append(("temp", tmp, None, rhs))
            env[eq.lhs] = tmp
        else:
            env[eq.lhs] = rhs
    return items


def _uses(sym, later) -> int:
    """How often the value just given to ``sym`` is read before ``sym`` is assigned again."""
    n = 0
    for eq in later:
        n += count_uses(eq.rhs, sym)
        if eq.lhs == sym:
            break
    return n


def pycond(e) -> str:
    """Python source for a SymPy Boolean of flags, hyperparameters and t (SymPy's Python printer,
    without the parentheses it puts around a lone relation)."""
    text = PythonCodePrinter().doprint(sp.sympify(e))
    depth = 0
    for i, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        if depth == 0 and i < len(text) - 1:
            return text
    return text[1:-1] if text.startswith("(") else text


def interval_check(name, iv) -> tuple[str, str]:
    """(Python condition, text) for ``name`` in the SymPy interval ``iv``."""
    lo = "-np.inf" if iv.inf == -sp.oo else repr(float(iv.inf))
    hi = "np.inf" if iv.sup == sp.oo else repr(float(iv.sup))
    lop = "<" if iv.left_open or iv.inf == -sp.oo else "<="
    hop = "<" if iv.right_open or iv.sup == sp.oo else "<="
    text = f"{'(' if lop == '<' else '['}{_num(iv.inf)}, {_num(iv.sup)}{')' if hop == '<' else ']'}"
    return f"{lo} {lop} {name} {hop} {hi}", text


def _num(x):
    return "inf" if x == sp.oo else "-inf" if x == -sp.oo else str(x)


def _requirement(r):
    got = ", ".join(f"{s.name}={{{s.name}!r}}" for s in sorted(r.condition.free_symbols, key=str))
    return {"cond": pycond(r.condition), "name": r.name, "message": f"{r.message}; got {got}"}


def scalar_updates(items) -> tuple[list, list]:
    """(the "scalar" items of ``ssa``, the other items)."""
    return [it for it in items if it[0] == "scalar"], [it for it in items if it[0] != "scalar"]


def variant_context(spec, k, variant):
    s = vars(spec.symbols)
    arrays = {s[spec.param]: "_p", s[spec.grad]: "_g"}
    arrays.update({s[n]: f"_s_{n}" for n in spec.array_state})
    updates, items = scalar_updates(ssa(spec, variant.equations))
    scalars = [s["t"]] + [s[h] for h in spec.step_hypers] + [sp.Symbol(f"_old_{n}", real=True)
                                                               for n in spec.scalar_state]
    chain = compile_assignments(items, scalars + [ver for _, _, ver, _ in updates], arrays)
    scalar_lines = [f"_old_{n} = float(_s_{n}_all[0])" for n in spec.scalar_state]
    for _, sym, ver, rhs in updates:  # once per step, before the element loop reads the new value
        scalar_lines += [f"{ver.name} = {pyscalar(rhs)}", f"_s_{sym.name}_all[0] = {ver.name}"]
    eqs = [f"{eq.lhs} <- {mathstr(eq.rhs)}" for eq in variant.equations]
    used = set(re.findall(r"\b_\w+", " ".join(chain.body)))
    views = [v for v in ["_p", "_g"] + [f"_s_{n}" for n in spec.array_state] if v in used]
    return {"views": views, "fn": f"_step_{k}", "flags": variant.flags, "key": tuple(v for _, v in variant.flags),
            "scalar_lines": scalar_lines,
            "hoisted": chain.hoisted, "body": chain.body, "nregs": chain.nregs, "eqs": eqs,
            "flagtext": ", ".join(f"{n}={v}" for n, v in variant.flags) or "(no flags)"}


def optimizer_context(spec) -> dict:
    variants = [variant_context(spec, k, v) for k, v in enumerate(spec.variants())]
    # variants whose code is identical share one function
    seen, dispatch = {}, []
    for v in variants:
        code = (tuple(v["scalar_lines"]), tuple(v["hoisted"]), tuple(v["body"]))
        if code not in seen:
            seen[code] = dict(v, combos=[])
        seen[code]["combos"].append(v["flagtext"])
        dispatch.append((v["key"], seen[code]["fn"]))
    hp = spec.hypers
    checks = []
    for n in spec.hypers:
        cond, text = interval_check(n, hp[n].valid)
        checks.append({"name": n, "cond": cond, "text": text})
    pname, gname = spec.meta["arg_names"]
    return dict(
        spec=spec, name=spec.name, pname=pname, gname=gname, block=BLOCK,
        doc=(spec.doc or spec.name).strip(),
        state=[(n, pycode(v)) for n, v in spec.state.items()], scalar_state=list(spec.scalar_state),
        init_hypers=[(n, hp[n].default_value()) for n in spec.init_hypers],
        step_hypers=[(n, hp[n].default_value()) for n in spec.step_hypers],
        flags=list(spec.flags.items()),
        step_kwargs=[f"{n}={'_REQUIRED' if v is None else repr(v)}" for n, v in
                     [(n, hp[n].default_value()) for n in spec.step_hypers] + list(spec.flags.items())],
        has_required=any(hp[n].default is None for n in spec.step_hypers),
        derived=[(n, pycond(c), pycond(c)) for n, c in spec.derived.items()],
        flag_names=spec.flag_names,
        checks=checks, init_checks=[c for c in checks if c["name"] in spec.init_hypers],
        step_checks=[c for c in checks if c["name"] not in spec.init_hypers],
        requires=[_requirement(r) for r in spec.requires],
        variants=variants, functions=list(seen.values()), dispatch=dispatch,
        nregs=max(v["nregs"] for v in variants),
    )


def optimizer_source(spec) -> str:
    return render(__package__, "optimizer.py.j2", ctx=optimizer_context(spec))


def schedule_source(spec) -> str:
    checks = [dict(zip(("cond", "text"), interval_check(n, h.valid)), name=n) for n, h in spec.args.items()]
    variants = [{"key": tuple(v for _, v in var.flags), "code": pycode(var.equations[0].rhs),
                 "eq": mathstr(var.equations[0].rhs),
                 "flagtext": ", ".join(f"{n}={v}" for n, v in var.flags) or "(no flags)"}
                for var in spec.variants()]
    return render(__package__, "schedule.py.j2", ctx=dict(
        spec=spec, name=spec.name, doc=(spec.doc or spec.name).strip(), checks=checks,
        args=[(n, h.default_value()) for n, h in spec.args.items()], flags=list(spec.flags.items()),
        variants=variants, requires=[_requirement(r) for r in spec.requires]))
