"""The spec language: a small tensor-expression graph that users write forward passes in.

A layer's forward pass is built from these nodes only; backward is derived from them
(``symgrad.derive``). Shapes are tuples of *named* dimensions (SymPy integer symbols such as
``N``, ``D``) or ``1`` (a kept, broadcastable axis), and broadcasting follows NumPy's rule:
align trailing axes, a ``1`` stretches.

Node kinds
----------
``Input``        an array argument of the layer (real-valued, or integer class ids).
``Map``          an elementwise SymPy expression of its argument nodes (broadcasting).
``Contract``     an einsum of two operands (matrix products, their transposes).
``Reduce``       ``sum`` or ``max`` over axes, keeping them as size-1 axes or dropping them.
``OneHot``       a constant (N, C) indicator of integer class ids (no gradient).
``StopGradient`` passes its value through and blocks the gradient (the max-shift of a
                 stable softmax: the result does not depend on the shift, so this is exact).

Arithmetic on tensors composes into one ``Map`` until a boundary: a node that was given a name
(``t.named("z")``) or an applied scalar function (``symgrad.apply``) stays a node of its own,
so the derivation and its printout show it as a step.
"""
from __future__ import annotations

import builtins
import itertools
from typing import Iterable, Sequence

import sympy as sp

from ..errors import SpecError
from .minmax import pairwise
from .names import IDENT, check_distinct, check_identifier, check_kernel_name  # noqa: F401 - spec API

_ids = itertools.count()
ANY = sp.Symbol("n_elems", integer=True, positive=True)
"""The dimension of an elementwise-only input of any shape (treated as flattened)."""


def dims(names: str) -> tuple[sp.Symbol, ...]:
    """Named dimensions (positive integer symbols) for the shapes of a spec.

    Args:
        names: space-separated identifiers, e.g. ``"N D M"``.

    Returns: one SymPy symbol per name. Shapes are tuples of these and ``1`` (a kept axis); a
    literal size such as ``(N, 3)`` is refused: give every size a name, it becomes a run-time
    dimension of the kernel (checked against the arrays).

    Example::

        N, D, M = symgrad.dims("N D M")

        @symgrad.layer(x=(N, D), W=(D, M))
        def project(x, W):
            return x @ W
    """
    out = tuple(sp.Symbol(check_identifier(n, "dimension"), integer=True, positive=True) for n in names.split())
    return out


def broadcast_shapes(shapes: Sequence[tuple], where: str = "") -> tuple:
    """NumPy broadcasting over named dims: trailing alignment, equal names or a 1."""
    ndim = builtins.max((len(s) for s in shapes), default=0)
    out = []
    for k in range(ndim):
        dim = sp.Integer(1)
        for s in shapes:
            j = len(s) - ndim + k
            if j < 0:
                continue
            d = s[j]
            if d == 1:
                continue
            if dim != 1 and d != dim:
                raise SpecError(f"shape mismatch{where}: cannot broadcast {_fmt(shapes)} (axis {k}: {dim} vs {d})")
            dim = d
        out.append(dim)
    return tuple(out)


def _fmt(shapes) -> str:
    return ", ".join("(" + ", ".join(str(d) for d in s) + ")" for s in shapes)


