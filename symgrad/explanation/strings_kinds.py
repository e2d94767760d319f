"""Prose of the optimizer, schedule and recurrent explanations (English and Chinese).

Merged into the tables of ``symgrad.explanation.strings``; ``MEANING_*`` describe the hyperparameters and
state of the built-in optimizers (a user's optimizer shows its names without a description).
"""
from __future__ import annotations

EN_MORE = {
    "kind_optimizer": "optimizer", "kind_schedule": "schedule", "kind_recurrent": "recurrent layer",
    "kind_cell": "cell",
    "title_optimizer": "{name}: the update rule",
    "title_schedule": "{name}: the schedule formula",
    "intro_optimizer": "An optimizer is defined by its update rule, written as SymPy equations. Every equation "
                       "below is printed from the same objects (spec.variants()) that generate the fused step "
                       "of generated/numpy/{name}.py; a gradient descent step turns the gradient g into a parameter "
                       "update.",
    "intro_average": "An average is defined by its update rule, written as SymPy equations, and runs like an "
                     "optimizer step. Every equation below is printed from the same objects (spec.variants()) "
                     "that generate generated/numpy/{name}.py.",
    "intro_schedule": "A schedule is one SymPy formula per flag value; the formulas below are printed from the "
                      "same objects that generate generated/numpy/{name}.py.",
    "h_opt_symbols": "Symbols",
    "opt_symbols_intro": "The parameter, its gradient and the step count; written with the notation of the "
                         "torch.optim documentation, the code's names beside them.",
    "col_symbol": "symbol", "col_code": "name in the code", "col_meaning": "meaning",
    "col_default": "default", "col_valid": "valid range", "col_init": "initial value",
    "col_when": "value",
    "sym_p": "the parameter being trained, updated in place",
    "sym_g": "its gradient ∂L/∂p from backward (the input of the step)",
    "sym_t": "the step count: 1 on the first step",
    "h_state": "State",
    "state_intro": "Arrays of the parameter's shape kept between steps; init(param) creates them:",
    "state_none": "None: the step reads only the parameter and the gradient.",
    "h_hypers": "Hyperparameters",
    "hypers_intro": "Scalars passed to step (a value outside its range raises ValueError):",
    "init_hyper": " (passed to init, sets the initial state)",
    "required": "required",
    "h_flags": "Flags and run-time conditions",
    "flags_intro": "Each combination of these selects one fused step in the generated module; a condition is "
                   "evaluated at run time from the hyperparameters and t:",
    "flag_bool": "boolean hyperparameter, default {d}",
    "requires_intro": "Checked before every step:",
    "h_update": "Update equations",
    "update_intro": "Applied in order; x ← e gives x its new value (later lines read the new value). A line "
                    "marked \"if\" belongs only to the flag combinations that satisfy its condition. The "
                    "conditions are computed by SymPy (sympy.logic.SOPform) from spec.variants() ({k} in "
                    "all), so this one listing is every variant at once.",
    "update_if": "if ",
    "variants_list": "The variants, each a separate fused function in the generated code:",
    "h_bias": "Why Adam divides by 1 − β₁ᵗ: the bias correction",
    "bias_intro": "The first moment starts at m₀ = 0 and is updated as m ← m + (1 − β₁)(g − m) = β₁m + (1 − β₁)g. "
                  "Unrolled over the steps k = 1 .. t:",
    "bias_expect": "If the gradients are stationary, E[g_k] = g, the expectation is a finite geometric sum:",
    "bias_sum": "which sympy.summation evaluates:",
    "bias_factor": "So E[m_t] = (1 − β₁ᵗ) g: m is biased towards 0 by the factor {f}, largest in the first "
                   "steps. Dividing by it gives an unbiased estimate; the same sum with β₂ gives the factor "
                   "1 − β₂ᵗ of v, which appears as √(1 − β₂ᵗ) under the square root. These are the factors "
                   "lr/(1 − β₁ᵗ) and √(1 − β₂ᵗ) of the update above (Kingma & Ba 2015, section 3).",
    "h_epshat": "torch and TensorFlow: where ε goes (ε̂)",
    "epshat_intro": "The parameter change of one step, with m and v the new moments, in torch's form (adam) and "
                    "in TensorFlow 1's form (tf_adam) with its ε written ε̂:",
    "epshat_solve": "SymPy solves Δp_TF(ε̂) = Δp_torch(ε) for ε̂:",
    "epshat_note": "TensorFlow adds ε̂ to √v of the uncorrected v; torch adds ε to the corrected √(v / (1 − β₂ᵗ)). "
                   "With the same ε the two differ most in the first steps; TensorFlow's ε̂ = ε√(1 − β₂ᵗ) makes "
                   "them equal (SymPy checks the difference simplifies to 0 on the full one-step update).",
    "h_nesterov": "torch's Nesterov and the CS231n form",
    "nesterov_intro": "torch keeps the learning rate η out of the buffer b; the CS231n notes keep a velocity "
                      "v = −η·b in it. One step of each from the same state (v = −η_prev b, η_prev the learning "
                      "rate of the earlier steps):",
    "nesterov_diff": "Their difference, factored by SymPy:",
    "nesterov_note": "It is 0 exactly when η = η_prev: with a constant learning rate both take the same steps; "
                     "with a schedule (lr changing) they differ by this term.",
    "h_worked": "Worked example, computed by the generated kernel",
    "ema_worked": "x = [1, 2, 3, 4, 5] fed to sg.load(\"ema\").step one value per step (avg ← x on the first "
                  "step):",
    "col_step": "t", "col_x": "x_t",
    "sched_worked": "Values of sg.load(\"{name}\").value with {args}:",
    "col_global_step": "global_step",
    "h_sched_formula": "Formula",
    "sched_variant": "{flags}:",
    "sched_note": "With staircase the exponent is floored: the rate changes in steps every decay_steps; "
                  "without it the decay is smooth. In TF1's minimize(..., global_step), update number t uses "
                  "global_step = t − 1.",
    "h_code_opt": "From the equations to the code",
    "code_opt": "The fused step {fn} of generated/numpy/{name}.py for {flags}: in-place NumPy ufunc calls over "
                "blocks of the arrays, generated from the equations above:",
    "code_note": "Regenerate the kernel with `symgrad generate {name}` and this page with "
                 "`symgrad explain {name}`.",
    # recurrent
    "intro_recurrent": "A recurrent layer is defined by its cell: one time step, forward only. symgrad derives "
                       "the cell's backward pass with SymPy; the time loop and back-propagation through time "
                       "(BPTT) come from the template. Every formula below is printed from the derivation that "
                       "generates generated/numpy/{name}.py.",
    "dim_time": "number of time steps (the leading axis of {seq})",
    "h_seq": "The kernel over a sequence",
    "seq_intro": "The generated kernel runs the cell for t = 0 .. T − 1. Its arguments and results, in terms "
                 "of the cell's symbols at step t:",
    "seq_input": "sequence input; the cell's {x} at step t is {x}[t]",
    "seq_state0": "initial state: the cell's {s} at step 0",
    "seq_param": "parameter, shared by every step",
    "seq_outs": "the cell's {s} of every step, stacked over t",
    "seq_final": "the state after the last step",
    "h_forward_step": "Forward pass: one time step",
    "gates_intro": "The four gates are slices of the stacked {g} (each {w} wide): {parts}.",
    "h_backward_step": "Backward pass for one step: the chain rule",
    "local_slice": "A slice copies elements unchanged: the local derivative is 1 for the columns it takes, 0 "
                   "for the others. Its gradient goes back into the same columns of {g}:",
    "concat_total": "The transpose of slicing is concatenation: {g} collects the four blocks side by side.",
    "h_bptt": "Back-propagation through time",
    "bptt_intro": "Backward runs the derived step for t = T − 1 down to 0. Inside step t the cell's upstream "
                  "gradients are the gradient of the loss at that step's output plus what step t + 1 sent "
                  "back to its state inputs; d{h}[t] and d{c}[t] below are the cell's d{h}, d{c} at step t "
                  "(gradients with respect to the state before step t):",
    "bptt_start": "The last step, t = T − 1, has no later step sending gradient back, so the state "
                  "gradients it receives are only those given to backward: {h}[T] = {hT} and {c}[T] = {cT} "
                  "(zeros when backward is called without them). After the loop, the gradients of the "
                  "initial state are those of step 0:",
    "bptt_params": "Parameters are shared by every step, so their gradients add up over t:",
    "bptt_seq": "The sequence input gets one gradient per step:",
    "h_plan": "What the kernel moves out of the time loop",
    "plan_intro": "Only what carries the state must run step by step (symgrad.ir.recurrent.plan). "
                  "Before the loop, for all t at once:",
    "plan_loop": "Inside the forward loop, step t:",
    "plan_bloop": "Inside the reversed backward loop, step t:",
    "plan_post": "After the loop, over the per-step values stacked in time ({stacked}):",
    "plan_none": "(nothing)",
    "plan_names": "The code's temporaries are the values of the derivation: {names}.",
}

