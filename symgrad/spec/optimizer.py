"""Optimizer and schedule specs: update rules as SymPy equations (what users write).

    @symgrad.optimizer(hypers={"lr": symgrad.hparam(1e-2, "[0, inf)"),
                               "mu": symgrad.hparam(0.9, "[0, 1)")},
                       state={"buf": 0}, flags={"nesterov": False})
    def heavy_ball(s, nesterov):
        "buf = mu*buf + g;  p = p - lr*buf (or lr*(g + mu*buf) with nesterov)"
        buf = s.mu * s.buf + s.g
        return [(s.buf, buf), (s.p, s.p - s.lr * (s.g + s.mu * buf if nesterov else buf))]

The rule function gets a namespace ``s`` of SymPy symbols (param ``p``, gradient ``g``, step count
``t`` starting at 1, every state entry and hyperparameter) and one Python bool per structural flag;
it returns the update equations ``[(target, expr), ...]`` applied in order (a target is ``s.p``, a
state symbol, or a temporary such as ``s.g``; later equations see the new value). Flags are boolean
hyperparameters (``flags``) or conditions on hyperparameters and t (``derived``, e.g.
``lambda s: sympy.Ne(s.momentum, 0)``); the generated module holds one fused step per distinct rule
and dispatches at run time. State initial values are numbers or hyperparameters; a hyperparameter
used there goes to ``init(param, name=...)``, not to ``step``.
"""
from __future__ import annotations

import inspect
import itertools
import re
from dataclasses import dataclass, field
from types import SimpleNamespace

import sympy as sp

from ..errors import SpecError
from ..registry import REGISTRY
from .tensor import check_identifier, check_kernel_name

_INTERVAL = re.compile(r"^\s*([\[(])\s*([^,]+?)\s*,\s*([^,]+?)\s*([\])])\s*$")


@dataclass(frozen=True)
class HParam:
    """A scalar hyperparameter: default (None = required) and valid range (a SymPy Interval)."""
    default: float | None
    valid: sp.Interval = sp.Interval(-sp.oo, sp.oo)

    def default_value(self):
        return None if self.default is None else float(self.default)


def hparam(default=None, valid="(-oo, oo)") -> HParam:
    """Declare an optimizer or schedule hyperparameter.

    Args:
        default: a number, or None for a required one.
        valid: the valid range, interval text (``"[0, 1)"``, ``"(0, inf)"``) or a SymPy Interval;
            a value outside raises ValueError at run time.

    Shape: a scalar (a Python float at run time).

    Example::

        hypers = dict(lr=symgrad.hparam(1e-3, "[0, inf)"), beta=symgrad.hparam(0.9, "[0, 1)"))
    """
    if isinstance(valid, str):
        m = _INTERVAL.match(valid.replace("inf", "oo"))
        if not m:
            raise SpecError(f"valid: expected an interval like '[0, 1)', got {valid!r}")
        lo, hi = sp.sympify(m.group(2)), sp.sympify(m.group(3))
        valid = sp.Interval(lo, hi, left_open=m.group(1) == "(", right_open=m.group(4) == ")")
    if valid == sp.S.Reals:
        valid = sp.Interval(-sp.oo, sp.oo)
    if not isinstance(valid, sp.Interval) or not all(b.is_number for b in (valid.inf, valid.sup)):
        raise SpecError(f"valid: expected an interval with numeric bounds, got {valid!r}")
    if default is not None and (isinstance(default, bool) or not isinstance(default, (int, float))):
        raise SpecError(f"default: expected a number or None, got {default!r}")
    if default is not None and sp.Float(default) not in valid:
        raise SpecError(f"default {default!r} is outside the valid range {valid}")
    return HParam(default, valid)


@dataclass(frozen=True)
class ScalarState:
    """State that is one number per parameter tensor (torch's NAdam ``mu_product``), not one per element."""
    init: object = 0


def scalar(init=0) -> ScalarState:
    """Scalar optimizer state: ``state=dict(mu_product=symgrad.scalar(1.0))``.

    Args:
        init: the initial value, a number or the name of a hyperparameter.

    Shape: ``init()`` stores a 0-d array of the parameter's dtype, one per parameter tensor; the rule
    updates it once per step, from hyperparameters, ``t`` and scalar state only (never from arrays),
    and the element-wise updates after it read its new value.

    Example::

        @symgrad.optimizer(hypers=dict(lr=0.1, decay=0.9), state=dict(scale=symgrad.scalar(1.0)))
        def decayed_sgd(s):
            return [(s.scale, s.scale * s.decay), (s.p, s.p - s.lr * s.scale * s.g)]
    """
    if isinstance(init, bool) or not isinstance(init, (int, float, str)):
        raise SpecError(f"scalar: init: expected a number or a hyperparameter name, got {init!r}")
    return ScalarState(init)