class Node:
    """A tensor value in a spec graph. Users handle these through operators and functions."""

    op = "node"
    differentiable = True

    def __init__(self, args: Sequence["Node"], shape: tuple):
        self.id = next(_ids)
        self.args = tuple(args)
        self.shape = tuple(sp.sympify(d) for d in shape)
        self.sym = sp.Symbol(f"_n{self.id}", real=True)
        self.name: str | None = None
        self.sealed = False

    # -- naming ----------------------------------------------------------------------------
    def named(self, name: str) -> "Node":
        """Give this intermediate a name: it becomes a step of its own in code and printouts."""
        self.name = check_identifier(name, "tensor name")
        self.sealed = True
        return self

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        label = self.name or f"{self.op}{self.id}"
        return f"<{label} {tuple(str(d) for d in self.shape)}>"

    # -- arithmetic --------------------------------------------------------------------------
    def __add__(self, o): return elementwise(lambda a, b: a + b, self, o)
    def __radd__(self, o): return elementwise(lambda a, b: b + a, self, o)
    def __sub__(self, o): return elementwise(lambda a, b: a - b, self, o)
    def __rsub__(self, o): return elementwise(lambda a, b: b - a, self, o)
    def __mul__(self, o): return elementwise(lambda a, b: a * b, self, o)
    def __rmul__(self, o): return elementwise(lambda a, b: b * a, self, o)
    def __truediv__(self, o): return elementwise(lambda a, b: a / b, self, o)
    def __rtruediv__(self, o): return elementwise(lambda a, b: b / a, self, o)
    def __pow__(self, o): return elementwise(lambda a, b: a ** b, self, o)
    def __neg__(self): return elementwise(lambda a: -a, self)

    def __matmul__(self, o):
        if not isinstance(o, Node):
            raise SpecError("@ needs two tensors")
        return matmul(self, o)

    @property
    def T(self) -> "Node":
        if self.ndim != 2:
            raise SpecError(f".T needs a 2-D tensor, got shape {_fmt([self.shape])}")
        return einsum("ij->ji", self)

    def __getitem__(self, key):
        return slice_last(self, key)

    def __bool__(self):
        raise SpecError("a symbolic tensor has no truth value; use symgrad.where for conditions")


class Input(Node):
    """An array argument. ``kind`` is "real" or "index" (integer ids in ``range(bound)``)."""

    op = "input"

    def __init__(self, name: str, shape: tuple, kind: str = "real", requires_grad: bool = True,
                 bound: sp.Symbol | None = None):
        super().__init__((), shape)
        self.name = check_identifier(name, "input")
        self.sealed = True
        if kind not in ("real", "index"):
            raise SpecError(f"input {name!r}: kind must be 'real' or 'index', got {kind!r}")
        self.kind = kind
        self.bound = bound
        self.differentiable = requires_grad and kind == "real"
        if kind == "index" and bound is None:
            raise SpecError(f"index input {name!r} needs bound=<dimension of the class axis>")


class Map(Node):
    """Elementwise ``expr`` (a SymPy expression of ``a.sym`` for each ``a`` in ``args``)."""

    op = "map"

    def __init__(self, expr: sp.Expr, args: Sequence[Node], shape: tuple | None = None, fn: str | None = None):
        args = [a for a in dict.fromkeys(args) if a.sym in expr.free_symbols]
        bshape = broadcast_shapes([a.shape for a in args], " in an elementwise expression")
        super().__init__(args, bshape if shape is None else shape)
        self.expr = expr
        self.fn = fn  # the name of an applied scalar function (sigmoid, ...) for printouts

    def hyper_symbols(self) -> set:
        return {s for s in self.expr.free_symbols if isinstance(s, Hyper)}


class Contract(Node):
    """``einsum(subscripts, *args)`` with one or two operands, no repeated index in one operand."""

    op = "contract"

    def __init__(self, subscripts: str, args: Sequence[Node]):
        ins, out = _parse_einsum(subscripts, len(args))
        sizes: dict[str, sp.Expr] = {}
        for letters, a in zip(ins, args):
            if len(letters) != a.ndim:
                raise SpecError(f"einsum {subscripts!r}: operand {a!r} has {a.ndim} axes, subscripts give {len(letters)}")
            for l, d in zip(letters, a.shape):
                if l in sizes and sizes[l] != d:
                    raise SpecError(f"einsum {subscripts!r}: index {l!r} is {sizes[l]} in one operand and {d} in another")
                sizes[l] = d
        super().__init__(args, tuple(sizes[l] for l in out))
        self.ins, self.out = ins, out

    @property
    def subscripts(self) -> str:
        return ",".join(self.ins) + "->" + self.out


