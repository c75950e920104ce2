"""`hfscratch plan [RECIPE.yaml] [--key value ...]`: parse, plan, print (tables, or JSON with --json)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from hfscratch.core.recipes import parse_recipe
from hfscratch.plan.arguments import PlanArguments
from hfscratch.plan.planner import make_plan, make_tables
from hfscratch.plan.render import render_plan, render_tables

DESCRIPTION = "Step 0: size a training run: parameters, tokens, FLOPs, GPU-hours, cost, energy, memory."


def main(argv: Sequence[str]) -> int:
    (args,) = parse_recipe([PlanArguments], argv, prog="hfscratch plan", description=DESCRIPTION)
    if args.table:
        result = make_tables(args)
        text = render_tables(result)
    else:
        result = make_plan(args)
        text = render_plan(result)
    print(json.dumps(result, indent=2) if args.json else text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
