"""Built-in optimizers, the EMA and exponential_decay, declared through the public API only.

Symbols: p = parameter, g = gradient, t = step count (1 on the first step). Each rule is the
update as torch.optim's single-tensor path (or TF1's ``tf.train``) implements it; sources and
exact semantics: ``docs/reference.md``. ``has_weight_decay``/``has_momentum`` mirror torch's
``if weight_decay != 0`` / ``if momentum != 0`` branches, ``first_step`` torch's ``buf is None``.
"""
import sympy as sp

import symgrad.api as sg
from symgrad.api import hparam

NONNEG = "[0, inf)"
BETA = "[0, 1)"


def _has(name):
    return lambda s: sp.Ne(getattr(s, name), 0)


def _first(s):
    return sp.Eq(s.t, 1)


@sg.optimizer(
    hypers=dict(lr=hparam(1e-3, NONNEG), momentum=hparam(0, NONNEG), dampening=hparam(0),
                weight_decay=hparam(0, NONNEG)),
    state=dict(momentum_buffer=0), flags=dict(nesterov=False, maximize=False),
    derived=dict(has_momentum=_has("momentum"), first_step=_first, has_weight_decay=_has("weight_decay")),
    requires=[("nesterov", lambda s: sp.Implies(s.nesterov, (s.momentum > 0) & sp.Eq(s.dampening, 0)),
               "nesterov=True requires momentum > 0 and dampening == 0")],
    examples=[{}, dict(momentum=0.9), dict(momentum=0.9, dampening=0.1, weight_decay=0.01),
              dict(momentum=0.9, nesterov=True)])
def sgd(s, nesterov, maximize, has_momentum, first_step, has_weight_decay):
    """Stochastic gradient descent with momentum (torch.optim.SGD).

    g = -g (maximize); g = g + weight_decay p; buf = g on the first step, else
    buf = momentum buf + (1 - dampening) g; g = g + momentum buf (nesterov) or buf; p = p - lr g.
    Sutskever et al. 2013; torch keeps lr out of the buffer (differs from CS231n's form when lr changes).
    """
    if nesterov and not has_momentum:
        return None
    u = [(s.g, -s.g)] if maximize else []
    if has_weight_decay:
        u.append((s.g, s.g + s.weight_decay * s.p))
    if has_momentum:
        buf = s.momentum_buffer
        u.append((buf, s.g if first_step else s.momentum * buf + (1 - s.dampening) * s.g))
        u.append((s.g, s.g + s.momentum * buf if nesterov else buf))
    return u + [(s.p, s.p - s.lr * s.g)]


@sg.optimizer(
    hypers=dict(lr=hparam(1e-2, NONNEG), lr_decay=hparam(0, NONNEG), weight_decay=hparam(0, NONNEG),
                initial_accumulator_value=hparam(0, NONNEG), eps=hparam(1e-10, NONNEG)),
    state=dict(sum="initial_accumulator_value"), derived=dict(has_weight_decay=_has("weight_decay")),
    examples=[{}, dict(lr_decay=0.01, weight_decay=0.01)])
def adagrad(s, has_weight_decay):
    """Adagrad (torch.optim.Adagrad; Duchi et al. 2011).

    g = g + weight_decay p; clr = lr / (1 + (t - 1) lr_decay); sum = sum + g^2;
    p = p - clr g / (sqrt(sum) + eps)   (eps outside the square root).
    """
    u = [(s.g, s.g + s.weight_decay * s.p)] if has_weight_decay else []
    clr = s.lr / (1 + (s.t - 1) * s.lr_decay)
    return u + [(s.sum, s.sum + s.g * s.g), (s.p, s.p - clr * s.g / (sp.sqrt(s.sum) + s.eps))]


@sg.optimizer(
    hypers=dict(lr=hparam(1e-2, NONNEG), alpha=hparam(0.99, NONNEG), eps=hparam(1e-8, NONNEG),
                weight_decay=hparam(0, NONNEG), momentum=hparam(0, NONNEG)),
    state=dict(square_avg=0, momentum_buffer=0, grad_avg=0), flags=dict(centered=False),
    derived=dict(has_momentum=_has("momentum"), has_weight_decay=_has("weight_decay")),
    examples=[{}, dict(momentum=0.9), dict(centered=True, momentum=0.5, weight_decay=0.01)])
