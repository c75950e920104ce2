"""`hfscratch push`: what goes up, the fresh-process load check, a real upload to a local Hub, and bad input."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from hub_local_server import LocalHub
from huggingface_hub import ModelCard, constants

from hfscratch import cli as hfscratch_cli
from hfscratch.core.recipes import RecipeError
from hfscratch.hub.push import push, upload_plan
from hfscratch.models.hfscratch import HFScratchConfig, HFScratchForCausalLM

NEEDED = {
    "model.safetensors",
    "config.json",
    "configuration_hfscratch.py",
    "modeling_hfscratch.py",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "README.md",
    "loss_curve.png",
    "curation_funnel.png",
    "evaluation_scores.png",
}


@pytest.fixture
def online(monkeypatch, tmp_path):
    """huggingface_hub as on a machine with a network and no saved login; XET off (the local Hub speaks LFS)."""
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token-file"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    return monkeypatch


def folder_hashes(folder: Path) -> dict[str, str]:
    """Every file under `folder` (checkpoints and training state included) -> its SHA-256."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_dry_run_lists_every_needed_file_and_loads_where_hfscratch_cannot(model_dir, capsys):
    before = folder_hashes(model_dir)
    assert hfscratch_cli.main(["push", str(model_dir), "--repo-id", "my-org/tiny", "--dry-run"]) == 0
    out = capsys.readouterr().out
    listed = {line.split()[0] for line in out.splitlines() if line.startswith("  ") and not line.strip()[0].isdigit()}
    assert listed == NEEDED  # and nothing else: no checkpoint-*/, optimizer, trainer_state, training_args.bin
    for name in NEEDED:
        assert f"  {name} " in out
    assert f"{len(NEEDED)} files" in out
    assert "load check (fresh process, hfscratch not importable): HFScratchForCausalLM with" in out and ": ok" in out
    assert not any(name.startswith("checkpoint-") for name in listed) and any(model_dir.glob("checkpoint-*"))
    # A dry run changes nothing: no README.md, no copied plots, not one byte of any file in the model folder.
    assert folder_hashes(model_dir) == before and not (model_dir / "README.md").exists()
    assert "the model folder is unchanged" in out


def test_load_check_reports_remote_code_loaded_without_hfscratch(model_dir):
    (model_dir / "README.md").write_text("---\nlicense: mit\n---\n# an earlier card\n")
    before = folder_hashes(model_dir)
    result = push(model_dir, "my-org/tiny", dry_run=True, log=lambda *_: None)
    assert folder_hashes(model_dir) == before  # the earlier card too is left as it was
    report = result.load_check
    assert report["hfscratch_imported"] is False
    assert report["module"].startswith("transformers_modules.")  # the repo's own code file, not the installed kit
    assert report["model_class"] == "HFScratchForCausalLM" and report["logits_finite"] and report["new_tokens"] == 4
    assert report["parameters"] == json.loads((model_dir / "run_info.json").read_text())["parameters"]
    assert report["vocab_size"] == report["logits_shape"][-1] == 300


def test_load_check_fails_when_an_uploaded_file_is_broken(model_dir):
    (model_dir / "modeling_hfscratch.py").write_text("raise ImportError('broken on purpose')\n")
    with pytest.raises(RecipeError, match="load check failed: .*broken on purpose"):
        push(model_dir, "my-org/tiny", dry_run=True, log=lambda *_: None)


@pytest.mark.slow
def test_llama_dry_run_loads_as_a_stock_llama(model_dir, capsys):
    result = push(model_dir, "my-org/tiny-llama", dry_run=True, llama=True)
    assert result.load_check["model_class"] == "LlamaForCausalLM"
    assert result.load_check["module"].startswith("transformers.models.llama")
    paths = {f.path for f in result.files}
    assert "modeling_hfscratch.py" not in paths and "model.safetensors" in paths and "tokenizer.json" in paths
    out = capsys.readouterr().out
    assert "LlamaForCausalLM with" in out


def test_upload_to_a_local_hub_sends_the_files_in_one_commit(model_dir, online):
    online.setenv("HF_TOKEN", "hf_test_token")
    with LocalHub() as hub:
        result = push(
            model_dir,
            "my-org/tiny",
            private=True,
            revision="v1",
            endpoint=hub.endpoint,
            load_check=False,
            log=lambda *_: None,
        )
        again = push(model_dir, "my-org/tiny", endpoint=hub.endpoint, load_check=False, log=lambda *_: None)
    state = hub.state
    assert state.repos["my-org/tiny"]["visibility"] == "private" and state.tokens == {"hf_test_token"}
    assert "v1" in state.branches["my-org/tiny"]
    first, second = state.commits
    assert (first.revision, second.revision) == ("v1", "main")  # the second push found the repo (409) and went on
    assert result.commit_oid == first.oid and result.commit_url.endswith(f"/my-org/tiny/commit/{first.oid}")
    assert again.commit_oid == second.oid
    assert first.summary == "Upload hfscratch model with hfscratch push"
    # Exactly the planned files arrived, byte for byte; the weights through the LFS protocol.
    assert set(first.files) == {
        f.path for f in upload_plan(model_dir, json.loads((model_dir / "config.json").read_text()))
    }
    assert set(first.files) == NEEDED
    for path, data in first.files.items():
        assert hashlib.sha256(data).digest() == hashlib.sha256((model_dir / path).read_bytes()).digest(), path
    assert first.lfs_paths == {"model.safetensors"}
    # The card arrived, passed the Hub's metadata check on the way, and loads to the same eval results.
    assert state.validated_readmes and state.validated_readmes[0] == first.files["README.md"].decode()
    card = ModelCard(first.files["README.md"].decode())
    # two lm-eval scores, the domain benchmark, perplexity and bits per byte
    assert len(card.data.eval_results) == 5 and 'from_pretrained("my-org/tiny", trust_remote_code=True)' in card.text


