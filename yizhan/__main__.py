"""Lets ``python -m yizhan`` run the command line."""

import sys

from yizhan.cli import main

# Guarded: a processing worker (daemon/workers.py, spawned) imports this module again.
if __name__ == "__main__":
    sys.exit(main())