def rmsprop(s, centered, has_momentum, has_weight_decay):
    """RMSprop (torch.optim.RMSprop; Hinton's lecture 6e, centered form of Graves 2013).

    sq = alpha sq + (1 - alpha) g^2; centered: ga = ga + (1 - alpha)(g - ga), avg = sqrt(sq - ga^2) + eps,
    else avg = sqrt(sq) + eps; momentum: buf = momentum buf + g / avg, p = p - lr buf;
    else p = p - lr g / avg.
    """
    u = [(s.g, s.g + s.weight_decay * s.p)] if has_weight_decay else []
    u.append((s.square_avg, s.alpha * s.square_avg + (1 - s.alpha) * s.g ** 2))
    if centered:
        u.append((s.grad_avg, s.grad_avg + (1 - s.alpha) * (s.g - s.grad_avg)))
        avg = sp.sqrt(s.square_avg - s.grad_avg ** 2) + s.eps
    else:
        avg = sp.sqrt(s.square_avg) + s.eps
    if has_momentum:
        return u + [(s.momentum_buffer, s.momentum * s.momentum_buffer + s.g / avg),
                    (s.p, s.p - s.lr * s.momentum_buffer)]
    return u + [(s.p, s.p - s.lr * s.g / avg)]


def _adam(name, weight_decay, decoupled, doc):
    def rule(s, amsgrad, has_weight_decay):
        u = []
        if has_weight_decay:
            u.append((s.p, s.p * (1 - s.lr * s.weight_decay)) if decoupled else
                     (s.g, s.g + s.weight_decay * s.p))
        u.append((s.exp_avg, s.exp_avg + (1 - s.beta1) * (s.g - s.exp_avg)))
        u.append((s.exp_avg_sq, s.beta2 * s.exp_avg_sq + (1 - s.beta2) * s.g ** 2))
        v = s.exp_avg_sq
        if amsgrad:
            u.append((s.max_exp_avg_sq, sp.Max(s.max_exp_avg_sq, s.exp_avg_sq)))
            v = s.max_exp_avg_sq
        bc1, bc2 = 1 - s.beta1 ** s.t, 1 - s.beta2 ** s.t
        return u + [(s.p, s.p - (s.lr / bc1) * s.exp_avg / (sp.sqrt(v) / sp.sqrt(bc2) + s.eps))]

    rule.__name__, rule.__doc__ = name, doc
    return sg.optimizer(
        hypers=dict(lr=hparam(1e-3, NONNEG), beta1=hparam(0.9, BETA), beta2=hparam(0.999, BETA),
                    eps=hparam(1e-8, NONNEG), weight_decay=hparam(weight_decay, NONNEG)),
        state=dict(exp_avg=0, exp_avg_sq=0, max_exp_avg_sq=0), flags=dict(amsgrad=False),
        derived=dict(has_weight_decay=_has("weight_decay")),
        examples=[{}, dict(amsgrad=True, weight_decay=0.01)])(rule)


_ADAM_RULE = """m = m + (1 - beta1)(g - m); v = beta2 v + (1 - beta2) g^2; amsgrad: vmax = max(vmax, v), v = vmax;
    p = p - (lr / (1 - beta1^t)) m / (sqrt(v) / sqrt(1 - beta2^t) + eps).
    TensorFlow's Adam adds eps to sqrt of the uncorrected v instead (tf_adam)."""

adam = _adam("adam", 0, False, "Adam (torch.optim.Adam; Kingma & Ba 2015), L2 weight decay g = g + wd p.\n\n"
             + "    " + _ADAM_RULE)
adamw = _adam("adamw", 1e-2, True, "AdamW (torch.optim.AdamW; Loshchilov & Hutter 2019), decoupled decay "
              "p = p (1 - lr wd) first.\n\n    " + _ADAM_RULE)


