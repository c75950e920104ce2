"""`hfscratch finetune --method full|lora`: TRL's SFTTrainer on a tiny pretrained model, packed, assistant-only
loss; the output folders reload (adapter, merge, plain model folder); bad input and wrong modes are refused."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch
from finetuning_helpers import CLI, REPO, run_finetune_cli, subprocess_env

from hfscratch.core.recipes import RecipeError
from hfscratch.finetuning.cli import main as finetune_main
from hfscratch.finetuning.data import read_instruction_file
from hfscratch.models.loading import check_adapter_base, load_model

LORA_R = 8
MINUTE = 60.0  # the training of each CI run (the Trainer's clock; wall time also counts the machine's load)


@pytest.fixture(scope="module")
def lora_sft(tiny_base_model: Path, instruction_files, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """`hfscratch finetune --method lora ... --merge` on the grammar tasks."""
    train, validation = instruction_files
    return run_finetune_cli(
        tmp_path_factory.mktemp("finetune") / "adapter", "--method", "lora", "--model_name_or_path",
        str(tiny_base_model), "--train_file", str(train), "--validation_file", str(validation), "--lora_r",
        str(LORA_R), "--lora_alpha", "16", "--learning_rate", "3e-3", "--num_train_epochs", "6",
        "--per_device_train_batch_size", "4", "--max_length", "256", "--merge",
    )  # fmt: skip


def test_full_sft_lowers_assistant_only_eval_loss(full_sft: dict) -> None:
    results = full_sft["results"]
    print(f"full SFT eval loss {results['eval_loss_before']:.4f} -> {results['eval_loss_after']:.4f}, "
          f"{full_sft['seconds']:.0f} s")  # fmt: skip
    assert results["method"] == "full" and results["packing"] is True
    assert results["eval_loss_after"] < 0.4 * results["eval_loss_before"]
    assert results["trainable_percent"] == 100.0 and results["lora"] is None
    assert results["validation_records"] == 48 and results["train_records"] == 192
    assert results["train_seconds"] < MINUTE


def test_lora_sft_lowers_assistant_only_eval_loss(lora_sft: dict) -> None:
    results = lora_sft["results"]
    print(f"LoRA SFT eval loss {results['eval_loss_before']:.4f} -> {results['eval_loss_after']:.4f}, "
          f"{lora_sft['seconds']:.0f} s")  # fmt: skip
    assert results["method"] == "lora" and results["packing"] is True
    assert results["eval_loss_after"] < 0.5 * results["eval_loss_before"]
    assert (lora_sft["out"] / "loss_curve.png").stat().st_size > 1000
    assert results["train_seconds"] < MINUTE


def test_packing_puts_several_examples_in_a_block(lora_sft: dict) -> None:
    """The run trained on packed blocks: fewer steps than one example a row would take."""
    results = lora_sft["results"]
    unpacked_steps = 6 * 192 // 4
    assert results["steps"] < unpacked_steps / 2, results["steps"]


def test_trainable_share_is_the_lora_matrices(lora_sft: dict, tiny_base_model: Path) -> None:
    """r x (in + out) per adapted projection: all 7 in each of 2 layers, nothing else trainable."""
    base = load_model(tiny_base_model, "float32")
    expected = sum(
        LORA_R * (module.in_features + module.out_features)
        for name, module in base.named_modules()
        if isinstance(module, torch.nn.Linear) and name.rsplit(".", 1)[-1].endswith("_proj")
    )
    results = lora_sft["results"]
    assert results["trainable_params"] == expected
    assert results["all_params"] == base.num_parameters() + expected
    assert results["trainable_percent"] == pytest.approx(100 * expected / results["all_params"])


def test_adapter_folder_reloads_and_merged_logits_match(lora_sft: dict, tiny_base_model: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = lora_sft["out"]
    contract = {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "chat_template.jinja",
                "hfscratch_base.json", "finetune_results.json", "loss_curve.png"}  # fmt: skip
    assert contract <= {p.name for p in out.iterdir()}  # what generate --adapter and the hub read
    adapted = PeftModel.from_pretrained(load_model(tiny_base_model, "float32"), str(out)).eval()
    merged = AutoModelForCausalLM.from_pretrained(str(out / "merged"), trust_remote_code=True).eval()
    base = load_model(tiny_base_model, "float32").eval()
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Count the words in the sentence.\n\nThe old cat sees the dog."}],
        add_generation_prompt=True, return_tensors="pt", return_dict=True,
    )["input_ids"]  # fmt: skip
    with torch.no_grad():
        adapted_logits, merged_logits, base_logits = (m(input_ids=ids).logits for m in (adapted, merged, base))
    assert (adapted_logits - merged_logits).abs().max().item() <= 1e-4  # fp32 rounding of the folded update
    assert (adapted_logits - base_logits).abs().max().item() > 1e-2  # the adapter changes the model
    # the fine-tuned model answers in the trained format, a short reply closed by EOS, and gets this one right
    generated = merged.generate(ids, max_new_tokens=8, do_sample=False, eos_token_id=tokenizer.eos_token_id)
    answer = generated[0, ids.shape[1] :]
    assert answer[-1].item() == tokenizer.eos_token_id and len(answer) < 8
    assert tokenizer.decode(answer, skip_special_tokens=True).strip() == "6"


def load_where_hfscratch_is_not_importable(folder: Path) -> str:
    script = (
        "import sys; sys.modules['hfscratch'] = None\n"  # any import of the package now fails
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n"
        f"m = AutoModelForCausalLM.from_pretrained({str(folder)!r}, trust_remote_code=True)\n"
        f"t = AutoTokenizer.from_pretrained({str(folder)!r})\n"
        "print(type(m).__module__, type(m).__name__, bool(t.chat_template))\n"
    )
    result = subprocess.run(
        [CLI[0], "-c", script], cwd="/", env=subprocess_env(), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow
def test_merged_and_full_folders_load_where_hfscratch_is_not_importable(lora_sft: dict, full_sft: dict) -> None:
    """Both are plain Hub-style model folders: config with auto_map, both code files, tokenizer with its template."""
    for folder in (lora_sft["out"] / "merged", full_sft["out"]):
        assert {"config.json", "model.safetensors", "configuration_hfscratch.py", "modeling_hfscratch.py",
                "chat_template.jinja"} <= {p.name for p in folder.iterdir()}  # fmt: skip
        assert "modeling_hfscratch HFScratchForCausalLM True" in load_where_hfscratch_is_not_importable(folder)


def test_full_sft_folder_is_the_trained_model(full_sft: dict, tiny_base_model: Path) -> None:
    """No adapter: the folder's weights are the fine-tuned ones, and the tokenizer carries the chat template."""
    out = full_sft["out"]
    assert not (out / "adapter_config.json").exists() and not (out / "hfscratch_base.json").exists()
    tuned, base = load_model(out, "float32"), load_model(tiny_base_model, "float32")
    weight = "model.layers.0.self_attn.q_proj.weight"
    assert (tuned.state_dict()[weight] - base.state_dict()[weight]).abs().max().item() > 1e-3
    assert "### Assistant:" in (out / "chat_template.jinja").read_text()


