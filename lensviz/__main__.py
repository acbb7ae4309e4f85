"""``python -m lensviz``: the command line of :mod:`lensviz.cli`."""

import sys

from lensviz.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m lensviz"))
