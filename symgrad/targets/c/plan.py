"""The buffers of a C kernel: which arrays each C function takes, in which order, and their sizes.

Shared by the C emitter (signatures, headers) and the Python runtime (allocation, ctypes argtypes),
so the two can never disagree. Argument order follows llm.c: outputs (and the cache arrays forward
fills "for the backward pass") first, then inputs, then the scratch buffer, hyperparameters, dims.

Roles: ``out`` (written), ``cache`` (written by forward, read by backward), ``in`` (read),
``index`` (int64 class ids, read), ``scalar`` (a real passed by value), ``scratch``, ``hyper``, ``dim``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import sympy as sp

from ...ir import nodes as ir
from ...ir.nodes import prod
from ...ir.schedule import CHUNKS, colred, concat_parts
from ...errors import SpecError
from ...spec.tensor import ANY

C_KEYWORDS = set("""auto break case char const continue default do double else enum extern float for goto
if inline int long register restrict return short signed sizeof static struct switch typedef union
unsigned void volatile while _Bool _Complex _Imaginary int64_t size_t scratch""".split())


@dataclass(frozen=True)
class CArg:
    """One argument of a generated C function. Roles: layers ``out``, ``cache``, ``in``, ``index``,
    ``scalar``, ``scratch``, ``hyper``, ``dim``; optimizers ``param``, ``grad``, ``state``, ``n``,
    ``t``, ``hyper``, ``flag``."""
    name: str
    role: str
    shape: tuple = ()
    doc: str = ""

    def size(self) -> sp.Expr:
        return prod(self.shape)


@dataclass
class CFunc:
    name: str              # forward | backward
    args: list             # CArg in C order
    scratch: list          # [(array name, shape)] carved out of the scratch buffer, in order
    locals: list           # scalar intermediates (C local variables)

    def scratch_size(self) -> sp.Expr:
        return sp.Add(*[prod(s) for _, s in self.scratch]) if self.scratch else sp.Integer(0)

    def pointers(self) -> dict:
        return {a.name: a for a in self.args if a.role in ("out", "cache", "in", "index")}


def _written(f: ir.Function) -> list:
    return [s.out for s in f.body]


def plan(k: ir.Kernel) -> tuple[CFunc, CFunc]:
    """The argument lists of ``NAME_forward_*`` and ``NAME_backward_*`` for kernel ``k``."""
    names = [a.name for a in k.inputs] + [o.name for o in k.outputs] + [n for n, _ in k.hypers]
    names += list(k.forward.shapes) + list(k.backward.shapes) + [str(d) for d in k.dims]
    bad = sorted({n for n in names if n in C_KEYWORDS or n.startswith(("sg_", "_", "SG_", "SYMGRAD_"))
                  or (len(n) == 2 and n[0] == "i" and n[1].isdigit())})
    if bad:
        raise SpecError(f"{k.name}: names {bad} cannot be used in C (keywords or reserved prefixes); rename them")
    hypers = [CArg(n, "hyper") for n, _ in k.hypers]
    dims = [CArg(str(d), "dim") for d in k.dims]
    in_names = {a.name for a in k.inputs}
    out_names = [o.name for o in k.outputs]
    for o in out_names:
        if o in in_names or o not in _written(k.forward):
            raise SpecError(f"{k.name}: output {o!r} is an input; the C target needs outputs computed by forward")
    fshapes = k.forward.shapes
    cache = [n for n in k.forward.saved if n not in out_names and n not in in_names]
    fargs = [CArg(o.name, "out", tuple(o.shape)) for o in k.outputs]
    bshape = {a.name: tuple(a.shape) for a in k.inputs}
    fargs += [CArg(v, "out", bshape[b], f"the new value of {b} (the caller copies it in)") for b, v in k.updates]
    fargs += [CArg(n, "cache", tuple(fshapes[n])) for n in cache]
    fargs += [CArg(a.name, "index" if a.kind == "index" else "in", tuple(a.shape)) for a in k.inputs]
    taken = {a.name for a in fargs}
    fscr, floc = _scratch(k.forward, taken)
    fwd = CFunc("forward", fargs + ([CArg("scratch", "scratch")] if fscr else []) + hypers + dims, fscr, floc)

    bshapes = k.backward.shapes
    bargs = []
    for r in k.backward.returns:
        if r not in _written(k.backward):
            raise SpecError(f"{k.name}: gradient {r!r} is not computed by backward; the C target cannot alias it")
        bargs.append(CArg(r, "out", tuple(bshapes[r])))
    for g in k.grad_outputs:
        bargs.append(CArg(g.name, "scalar" if tuple(g.shape) == () else "in", tuple(g.shape)))
    kinds = {a.name: a.kind for a in k.inputs}
    for n in k.backward.saved:
        bargs.append(CArg(n, "index" if kinds.get(n) == "index" else "in", tuple(bshapes[n])))
    taken = {a.name for a in bargs}
    bscr, bloc = _scratch(k.backward, taken)
    bwd = CFunc("backward", bargs + ([CArg("scratch", "scratch")] if bscr else []) + hypers + dims, bscr, bloc)
    return fwd, bwd


def kept(k: ir.Kernel) -> dict:
    """What the cache keeps a copy of: ``{array: name of its copy}`` for the saved real inputs (not
    buffers) and the saved outputs, in the order backward reads them (docs/contract.md, "Caches")."""
    ins = {a.name: a for a in k.inputs}
    outs = {o.name for o in k.outputs}
    taken = set(ins) | outs | set(k.forward.shapes) | set(k.backward.shapes) | {n for n, _ in k.hypers}
    out = {}
    for n in k.backward.saved:
        a = ins.get(n)
        if (a is not None and a.kind == "real" and not a.buffer) or n in outs:
            name, i = f"{n}_kept", 1
            while name in taken:
                name, i = f"{n}_kept{i}", i + 1
            out[n] = name
            taken.add(name)
    return out


def plan_kept(k: ir.Kernel):
    """``NAME_forward_kept_*``: the forward pass that also writes the cache's copies of what the caller
    holds (``kept``), each in the pass over memory that first reads it (or writes it, for an output),
    so that the copy costs a write and no second read. ``(forward IR, CFunc)``, or None when the cache
    keeps no copy. Its arguments are the forward's with the copies added to the cache arrays."""
    names = kept(k)
    if not names:
        return None
    body = list(k.forward.body)
    shapes = dict(k.forward.shapes)
    shape_of = {a.name: tuple(a.shape) for a in k.inputs} | {o.name: tuple(o.shape) for o in k.outputs}
    for n, c in names.items():
        copy = ir.Elementwise(c, shape_of[n], sp.Symbol(n))
        shapes[c] = shape_of[n]
        at = next((i + 1 for i, s in enumerate(body) if s.out == n or n in ir.reads(s)), 0)
        body.insert(at, copy)
    f = ir.Function("forward_kept", k.forward.params, body, k.forward.returns,
                    list(k.forward.saved) + list(names.values()), shapes)
    fwd, _ = plan(dataclasses.replace(k, forward=f))
    assert sp.simplify(fwd.scratch_size() - plan(k)[0].scratch_size()) == 0, "the copies need no scratch"
    return f, dataclasses.replace(fwd, name="forward_kept")


