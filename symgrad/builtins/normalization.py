"""Built-in batch normalization, defined through the public spec API only.

Training mode normalizes with the batch's statistics (the biased variance) and updates the running
statistics in place with torch's convention, ``running = (1 - momentum) running + momentum batch``
with the *unbiased* batch variance for ``running_var``; eval mode normalizes with the running
statistics. Both modes are one graph (``symgrad.where`` on the ``training`` flag), so backward is
derived for both: in training mode dx carries the terms through the batch mean and variance, in eval
mode it is ``dy * gamma * rstd``. Semantics: torch.nn.functional.batch_norm (``docs/reference.md``).
"""
import sympy as sp

import symgrad.api as sg

N, D, C, H, W = sg.dims("N D C H W")


def _normalize(x, gamma, beta, running_mean, running_var, momentum, eps, training, axes, count, expand):
    """BatchNorm over ``axes`` of ``x``; ``expand`` puts a per-feature vector in x's broadcast shape.

    The batch statistics keep their axes (shape (1, D) or (1, C, 1, 1)), so the derivation sees that
    sum(x - mean) = 0 over them and the gradient needs no reduction for it (``derive/reductions``)."""
    mean = sg.mean(x, axis=axes, keepdims=True).named("mean")
    xc = (x - mean).named("xc")
    var = sg.mean(xc ** 2, axis=axes, keepdims=True).named("var")
    mu = sg.where(lambda t: t > 0, mean, expand(running_mean), training).named("mu")
    sigma2 = sg.where(lambda t: t > 0, var, expand(running_var), training).named("sigma2")
    rstd = (1 / sg.sqrt(sigma2 + eps)).named("rstd")
    xhat = ((x - mu) * rstd).named("xhat")
    y = xhat * expand(gamma) + expand(beta)
    # torch's running statistics: an exponential moving average with the unbiased batch variance
    # (the kept size-1 axes summed away: a reshape to the buffer's shape)
    batch_mean = sg.sum(sg.stop_gradient(mean), axis=axes)
    batch_var = sg.sum(sg.stop_gradient(var), axis=axes) * (count / sp.Max(count - 1, 1))   # N = 1: 0
    new_mean = sg.where(lambda t: t > 0, (1 - momentum) * running_mean + momentum * batch_mean, running_mean,
                        training)
    new_var = sg.where(lambda t: t > 0, (1 - momentum) * running_var + momentum * batch_var, running_var,
                       training)
    return y, sg.update(running_mean, new_mean), sg.update(running_var, new_var)


@sg.layer(x=(N, D), gamma=(D,), beta=(D,), running_mean=sg.buffer((D,)), running_var=sg.buffer((D,), init=1.0))
def batchnorm(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5, training=sg.flag(True)):
    """Batch normalization over the batch axis (torch.nn.functional.batch_norm, x (N, D)):
    y = (x - mu) / sqrt(sigma2 + eps) * gamma + beta with (mu, sigma2) the batch mean and biased
    variance in training mode (running_mean, running_var updated in place:
    running = (1 - momentum) running + momentum batch, unbiased variance), the running statistics in
    eval mode (training=False)."""
    return _normalize(x, gamma, beta, running_mean, running_var, momentum, eps, training,
                      0, N, lambda v: v)


@sg.layer(x=(N, C, H, W), gamma=(C,), beta=(C,), running_mean=sg.buffer((C,)), running_var=sg.buffer((C,), init=1.0))
def batchnorm2d(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5, training=sg.flag(True)):
    """Batch normalization per channel of x (N, C, H, W) (torch.nn.functional.batch_norm): the
    statistics are over the batch and both spatial axes (N H W values per channel); otherwise as
    ``batchnorm``."""
    return _normalize(x, gamma, beta, running_mean, running_var, momentum, eps, training,
                      (0, 2, 3), N * H * W, lambda v: sg.expand_dims(v, (1, 2)))
