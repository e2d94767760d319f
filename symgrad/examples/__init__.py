"""See it learn: training and optimizer pictures computed by symgrad's generated kernels only.

``train_digits`` / ``compare_batch_modes`` train on scikit-learn's bundled digits (pip install
'symgrad[examples]'); ``plot_optimizers`` / ``trajectories`` run the optimizer kernels on 2-D test
functions. Plots need matplotlib (pip install 'symgrad[plot]'), imported only when drawing.
"""
from .digits import TrainResult, compare_batch_modes, load_split, plot_training, train_digits
from .optimizers import FUNCTIONS, OPTIMIZERS, Run, function_and_gradient, plot_optimizers, trajectories

__all__ = ["FUNCTIONS", "OPTIMIZERS", "Run", "TrainResult", "compare_batch_modes", "function_and_gradient",
           "load_split", "plot_optimizers", "plot_training", "train_digits", "trajectories"]
