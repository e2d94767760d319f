"""Index notation for a derivation: readable names for every node and SymPy expressions per element.

Every tensor gets a display name (inputs and named nodes keep theirs; unnamed intermediates get a
letter by kind: ``m`` for a max, ``s`` for a sum, ``Y`` for a one-hot, ``u`` for a contraction; the
gradient of a node ``f`` is ``df``, and of a node the spec named ``z`` it is the textbook ``delta``).
Every dimension gets an index letter (``N -> n``). ``Notation.element(node, idx)`` turns any node of the
forward or the derived backward graph into a SymPy expression of one element, e.g. ``u[n, m] =
Sum(x[n, d]*W[d, m], (d, 0, D - 1))``, expanding nodes that have no name of their own; these are the
expressions the explanation prints and its test evaluates.
"""
from __future__ import annotations

import sympy as sp

from ..spec import tensor as T
from ..spec.window import Fold, OutDim, Unfold
from .symbols import Blocks, OpApply, Partial, ReduceMax, Word  # noqa: F401 - display symbols used here and re-exported
from .windows import OUT_LETTERS, WINDOW_LETTERS, fold_element, size_letters, unfold_element, window_dims

POOL = "uvwhgqrkpjl"
INDEX_POOL = "ijklpqrst"
PREFERRED = {"max": "m", "sum": "s", "onehot": "Y", "contract": "u", "expand": "r", "slice": "g"}


def _kind(n) -> str:
    return n.kind if isinstance(n, T.Reduce) else n.op


