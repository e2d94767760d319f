"""PyTorch reference implementations of the built-in layers, used only as a test oracle.

Each takes the kernel's forward arguments (as float64 torch tensors) and returns its outputs.
"""
import torch
import torch.nn.functional as F

REFS = {
    "dense": lambda x, W, b: x @ W + b,
    "sigmoid": lambda z: torch.sigmoid(z),
    "tanh": lambda z: torch.tanh(z),
    "relu": lambda z: torch.relu(z),
    "softmax": lambda z: torch.softmax(z, dim=-1),
    "dense_sigmoid": lambda x, W, b: torch.sigmoid(x @ W + b),
    "dense_tanh": lambda x, W, b: torch.tanh(x @ W + b),
    "dense_relu": lambda x, W, b: torch.relu(x @ W + b),
    "mse": lambda pred, target: F.mse_loss(pred, target),
    "bce_logits": lambda z, target: F.binary_cross_entropy_with_logits(z, target),
    "softmax_cross_entropy": lambda z, target: F.cross_entropy(z, target),
    "layernorm": lambda x, gamma, beta: F.layer_norm(x, (x.shape[-1],), gamma, beta, eps=1e-5),
}
