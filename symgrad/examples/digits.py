"""Train on scikit-learn's bundled handwritten digits (8x8 images, 10 classes, 1797 samples; no
download) with generated kernels only: forward, backward and optimizer steps.

Batch gradient descent is ``batch_size="full"`` (one step per epoch on every training sample),
stochastic gradient descent ``batch_size=1``, anything else mini-batch (Bottou, Curtis & Nocedal
2018, "Optimization Methods for Large-Scale Machine Learning", section 3).
"""
from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from ._common import ExampleError, Optimizer, load_kernel, optimizer_names
from .models import MODELS
from ._common import new_figure, save_figure

SPLIT_SEED = 20240611   # the train/test split is fixed, whatever --seed says
TEST_FRACTION = 0.2

# Defaults per model: chosen so that the defaults reach >= 0.95 (MLP) / >= 0.90 (LSTM) / >= 0.97 (CNN)
# test accuracy.
DEFAULTS = {
    "mlp": {"optimizer": "adam", "epochs": 15, "hidden": 64, "batch_size": 32, "lr_decay": 0.85, "lr": {}},
    "lstm": {"optimizer": "adam", "epochs": 15, "hidden": 32, "batch_size": 32, "lr_decay": 0.85,
             "lr": {"adam": 0.02}},
    "cnn": {"optimizer": "adam", "epochs": 15, "hidden": 32, "batch_size": 32, "lr_decay": 0.85, "lr": {}},
}
# Learning rates per optimizer (the torch defaults of adagrad/rmsprop/adam are tuned for bigger nets).
DEFAULT_LR = {"sgd": 0.1, "tf_momentum": 0.05, "adagrad": 0.05, "rmsprop": 0.003, "adam": 0.01,
              "adamw": 0.01, "tf_adam": 0.01}
DEFAULT_HYPER = {"tf_momentum": {"momentum": 0.9}}   # tf_momentum has no default momentum


