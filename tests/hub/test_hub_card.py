"""The model card: metadata that huggingface_hub parses back, and the run's real numbers in its body."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hub_test_helpers import DUPLICATES, EMAILS, example_scores, write_evaluation
from huggingface_hub import ModelCard, metadata_load

from hfscratch.core.recipes import RecipeError
from hfscratch.hub import gather_lineage, render_card, validate_card, write_model_card

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "model_cards" / "examples" / "tiny-cpu"


def test_card_of_a_real_run_has_model_index_lineage_and_loss_curve(model_dir):
    readme = write_model_card(model_dir, repo_id="my-org/tiny")
    assert readme == model_dir / "README.md"
    card = validate_card(readme.read_text())

    # Metadata, as huggingface_hub reads it back from the file.
    meta = metadata_load(readme)
    assert meta["library_name"] == "transformers" and meta["pipeline_tag"] == "text-generation"
    assert meta["license"] == "apache-2.0" and meta["language"] == ["en"]
    assert "custom_code" in meta["tags"]
    results = {(r.dataset_type, r.metric_type): r for r in card.data.eval_results}
    assert card.data.model_name == "tiny"
    for t in example_scores().tasks.values():
        result = results[(t.dataset_type, t.metric)]
        assert result.metric_value == t.score and result.dataset_split == t.split  # percent, as recorded
        if t.dataset_type != "local":
            assert result.dataset_name == f"{t.task_name} (0-Shot)" and result.dataset_config == t.dataset_name
        assert result.dataset_args["num_few_shot"] == t.num_fewshot
    assert results[("Rowan/hellaswag", "acc_norm")].dataset_args["limit"] == 200  # a subset is marked as one

    # Lineage: numbers from the curate and tokenize stats of the run, through run_info.json's data_dir.
    text = readme.read_text()
    info = json.loads((model_dir / "run_info.json").read_text())
    tok = json.loads(Path(info["data_dir"], "stats.json").read_text())
    cur = json.loads(Path(tok["corpus"], "stats.json").read_text())
    funnel = cur["funnel"]
    assert f"{funnel[0]['docs_in']:,} documents read, {funnel[-1]['docs_out']:,} kept" in text
    assert funnel[0]["docs_in"] == 162 and funnel[-1]["docs_out"] == 162 - DUPLICATES
    assert f"Exact dedup removed {DUPLICATES}" in text
    assert f"email {EMAILS}" in text and cur["pii_redacted"]["email"] == EMAILS
    assert f"{tok['train']['tokens']:,} training tokens" in text
    assert f"{tok['validation']['tokens']:,} validation tokens" in text
    assert f"| grammar | jsonl | 162 | {tok['sources']['grammar']['documents']} |" in text

    # Training and architecture from the model folder.
    state = json.loads((model_dir / "trainer_state.json").read_text())
    assert f"| steps | {state['global_step']} (" in text
    assert f"| tokens seen | {info['train_tokens']:,} |" in text
    assert f"{info['parameters']:,} (" in text  # counted on the meta device == what training reported
    assert "multi-head (MHA): 2 query heads, 2 key/value heads of 32 dimensions" in text
    run = "2026-12-01, lm-eval 0.4.13"
    assert f"| ARC-Easy | acc | 27.31 ± 0.91 | 25.0 | 0 | 2,376 | test | {run} |" in text
    assert f"| HellaSwag | acc_norm | 25.89 ± 0.44 | 25.0 | 0 | 200 (limited) | validation | {run} |" in text
    assert f"| Domain cloze | acc_mutual_info | 45.47 ± 4.90 | 25.0 | 0 | 101 | held-out | {run} |" in text
    assert (
        "| tok | 123.40 | 2.3100 | 4.8154 | 5,077 | 12 | 64 / 32 | 2026-12-01 |" in text and "/local/path" not in text
    )
    assert "Domain cloze: acc 26.73, acc_norm 27.72, acc_mutual_info 45.47" in text
    assert "bleu_max 0.15" in text and "def get_in_in" not in text
    assert "Average: 26.60 (chance 25.00) over arc_easy, hellaswag (zero-shot)." in text

    # Images: the loss curve and the funnel plot, referenced and beside the README.
    assert "![Training and validation loss](loss_curve.png)" in text
    assert "](curation_funnel.png)" in text and "](evaluation_scores.png)" in text
    assert (model_dir / "curation_funnel.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert 'from_pretrained("my-org/tiny", trust_remote_code=True)' in text
    assert "CPU (" in text and "not estimated" in text  # a CPU run: device-hours only, no invented power figure


def test_validation_catches_what_the_hub_would_reject(model_dir):
    card = render_card(gather_lineage(model_dir))
    text = str(card)
    validate_card(card)  # the round trip of the real card holds
    header, body = text.split("\n---\n", 1)
    broken_index = header.replace("type: acc_norm", "typo: acc_norm")  # a metric without its type
    with pytest.raises(RecipeError, match="model card metadata is invalid"):
        validate_card(broken_index + "\n---\n" + body)
    with pytest.raises(RecipeError, match="pipeline_tag"):
        validate_card(text.replace("pipeline_tag: text-generation", "pipeline_tag: fill-mask"))
    with pytest.raises(RecipeError, match="invalid"):
        validate_card("---\n- just\n- a list\n---\n# card\n")


@pytest.mark.parametrize("artifact", ["run_info", "tokenize", "curate"])
def test_a_renamed_key_in_a_step_artifact_is_an_error_not_a_gap(model_dir, tmp_path, artifact):
    """Each step's artifact is read through its dataclass: a key renamed by a later version (or by hand) stops
    the card with one line naming the file and the key, instead of a card that says "not recorded"."""
    info = json.loads((model_dir / "run_info.json").read_text())
    tokenize = json.loads(Path(info["data_dir"], "stats.json").read_text())
    curate = json.loads(Path(tokenize["corpus"], "stats.json").read_text())
    # Copies of the data's artifacts, so the shared fixture stays as it is.
    (tmp_path / "data").mkdir()
    (tmp_path / "corpus").mkdir()
    files = {
        "run_info": (model_dir / "run_info.json", info),
        "tokenize": (tmp_path / "data" / "stats.json", tokenize | {"corpus": str(tmp_path / "corpus")}),
        "curate": (tmp_path / "corpus" / "stats.json", curate),
    }
    for name, (path, data) in files.items():
        if name == artifact:
            key = next(k for k in data if k != "schema_version")
            data = {(f"{k}_renamed" if k == key else k): v for k, v in data.items()}
        path.write_text(json.dumps(data))
    path = files[artifact][0]
    with pytest.raises(RecipeError, match=rf"{path}: unknown key '{key}_renamed'"):
        gather_lineage(model_dir, data_dir=tmp_path / "data")


def test_missing_links_are_said_not_recorded(model_dir, tmp_path):
    """A model trained elsewhere (no run_info.json), never evaluated: the card still renders and says so."""
    info = json.loads((model_dir / "run_info.json").read_text())
    data_dir = Path(info["data_dir"])
    (model_dir / "run_info.json").unlink()
    (model_dir / "evaluation" / "scores.json").unlink()
    lineage = gather_lineage(model_dir)
    assert any("run_info.json not found" in line for line in lineage.missing)
    assert any("no data_dir" in line for line in lineage.missing)
    card = render_card(lineage)
    validate_card(card)
    assert "model-index" not in card.data.to_dict() and "model_name" not in card.data.to_dict()
    assert "The training data's lineage is not recorded" in card.text
    assert "| hardware | not recorded |" in card.text
    assert "No evaluation was recorded" in card.text

    # --data_dir fills the gap; a tokenize output whose corpus was a plain file has tokens but no funnel.
    text = render_card(gather_lineage(model_dir, data_dir=data_dir)).text
    assert "**Curation funnel**" in text
    stats = json.loads((data_dir / "stats.json").read_text())
    other = tmp_path / "tok-from-a-text-file"
    other.mkdir()
    (other / "stats.json").write_text(json.dumps(stats | {"corpus": str(tmp_path / "corpus.txt")}))
    lineage = gather_lineage(model_dir, data_dir=other)
    text = render_card(lineage).text
    assert f"{stats['train']['tokens']:,} training tokens" in text
    assert "The curation funnel, de-duplication and PII counts are not recorded" in text
    assert any("no curation stats.json" in line for line in lineage.missing)


def test_energy_follows_plans_model_for_a_gpu_and_a_stated_cpu_power(model_dir):
    info = json.loads((model_dir / "run_info.json").read_text())
    info.update(device="NVIDIA H100 80GB HBM3", device_hours=10.0, num_devices=1)
    (model_dir / "run_info.json").write_text(json.dumps(info))
    text = render_card(gather_lineage(model_dir)).text
    # plan: H100 TDP 700 W, PUE 1.1, $100/MWh -> 10 h x 700 W x 1.1 = 7.7 kWh, $0.77.
    assert "7.7 kWh = 10 device-hours x 700 W" in text and "PUE 1.1" in text and "$0.77 at $100/MWh" in text
    info.update(device="CPU (Intel Xeon, 2 threads)")
    (model_dir / "run_info.json").write_text(json.dumps(info))
    text = render_card(gather_lineage(model_dir), device_watts=50).text
    assert "0.55 kWh = 10 device-hours x 50 W (the board power given to `push --device_watts`)" in text


def test_recorded_training_arguments_fill_the_training_table(model_dir):
    info = json.loads((model_dir / "run_info.json").read_text())
    info["training_args"] = {
        "learning_rate": 3e-3,
        "lr_scheduler_type": "cosine_with_min_lr",
        "warmup_steps": 2,
        "weight_decay": 0.1,
        "adam_beta1": 0.9,
        "adam_beta2": 0.95,
        "max_grad_norm": 1.0,
        "optim": "adamw_torch",
        "bf16": True,
        "seed": 1,
    }
    (model_dir / "run_info.json").write_text(json.dumps(info))
    text = render_card(gather_lineage(model_dir)).text
    assert "| optimizer | adamw_torch (betas 0.9, 0.95), weight decay 0.1, clipping 1.0 |" in text
    assert "| schedule | cosine_with_min_lr, peak learning rate 0.003, warmup 2, last logged" in text
    assert "| precision | bf16 |" in text and "| seed | 1 |" in text


def test_bad_files_are_one_line_errors(model_dir, tmp_path):
    (model_dir / "trainer_state.json").write_text("{not json")
    with pytest.raises(RecipeError, match=r"trainer_state.json: not valid JSON"):
        gather_lineage(model_dir)
    with pytest.raises(RecipeError, match="not a model folder"):
        gather_lineage(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(RecipeError, match="model_type is 'gpt2'; the card describes hfscratch models"):
        gather_lineage(tmp_path)
    (model_dir / "trainer_state.json").write_text("{}")
    scores = json.loads((model_dir / "evaluation" / "scores.json").read_text())
    del scores["tasks"]["hellaswag"]["metric"]
    (model_dir / "evaluation" / "scores.json").write_text(json.dumps(scores))
    with pytest.raises(RecipeError, match=r"scores.json: missing key 'tasks.hellaswag.metric'"):
        render_card(gather_lineage(model_dir))
    (model_dir / "evaluation" / "scores.json").write_text(json.dumps({"model": "tiny", "results": []}))
    with pytest.raises(RecipeError, match=r"scores.json: schema_version None, this hfscratch reads 2"):
        render_card(gather_lineage(model_dir))


def test_a_card_of_domain_and_perplexity_only_is_one_truthful_evaluation_section(model_dir):
    """The quickstart's offline evaluation (no lm-eval benchmark): the card shows it, and says nothing else."""
    scores = example_scores()
    scores.tasks = {"hfscratch_domain": scores.tasks["hfscratch_domain"]}
    scores.averages = {}
    write_evaluation(model_dir / "evaluation", scores)
    card = render_card(gather_lineage(model_dir))
    validate_card(card)
    text = str(card)
    assert "No evaluation was recorded" not in text and "| Domain cloze | acc_mutual_info | 45.47" in text
    assert "and evaluated with lm-eval" in text and "](evaluation_scores.png)" in text


def test_one_unit_every_model_index_value_is_the_number_in_the_tables(model_dir):
    """Percent throughout: each value of the model-index is in the card's tables, digit for digit, and no
    score appears as a fraction beside it."""
    card = render_card(gather_lineage(model_dir))
    body = card.text
    for result in card.data.eval_results:
        digits = 4 if result.metric_type == "bits_per_byte" else 2
        assert f"| {result.metric_value:.{digits}f}" in body, (result.dataset_name, result.metric_type)
    domain = example_scores().tasks["hfscratch_domain"]
    for value in domain.metrics.values():
        assert f"{value:.2f}" in body and f"{value / 100:.4f}" not in body


def test_example_card_of_the_tiny_cpu_recipe_is_valid_and_complete():
    readme = EXAMPLE / "README.md"
    card = validate_card(ModelCard(readme.read_text()))
    assert card.data.library_name == "transformers" and card.data.pipeline_tag == "text-generation"
    text = readme.read_text()
    for image in ("loss_curve.png", "curation_funnel.png"):
        assert f"]({image})" in text and (EXAMPLE / image).read_bytes()[:4] == b"\x89PNG"
    assert "**Curation funnel**" in text and "PII redacted" in text and "| steps |" in text
