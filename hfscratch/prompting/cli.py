"""`hfscratch generate MODEL_DIR [--adapter DIR] --prompt TEXT | --prompt_file F [--key value ...]`.

Prints the model's continuation as it is generated. A model whose tokenizer has a chat template (a fine-tuned
adapter or merged folder) gets the prompt as a user message in that template, unless `--chat false`; a base
model continues the prompt text itself, so a few-shot prompt (see `hfscratch.prompting.templates`) works as
written. The keys may also come from a YAML recipe given instead of MODEL_DIR.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hfscratch.core.recipes import RecipeError, parse_recipe

DESCRIPTION = (
    "Hand-off: prompt a model folder (optionally with a LoRA adapter): sampling with streaming to the console."
)


@dataclass
class GenerateArguments:
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "The model folder (also accepted as the first positional argument)."}
    )
    adapter: str | None = field(default=None, metadata={"help": "A LoRA adapter folder from `hfscratch finetune`."})
    prompt: str | None = field(default=None, metadata={"help": "The prompt text."})
    prompt_file: str | None = field(default=None, metadata={"help": "A file whose whole text is the prompt."})
    chat: bool | None = field(
        default=None,
        metadata={"help": "Wrap the prompt in the chat template as a user turn (default: if the tokenizer has one)."},
    )
    system_prompt: str | None = field(default=None, metadata={"help": "A system message (chat mode only)."})
    max_new_tokens: int = field(default=64, metadata={"help": "The most tokens to generate."})
    temperature: float = field(default=0.8, metadata={"help": "Sampling temperature; 0 for greedy decoding."})
    top_p: float = field(default=0.95, metadata={"help": "Nucleus sampling: keep the smallest set with this mass."})
    top_k: int = field(default=50, metadata={"help": "Sample from the k most likely tokens (0: no limit)."})
    repetition_penalty: float = field(default=1.0, metadata={"help": "CTRL's penalty on repeated tokens (1: none)."})
    seed: int = field(default=0, metadata={"help": "Random seed of the sampling."})
    device: str | None = field(default=None, metadata={"help": "cpu, cuda, cuda:1, ... (default: cuda if available)."})
    show_prompt: bool = field(default=False, metadata={"help": "Print the prompt (as formatted) before the output."})


def parse_args(argv: Sequence[str]) -> GenerateArguments:
    # `generate MODEL_DIR ...`: a positional folder is the model; a positional YAML file is a recipe.
    (args,) = parse_recipe(
        [GenerateArguments],
        argv,
        prog="hfscratch generate",
        description=DESCRIPTION,
        positional="model_name_or_path",
        usage="%(prog)s MODEL_DIR [--adapter DIR] (--prompt TEXT | --prompt_file F) [--key value ...]",
    )
    if not args.model_name_or_path:
        raise RecipeError("a model folder is needed: hfscratch generate MODEL_DIR --prompt TEXT")
    if (args.prompt is None) == (args.prompt_file is None):
        raise RecipeError("give exactly one of --prompt TEXT and --prompt_file FILE")
    if args.temperature < 0 or not 0 < args.top_p <= 1 or args.top_k < 0 or args.max_new_tokens < 1:
        raise RecipeError(
            "sampling: expected temperature >= 0, 0 < top_p <= 1, top_k >= 0 and max_new_tokens >= 1, got "
            f"{args.temperature}, {args.top_p}, {args.top_k}, {args.max_new_tokens}"
        )
    return args


def read_prompt(args: GenerateArguments) -> str:
    if args.prompt is not None:
        return args.prompt
    path = Path(args.prompt_file)
    if not path.is_file():
        raise RecipeError(f"prompt_file: {path} not found")
    return path.read_text(encoding="utf-8").rstrip("\n")


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    prompt = read_prompt(args)

    from transformers import TextStreamer

    from hfscratch.models.loading import load_model_and_tokenizer
    from hfscratch.prompting.generation import SamplingOptions, as_document_start, generate_text
    from hfscratch.prompting.templates import format_chat

    model, tokenizer = load_model_and_tokenizer(args.model_name_or_path, args.adapter, args.device)
    chat = args.chat if args.chat is not None else bool(getattr(tokenizer, "chat_template", None))
    if chat:
        messages = [{"role": "system", "content": args.system_prompt}] if args.system_prompt else []
        prompt = format_chat(tokenizer, [*messages, {"role": "user", "content": prompt}])
    else:
        prompt = as_document_start(tokenizer, prompt)
    if args.show_prompt:
        print(prompt, end="", flush=True)
    options = SamplingOptions(
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        top_k=args.top_k,
        repetition_penalty=args.repetition_penalty,
        seed=args.seed,
    )
    streamer = TextStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    generate_text(model, tokenizer, prompt, options, streamer=streamer)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
