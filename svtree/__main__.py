"""`python -m svtree PROG ARGS...` runs one of the programs without PATH."""
import importlib
import sys

if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python -m svtree PROG [ARGS...]")
    prog = sys.argv.pop(1)
    sys.exit(importlib.import_module(f"svtree.cli.{prog}").main())
