"""symgrad's exceptions: subclasses of the built-in ones the contract names."""


class SymgradError(Exception):
    """Base of every error symgrad raises on purpose."""


class SpecError(SymgradError, ValueError):
    """A layer or optimizer definition is wrong (raised before anything is written)."""


class ShapeError(SymgradError, ValueError):
    """An array given to a kernel has the wrong shape."""


class DTypeError(SymgradError, TypeError):
    """An array given to a kernel has the wrong dtype."""


class UnknownKernelError(SymgradError, LookupError):
    """No kernel of that name is registered."""


class CompilerError(SymgradError, RuntimeError):
    """The C compiler is missing or failed."""


class UnsupportedFunction(SpecError):
    """A formula uses a function the target cannot print."""