@sg.optimizer(hypers=dict(lr=hparam(None, NONNEG), momentum=hparam(None, NONNEG)), state=dict(accum=0),
              flags=dict(use_nesterov=False),
              examples=[dict(lr=0.01, momentum=0.9), dict(lr=0.01, momentum=0.9, use_nesterov=True)])
def tf_momentum(s, use_nesterov):
    """Momentum, TensorFlow 1 form (tf.train.MomentumOptimizer): lr and momentum are required.

    accum = momentum accum + g; p = p - lr accum; use_nesterov: p = p - (lr g + lr momentum accum).
    """
    new = [(s.accum, s.momentum * s.accum + s.g)]
    if use_nesterov:
        return new + [(s.p, s.p - (s.lr * s.g + s.lr * s.momentum * s.accum))]
    return new + [(s.p, s.p - s.lr * s.accum)]


@sg.optimizer(hypers=dict(lr=hparam(1e-3, NONNEG), beta1=hparam(0.9, BETA), beta2=hparam(0.999, BETA),
                          eps=hparam(1e-8, NONNEG)), state=dict(m=0, v=0))
def tf_adam(s):
    """Adam, TensorFlow 1 "epsilon hat" form (tf.train.AdamOptimizer).

    lr_t = lr sqrt(1 - beta2^t) / (1 - beta1^t); m = m + (g - m)(1 - beta1); v = v + (g^2 - v)(1 - beta2);
    p = p - lr_t m / (sqrt(v) + eps). Equals torch's Adam with eps replaced by eps sqrt(1 - beta2^t).
    """
    lr_t = s.lr * sp.sqrt(1 - s.beta2 ** s.t) / (1 - s.beta1 ** s.t)
    return [(s.m, s.m + (s.g - s.m) * (1 - s.beta1)), (s.v, s.v + (s.g ** 2 - s.v) * (1 - s.beta2)),
            (s.p, s.p - lr_t * s.m / (sp.sqrt(s.v) + s.eps))]


@sg.optimizer(hypers=dict(beta=hparam(0.9, "[0, 1]")), param="avg", grad="x",
              derived=dict(first_step=_first), sanity="tracking", examples=[{}, dict(beta=0.5)])
def ema(s, first_step):
    """Exponential moving average: avg = x on the first step, then avg = beta avg + (1 - beta) x."""
    return [(s.avg, s.x if first_step else s.beta * s.avg + (1 - s.beta) * s.x)]


@sg.schedule(args=dict(lr=hparam(None, NONNEG), global_step=hparam(None, NONNEG),
                       decay_steps=hparam(None, "(0, inf)"), decay_rate=hparam(None, NONNEG)),
             flags=dict(staircase=False))
def exponential_decay(s, staircase):
    """Exponential learning-rate decay (tf.train.exponential_decay, TF1).

    value = lr decay_rate^(global_step / decay_steps); staircase floors the exponent. In TF1's
    minimize(..., global_step) update number t uses global_step = t - 1.
    """
    q = s.global_step / s.decay_steps
    return s.lr * s.decay_rate ** (sp.floor(q) if staircase else q)


def _decay(s, decoupled_weight_decay, maximize, has_weight_decay):
    """torch's prologue of NAdam and RAdam: g = -g (maximize); then p = p (1 - lr wd) (decoupled) or
    g = g + wd p (L2), only if weight_decay != 0."""
    u = [(s.g, -s.g)] if maximize else []
    if has_weight_decay:
        u.append((s.p, s.p * (1 - s.lr * s.weight_decay)) if decoupled_weight_decay else
                 (s.g, s.g + s.weight_decay * s.p))
    return u


_DECAY_EXAMPLES = [{}, dict(weight_decay=0.01), dict(weight_decay=0.01, decoupled_weight_decay=True, maximize=True)]


@sg.optimizer(
    hypers=dict(lr=hparam(2e-3, NONNEG), beta1=hparam(0.9, BETA), beta2=hparam(0.999, BETA),
                eps=hparam(1e-8, NONNEG), weight_decay=hparam(0, NONNEG), momentum_decay=hparam(4e-3, NONNEG)),
    state=dict(exp_avg=0, exp_avg_sq=0, mu_product=sg.scalar(1.0)),
    flags=dict(decoupled_weight_decay=False, maximize=False), derived=dict(has_weight_decay=_has("weight_decay")),
    examples=_DECAY_EXAMPLES)
