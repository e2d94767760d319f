"""The description line of each built-in kernel in Chinese (the first line of its docstring).

A user's kernel keeps its own first docstring line in every language; ``description`` falls back to it.
"""
from __future__ import annotations

DOC_ZH = {
    "adagrad": "Adagrad（torch.optim.Adagrad；Duchi 等，2011）。",
    "adam": "Adam（torch.optim.Adam；Kingma 与 Ba，2015），L2 权重衰减 g = g + wd p。",
    "nadam": "NAdam：带 Nesterov 动量的 Adam（torch.optim.NAdam；Dozat 2016）。",
    "radam": "RAdam：方差修正的 Adam（torch.optim.RAdam；Liu 等 2020）。",
    "adamw": "AdamW（torch.optim.AdamW；Loshchilov 与 Hutter，2019），先做解耦的权重衰减 p = p (1 - lr wd)。",
    "bce_logits": "基于 logits 的二元交叉熵，对所有元素取平均（torch BCEWithLogitsLoss）：",
    "avgpool2d": "二维平均池化（torch.nn.functional.avg_pool2d，count_include_pad=True）：每个 kernel_size × "
                 "kernel_size 窗口的均值，填充的格子按 0 计入。",
    "batchnorm": "沿批维度的批归一化（torch.nn.functional.batch_norm，x 形状 (N, D)）：训练模式用本批的均值与"
                 "有偏方差，并原地更新 running_mean、running_var；推理模式用这两个运行统计量。",
    "batchnorm2d": "对 x (N, C, H, W) 的每个通道做批归一化（torch.nn.functional.batch_norm）：统计量取自批维度和"
                   "两个空间维度（每个通道 N H W 个值），其余同 batchnorm。",
    "conv1d": "一维卷积（torch.nn.functional.conv1d，实际是互相关）：窗口读取后与卷积核做一次求和（einsum）。",
    "conv2d": "二维卷积（torch.nn.functional.conv2d，实际是互相关）：im2col 窗口读取后与卷积核做一次求和（einsum）。",
    "dense": "仿射变换 y = x W + b（即 torch.nn.Linear，W = weight.T）。",
    "dense_relu": "融合的全连接层 + relu：a = relu(x W + b)。",
    "dense_sigmoid": "融合的全连接层 + sigmoid：a = sigmoid(x W + b)。",
    "dense_tanh": "融合的全连接层 + tanh：a = tanh(x W + b)。",
    "ema": "指数移动平均：第一步 avg = x，之后 avg = beta avg + (1 - beta) x。",
    "exponential_decay": "学习率指数衰减（tf.train.exponential_decay，TF1）。",
    "layernorm": "沿最后一个轴做层归一化（torch.nn.functional.layer_norm）：",
    "lstm": "单层 LSTM，语义同 torch.nn.LSTM：门 i、f、g、o 依次堆叠在 W_ih (4H, D)、W_hh (4H, H) 中。",
    "maxpool2d": "二维最大池化（torch.nn.functional.max_pool2d）：取每个 kernel_size × kernel_size 窗口的最大值，"
                 "填充的格子读作 −∞。",
    "mse": "对所有元素求均方误差：mean((pred - target)^2)（torch.nn.MSELoss）。",
    "relu": "逐元素 relu：a = Piecewise((z, z > 0), (0, True))（PyTorch 语义）。",
    "rmsprop": "RMSprop（torch.optim.RMSprop；Hinton 课程第 6e 讲，中心化形式见 Graves 2013）。",
    "sgd": "带动量的随机梯度下降（torch.optim.SGD）。",
    "sigmoid": "逐元素 sigmoid：a = 1/(1 + exp(-z))（PyTorch 语义）。",
    "softmax": "沿最后一个轴的 softmax：a = exp(z - max z) / sum_c exp(z - max z)。",
    "softmax_cross_entropy": "基于 logits 与类别编号的 softmax 交叉熵，对批取平均（torch cross_entropy）：",
    "tanh": "逐元素 tanh：a = tanh(z)（PyTorch 语义）。",
    "tf_adam": "Adam 的 TensorFlow 1 “epsilon hat” 形式（tf.train.AdamOptimizer）。",
    "tf_momentum": "动量法的 TensorFlow 1 形式（tf.train.MomentumOptimizer）：lr 和 momentum 必须给出。",
}


def description(spec, lang: str) -> list:
    """The page's description line as a one-element list (empty when the spec has no docstring)."""
    first = (spec.doc or "").strip().splitlines()
    if not first:
        return []
    if lang == "zh" and spec.name in DOC_ZH:
        return [DOC_ZH[spec.name]]
    return [first[0]]