def _scratch(f: ir.Function, taken: set) -> tuple[list, list]:
    scratch, locs = [], []
    windows = any(isinstance(s, (ir.Window, ir.WindowAdd)) for s in f.body)   # sample loops (c_layer)
    views = concat_parts(f, taken) | {s.out for s in f.body if isinstance(s, ir.Slice)}
    for s in f.body:
        if colred(s):  # partial sums, one row per chunk of rows (c_fusion)
            scratch.append((f"_part_{s.out}", (CHUNKS,) + tuple(s.src_shape[1:])))
        if windows and isinstance(s, ir.Einsum) and accumulates(s):   # one partial product per chunk of samples
            scratch.append((f"_part_{s.out}", (CHUNKS,) + tuple(s.shape)))
            pa = prepared_a_size(s, f)
            if pa is not None:   # its left operand packed once per sample (Windows._channel_blocks)
                scratch.append((f"_pka_{s.out}", (CHUNKS, pa)))
        fold = gathered_fold(s, f) if windows else None
        if fold is not None:   # the gathers' weights, and a phase's output per chunk (Windows._gather_folds)
            scratch.append((f"_wf_{fold.out}", (flipped_size(s),)))
            scratch.append((f"_gt_{fold.out}", (CHUNKS,) + tuple(fold.shape)[1:]))
        wino = winograd_sizes(s, f) if windows else None
        if wino is not None:   # Winograd's weights once, its work per chunk (Windows._winograd_products)
            out = fold.out if fold is not None else s.out
            scratch.append((f"_wu_{out}", (wino[0],)))
            scratch.append((f"_wv_{out}", (CHUNKS, wino[1])))
        grad = winograd_window(s, f, grad=True) if windows else None
        if grad is not None:   # the weight gradient's accumulator and work per chunk (Windows._winograd_grads)
            ta, tb, m, n, k, a, b, lda, ldb = looped_gemm_form(s)[1]
            scratch.append((f"_wv_{s.out}", (CHUNKS, winograd_grad_work(n / prod(tuple(grad.size)), m,
                                                                         tuple(grad.shape)[-1]))))
        if s.out in taken or s.out in views:
            continue
        if tuple(s.shape) == ():
            locs.append(s.out)
        else:
            scratch.append((s.out, tuple(s.shape)))
    return scratch, locs


