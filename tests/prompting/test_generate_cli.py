"""`hfscratch generate`: streaming from a tiny trained model, sampling options, prompt files and bad input."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest
from finetuning_helpers import CLI, REPO, single_thread, subprocess_env

from hfscratch.core.recipes import RecipeError
from hfscratch.prompting.cli import main as generate_main
from hfscratch.prompting.cli import parse_args
from hfscratch.prompting.generation import SamplingOptions, generate_text, load_model_and_tokenizer

GREEDY = SamplingOptions(max_new_tokens=12, temperature=0.0)


def greedy_continuation(model_dir: Path, prompt: str) -> str:
    model, tokenizer = load_model_and_tokenizer(model_dir, device="cpu")
    return generate_text(model, tokenizer, tokenizer.eos_token + prompt, GREEDY)


@pytest.mark.slow
def test_cli_streams_the_greedy_continuation(tiny_base_model: Path) -> None:
    """A fresh `hfscratch generate MODEL_DIR --prompt ...` process prints exactly what greedy decoding gives."""
    prompt = "The old cat"
    result = subprocess.run(
        [*CLI, "generate", str(tiny_base_model), "--prompt", prompt, "--temperature", "0", "--max-new-tokens", "12"],
        cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    expected = greedy_continuation(tiny_base_model, prompt)
    print(f"{prompt!r} -> {expected!r}")
    assert len(expected.split()) >= 3  # a real continuation, not an immediate EOS
    assert result.stdout.strip() == expected.strip()


def test_tokens_arrive_one_piece_at_a_time(tiny_base_model: Path) -> None:
    from transformers import TextIteratorStreamer

    model, tokenizer = load_model_and_tokenizer(tiny_base_model, device="cpu")
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    results = {}
    prompt = tokenizer.eos_token + "The red king"
    worker = threading.Thread(
        target=lambda: results.update(text=generate_text(model, tokenizer, prompt, GREEDY, streamer))
    )
    with single_thread():
        worker.start()
        chunks = list(streamer)
        worker.join()
    assert len(chunks) >= 3  # word by word, not all at the end
    assert "".join(chunks).strip() == results["text"].strip()


def test_sampling_is_seeded_and_options_matter(tiny_base_model: Path) -> None:
    model, tokenizer = load_model_and_tokenizer(tiny_base_model, device="cpu")
    prompt = tokenizer.eos_token + "The"
    hot = SamplingOptions(max_new_tokens=16, temperature=1.5, top_p=1.0, top_k=0, seed=1)
    with single_thread():
        first, again = (generate_text(model, tokenizer, prompt, hot) for _ in range(2))
        others = {
            generate_text(model, tokenizer, prompt, SamplingOptions(**{**vars(hot), "seed": s})) for s in range(2, 6)
        }
    assert first == again  # the same seed, the same text
    assert len(others | {first}) > 1  # other seeds sample other texts
    config = hot.generation_config(tokenizer)
    assert (config.do_sample, config.temperature, config.top_k) == (True, 1.5, 0)
    assert GREEDY.generation_config(tokenizer).do_sample is False


def test_prompt_file_and_recipe_spellings(tiny_base_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    prompt_file = tmp_path / "prompt.txt"
    prompt_file.write_text("The quiet dog\n")
    argv = [str(tiny_base_model), "--prompt-file", str(prompt_file), "--temperature", "0", "--max_new_tokens", "12"]
    with single_thread():
        assert generate_main(argv) == 0
    assert capsys.readouterr().out.strip() == greedy_continuation(tiny_base_model, "The quiet dog").strip()
    recipe = tmp_path / "generate.yaml"
    recipe.write_text(f"model_name_or_path: {tiny_base_model}\nprompt: hello\ntop_k: 5\n")
    args = parse_args([str(recipe), "--top_p", "0.5"])
    assert (args.model_name_or_path, args.prompt, args.top_k, args.top_p) == (str(tiny_base_model), "hello", 5, 0.5)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--prompt", "x"], "a model folder is needed"),
        (["MODEL"], "give exactly one of --prompt TEXT and --prompt_file FILE"),
        (["MODEL", "--prompt", "x", "--prompt_file", "f"], "give exactly one of"),
        (["MODEL", "--prompt", "x", "--top_p", "0"], "0 < top_p <= 1"),
        (["MODEL", "--prompt_file", "/nonexistent/prompt.txt"], "prompt_file: /nonexistent/prompt.txt not found"),
        (["/nonexistent/model", "--prompt", "x"], "model /nonexistent/model is not a folder"),
    ],
)
def test_bad_input(argv: list[str], message: str, tiny_base_model: Path) -> None:
    argv = [str(tiny_base_model) if a == "MODEL" else a for a in argv]
    with pytest.raises(RecipeError, match=message):
        generate_main(argv)


def test_adapter_for_another_base_model(tiny_base_model: Path, tmp_path: Path) -> None:
    """An adapter made elsewhere (no hfscratch record): its base_model_name_or_path's config is compared."""
    from peft import LoraConfig, get_peft_model

    from hfscratch import HFScratchConfig, HFScratchForCausalLM

    config = HFScratchConfig.from_pretrained(str(tiny_base_model))
    HFScratchForCausalLM(HFScratchConfig.from_dict({**config.to_dict(), "num_hidden_layers": 1})).save_pretrained(
        tmp_path / "other"
    )
    other = HFScratchForCausalLM.from_pretrained(str(tmp_path / "other"))
    get_peft_model(other, LoraConfig(r=2, target_modules=["q_proj"])).save_pretrained(tmp_path / "adapter")
    with pytest.raises(RecipeError, match=r"trained on another base model .*num_hidden_layers=1 vs 2"):
        generate_main([str(tiny_base_model), "--adapter", str(tmp_path / "adapter"), "--prompt", "x"])
    with pytest.raises(RecipeError, match="not a PEFT adapter folder"):
        generate_main([str(tiny_base_model), "--adapter", str(tmp_path / "other"), "--prompt", "x"])