def test_assistant_only_labels_cover_the_reply_and_its_eos(tiny_base_model: Path) -> None:
    """TRL's tokenization with our template: the labels are the reply and EOS, nothing of the prompt."""
    from datasets import Dataset
    from trl import SFTTrainer

    from hfscratch.finetuning.arguments import FinetuneSFTConfig
    from hfscratch.finetuning.train import resolve_chat_template
    from hfscratch.models.loading import load_tokenizer

    tokenizer = load_tokenizer(tiny_base_model)
    tokenizer.chat_template = resolve_chat_template(tokenizer, None)
    messages = [{"role": "user", "content": "Name the verb."}, {"role": "assistant", "content": "sees"}]
    args = FinetuneSFTConfig(output_dir="unused", use_cpu=True, packing=False, eval_strategy="no")
    dataset = Dataset.from_list([{"messages": messages}])
    model = load_model(tiny_base_model, "float32")
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
    row = trainer.train_dataset[0]
    positions = [i for i, label in enumerate(row["labels"]) if label != -100]
    assert positions == list(range(positions[0], positions[-1] + 1))  # one contiguous run: the reply
    assert tokenizer.decode([row["input_ids"][i] for i in positions]) == "sees" + tokenizer.eos_token
    prompt = tokenizer.decode(row["input_ids"][: positions[0]])
    assert prompt == tokenizer.bos_token + "### User:\nName the verb.\n\n### Assistant:\n"


# -- modes asked for, and bad input ------------------------------------------------------------------------


def test_missing_field_is_named_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"instruction": "a", "output": "b"}\n\n{"instruction": "c", "input": "d"}\n'  # line 3 lacks output
    )
    with pytest.raises(RecipeError, match=rf"^{path}:3: missing field 'output'"):
        read_instruction_file(path)
    path.write_text('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant"}]}\n')
    with pytest.raises(RecipeError, match=rf"^{path}:1: messages\[1\] is missing field 'content'"):
        read_instruction_file(path)


