"""`python -m hfscratch` is the `hfscratch` command."""

import sys

from hfscratch_cli import main

sys.exit(main())
