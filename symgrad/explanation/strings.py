"""Prose of the explanations, one table per language (English default, Chinese ``zh``).

Placeholders ``{name}`` take plain strings or ``Math`` objects; ``Strings.parts`` splits a template into
prose and mathematics so that every renderer prints the mathematics its own way.
"""
from __future__ import annotations

import re
import string

from .model import Math
from .strings_kinds import EN_MORE, ZH_MORE

LANGS = ("en", "zh")

EN = {
    "title": "{name}: derivation of the forward and backward pass",
    "kind_layer": "layer", "kind_activation": "activation", "kind_loss": "loss",
    "intro": "This {kind} is defined by its forward pass only; symgrad derives the backward pass with "
             "SymPy. Every formula below is printed from the same derivation that generates "
             "generated/numpy/{name}.py.",
    "h_legend": "Symbols and shapes (indices count from 0, as in the code)",
    "legend_dims": "Dimensions are named, each with an index letter; indices count from 0, as in the code.",
    "col_dim": "dimension", "col_index": "index", "col_meaning": "meaning",
    "dim_axis": "size of axis {axis} of {arg}",
    "dim_batch": "; the batch: N = all samples (batch gradient descent), 1 (stochastic gradient descent) "
                 "or the mini-batch size (mini-batch gradient descent)",
    "dim_any": "number of elements (the input may have any shape; {k} runs over all elements)",
    "dim_other": "a dimension of the derivation",
    "dim_out": "number of window positions along {L}: {f}",
    "dim_window": "window size (the size parameter {name})",
    "role_flag": "flag: 1 = True (training mode), 0 = False (eval mode); default {default}",
    "role_size": "integer size parameter (default {default})",
    "size_stride": "stride: the step between two windows; ",
    "size_padding": "padding: cells added on each side of the input; ",
    "size_dilation": "dilation: the spacing between a window's cells; ",
    "size_kernel_size": "the window's size (kernel_size × kernel_size); ",
    "unfold_note": "A window read (im2col): {u} holds cell {cells} of window {at}, the element of {x} at "
                   "{pos} ({sizes}); {fill}.",
    "unfold_zero": "outside its axes {x} reads 0 (the zero padding)",
    "unfold_fill": "outside the input it reads {fill}, so a padded cell never wins the max",
    "local_unfold": "A window read: each element of {u} is one element of {x} (or the padding), so the local "
                    "derivative is 1 where a window cell reads that element of {x} and 0 elsewhere; {g} adds up "
                    "{du} over every window cell that read the element (the transpose of the window read, a "
                    "scatter-add: col2im)",
    "col_symbol": "symbol", "col_shape": "shape", "col_role": "role", "col_code": "name in the code",
    "scalar": "scalar",
    "role_input": "input (gets a gradient)", "role_const": "input without gradient",
    "role_ids": "integer class ids in 0 .. {bound} - 1",
    "role_hyper": "hyperparameter (default {default})",
    "role_inter": "intermediate value", "role_output": "output",
    "role_upstream": "upstream gradient ∂L/∂{of}, the input of backward",
    "role_grad": "gradient ∂L/∂{of}",
    "fused": "(fused, not stored)",
    "h_forward": "Forward pass, element by element (sums written out)",
    "forward_intro": "Every step of the forward graph, element by element (sums are written out):",
    "matrix_form": "In matrix form:",
    "stop_note": "{m} enters {users} through stop_gradient: backward treats it as a constant. {first} does "
                 "depend on {m}, but {last} does not (a shift of {m} cancels out of it), so the gradient "
                 "contributions through {m} add up to zero and leaving them out is exact.",
    "h_backward": "Backward pass: the chain rule step by step",
    "backward_intro": "Write dX for ∂L/∂X, the gradient of the final loss L with respect to X. Backward "
                      "starts from the upstream gradient {up} and walks the graph from the output back to "
                      "the inputs; each step multiplies the upstream gradient by the local derivative that "
                      "SymPy computed (sympy.diff). This is the chain rule.",
    "dloss_one": "When the loss is the final output, L = {of} and the upstream gradient is {g} = ∂L/∂L = 1 "
                 "(backward's default dloss=1.0); another value scales every gradient below.",
    "h_through": "Step {k}: from {node} back to {arg}",
    "h_textbook": "As textbooks write it",
    "textbook_opt": "The same step as {source} writes it (x ← e in order, later lines read the new values):",
    "textbook_proof": "SymPy composes these lines and the derived update above into the new {x} and simplifies "
                      "their difference (for v ≥ 0 and 1 − βᵗ > 0):",
    "textbook_layernorm": "The gradient of LayerNorm's input as textbooks write it (the CS231n notes; mean over "
                          "the normalized axis, rstd = 1/√(var + eps)):",
    "textbook_proof_layer": "SymPy expands each mean into its sum / D and simplifies the difference with the "
                            "derived dx above:",
    "textbook_lstm": "The step in the equations of the torch.nn.LSTM documentation, gates in its order i, f, g, o, "
                     "each with its own blocks W_ii = W_ih[0:H], W_if = W_ih[H:2H], W_ig, W_io (and W_h·, b_i·, b_h·):",
    "textbook_proof_lstm": "SymPy replaces each block by its rows of W_ih, W_hh, b_ih, b_hh and simplifies every "
                           "difference with the derived forward step above:",
    "win_reindex": "The scatter-add in {g} sums over every window position, with a condition. SymPy solves "
                   "{eq} for {i}: {sol}, so each sum over a window position keeps one term, present when {grid}. "
                   "Substituting the steps and the forward window reads (SymPy), the gradient reads:",
    "win_conv": "So {g} is a full convolution of {dy} with the kernel {w}: every output position whose window "
                "covers the input element sends back {dy} times the kernel cell that multiplied it ({dy} read as "
                "0 off its grid of positions, i.e. zero-padded, and between positions when s > 1). It is the "
                "transpose of the forward correlation.",
    "win_flip": "With stride 1, SymPy substitutes {a} → (KH − 1 − a, KW − 1 − b) in the sums (the same ranges, "
                "summed in reverse): {w} appears rotated by 180°, and the gradient is the correlation of {dy}, "
                "zero-padded by d (KH − 1) − p, with the flipped kernel:",
    "win_pool_max": "So {g} collects {dy} from every window that covers the element, times the mask of the "
                    "arg-max (1 where the element is the window's maximum, shared among ties): the gradient "
                    "goes to the maximum of each window and is scattered back to its place.",
    "win_pool": "So {g} collects {dy} from every window that covers the element, spread equally over the "
                "window's cells.",
    "win_weight": "Substituting the forward window read into {g} (SymPy): a correlation of the input with {dy} "
                  "(the input read at stride s and dilation d, zero outside):",
    "win_bias": "{g} is the sum of {dy} over the batch and every position (the bias is added at each one), "
                "step by step above.",
    "bn_modes": "SymPy sets the flag {t} in the derived dx. In eval mode ({t} = 0) the statistics are the "
                "running ones, constants for backward, and every term through them drops:",
    "bn_train": "In training mode ({t} = 1) mu = mean and sigma2 = var. SymPy writes every {x} as {xhat}/{r} + "
                "{mean} (exact, as {xhat} = ({x} − {mean}) {r}), splits the double sums into products of single "
                "sums, and uses that the normalized values sum to zero over the batch (summing {xhat} by "
                "linearity, mean = Σ x / N):",
    "bn_textbook": "As textbooks write it (Ioffe & Szegedy 2015; the CS231n notes), and SymPy's verdict on the "
                   "difference with the derived form above:",
    "title_numbers": "{name}: worked numbers",
    "numbers_intro": "The derivation again on a tiny input ({dims}; random seed {seed}, inputs rounded to one "
                     "decimal): each printed expression is evaluated with these numbers, and the generated "
                     "kernel computes the same values (checked at the end). Numbers are shown to 4 digits.",
    "h_numbers_inputs": "Inputs and the upstream gradient",
    "numbers_dloss": "The loss is the final output, so backward starts from dloss = ∂L/∂L = 1.",
    "h_numbers_sgd": "One SGD update",
    "numbers_sgd": "With learning rate η = {lr}, each parameter takes one gradient-descent step θ ← θ − η dθ:",
    "numbers_check": "Every value above was computed from the printed expressions; the generated kernel "
                     "(symgrad.load) returns {names} and agrees to {err} (largest absolute difference).",
    "upstream": "Upstream gradient {g}. ",
    "local": "Local derivative (sympy.diff)",
    "local_used": ", rewritten in terms of the output {y} (see the simplifications)",
    "local_indicator": ", its indicator written as the one-hot itself (see the simplifications)",
    "local_einsum": "Local derivative (the contraction is linear in {arg})",
    "local_sum": "Local derivative of a sum: 1 for every summed element, so the upstream gradient is "
                 "broadcast back over the summed axes",
    "local_max": "Local derivative of a max: 1 at the arg-max (shared equally among ties), 0 elsewhere",
    "local_expand": "An inserted size-1 axis: the gradient is summed over it",
    "product": "Upstream gradient × local derivative:",
    "then_product": "; then upstream gradient × local derivative (and its matrix form):",
    "cancel": "Summing over {j}, the term {term} of the upstream gradient vanishes: its factor {rest} does not "
              "depend on {j}, and {v} sums to zero over {j} (SymPy):",
    "product_part": "Upstream gradient × local derivative (one contribution to {g}):",
    "total": "{x} is used more than once, so {g} adds up the contributions:",
    "h_simpl": "Simplifications made by the engine",
    "simpl_output": "∂{y}/∂{x}: SymPy gives {local}. The engine solves {y} = f({x}) for {x} with SymPy, "
                    "substitutes, verifies the result at random points, and uses {used}{nice}. Backward "
                    "reads the saved output {y} instead of recomputing from {x}, and cannot overflow.",
    "simpl_stable": "In the code, {expr} is evaluated in the numerically stable form {stable} (an identity "
                    "that SymPy verifies).",
    "simpl_none": "None: every local derivative is used as SymPy computed it.",
    "simpl_indicator": "∂{y}/∂{x}: SymPy gives {local}. The one-hot in its condition is 0 or 1, and the "
                       "condition holds exactly where it is 1 (SymPy checks both values), so the engine uses "
                       "{used}{nice}: the same values, and no branch in backward.",
    "simpl_mean": "In the code, {mean} (the mean of {v}) is computed as the corrected two-pass mean "
                  "m0 + mean({v} − m0), m0 the plain mean (Higham, Accuracy and Stability of Numerical "
                  "Algorithms, §1.9): the same value in exact arithmetic, and within rounding of the true mean in "
                  "floating point, so a constant row is centered to exactly 0 (as in torch).",
    "simpl_powers": "In the code, {grad} is evaluated without powers of {r}: {r}·{v} is replaced by the saved "
                    "{w}, and {r} is moved into the row sums it multiplies (an exact identity), so no "
                    "intermediate value leaves the scale of the inputs ({r}³ underflows for rows of size 1e16 "
                    "in float32).",
    "h_final": "Final gradients",
    "final_intro": "The gradient of {x} in index notation, in terms of the named gradients above:",
    "final_in_steps": "Each gradient is the last equation of its step above.",
    "final_all": "Every step substituted and simplified by SymPy (sympy.simplify); each gradient in terms of the "
                 "named gradients is the last equation of its step above:",
    "final_matrix": "Vectorized (matrix form, ᵀ is the transpose):",
    "final_full": "Substituting every step and simplifying with SymPy (sympy.simplify):",
    "final_norm": "where {p} = {e} / {s} is {e} normalized over its sum{soft}; with it SymPy simplifies to:",
    "softmax_of": ", i.e. softmax({z})",
    "final_named": "In terms of the named value {p} = {a}·{b} and its gradient {dp} (substituting {a} = {p} / {b} "
                   "and taking factors out of the sums; a sum over a row divided by its length is the row's "
                   "mean), the same gradient reads:",
    "final_update": "Gradient descent then updates each trained parameter θ as θ ← θ − η dθ "
                    "(learning rate η).",
    "h_saved": "Saved for the backward pass (forward's cache, read by backward)",
    "saved_intro": "Forward stores these values in its cache because backward reads them:",
    "col_why": "read by",
    "why_step": "{g} in step {k}",
    "saved_none": "Nothing besides the inputs listed: backward needs only the upstream gradient.",
    "h_code": "From the derivation to the code",
    "code_backward": "The body of backward in generated/numpy/{name}.py, printed from the same kernel IR "
                     "(fused elementwise steps, common subexpressions named by sympy.cse):",
    "code_note": "Regenerate the kernel with `symgrad generate {name}` and this page with "
                 "`symgrad explain {name}`.",
}

