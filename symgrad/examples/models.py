"""Two small classifiers whose every forward, backward and loss is a generated symgrad kernel.

NumPy is used here only to allocate and initialize parameters, reshape batches and take argmax.

- ``MLP``:  x -> dense -> layernorm -> tanh -> dense -> softmax_cross_entropy
- ``LSTMClassifier``: an image read row by row, x (T, N, D) -> lstm -> last hidden state hT ->
  dense -> softmax_cross_entropy (the LSTM's backward gets dhs = 0 and dhT from the dense layer).
- ``CNN``: the 8x8 image as one channel -> conv2d (3x3, padding 1) -> relu -> maxpool2d (2x2) ->
  flatten -> dense -> softmax_cross_entropy.
"""
from __future__ import annotations

import numpy as np

from ._common import load_kernel


class _Model:
    """Parameters in ``self.params`` (name -> array, updated in place by an optimizer)."""

    kernels: tuple = ()

    def __init__(self, backend: str, dtype: str):
        self.dtype = np.dtype(dtype)
        self.k = {name: load_kernel(name, backend, dtype) for name in self.kernels}

    def loss_and_grads(self, x, y):
        """Mean cross-entropy on the batch and the gradient of every parameter (same keys as params)."""
        loss, caches = self._forward(x, y)
        return float(loss), self._backward(caches)

    def evaluate(self, x, y):
        """(mean loss, accuracy) on (x, y), forward kernels only."""
        loss, caches = self._forward(x, y)
        return float(loss), float(np.mean(np.argmax(caches["logits"], axis=1) == y))

    def n_params(self) -> int:
        return int(sum(p.size for p in self.params.values()))


class MLP(_Model):
    """dense(D -> H) -> layernorm(H) -> tanh -> dense(H -> C) -> softmax cross-entropy."""

    kernels = ("dense", "layernorm", "tanh", "softmax_cross_entropy")

    def __init__(self, n_in, n_classes, hidden=64, seed=0, backend="numpy", dtype="float64"):
        super().__init__(backend, dtype)
        rng = np.random.default_rng(seed)
        t = self.dtype
        self.params = {  # Glorot-style scaled normal weights, zero biases, LayerNorm gamma = 1, beta = 0
            "W1": (rng.standard_normal((n_in, hidden)) / np.sqrt(n_in)).astype(t),
            "b1": np.zeros(hidden, t),
            "gamma": np.ones(hidden, t),
            "beta": np.zeros(hidden, t),
            "W2": (rng.standard_normal((hidden, n_classes)) / np.sqrt(hidden)).astype(t),
            "b2": np.zeros(n_classes, t),
        }

    def _forward(self, x, y):
        k, p = self.k, self.params
        z1, c1 = k["dense"].forward(x, p["W1"], p["b1"])
        z2, c2 = k["layernorm"].forward(z1, p["gamma"], p["beta"])
        a, c3 = k["tanh"].forward(z2)
        logits, c4 = k["dense"].forward(a, p["W2"], p["b2"])
        loss, c5 = k["softmax_cross_entropy"].forward(logits, y)
        return loss, {"c": (c1, c2, c3, c4, c5), "logits": logits}

    def _backward(self, caches):
        k = self.k
        c1, c2, c3, c4, c5 = caches["c"]
        (dlogits,) = k["softmax_cross_entropy"].backward(c5)
        da, dW2, db2 = k["dense"].backward(c4, dlogits)
        (dz2,) = k["tanh"].backward(c3, da)
        dz1, dgamma, dbeta = k["layernorm"].backward(c2, dz2)
        _, dW1, db1 = k["dense"].backward(c1, dz1)
        return {"W1": dW1, "b1": db1, "gamma": dgamma, "beta": dbeta, "W2": dW2, "b2": db2}


