"""C target for optimizers and schedules: update equations -> ``templates/c/optimizer.{h,c}.j2``.

Per flag combination the equations go through the NumPy emitter's own steps (``numpy_optimizer.ssa``,
then ``ufunc_chain.cse_items``), so both targets compute the same CSE'd expressions. Every scalar-only
subexpression (``lr / (1 - beta1^t)``, ``1 / sqrt(1 - beta2^t)``) is computed once per call in double,
as the NumPy module computes it in Python floats, and rounded once to the kernel's type; the element
loop reads each array it needs once into a local, evaluates the CSE'd expressions, and writes each
updated array once: one fused pass over memory, no pow and no branch inside the loop.

One static C function per distinct rule (a branch-free loop vectorizes; identical rules share one),
and one public entry point per dtype, ``NAME_step_f32``/``_f64``, taking the flags as ints and
computing the derived ones (``weight_decay != 0``, ``t == 1``) as the NumPy module does.
"""
from __future__ import annotations

import itertools

import sympy as sp

from ...errors import SpecError
from ..numpy.optimizer import pycond, scalar_updates, ssa
from ...codegen.printers import C_TYPES, CPrinter, mathstr
from ...codegen.render import render
from ..numpy.ufunc_chain import cse_items
from .plan import CArg

REAL = {sfx: real for sfx, _, real in C_TYPES}
DTYPE = {sfx: dtype for sfx, dtype, _ in C_TYPES}


def step_args(spec) -> list[CArg]:
    """The public step function's arguments, in order (the plan a C driver or the ctypes wrapper uses)."""
    pname, gname = spec.meta["arg_names"]
    args = [CArg(pname, "param", doc=f"{pname} (n,): the parameter, updated in place"),
            CArg(gname, "grad", doc=f"{gname} (n,): its gradient, read")]
    for n, v in spec.state.items():
        if n in spec.scalar_state:
            args.append(CArg(n, "scalar_state", doc=f"{n} (): scalar state, one number, updated in place once per "
                                               f"call (initially {v})"))
        else:
            args.append(CArg(n, "state", doc=f"{n} (n,): state, updated in place (initially {v})"))
    args.append(CArg("n", "n", doc="n: number of elements"))
    args.append(CArg("t", "t", doc="t: the step count, 1 on the first step"))
    args += [CArg(h, "hyper", doc=f"{h}: hyperparameter") for h in spec.step_hypers]
    args += [CArg(f, "flag", doc=f"{f}: flag, 0 or 1") for f in spec.flags]
    return args


def _params(spec, sfx) -> list[str]:
    real = REAL[sfx]
    out = []
    for a in step_args(spec):
        out.append({"param": f"{real} *restrict {a.name}", "grad": f"const {real} *restrict {a.name}",
                    "state": f"{real} *restrict {a.name}", "n": "int64_t n", "t": "int64_t t",
                    "scalar_state": f"{real} *restrict {a.name}",
                    "hyper": f"double {a.name}", "flag": f"int {a.name}"}[a.role])
    return out


def ccond(e) -> str:
    """C source for a SymPy Boolean of flags, hyperparameters and t (SymPy's C99 printer)."""
    return CPrinter("float64").doprint(sp.sympify(e))


class UpdatePrinter(CPrinter):
    """The C printer with terms in the order given (``p - c*m/(...)``, as written) and
    ``x**(-1/2)`` as ``1/sqrt(x)`` (NumPy's ``1/np.sqrt(x)``, not ``pow``)."""

    def __init__(self, dtype="float64", refs=None):
        super().__init__(dtype, refs)
        self._settings["order"] = "none"

    def _print_Pow(self, e):
        if e.exp == sp.Rational(-1, 2):
            one = "1.0F" if self.dtype == "float32" else "1.0"
            return f"({one}/{self._print(sp.sqrt(e.base))})"
        return super()._print_Pow(e)


