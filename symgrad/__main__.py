"""``python -m symgrad``: the same command line as the ``symgrad`` entry point (``symgrad.cli``)."""
from .cli import main

if __name__ == "__main__":
    main(prog_name="symgrad")