class LSTMClassifier(_Model):
    """Each sample (N, T*D) is read as T rows of D features: lstm(D -> H) -> hT -> dense(H -> C)."""

    kernels = ("lstm", "dense", "softmax_cross_entropy")

    def __init__(self, n_in, n_classes, hidden=64, seed=0, backend="numpy", dtype="float64", T=8):
        super().__init__(backend, dtype)
        if n_in % T:
            raise ValueError(f"n_in: expected a multiple of T={T}, got {n_in}")
        self.T, self.D, self.H = T, n_in // T, hidden
        rng = np.random.default_rng(seed)
        t, H, s = self.dtype, hidden, 1.0 / np.sqrt(hidden)
        b_ih = np.zeros(4 * H, t)
        b_ih[H:2 * H] = 1.0   # forget-gate bias 1 (Jozefowicz et al. 2015): remember by default
        self.params = {  # torch.nn.LSTM's U(-1/sqrt(H), 1/sqrt(H)) for the weights
            "W_ih": rng.uniform(-s, s, (4 * H, self.D)).astype(t),
            "W_hh": rng.uniform(-s, s, (4 * H, H)).astype(t),
            "b_ih": b_ih,
            "b_hh": np.zeros(4 * H, t),
            "W": (rng.standard_normal((H, n_classes)) / np.sqrt(H)).astype(t),
            "b": np.zeros(n_classes, t),
        }

    def _forward(self, x, y):
        k, p = self.k, self.params
        n = x.shape[0]
        seq = np.ascontiguousarray(x.reshape(n, self.T, self.D).transpose(1, 0, 2))  # (T, N, D)
        h0 = np.zeros((n, self.H), self.dtype)
        (hs, hT, _), c1 = k["lstm"].forward(seq, h0, h0, p["W_ih"], p["W_hh"], p["b_ih"], p["b_hh"])
        logits, c2 = k["dense"].forward(hT, p["W"], p["b"])
        loss, c3 = k["softmax_cross_entropy"].forward(logits, y)
        return loss, {"c": (c1, c2, c3), "logits": logits, "hs_shape": hs.shape}

    def _backward(self, caches):
        k = self.k
        c1, c2, c3 = caches["c"]
        (dlogits,) = k["softmax_cross_entropy"].backward(c3)
        dhT, dW, db = k["dense"].backward(c2, dlogits)
        dhs = np.zeros(caches["hs_shape"], self.dtype)   # the loss reads only the last hidden state
        _, _, _, dW_ih, dW_hh, db_ih, db_hh = k["lstm"].backward(c1, dhs, dhT)
        return {"W_ih": dW_ih, "W_hh": dW_hh, "b_ih": db_ih, "b_hh": db_hh, "W": dW, "b": db}


class CNN(_Model):
    """conv2d(1 -> F channels, 3x3, padding 1) -> relu -> maxpool2d(2) -> flatten -> dense -> softmax CE.

    ``hidden`` is the number of convolution channels F; the image side is sqrt(n_in) (8 for digits)."""

    kernels = ("conv2d", "relu", "maxpool2d", "dense", "softmax_cross_entropy")

    def __init__(self, n_in, n_classes, hidden=16, seed=0, backend="numpy", dtype="float64"):
        super().__init__(backend, dtype)
        side = int(round(np.sqrt(n_in)))
        if side * side != n_in or side % 2:
            raise ValueError(f"n_in: expected an even square image size, got {n_in}")
        self.side, self.F = side, hidden
        rng = np.random.default_rng(seed)
        t, flat = self.dtype, hidden * (side // 2) ** 2
        self.params = {  # He-normal convolution (fan-in 9, relu follows), Glorot-style dense
            "conv_w": (rng.standard_normal((hidden, 1, 3, 3)) * np.sqrt(2 / 9)).astype(t),
            "conv_b": np.zeros(hidden, t),
            "W": (rng.standard_normal((flat, n_classes)) / np.sqrt(flat)).astype(t),
            "b": np.zeros(n_classes, t),
        }

    def _forward(self, x, y):
        k, p = self.k, self.params
        n = x.shape[0]
        img = x.reshape(n, 1, self.side, self.side)
        z, c1 = k["conv2d"].forward(img, p["conv_w"], p["conv_b"], padding=1)
        a, c2 = k["relu"].forward(z)
        m, c3 = k["maxpool2d"].forward(a, kernel_size=2)
        logits, c4 = k["dense"].forward(m.reshape(n, -1), p["W"], p["b"])
        loss, c5 = k["softmax_cross_entropy"].forward(logits, y)
        return loss, {"c": (c1, c2, c3, c4, c5), "logits": logits, "pooled": m.shape}

    def _backward(self, caches):
        k = self.k
        c1, c2, c3, c4, c5 = caches["c"]
        (dlogits,) = k["softmax_cross_entropy"].backward(c5)
        dflat, dW, db = k["dense"].backward(c4, dlogits)
        (da,) = k["maxpool2d"].backward(c3, dflat.reshape(caches["pooled"]))
        (dz,) = k["relu"].backward(c2, da)
        _, dconv_w, dconv_b = k["conv2d"].backward(c1, dz)
        return {"conv_w": dconv_w, "conv_b": dconv_b, "W": dW, "b": db}


MODELS = {"mlp": MLP, "lstm": LSTMClassifier, "cnn": CNN}
