"""Bad input: one clear error each, naming what is wrong, exit status 2 through the dispatcher."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hfscratch.core.recipes import RecipeError, parse_recipe
from hfscratch.evaluation.arguments import EvaluateArguments
from hfscratch.evaluation.cli import main


def test_a_folder_that_is_not_a_causal_lm(tmp_path: Path) -> None:
    folder = tmp_path / "bert"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert", "architectures": ["BertModel"]}))
    with pytest.raises(RecipeError, match=r"not a causal language model \(config.json architectures \['BertModel'\]"):
        main([str(folder), "--tasks", "arc_easy"])
    (folder / "config.json").write_text(json.dumps({"model_type": "vit"}))
    with pytest.raises(RecipeError, match=r"not a causal language model \(config.json model_type 'vit'"):
        main([str(folder), "--tasks", "arc_easy"])
    with pytest.raises(RecipeError, match=r"not a model folder \(no config.json"):
        main([str(tmp_path), "--tasks", "arc_easy"])


def test_nothing_to_evaluate(random_model_dir: Path) -> None:
    with pytest.raises(RecipeError, match="nothing to evaluate"):
        main([str(random_model_dir)])


def test_an_unknown_task_name_is_named_with_a_suggestion(random_model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match=r"lm-eval has no task 'arc_eazy' \(did you mean 'arc_easy'"):
        main([str(random_model_dir), "--tasks", "arc_eazy", "--output_dir", str(tmp_path)])


def mirror(root: Path, hub_id: str, config: str, splits: list[str]) -> None:
    folder = root / hub_id
    folder.mkdir(parents=True)
    files = "".join(f"  - split: {s}\n    path: {config}/{s}.parquet\n" for s in splits)
    (folder / "README.md").write_text(f"---\nconfigs:\n- config_name: {config}\n  data_files:\n{files}---\n")


def test_a_data_dir_missing_a_dataset_or_a_split(random_model_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "mirror"
    mirror(data, "allenai/ai2_arc", "ARC-Easy", ["train"])
    base = [str(random_model_dir), "--data-dir", str(data), "--output_dir", str(tmp_path / "out")]
    with pytest.raises(RecipeError, match=r"has no Rowan/hellaswag/ \(task 'hellaswag' reads the Hub dataset"):
        main([*base, "--tasks", "hellaswag"])
    with pytest.raises(RecipeError, match=r"config 'ARC-Easy' has no 'test' split, which task 'arc_easy' reads"):
        main([*base, "--tasks", "arc_easy"])
    with pytest.raises(RecipeError, match=r"has no config 'ARC-Challenge' for task 'arc_challenge'"):
        main([*base, "--tasks", "arc_challenge"])


def test_a_bad_value_names_the_key() -> None:
    with pytest.raises(RecipeError, match="key 'preset' must be one of leaderboard-v1, zero-shot"):
        main(["some-model", "--preset", "leaderboard"])


def test_positional_model_dir_and_recipe(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("preset: zero-shot\n")

    def parse(*argv: str) -> EvaluateArguments:
        (args,) = parse_recipe([EvaluateArguments], argv, "test", positional="model_name_or_path")
        return args

    for args in (
        parse("m", str(recipe), "--limit", "5"),
        parse(str(recipe), "--model_name_or_path", "m", "--limit", "5"),
    ):
        assert (args.model_name_or_path, args.preset, args.limit) == ("m", "zero-shot", 5)
    with pytest.raises(RecipeError, match="unexpected argument 'n'"):
        parse("m", "n")