class _Loop:
    """The body of one variant's element loop for one dtype."""

    def __init__(self, spec, scalars, sfx):
        self.spec, self.scalars, self.sfx, self.real = spec, set(scalars), sfx, REAL[sfx]
        self.consts: list[tuple[str, str]] = []      # (name, C expression in double), per call
        self._const_names: dict = {}

    def is_scalar(self, e) -> bool:
        return e.free_symbols <= self.scalars

    def const(self, e):
        """A per-call constant of the kernel's type for the scalar expression ``e``."""
        e = sp.sympify(e)
        if e.is_Number:
            return e
        key = sp.srepr(e)
        if key not in self._const_names:
            name = f"_c{len(self._const_names)}"
            self._const_names[key] = sp.Symbol(name, real=True)
            self.consts.append((name, UpdatePrinter("float64").doprint(e)))
        return self._const_names[key]

    def lift(self, e):
        """``e`` with every maximal scalar subtree (and the scalar factors/terms of a product/sum)
        replaced by a per-call constant."""
        if self.is_scalar(e):
            return self.const(e)
        if e.is_Symbol:
            return e
        if e.is_Add or e.is_Mul:
            sc = [a for a in e.args if self.is_scalar(a)]
            rest = []
            for a in e.args:
                if self.is_scalar(a):
                    continue
                if e.is_Add and a.could_extract_minus_sign():
                    rest.append(sp.Mul(-1, self.lift(-a), evaluate=False))
                else:
                    rest.append(self.lift(a))
            if sc:
                c = self.const(e.func(*sc))
                rest = ([c] + rest) if e.is_Mul else (rest + [c])
            return e.func(*rest, evaluate=False)
        if e.is_Pow and e.exp.is_Number:
            return sp.Pow(self.lift(e.base), e.exp, evaluate=False)
        return e.func(*[self.lift(a) for a in e.args], evaluate=False)


def variant_code(spec, variant, sfx) -> dict:
    """Per-call constants and the loop body (C lines) of one flag combination for one dtype."""
    s = vars(spec.symbols)
    pname, gname = spec.meta["arg_names"]
    ptr = {s[spec.param]: pname, s[spec.grad]: gname, **{s[n]: n for n in spec.array_state}}
    updates, items = scalar_updates(ssa(spec, variant.equations))
    scalars = [s["t"]] + [s[h] for h in spec.step_hypers] + [sp.Symbol(f"_old_{n}", real=True)
                                                               for n in spec.scalar_state]
    scalars += [ver for _, _, ver, _ in updates]
    repl, reduced = cse_items(items)
    loop = _Loop(spec, scalars, sfx)
    # scalar state: read once, its new value computed once in double, stored once, before the loop
    prologue = [(f"_old_{n}", f"(double)*{n}") for n in spec.scalar_state]
    prologue += [(ver.name, CPrinter("float64").doprint(rhs)) for _, _, ver, rhs in updates]
    scalar_stores = [f"*{sym.name} = ({loop.real}){ver.name};" for _, sym, ver, _ in updates]
    pending = {}
    for sym, e in repl:
        if loop.is_scalar(e):
            prologue.append((sym.name, UpdatePrinter("float64").doprint(e)))
            loop.scalars.add(sym)
        else:
            pending[sym] = e
    refs = {a.name: f"{ptr[a]}_i" for a in ptr}
    for kind, sym, ver, _ in items:
        if kind == "store":
            refs[ver.name] = f"{ptr[sym]}_new"
    printer = UpdatePrinter(DTYPE[sfx], refs)
    body, done = [], set()

    def emit(name, e):
        body.append(f"const {loop.real} {refs.get(name, name)} = {printer.doprint(loop.lift(e))};")

    def need(e):
        for x in sorted(e.free_symbols & set(pending), key=lambda x: int(x.name[2:])):
            if x not in done:
                need(pending[x])
                emit(x.name, pending[x])
                done.add(x)

    stores = []
    for (kind, sym, ver, _), e in zip(items, reduced):
        need(e)
        if kind == "temp":
            emit(sym.name, e)
        else:
            emit(ver.name, e)
            stores.append(f"{ptr[sym]}[i] = {refs[ver.name]};")
    text = " ".join(body)
    loads = [f"const {loop.real} {refs[a.name]} = {ptr[a]}[i];" for a in ptr
             if _mentions(text, refs[a.name])]
    used = {ptr[a] for a in ptr if _mentions(" ".join(loads + stores), ptr[a])}
    unused = [a.name for a in step_args(spec) if a.role in ("param", "grad", "state", "hyper", "t")
              and a.name not in used and not _mentions(" ".join(c for _, c in loop.consts + prologue), a.name)]
    consts = [(n, c if sfx == "f64" else f"({loop.real})({c})") for n, c in loop.consts]
    updated = [ptr[sym] for kind, sym, _, _ in items if kind == "store"]
    return {"prologue": prologue, "consts": consts, "body": loads + body + stores, "unused": unused,
            "updated": updated, "scalar_stores": scalar_stores}


def _mentions(text, name) -> bool:
    import re
    return re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", text) is not None