ZH_MORE = {
    "kind_optimizer": "优化器", "kind_schedule": "学习率调度", "kind_recurrent": "循环层", "kind_cell": "单元",
    "title_optimizer": "{name}：参数更新规则",
    "title_schedule": "{name}：调度公式",
    "intro_optimizer": "优化器由它的更新规则定义，写成 SymPy 方程。下面每个方程都打印自生成 generated/numpy/{name}.py "
                       "中融合 step 函数的同一组对象（spec.variants()）；梯度下降的每一步把梯度 g 变成一次参数更新。",
    "intro_average": "滑动平均由它的更新规则定义（SymPy 方程），像优化器的 step 一样运行。下面每个方程都打印自生成 "
                     "generated/numpy/{name}.py 的同一组对象（spec.variants()）。",
    "intro_schedule": "调度由每个标志取值下的一个 SymPy 公式给出；下面的公式打印自生成 generated/numpy/{name}.py 的同一组对象。",
    "h_opt_symbols": "符号",
    "opt_symbols_intro": "参数、它的梯度和步数；记号采用 torch.optim 文档的写法，旁边是代码中的名字。",
    "col_symbol": "符号", "col_code": "代码中的名字", "col_meaning": "含义",
    "col_default": "默认值", "col_valid": "取值范围", "col_init": "初值", "col_when": "取值",
    "sym_p": "要训练的参数，原地更新",
    "sym_g": "反向传播给出的梯度 ∂L/∂p（step 的输入）",
    "sym_t": "步数：第一步为 1",
    "h_state": "状态",
    "state_intro": "与参数形状相同、在各步之间保留的数组；由 init(param) 创建：",
    "state_none": "无：每一步只读取参数和梯度。",
    "h_hypers": "超参数",
    "hypers_intro": "传给 step 的标量（超出取值范围会抛出 ValueError）：",
    "init_hyper": "（传给 init，设定状态初值）",
    "required": "必填",
    "h_flags": "标志与运行时条件",
    "flags_intro": "它们的每种组合对应生成模块中的一个融合 step 函数；条件在运行时由超参数和 t 求值：",
    "flag_bool": "布尔超参数，默认 {d}",
    "requires_intro": "每一步之前检查：",
    "h_update": "更新方程（参数更新）",
    "update_intro": "按顺序执行；x ← e 表示 x 取新值（后面的行读到的是新值）。标有“若”的行只属于满足其条件的标志组合。"
                    "条件由 SymPy（sympy.logic.SOPform）从 spec.variants()（共 {k} 个变体）算出，所以这一份列表同时就是所有变体。",
    "update_if": "若 ",
    "variants_list": "各个变体，在生成的代码中各是一个融合函数：",
    "h_bias": "Adam 为什么除以 1 − β₁ᵗ：偏差修正",
    "bias_intro": "一阶矩从 m₀ = 0 开始，按 m ← m + (1 − β₁)(g − m) = β₁m + (1 − β₁)g 更新。对步 k = 1 .. t 展开：",
    "bias_expect": "若梯度平稳，即 E[g_k] = g，期望是一个有限等比数列求和：",
    "bias_sum": "sympy.summation 求得：",
    "bias_factor": "所以 E[m_t] = (1 − β₁ᵗ) g：m 被因子 {f} 拉向 0，前几步最明显。除以它就得到无偏估计；对 β₂ 做同样的求和"
                   "得到 v 的因子 1 − β₂ᵗ，它在平方根下以 √(1 − β₂ᵗ) 出现。这正是上面更新中的 lr/(1 − β₁ᵗ) 和 √(1 − β₂ᵗ)"
                   "（Kingma & Ba 2015，第 3 节）。",
    "h_epshat": "torch 与 TensorFlow：ε 加在哪里（ε̂）",
    "epshat_intro": "一步的参数变化量（m、v 为新的矩估计）：torch 的形式（adam）和 TensorFlow 1 的形式（tf_adam，其 ε 记作 ε̂）：",
    "epshat_solve": "SymPy 解方程 Δp_TF(ε̂) = Δp_torch(ε)，得到 ε̂：",
    "epshat_note": "TensorFlow 把 ε̂ 加在未修正的 v 的 √v 上；torch 把 ε 加在修正后的 √(v / (1 − β₂ᵗ)) 上。ε 相同时二者在前几步"
                   "差别最大；取 ε̂ = ε√(1 − β₂ᵗ) 时二者相等（SymPy 验证完整一步更新的差化简为 0）。",
    "h_nesterov": "torch 的 Nesterov 与 CS231n 的写法",
    "nesterov_intro": "torch 把学习率 η 放在缓冲 b 之外；CS231n 讲义的速度 v = −η·b 把它包含在内。从同一状态出发各走一步"
                      "（v = −η_prev b，η_prev 是之前各步的学习率）：",
    "nesterov_diff": "二者之差（SymPy 因式分解）：",
    "nesterov_note": "当且仅当 η = η_prev 时它为 0：学习率不变时两种写法走的每一步都相同；学习率按调度变化时相差这一项。",
    "h_worked": "算例（由生成的算子计算）",
    "ema_worked": "把 x = [1, 2, 3, 4, 5] 逐步送入 sg.load(\"ema\").step（第一步 avg ← x）：",
    "col_step": "t", "col_x": "x_t",
    "sched_worked": "sg.load(\"{name}\").value 在 {args} 时的取值：",
    "col_global_step": "global_step",
    "h_sched_formula": "公式",
    "sched_variant": "{flags}：",
    "sched_note": "staircase 时指数取整：学习率每 decay_steps 步阶梯式下降；否则平滑衰减。在 TF1 的 "
                  "minimize(..., global_step) 中，第 t 次更新使用 global_step = t − 1。",
    "h_code_opt": "从方程到代码",
    "code_opt": "generated/numpy/{name}.py 中 {flags} 时的融合函数 {fn}：由上面的方程生成、按块原地执行的 NumPy ufunc 调用：",
    "code_note": "用 `symgrad generate {name}` 重新生成算子，用 `symgrad explain {name}` 重新生成本页。",
    "intro_recurrent": "循环层由它的单元定义：一个时间步，只写前向传播。symgrad 用 SymPy 推导单元的反向传播；时间循环和随时间反向传播"
                       "（BPTT）来自模板。下面每个公式都打印自生成 generated/numpy/{name}.py 的推导。",
    "dim_time": "时间步数（{seq} 的第 0 轴）",
    "h_seq": "整个序列上的算子",
    "seq_intro": "生成的算子对 t = 0 .. T − 1 依次运行单元。它的参数和结果，用第 t 步单元的符号表示：",
    "seq_input": "序列输入；第 t 步单元的 {x} 是 {x}[t]",
    "seq_state0": "初始状态：第 0 步单元的 {s}",
    "seq_param": "参数，各时间步共享",
    "seq_outs": "每一步单元的 {s}，按 t 堆叠",
    "seq_final": "最后一步之后的状态",
    "h_forward_step": "前向传播：一个时间步",
    "gates_intro": "四个门是堆叠的 {g} 的切片（各 {w} 宽）：{parts}。",
    "h_backward_step": "一个时间步的反向传播：链式法则",
    "local_slice": "切片原样复制元素：对它取的列局部导数为 1，其余列为 0。它的梯度回到 {g} 的同样几列：",
    "concat_total": "切片的转置是拼接：{g} 把四块并排拼起来。",
    "h_bptt": "随时间反向传播（BPTT）",
    "bptt_intro": "反向传播对 t = T − 1 到 0 依次运行推导出的单步。第 t 步单元的上游梯度是损失对该步输出的梯度，加上第 t + 1 步"
                  "传回到其状态输入的梯度；下面的 d{h}[t]、d{c}[t] 是第 t 步单元的 d{h}、d{c}（对第 t 步之前状态的梯度）：",
    "bptt_start": "最后一步 t = T − 1 之后没有更晚的时间步传回梯度，所以它收到的状态梯度只有传给 backward 的："
                  "{h}[T] = {hT}，{c}[T] = {cT}（backward 未给出时为零）。循环结束后，初始状态的梯度就是第 0 步的梯度：",
    "bptt_params": "参数被每一步共享，所以它们的梯度对 t 求和：",
    "bptt_seq": "序列输入每一步得到一个梯度：",
    "h_plan": "算子移出时间循环的部分",
    "plan_intro": "只有传递状态的计算必须逐步执行（symgrad.ir.recurrent.plan）。循环之前，对所有 t 一次算出：",
    "plan_loop": "前向循环内，第 t 步：",
    "plan_bloop": "反向循环内（t 递减），第 t 步：",
    "plan_post": "循环之后，对按时间堆叠的每步数值（{stacked}）：",
    "plan_none": "（无）",
    "plan_names": "代码中的临时变量就是推导中的这些量：{names}。",
}

