"""Files the kit ships inside the package: the recipes and the model-card template.

They are package data, found with `importlib.resources`, so a `pip install hfscratch` user has them as much as
a clone of the repository does (where `recipes/` at the top is a link to `hfscratch/recipes/`). A recipe
argument that is not a file on disk names a shipped recipe: `tiny-cpu` for `hfscratch pretrain`, or
`pretrain/tiny-cpu`, or the repository path `recipes/pretrain/tiny-cpu.yaml` from any working directory.
"""

from __future__ import annotations

import re
import shutil
from importlib.resources import as_file, files
from importlib.resources.abc import Traversable
from pathlib import Path

RECIPE_SUFFIXES = (".yaml", ".yml", ".json", ".jsonl", ".sh")
# Every file the kit reads from the package at run time; the wheel test checks each is in the wheel.
RUNTIME_RESOURCES = (
    "recipes/quickstart.yaml",
    "recipes/curate/python-docs.yaml",
    "recipes/tokenize/python-docs.yaml",
    "recipes/pretrain/tiny-cpu.yaml",
    "recipes/evaluate/quickstart.yaml",
    "recipes/finetune/seed_tasks.jsonl",
    "hub/templates/model_card.md",
)


def package_root() -> Traversable:
    return files("hfscratch")


def recipes_root() -> Traversable:
    return package_root() / "recipes"


def resource_path(name: str) -> Path:
    """A shipped file as a real path (the package is installed unzipped, so this is the file itself)."""
    with as_file(package_root() / name) as path:
        return Path(path)


def model_card_template() -> Path:
    return resource_path("hub/templates/model_card.md")


def shipped_recipes() -> list[str]:
    """Every shipped recipe, as `step/name` (suffix kept for files that are not YAML recipes)."""
    names = []

    def walk(folder: Traversable, prefix: str) -> None:
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.is_dir():
                walk(entry, f"{prefix}{entry.name}/")
            elif entry.name.endswith(RECIPE_SUFFIXES):
                stem = entry.name.removesuffix(".yaml")
                names.append(f"{prefix}{stem}")

    walk(recipes_root(), "")
    return names


def find_shipped_recipe(name: str, step: str | None = None) -> Path | None:
    """The shipped file `name` names, for `step`'s folder first, or None.

    Accepted spellings: `tiny-cpu` (with `step`), `pretrain/tiny-cpu`, `pretrain/tiny-cpu.yaml` and
    `recipes/pretrain/tiny-cpu.yaml` (a repository path, from any working directory).
    """
    name = name.removeprefix("./").removeprefix("recipes/")
    candidates = [f"{step}/{name}"] if step and "/" not in name else []
    candidates.append(name)
    root = recipes_root()
    for candidate in candidates:
        for suffix in ("", ".yaml"):
            entry = root.joinpath(*f"{candidate}{suffix}".split("/"))
            if entry.is_file():
                return resource_path(f"recipes/{candidate}{suffix}")
    return None


def resolve_recipe(name: str | Path, step: str | None = None) -> Path:
    """`name` as a path when it is a file on disk, else the shipped recipe it names, else `name` unchanged
    (so the caller's "recipe file not found" error names what the user typed)."""
    path = Path(name)
    if path.is_file():
        return path
    return find_shipped_recipe(str(name), step) or path


def copy_recipe(name: str, destination: str | Path) -> list[Path]:
    """Copy the shipped recipe (or folder of recipes) `name` under `destination`, keeping its `step/` folder,
    so a copied accelerate config finds its DeepSpeed JSON at the same relative path. Existing files are never
    overwritten. Returns the files written."""
    name = name.removeprefix("recipes/").strip("/")
    root = recipes_root()
    folder = root.joinpath(*name.split("/"))
    sources = [n for n in shipped_recipes() if folder.is_dir() and n.startswith(f"{name}/")]
    if not sources:
        found = find_shipped_recipe(name)
        if found is None:
            raise FileNotFoundError(f"no shipped recipe named {name!r}; `hfscratch recipes` lists them")
        sources = [found.relative_to(resource_path("recipes")).as_posix().removesuffix(".yaml")]
        # Shipped files the recipe names by its `recipes/...` path (an accelerate config's DeepSpeed JSON) come too.
        for named in re.findall(r"recipes/([\w./-]+)", found.read_text(encoding="utf-8")):
            if named != f"{sources[0]}.yaml" and root.joinpath(*named.split("/")).is_file():
                sources.append(named)
    relatives = [s if Path(s).suffix in RECIPE_SUFFIXES else f"{s}.yaml" for s in sources]
    targets = [Path(destination) / relative for relative in relatives]
    for target in targets:  # all checked before any is written
        if target.exists():
            raise FileExistsError(f"{target}: already exists; not overwritten")
    for relative, target in zip(relatives, targets):
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(resource_path(f"recipes/{relative}"), target)
    return targets