ZH = {
    "title": "{name}：前向传播与反向传播的推导",
    "kind_layer": "层", "kind_activation": "激活函数", "kind_loss": "损失函数",
    "intro": "这个{kind}只由前向传播定义；symgrad 用 SymPy 推导出反向传播。下面每个公式都打印自生成 "
             "generated/numpy/{name}.py 的同一个推导。",
    "h_legend": "符号与形状（下标从 0 开始计数，与代码一致）",
    "legend_dims": "每个维度都有名字和对应的下标字母；下标从 0 开始计数，与代码一致。",
    "col_dim": "维度", "col_index": "下标", "col_meaning": "含义",
    "dim_axis": "{arg} 第 {axis} 轴的长度",
    "dim_batch": "；批大小：N = 全部样本（批量梯度下降 BGD）、1（随机梯度下降 SGD）或小批量的大小（小批量梯度下降）",
    "dim_any": "元素个数（输入可以是任意形状；{k} 遍历所有元素）",
    "dim_other": "推导中的一个维度",
    "dim_out": "沿 {L} 的窗口位置数：{f}",
    "dim_window": "窗口大小（尺寸参数 {name}）",
    "role_flag": "开关：1 = True（训练模式），0 = False（推理模式）；默认 {default}",
    "role_size": "整数尺寸参数（默认 {default}）",
    "size_stride": "步幅 stride：相邻两个窗口之间的步长；",
    "size_padding": "填充 padding：在输入每一侧补上的格数；",
    "size_dilation": "膨胀 dilation：窗口内相邻两格之间的间距；",
    "size_kernel_size": "窗口大小（kernel_size × kernel_size）；",
    "unfold_note": "窗口读取（im2col）：{u} 存放窗口 {at} 的第 {cells} 格，即 {x} 在 {pos} 处的元素"
                   "（{sizes}）；{fill}。",
    "unfold_zero": "超出各轴范围时 {x} 读作 0（零填充）",
    "unfold_fill": "超出输入范围时读作 {fill}，所以填充的格子永远不会成为最大值",
    "local_unfold": "窗口读取：{u} 的每个元素就是 {x} 的一个元素（或填充值），所以局部导数在窗口格读取 {x} "
                    "该元素处为 1，其余为 0；{g} 把读取过该元素的每个窗口格的 {du} 加起来（窗口读取的转置，"
                    "即散射相加 scatter-add：col2im）",
    "col_symbol": "符号", "col_shape": "形状", "col_role": "作用", "col_code": "代码中的名字",
    "scalar": "标量",
    "role_input": "输入（求梯度）", "role_const": "输入（不求梯度）",
    "role_ids": "整数类别编号 0 .. {bound} - 1",
    "role_hyper": "超参数（默认 {default}）",
    "role_inter": "中间变量", "role_output": "输出",
    "role_upstream": "上游梯度 ∂L/∂{of}，反向传播的输入",
    "role_grad": "梯度 ∂L/∂{of}",
    "fused": "（已融合，不单独存储）",
    "h_forward": "前向传播（逐元素写出，求和显式写出）",
    "forward_intro": "前向计算图的每一步，逐元素写出（求和显式写出）：",
    "matrix_form": "矩阵形式：",
    "stop_note": "{m} 经过 stop_gradient 进入 {users}：反向传播把它当作常数。{first} 确实依赖 {m}，但 {last} "
                 "不依赖它（{m} 的平移在其中相互抵消），所以经过 {m} 的梯度贡献之和为零，略去它们是精确的。",
    "h_backward": "反向传播：逐步应用链式法则",
    "backward_intro": "记 dX = ∂L/∂X，即最终损失 L 对 X 的梯度。反向传播从上游梯度 {up} 出发，沿计算图从输出"
                      "走回输入；每一步把上游梯度乘以 SymPy（sympy.diff）求出的局部导数。这就是链式法则。",
    "dloss_one": "当损失就是最终输出时，L = {of}，上游梯度 {g} = ∂L/∂L = 1（backward 的默认值 dloss=1.0）；"
                 "给其他值会按比例缩放下面的每个梯度。",
    "h_through": "第 {k} 步：从 {node} 回到 {arg}",
    "h_textbook": "教科书中的写法",
    "textbook_opt": "同一步更新按 {source} 的写法（x ← e 依次执行，后面的行读取新值）：",
    "textbook_proof": "SymPy 把这些行与上面推导出的更新分别合成为新的 {x}，并化简二者之差（v ≥ 0，1 − βᵗ > 0）：",
    "textbook_layernorm": "教科书（CS231n 讲义）中 LayerNorm 输入梯度的写法（mean 对归一化的轴求均值，rstd = 1/√(var + eps)）：",
    "textbook_proof_layer": "SymPy 把每个 mean 展开为求和 / D，并化简它与上面推导出的 dx 之差：",
    "textbook_lstm": "按 torch.nn.LSTM 文档中的方程写出这一步，门的顺序为 i、f、g、o，每个门有自己的权重块 "
                     "W_ii = W_ih[0:H]、W_if = W_ih[H:2H]、W_ig、W_io（以及 W_h·、b_i·、b_h·）：",
    "textbook_proof_lstm": "SymPy 把每个权重块换成 W_ih、W_hh、b_ih、b_hh 的对应行，并化简它与上面推导出的前向一步之差：",
    "win_reindex": "{g} 中的散射相加对所有窗口位置求和，并带一个条件。SymPy 从 {eq} 解出 {i}：{sol}，所以对窗口位置的"
                   "每个求和只剩一项，且仅当 {grid} 时存在。代入各步与前向的窗口读取（SymPy），梯度写作：",
    "win_conv": "所以 {g} 是 {dy} 与卷积核 {w} 的全卷积（full convolution）：窗口覆盖该输入元素的每个输出位置，"
                "把 {dy} 乘以与它相乘过的那个核元素送回来（{dy} 在其位置网格之外读作 0，即零填充；s > 1 时"
                "位置之间也读作 0）。它是前向互相关的转置。",
    "win_flip": "步幅为 1 时，SymPy 在求和中代入 {a} → (KH − 1 − a, KW − 1 − b)（范围不变，倒序求和）：{w} 旋转了 "
                "180°，梯度就是零填充 d (KH − 1) − p 之后的 {dy} 与翻转后的卷积核的互相关：",
    "win_pool_max": "所以 {g} 收集覆盖该元素的每个窗口的 {dy}，再乘以最大值位置的掩码（该元素是窗口最大值时为 1，"
                    "并列时平分）：梯度只流向每个窗口的最大值，并被散射回它原来的位置。",
    "win_pool": "所以 {g} 收集覆盖该元素的每个窗口的 {dy}，平均分给窗口内的各格。",
    "win_weight": "把前向的窗口读取代入 {g}（SymPy）：输入与 {dy} 的互相关（输入按步幅 s、膨胀 d 读取，超出范围为 0）：",
    "win_bias": "{g} 是 {dy} 在批和所有位置上的和（偏置加在每个位置上），见上面的步骤。",
    "bn_modes": "SymPy 在推导出的 dx 中代入开关 {t}。推理模式（{t} = 0）下统计量是运行统计量，对反向传播而言是常数，"
                "经过它们的各项全部消失：",
    "bn_train": "训练模式（{t} = 1）下 mu = mean，sigma2 = var。SymPy 把每个 {x} 写成 {xhat}/{r} + {mean}（精确成立，"
                "因为 {xhat} = ({x} − {mean}) {r}），把二重求和拆成单重求和之积，并利用归一化后的值在批上求和为零"
                "（按线性对 {xhat} 求和，mean = Σ x / N）：",
    "bn_textbook": "教科书中的写法（Ioffe 与 Szegedy 2015；CS231n 讲义），以及 SymPy 对它与上面推导形式之差的化简结果：",
    "title_numbers": "{name}：数值算例",
    "numbers_intro": "用一个很小的输入把推导再走一遍（{dims}；随机种子 {seed}，输入保留一位小数）：每个打印出的表达式都代入"
                     "这些数字求值，生成的算子算出相同的值（最后核对）。数字显示 4 位有效数字。",
    "h_numbers_inputs": "输入与上游梯度",
    "numbers_dloss": "损失就是最终输出，所以反向传播从 dloss = ∂L/∂L = 1 开始。",
    "h_numbers_sgd": "一次 SGD 更新",
    "numbers_sgd": "学习率 η = {lr}，每个参数做一步梯度下降 θ ← θ − η dθ：",
    "numbers_check": "上面每个值都由打印出的表达式算出；生成的算子（symgrad.load）返回的 {names} 与之一致，"
                     "最大绝对误差 {err}。",
    "upstream": "上游梯度 {g}。",
    "local": "局部导数（sympy.diff）",
    "local_used": "，改写为用输出 {y} 表示（见化简一节）",
    "local_indicator": "，其中的指示函数写成 one-hot 本身（见化简一节）",
    "local_einsum": "局部导数（该矩阵乘法对 {arg} 是线性的）",
    "local_sum": "求和的局部导数：每个被求和的元素都是 1，所以上游梯度沿求和轴广播回去",
    "local_max": "最大值的局部导数：在最大值位置为 1（并列时平分），其余为 0",
    "local_expand": "插入的长度为 1 的轴：梯度沿该轴求和",
    "product": "上游梯度 × 局部导数：",
    "then_product": "；然后是上游梯度 × 局部导数（及其矩阵形式）：",
    "cancel": "对 {j} 求和时，上游梯度中的 {term} 一项消失：它的因子 {rest} 与 {j} 无关，而 {v} 对 {j} 的和为零（SymPy 验证）：",
    "product_part": "上游梯度 × 局部导数（对 {g} 的一项贡献）：",
    "total": "{x} 被使用了不止一次，所以 {g} 是各项贡献之和：",
    "h_simpl": "引擎所做的化简",
    "simpl_output": "∂{y}/∂{x}：SymPy 给出 {local}。引擎用 SymPy 从 {y} = f({x}) 解出 {x}，代入并在随机点上验证，"
                    "改用 {used}{nice}。反向传播读取保存的输出 {y}，不必从 {x} 重新计算，也不会溢出。",
    "simpl_stable": "代码中 {expr} 按数值稳定的形式 {stable} 计算（SymPy 验证过的恒等式）。",
    "simpl_none": "无：每个局部导数都按 SymPy 求出的形式使用。",
    "simpl_indicator": "∂{y}/∂{x}：SymPy 给出 {local}。条件中的 one-hot 只取 0 或 1，且条件恰在其为 1 时成立"
                       "（SymPy 检查了两个取值），所以引擎改用 {used}{nice}：数值相同，反向传播中也没有分支。",
    "simpl_mean": "代码中 {mean}（{v} 的均值）按修正的两遍均值 m0 + mean({v} − m0) 计算，m0 为普通均值"
                  "（Higham《Accuracy and Stability of Numerical Algorithms》§1.9）：精确算术下数值相同，"
                  "浮点运算中与真实均值只差舍入误差，所以常数行中心化后恰好为 0（与 torch 相同）。",
    "simpl_powers": "代码中计算 {grad} 时不出现 {r} 的幂：{r}·{v} 换成保存的 {w}，{r} 移进它所乘的行求和中"
                    "（恒等变形），所以中间值都保持输入的量级（float32 中行的量级为 1e16 时 {r}³ 会下溢）。",
    "h_final": "最终梯度",
    "final_intro": "{x} 的梯度，用下标形式和上面命名的梯度写出：",
    "final_in_steps": "每个梯度就是上面对应步骤的最后一个方程。",
    "final_all": "代入每一步并用 SymPy 化简（sympy.simplify）；用命名梯度表示的形式就是上面各步的最后一个方程：",
    "final_matrix": "向量化（矩阵形式，ᵀ 表示转置）：",
    "final_full": "代入每一步并用 SymPy 化简（sympy.simplify）：",
    "final_norm": "其中 {p} = {e} / {s} 是 {e} 按其和归一化的结果{soft}；用它 SymPy 化简为：",
    "softmax_of": "，即 softmax({z})",
    "final_named": "用命名的量 {p} = {a}·{b} 及其梯度 {dp} 表示（代入 {a} = {p} / {b}，并把常数因子提到求和号外；"
                   "一行的和除以行长就是该行的均值），同一个梯度写作：",
    "final_update": "之后梯度下降按 θ ← θ − η dθ 更新每个要训练的参数 θ（学习率 η），即参数更新。",
    "h_saved": "为反向传播保存的值（前向传播的 cache，供反向传播读取）",
    "saved_intro": "前向传播把这些值存入 cache，因为反向传播要读取它们：",
    "col_why": "被谁读取",
    "why_step": "第 {k} 步的 {g}",
    "saved_none": "除上面列出的输入外无需保存：反向传播只需要上游梯度。",
    "h_code": "从推导到代码",
    "code_backward": "generated/numpy/{name}.py 中 backward 的函数体，打印自同一个算子 IR"
                     "（逐元素步骤已融合，公共子表达式由 sympy.cse 命名）：",
    "code_note": "用 `symgrad generate {name}` 重新生成算子，用 `symgrad explain {name}` 重新生成本页。",
}

