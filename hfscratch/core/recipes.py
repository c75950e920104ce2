"""Recipes: `hfscratch <step> RECIPE.yaml [--key value ...]` parsed into dataclasses.

This is the alignment-handbook convention on top of `transformers.HfArgumentParser`: the YAML file gives
the run, command-line options override single keys, and both end up in the step's dataclasses (which may
include `transformers.TrainingArguments`). Every mistake a user can make here (a missing file, an unknown
key, a value of the wrong type) becomes a `RecipeError` with a one-line message that names the file, the
key and what was expected; the CLI prints it and exits with status 2.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import re
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from hfscratch.core.resources import find_shipped_recipe, resolve_recipe


def _load_hf_argparser() -> type:
    """`transformers.HfArgumentParser`, without importing the transformers package when it is not loaded yet.

    `transformers/hf_argparser.py` imports only the standard library and yaml, but `import transformers` costs
    about 0.7 s (its utils, huggingface_hub, version checks): more than `hfscratch plan` or a step's `--help` may
    take. So the module file is executed on its own, under a private name; should a future transformers give it
    internal imports, this falls back to the ordinary import.
    """
    import sys

    if "transformers" in sys.modules:
        from transformers import HfArgumentParser

        return HfArgumentParser
    import importlib.util

    package = importlib.util.find_spec("transformers")  # locates the package without running its __init__
    location = next(iter(package.submodule_search_locations or []), None) if package else None
    if location is not None:
        spec = importlib.util.spec_from_file_location("_hfscratch_hf_argparser", Path(location) / "hf_argparser.py")
        if spec is not None and spec.loader is not None:
            module = importlib.util.module_from_spec(spec)
            try:
                spec.loader.exec_module(module)
                return module.HfArgumentParser
            except ImportError:
                pass
    from transformers import HfArgumentParser

    return HfArgumentParser


HfArgumentParser = _load_hf_argparser()


class RecipeError(ValueError):
    """Bad input from a recipe file or the command line. Its message is one line, fit to show as is."""


# Steps whose recipes live in another step's folder of the shipped recipes.
RECIPE_FOLDERS = {"synthesize": "finetune"}


class RecipeParser(HfArgumentParser):
    """`HfArgumentParser` that reads an optional YAML recipe first and reports errors as `RecipeError`.

    A recipe argument that is not a file on disk may name a shipped recipe (`hfscratch pretrain tiny-cpu`): the
    step's folder of `hfscratch/recipes/` is searched, named by `step` (default: the last word of `prog`).
    """

    # argparse reads a word that starts with "-" as an option unless it looks like a negative number, and its
    # pattern for that knows no exponents: `--learning_rate -1e-3` would be "expected one argument".
    NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^-inf$")

    def __init__(self, dataclass_types: Any, step: str | None = None, **kwargs: Any) -> None:
        super().__init__(dataclass_types, **kwargs)
        self._negative_number_matcher = self.NEGATIVE_NUMBER
        step = step or (self.prog.split()[-1] if self.prog.startswith("hfscratch ") else None)
        self.step = RECIPE_FOLDERS.get(step, step)

    def add_argument(self, *args: Any, **kwargs: Any) -> Any:
        # Help texts are prose ("decay to 10%"); argparse would read a % as a format directive.
        if isinstance(kwargs.get("help"), str):
            kwargs["help"] = re.sub(r"(?<!%)%(?![%(])", "%%", kwargs["help"])  # leave %% and %(default)s
        return super().add_argument(*args, **kwargs)

    def error(self, message: str) -> typing.NoReturn:
        # argparse would print the usage and exit; callers want one line and control over the exit.
        raise RecipeError(message)

    def parse_recipe_and_args(self, argv: Sequence[str], positional: str | None = None) -> tuple[Any, ...]:
        """Parse `[RECIPE.yaml] [--key value ...]` into one instance of each dataclass, in order.

        Command-line values win over the recipe, and the recipe wins over the dataclass defaults. With
        `positional` (a key, e.g. "model_name_or_path"), one leading argument that is not a YAML file sets that
        key, before or after the recipe: `hfscratch evaluate MODEL_DIR [RECIPE.yaml] [--key value ...]`.
        """
        argv = list(argv)
        leading = []
        while argv and not argv[0].startswith("-") and len(leading) < (2 if positional else 1):
            leading.append(argv.pop(0))
        recipes = [a for a in leading if not positional or self._is_recipe(a)]
        values = [a for a in leading if a not in recipes]
        if len(recipes) > 1 or len(values) > 1:
            raise RecipeError(f"unexpected argument {leading[1]!r}")
        for recipe in recipes:
            for key, value in self.read_recipe_file(resolve_recipe(recipe, self.step)).items():
                self._use_as_default(key, value)
        overrides = [f"--{positional}", values[0], *argv] if values else argv
        _, unknown = self.parse_known_args(overrides)  # before the dataclasses validate themselves
        if unknown:
            word = unknown[0]
            what = "unknown option" if word.startswith("-") else "unexpected argument"
            raise RecipeError(f"{what} {word!r}{self._suggest(word.lstrip('-'))}")
        try:
            return tuple(self.parse_args_into_dataclasses(args=overrides, look_for_args_file=False))
        except RecipeError:
            raise
        except ValueError as exc:  # a dataclass's own validation, e.g. TrainingArguments.__post_init__
            raise RecipeError(" ".join(str(exc).split())) from None

    def _is_recipe(self, word: str) -> bool:
        """With a positional key (a model folder), a leading word is the recipe when it is a YAML file or names
        a shipped recipe and no folder of that name exists."""
        if Path(word).suffix in (".yaml", ".yml"):
            return True
        return not Path(word).exists() and find_shipped_recipe(word, self.step) is not None

    # -- reading the YAML file ------------------------------------------------------------------------

    def _fields(self) -> dict[str, Any]:
        """Every recipe key, mapped to its resolved type."""
        fields = {}
        for dtype in self.dataclass_types:
            hints = typing.get_type_hints(dtype)
            fields.update({field.name: hints[field.name] for field in dataclasses.fields(dtype) if field.init})
        return fields

    def read_recipe_file(self, path: Path) -> dict[str, Any]:
        """The recipe's values, checked against the dataclasses' keys and types."""
        if not path.is_file():
            raise RecipeError(
                f"{path}: recipe file not found (expected a YAML file of key: value pairs, or the name of a shipped "
                "recipe: `hfscratch recipes` lists them)"
            )
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            where = getattr(exc, "problem_mark", None)
            line = f" at line {where.line + 1}" if where else ""
            raise RecipeError(f"{path}: invalid YAML{line}: {getattr(exc, 'problem', exc)}") from None
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise RecipeError(f"{path}: expected a mapping of key: value pairs, got a {type(data).__name__}")
        fields = self._fields()
        values = {}
        for key, value in data.items():
            if key not in fields:
                raise RecipeError(f"{path}: unknown key {key!r}{self._suggest(str(key))}")
            hint = fields[key]
            try:
                values[key] = coerce(value, hint)
            except (TypeError, ValueError) as exc:
                raise RecipeError(f"{path}: key {key!r} expects {describe(hint)}, got {value!r} ({exc})") from None
        return values

    def _use_as_default(self, key: str, value: Any) -> None:
        self.set_defaults(**{key: value})
        for action in self._actions:
            if action.dest == key:
                action.required = False  # the recipe supplied it

    def _suggest(self, key: str) -> str:
        close = difflib.get_close_matches(key, self._fields(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"{hint}; see `{self.prog} --help` for the keys it takes"


# -- type checking of YAML values ----------------------------------------------------------------------


def coerce(value: Any, hint: Any) -> Any:
    """Check `value` (as YAML typed it) against the type `hint`, converting where YAML is ambiguous.

    YAML 1.1 reads `3e-4` as a string and `1` as an int, so numbers are accepted from strings and ints
    are accepted where floats are expected. Anything else must match the hint; a `TypeError` or
    `ValueError` says what did not.
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return coerce(value, option)
            except (TypeError, ValueError) as exc:
                errors.append(str(exc))
        raise TypeError("; ".join(errors))
    if origin is Literal:
        if value not in args:
            raise ValueError(f"not one of {', '.join(map(repr, args))}")
        return value
    if origin in (list, tuple, Sequence) or hint in (list, tuple):
        items = value if isinstance(value, list) else [value]
        item_hint = args[0] if args else Any
        return [coerce(item, item_hint) for item in items]
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise TypeError("not a mapping")
        return value
    if hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise TypeError("not true/false")
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value).value
    if hint is float:
        if isinstance(value, bool):
            raise TypeError("not a number")
        return float(value)  # accepts ints and strings such as "3e-4"
    if hint is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise TypeError("not an integer")
        return int(value)
    if hint is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise TypeError("not a string")
    if isinstance(hint, type) and not isinstance(value, hint):
        raise TypeError(f"not a {hint.__name__}")
    return value


