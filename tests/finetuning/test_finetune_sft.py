"""`hfscratch finetune`: LoRA on a tiny pretrained model, response-only loss, adapter reload, merge, bad input."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest
import torch
from finetuning_helpers import CLI, REPO, grammar_task, single_thread, subprocess_env, write_jsonl

from hfscratch.core.recipes import RecipeError
from hfscratch.finetuning.cli import main as finetune_main
from hfscratch.finetuning.data import IGNORE_INDEX, read_instruction_file, tokenize_conversation
from hfscratch.models.loading import check_adapter_base, load_model

LORA_R = 8


@pytest.fixture(scope="module")
def instruction_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("instructions")
    rng = random.Random(1)
    train = write_jsonl(folder / "train.jsonl", [grammar_task(rng) for _ in range(192)])
    # the validation set mixes both record shapes: chat records go through the same template
    validation = [grammar_task(rng) for _ in range(48)]
    validation[:8] = [
        {
            "messages": [
                {"role": "user", "content": f"{r['instruction']}\n\n{r['input']}"},
                {"role": "assistant", "content": r["output"]},
            ]
        }
        for r in validation[:8]
    ]
    return train, write_jsonl(folder / "validation.jsonl", validation)


@pytest.fixture(scope="module")
def finetuned(tiny_base_model: Path, instruction_files, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One `hfscratch finetune ... --merge` run (in-process, through the step's main) and its results."""
    out = tmp_path_factory.mktemp("finetune") / "adapter"
    train, validation = instruction_files
    argv = [
        "--model_name_or_path", str(tiny_base_model), "--train_file", str(train), "--validation_file", str(validation),
        "--output_dir", str(out), "--lora_r", str(LORA_R), "--lora_alpha", "16", "--learning_rate", "3e-3",
        "--num_train_epochs", "8", "--per_device_train_batch_size", "16", "--max_seq_length", "96",
        "--logging_steps", "4", "--use_cpu", "true", "--disable_tqdm", "true", "--seed", "0", "--merge",
    ]  # fmt: skip
    with single_thread():
        assert finetune_main(argv) == 0
    return {"out": out, "results": json.loads((out / "finetune_results.json").read_text())}


@pytest.mark.slow
def test_lora_lowers_response_only_eval_loss(finetuned: dict) -> None:
    results = finetuned["results"]
    print(f"response-only eval loss {results['eval_loss_before']:.4f} -> {results['eval_loss_after']:.4f}")
    assert results["eval_loss_after"] < 0.5 * results["eval_loss_before"]
    assert results["validation_records"] == 48 and results["steps"] == 96  # 192 / 16 x 8 epochs
    assert (finetuned["out"] / "loss_curve.png").stat().st_size > 1000


@pytest.mark.slow
def test_trainable_share_is_the_lora_matrices(finetuned: dict, tiny_base_model: Path) -> None:
    """r x (in + out) per adapted projection: all 7 in each of 2 layers, nothing else trainable."""
    base = load_model(tiny_base_model, "float32")
    expected = sum(
        LORA_R * (module.in_features + module.out_features)
        for name, module in base.named_modules()
        if isinstance(module, torch.nn.Linear) and name.rsplit(".", 1)[-1].endswith("_proj")
    )
    results = finetuned["results"]
    assert results["trainable_params"] == expected
    assert results["all_params"] == base.num_parameters() + expected
    assert results["trainable_percent"] == pytest.approx(100 * expected / results["all_params"])


@pytest.mark.slow
def test_adapter_folder_reloads_and_merged_logits_match(finetuned: dict, tiny_base_model: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = finetuned["out"]
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "chat_template.jinja"} <= {
        p.name for p in out.iterdir()
    }
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
    assert (adapted_logits - merged_logits).abs().max().item() <= 1e-5
    assert (adapted_logits - base_logits).abs().max().item() > 1e-2  # the adapter changes the model
    # the fine-tuned model answers in the trained format, a short reply closed by EOS, and gets this one right
    generated = merged.generate(ids, max_new_tokens=8, do_sample=False, eos_token_id=tokenizer.eos_token_id)
    answer = generated[0, ids.shape[1] :]
    assert answer[-1].item() == tokenizer.eos_token_id and len(answer) < 8
    assert tokenizer.decode(answer, skip_special_tokens=True).strip() == "6"


