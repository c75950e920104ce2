"""YAML recipes + command-line overrides -> dataclasses, and one-line errors for every mistake."""

from dataclasses import dataclass, field
from typing import Literal

import pytest

from hfscratch.core.recipes import RecipeError, coerce, describe, parse_recipe


@dataclass
class Model:
    hidden_size: int = 64
    norm_type: Literal["layernorm", "rmsnorm"] = "rmsnorm"


@dataclass
class Run:
    output_dir: str  # required
    learning_rate: float = 1e-3
    bf16: bool = False
    sources: list[str] = field(default_factory=lambda: ["docs"])
    mixture: dict | None = None
    warmup: float | None = None


def write(tmp_path, text, name="recipe.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_recipe_values_reach_the_dataclasses_with_their_types(tmp_path):
    recipe = write(
        tmp_path,
        """
hidden_size: 128
norm_type: layernorm
output_dir: out
learning_rate: 3e-4      # YAML 1.1 reads this as a string
bf16: true
sources: [web, docs]
mixture: {web: 0.7, docs: 0.3}
warmup: 1                # an int where a float is expected
""",
    )
    model, run = parse_recipe([Model, Run], [recipe], prog="t")
    assert model == Model(hidden_size=128, norm_type="layernorm")
    assert run.learning_rate == 3e-4 and isinstance(run.learning_rate, float)
    assert run.bf16 is True and run.sources == ["web", "docs"]
    assert run.mixture == {"web": 0.7, "docs": 0.3}
    assert run.warmup == 1.0 and isinstance(run.warmup, float)


def test_command_line_overrides_the_recipe_which_overrides_defaults(tmp_path):
    recipe = write(tmp_path, "output_dir: out\nlearning_rate: 0.1\nhidden_size: 32\n")
    model, run = parse_recipe(
        [Model, Run], [recipe, "--learning_rate", "0.5", "--bf16", "--sources", "a", "b"], prog="t"
    )
    assert run.learning_rate == 0.5 and run.bf16 is True and run.sources == ["a", "b"]
    assert model.hidden_size == 32  # from the recipe
    assert model.norm_type == "rmsnorm"  # the default


def test_no_recipe_means_command_line_only():
    (run,) = parse_recipe([Run], ["--output_dir", "x", "--learning_rate", "2e-5"], prog="t")
    assert run.output_dir == "x" and run.learning_rate == 2e-5


@pytest.mark.parametrize(
    "text, expected",
    [
        ("hiden_size: 3\noutput_dir: o\n", ["recipe.yaml", "unknown key 'hiden_size'", "did you mean 'hidden_size'"]),
        ("output_dir: o\nlearning_rate: fast\n", ["recipe.yaml", "'learning_rate'", "expects a float", "'fast'"]),
        ("output_dir: o\nhidden_size: 1.5\n", ["recipe.yaml", "'hidden_size'", "expects an integer"]),
        ("output_dir: o\nnorm_type: batchnorm\n", ["'norm_type'", "'layernorm', 'rmsnorm'", "'batchnorm'"]),
        ("output_dir: o\nbf16: maybe\n", ["'bf16'", "expects a true/false"]),
        ("output_dir: o\nmixture: [1, 2]\n", ["'mixture'", "expects a mapping or null"]),
        ("- a\n- b\n", ["recipe.yaml", "expected a mapping", "got a list"]),
        ("output_dir: o\n  bad: indent\n", ["recipe.yaml", "invalid YAML at line"]),
    ],
)
def test_bad_recipes_give_one_line_naming_file_key_and_expectation(tmp_path, text, expected):
    recipe = write(tmp_path, text)
    with pytest.raises(RecipeError) as err:
        parse_recipe([Model, Run], [recipe], prog="t")
    message = str(err.value)
    assert "\n" not in message
    for part in expected:
        assert part in message


def test_missing_recipe_file(tmp_path):
    with pytest.raises(RecipeError, match=r"nope\.yaml: recipe file not found"):
        parse_recipe([Run], [str(tmp_path / "nope.yaml")], prog="t")


@pytest.mark.parametrize(
    "argv, expected",
    [
        (
            ["--output_dir", "o", "--learning_rat", "1"],
            "unknown option '--learning_rat' (did you mean 'learning_rate'?)",
        ),
        (["--output_dir", "o", "--hidden_size", "big"], "invalid int value: 'big'"),
        (["--output_dir", "o", "stray"], "unexpected argument 'stray'"),
        ([], "required: --output_dir"),
    ],
)
def test_bad_command_lines(argv, expected):
    with pytest.raises(RecipeError) as err:
        parse_recipe([Model, Run], argv, prog="t")
    assert expected in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("value, expected", [("-1e-3", -1e-3), ("-2", -2.0), ("-.5", -0.5), ("-3.0E+2", -300.0)])
def test_negative_numbers_are_option_values(value, expected):
    # argparse's own pattern knows no exponent: "-1e-3" was read as an option ("expected one argument").
    _, run = parse_recipe([Model, Run], ["--output_dir", "o", "--learning_rate", value], prog="t")
    assert run.learning_rate == expected


def test_recipe_satisfies_required_fields(tmp_path):
    (run,) = parse_recipe([Run], [write(tmp_path, "output_dir: from-recipe\n")], prog="t")
    assert run.output_dir == "from-recipe"


def test_coerce_and_describe():
    assert coerce("3e-4", float) == 3e-4
    assert coerce(2, float | None) == 2.0
    assert coerce(None, int | None) is None
    assert coerce("x", list[str]) == ["x"]
    with pytest.raises(TypeError):
        coerce(True, int)
    with pytest.raises(TypeError):
        coerce(None, int)
    assert describe(list[float] | None) == "a list of floats or null"
    assert describe(Literal["a", "b"]) == "one of 'a', 'b'"


def test_training_arguments_parse_from_a_recipe(tmp_path):
    """The Trainer's own dataclass goes through the same path (alignment-handbook style recipes)."""
    from transformers import TrainingArguments

    recipe = write(
        tmp_path,
        f"""
output_dir: {tmp_path / "run"}
learning_rate: 6.0e-4
lr_scheduler_type: cosine
warmup_steps: 10
max_grad_norm: 1
use_cpu: true
report_to: none
""",
    )
    (args,) = parse_recipe([TrainingArguments], [recipe, "--max_steps", "7"], prog="t")
    assert args.learning_rate == 6e-4 and args.max_steps == 7 and args.max_grad_norm == 1.0
    assert args.lr_scheduler_type.value == "cosine"
    with pytest.raises(RecipeError, match="At most one of fp16 and bf16"):  # the Trainer's own validation, one line
        parse_recipe([TrainingArguments], [recipe, "--bf16", "--fp16"], prog="t")
    with pytest.raises(RecipeError, match="unknown key 'learning_rte'"):
        parse_recipe([TrainingArguments], [write(tmp_path, "learning_rte: 1\n", "bad.yaml")], prog="t")
