"""The one registry: kernels by name, and the rules that carry each kernel kind through the pipeline.

Kernels (specs) are added by the public decorators (``symgrad.layer``, ``symgrad.optimizer`` ...),
built-ins included (``symgrad.builtins``), so a built-in has no privilege a user's kernel lacks.

Rules are registered beside their definitions, in the spirit of JAX's ``ad.defjvp`` and
``mlir.register_lowering``:

- per kernel kind and target: ``register_target(target, kinds, emit=..., load=...)``, where
  ``emit(spec) -> {relative path: text}`` writes the target's files and ``load(spec)`` returns the
  object whose functions ``symgrad.load`` hands out (``symgrad/targets/<target>/__init__.py``);
- per target, files about the whole set of kernels (build files, say):
  ``register_project_files(target, fn)``, ``fn(specs) -> {relative path: text}``, called by
  ``symgrad generate`` after the per-kernel files with the specs rendered for that target;
- per kernel kind: ``register_rule(role, kinds)(fn)`` for the roles ``check`` (``symgrad.verify``),
  ``explain`` (``symgrad.explanation``) and ``interface`` (what ``symgrad.load`` exposes: "layer",
  "optimizer" or "schedule").

A new target is one package under ``symgrad/targets/`` whose ``__init__`` calls ``register_target``;
a new kernel kind is one spec module plus its registrations. Nothing outside this module dispatches on
a kind's name: the CLI's choices, ``symgrad generate``, ``load`` and ``check`` ask the registry.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .errors import SpecError, UnknownKernelError, UnsupportedFunction

ROLES = ("check", "explain", "interface")


@dataclass(frozen=True)
class TargetRules:
    """What one target does with one kernel kind."""
    emit: Callable        # spec -> {relative path: text}
    load: Callable        # spec -> module-like object (forward/backward, init/step or value)


class Registry:
    def __init__(self):
        self._specs: dict = {}
        self._targets: dict = {}      # (kind, target) -> TargetRules
        self._target_order: list = []
        self._rules: dict = {}        # (role, kind) -> rule
        self._project_files: dict = {}   # target -> fn(specs) -> {relative path: text}

    # -- kernels ---------------------------------------------------------------------------
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

    def names(self, interface: str | None = None) -> list[str]:
        """Registered kernel names, sorted; ``interface`` keeps the kernels that expose it."""
        return sorted(n for n, s in self._specs.items()
                      if interface is None or self._rules.get(("interface", s.kind)) == interface)

    def __contains__(self, name):
        return name in self._specs

    def __iter__(self):
        return iter([self._specs[n] for n in self.names()])

    # -- rules -----------------------------------------------------------------------------
    def register_target(self, target: str, kinds, *, emit: Callable, load: Callable):
        """``target`` emits and loads kernels of ``kinds`` with ``emit(spec)`` and ``load(spec)``."""
        if target not in self._target_order:
            self._target_order.append(target)
        for kind in kinds:
            self._targets[kind, target] = TargetRules(emit, load)

    def register_project_files(self, target: str, fn: Callable):
        """``fn(specs) -> {relative path: text}``: ``target``'s files about all its kernels at once
        (``symgrad generate`` writes them after the per-kernel files)."""
        self._project_files[target] = fn

    def project_files(self, target: str, specs) -> dict[str, str]:
        """The project files of ``target`` for ``specs`` (none when it registered no hook)."""
        fn = self._project_files.get(target)
        return fn(list(specs)) if fn is not None and specs else {}

    def register_rule(self, role: str, kinds):
        """Decorator (or call with a value for ``interface``): the ``role`` rule of ``kinds``."""
        if role not in ROLES:
            raise ValueError(f"role: expected one of {', '.join(ROLES)}, got {role!r}")

        def deco(rule):
            for kind in kinds:
                self._rules[role, kind] = rule
            return rule
        return deco

    def remove_rule(self, role: str, kinds):
        for kind in kinds:
            self._rules.pop((role, kind), None)

    def targets(self) -> tuple[str, ...]:
        """Every registered target, in registration order (the CLI's ``--target``/``--backend``)."""
        return tuple(self._target_order)

    def supports(self, spec, target: str) -> bool:
        return (spec.kind, target) in self._targets

    def target_rules(self, spec, target: str) -> TargetRules:
        if target not in self._target_order:
            raise SpecError(f"unknown target {target!r}; choose from {', '.join(self._target_order)}")
        rules = self._targets.get((spec.kind, target))
        if rules is None:
            raise SpecError(f"{spec.name}: the {target} target has no emitter for {spec.kind} kernels")
        return rules

    def emit(self, spec, target: str) -> dict[str, str]:
        """The files (relative path -> text) that ``target`` emits for ``spec``."""
        rules = self.target_rules(spec, target)
        try:
            return rules.emit(spec)
        except UnsupportedFunction as e:
            raise SpecError(f"{spec.name}: {e}") from None

    def rule(self, role: str, spec):
        """The ``role`` rule of ``spec``'s kind, or None."""
        return self._rules.get((role, spec.kind))

    def interface(self, spec) -> str | None:
        return self._rules.get(("interface", spec.kind))


REGISTRY = Registry()
