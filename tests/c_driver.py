"""A standalone C test program over generated kernels, for builds with sanitizers (ASan/UBSan cannot be
loaded into Python). Every buffer is malloc'ed at exactly the size the header states, so any
out-of-bounds access is caught; each kernel runs forward and backward, float and double, per size;
each optimizer runs every one of its rules (three steps each), each schedule every flag setting.
"""
from __future__ import annotations

from symgrad.targets.c.layer import cint
from symgrad.targets.c.plan import kept, plan, plan_kept
from symgrad.ir.rewrite import c_kernel


def _funcs(spec):
    """(kernel IR, dims, forward CFunc, backward CFunc, ({input: its copy}, NAME_forward_kept CFunc) or
    None) as the C emitter plans them."""
    if spec.kind == "recurrent":
        from symgrad.targets.c.recurrent import CRecurrent
        r = CRecurrent(spec)
        return r.k, [str(d) for d in r.dims], r.fwd, r.bwd, (r.kept, r.fwdk) if r.fwdk else None
    k = c_kernel(spec)
    fwd, bwd = plan(k)
    pk = plan_kept(k)
    return k, [str(d) for d in k.dims], fwd, bwd, (kept(k), pk[1]) if pk else None


def _kernel_fn(spec, real, sfx) -> list[str]:
    k, dims, fwd, bwd, with_kept = _funcs(spec)
    name = spec.name
    lines = [f"static double run_{name}_{sfx}(int64_t s)", "{", "    uint64_t seed = 7;"]
    sizes = {n: (default, minimum) for n, default, minimum in getattr(k, "sizes", [])}
    outs = {n: (num, stride) for n, num, stride in getattr(k, "out_dims", [])}
    windows = {str(x) for f in (k.forward, k.backward) for st in f.body if hasattr(st, "dilation")
               for x in st.size}
    for i, d in enumerate(dims):
        if d in sizes:   # stride, padding, dilation, kernel size: small, varied with s (s / 2: the sizes
            # 1, 3, 17 are odd, so s alone gave every size of one kernel the same value at every size)
            lines.append(f"    const int64_t {d} = {sizes[d][1]} + (s / 2 + {i}) % 2;")
        elif d in outs:  # window positions: from their formula, as the Python runtime computes them
            num, stride = outs[d]
            lines.append(f"    const int64_t {d} = ({cint(num)}) / {cint(stride)} + 1;")
        elif d in windows:   # a kernel's size: small enough to fit the other axes; 3 at s = 3, where stride,
            # padding and dilation above are 1, 1, 1: a 3x3 convolution's Winograd products run there
            lines.append(f"    const int64_t {d} = s == 3 ? 3 : 1 + (s + {i}) % 3;")
        else:
            lines.append(f"    const int64_t {d} = s + {i};")
    bufs, frees = {}, []

    def alloc(a, fill):
        ctype = "int64_t" if a.role == "index" else real
        n = cint(a.size()) if a.role != "scratch" else None
        if a.role == "scratch":
            n = f"{name}_{cf.name}_scratch_size({', '.join(dims)})"
        var = f"{cf.name}_{a.name}"
        lines.append(f"    {ctype} *{var} = malloc(sizeof({ctype}) * (size_t)({n}));")
        frees.append(var)
        if fill == "real":
            lines.append(f"    for (int64_t i = 0; i < {n}; ++i) {var}[i] = ({real})(4.0 * rnd(&seed) - 2.0);")
        elif fill == "index":
            bound = next(str(x.bound) for x in k.inputs if x.name == a.name)
            lines.append(f"    for (int64_t i = 0; i < {n}; ++i) {var}[i] = (int64_t)(rnd(&seed) * {bound}) % {bound};")
        return var

    hyper = {n: repr(float(v)) for n, v in k.hypers}
    funcs = [fwd, bwd]
    if with_kept is not None:   # NAME_forward_kept too; backward reads its copies
        funcs.insert(1, with_kept[1])
    for cf in funcs:
        call = []
        for a in cf.args:
            if a.role in ("out", "cache", "scratch"):
                call.append(alloc(a, None))
                bufs[a.name] = call[-1]
            elif a.role in ("in", "index"):
                if a.name in bufs:  # saved from forward
                    call.append(bufs[a.name])
                else:
                    call.append(alloc(a, "real" if a.role == "in" else "index"))
                    bufs[a.name] = call[-1]
            elif a.role == "scalar":
                call.append("1.25")
            elif a.role == "hyper":
                call.append(hyper[a.name])
            else:
                call.append(a.name)
        lines.append(f"    {name}_{cf.name}_{sfx}({', '.join(call)});")
        if cf.name == "forward_kept":
            bufs.update({n: bufs[c] for n, c in with_kept[0].items()})
    lines.append("    double sum = 0;")
    for a in bwd.args:
        if a.role == "out":
            lines.append(f"    for (int64_t i = 0; i < {cint(a.size())}; ++i) sum += backward_{a.name}[i];")
    lines += [f"    free({v});" for v in frees]
    lines += ["    return sum;", "}", ""]
    return lines


