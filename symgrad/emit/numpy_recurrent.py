"""NumPy target for recurrent layers: the derived cell as two functions, the time loop around them."""
from __future__ import annotations

from .. import ir
from ..lower import lower
from .numpy_layer import NumpyLayerEmitter


def context(spec) -> dict:
    k = lower(spec.cell)
    e = NumpyLayerEmitter(k)
    user = [ir.Arg(i.name, i.shape, i.kind, i.bound, i.differentiable) for i in spec.inputs]
    binds, checks, order = e.validation(user)
    cell_args = [a.name for a in k.inputs]
    call = []  # the cell's arguments inside the forward loop
    for a in k.inputs:
        if a.name in spec.sequence:
            call.append(f"{a.name}[t]")
        elif a.name in spec.state:
            call.append(f"{a.name}_t")
        else:
            call.append(a.name)
    roles = []  # per differentiable cell input: how backward treats its gradient
    for a in k.inputs:
        if not a.grad:
            continue
        role = "sequence" if a.name in spec.sequence else "state" if a.name in spec.state else "param"
        roles.append((a.name, role))
    fwd = [l for s in k.forward.body for l in e.statement(s)]
    bwd = [l for s in k.backward.body for l in e.statement(s)]
    outs = {o.name: s for o, s in zip(k.outputs, spec.state)}  # cell output name -> state name
    return dict(
        spec=spec, k=k, e=e, binds=binds, checks=checks, dims=[str(d) for d in order],
        cell_args=cell_args, call=call, roles=roles, fwd=fwd, bwd=bwd, outs=outs,
        fwd_eqs=[e.equation(s) for s in k.forward.body],
        bwd_eqs=[e.equation(s) for s in k.backward.body],
        user=user, real_inputs=[a for a in user if a.kind == "real"],
        uses_sigmoid=any("_sigmoid(" in l for l in fwd + bwd),
        hypers=[n for n, _ in k.hypers],
        cell_dims=[str(d) for d in spec.cell.dims],
    )
