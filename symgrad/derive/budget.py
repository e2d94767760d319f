"""A derivation budget: every optional SymPy rewrite (``solve``, ``simplify``, ``factor``) runs under a
bound and gives way to the plain ``sympy.diff`` form when the bound is hit.

Two bounds, the first deterministic (so the same spec gives byte-identical files on any machine):

1. size: a rewrite is tried only when its input has at most ``MAX_OPS`` operations
   (``sympy.count_ops``); callers add structural conditions of their own (``derive/stable.py``);
2. time, as a safety net: a rewrite still running after ``SECONDS`` is abandoned (SIGALRM, in the
   main thread of a POSIX process; elsewhere only the size bound applies).

Ordinary specs stay far inside both (the built-ins' rewrites take milliseconds), so the time bound
decides nothing for them. Source of the approach: SymPy's own ``simplify(..., ratio=)`` guard and
the ``timeout`` of its test runner.
"""
from __future__ import annotations

import signal
import threading
from typing import Callable

import sympy as sp

MAX_OPS = 60
SECONDS = 2.0


class _OutOfTime(BaseException):
    """Raised by the alarm; a BaseException so SymPy's ``except Exception`` blocks cannot swallow it."""


def within(exprs, max_ops: int = MAX_OPS) -> bool:
    """Whether the expressions are small enough to try a rewrite on."""
    total = 0
    for e in exprs:
        if isinstance(e, sp.Basic):
            total += sp.count_ops(e)
            if total > max_ops:
                return False
    return True


def bounded(fn: Callable, *args, default=None, seconds: float = SECONDS, max_ops: int = MAX_OPS, **kwargs):
    """``fn(*args, **kwargs)``, or ``default`` when the arguments exceed ``max_ops`` operations, when
    ``fn`` runs longer than ``seconds``, or when SymPy gives up (NotImplementedError and the like)."""
    if not within(args, max_ops):
        return default
    timed = (hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
             and signal.getitimer(signal.ITIMER_REAL)[0] == 0)   # nested: the outer bound applies
    if not timed:
        return _call(fn, args, kwargs, default)

    def alarm(signum, frame):
        raise _OutOfTime

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return _call(fn, args, kwargs, default)
    except _OutOfTime:
        return default
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _call(fn, args, kwargs, default):
    try:
        return fn(*args, **kwargs)
    except (NotImplementedError, TypeError, ValueError, ZeroDivisionError, RecursionError):
        return default