def test_a_rejected_token_is_one_line_naming_the_fix(model_dir, online):
    online.setenv("HF_TOKEN", "hf_wrong")
    with LocalHub() as hub, pytest.raises(RecipeError) as error:
        push(model_dir, "my-org/tiny", endpoint=hub.endpoint, load_check=False, log=lambda *_: None)
    message = str(error.value)
    assert "HTTP 401" in message and "hf auth login" in message and "\n" not in message
    assert not hub.state.commits


def test_push_without_a_token_says_how_to_log_in(model_dir, online, capsys):
    with LocalHub() as hub:
        code = hfscratch_cli.main(["push", str(model_dir), "--repo_id", "my-org/tiny", "--endpoint", hub.endpoint])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("hfscratch push: error: no Hugging Face token found: run `hf auth login` or set HF_TOKEN")
    assert len(err.splitlines()) == 1 and not hub.state.requests  # nothing was sent


def test_offline_mode_is_named_before_anything_is_sent(model_dir, online):
    online.setattr(constants, "HF_HUB_OFFLINE", True)
    online.setenv("HF_TOKEN", "hf_test_token")
    with pytest.raises(RecipeError, match="HF_HUB_OFFLINE is set"):
        push(model_dir, "my-org/tiny", load_check=False, log=lambda *_: None)


@pytest.mark.parametrize(
    ("repo_id", "message"),
    [
        ("tiny", "expected ORG/NAME"),
        ("a/b/c", "expected ORG/NAME"),
        ("my-org/bad..name", "not a valid Hub id"),
        ("my-org/-dash", "not a valid Hub id"),
        ("my org/tiny", "not a valid Hub id"),
    ],
)
def test_invalid_repo_ids_are_refused(model_dir, repo_id, message, capsys):
    assert hfscratch_cli.main(["push", str(model_dir), "--repo_id", repo_id, "--dry_run"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (model_dir / "README.md").exists()  # refused before any work


def test_folders_that_are_not_models_are_refused(model_dir, tmp_path):
    with pytest.raises(RecipeError, match="is not a folder"):
        push(tmp_path / "nowhere", "my-org/tiny", dry_run=True)
    with pytest.raises(RecipeError, match="not a model folder .no config.json"):
        push(tmp_path, "my-org/tiny", dry_run=True)
    (model_dir / "model.safetensors").rename(model_dir / "pytorch_model.bin")
    with pytest.raises(RecipeError, match=r"no safetensors weights \(only pickled weights \(pytorch_model.bin\)"):
        push(model_dir, "my-org/tiny", dry_run=True)
    (model_dir / "pytorch_model.bin").rename(model_dir / "model.safetensors")
    (model_dir / "configuration_hfscratch.py").unlink()
    with pytest.raises(RecipeError, match="auto_map names configuration_hfscratch.py, which is missing"):
        push(model_dir, "my-org/tiny", dry_run=True)


def test_llama_export_is_refused_for_a_non_llama_layout(model_dir, tmp_path):
    gpt2 = tmp_path / "gpt2"
    config = HFScratchConfig.from_preset("gpt2", size="tiny", vocab_size=300)
    HFScratchForCausalLM(config).save_pretrained(gpt2)  # auto_map and code files, as pretrain saves them
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(model_dir / name, gpt2 / name)
    with pytest.raises(RecipeError, match=r"--llama: this model cannot be exported to Llama: norm_type='layernorm'"):
        push(gpt2, "my-org/gpt2", dry_run=True, llama=True)


def test_card_only_writes_the_card_where_asked(model_dir, tmp_path, capsys):
    out = tmp_path / "card"
    assert hfscratch_cli.main(["push", str(model_dir), "--card-only", "--card-dir", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["README.md", "curation_funnel.png", "evaluation_scores.png", "loss_curve.png"]
    shutil.rmtree(model_dir / "evaluation")  # re-rendered without an evaluation: its stale plot goes too
    assert hfscratch_cli.main(["push", str(model_dir), "--card-only", "--card-dir", str(out)]) == 0
    assert not (out / "evaluation_scores.png").exists() and (out / "loss_curve.png").exists()
    assert f"model card: {out / 'README.md'}" in capsys.readouterr().out
    assert not (model_dir / "README.md").exists()


def test_a_yaml_recipe_gives_the_same_keys(model_dir, tmp_path):
    recipe = tmp_path / "push.yaml"
    recipe.write_text(f"model_dir: {model_dir}\ncard_only: true\ncard_dir: {tmp_path / 'card'}\nlicense: mit\n")
    assert hfscratch_cli.main(["push", str(recipe), "--model_name", "renamed"]) == 0
    card = ModelCard((tmp_path / "card" / "README.md").read_text())
    assert card.data.license == "mit" and card.data.eval_results and card.data.model_name == "renamed"


def test_help_names_the_command(capsys):
    assert hfscratch_cli.main(["push", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: hfscratch push MODEL_DIR --repo_id ORG/NAME") and "--dry_run" in out


def test_upload_plan_excludes_training_state(model_dir):
    (model_dir / "runs").mkdir()
    (model_dir / "runs" / "events.out.tfevents").write_bytes(b"x")
    (model_dir / "README.md").write_text("---\nlicense: mit\n---\n")
    paths = {f.path for f in upload_plan(model_dir, json.loads((model_dir / "config.json").read_text()))}
    assert paths == NEEDED - {"curation_funnel.png", "evaluation_scores.png"}  # these come with the rendered card
    assert Path(model_dir / "training_args.bin").is_file() and "training_args.bin" not in paths
