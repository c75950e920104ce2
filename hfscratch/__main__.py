"""`python -m hfscratch` is the `hfscratch` command."""

import sys

from hfscratch.cli import main

sys.exit(main())