@dataclass(frozen=True)
class Requirement:
    """A condition on hyperparameters; violating it raises ValueError naming ``name``."""
    name: str
    condition: sp.Basic
    message: str


@dataclass(frozen=True)
class Variant:
    """One fused step: the flag values it serves and its update equations (SymPy ``Eq``s)."""
    flags: tuple          # ((flag name, bool), ...) in declaration order
    equations: tuple      # (Eq(target, expr), ...) applied in order


@dataclass(eq=False)
class OptimizerSpec:
    """A registered optimizer: symbols, hyperparameters, state and its rule per flag combination."""
    name: str
    kind: str
    rule: object
    hypers: dict                 # name -> HParam, in declaration order
    flags: dict                  # name -> default bool (boolean hyperparameters)
    derived: dict                # name -> SymPy Boolean of hypers and t
    state: dict                  # name -> SymPy init value (number or hyper symbol)
    requires: list
    symbols: SimpleNamespace
    param: str = "param"
    grad: str = "grad"
    doc: str = ""
    meta: dict = field(default_factory=dict)
    scalar_state: tuple = ()     # names of the state entries that are one number per tensor

    @property
    def array_state(self) -> list[str]:
        """State entries with one value per element of the parameter."""
        return [n for n in self.state if n not in self.scalar_state]

    @property
    def init_hypers(self) -> list[str]:
        used = {s.name for v in self.state.values() for s in sp.sympify(v).free_symbols}
        return [h for h in self.hypers if h in used]

    @property
    def step_hypers(self) -> list[str]:
        return [h for h in self.hypers if h not in self.init_hypers]

    @property
    def flag_names(self) -> list[str]:
        return list(self.flags) + list(self.derived)

    def equations(self, **flags) -> tuple:
        """The update equations for one flag combination (every flag must be given)."""
        missing = set(self.flag_names) - set(flags)
        if missing:
            raise SpecError(f"{self.name}: flags {sorted(missing)} not given")
        out = self.rule(self.symbols, **{k: bool(flags[k]) for k in self.flag_names})
        if out is None:
            return None
        return tuple(_as_eq(self, e) for e in out)

    def variants(self) -> list[Variant]:
        """Every flag combination whose rule is defined, in a fixed order."""
        names = self.flag_names
        res = []
        for values in itertools.product((False, True), repeat=len(names)):
            eqs = self.equations(**dict(zip(names, values)))
            if eqs is not None:
                res.append(Variant(tuple(zip(names, values)), eqs))
        return res





def _as_eq(spec, e):
    if isinstance(e, sp.Eq):
        lhs, rhs = e.lhs, e.rhs
    else:
        try:
            lhs, rhs = e
        except (TypeError, ValueError):
            raise SpecError(f"{spec.name}: an update is (target, expr), got {e!r}") from None
    if not isinstance(lhs, sp.Symbol):
        raise SpecError(f"{spec.name}: update target must be a symbol, got {lhs!r}")
    return sp.Eq(lhs, sp.sympify(rhs), evaluate=False)


class Symbols(SimpleNamespace):
    """The SymPy symbols a rule may use, by name; a misspelt name is a SpecError, not an AttributeError."""

    def __getattr__(self, item):
        if item.startswith("__"):
            raise AttributeError(item)
        raise SpecError(f"unknown symbol {item!r} in an update rule; known: {', '.join(vars(self))}")


def _namespace(param, grad, hypers, flags, derived_names, state):
    ns = {param: sp.Symbol(param, real=True), grad: sp.Symbol(grad, real=True),
          "t": sp.Symbol("t", integer=True, positive=True)}
    for n in hypers:
        ns[n] = sp.Symbol(n, real=True)
    for n in list(flags) + list(derived_names):
        ns[n] = sp.Symbol(n)
    for n in state:
        ns[n] = sp.Symbol(n, real=True)
    return Symbols(**ns)


