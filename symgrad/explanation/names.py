"""How optimizer and schedule pages name things: torch.optim's symbols (lr as eta, exp_avg as m) with
the code's names beside them, numbers as people write them, expressions renamed for display."""
from __future__ import annotations

import sympy as sp

from .model import m
from .notation import Word

DISPLAY = {"lr": "eta", "momentum": "mu", "dampening": "tau", "weight_decay": "lambda", "eps": "epsilon",
           "exp_avg": "m", "exp_avg_sq": "v", "max_exp_avg_sq": "v_max", "momentum_buffer": "b",
           "square_avg": "v", "grad_avg": "g_avg", "accum": "a", "sum": "s"}


def display_map(names, taken=()) -> dict:
    """code name -> display name (the code name when the display name would clash)."""
    out, used = {}, set(taken) | set(names)
    for n in names:
        want = DISPLAY.get(n)
        if want and want not in used and want not in out.values():
            out[n] = want
        else:
            out[n] = n
    return out


def number(x):
    """A default value as people write it: 0.001, 1e-08 (text) and 10^{-8} (LaTeX)."""
    x = float(x)
    text = f"{x:g}"
    if "e" in text:
        mant, exp = text.split("e")
        latex = (f"{mant} \\cdot " if mant != "1" else "") + "10^{%d}" % int(exp)
    else:
        latex = text
    return m(None, latex=latex, text=text)


def rename(expr, names: dict, words=()):
    """``expr`` with every symbol renamed through ``names`` (assumptions kept); symbols named in
    ``words`` (flags, multi-word arguments) are shown as upright words (``notation.Word``)."""
    expr = sp.sympify(expr)
    sub = {}
    for s in expr.free_symbols:
        if type(s) is not sp.Symbol:
            continue
        new = names.get(s.name, s.name)
        if new in words:
            sub[s] = Word(new, **s.assumptions0)
        elif new != s.name:
            sub[s] = sp.Symbol(new, **s.assumptions0)
    return expr.xreplace(sub)
