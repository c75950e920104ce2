"""`hfscratch recipes`: list the shipped recipes; `hfscratch recipes copy NAME [DIR]` copies one to edit."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from hfscratch.core.recipes import RecipeError
from hfscratch.core.resources import copy_recipe, resource_path, shipped_recipes


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="hfscratch recipes",
        description="The recipes shipped with hfscratch. A step takes a shipped recipe by name "
        "(`hfscratch pretrain tiny-cpu`) or a copy you edit (`hfscratch recipes copy pretrain/tiny-cpu`).",
    )
    commands = parser.add_subparsers(dest="command")
    listing = commands.add_parser("list", help="List the shipped recipes (the default).")
    listing.add_argument("--paths", action="store_true", help="Print each recipe's installed path too.")
    copy = commands.add_parser("copy", help="Copy a shipped recipe, or a folder of them, to edit.")
    copy.add_argument("name", help="e.g. pretrain/tiny-cpu, accelerate/zero2, or a whole folder: accelerate")
    copy.add_argument(
        "dir", nargs="?", default="recipes", help="Where to copy it (default: recipes/, keeping the step folder)."
    )
    path = commands.add_parser("path", help="Print the installed path of a shipped recipe.")
    path.add_argument("name")
    args = parser.parse_args(argv)

    if args.command == "copy":
        try:
            written = copy_recipe(args.name, args.dir)
        except (FileNotFoundError, FileExistsError) as exc:
            raise RecipeError(str(exc)) from None
        for target in written:
            print(f"wrote {target}")
        return 0
    if args.command == "path":
        from hfscratch.core.resources import find_shipped_recipe

        found = find_shipped_recipe(args.name)
        if found is None:
            raise RecipeError(f"no shipped recipe named {args.name!r}; `hfscratch recipes` lists them")
        print(found)
        return 0
    root = resource_path("recipes")
    for name in shipped_recipes():
        suffix = "" if "." in name.rsplit("/", 1)[-1] else ".yaml"
        print(f"{name:<36} {root / (name + suffix)}" if getattr(args, "paths", False) else name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
