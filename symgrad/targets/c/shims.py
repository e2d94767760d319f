"""The runtime's entry points into a kernel library: the arrays of a call passed as one tuple.

A ctypes argument costs: a call of ``dense_forward_kept_f32`` with its six arrays as ``c_void_p``
objects (``ctypes.c_void_p.from_address(id(a) + offset)``, each 86 ns to make) and three sizes took
1.37 us before the kernel ran; the same call with one tuple of the arrays (``ctypes.py_object``) and
the three sizes 0.62 us, with everything in one tuple 0.25 us. A 32 x 64 dense forward+backward
went from 19.7 to 16.8-17.8 us. So the library built for the Python
runtime (not the files in ``generated/``, whose functions are the public C interface) gets, for every
function of the header that takes arrays, a twin ``NAME_t``:

    void dense_forward_f32_t(const void *_a, int64_t N, int64_t D, int64_t M)
    { dense_forward_f32(SG_ARRAY(_a, 0), SG_ARRAY(_a, 1), SG_ARRAY(_a, 2), SG_ARRAY(_a, 3), N, D, M); }

``_a`` is the tuple; ``SG_ARRAY(_a, i)`` reads its item ``i`` (an ndarray) and that array's data
pointer, at the two offsets the runtime verified when it loaded (``runtime.tuple_offset``,
``runtime.data_offset``; without them no twin is made and every array is a ctypes argument as before).
The arrays keep their order in the header's prototype; the other arguments follow in theirs. The
call releases the GIL as any ctypes call: the C side only reads the tuple, which the caller's call
keeps alive and nothing can change. The twins are made from the header text itself (one prototype a
line, as the templates write them), so they cannot disagree with the functions they call.
"""
from __future__ import annotations

import re

PROTOTYPE = re.compile(r"^(\w+) (\w+)\(([^()]*)\);$", re.M)
"""``RET NAME(PARAMS);`` on a line of its own: a function of a generated header."""


def prototypes(header: str) -> list[tuple[str, str, list[str]]]:
    """(return type, name, parameters) of every function declared in ``header``."""
    return [(ret, name, [p.strip() for p in params.split(",")]) for ret, name, params in PROTOTYPE.findall(header)]


def shim_source(header: str, items: int, data: int) -> str:
    """C source of the ``NAME_t`` twin of every function in ``header`` that takes an array (a pointer);
    ``items``: where a tuple keeps its items, ``data``: where an ndarray keeps its data pointer (bytes
    from the object's address)."""
    out = ["", "/* the Python runtime's entry points: the arrays as one tuple (symgrad/targets/c/shims.py) */",
           f"#define SG_ARRAY(t, i) (*(void *const *)((const char *)((const void *const *)((const char *)(t) + {items}))[i]"
           f" + {data}))"]
    for ret, name, params in prototypes(header):
        if not any("*" in p for p in params):
            continue
        rest = [p for p in params if "*" not in p]
        args, i = [], 0
        for p in params:
            if "*" in p:
                args.append(f"SG_ARRAY(_a, {i})")
                i += 1
            else:
                args.append(p.split()[-1])
        out.append(f"{ret} {name}_t(const void *_a{''.join(', ' + p for p in rest)})")
        out.append(f"{{\n    {'' if ret == 'void' else 'return '}{name}({', '.join(args)});\n}}")
    return "\n".join(out) + "\n"