def test_cli_reports_bad_instruction_file_and_exits_2(tiny_base_model: Path, tmp_path: Path) -> None:
    bad = tmp_path / "train.jsonl"
    bad.write_text('{"instruction": "a", "output": "b"}\n{"output": "no instruction"}\n')
    result = subprocess.run(
        [*CLI, "finetune", "--model_name_or_path", str(tiny_base_model), "--train_file", str(bad),
         "--output_dir", str(tmp_path / "out"), "--use_cpu", "true"],
        cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2
    assert f"hfscratch finetune: error: {bad}:2: missing field 'instruction'" in result.stderr
    assert not (tmp_path / "out" / "adapter_config.json").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--method", "qlora"], r"--method: invalid choice: 'qlora' \(choose from 'full', 'lora', 'dpo'\)"),
        (["--method", "full", "--lora_r", "16"], r"^lora_r: applies to an adapter \(--method lora or dpo\)"),
        (["--method", "full", "--merge", "true"], r"^merge: applies to an adapter"),
        (["--method", "dpo", "--packing", "true"], r"unknown option '--packing'"),  # DPO's keys are DPOConfig's
    ],
)
def test_bad_method_and_keys_of_another_method_are_one_line_errors(
    argv: list[str], message: str, tiny_base_model: Path, instruction_files, tmp_path: Path
) -> None:
    with pytest.raises(RecipeError, match=message):
        finetune_main(["--model_name_or_path", str(tiny_base_model), "--train_file", str(instruction_files[0]),
                       "--output_dir", str(tmp_path), "--use_cpu", "true", *argv])  # fmt: skip


def test_method_key_of_a_recipe_picks_the_trainer_keys(tmp_path: Path) -> None:
    from hfscratch.finetuning.cli import requested_method

    recipe = tmp_path / "r.yaml"
    recipe.write_text("method: dpo\nbeta: 0.2\n")
    assert requested_method([str(recipe)]) == "dpo"
    assert requested_method([str(recipe), "--method", "full"]) == "full"  # the command line wins, as in parsing
    assert requested_method(["tiny-cpu-sft"]) == "full" and requested_method([]) == "lora"