def _optimizer_fn(spec, real, sfx) -> list[str]:
    """Every rule of an optimizer (hyperparameters and t chosen to select it) for three steps."""
    from symgrad.targets.c.optimizer import driver_cases, step_args
    args = step_args(spec)
    lines = [f"static double run_{spec.name}_{sfx}(int64_t n)", "{", "    uint64_t seed = 11;", "    int bad_ = 0;"]
    arrays = [a for a in args if a.role in ("param", "grad", "state", "scalar_state")]  # a scalar: b_x[0]
    for a in arrays:
        lines.append(f"    {real} *b_{a.name} = malloc(sizeof({real}) * (size_t)n);")
    cases = driver_cases(spec)
    assert len(cases) == len(spec.variants()), spec.name
    for hyper, t0 in cases:
        for a in arrays:
            init = spec.state.get(a.name)
            fill = f"({real})(4.0 * rnd(&seed) - 2.0)" if init is None else \
                f"({real}){float(init.subs({getattr(spec.symbols, h): spec.hypers[h].default_value() for h in spec.init_hypers}))!r}"
            lines.append(f"    for (int64_t i = 0; i < n; ++i) b_{a.name}[i] = {fill};")
        for t in (t0, t0 + 1, t0 + 2):
            call = [f"b_{a.name}" if a.role in ("param", "grad", "state", "scalar_state") else "n" if a.role == "n" else str(t) if a.role == "t" else
                    str(int(hyper[a.name])) if a.role == "flag" else repr(float(hyper[a.name])) for a in args]
            lines.append(f"    bad_ |= {spec.name}_step_{sfx}({', '.join(call)}) != 0;")
    pname = args[0].name
    lines += ["    double sum_ = bad_ ? NAN : 0;", f"    for (int64_t i = 0; i < n; ++i) sum_ += b_{pname}[i];"]
    lines += [f"    free(b_{a.name});" for a in arrays] + ["    return sum_;", "}", ""]
    return lines


def _schedule_fn(spec, sfx) -> list[str]:
    args = ", ".join(["0.5"] * len(spec.args) + ["1" if sfx == "f32" else "0"] * len(spec.flags))
    return [f"static double run_{spec.name}_{sfx}(int64_t n)", "{",
            f"    return (double)n * {spec.name}_value({args});", "}", ""]


def driver(specs, sizes=(1, 3, 17)) -> str:
    out = ["#include <math.h>", "#include <stdint.h>", "#include <stdio.h>", "#include <stdlib.h>"]
    out += [f'#include "{s.name}.h"' for s in specs]
    out += ["static double rnd(uint64_t *s) { *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;"
            " return (double)(*s >> 11) / 9007199254740992.0; }", ""]
    for s in specs:
        for real, sfx in (("float", "f32"), ("double", "f64")):
            out += (_optimizer_fn(s, real, sfx) if s.kind == "optimizer" else
                    _schedule_fn(s, sfx) if s.kind == "schedule" else _kernel_fn(s, real, sfx))
    out += ["int main(void)", "{", "    int bad = 0;"]
    for n in sizes:
        for s in specs:
            for sfx in ("f32", "f64"):
                out.append(f"    {{ double v = run_{s.name}_{sfx}({n}); if (!isfinite(v)) "
                           f"{{ printf(\"non-finite gradients: {s.name}_{sfx} size {n}\\n\"); bad = 1; }} }}")
    out += ['    printf("ran %d kernels\\n", ' + str(len(specs) * 2 * len(sizes)) + ");", "    return bad;", "}"]
    return "\n".join(out) + "\n"