class Reduce(Node):
    """``sum`` or ``max`` over ``axes`` (sorted, non-negative); ``keepdims`` keeps them as 1."""

    op = "reduce"

    def __init__(self, kind: str, arg: Node, axes: tuple[int, ...], keepdims: bool):
        if kind not in ("sum", "max"):
            raise SpecError(f"unknown reduction {kind!r}")
        shape = tuple((sp.Integer(1) if i in axes else d) for i, d in enumerate(arg.shape)
                      if keepdims or i not in axes)
        super().__init__((arg,), shape)
        self.kind, self.axes, self.keepdims = kind, axes, keepdims


class OneHot(Node):
    """Indicator ``[y[..., None] == arange(C)]`` of integer ids: a constant, no gradient."""

    op = "onehot"
    differentiable = False

    def __init__(self, index: Input, classes: sp.Symbol):
        if not isinstance(index, Input) or index.kind != "index":
            raise SpecError("one_hot needs an index input (kind='index')")
        super().__init__((index,), index.shape + (classes,))
        self.classes = classes


class StopGradient(Node):
    op = "stop_gradient"
    differentiable = False

    def __init__(self, arg: Node):
        super().__init__((arg,), arg.shape)


class Slice(Node):
    """``x[..., start:stop]`` on the last axis (e.g. one gate of a stacked (N, 4H) tensor)."""

    op = "slice"

    def __init__(self, arg: Node, start: sp.Expr, stop: sp.Expr):
        super().__init__((arg,), arg.shape[:-1] + (sp.simplify(stop - start),))
        self.start, self.stop = sp.sympify(start), sp.sympify(stop)


class Pad(Node):
    """``arg`` placed at ``start`` of a zero tensor whose last axis has size ``total``
    (the transpose of ``Slice``; the derivation merges pads into a ``Concat``)."""

    op = "pad"

    def __init__(self, arg: Node, start: sp.Expr, total: sp.Expr):
        super().__init__((arg,), arg.shape[:-1] + (total,))
        self.start, self.total = sp.sympify(start), sp.sympify(total)


class Concat(Node):
    """Concatenation of ``args`` along the last axis."""

    op = "concat"

    def __init__(self, args: Sequence[Node]):
        lead = args[0].shape[:-1]
        for a in args:
            if a.shape[:-1] != lead:
                raise SpecError(f"concat: leading axes differ: {_fmt([x.shape for x in args])}")
        super().__init__(args, lead + (sp.simplify(sp.Add(*[a.shape[-1] for a in args])),))


class Expand(Node):
    """Insert size-1 axes at ``axes`` of the result (the transpose of a reduction that dropped them)."""

    op = "expand"

    def __init__(self, arg: Node, axes: tuple[int, ...]):
        shape = list(arg.shape)
        for a in sorted(axes):
            shape.insert(a, sp.Integer(1))
        super().__init__((arg,), tuple(shape))
        self.axes = tuple(sorted(axes))


class Hyper(sp.Symbol):
    """A scalar hyperparameter (eps, ...): a keyword argument of forward with a default.

    Built with SymPy's *uncached* ``Symbol.__xnew__``: ``Symbol.__new__`` returns one cached object
    per (class, name, assumptions), so a second ``Hyper("eps", 1e-6)`` in a user's spec would be the
    built-in layernorm's ``eps`` with its default overwritten. Each Hyper is its own object, and the
    default is part of its identity (``_hashable_content``).
    """

    def __new__(cls, name: str, default: float):
        value = float(default)
        if value != value or value in (float("inf"), float("-inf")):
            raise SpecError(f"hyperparameter {name!r}: expected a finite default, got {default!r}")
        obj = sp.Symbol.__xnew__(cls, check_identifier(name, "hyperparameter"), real=True)
        obj.default = value
        return obj

    def __getnewargs_ex__(self):
        return ((self.name, self.default), {})

    def _hashable_content(self):
        return super()._hashable_content() + (self.default,)


class Flag(Hyper):
    """A boolean keyword (``training=True``): 1.0 or 0.0 in formulas (``symgrad.flag``)."""

    def __new__(cls, name: str, default: bool):
        obj = Hyper.__new__(cls, name, 1.0 if default else 0.0)
        return obj