MEANING_EN = {
    "lr": "learning rate", "momentum": "momentum factor", "dampening": "dampening of the momentum",
    "weight_decay": "weight decay (L2 penalty)", "lr_decay": "learning-rate decay",
    "initial_accumulator_value": "initial value of the sum of squares", "eps": "term added for numerical stability",
    "alpha": "smoothing constant of the square average", "beta1": "decay rate of the first moment",
    "beta2": "decay rate of the second moment", "beta": "weight of the old average",
    "momentum_buffer": "momentum buffer (velocity)", "sum": "sum of squared gradients",
    "square_avg": "running average of g²", "grad_avg": "running average of g (centered)",
    "exp_avg": "first moment: running average of g", "exp_avg_sq": "second moment: running average of g²",
    "max_exp_avg_sq": "running maximum of the second moment (amsgrad)", "m": "first moment",
    "v": "second moment", "accum": "accumulated gradient (velocity)",
    "global_step": "number of updates done", "decay_steps": "steps per decay period",
    "decay_rate": "factor per decay period", "avg": "the running average, updated in place",
    "x": "the new value", "nesterov": "Nesterov momentum", "maximize": "ascend instead of descend",
    "centered": "divide by the centered variance", "amsgrad": "use the maximum of v (AMSGrad)",
    "use_nesterov": "Nesterov momentum", "staircase": "floor the exponent",
    "has_momentum": "momentum in use", "has_weight_decay": "weight decay in use", "first_step": "first step",
    "mu_product": "product of the momentum coefficients mu_1 ... mu_t (one scalar per parameter)",
    "momentum_decay": "decay of the momentum schedule mu_t = beta1 (1 - 0.5 * 0.96^(t psi))",
    "decoupled_weight_decay": "decay p directly (AdamW style) instead of adding wd p to g",
    "rectified": "the variance rectification applies (rho_t > 5)",
}

