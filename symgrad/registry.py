"""The one registry of kernels: layers, activations, losses and optimizers alike.

Built-ins are added by ``symgrad.builtins`` through the same public decorators users call.
"""
from __future__ import annotations

from .errors import SpecError, UnknownKernelError


class Registry:
    def __init__(self):
        self._specs: dict = {}

    def add(self, spec, replace: bool = False):
        if spec.name in self._specs and not replace:
            raise SpecError(f"a kernel named {spec.name!r} is already registered "
                            f"({self._specs[spec.name].kind}); pick another name or pass replace=True")
        self._specs[spec.name] = spec
        return spec

    def remove(self, name: str):
        self._specs.pop(name, None)

    def get(self, name: str):
        try:
            return self._specs[name]
        except KeyError:
            raise UnknownKernelError(f"unknown kernel {name!r}; known: {', '.join(self.names())}") from None

    def names(self, kind: str | None = None) -> list[str]:
        return sorted(n for n, s in self._specs.items() if kind is None or s.kind == kind)

    def __contains__(self, name):
        return name in self._specs

    def __iter__(self):
        return iter([self._specs[n] for n in self.names()])


REGISTRY = Registry()