def hyper(name: str, default: float) -> Hyper:
    """A scalar hyperparameter usable inside tensor expressions (a keyword argument of forward).

    Args:
        name: its name in the generated ``forward(..., name=default)``.
        default: a finite number.

    A layer's numeric default argument (``def f(x, eps=1e-5)``) makes one for you; ``hyper`` is for
    formulas built outside the layer function. Each call makes a new symbol: two specs never share
    a default. Shape: a scalar, broadcast against any tensor.

    Example::

        eps = symgrad.hyper("eps", 1e-5)
        a = symgrad.apply(z / sympy.sqrt(z**2 + eps), z=x)
    """
    return Hyper(name, default)


# -- building Map nodes -----------------------------------------------------------------------
def _operand(x) -> tuple[sp.Expr, list[Node]]:
    """A tensor contributes its expression (if composable) or its symbol; scalars their value."""
    if isinstance(x, Map) and not x.sealed:
        return x.expr, list(x.args)
    if isinstance(x, Node):
        return x.sym, [x]
    try:
        e = sp.sympify(x, strict=True)
    except (sp.SympifyError, TypeError) as exc:
        raise SpecError(f"cannot use {x!r} ({type(x).__name__}) in a tensor expression") from exc
    bad = [s for s in e.free_symbols if not isinstance(s, Hyper) and not (s.is_integer and s.is_positive)]
    if bad:
        raise SpecError(f"undefined symbol(s) {sorted(map(str, bad))} in a tensor expression: "
                        "use tensor inputs, dims or symgrad.hyper(...)")
    return e, []


def elementwise(f, *xs, fn: str | None = None, shape=None) -> Map:
    parts = [_operand(x) for x in xs]
    if not any(isinstance(x, Node) for x in xs):
        raise SpecError("an elementwise expression needs at least one tensor")
    expr = pairwise(sp.sympify(f(*[p[0] for p in parts])))
    args = [a for p in parts for a in p[1]]
    return Map(expr, args, shape=shape, fn=fn)


def apply(expr: sp.Expr, fn: str | None = None, **tensors: Node) -> Map:
    """Apply a scalar SymPy formula elementwise: ``apply(1/(1+exp(-z)), z=t)``.

    Args:
        expr: a SymPy expression in free symbols named like the keyword arguments (and hypers).
        fn: a name for printouts (``"sigmoid"``).
        tensors: one tensor per free symbol; their shapes broadcast (NumPy rules) to the result's.

    Example::

        u = sympy.Symbol("u", real=True)
        gate = symgrad.apply(1 / (1 + sympy.exp(-u)), fn="sigmoid", u=x @ V)

    The result is a step of its own (sealed), so the derivative of the formula as a whole is taken
    by SymPy and can be rewritten in terms of the output (sigma' = sigma(1 - sigma)).
    """
    expr = pairwise(sp.sympify(expr))
    names = {s.name for s in expr.free_symbols if not isinstance(s, Hyper)}
    missing = names - set(tensors)
    if missing:
        raise SpecError(f"formula {expr} uses undefined symbol(s) {sorted(missing)}; pass them as tensors")
    subs, args = {}, []
    for s in expr.free_symbols:
        if isinstance(s, Hyper):
            continue
        t = tensors[s.name]
        if not isinstance(t, Node):
            raise SpecError(f"argument {s.name!r} of {fn or expr} must be a tensor")
        e, a = _operand(t)
        subs[s] = e
        args += a
    m = Map(expr.xreplace(subs), args, fn=fn)
    m.sealed = True
    return m


def _parse_einsum(subscripts: str, nargs: int) -> tuple[list[str], str]:
    s = subscripts.replace(" ", "")
    if "->" not in s:
        raise SpecError(f"einsum {subscripts!r}: give the output explicitly ('ij,jk->ik')")
    lhs, out = s.split("->")
    ins = lhs.split(",")
    if len(ins) != nargs or not all(x.isalpha() for x in ins + [out] if x):
        raise SpecError(f"einsum {subscripts!r} does not fit {nargs} operand(s)")
    for x in ins + [out]:
        if len(set(x)) != len(x):
            raise SpecError(f"einsum {subscripts!r}: repeated index within one operand is not supported")
    if set(out) - set("".join(ins)):
        raise SpecError(f"einsum {subscripts!r}: output index not in any operand")
    if nargs == 2:
        a, b = ins
        for l in a + b:
            if l not in out and not (l in a and l in b):
                raise SpecError(f"einsum {subscripts!r}: index {l!r} is summed inside one operand; "
                                "use symgrad.sum first")
    return ins, out


