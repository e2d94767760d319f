"""Layer specs: what users write (the forward pass only) and how it is registered.

    N, D, M = symgrad.dims("N D M")

    @symgrad.layer(x=(N, D), W=(D, M), b=(M,))
    def dense(x, W, b):
        "Affine map y = x W + b."
        return x @ W + b

Array arguments get their shapes from the decorator; an argument with a numeric default becomes a
scalar hyperparameter (``eps=1e-5``). ``symgrad.index(shape, bound=C)`` declares integer class ids and
``symgrad.constant(shape)`` a real array that gets no gradient (a loss target).
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

import sympy as sp

from ..errors import SpecError
from ..registry import REGISTRY
from . import tensor as T
from .constants import check_constants
from .minmax import pairwise
from .window import Size, SizeDecl, sizes_of
from .decls import ArgDecl, FlagDecl, Update
from ..derive.reverse import derive


ANYSHAPE = (T.ANY,)
"""Shape of an input that may have any shape (elementwise layers, losses over all elements)."""


@dataclass(eq=False)
class LayerSpec:
    """A registered layer, activation or loss: its forward graph and metadata."""

    name: str
    kind: str                      # "layer" | "activation" | "loss"
    inputs: list[T.Input]
    hypers: list[T.Hyper]
    outputs: list[T.Node]
    doc: str = ""
    formula: str = ""             # the scalar formula of an activation, for docs
    loss: bool = False            # one scalar output; backward's upstream gradient defaults to 1.0
    meta: dict = field(default_factory=dict)
    sizes: list = field(default_factory=list)   # symgrad.size parameters (integer keywords fixing shapes)
    updates: list = field(default_factory=list)  # [(buffer Input, new value node)], written by forward

    @property
    def output_names(self) -> list[str]:
        return [o.name for o in self.outputs]

    @property
    def diff_inputs(self) -> list[T.Input]:
        return [i for i in self.inputs if i.differentiable]

    @property
    def dims(self) -> list[sp.Symbol]:
        seen = []
        for i in self.inputs:
            for d in i.shape:
                for s in sorted(sp.sympify(d).free_symbols, key=str):
                    if s not in seen:
                        seen.append(s)
        return seen

    @cached_property
    def out_dims(self) -> list:
        """Dims computed from the others (window positions of ``unfold``), in first-use order."""
        return sizes_of(T.walk(self.outputs))[1]

    @property
    def kernel_dims(self) -> list:
        """Every integer a kernel takes: the inputs' dims, the size parameters, the computed dims."""
        return self.dims + [s for s in self.sizes if s not in self.dims] + self.out_dims

    @cached_property
    def derivation(self):
        return derive(self)