def test_qlora_without_gpu_is_a_clear_error(tiny_base_model: Path, instruction_files, tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present: 4-bit may run here")
    argv = ["--model_name_or_path", str(tiny_base_model), "--train_file", str(instruction_files[0]),
            "--output_dir", str(tmp_path), "--load_in_4bit", "true"]  # fmt: skip
    with pytest.raises(RecipeError, match="^load_in_4bit: QLoRA needs .*a CUDA GPU"):
        finetune_main(argv)
    assert not any(tmp_path.iterdir())  # nothing written


# -- the loss TRL trains with is the model's own (soft-cap, z-loss) ---------------------------------------------


def base_with(tiny_base_model: Path, folder: Path, **fields) -> Path:
    """The tiny base's weights under a configuration with `fields` changed (logit_softcap, z_loss_weight)."""
    from hfscratch import HFScratchConfig, HFScratchForCausalLM
    from hfscratch.models.loading import load_tokenizer

    config = HFScratchConfig.from_pretrained(str(tiny_base_model))
    model = HFScratchForCausalLM(HFScratchConfig.from_dict({**config.to_dict(), **fields}))
    model.load_state_dict(load_model(tiny_base_model, "float32").state_dict())
    model.save_pretrained(folder)
    load_tokenizer(tiny_base_model).save_pretrained(folder)
    return folder


def trainer_loss_and_model_loss(model_dir: Path, tmp_path: Path) -> tuple[float, float, object, dict]:
    """The SFT trainer's held-out loss (what finetune_results.json reports) and the model's own loss, its forward
    with the labels, on the same single batch of 12 held-out grammar records; also the model and the batch."""
    import random

    from datasets import Dataset
    from finetuning_helpers import grammar_task

    from hfscratch.finetuning.arguments import FinetuneSFTConfig
    from hfscratch.finetuning.data import messages_from_record
    from hfscratch.finetuning.train import build_trainer, resolve_chat_template
    from hfscratch.models.loading import load_tokenizer

    tokenizer = load_tokenizer(model_dir)
    tokenizer.chat_template = resolve_chat_template(tokenizer, None)
    rng = random.Random(5)
    records = Dataset.from_list([{"messages": messages_from_record(grammar_task(rng))} for _ in range(12)])
    args = FinetuneSFTConfig(output_dir=str(tmp_path / "unused"), use_cpu=True, per_device_eval_batch_size=16,
                             max_length=256, disable_tqdm=True)  # fmt: skip
    model = load_model(model_dir, "float32")
    trainer = build_trainer("full", model, tokenizer, args, records, records, None)
    batches = list(trainer.get_eval_dataloader())
    assert len(batches) == 1
    trainer_loss = trainer.evaluate()["eval_loss"]
    batch = {k: v for k, v in batches[0].items()}
    with torch.no_grad():
        own = model(**batch).loss.item()  # the patched forward without fused_lm_head is the model's own
    return trainer_loss, own, model, batch


def test_sft_loss_is_the_soft_capped_models_own(tiny_base_model: Path, tmp_path: Path) -> None:
    """The cap, exposed as final_logit_softcapping, is the one TRL's fused LM head applies: a tight cap (3, where
    the logits reach about 10) changes the loss, and TRL's loss equals the model's own."""
    capped = base_with(tiny_base_model, tmp_path / "capped", logit_softcap=3.0)
    trainer_loss, own, model, batch = trainer_loss_and_model_loss(capped, tmp_path)
    assert model.config.final_logit_softcapping == 3.0
    assert trainer_loss == pytest.approx(own, rel=1e-5)
    model.config.logit_softcap = None
    with torch.no_grad():
        uncapped = model(**batch).loss.item()
    assert abs(uncapped - own) > 0.05, (uncapped, own)  # so the equality above says the cap was applied


def test_sft_loss_includes_the_models_z_loss(tiny_base_model: Path, tmp_path: Path) -> None:
    """TRL's fused loss has no z-loss term: a base trained with z-loss fine-tunes on its own loss instead."""
    z_base = base_with(tiny_base_model, tmp_path / "z", z_loss_weight=1e-2)
    trainer_loss, own, model, batch = trainer_loss_and_model_loss(z_base, tmp_path)
    assert trainer_loss == pytest.approx(own, rel=1e-5)
    model.config.z_loss_weight = 0.0
    with torch.no_grad():
        cross_entropy = model(**batch).loss.item()
    assert own - cross_entropy > 0.1, (own, cross_entropy)  # 0.01 * logsumexp^2, logsumexp about log(400)


def test_z_loss_base_is_refused_for_dpo(tiny_base_model: Path, tmp_path: Path) -> None:
    from finetuning_helpers import write_jsonl
    from transformers import LlamaConfig

    from hfscratch.finetuning.train import check_model_for_trl

    z_base = base_with(tiny_base_model, tmp_path / "z", z_loss_weight=1e-4)
    pairs = write_jsonl(tmp_path / "pairs.jsonl", [{"prompt": "q", "chosen": "a", "rejected": "b"}] * 4)
    argv = ["--method", "dpo", "--model_name_or_path", str(z_base), "--train_file", str(pairs),
            "--output_dir", str(tmp_path / "out"), "--use_cpu", "true"]  # fmt: skip
    with pytest.raises(RecipeError, match=r"^z_loss_weight: the base model trains with z-loss \(0.0001\), which DPO"):
        finetune_main(argv)
    assert not (tmp_path / "out").exists()  # refused before anything is written
    with pytest.raises(RecipeError, match=r"^z_loss_weight: the base model \(llama\) has no z-loss"):
        check_model_for_trl(LlamaConfig(), "full", 1e-4, None)  # a weight for a model without z-loss is refused


def test_rerun_on_a_finished_fine_tune_changes_nothing(full_sft: dict, tiny_base_model: Path) -> None:
    out = full_sft["out"]
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    with pytest.raises(RecipeError, match=r"holds a finished fine-tune .*--overwrite_output_dir true"):
        finetune_main(["--method", "full", "--model_name_or_path", str(tiny_base_model), "--output_dir", str(out),
                       "--use_cpu", "true"])  # fmt: skip
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    assert json.loads((out / "finetune_results.json").read_text())["schema_version"] == 2


def test_adapter_for_another_base_model_is_refused(lora_sft: dict, tiny_base_model: Path, tmp_path: Path) -> None:
    from hfscratch import HFScratchConfig, HFScratchForCausalLM

    base_config = HFScratchConfig.from_pretrained(str(tiny_base_model))
    wider = HFScratchForCausalLM(HFScratchConfig.from_dict({**base_config.to_dict(), "hidden_size": 96}))
    wider.save_pretrained(tmp_path / "wider")
    with pytest.raises(RecipeError, match=r"trained on another base model .*hidden_size=64 vs 96"):
        check_adapter_base(tmp_path / "wider", lora_sft["out"])
    # same architecture, other weights: the configurations agree, the fingerprints do not
    HFScratchForCausalLM(base_config).save_pretrained(tmp_path / "twin")
    with pytest.raises(RecipeError, match="same architecture but different weights"):
        check_adapter_base(tmp_path / "twin", lora_sft["out"])
    check_adapter_base(tiny_base_model, lora_sft["out"])  # its own base passes
