"""Compile a list of array assignments (SymPy) into in-place NumPy ufunc calls with ``out=``.

Input: ``[(buffer, version_symbol, expr), ...]`` in order, plus the scalar symbols (hyperparameters,
t). Steps: ``sympy.cse`` over all right-hand sides; every scalar-only subtree is hoisted out of the
element loop as one Python float; each array node becomes one ufunc call writing into a scratch
register (a buffer of the block size, reused as soon as its value is dead) or, for the last call of
an assignment, straight into the target buffer. No call allocates.
"""
from __future__ import annotations

import sympy as sp

from ...errors import SpecError
from ...codegen.printers import pycode, pyscalar

_FUNCS = {sp.exp: "np.exp", sp.log: "np.log", sp.Abs: "np.abs", sp.sign: "np.sign", sp.tanh: "np.tanh"}


class Chain:
    def __init__(self, scalars, arrays):
        self.scalars = set(scalars)          # symbols known outside the element loop
        self.arrays = dict(arrays)           # symbol -> name of its current block view
        self.hoisted: list[tuple[str, str]] = []   # (name, python source), in order
        self._hoist_names: dict = {}
        self.body: list[str] = []            # statements inside the element loop
        self.free: list[str] = []
        self.nregs = 0
        self.uses: dict = {}
        self.owned: set = set()              # registers holding dead-after-use values

    # -- registers -------------------------------------------------------------------------
    def reg(self) -> str:
        if self.free:
            return self.free.pop(0)
        self.nregs += 1
        return f"_r{self.nregs - 1}"

    def release(self, loc):
        if loc in self.owned:
            self.owned.discard(loc)
            self.free.append(loc)
            self.free.sort()

    # -- scalars ---------------------------------------------------------------------------
    def is_scalar(self, e) -> bool:
        return e.free_symbols <= self.scalars

    def scalar(self, e) -> str:
        e = sp.sympify(e)
        if e.is_Number:
            return pycode(e) if not e.is_Rational or e.is_Integer else repr(float(e))
        if e.is_Symbol:
            return e.name
        key = sp.srepr(e)
        if key not in self._hoist_names:
            name = f"_c{len(self._hoist_names)}"
            self._hoist_names[key] = name
            self.hoisted.append((name, pyscalar(e)))
        return self._hoist_names[key]

    # -- array expressions -----------------------------------------------------------------
    def leaf(self, sym):
        loc = self.arrays[sym]
        if sym in self.uses:
            self.uses[sym] -= 1
            if self.uses[sym] == 0 and loc.startswith("_r"):
                self.owned.add(loc)
        return loc

    def out_for(self, operands, dest):
        if dest is not None:
            for o in operands:
                self.release(o)
            return dest
        for o in operands:
            if o in self.owned:
                for other in operands:
                    if other is not o:
                        self.release(other)
                return o
        r = self.reg()
        self.owned.add(r)
        return r

    def op(self, fn, args, dest):
        locs = [a for a in args if isinstance(a, str) and (a.startswith("_r") or a in self.arrays.values())]
        out = self.out_for(locs, dest)
        self.body.append(f"{fn}({', '.join(args)}, out={out})")
        return out

    def compile(self, e, dest=None) -> str:
        """Emit calls computing array expression ``e``; returns where the value is."""
        if e.is_Symbol and e in self.arrays:
            loc = self.leaf(e)
            if dest is not None:
                self.body.append(f"np.copyto({dest}, {loc})")
                self.release(loc)
                return dest
            return loc
        if self.is_scalar(e):
            raise SpecError(f"scalar expression {e} where an array is expected")
        if e.is_Add:
            return self._add(e, dest)
        if e.is_Mul:
            return self._mul(e, dest)
        if e.is_Pow:
            b, x = e.args
            if self.is_scalar(x):
                if x == sp.Rational(1, 2):
                    return self.op("np.sqrt", [self.compile(b)], dest)
                if x == 2:
                    return self.op("np.square", [self.compile(b)], dest)
                if x == -1:
                    return self.op("np.divide", ["1.0", self.compile(b)], dest)
                if x.is_Number and x < 0:
                    return self.op("np.divide", ["1.0", self.compile(b ** -x)], dest)
                return self.op("np.power", [self.compile(b), self.scalar(x)], dest)
            base = self.scalar(b) if self.is_scalar(b) else self.compile(b)
            return self.op("np.power", [base, self.compile(x)], dest)
        if isinstance(e, (sp.Max, sp.Min)):
            fn = "np.maximum" if isinstance(e, sp.Max) else "np.minimum"
            arr = [a for a in e.args if not self.is_scalar(a)]
            sc = [a for a in e.args if self.is_scalar(a)]
            acc = self.compile(arr[0])
            rest = arr[1:]
            for k, a in enumerate(rest):
                last = k == len(rest) - 1 and not sc
                acc = self.op(fn, [acc, self.compile(a)], dest if last else None)
            if sc:
                acc = self.op(fn, [acc, self.scalar(e.func(*sc))], dest)
            elif not rest and dest is not None:
                self.body.append(f"np.copyto({dest}, {acc})")
                self.release(acc)
                acc = dest
            return acc
        for f, name in _FUNCS.items():
            if e.func == f:
                return self.op(name, [self.compile(e.args[0])], dest)
        raise SpecError(f"cannot emit {e.func.__name__} in an update rule: {e}")

    def _add(self, e, dest):
        sc = sp.Add(*[a for a in e.args if self.is_scalar(a)])
        terms = [a for a in e.args if not self.is_scalar(a)]
        pos = [a for a in terms if not a.could_extract_minus_sign()]
        neg = [-a for a in terms if a.could_extract_minus_sign()]
        steps = [(a, "np.add") for a in pos[1:]] + [(a, "np.subtract") for a in neg]
        if pos:
            first = pos[0]
        else:
            first, steps = neg[0], steps[1:]
        if pos:
            acc = self.compile(first, dest if not steps and sc == 0 else None)
        else:
            acc = self.op("np.negative", [self.compile(first)], dest if not steps and sc == 0 else None)
        for k, (a, fn) in enumerate(steps):
            last = k == len(steps) - 1 and sc == 0
            acc = self.op(fn, [acc, self.compile(a)], dest if last else None)
        if sc != 0:
            acc = self.op("np.add", [acc, self.scalar(sc)], dest)
        return acc

    def _mul(self, e, dest):
        sc, num, den = [], [], []
        for f in e.args:
            if self.is_scalar(f):
                sc.append(f)
            elif f.is_Pow and f.exp.is_Number and f.exp < 0:
                den.append(f.base ** -f.exp)
            else:
                num.append(f)
        c = sp.Mul(*sc)
        ops = [(f, "np.multiply") for f in num[1:]] + [(f, "np.divide") for f in den]
        last_is_scalar = c != 1
        if num:
            acc = self.compile(num[0], dest if not ops and not last_is_scalar else None)
        else:  # c / den[0] / ...
            acc = self.op("np.divide", [self.scalar(c), self.compile(ops[0][0])],
                          dest if len(ops) == 1 else None)
            ops, last_is_scalar = ops[1:], False
        for k, (f, fn) in enumerate(ops):
            last = k == len(ops) - 1 and not last_is_scalar
            acc = self.op(fn, [acc, self.compile(f)], dest if last else None)
        if last_is_scalar:
            if c == -1:
                acc = self.op("np.negative", [acc], dest)
            else:
                acc = self.op("np.multiply", [acc, self.scalar(c)], dest)
        return acc


