"""Built-in layers, activations and losses, defined through the public spec API only.

Each is its forward formula; every backward is derived (``symgrad.derive``).
Sources of the semantics: ``docs/reference.md`` (PyTorch conventions).
"""
import sympy as sp

import symgrad.api as sg

N, D, M, C = sg.dims("N D M C")
z = sp.Symbol("z", real=True)

SCALAR = {
    # sigma(z) = 1 / (1 + e^{-z})  (torch.sigmoid)
    "sigmoid": 1 / (1 + sp.exp(-z)),
    # tanh(z)  (torch.tanh)
    "tanh": sp.tanh(z),
    # relu(z) = 0 if z <= 0 else z: derivative 0 at z = 0, as torch.relu, and NaN stays NaN (a NaN
    # compares false, so it takes the last branch), as in torch
    "relu": sp.Piecewise((0, z <= 0), (z, True)),
}

for _name, _formula in SCALAR.items():
    sg.activation(_name, _formula, doc=f"Elementwise {_name}: a = {_formula} (PyTorch semantics).")


@sg.layer(z=(N, C))
def softmax(z):
    """Softmax over the last axis: a = exp(z - max z) / sum_c exp(z - max z).

    The max shift is exact (softmax does not depend on it), so it carries no gradient.
    """
    e = sg.exp(z - sg.stop_gradient(sg.max(z, axis=-1, keepdims=True))).named("e")
    return (e / sg.sum(e, axis=-1, keepdims=True)).named("a")


@sg.layer(x=(N, D), W=(D, M), b=(M,))
def dense(x, W, b):
    """Affine map y = x W + b (torch.nn.Linear with W = weight.T)."""
    return x @ W + b


def _dense_act(act):
    formula = SCALAR[act]

    def fused(x, W, b):
        zz = (x @ W + b).named("z")
        return sg.apply(formula, fn=act, z=zz).named("a")

    fused.__name__ = f"dense_{act}"
    fused.__doc__ = f"Fused dense + {act}: a = {act}(x W + b)."
    return sg.layer(x=(N, D), W=(D, M), b=(M,))(fused)


for _act in ("sigmoid", "tanh", "relu"):
    _dense_act(_act)


@sg.loss(pred=sg.ANYSHAPE, target=sg.constant(sg.ANYSHAPE))
def mse(pred, target):
    """Mean squared error over all elements: mean((pred - target)^2) (torch.nn.MSELoss)."""
    return sg.mean((pred - target) ** 2)


@sg.loss(z=sg.ANYSHAPE, target=sg.constant(sg.ANYSHAPE))
def bce_logits(z, target):
    """Binary cross-entropy on logits, mean over elements (torch BCEWithLogitsLoss):
    max(z, 0) - z*y + log(1 + exp(-|z|))."""
    return sg.mean(sg.maximum(z, 0) - z * target + sg.log(1 + sg.exp(-sg.abs(z))))


@sg.loss(z=(N, C), target=sg.index((N,), bound=C))
def softmax_cross_entropy(z, target):
    """Softmax cross-entropy on logits with class ids, mean over the batch (torch cross_entropy):
    logsumexp(z_n) - z_n[target_n].

    The picked logit z_n[target_n] is selected by the one-hot Y (z where Y = 1, else 0), not
    multiplied by it: Y * z is 0 * (-inf) = NaN for a logit of -inf at another class (a masked
    class), where torch gives a finite loss."""
    m = sg.stop_gradient(sg.max(z, axis=-1, keepdims=True))
    lse = (sg.log(sg.sum(sg.exp(z - m), axis=-1, keepdims=True)) + m).named("lse")
    picked = sg.sum(sg.where(lambda y: y > 0, z, 0, sg.one_hot(target, C)), axis=-1, keepdims=True)
    return sg.mean(lse - picked)


@sg.layer(x=(N, D), gamma=(D,), beta=(D,))
def layernorm(x, gamma, beta, eps=1e-5):
    """Layer normalization over the last axis (torch.nn.functional.layer_norm):
    y = (x - mean) / sqrt(var + eps) * gamma + beta, var the biased variance, eps inside the sqrt."""
    mean = sg.mean(x, axis=-1, keepdims=True).named("mean")
    xc = (x - mean).named("xc")
    var = sg.mean(xc ** 2, axis=-1, keepdims=True).named("var")
    rstd = (1 / sg.sqrt(var + eps)).named("rstd")
    xhat = (xc * rstd).named("xhat")
    return xhat * gamma + beta


T_, H = sg.dims("T H")
_z = sp.Symbol("z", real=True)


@sg.recurrent(state=("h", "c"), sequence=("x",),
              x=(N, D), h=(N, H), c=(N, H), W_ih=(4 * H, D), W_hh=(4 * H, H), b_ih=(4 * H,), b_hh=(4 * H,))
def lstm(x, h, c, W_ih, W_hh, b_ih, b_hh):
    """One-layer LSTM with torch.nn.LSTM semantics: gates i, f, g, o stacked in W_ih (4H, D), W_hh (4H, H).

    gates = x W_ih^T + b_ih + h W_hh^T + b_hh; i, f, o = sigmoid, g = tanh of their quarter;
    c' = f c + i g; h' = o tanh(c')."""
    gates = (x @ W_ih.T + b_ih + h @ W_hh.T + b_hh).named("gates")
    i = sg.apply(SCALAR["sigmoid"], fn="sigmoid", z=gates[..., 0:H]).named("i")
    f = sg.apply(SCALAR["sigmoid"], fn="sigmoid", z=gates[..., H:2 * H]).named("f")
    g = sg.apply(SCALAR["tanh"], fn="tanh", z=gates[..., 2 * H:3 * H]).named("g")
    o = sg.apply(SCALAR["sigmoid"], fn="sigmoid", z=gates[..., 3 * H:4 * H]).named("o")
    c_new = (f * c + i * g).named("c_new")
    tanh_c = sg.apply(SCALAR["tanh"], fn="tanh", z=c_new).named("tanh_c")
    return (o * tanh_c).named("h_new"), c_new