class Notation:
    """Display names and per-element SymPy expressions for one spec's derivation."""

    def __init__(self, spec, kernel=None):
        self.spec, self.d, self.kernel = spec, spec.derivation, kernel
        d = self.d
        self.fwd_ids = {n.id for n in d.forward_nodes}
        self.by_id = {n.id: n for n in d.forward_nodes}
        self.adjoint_of = {tot.id: fid for fid, tot in d.adjoints.items()}
        self.names: dict[int, str] = {}
        fixed = [i.name for i in spec.inputs] + [h.name for h in spec.hypers] + [str(s) for s in spec.dims]
        fixed += [n.name for n in d.forward_nodes if n.name] + [g.name for g in d.grad_inputs]
        self.taken = set(fixed) | {s.name for s in getattr(spec, "sizes", [])}
        self.size_sym = size_letters(spec, self.taken)      # stride -> s, padding -> p, dilation -> d
        self._index_letters()
        users: dict = {}
        for n in d.forward_nodes:
            for a in n.args:
                users.setdefault(a.id, []).append(n)
        for n in d.forward_nodes:
            if isinstance(n, T.StopGradient):
                continue
            self.names[n.id] = n.name if n.name else self._fresh(self._preferred(n, users.get(n.id, [])))
        for n in d.forward_nodes:
            if isinstance(n, T.StopGradient):
                self.names[n.id] = self.names[self.resolve(n).id]
        for g in d.grad_inputs:
            self.names[g.id] = g.name
        for fid, tot in d.adjoints.items():
            if tot.id in self.names:
                continue  # the upstream gradient input itself
            f = self.by_id[fid]
            base = self.names[fid]
            want = "delta" if base == "z" and not isinstance(f, T.Input) else "d" + base
            if want in self.taken and f in d.spec.outputs:   # an output used again: upstream + the rest
                want += "_total"
            self.names[tot.id] = want if want not in self.taken else self._fresh(want)
            self.taken.add(self.names[tot.id])
        self.code_names = dict(kernel.node_names) if kernel is not None else {}
        self.order = self._display_order()

    def _display_order(self) -> list:
        """The forward nodes in an order a textbook follows: a topological order in which the branches
        of stacked slices come in column order (the LSTM's gates i, f, g, o, as torch documents them)
        and a node that joins several branches comes after all of them."""
        nodes = self.d.forward_nodes
        pos = {n.id: k for k, n in enumerate(nodes)}
        starts: dict = {}
        for n in nodes:
            own = {sp.default_sort_key(n.start)} if isinstance(n, T.Slice) else set()
            starts[n.id] = own.union(*[starts.get(a.id, set()) for a in n.args])
        key = {nid: ((0, ()) if not s else (1, min(s)) if len(s) == 1 else (2, ())) for nid, s in starts.items()}
        out, placed = [], set()
        while len(out) < len(nodes):
            ready = [n for n in nodes if n.id not in placed and all(a.id in placed for a in n.args)]
            pick = min(ready, key=lambda n: (key[n.id], pos[n.id]))
            out.append(pick)
            placed.add(pick.id)
        users: dict = {}
        for n in nodes:
            for a in n.args:
                users.setdefault(a.id, set()).add(n.id)
        back_key = {nid: ((0, ()) if k[0] == 2 else (1, k[1]) if k[0] == 1 else (2, ())) for nid, k in key.items()}
        self.back_order, done = [], set()      # backward: joins first, then each branch in column order
        while len(self.back_order) < len(nodes):
            ready = [n for n in nodes if n.id not in done and users.get(n.id, set()) <= done]
            pick = min(ready, key=lambda n: (back_key[n.id], -pos[n.id]))
            self.back_order.append(pick)
            done.add(pick.id)
        return out

    # -- names ---------------------------------------------------------------------------------
    def _index_letters(self):
        """One index letter per dimension: its own lower-case letter if it has one; a window's cells
        a, b, its positions i, j (``u[n, c, a, b, i, j]``); a window size used on several axes (max
        pooling's kernel_size x kernel_size) gets a spare letter per extra axis (``self.spare``)."""
        self.index: dict = {}
        self.spare: dict = {}
        wins, outs = window_dims(self.d.forward_nodes)
        letters = []

        def pick(pool):
            return next(c for c in pool if c not in letters and c not in self.taken)

        for dim in self._all_dims():
            cand = str(dim).lower() if isinstance(dim, sp.Symbol) and len(str(dim)) == 1 else None
            if dim == T.ANY:
                cand = "k"
            if dim in wins or isinstance(dim, OutDim):
                cand = pick(WINDOW_LETTERS if dim in wins else OUT_LETTERS + INDEX_POOL)
            if cand is None or cand in letters or cand in self.taken:
                cand = pick(INDEX_POOL)
            letters.append(cand)
            self.index[dim] = sp.Symbol(cand, integer=True)
            if dim in wins:
                for n in self.d.forward_nodes:
                    if isinstance(n, Unfold) and list(n.size).count(dim) > len(self.spare.get(dim, [])) + 1:
                        c = pick(WINDOW_LETTERS)
                        letters.append(c)
                        self.spare.setdefault(dim, []).append(sp.Symbol(c, integer=True))
        self.taken |= set(letters)

    def index_dims(self) -> dict:
        """Index symbol -> dimension (a document's ``dims``), spare letters and size letters included."""
        out = {i: d for d, i in self.index.items()}
        out.update({i: d for d, extra in self.spare.items() for i in extra})
        out.update({shown: s for s, shown in self.size_sym.items() if shown is not s})
        return out

    def _all_dims(self):
        out = []
        for n in self.d.forward_nodes + list(self.d.grad_inputs):
            for dim in n.shape:
                if dim != 1 and dim not in out:
                    out.append(dim)
        out += [c for n in self.d.forward_nodes if isinstance(n, T.OneHot) for c in [n.classes] if c not in out]
        return out

    def _preferred(self, n, users=()) -> str:
        if isinstance(n, T.Map) and isinstance(n.expr, sp.exp):
            return "e"
        if isinstance(n, T.Slice) and len(users) == 1 and users[0].name and len(users[0].name) == 1:
            return "z_" + users[0].name      # the pre-activation of gate i: z_i = gates[..., 0:H]
        return PREFERRED.get(_kind(n), "h")

    def _fresh(self, want: str) -> str:
        if want not in self.taken:
            self.taken.add(want)
            return want
        for c in POOL:
            if c not in self.taken:
                self.taken.add(c)
                return c
        k = 2
        while f"{want}{k}" in self.taken:
            k += 1
        self.taken.add(f"{want}{k}")
        return f"{want}{k}"

    @staticmethod
    def resolve(n):
        while isinstance(n, T.StopGradient):
            n = n.args[0]
        return n

    def name(self, n) -> str:
        return self.names[n.id]

    def alias_of(self, n):
        """The node that ``n`` merely copies (an identity ``Map`` of one argument), or None."""
        if isinstance(n, T.Map) and len(n.args) == 1 and n.expr == n.args[0].sym and n.shape == n.args[0].shape:
            return n.args[0]
        return None

    def is_named(self, n) -> bool:
        return n.id in self.names

    # -- indices -------------------------------------------------------------------------------
    def idx(self, shape, avoid=()) -> list:
        """Index symbols for the axes of ``shape`` (None for size-1 axes), distinct from ``avoid``."""
        out, used = [], set(avoid)
        for dim in shape:
            if dim == 1:
                out.append(None)
                continue
            i = self.index.get(dim) or self._new_dim(dim)
            if i in used:
                i = next((a for a in self.spare.get(dim, []) if a not in used), i)
            while i in used:
                i = sp.Symbol(i.name + "'", integer=True)
            used.add(i)
            out.append(i)
        return out

    def _new_dim(self, dim):
        cand = next(c for c in INDEX_POOL if c not in self.taken)
        self.taken.add(cand)
        self.index[dim] = sp.Symbol(cand, integer=True)
        return self.index[dim]

    def dim_of(self, i):
        base = sp.Symbol(i.name.rstrip("'"), integer=True)
        for dim, s in self.index.items():
            if s == base:
                return dim
        for dim, extra in self.spare.items():
            if base in extra:
                return dim
        raise KeyError(i)

    def ref(self, n, idx) -> sp.Expr:
        """The element ``name[idx]`` of a named node (a plain symbol for a scalar)."""
        if isinstance(n, T.Input) and n not in self.d.grad_inputs and n.id not in self.names:
            self.names[n.id] = n.name
        live = [i for i in idx if i is not None]
        name = self.names[n.id]
        if not live:
            return sp.Symbol(name, real=True)
        return sp.IndexedBase(name)[tuple(live)]

    @staticmethod
    def align(idx, shape_out, shape_arg) -> list:
        """Indices of an argument broadcast to ``shape_out`` (NumPy trailing alignment)."""
        lead = len(shape_out) - len(shape_arg)
        return [None if d == 1 else idx[lead + j] for j, d in enumerate(shape_arg)]

    # -- elements --------------------------------------------------------------------------------
    def element(self, n, idx, stop=None, root=True, scope=frozenset()) -> sp.Expr:
        """SymPy expression of ``n[idx]``; nodes for which ``stop(node)`` holds print as their name.

        ``scope``: indices free in the enclosing expression, which summation indices must avoid.
        """
        stop = stop or (lambda m: False)
        if isinstance(n, T.StopGradient):
            return self.element(self.resolve(n), idx, stop, root, scope)
        if isinstance(n, T.Input) or (not root and self.is_named(n) and stop(n)):
            return self.ref(n, idx)
        avoid = set(scope) | {i for i in idx if i is not None}
        sub = lambda a, i: self.element(a, i, stop, False, frozenset(avoid | {j for j in i if j is not None}))  # noqa: E731
        if isinstance(n, T.Map):
            return n.expr.xreplace({a.sym: sub(a, self.align(idx, n.shape, a.shape)) for a in n.args})
        if isinstance(n, T.Reduce):
            (a,) = n.args
            red = self.idx([a.shape[k] for k in n.axes], avoid)
            full, it, rit = [], iter(idx), iter(red)
            for k in range(a.ndim):
                if k in n.axes:
                    full.append(next(rit))
                    if n.keepdims:
                        next(it)
                else:
                    full.append(next(it))
            body = sub(a, full)
            for j in (r for r in red if r is not None):
                body = sp.Sum(body, (j, 0, self.dim_of(j) - 1)) if n.kind == "sum" else ReduceMax(body, j)
            return body
        if isinstance(n, T.Contract):
            letters = {}
            for l, i in zip(n.out, idx):
                letters[l] = i
            summed = [l for l in dict.fromkeys("".join(n.ins)) if l not in letters]
            sizes = {l: d for ins, a in zip(n.ins, n.args) for l, d in zip(ins, a.shape)}
            fresh = self.idx([sizes[l] for l in summed], avoid)
            letters.update(zip(summed, fresh))
            prod = sp.Mul(*[sub(a, [letters[l] for l in ins]) for ins, a in zip(n.ins, n.args)])
            for l in summed:
                if letters[l] is not None:
                    prod = sp.Sum(prod, (letters[l], 0, sizes[l] - 1))
            return prod
        if isinstance(n, T.Expand):
            (a,) = n.args
            return sub(a, [i for k, i in enumerate(idx) if k not in n.axes])
        if isinstance(n, T.OneHot):
            (ids,) = n.args
            return sp.Piecewise((1, sp.Eq(sub(ids, idx[:-1]), idx[-1])), (0, True))
        if isinstance(n, T.Slice):
            (a,) = n.args
            last = idx[-1] + n.start if idx[-1] is not None else n.start
            return sub(a, list(idx[:-1]) + [last])
        if isinstance(n, T.Pad):      # the transpose of a slice: arg in columns start .. start + width
            (a,) = n.args
            j = idx[-1]
            inside = (j >= n.start) & (j < n.start + a.shape[-1])
            return sp.Piecewise((sub(a, list(idx[:-1]) + [j - n.start]), inside), (0, True))
        if isinstance(n, T.Concat):
            j, pos, pieces = idx[-1], sp.Integer(0), []
            for a in n.args:
                pieces.append((sub(a, list(idx[:-1]) + [j - pos]), j < pos + a.shape[-1]))
                pos = pos + a.shape[-1]
            return sp.Piecewise(*pieces)
        if isinstance(n, Unfold):      # a window read: x at s i + d a - p
            return unfold_element(self, n, idx, sub)
        if isinstance(n, Fold):        # its transpose: the sum over the window cells that read an element
            return fold_element(self, n, idx, sub, avoid)
        return OpApply(sp.Symbol(n.op), *[sub(a, self.align(idx, n.shape, a.shape)) for a in n.args])

    # -- matrix (vectorized) form ------------------------------------------------------------------
    def matrix(self, n, name_of=None):
        """``x^T delta``-style SymPy matrix expression of a 2-D contraction, or None."""
        if not isinstance(n, T.Contract) or len(n.args) != 2 or len(n.out) != 2:
            return None
        (ia, ib), o = n.ins, n.out
        if any(len(s) != 2 for s in n.ins):
            return None
        shared = set(ia) & set(ib)
        if len(shared) != 1:
            return None
        (k,) = shared
        a, b = n.args
        ma = self._msym(a, ia, name_of)
        mb = self._msym(b, ib, name_of)
        ra = [c for c in ia if c != k][0]
        rb = [c for c in ib if c != k][0]
        left = ma if ia[1] == k else ma.T     # rows indexed by ra, columns by k
        right = mb if ib[0] == k else mb.T    # rows indexed by k
        if o == ra + rb:
            return sp.MatMul(left, right)
        if o == rb + ra:
            return sp.MatMul(right.T, left.T)
        return None

    def _msym(self, a, letters, name_of=None):
        a = self.resolve(a)
        while self.alias_of(a) is not None and a.id not in self.fwd_ids:
            a = self.alias_of(a)
        name = (name_of or {}).get(a.id) or self.names.get(a.id) or getattr(a, "name", None)
        return sp.MatrixSymbol(name, a.shape[0], a.shape[1])
