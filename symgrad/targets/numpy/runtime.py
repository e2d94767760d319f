"""Loading generated NumPy modules in-process: render the spec's module and execute it in a fresh
module object (cached per process), so a user's own spec loads exactly like a built-in."""
from __future__ import annotations

import hashlib
import linecache
import types


def module_from_source(name: str, source: str, backend: str) -> types.ModuleType:
    """Execute generated ``source`` as module ``symgrad_generated.<backend>.<name>``; tracebacks show
    its lines (they are registered with ``linecache``)."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:12]
    filename = f"<symgrad {backend}/{name}.py {digest}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    mod = types.ModuleType(f"symgrad_generated.{backend}.{name}")
    mod.__file__ = filename
    exec(compile(source, filename, "exec"), mod.__dict__)  # noqa: S102 - our own generated code
    return mod