def load_split(dtype="float64"):
    """(x_train, y_train, x_test, y_test): pixels scaled to [0, 1], a fixed 80/20 split."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise ExampleError("the digits example needs scikit-learn, which is not installed: "
                           "pip install 'symgrad[examples]'") from e
    data = load_digits()
    x = (data.data / 16.0).astype(dtype)
    y = data.target.astype(np.int64)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(y))
    n_test = int(round(TEST_FRACTION * len(y)))
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


@dataclass
class TrainResult:
    """What a run measured. Losses are mean cross-entropies; ``step_loss`` is each step's batch loss
    and ``step_epoch`` the (fractional) epoch at which it was taken."""
    model: str
    optimizer: str
    batch_size: int | str
    lr: float
    epochs: int
    seed: int
    n_params: int
    lr_decay: float = 1.0
    train_loss: list = field(default_factory=list)   # full training set, after each epoch (index 0: before)
    test_loss: list = field(default_factory=list)
    test_accuracy_curve: list = field(default_factory=list)
    step_loss: list = field(default_factory=list)
    step_epoch: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def test_accuracy(self) -> float:
        return self.test_accuracy_curve[-1]

    @property
    def label(self) -> str:
        mode = {"full": "batch GD", 1: "stochastic GD (batch 1)"}.get(self.batch_size,
                                                                     f"mini-batch {self.batch_size}")
        decay = f" x{self.lr_decay:g}/epoch" if self.lr_decay != 1 else ""
        return f"{mode}, {self.optimizer} lr={self.lr:g}{decay}"


def _batch_size(batch_size, n):
    if batch_size == "full":
        return n
    try:
        b = int(batch_size)
    except (TypeError, ValueError):
        b = 0
    if b < 1 or str(batch_size).strip() != str(b):
        raise ExampleError(f"batch_size: expected a positive integer or 'full', got {batch_size!r}")
    return min(b, n)


def train_digits(model="mlp", optimizer=None, batch_size=None, epochs=None, lr=None, seed=0,
                 backend="numpy", dtype="float64", hidden=None, lr_decay=None, plot=None, progress=False,
                 max_train=None, **hyper) -> TrainResult:
    """Train ``model`` ("mlp", "lstm" or "cnn") on the digits and return a :class:`TrainResult`.

    ``optimizer`` is any registered optimizer kernel (``symgrad list``); ``hyper`` are extra
    hyperparameters for its ``step`` (``momentum=0.9``, ``nesterov=True``, ...). ``lr_decay``: the
    learning rate is multiplied by it after every epoch (the generated ``exponential_decay`` schedule,
    staircase form; 1 = constant). ``batch_size``:
    "full" (batch GD), 1 (stochastic) or N (mini-batch). ``plot``: a .png file for the loss curves.
    ``progress``: a progress bar per epoch on stderr. ``max_train``: use only the first samples
    of the training split (for quick tests).
    """
    if model not in MODELS:
        raise ExampleError(f"model: expected one of {', '.join(MODELS)}, got {model!r}")
    d = DEFAULTS[model]
    optimizer = optimizer or d["optimizer"]
    if optimizer not in optimizer_names():
        raise ExampleError(f"optimizer: expected one of {', '.join(optimizer_names())}, got {optimizer!r}")
    epochs = d["epochs"] if epochs is None else int(epochs)
    if epochs < 1:
        raise ExampleError(f"epochs: expected a positive integer, got {epochs!r}")
    lr = d["lr"].get(optimizer, DEFAULT_LR.get(optimizer, 0.01)) if lr is None else float(lr)
    lr_decay = d["lr_decay"] if lr_decay is None else float(lr_decay)
    if not 0 < lr_decay <= 1:
        raise ExampleError(f"lr_decay: expected a value in (0, 1], got {lr_decay!r}")
    if batch_size is None:
        batch_size = d["batch_size"]
    x_tr, y_tr, x_te, y_te = load_split(dtype)
    if max_train is not None:
        x_tr, y_tr = x_tr[:max_train], y_tr[:max_train]
    n = len(y_tr)
    b = _batch_size(batch_size, n)
    batch_size = "full" if batch_size == "full" else b

    net = MODELS[model](x_tr.shape[1], 10, hidden=hidden or d["hidden"], seed=seed, backend=backend,
                        dtype=dtype)
    hyper = {**DEFAULT_HYPER.get(optimizer, {}), **hyper}
    opt = Optimizer(optimizer, net.params, backend=backend, dtype=dtype, lr=lr, **hyper)
    schedule = load_kernel("exponential_decay", backend, dtype)
    res = TrainResult(model, optimizer, batch_size, lr, epochs, seed, net.n_params(), lr_decay)
    rng = np.random.default_rng(seed)

    def record():
        res.train_loss.append(net.evaluate(x_tr, y_tr)[0])
        loss, acc = net.evaluate(x_te, y_te)
        res.test_loss.append(loss)
        res.test_accuracy_curve.append(acc)

    t0 = time.perf_counter()
    record()
    n_batches = -(-n // b)
    for epoch in range(epochs):
        opt.hyper["lr"] = schedule.value(lr, epoch, 1, lr_decay, staircase=True)   # lr * decay**epoch
        order = rng.permutation(n) if b < n else np.arange(n)
        with _batches(n_batches, f"epoch {epoch + 1}/{epochs}", progress) as batches:
            for i in batches:
                idx = order[i * b:(i + 1) * b]
                loss, grads = net.loss_and_grads(x_tr[idx], y_tr[idx])
                opt.step(net.params, grads)
                res.step_loss.append(loss)
                res.step_epoch.append(epoch + (i + 1) / n_batches)
        record()
        if progress:
            _echo(f"epoch {epoch + 1}/{epochs}: train loss {res.train_loss[-1]:.4f}, "
                  f"test loss {res.test_loss[-1]:.4f}, test accuracy {res.test_accuracy:.4f}")
    res.seconds = time.perf_counter() - t0
    if plot:
        plot_training([res], plot)
    return res


def compare_batch_modes(model="mlp", optimizer="sgd", epochs=None, lr=None, batch_sizes=("full", 1, 32),
                        lr_decay=1.0, plot=None, **kw) -> list[TrainResult]:
    """Train the same model, from the same initial weights and with the same constant learning rate
    (by default), as batch, stochastic and mini-batch gradient descent; with ``plot``, put their loss
    curves in one picture."""
    lr_decay = 1.0 if lr_decay is None else lr_decay
    results = [train_digits(model, optimizer=optimizer, batch_size=bs, epochs=epochs, lr=lr,
                            lr_decay=lr_decay, **kw)
               for bs in batch_sizes]
    if plot:
        plot_training(results, plot, title=f"{model.upper()} on digits: batch vs stochastic vs mini-batch "
                                              f"gradient descent ({optimizer})")
    return results


def plot_training(results, path, title=None):
    """Loss curves of one or more runs against epochs (left, log scale): the loss on the whole
    training set (solid) and test set (dashed) after each epoch, and each step's batch loss
    (faint; for batches smaller than 32, a running mean over 32 samples); test accuracy (right)."""
    from matplotlib.lines import Line2D

    fig = new_figure((11, 5.2))
    ax, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.6, 1]})
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"]
    handles = []
    for r, c in zip(results, colors * 4):
        if len(r.step_loss) > 1:
            b = r.batch_size if isinstance(r.batch_size, int) else 32
            w = max(1, -(-32 // b))
            loss = np.convolve(r.step_loss, np.ones(w) / w, mode="valid")
            ax.plot(r.step_epoch[w - 1:], loss, color=c, alpha=0.3, lw=0.6)
        ep = np.arange(len(r.train_loss))
        ax.plot(ep, r.train_loss, color=c, lw=2, marker="o", ms=3)
        ax.plot(ep, r.test_loss, color=c, lw=1.2, ls="--")
        ax2.plot(ep, r.test_accuracy_curve, color=c, lw=2, marker="o", ms=3)
        handles.append(Line2D([], [], color=c, lw=2, label=f"{r.label}: test accuracy {r.test_accuracy:.4f}"))
    handles += [Line2D([], [], color="k", lw=2, label="loss on the whole training set"),
                Line2D([], [], color="k", lw=1.2, ls="--", label="loss on the test set"),
                Line2D([], [], color="k", lw=0.6, alpha=0.4, label="loss of each step's batch")]
    ax.set_yscale("log")
    ax.set_xlabel("epoch (passes over the training set)")
    ax.set_ylabel("mean cross-entropy loss (log scale)")
    ax.set_title("loss", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax2.axhline(0.1, color="gray", lw=0.8, ls=":")
    ax2.text(0, 0.12, "chance", color="gray", fontsize=8)
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("test accuracy")
    ax2.set_ylim(0, 1.02)
    ax2.set_title("test accuracy", fontsize=10)
    ax2.grid(alpha=0.3)
    fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=8)
    fig.subplots_adjust(bottom=0.13 + 0.045 * ((len(handles) + 1) // 2), top=0.88, wspace=0.25)
    r0 = results[0]
    fig.suptitle(title or f"{r0.model.upper()} on digits ({r0.n_params} parameters), {r0.label}, "
                          f"{r0.epochs} epochs", fontsize=11)
    return save_figure(fig, path)


def _batches(n, label, progress):
    """range(n), shown as a click progress bar on stderr when ``progress``."""
    if not progress:
        return contextlib.nullcontext(range(n))
    import click
    return click.progressbar(range(n), label=label, file=sys.stderr, width=30, show_pos=True)


def _echo(msg):
    import click
    click.echo(msg, err=True)