@pytest.mark.slow
def test_merged_folder_loads_where_hfscratch_is_not_importable(finetuned: dict) -> None:
    """The merged folder is a plain Hub-style model folder: config with auto_map, both code files, tokenizer."""
    merged = finetuned["out"] / "merged"
    assert {"config.json", "model.safetensors", "configuration_hfscratch.py", "modeling_hfscratch.py"} <= {
        p.name for p in merged.iterdir()
    }
    script = (
        "import sys; sys.modules['hfscratch'] = None\n"  # any import of the package now fails
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n"
        f"m = AutoModelForCausalLM.from_pretrained({str(merged)!r}, trust_remote_code=True)\n"
        f"t = AutoTokenizer.from_pretrained({str(merged)!r})\n"
        "print(type(m).__module__, type(m).__name__, bool(t.chat_template))\n"
    )
    result = subprocess.run(
        [CLI[0], "-c", script], cwd="/", env=subprocess_env(), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "modeling_hfscratch HFScratchForCausalLM True" in result.stdout


def test_labels_cover_only_the_response(tiny_base_model: Path) -> None:
    from transformers import AutoTokenizer

    from hfscratch.prompting.templates import CHAT_TEMPLATE

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_base_model))
    tokenizer.chat_template = CHAT_TEMPLATE
    messages = [{"role": "user", "content": "Name the verb."}, {"role": "assistant", "content": "sees"}]
    row = tokenize_conversation(tokenizer, messages, max_length=512)
    positions = [i for i, label in enumerate(row["labels"]) if label != IGNORE_INDEX]
    assert positions == list(range(positions[0], positions[-1] + 1))  # one contiguous run: the reply
    assert tokenizer.decode([row["input_ids"][i] for i in positions]) == "sees" + tokenizer.eos_token
    prompt = tokenizer.decode(row["input_ids"][: positions[0]])
    assert prompt == tokenizer.bos_token + "### User:\nName the verb.\n\n### Assistant:\n"


# -- bad input ------------------------------------------------------------------------------------------


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


@pytest.mark.slow
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


def test_qlora_without_gpu_is_a_clear_error(tiny_base_model: Path, instruction_files, tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present: 4-bit may run here")
    argv = ["--model_name_or_path", str(tiny_base_model), "--train_file", str(instruction_files[0]),
            "--output_dir", str(tmp_path), "--load_in_4bit", "true"]  # fmt: skip
    with pytest.raises(RecipeError, match="load_in_4bit: QLoRA needs .*a CUDA GPU"):
        finetune_main(argv)


@pytest.mark.slow
def test_adapter_for_another_base_model_is_refused(finetuned: dict, tiny_base_model: Path, tmp_path: Path) -> None:
    from hfscratch import HFScratchConfig, HFScratchForCausalLM

    base_config = HFScratchConfig.from_pretrained(str(tiny_base_model))
    wider = HFScratchForCausalLM(HFScratchConfig.from_dict({**base_config.to_dict(), "hidden_size": 96}))
    wider.save_pretrained(tmp_path / "wider")
    with pytest.raises(RecipeError, match=r"trained on another base model .*hidden_size=64 vs 96"):
        check_adapter_base(tmp_path / "wider", finetuned["out"])
    # same architecture, other weights: the configurations agree, the fingerprints do not
    HFScratchForCausalLM(base_config).save_pretrained(tmp_path / "twin")
    with pytest.raises(RecipeError, match="same architecture but different weights"):
        check_adapter_base(tmp_path / "twin", finetuned["out"])
    check_adapter_base(tiny_base_model, finetuned["out"])  # its own base passes
