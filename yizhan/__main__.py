"""Lets ``python -m yizhan`` run the command line."""

import sys

from yizhan.cli import main

sys.exit(main())