def nadam(s, decoupled_weight_decay, maximize, has_weight_decay):
    """NAdam (torch.optim.NAdam; Dozat 2016, "Incorporating Nesterov Momentum into Adam").

    mu_t = beta1 (1 - 0.5 * 0.96^(t momentum_decay)), mu_{t+1} likewise; mu_product = mu_product mu_t (one
    number per parameter tensor, symgrad.scalar); m = m + (1 - beta1)(g - m); v = beta2 v + (1 - beta2) g^2;
    denom = sqrt(v / (1 - beta2^t)) + eps;
    p = p - lr (1 - mu_t) / (1 - mu_product) g / denom - lr mu_{t+1} / (1 - mu_product mu_{t+1}) m / denom.
    """
    def mu(t):
        return s.beta1 * (1 - sp.Rational(1, 2) * sp.Float(0.96) ** (t * s.momentum_decay))
    u = _decay(s, decoupled_weight_decay, maximize, has_weight_decay)
    u.append((s.mu_product, s.mu_product * mu(s.t)))
    u.append((s.exp_avg, s.exp_avg + (1 - s.beta1) * (s.g - s.exp_avg)))
    u.append((s.exp_avg_sq, s.beta2 * s.exp_avg_sq + (1 - s.beta2) * s.g ** 2))
    denom = sp.sqrt(s.exp_avg_sq / (1 - s.beta2 ** s.t)) + s.eps
    mu_next = mu(s.t + 1)
    return u + [(s.p, s.p - s.lr * (1 - mu(s.t)) / (1 - s.mu_product) * s.g / denom
                 - s.lr * mu_next / (1 - s.mu_product * mu_next) * s.exp_avg / denom)]


def _rho(s):
    """(rho_inf, rho_t): the maximum and the current length of RAdam's approximated SMA."""
    rho_inf = 2 / (1 - s.beta2) - 1
    return rho_inf, rho_inf - 2 * s.t * s.beta2 ** s.t / (1 - s.beta2 ** s.t)


@sg.optimizer(
    hypers=dict(lr=hparam(1e-3, NONNEG), beta1=hparam(0.9, BETA), beta2=hparam(0.999, BETA),
                eps=hparam(1e-8, NONNEG), weight_decay=hparam(0, NONNEG)),
    state=dict(exp_avg=0, exp_avg_sq=0), flags=dict(decoupled_weight_decay=False, maximize=False),
    derived=dict(has_weight_decay=_has("weight_decay"), rectified=lambda s: _rho(s)[1] > 5),
    examples=_DECAY_EXAMPLES)
def radam(s, decoupled_weight_decay, maximize, has_weight_decay, rectified):
    """RAdam (torch.optim.RAdam; Liu et al. 2020, "On the Variance of the Adaptive Learning Rate").

    m = m + (1 - beta1)(g - m); v = beta2 v + (1 - beta2) g^2; rho_inf = 2 / (1 - beta2) - 1;
    rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t); if rho_t > 5 (rectified):
    r = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t)),
    p = p - lr m / (1 - beta1^t) * sqrt(1 - beta2^t) / (sqrt(v) + eps) * r; else p = p - lr m / (1 - beta1^t).
    """
    u = _decay(s, decoupled_weight_decay, maximize, has_weight_decay)
    u.append((s.exp_avg, s.exp_avg + (1 - s.beta1) * (s.g - s.exp_avg)))
    u.append((s.exp_avg_sq, s.beta2 * s.exp_avg_sq + (1 - s.beta2) * s.g ** 2))
    step = s.exp_avg / (1 - s.beta1 ** s.t) * s.lr
    if rectified:
        rho_inf, rho_t = _rho(s)
        rect = sp.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
        step = step * sp.sqrt(1 - s.beta2 ** s.t) / (sp.sqrt(s.exp_avg_sq) + s.eps) * rect
    return u + [(s.p, s.p - step)]