def _validate(spec: OptimizerSpec):
    s = vars(spec.symbols)
    known = {spec.param, spec.grad, "t", *spec.hypers, *spec.flags, *spec.derived, *spec.state}
    if len(known) != 3 + len(spec.hypers) + len(spec.flags) + len(spec.derived) + len(spec.state):
        raise SpecError(f"{spec.name}: parameter, gradient, 't', hyperparameter, flag and state names "
                        f"must all differ")
    for n in known:
        check_identifier(n, f"{spec.name}: name")
    for n in known:  # the C step names an array's element ``<array>_i`` and its new value ``<array>_new``
        for suffix in ("_i", "_new"):
            if n.endswith(suffix) and n[: -len(suffix)] in {spec.param, spec.grad, *spec.state}:
                raise SpecError(f"{spec.name}: name {n!r} is what the generated C step calls an element "
                                f"of {n[: -len(suffix)]!r}; choose another name")
    arrays = {s[spec.param], s[spec.grad], *(s[n] for n in spec.array_state)}
    scalars = {s["t"], *(s[h] for h in spec.step_hypers)}
    scalar_state = {s[n] for n in spec.scalar_state}
    for n, cond in spec.derived.items():
        bad = set(cond.free_symbols) - scalars
        if bad:
            raise SpecError(f"{spec.name}: derived flag {n!r} may use only hyperparameters and t, "
                            f"uses {sorted(map(str, bad))}")
    variants = spec.variants()
    if not variants:
        raise SpecError(f"{spec.name}: the rule returns None for every flag combination")
    for v in variants:
        defined = set(arrays) | scalar_state
        for eq in v.equations:
            if eq.lhs in scalar_state and not eq.rhs.free_symbols <= scalars | scalar_state:
                raise SpecError(f"{spec.name} {dict(v.flags)}: scalar state {eq.lhs} = {eq.rhs} may use only "
                                f"hyperparameters, t and scalar state, uses "
                                f"{sorted(map(str, eq.rhs.free_symbols - scalars - scalar_state))}")
            bad = set(eq.rhs.free_symbols) - defined - scalars
            if bad:
                raise SpecError(f"{spec.name} {dict(v.flags)}: {eq.lhs} = {eq.rhs} uses undefined "
                                f"symbol(s) {sorted(map(str, bad))}")
            if eq.lhs in scalars or eq.lhs.name in spec.flag_names:
                raise SpecError(f"{spec.name}: cannot assign to {eq.lhs} (a hyperparameter, flag or t)")
            defined.add(eq.lhs)
        if not any(eq.lhs == s[spec.param] for eq in v.equations):
            raise SpecError(f"{spec.name} {dict(v.flags)}: the rule never updates {spec.param}")


def optimizer(name: str | None = None, *, hypers: dict, state: dict | None = None,
              flags: dict | None = None, derived: dict | None = None, requires=(),
              param: str = "p", grad: str = "g", examples=None, sanity: str = "descent",
              register: bool = True, replace: bool = False):
    """Decorator: declare an optimizer by its update rule ``fn(s, **flags) -> [(target, expr), ...]``.

    ``hypers``: name -> ``hparam(default, valid)``; ``state``: name -> initial value (a number or a
    hyperparameter name); ``flags``: boolean hyperparameters -> default; ``derived``: name ->
    ``lambda s: condition`` (SymPy) selecting a variant at run time; ``requires``: ``(name, lambda s:
    condition, message)`` checks raising ValueError; ``param``/``grad``: symbol names of the updated
    array and its input (step's argument names are ``param``/``grad`` for ``p``/``g``);
    ``examples``: hyperparameter sets ``symgrad check`` runs (default: the defaults, and each flag on);
    ``register``/``replace``: add it to ``symgrad.REGISTRY`` (replacing a kernel of that name);
    ``sanity``: what that check expects, "descent" (f decreases on a quadratic, the gradient as grad)
    or "tracking" (an average of a constant signal converges to it). State entries made with
    ``symgrad.scalar(init)`` are one number per parameter tensor (a 0-d array), updated once per step.

    Shapes: ``param``, ``grad`` and every state array have the parameter's shape (any shape).

    Example::

        @symgrad.optimizer(hypers=dict(lr=symgrad.hparam(1e-2, "[0, inf)")), state=dict(buf=0))
        def sgd_momentum(s):
            "buf = 0.9 buf + g; p = p - lr buf"
            return [(s.buf, 0.9 * s.buf + s.g), (s.p, s.p - s.lr * s.buf)]
    """
    def deco(fn):
        nm = name or fn.__name__
        check_kernel_name(nm, "optimizer name")
        hp = {}
        for k, v in hypers.items():
            hp[k] = v if isinstance(v, HParam) else hparam(v)
        fl = {k: bool(v) for k, v in (flags or {}).items()}
        st = dict(state or {})
        sig = inspect.signature(fn)
        want = [p for p in sig.parameters][1:]
        ns = _namespace(param, grad, hp, fl, list(derived or {}), st)
        der = {k: sp.sympify(f(ns)) for k, f in (derived or {}).items()}
        if sorted(want) != sorted(list(fl) + list(der)):
            raise SpecError(f"{nm}: the rule takes (s, {', '.join(list(fl) + list(der))}), "
                            f"has parameters {list(sig.parameters)}")
        init, scalars = {}, []
        for k, v in st.items():
            if isinstance(v, ScalarState):
                scalars.append(k)
                v = v.init
            init[k] = getattr(ns, v) if isinstance(v, str) else sp.sympify(v)
            bad = {x.name for x in init[k].free_symbols} - set(hp)
            if bad:
                raise SpecError(f"{nm}: initial value of state {k!r} uses unknown {sorted(bad)}")
        reqs = [Requirement(r[0], sp.sympify(r[1](ns)), r[2]) for r in requires]
        if sanity not in ("descent", "tracking"):
            raise SpecError(f"{nm}: sanity: expected 'descent' or 'tracking', got {sanity!r}")
        spec = OptimizerSpec(nm, "optimizer", fn, hp, fl, der, init, reqs, ns, param, grad,
                             doc=inspect.getdoc(fn) or "", scalar_state=tuple(scalars))
        spec.meta["sanity"] = sanity
        spec.meta["examples"] = [dict(e) for e in examples] if examples is not None else \
            [{}] + [{f: True} for f in fl]
        spec.meta["arg_names"] = ({"p": "param"}.get(param, param), {"g": "grad"}.get(grad, grad))
        _validate(spec)
        if register:
            REGISTRY.add(spec, replace=replace)
        return spec
    return deco