def gathered_fold(s, f: ir.Function):
    """The fold (``WindowAdd``, col2im) of ``f`` that alone reads product ``s``'s output, when ``s`` is a
    product with a per-sample right operand ``B`` (its rows summed, its columns the window positions) and
    a left operand the same for every sample (a convolution's input gradient ``dy`` times ``weight``):
    that fold equals, per output phase (one at unit stride), a window read of ``B`` times ``A`` over the
    window cells that reach the phase, flipped (``Windows._gather_folds``); else None."""
    if not isinstance(s, ir.Einsum) or accumulates(s):
        return None
    readers = [t for t in f.body if s.out in ir.reads(t)]
    if len(readers) != 1 or not isinstance(readers[0], ir.WindowAdd) or readers[0].src != s.out:
        return None
    fold = readers[0]
    lg = looped_gemm_form(s)
    if lg is None or len(fold.size) not in (1, 2) or len(lg[0]) != 1:
        return None
    size, da, db, dc, acc = lg[0][0]   # offsets per sample of the einsum's first and second operand
    ta, tb, m, n, k, a, b, lda, ldb = lg[1]
    per_sample = {op for op, off in zip(s.operands, (da, db)) if off != 0}
    if acc or tb or a in per_sample or b not in per_sample or a == b:
        return None
    return fold


WINOGRAD_TILES = 128   # tiles per block of sg_wino_f32's products (SG_WG_TILES in the C helpers)


def winograd_window(s, f: ir.Function, grad: bool = False):
    """The 2-D window read (zeros outside, read by ``s`` alone) that product ``s`` of a convolution reads
    as its right operand: the forward's (``grad`` False: a left operand the same for every sample, laid
    out ``[out][in][KH][KW]``, ``ta`` 0 and ``lda`` = ``k``, no sum over the samples) or the weight
    gradient's (``grad``: summed over the samples, ``dy`` per sample as ``[out][positions]`` times the
    window transposed). ``sg_wino_f32`` / ``sg_wino_grad_f32`` compute such a product per sample when
    the window is 3x3 of unit stride and dilation (decided per call: ``sg_wino_ok``). Else None."""
    if not isinstance(s, ir.Einsum):
        return None
    lg = looped_gemm_form(s)
    if lg is None or len(lg[0]) != 1:
        return None
    size, da, db, dc, acc = lg[0][0]   # offsets per sample of the einsum's first and second operand
    ta, tb, m, n, k, a, b, lda, ldb = lg[1]
    per_sample = {op for op, off in zip(s.operands, (da, db)) if off != 0}
    if acc != grad or tb != grad or (a in per_sample) != grad or ta or b not in per_sample or a == b \
            or sp.simplify(lda - k) != 0:
        return None
    win = next((t for t in f.body if isinstance(t, ir.Window) and t.out == b), None)
    if win is None or win.fill != 0 or len(win.size) != 2 or [t for t in f.body if b in ir.reads(t)] != [s]:
        return None
    return win