MEANING_ZH = {
    "lr": "学习率", "momentum": "动量系数", "dampening": "动量阻尼", "weight_decay": "权重衰减（L2 惩罚）",
    "lr_decay": "学习率衰减", "initial_accumulator_value": "平方和的初值", "eps": "保证数值稳定的小量",
    "alpha": "平方均值的平滑常数", "beta1": "一阶矩的衰减率", "beta2": "二阶矩的衰减率", "beta": "旧平均值的权重",
    "momentum_buffer": "动量缓冲（速度）", "sum": "梯度平方和", "square_avg": "g² 的滑动平均",
    "grad_avg": "g 的滑动平均（centered）", "exp_avg": "一阶矩：g 的滑动平均", "exp_avg_sq": "二阶矩：g² 的滑动平均",
    "max_exp_avg_sq": "二阶矩的历史最大值（amsgrad）", "m": "一阶矩", "v": "二阶矩", "accum": "累积梯度（速度）",
    "global_step": "已完成的更新次数", "decay_steps": "每个衰减周期的步数", "decay_rate": "每个周期的衰减因子",
    "avg": "滑动平均值，原地更新", "x": "新的观测值", "nesterov": "Nesterov 动量", "maximize": "梯度上升而非下降",
    "centered": "除以中心化的方差", "amsgrad": "使用 v 的最大值（AMSGrad）", "use_nesterov": "Nesterov 动量",
    "staircase": "指数向下取整", "has_momentum": "使用动量", "has_weight_decay": "使用权重衰减", "first_step": "第一步",
    "mu_product": "动量系数之积 mu_1 ... mu_t（每个参数一个标量）",
    "momentum_decay": "动量调度 mu_t = beta1 (1 - 0.5 * 0.96^(t psi)) 的衰减率",
    "decoupled_weight_decay": "直接衰减 p（AdamW 方式），而不是把 wd p 加到 g 上",
    "rectified": "方差修正生效（rho_t > 5）",
}
