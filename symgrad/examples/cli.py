"""``symgrad train digits`` and ``symgrad plot optimizers``: the examples on the command line.

Heavy imports (scikit-learn, matplotlib, the kernels) happen only when a command runs.
"""
from __future__ import annotations

import click

from ..registry import REGISTRY
from ._common import ExampleError


def _hyper(items):
    """NAME=VALUE pairs -> dict (true/false -> bool, anything else -> float)."""
    out = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name:
            raise ExampleError(f"--hyper: expected NAME=VALUE, got {item!r}")
        low = value.strip().lower()
        if low in ("true", "false"):
            out[name] = low == "true"
            continue
        try:
            out[name] = float(value)
        except ValueError:
            raise ExampleError(f"--hyper {name}: expected a number, true or false, got {value!r}") from None
    return out


@click.group()
def train():
    """Train a model on a real data set with generated kernels only (forward, backward, optimizer)."""


@train.command()
@click.option("--model", type=click.Choice(["mlp", "lstm", "cnn"]), default="mlp", show_default=True,
              help="mlp: dense-layernorm-tanh-dense; lstm: reads the 8x8 image row by row; "
                   "cnn: conv2d-relu-maxpool2d-dense.")
@click.option("--optimizer", default=None, help="Any optimizer kernel (symgrad list) [default: adam; "
                                                "sgd with --compare-batch-modes].")
@click.option("--batch-size", default=None, metavar="N|full",
              help="full = batch GD, 1 = stochastic GD, N = mini-batch [default: 32].")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="[default: 15]")
@click.option("--lr", type=click.FloatRange(min=0), default=None,
              help="Learning rate [default: per optimizer, e.g. adam 0.01 (LSTM 0.02), sgd 0.1].")
@click.option("--lr-decay", type=float, default=None,
              help="Multiply lr by this after each epoch (exponential_decay kernel) "
                   "[default: 0.85; 1 with --compare-batch-modes].")
@click.option("--hyper", "hyper", multiple=True, metavar="NAME=VALUE",
              help="Another optimizer hyperparameter, e.g. --hyper momentum=0.9 (repeatable).")
@click.option("--hidden", type=click.IntRange(min=1), default=None,
              help="Hidden units [default: MLP 64, LSTM 32].")
@click.option("--seed", type=int, default=0, show_default=True, help="Initialization and shuffling.")
@click.option("--backend", type=click.Choice(REGISTRY.targets()), default="numpy", show_default=True)
@click.option("--dtype", type=click.Choice(["float64", "float32"]), default="float64", show_default=True)
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Save the loss curves as this PNG.")
@click.option("--compare-batch-modes", is_flag=True,
              help="Train as batch, stochastic and mini-batch GD and plot the three loss curves together.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def digits(model, optimizer, batch_size, epochs, lr, lr_decay, hyper, hidden, seed, backend, dtype, plot,
           compare_batch_modes, quiet):
    """Train on scikit-learn's bundled handwritten digits (fixed 80/20 split), print the test accuracy."""
    from .digits import compare_batch_modes as compare, train_digits
    kw = dict(model=model, epochs=epochs, lr=lr, lr_decay=lr_decay, hidden=hidden, seed=seed,
              backend=backend, dtype=dtype, progress=not quiet, **_hyper(hyper))
    if compare_batch_modes:
        if batch_size is not None:
            raise ExampleError("--batch-size: not used with --compare-batch-modes (it runs full, 1 and 32)")
        results = compare(optimizer=optimizer or "sgd", plot=plot, **kw)
        for r in results:
            click.echo(f"{r.label}: test accuracy {r.test_accuracy:.4f} ({len(r.step_loss)} steps, "
                       f"{r.seconds:.1f} s)")
    else:
        r = train_digits(optimizer=optimizer, batch_size=batch_size, plot=plot, **kw)
        click.echo(f"{r.model}, {r.label}, {r.epochs} epochs, {r.n_params} parameters, {r.seconds:.1f} s",
                   err=True)
        click.echo(f"test accuracy: {r.test_accuracy:.4f}")
    if plot:
        click.echo(f"wrote {plot}", err=True)


@click.group()
def plot():
    """Pictures computed by generated kernels."""


@plot.command()
@click.option("--function", "function", type=click.Choice(["rosenbrock", "beale", "saddle", "quadratic"]),
              default="rosenbrock", show_default=True, help="The 2-D test function.")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Steps per optimizer [default: per function].")
@click.option("--out", type=click.Path(dir_okay=False), default="optimizers.png", show_default=True)
@click.option("--loss-curve", is_flag=True, help="Add a panel with the loss against the steps.")
@click.option("--dtype", type=click.Choice(["float64", "float32"]), default="float64", show_default=True)
@click.option("--backend", type=click.Choice(REGISTRY.targets()), default="numpy", show_default=True)
def optimizers(function, steps, out, loss_curve, dtype, backend):
    """Trajectories of sgd, momentum, nesterov, adagrad, rmsprop and adam from one start on a contour plot."""
    from .optimizers import plot_optimizers
    runs = plot_optimizers(function, steps=steps, out=out, loss_curve=loss_curve, dtype=dtype, backend=backend)
    for r in runs:
        click.echo(f"{r.label:<34} final f = {r.losses[-1]: .6g} at ({r.path[-1][0]:.4f}, {r.path[-1][1]:.4f})")
    click.echo(f"wrote {out}", err=True)


def register(main: click.Group) -> None:
    main.add_command(train)
    main.add_command(plot)