def winograd_grad_work(cin, cout, wout):
    """Elements of ``sg_wino_grad_f32``'s work for ``cin`` input and ``cout`` output channels and ``wout``
    output columns: the accumulator (16 of ``cout x cin``), ``V`` (16 of ``cin x T``) and ``A dy A^T``
    (16 of ``cout x T``), each 48 floats apart more, ``T`` as in ``winograd_work``."""
    t = WINOGRAD_TILES + wout
    return 16 * (cout * cin + 48) + 16 * (cin * t + 48) + 16 * (cout * t + 48)


def winograd_sizes(s, f: ir.Function):
    """``(weights, work per chunk)``: elements of ``sg_wino_weights_f32``'s transformed weights (16 of
    ``Cout`` rounded up to 8 by ``Cin``) and of ``sg_wino_f32``'s work (``V``: 16 packed ``Cin`` by ``n32``
    tiles, ``M``: 16 of ``Cout`` by ``T``, each 48 floats apart more; ``T`` at most ``WINOGRAD_TILES`` or
    one row of tiles, ``(W_out + 1) / 2 <= W_out``) for a convolution's forward product
    (``winograd_window``) or for the gathers of its input gradient at unit stride (``gathered_fold``
    of a 2-D fold); else None."""
    fold = gathered_fold(s, f)
    ta, tb, m, n, k, a, b, lda, ldb = looped_gemm_form(s)[1] if isinstance(s, ir.Einsum) else (None,) * 9
    if fold is not None and len(fold.size) == 2:
        cells = prod(tuple(fold.size))
        cout, cin, wout = m / cells, k, tuple(fold.shape)[-1]
    else:
        win = winograd_window(s, f)
        if win is None:
            return None
        cout, cin, wout = m, k / prod(tuple(win.size)), tuple(win.shape)[-1]
    return 16 * (cout + 7) * cin, winograd_work(cin, cout, wout)


def winograd_work(cin, cout, wout):
    """Elements of ``sg_wino_f32``'s work space for ``cin`` input and ``cout`` output channels and
    ``wout`` output columns (``winograd_sizes``; tests/test_c_microkernel.py runs the C code with exactly
    this much under ASan)."""
    t = WINOGRAD_TILES + wout
    return 16 * (cin * (t + 32) + 48) + 16 * (cout * t + 48)


def flipped_size(s: ir.Einsum):
    """Elements of the flipped left operand of ``gathered_fold``'s product: ``m k``."""
    ta, tb, m, n, k, a, b, lda, ldb = looped_gemm_form(s)[1]
    return m * k


def prepared_a_size(s: ir.Einsum, f: ir.Function):
    """Elements of one sample's left operand packed once (``sg_prepa``), ``(m + 7) k``, for a product
    that sums over the samples (a convolution's weight gradient ``nohw,ncabhw->ocab``) whose left
    operand is no window array and whose right one is: run in blocks of channels, each block's product
    reads the same ``dy``, packed once instead of per block. None for any other statement."""
    if not accumulates(s):
        return None
    windowed = {n for t in f.body if isinstance(t, (ir.Window, ir.WindowAdd)) for n in (t.src, t.out)}
    ta, tb, m, n, k, a, b, lda, ldb = looped_gemm_form(s)[1]
    if a in windowed or b not in windowed:
        return None
    return (m + 7) * k