def optimizer_context(spec) -> dict:
    flag_names = spec.flag_names
    functions, seen, dispatch = [], {}, []
    for v in spec.variants():
        codes = {sfx: variant_code(spec, v, sfx) for sfx in ("f32", "f64")}
        key = repr(sorted(codes.items()))
        flagtext = ", ".join(f"{n}={val}" for n, val in v.flags) or "(no flags)"
        if key not in seen:
            seen[key] = {"fn": f"{spec.name}_step{len(functions)}", "codes": codes, "combos": [],
                         "eqs": [f"{eq.lhs} <- {mathstr(eq.rhs)}" for eq in v.equations]}
            functions.append(seen[key])
        seen[key]["combos"].append(flagtext)
        cond = " && ".join(n if val else f"!{n}" for n, val in v.flags) or "1"
        dispatch.append((cond, seen[key]["fn"]))
    args = step_args(spec)
    return dict(
        spec=spec, name=spec.name, doc=(spec.doc or spec.name).strip().splitlines()[0],
        rule=_rule(spec.doc), guard=f"SYMGRAD_{spec.name.upper()}_H",
        args=args, params={sfx: _params(spec, sfx) for sfx in ("f32", "f64")},
        vparams={sfx: [p for p, a in zip(_params(spec, sfx), args) if a.role != "flag"] for sfx in ("f32", "f64")},
        call=", ".join(a.name for a in args if a.role != "flag"),
        derived=[(n, ccond(c), pycond(c)) for n, c in spec.derived.items()],
        functions=functions, dispatch=dispatch, flag_names=flag_names,
        init_hypers=spec.init_hypers,
        helpers=_helpers(functions),
    )


def _rule(doc) -> list[str]:
    lines = (doc or "").strip().splitlines()[1:]
    while lines and not lines[0].strip():
        lines.pop(0)
    return lines


def _helpers(functions) -> dict:
    text = " ".join(l for f in functions for c in f["codes"].values() for l in c["body"])
    return {h: f"sg_{h}_" in text for h in ("max", "min", "sigmoid", "softplus", "heaviside", "sign")} | {"gemm": False}


def optimizer_sources(spec) -> dict[str, str]:
    ctx = optimizer_context(spec)
    return {f"c/{spec.name}.h": render(__package__, "optimizer.h.j2", ctx=ctx),
            f"c/{spec.name}.c": render(__package__, "optimizer.c.j2", ctx=ctx)}


def schedule_sources(spec) -> dict[str, str]:
    """``NAME_value(args..., flags...)`` in double: the schedule's formula per flag combination."""
    p = UpdatePrinter("float64")
    variants = []
    for var in spec.variants():
        cond = " && ".join(n if val else f"!{n}" for n, val in var.flags) or "1"
        rhs = var.equations[0].rhs
        variants.append({"cond": cond, "code": p.doprint(rhs), "eq": mathstr(rhs),
                         "flagtext": ", ".join(f"{n}={v}" for n, v in var.flags) or "(no flags)"})
    params = [f"double {n}" for n in spec.args] + [f"int {n}" for n in spec.flags]
    ctx = dict(spec=spec, name=spec.name, doc=(spec.doc or spec.name).strip().splitlines()[0],
               rule=_rule(spec.doc), guard=f"SYMGRAD_{spec.name.upper()}_H",
               params=params, variants=variants, args=list(spec.args), flags=list(spec.flags))
    return {f"c/{spec.name}.h": render(__package__, "schedule.h.j2", ctx=ctx),
            f"c/{spec.name}.c": render(__package__, "schedule.c.j2", ctx=ctx)}


def driver_cases(spec, candidates=(None, 0.0, 0.5)) -> list[tuple[dict, int]]:
    """For every variant, hyperparameters and a step count t that select it (for a C test driver):
    [(hyper values incl. flags, t), ...], each value drawn from the default, 0 and 0.5 within range."""
    s = vars(spec.symbols)
    choices = []
    for h in spec.step_hypers:
        hp = spec.hypers[h]
        vals = [hp.default_value() if c is None else c for c in candidates]
        vals = [v for v in vals if v is not None and sp.Float(v) in hp.valid] or [float(hp.valid.inf) + 0.5]
        choices.append(list(dict.fromkeys(vals)))
    out = []
    for v in spec.variants():
        want = dict(v.flags)
        found = None
        for vals in itertools.product(*choices):
            for t in (1, 2, 8):  # 8: late enough for a rule of later steps (radam rectified at rho_t > 5)
                env = {s[h]: sp.Float(x) for h, x in zip(spec.step_hypers, vals)}
                env[s["t"]] = t
                env.update({s[f]: sp.true if want[f] else sp.false for f in spec.flags})
                if all(bool(c.subs(env)) == want[n] for n, c in spec.derived.items()) and \
                        all(bool(r.condition.subs(env)) for r in spec.requires):
                    found = ({**dict(zip(spec.step_hypers, vals)), **{f: want[f] for f in spec.flags}}, t)
                    break
            if found:
                break
        if found:
            out.append(found)
    return out