def einsum(subscripts: str, *args: Node) -> Node:
    """Einsum of one (a permutation) or two tensors. Permutations fold into their consumer.

    Args:
        subscripts: NumPy's notation with an explicit output, ``"nd,dm->nm"``; an index summed must
            appear in both operands (sum within one operand with ``symgrad.sum`` first).
        args: one or two tensors whose axes the subscripts label.

    Shapes: an index names one size in every operand; the result has the output indices' sizes.

    Example::

        scores = symgrad.einsum("nd,md->nm", q, k)   # q (N, D), k (M, D) -> (N, M)
    """
    args = [as_node(a) for a in args]
    ins, out = _parse_einsum(subscripts, len(args))
    if len(args) == 1:
        if sorted(ins[0]) != sorted(out):
            raise SpecError(f"einsum {subscripts!r}: a single operand may only be permuted")
        return Contract(subscripts, args)
    # fold single-operand permutations (x.T) into this contraction by renaming indices
    new_args, new_ins = [], []
    for a, letters in zip(args, ins):
        if isinstance(a, Contract) and len(a.args) == 1 and not a.sealed:
            inner_in, inner_out = a.ins[0], a.out
            mapping = dict(zip(inner_out, letters))
            letters = "".join(mapping[c] for c in inner_in)
            a = a.args[0]
        new_args.append(a)
        new_ins.append(letters)
    return Contract(",".join(new_ins) + "->" + out, new_args)


def matmul(a: Node, b: Node) -> Node:
    """``a @ b`` for 2-D ``b``; ``a`` may carry up to four leading batch axes."""
    if b.ndim != 2 or not 1 <= a.ndim <= 5:
        raise SpecError(f"matmul needs (..., K) @ (K, M), got {_fmt([a.shape, b.shape])}")
    if a.shape[-1] != b.shape[0]:
        raise SpecError(f"shape mismatch in matmul: {_fmt([a.shape, b.shape])} "
                        f"(inner dims {a.shape[-1]} and {b.shape[0]})")
    lead = "pqrs"[: a.ndim - 1]
    return einsum(f"{lead}k,kj->{lead}j", a, b)


def as_node(x) -> Node:
    """``x`` if it is a tensor, else a SpecError."""
    if not isinstance(x, Node):
        raise SpecError(f"expected a tensor, got {x!r}")
    return x


def slice_last(x: Node, key) -> Node:
    """``x[..., a:b]`` (only a slice of the last axis, with symbolic bounds)."""
    if isinstance(key, tuple):
        if len(key) != 2 or key[0] is not Ellipsis:
            raise SpecError("only x[..., start:stop] slicing of the last axis is supported")
        key = key[1]
    if not isinstance(key, slice) or key.step not in (None, 1):
        raise SpecError("only x[..., start:stop] slicing of the last axis is supported")
    start = sp.sympify(0 if key.start is None else key.start)
    stop = sp.sympify(x.shape[-1] if key.stop is None else key.stop)
    return Slice(as_node(x), start, stop)


def walk(outputs: Iterable[Node]) -> list[Node]:
    """All nodes reachable from ``outputs`` in a topological order (arguments first)."""
    order, seen = [], set()

    def visit(n: Node):
        stack = [(n, False)]
        while stack:
            node, done = stack.pop()
            if done:
                order.append(node)
                continue
            if node.id in seen:
                continue
            seen.add(node.id)
            stack.append((node, True))
            for a in reversed(node.args):
                if a.id not in seen:
                    stack.append((a, False))

    for o in outputs:
        visit(o)
    return order