def describe(hint: Any) -> str:
    """A type hint in words, for error messages: `float | None` -> 'a float or null'."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Union or origin is types.UnionType:
        words = [describe(a) for a in args if a is not type(None)]
        if type(None) in args:
            words.append("null")
        return " or ".join(words)
    if origin is Literal:
        return "one of " + ", ".join(map(repr, args))
    if origin in (list, tuple, Sequence):
        return f"a list of {describe(args[0]).removeprefix('a ').removeprefix('an ')}s" if args else "a list"
    if origin is dict or hint is dict:
        return "a mapping"
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return "one of " + ", ".join(repr(m.value) for m in hint)
    name = {bool: "true/false", int: "integer", float: "float", str: "string"}.get(
        hint, getattr(hint, "__name__", str(hint))
    )
    return f"an {name}" if name[0] in "aeiou" else f"a {name}"


def parse_recipe(
    dataclass_types: Sequence[type],
    argv: Sequence[str],
    prog: str,
    description: str | None = None,
    positional: str | None = None,
    usage: str = "%(prog)s [RECIPE.yaml] [--key value ...]",
) -> tuple[Any, ...]:
    """Parse `[RECIPE.yaml] [--key value ...]` into one instance of each of `dataclass_types` (see
    `RecipeParser.parse_recipe_and_args` for `positional`)."""
    parser = RecipeParser(
        dataclass_types,
        prog=prog,
        description=description,
        usage=usage,
        allow_abbrev=False,  # a typo that happens to be a prefix of a key must not set that key
    )
    return parser.parse_recipe_and_args(argv, positional)


def read_recipe(path: str | Path, *dataclass_types: type) -> dict[str, Any]:
    """A recipe file's values, checked like `parse_recipe` checks them, for code that adjusts a recipe."""
    return RecipeParser(dataclass_types).read_recipe_file(resolve_recipe(path))