def shape_doc(shape) -> str:
    """A shape as the C header documents it: ``(N, D)``, ``(M,)``, ``scalar``, ``(n_elems,) flat``."""
    if tuple(shape) == (ANY,):
        return f"({ANY},) flat"
    if tuple(shape) == ():
        return "scalar"
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def gemm_form(s: ir.Einsum):
    """(transA, transB, m, n, k, A, B, lda, ldb) when ``s`` is a matrix product after flattening
    contiguous letter groups (``pk,kj->pj``, ``pj,kj->pk``, ``tnk,kj->tnj``, ...), else None."""
    if len(s.operands) != 2:
        return None
    lhs, out = s.subscripts.split("->")
    A, B = lhs.split(",")
    sa, sb = s.operand_shapes
    size = dict(zip(A, sa)) | dict(zip(B, sb))
    if len(set(A)) != len(A) or len(set(B)) != len(B):
        return None
    I = "".join(c for c in out if c in A and c not in B)
    J = "".join(c for c in out if c in B and c not in A)
    K = "".join(c for c in A if c in B and c not in out)
    if set(I + J) != set(out) or set(A) != set(I + K) or set(B) != set(J + K) or not I or not J:
        return None
    opA, opB = s.operands
    if out == J + I:  # C^T = B^T-ish: swap the operands
        A, B, opA, opB, I, J = B, A, opB, opA, J, I
    if out != I + J:
        return None
    if A == I + K:
        ta = False
    elif A == K + I:
        ta = True
    else:
        return None
    if B == K + J:
        tb = False
    elif B == J + K:
        tb = True
    else:
        return None
    m, n, k = (prod([size[c] for c in g]) for g in (I, J, K))
    lda = m if ta else k
    ldb = k if tb else n
    return ta, tb, m, n, k, opA, opB, lda, ldb


def looped_gemm_form(s: ir.Einsum):
    """A contraction that is a loop of matrix products over its leading letters: ``(loops, gemm)``
    with ``loops`` a list of (size, offset per iteration of A, of B, of the output, accumulate) and
    ``gemm`` what ``gemm_form`` gives for the rest, or None.

    A leading letter of the output and of one operand is a loop of independent products (a batch:
    ``ncabhw,ocab->nohw`` is one product per sample, convolution as im2col + GEMM); a leading letter
    of both operands that the output lacks is a loop that *accumulates* into the output (the weight
    gradient ``nohw,ncabhw->ocab`` sums one product per sample). Only leading letters are peeled, so
    each iteration's operands stay contiguous blocks."""
    if len(s.operands) != 2:
        return None
    lhs, out = s.subscripts.split("->")
    A, B = lhs.split(",")
    sa, sb = (tuple(x) for x in s.operand_shapes)
    so = tuple(s.shape)
    loops = []
    while A and B is not None:
        a0, b0, o0 = A[0], B[0] if B else None, out[0] if out else None
        if o0 is not None and a0 == o0 and a0 not in B:        # batch over A's and the output's first axis
            loops.append((sa[0], prod(sa[1:]), 0, prod(so[1:]), False))
            A, out, sa, so = A[1:], out[1:], sa[1:], so[1:]
        elif o0 is not None and b0 == o0 and b0 not in A:      # batch over B's and the output's first axis
            loops.append((sb[0], 0, prod(sb[1:]), prod(so[1:]), False))
            B, out, sb, so = B[1:], out[1:], sb[1:], so[1:]
        elif a0 == b0 and a0 not in out:                        # a sum over both operands' first axis
            loops.append((sa[0], prod(sa[1:]), prod(sb[1:]), 0, True))
            A, B, sa, sb = A[1:], B[1:], sa[1:], sb[1:]
        else:
            break
        g = gemm_form(ir.Einsum(s.out, so, f"{A},{B}->{out}", s.operands, (sa, sb))) if A and B and out else None
        if g is not None:
            return loops, g
    return None


def accumulates(s: ir.Einsum) -> bool:
    """A product looped over its operands' first axis that sums into the output (``looped_gemm_form``):
    chunks of samples running in parallel each accumulate a partial output (c_layer's sample loops)."""
    if gemm_form(s) is not None:   # one product (``pk,pj->kj``): no loop
        return False
    lg = looped_gemm_form(s)
    return lg is not None and lg[0][0][4]
