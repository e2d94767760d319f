"""See it learn: training and optimizer pictures computed by symgrad's generated kernels only."""
from .digits import TrainResult, compare_batch_modes, load_split, plot_training, train_digits

__all__ = ["TrainResult", "compare_batch_modes", "load_split", "plot_training", "train_digits"]