def build_spec(name: str, fn: Callable, decls: dict, kind: str, loss: bool = False) -> LayerSpec:
    """The ``LayerSpec`` of forward function ``fn`` (shapes ``decls``); ``loss``: one scalar output."""
    T.check_kernel_name(name, "layer name")
    sig = inspect.signature(fn)
    inputs, hypers, sizes, call = [], [], [], []
    for pname, p in sig.parameters.items():
        if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            raise SpecError(f"{name}: parameter {pname!r} must be a plain positional parameter")
        if pname in decls:
            d = decls[pname]
            if not isinstance(d, ArgDecl):
                d = ArgDecl(tuple(d))
            for dim in d.shape:
                dd = sp.sympify(dim)
                if dd != 1 and not (dd.free_symbols and all(s.is_integer and s.is_positive for s in dd.free_symbols)):
                    raise SpecError(f"{name}: shape of {pname!r}: expected named dimensions (symgrad.dims) "
                                    f"or 1, got {dim!r}; a literal size is not allowed: name it, e.g. "
                                    f"K = symgrad.dims('K')[0], and the kernel checks it at run time")
            inp = T.Input(pname, d.shape, d.kind, d.requires_grad, d.bound)
            inp.buffer, inp.init = d.buffer, d.init
            inputs.append(inp)
            call.append(inp)
        elif isinstance(p.default, FlagDecl):
            h = T.Flag(pname, p.default.default)
            hypers.append(h)
            call.append(h)
        elif isinstance(p.default, SizeDecl):
            sz = Size(pname, p.default.default, p.default.minimum)
            sizes.append(sz)
            call.append(sz)
        elif p.default is not p.empty and isinstance(p.default, (int, float)) and not isinstance(p.default, bool):
            h = T.Hyper(pname, p.default)
            hypers.append(h)
            call.append(h)
        else:
            raise SpecError(f"{name}: parameter {pname!r} has no shape in the decorator and no numeric default")
    extra = set(decls) - set(sig.parameters)
    if extra:
        raise SpecError(f"{name}: shapes given for unknown parameter(s) {sorted(extra)}")
    if not inputs:
        raise SpecError(f"{name}: a layer needs at least one array input")
    out = fn(*call)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    updates = [u for u in outs if isinstance(u, Update)]
    first = len(outs) - len(updates)
    if not all(isinstance(u, Update) for u in outs[first:]) or first == 0:
        raise SpecError(f"{name}: return the outputs first, then the symgrad.update(...) values")
    outs = outs[:first]
    upd = []
    for u in updates:
        if u.target not in inputs:
            raise SpecError(f"{name}: update of {u.target!r}, which is not an argument of this layer")
        if any(u.target is t for t, _ in upd):
            raise SpecError(f"{name}: buffer {u.target.name!r} is updated twice")
        v = T.elementwise(lambda a: a, T.as_node(u.value), shape=u.target.shape)
        if T.broadcast_shapes([u.value.shape, u.target.shape], f" in the update of {u.target.name!r}") != \
                tuple(u.target.shape):
            raise SpecError(f"{name}: the update of {u.target.name!r} has shape {u.value.shape}, "
                            f"the buffer {u.target.shape}")
        upd.append((u.target, v.named("new_" + u.target.name)))
    for i in inputs:
        if getattr(i, "buffer", False) and not any(t is i for t, _ in upd):
            raise SpecError(f"{name}: buffer {i.name!r} is never updated (return symgrad.update({i.name}, ...))")
    for k, o in enumerate(outs):
        if not isinstance(o, T.Node):
            raise SpecError(f"{name}: forward must return tensors, got {type(o).__name__}")
        if isinstance(o, T.Input):
            o = outs[k] = T.elementwise(lambda a: a, o)
        if o.name is None:
            o.named("loss" if loss else ("y" if len(outs) == 1 else f"y{k}"))
    if loss and (len(outs) != 1 or outs[0].shape != ()):
        raise SpecError(f"{name}: a loss must return one scalar, got shape(s) {[o.shape for o in outs]}")
    for n in T.walk(outs + [v for _, v in upd]):
        if isinstance(n, T.Map):
            check_constants(n.expr, f"{name}: formula {n.fn or ''}".rstrip())
    used = {s for n in T.walk(outs + [v for _, v in upd]) if isinstance(n, T.Map) for s in n.hyper_symbols()}
    for h in hypers:
        if h not in used:
            raise SpecError(f"{name}: hyperparameter {h.name!r} is not used")
    used_sizes = sizes_of(T.walk(outs))[0]
    for sz in sizes:
        if sz not in used_sizes:
            raise SpecError(f"{name}: size parameter {sz.name!r} is not used")
        if isinstance(sz.default, str) and sz.default not in [x.name for x in sizes if isinstance(x.default, int)]:
            raise SpecError(f"{name}: size parameter {sz.name!r} defaults to {sz.default!r}, "
                            "which is not an int-valued size parameter of this layer")
    for sz in used_sizes:
        if sz not in sizes:
            raise SpecError(f"{name}: size parameter {sz.name!r} is not a parameter of this layer")
    names = [i.name for i in inputs] + [h.name for h in hypers] + [sz.name for sz in sizes]
    for o in outs:
        if o.name in names:
            raise SpecError(f"{name}: output name {o.name!r} clashes with an argument")
    dim_names = [str(s) for i in inputs for d in i.shape for s in sp.sympify(d).free_symbols]
    dim_names += [str(i.bound) for i in inputs if i.bound is not None]
    dim_names += [str(o) for o in sizes_of(T.walk(outs))[1]]
    T.check_distinct(name, {"input": [i.name for i in inputs],
                            "hyperparameter": [h.name for h in hypers] + [sz.name for sz in sizes],
                            "dimension": sorted(set(dim_names)), "output": [o.name for o in outs]})
    if not any(i.differentiable for i in inputs):
        raise SpecError(f"{name}: no input gets a gradient")
    return LayerSpec(name, kind, inputs, hypers, outs, doc=inspect.getdoc(fn) or "", loss=loss, sizes=sizes,
                     updates=upd)