def cse_items(items):
    """``sympy.cse`` over the right-hand sides of ``items``: (replacements, reduced expressions).
    The one CSE every target of an update rule uses (NumPy ufunc chains, C loops)."""
    return sp.cse([it[3] for it in items], symbols=sp.numbered_symbols("_x", real=True), order="none")


def compile_assignments(items, scalars, arrays):
    """``items``: [(kind, symbol, version, expr)] from ``numpy_optimizer.ssa``; ``arrays``: symbol -> view.

    Returns the ``Chain`` (hoisted scalars, loop body, number of registers). A store whose buffer's
    old value is still needed later is computed into a register and copied at the end.
    """
    repl, reduced = cse_items(items)
    ch = Chain(scalars, arrays)
    # scalar common subexpressions are hoisted; array ones get computed on first use
    pending = {}
    for s, e in repl:
        if ch.is_scalar(e):
            ch.scalars.add(s)
            ch.hoisted.append((s.name, pyscalar(e)))
        else:
            pending[s] = e
    for (kind, sym, _, _), e in zip(items, reduced):
        if kind == "temp":
            pending[sym] = e
    stores = [e for (kind, *_), e in zip(items, reduced) if kind == "store"]
    all_exprs = list(pending.values()) + stores
    for sym in list(pending) + [it[1] for it in items] + [it[2] for it in items if it[2] is not None]:
        ch.uses[sym] = sum(count_uses(x, sym) for x in all_exprs)
    deferred = []
    for k, ((kind, buf, ver, _), e) in enumerate(zip(items, reduced)):
        if kind == "temp":  # computed now, while the values it reads are still in their buffers
            if ch.uses[buf]:
                _materialize(ch, buf, pending)
            continue
        _materialize(ch, e, pending)
        todo = {s: x for s, x in pending.items() if s not in ch.arrays}
        later = [_expand(x, todo) for x in reduced[k + 1:]]
        still_needed = any(buf in x.free_symbols for x in later)
        if ch.is_scalar(e):
            target = arrays[buf]
            if still_needed:
                raise SpecError(f"cannot fill {buf} while its old value is still needed")
            ch.body.append(f"{target}[...] = {ch.scalar(e)}")
            ch.arrays[ver] = target
            continue
        if still_needed:
            r = ch.reg()
            loc = ch.compile(e, r)
            deferred.append((arrays[buf], loc))
            ch.arrays[ver] = loc
        else:
            ch.compile(e, arrays[buf])
            ch.arrays[ver] = arrays[buf]
    for target, loc in deferred:
        ch.body.append(f"np.copyto({target}, {loc})")
    return ch


def count_uses(e, sym) -> int:
    if e == sym:
        return 1
    return sum(count_uses(a, sym) for a in e.args)


def _expand(e, pending):
    for _ in range(len(pending) + 1):
        if not (e.free_symbols & set(pending)):
            return e
        e = e.xreplace(pending)
    return e


def _materialize(ch: Chain, e, pending):
    """Compute the common subexpressions ``e`` needs (in dependency order) into registers."""
    for s in sorted(e.free_symbols & set(pending), key=lambda s: (s.name[:2], int(s.name[2:]))):
        if s in ch.arrays:
            continue
        _materialize(ch, pending[s], pending)
        loc = ch.compile(pending[s])
        if loc not in ch.owned and not loc.startswith("_r"):
            r = ch.reg()
            ch.body.append(f"np.copyto({r}, {loc})")
            loc = r
        ch.owned.discard(loc)          # held until its last use
        ch.arrays[s] = loc
