"""Generated NumPy LayerNorm forward+backward vs the hand-written NumPy reference (issue 3).

    python bench/bench_layernorm_numpy.py       # same as: symgrad bench layernorm --dtype float32
"""
import sys

from symgrad.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "layernorm", "--dtype", "float32", "--no-generate", *sys.argv[1:]]))