def layer(name: str | None = None, *, register: bool = True, **shapes):
    """Decorator: define a layer by its forward pass; backward is derived.

    Args:
        name: the kernel's name (default: the function's).
        register: add it to ``symgrad.REGISTRY`` (so ``load``, ``generate`` and ``check`` find it).
        shapes: argument name -> shape, a tuple of ``symgrad.dims`` symbols and 1, or
            ``symgrad.index(...)``/``symgrad.constant(...)``. A parameter with a numeric default
            instead is a scalar hyperparameter.

    The function receives symbolic tensors and returns one tensor or a tuple (named ``y``, ``y0``,
    ``y1``... unless ``.named(...)``). The generated kernel is ``forward(*arrays, **hypers) ->
    (out, cache)`` and ``backward(cache, dy) -> (dx, ...)``, one gradient per differentiable array.

    Example::

        N, D, M = symgrad.dims("N D M")

        @symgrad.layer(x=(N, D), W=(D, M), b=(M,))
        def dense(x, W, b):
            "Affine map y = x W + b."
            return x @ W + b
    """
    def deco(fn):
        spec = build_spec(name or fn.__name__, fn, shapes, "layer")
        return maybe_register(spec, register)
    return deco


def loss(name: str | None = None, *, register: bool = True, **shapes):
    """Decorator: define a loss (one scalar output); backward takes ``dloss=1.0``.

    Args: ``name``, ``register`` and ``shapes`` as for ``symgrad.layer``. Shape: the function must
    return a scalar (reduce over every axis); backward returns one gradient per array argument.

    Example::

        @symgrad.loss(pred=(N, D), target=symgrad.constant((N, D)))
        def mse(pred, target):
            return symgrad.mean((pred - target) ** 2)
    """
    def deco(fn):
        spec = build_spec(name or fn.__name__, fn, shapes, "loss", loss=True)
        return maybe_register(spec, register)
    return deco


def activation(name: str, formula: sp.Expr, *, register: bool = True, doc: str = "") -> LayerSpec:
    """Define an elementwise activation by its scalar formula in one free symbol.

    Args:
        name: the kernel's name.
        formula: a SymPy expression in one real symbol (and hyperparameters); write it as the
            textbook does: the engine finds stable forms (``z/(1+exp(-z))`` gets a gradient that is
            finite at z = -1e3) and, where it can, a derivative in terms of the output.
        register: add it to ``symgrad.REGISTRY``.
        doc: the kernel's docstring.

    Shapes: the input ``z`` may have any shape; the output ``a`` has the same.

    Example::

        z = sympy.Symbol("z", real=True)
        swish = symgrad.activation("swish", z / (1 + sympy.exp(-z)))
    """
    formula = pairwise(sp.sympify(formula))  # before any rebuild: an n-ary Max is slow to rebuild
    syms = [s for s in formula.free_symbols if not isinstance(s, T.Hyper)]
    if len(syms) != 1:
        raise SpecError(f"activation {name!r}: formula {formula} must have exactly one free symbol, "
                        f"has {sorted(map(str, syms))}")
    (z,) = syms
    zname = z.name if _free_name(z.name, formula) else "z"

    def fn(t):
        return T.apply(formula.xreplace({z: sp.Symbol(zname, real=True)}), fn=name, **{zname: t}).named("a")

    fn.__signature__ = inspect.Signature([inspect.Parameter(zname, inspect.Parameter.POSITIONAL_OR_KEYWORD)])
    spec = build_spec(name, fn, {zname: ANYSHAPE}, "activation")
    spec.formula = sp.latex(formula)
    spec.meta["scalar"] = (z, formula)
    spec.doc = doc or f"Elementwise {name}: a = {formula}."
    return maybe_register(spec, register)


def _free_name(name: str, formula: sp.Expr) -> bool:
    """Whether an activation's input may keep its formula's name: any name the generated code or the
    output ``a`` (and its gradient ``da``) use is renamed to ``z`` instead (the formula is unchanged)."""
    if name in ("a", "da") or any(getattr(h, "name", None) == name for h in formula.free_symbols
                                  if isinstance(h, T.Hyper)):
        return False
    try:
        T.check_identifier(name, "input")
    except SpecError:
        return False
    return True


def maybe_register(spec, register: bool):
    if register:
        REGISTRY.add(spec)
    return spec


REGISTRY.register_rule("interface", ("layer", "activation", "loss"))("layer")   # forward / backward
