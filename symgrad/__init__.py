"""symgrad: derive back-propagation and optimizer updates with SymPy, emit checked kernels.

Public API
----------
Spec language: ``dims``, ``layer``, ``loss``, ``activation``, ``recurrent``, ``index``, ``constant``,
``hyper``, ``ANYSHAPE`` and the tensor functions (``exp``, ``log``, ``tanh``, ``sqrt``, ``abs``,
``maximum``, ``where``, ``sum``, ``mean``, ``max``, ``einsum``, ``apply``, ``one_hot``, ``stop_gradient``).
Optimizers: ``optimizer``, ``hparam``, ``schedule`` (update rules as SymPy equations).
Kernels: ``load(name, backend, dtype)``, ``check(names)``, ``generate(...)``, ``REGISTRY``.
Printouts: ``explain(name, lang="en"|"zh")`` (text, LaTeX, Markdown; Jupyter shows it richly).

The pipeline, one package each: ``spec`` -> ``derive`` -> ``ir`` -> ``targets.<numpy|c>`` ->
``generated/``, with ``verify`` (``check``), ``explanation`` (``explain``), ``examples`` and ``bench``
beside it; ``registry`` ties kernel kinds to what each stage does with them.
"""
from .api import *  # noqa: F401,F403 - the public API
from .api import __all__, __version__  # noqa: F401
from .builtins import layers as _builtin_layers, optimizers as _builtin_optimizers  # noqa: F401,E402
from .builtins import windows as _builtin_windows, normalization as _builtin_norm  # noqa: F401,E402