TABLES = {"en": EN, "zh": ZH}
_FIELD = re.compile(r"\{(\w+)\}")


class Strings:
    """``S("key", x=...)`` gives a list of prose/Math parts; ``S.text("key", ...)`` a plain string."""

    def __init__(self, lang: str):
        if lang not in TABLES:
            raise ValueError(f"lang: expected one of {', '.join(LANGS)}, got {lang!r}")
        self.lang, self.table = lang, TABLES[lang]

    def __call__(self, key: str, **kw) -> list:
        parts, pos, tpl = [], 0, self.table[key]
        for mt in _FIELD.finditer(tpl):
            parts.append(tpl[pos:mt.start()])
            v = kw[mt.group(1)]
            parts.extend(v if isinstance(v, list) else [v if isinstance(v, Math) else str(v)])
            pos = mt.end()
        parts.append(tpl[pos:])
        merged = []
        for p in parts:
            if isinstance(p, str) and merged and isinstance(merged[-1], str):
                merged[-1] += p
            elif p != "":
                merged.append(p)
        return merged

    def text(self, key: str, **kw) -> str:
        return string.Formatter().vformat(self.table[key], (), kw)


def _merge():
    for table, more in ((EN, EN_MORE), (ZH, ZH_MORE)):
        for k, v in more.items():
            table.setdefault(k, v)


_merge()