@dataclass(eq=False)
class ScheduleSpec:
    """A scalar schedule ``value(*args, **flags) -> float`` given by one SymPy formula per flag set."""
    name: str
    kind: str
    args: dict          # name -> HParam (positional arguments of value, in order)
    flags: dict         # name -> default bool
    rule: object
    symbols: SimpleNamespace
    requires: list
    doc: str = ""

    def formula(self, **flags) -> sp.Expr:
        return sp.sympify(self.rule(self.symbols, **{k: bool(flags.get(k, d)) for k, d in self.flags.items()}))

    def variants(self) -> list[Variant]:
        names = list(self.flags)
        return [Variant(tuple(zip(names, vals)),
                        (sp.Eq(sp.Symbol("value"), self.formula(**dict(zip(names, vals))), evaluate=False),))
                for vals in itertools.product((False, True), repeat=len(names))]





def schedule(name: str | None = None, *, args: dict, flags: dict | None = None, requires=(),
             register: bool = True, replace: bool = False):
    """Decorator: declare a schedule by its formula ``fn(s, **flags) -> SymPy expression``.

    Args:
        name: the kernel's name (default: the function's).
        args: name -> ``hparam``: the positional arguments of ``value(...)``, in order.
        flags: boolean arguments -> default; the formula may branch on them.
        requires: ``(name, lambda s: condition, message)`` checks.
        register, replace: add it to ``symgrad.REGISTRY`` (``replace`` an existing kernel of that name).

    Shape: every argument and the value are scalars (Python floats).

    Example::

        @symgrad.schedule(args=dict(lr=symgrad.hparam(None, "[0, inf)"),
                                    step=symgrad.hparam(None, "[0, inf)")))
        def inverse_time(s):
            return s.lr / (1 + s.step)
    """
    def deco(fn):
        nm = name or fn.__name__
        check_kernel_name(nm, "schedule name")
        a = {k: v if isinstance(v, HParam) else hparam(v) for k, v in args.items()}
        fl = {k: bool(v) for k, v in (flags or {}).items()}
        ns = Symbols(**{k: sp.Symbol(k, real=True) for k in a}, **{k: sp.Symbol(k) for k in fl})
        reqs = [Requirement(r[0], sp.sympify(r[1](ns)), r[2]) for r in requires]
        spec = ScheduleSpec(nm, "schedule", a, fl, fn, ns, reqs, inspect.getdoc(fn) or "")
        for v in spec.variants():
            bad = {x.name for x in v.equations[0].rhs.free_symbols} - set(a)
            if bad:
                raise SpecError(f"{nm}: formula uses unknown symbol(s) {sorted(bad)}")
        if register:
            REGISTRY.add(spec, replace=replace)
        return spec
    return deco


REGISTRY.register_rule("interface", ("optimizer",))("optimizer")   # init(param) / step(param, grad, state)
REGISTRY.register_rule("interface", ("schedule",))("schedule")     # value(*args)
