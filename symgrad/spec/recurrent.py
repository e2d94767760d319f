"""Recurrent layers: a cell written as one time step, run over a sequence by the templates.

    @symgrad.recurrent(state=("h", "c"), sequence=("x",),
                       x=(N, D), h=(N, H), c=(N, H), W_ih=(4*H, D), ...)
    def lstm(x, h, c, W_ih, W_hh, b_ih, b_hh):
        ...                      # one step: x is x_t, h and c are the previous state
        return h_new, c_new      # the new state, in the order of ``state``

The cell's gradients come from the derivation engine like any layer's; the time loop (forward
over t, back-propagation through time over reversed t, weight gradients summed over steps) comes
from the template. The generated kernel takes the sequence inputs with a leading time axis T,
the initial state as ``h0``, ``c0``, and returns ``((hs, hT, cT), cache)``: every step's output
(``outputs``, default the first state) stacked over time, then the final state.
``backward(cache, dhs, dhT=None, dcT=None)`` returns one gradient per argument.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import sympy as sp

from ..errors import SpecError
from ..registry import REGISTRY
from . import tensor as T
from .layer import ArgDecl, LayerSpec, build_spec, maybe_register


@dataclass(eq=False)
class RecurrentSpec:
    name: str
    cell: LayerSpec
    state: tuple
    sequence: tuple
    outputs: tuple
    time: sp.Symbol
    doc: str = ""
    kind: str = "recurrent"
    meta: dict = field(default_factory=dict)

    @property
    def inputs(self) -> list[T.Input]:
        """The kernel's arguments: sequences with a leading T axis, initial states, parameters."""
        out = []
        for i in self.cell.inputs:
            if i.name in self.sequence:
                out.append(T.Input(i.name, (self.time,) + i.shape, i.kind, i.differentiable, i.bound))
            elif i.name in self.state:
                out.append(T.Input(i.name + "0", i.shape, i.kind, i.differentiable, i.bound))
            else:
                out.append(i)
        return out

    @property
    def diff_inputs(self):
        return [i for i in self.inputs if i.differentiable]

    @property
    def hypers(self):
        return self.cell.hypers

    @property
    def output_names(self) -> list[str]:
        return [o + "s" for o in self.outputs] + [s + "T" for s in self.state]

    @property
    def dims(self):
        return [self.time] + [d for d in self.cell.dims if d != self.time]

    @property
    def derivation(self):
        return self.cell.derivation


def recurrent(name: str | None = None, *, state, sequence, outputs=None, time: str = "T",
              register: bool = True, **shapes):
    """Decorator: define a recurrent layer by its cell (one time step, forward only).

    Args:
        name: the kernel's name (default: the function's).
        state: names of the cell arguments carried from step to step (``("h", "c")``); the cell
            returns their new values in this order.
        sequence: names of the arguments that get a leading time axis T (``("x",)``): the kernel
            takes ``x`` of shape (T, *cell shape) and the cell sees one step of it.
        outputs: the state names whose every step is returned, stacked over time as ``<name>s``
            (default: the first state).
        time: the name of the time dimension (default ``"T"``).
        register: add it to ``symgrad.REGISTRY``.
        shapes: argument name -> shape *for one step*, as for ``symgrad.layer``.

    The kernel: ``forward(x, h0, c0, *params) -> ((hs, hT, cT), cache)``; initial states are named
    ``<state>0``; ``backward(cache, dhs, dhT=None, dcT=None)`` returns one gradient per argument
    (back-propagation through time).

    Example::

        N, D, H = symgrad.dims("N D H")

        @symgrad.recurrent(state=("h",), sequence=("x",), x=(N, D), h=(N, H), W=(D, H), U=(H, H))
        def rnn(x, h, W, U):
            return symgrad.tanh(x @ W + h @ U)
    """
    state, sequence = tuple(state), tuple(sequence)
    outputs = tuple(outputs) if outputs is not None else state[:1]

    def deco(fn):
        lname = name or fn.__name__
        params = list(inspect.signature(fn).parameters)
        for s in state + sequence:
            if s not in params:
                raise SpecError(f"{lname}: {s!r} is named as state/sequence but is not a parameter")
        if set(state) & set(sequence):
            raise SpecError(f"{lname}: an argument cannot be both state and sequence")
        if not set(outputs) <= set(state):
            raise SpecError(f"{lname}: outputs {outputs} must be state names {state}")
        for s in state:
            d = shapes.get(s)
            if isinstance(d, ArgDecl) and d.kind != "real":
                raise SpecError(f"{lname}: state {s!r} must be real-valued")

        def cell_fn(*args):
            res = fn(*args)
            res = list(res) if isinstance(res, (tuple, list)) else [res]
            if len(res) != len(state):
                raise SpecError(f"{lname}: the cell must return the new state {state}, got {len(res)} value(s)")
            for s, r in zip(state, res):
                if isinstance(r, T.Node) and r.name is None:
                    r.named(s + "_new")
            return tuple(res)

        cell_fn.__signature__ = inspect.signature(fn)
        cell = build_spec(lname, cell_fn, shapes, "cell")
        for s, o in zip(state, cell.outputs):
            i = next(i for i in cell.inputs if i.name == s)
            if o.shape != i.shape:
                raise SpecError(f"{lname}: new state {s} has shape {o.shape}, the state has {i.shape}")
        T.check_identifier(time, "time dimension")
        tdim = sp.Symbol(time, integer=True, positive=True)
        spec = RecurrentSpec(lname, cell, state, sequence, outputs, tdim, doc=inspect.getdoc(fn) or "")
        T.check_distinct(lname, {"input": [i.name for i in spec.inputs], "hyperparameter": [h.name for h in spec.hypers],
                                 "dimension": [str(d) for d in spec.dims], "output": spec.output_names})
        return maybe_register(spec, register)
    return deco


REGISTRY.register_rule("interface", ("recurrent",))("layer")   # forward / backward over a sequence
