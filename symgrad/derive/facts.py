"""Symbolic facts about optimizers, derived by SymPy from the registered update rules (for teaching).

Each function returns a ``Fact``: the statement as a SymPy ``Eq`` plus the intermediate SymPy objects
it was derived from, so a printout (``explain``) can show the steps. Every statement is checked
here (``sympy.simplify(lhs - rhs) == 0``) before it is returned.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from ..errors import SpecError
from ..registry import REGISTRY


@dataclass
class Fact:
    title: str
    statement: sp.Eq
    steps: dict = field(default_factory=dict)   # name -> SymPy object, in derivation order
    source: str = ""

    @property
    def holds(self) -> bool:
        return sp.simplify((self.statement.lhs - self.statement.rhs).doit()) == 0


def _checked(fact: Fact) -> Fact:
    if not fact.holds:  # pragma: no cover - a failure here is a bug in a rule or in SymPy
        raise SpecError(f"{fact.title}: SymPy could not prove {fact.statement}")
    return fact


def one_step(name: str, **flags) -> dict:
    """The rule of a registered optimizer as new values in terms of the old: {target: expr}."""
    spec = REGISTRY.get(name)
    flags = {f: flags.get(f, False) for f in spec.flag_names}
    env = {}
    for eq in spec.equations(**flags):
        env[eq.lhs] = eq.rhs.xreplace(env)
    return {k: v for k, v in env.items() if k.name in spec.state or k.name == spec.param}


def adam_bias_correction() -> Fact:
    """E[m_t] = (1 - beta1^t) g for a stationary gradient (E[g_k] = g) and m_0 = 0.

    Statement: Sum_{k=1..t} (1 - beta1) beta1^(t-k) g = (1 - beta1^t) g.
    Unrolling m_k = beta m_{k-1} + (1 - beta) g_k gives m_t = (1 - beta) sum_{k=1..t} beta^(t-k) g_k;
    its expectation is a finite geometric sum, which ``sympy.summation`` evaluates. Dividing by
    1 - beta1^t is Adam's bias correction (Kingma & Ba 2015, section 3).
    """
    beta = sp.Symbol("beta1", positive=True)
    g = sp.Symbol("g", real=True)
    t, k = sp.symbols("t k", integer=True, positive=True)
    gk = sp.Function("g")
    unrolled = sp.Sum((1 - beta) * beta ** (t - k) * gk(k), (k, 1, t))
    expectation = sp.Sum((1 - beta) * beta ** (t - k) * g, (k, 1, t))
    summed = sp.summation(expectation.function, (k, 1, t))
    if isinstance(summed, sp.Piecewise):  # the branch beta = 1 (no averaging) is excluded
        summed = next(e for e, c in summed.args if c != sp.Eq(beta, 1) and not c.has(sp.Eq(beta, 1)))
    factor = sp.factor(sp.simplify(summed / g))
    E_m = sp.Symbol("E[m_t]")
    return _checked(Fact(
        "Adam's bias correction", sp.Eq(expectation, (1 - beta ** t) * g, evaluate=False),
        steps={"m_t": unrolled, E_m: expectation, "evaluated": summed, "bias factor": factor},
        source="Kingma & Ba 2015, Adam, section 3"))


def tf_adam_epsilon_hat() -> Fact:
    """TF1's Adam equals torch's Adam with eps_hat = eps * sqrt(1 - beta2^t).

    Statement: tf_update(eps -> eps sqrt(1 - beta2^t)) = torch_update(eps); ``steps["eps_hat"]``
    is the solution SymPy finds for eps_hat.
    Both one-step parameter updates are taken from the registered ``adam`` and ``tf_adam`` rules;
    SymPy solves tf_update(eps_hat) = torch_update(eps) for eps_hat.
    """
    torch_p = one_step("adam")
    tf_p = one_step("tf_adam")
    sym = {s.name: s for e in list(torch_p.values()) + list(tf_p.values()) for s in e.free_symbols}
    p, eps, b2, t = sym["p"], sym["eps"], sym["beta2"], sym["t"]
    ren = {sym["m"]: sym["exp_avg"], sym["v"]: sym["exp_avg_sq"]}
    d_torch = sp.simplify(torch_p[p] - p)
    d_tf = sp.simplify(tf_p[p].xreplace(ren) - p)
    eps_hat = sp.Symbol("eps_hat", positive=True)
    sols = sp.solve(sp.Eq(d_tf.xreplace({eps: eps_hat}), d_torch), eps_hat)
    if len(sols) != 1:  # pragma: no cover
        raise SpecError(f"expected one solution for eps_hat, got {sols}")
    claimed = eps * sp.sqrt(1 - b2 ** t)
    proof = sp.simplify(d_tf.xreplace({eps: claimed}) - d_torch)
    fact = Fact("torch Adam vs TensorFlow Adam", sp.Eq(d_tf.xreplace({eps: claimed}), d_torch, evaluate=False),
                steps={"torch update": d_torch, "tf update": d_tf, "eps_hat": sols[0],
                       "tf(eps_hat) - torch": proof},
                source="tf.train.AdamOptimizer docs ('epsilon hat'); torch.optim.Adam")
    if proof != 0:  # pragma: no cover
        raise SpecError(f"{fact.title}: difference {proof} is not 0")
    return _checked(fact)


def nesterov_torch_vs_cs231n() -> Fact:
    """torch's Nesterov SGD and the CS231n form take the same step while lr is constant.

    torch (registered ``sgd``, nesterov): buf' = mu buf + g, p' = p - lr (g + mu buf').
    CS231n: v' = mu v - lr g, p' = p - mu v + (1 + mu) v'. With v = -lr_prev buf (true when every
    earlier step used the same lr), the two new parameters differ by mu^2 (lr_prev - lr) buf, which is 0
    exactly when lr = lr_prev; the buffers then again satisfy v' = -lr buf'.
    """
    torch_new = one_step("sgd", nesterov=True, has_momentum=True)
    sym = {s.name: s for e in torch_new.values() for s in e.free_symbols}
    p, g, lr, mu, buf = sym["p"], sym["g"], sym["lr"], sym["momentum"], sym["momentum_buffer"]
    torch_new = {k: v.xreplace({sym["dampening"]: 0}) for k, v in torch_new.items()}
    lr_prev = sp.Symbol("lr_prev", positive=True)
    v = -lr_prev * buf
    v_new = mu * v - lr * g
    p_cs = p - mu * v + (1 + mu) * v_new
    diff = sp.factor(sp.expand(p_cs - torch_new[p]))
    const_lr = sp.simplify(diff.xreplace({lr_prev: lr}))
    velocity = sp.simplify((v_new + lr * torch_new[buf]).xreplace({lr_prev: lr}))
    fact = Fact("torch Nesterov vs CS231n Nesterov", sp.Eq(p_cs - torch_new[p], mu ** 2 * (lr - lr_prev) * buf, evaluate=False),
                steps={"torch p'": torch_new[p], "cs231n p'": sp.expand(p_cs), "difference": diff,
                       "difference at constant lr": const_lr,
                       "v' + lr buf' at constant lr": velocity},
                source="cs231n.github.io/neural-networks-3 (Nesterov momentum); torch.optim.SGD")
    if const_lr != 0 or velocity != 0:  # pragma: no cover
        raise SpecError(f"{fact.title}: not equal at constant lr ({const_lr}, {velocity})")
    return _checked(fact)
