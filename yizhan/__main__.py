"""Lets ``python -m yizhan`` run the command line."""

import sys

# Guarded, the command line's import too: a processing worker (daemon/workers.py, spawned)
# imports this module again as its ``__mp_main__``, and needs none of the verbs.
if __name__ == "__main__":
    from yizhan.cli import main

    sys.exit(main())
