"""`python -m hfscratch.plan ...` is `hfscratch plan ...`."""

import sys

from hfscratch.plan.cli import main

sys.exit(main(sys.argv[1:]))
