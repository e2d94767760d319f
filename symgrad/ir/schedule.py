"""Scheduling decisions on the kernel IR that the loop emitters share: which reductions accumulate
per chunk of rows, and which parts of a concatenation are written in place.

``colred``: a reduction over the leading axis only (``dgamma = sum_rows(dy * xhat)``) runs inside the
row loop of its producers and accumulates one partial row per chunk of rows (``CHUNKS``), summed
after the loop, deterministic for any thread count. ``concat_parts``: elementwise parts of a
concatenation are computed straight into their column block (no buffer of their own, no copy).
"""
from __future__ import annotations

from . import nodes as ir
from .nodes import is_one

CHUNKS = 16   # row chunks of a loop with column reductions: partial sums per chunk, then summed
CHUNK_ROWS = 8   # rows a chunk has at least (N < 128: ceil(N / 8) chunks), so that a small batch with
                 # wide rows does not zero and add 16 partial rows for 2 rows of data each: LayerNorm
                 # backward at 32x1024 (2 threads) 22 -> 12 us


def colred(s) -> bool:
    """A reduction over the leading axis only (``dgamma = sum_rows(dy * xhat)``): inside a row loop it
    accumulates into one partial row per chunk of rows (deterministic for any thread count)."""
    return (isinstance(s, ir.Reduction) and tuple(s.axes) == (0,) and len(s.src_shape) >= 2
            and not is_one(s.src_shape[0]) and tuple(s.shape) != ())


def concat_parts(f: ir.Function, taken=()) -> set:
    """Parts of a concatenation that an elementwise statement of ``f`` computes: written straight
    into their column block of the concatenation (no buffer of their own, no copy)."""
    made = {s.out for s in f.body if isinstance(s, ir.Elementwise)}
    out = set()
    for s in f.body:
        if isinstance(s, ir.Concat):
            out |= {p for p in s.parts if p in made and p not in taken}
    return out
