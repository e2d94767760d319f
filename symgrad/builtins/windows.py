"""Built-in convolution and pooling layers, defined through the public spec API only.

Each is a window read (``symgrad.unfold``) followed by ordinary tensor operations; every backward
pass is derived (the transpose of the window read is a scatter-add, of the max the mask of the
arg-max). Semantics: torch.nn.functional.conv1d, conv2d, max_pool2d, avg_pool2d (``docs/reference.md``).
"""
import sympy as sp

import symgrad.api as sg

N, C, L, H, W, O, K, KH, KW = sg.dims("N C L H W O K KH KW")


@sg.layer(x=(N, C, L), weight=(O, C, K), bias=(O,))
def conv1d(x, weight, bias, stride=sg.size(1), padding=sg.size(0, minimum=0), dilation=sg.size(1)):
    """1-D convolution (torch.nn.functional.conv1d, a cross-correlation):
    y[n, o, i] = bias[o] + sum_{c, k} weight[o, c, k] x[n, c, stride*i + dilation*k - padding],
    zero outside x; L_out = (L + 2 padding - dilation (K - 1) - 1) // stride + 1."""
    u = sg.unfold(x, (K,), stride, padding, dilation)                       # (N, C, K, L_out)
    return sg.einsum("nckl,ock->nol", u, weight) + sg.expand_dims(bias, 1)


@sg.layer(x=(N, C, H, W), weight=(O, C, KH, KW), bias=(O,))
def conv2d(x, weight, bias, stride=sg.size(1), padding=sg.size(0, minimum=0), dilation=sg.size(1)):
    """2-D convolution (torch.nn.functional.conv2d, a cross-correlation):
    y[n, o, i, j] = bias[o] + sum_{c, a, b} weight[o, c, a, b] x[n, c, stride*i + dilation*a - padding,
    stride*j + dilation*b - padding], zero outside x; H_out = (H + 2 padding - dilation (KH - 1) - 1)
    // stride + 1, W_out likewise. Written as im2col (the window read) and one contraction."""
    u = sg.unfold(x, (KH, KW), stride, padding, dilation)                    # (N, C, KH, KW, H_out, W_out)
    return sg.einsum("ncabhw,ocab->nohw", u, weight) + sg.expand_dims(bias, (1, 2))


@sg.layer(x=(N, C, H, W))
def maxpool2d(x, kernel_size=sg.size(2), stride=sg.size("kernel_size"), padding=sg.size(0, minimum=0)):
    """2-D max pooling (torch.nn.functional.max_pool2d): y[n, c, i, j] = max over the
    kernel_size x kernel_size window at (stride*i - padding, stride*j - padding); padded cells read
    -inf, so they never win. stride=None means kernel_size. The gradient goes to the arg-max (shared
    equally among exact ties; torch gives it to one of them)."""
    u = sg.unfold(x, (kernel_size, kernel_size), stride, padding, fill=-sp.oo)
    return sg.max(u, axis=(2, 3))


@sg.layer(x=(N, C, H, W))
def avgpool2d(x, kernel_size=sg.size(2), stride=sg.size("kernel_size"), padding=sg.size(0, minimum=0)):
    """2-D average pooling (torch.nn.functional.avg_pool2d with count_include_pad=True): the mean of
    the kernel_size x kernel_size window, padded cells counted as zeros. stride=None means kernel_size."""
    u = sg.unfold(x, (kernel_size, kernel_size), stride, padding)
    return sg.mean(u, axis=(2, 3))
