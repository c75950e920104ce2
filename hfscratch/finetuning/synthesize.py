"""Self-Instruct instruction data from a local model (`hfscratch synthesize`; its command line: synthesize_cli.py).

Self-Instruct (Wang et al., 2023), as Stanford Alpaca used it: prompt a causal LM with a few numbered seed
tasks and an open next task, sample continuations, parse each into instruction / input / output, drop the
malformed ones, and drop near-duplicates: an instruction whose ROUGE-L F1 against any seed or kept
instruction exceeds 0.7 (Self-Instruct's threshold, computed with `rouge_score`). Kept tasks join the pool
that later prompts draw from. Any local model folder can generate.

The JSONL written has the Alpaca fields that `hfscratch finetune` reads, and `id` and `text` (the task in
Alpaca's prompt layout) so that `hfscratch curate` takes it as a `jsonl` source. A stats file beside it counts
every sample's fate (parsed, dropped per reason, kept).
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hfscratch.core.recipes import RecipeError
from hfscratch.core.resources import resolve_recipe

# Self-Instruct's filter: instructions about what a text model cannot perceive or produce
SELF_INSTRUCT_BLOCKED_WORDS = (
    "image", "images", "graph", "graphs", "picture", "pictures", "file", "files", "map", "maps",
    "draw", "plot", "go to", "video", "audio", "music", "flowchart", "diagram",
)  # fmt: skip
NEXT_TASK = re.compile(r"\n\s*Task \d+\s*(\n|$)")
FIELDS = re.compile(r"^(?P<instruction>.*?)\n\s*Input:(?P<input>.*?)\n\s*Output:(?P<output>.*)$", re.DOTALL)


@dataclass
class SynthesizeArguments:
    model_name_or_path: str = field(metadata={"help": "The generator: any local causal-LM folder."})
    seed_tasks: str = field(
        default="recipes/finetune/seed_tasks.jsonl",
        metadata={"help": "Human-written tasks, JSONL of {instruction, input, output}."},
    )
    output: str = field(default="runs/synthesize/instructions.jsonl", metadata={"help": "The JSONL to write."})
    num_instructions: int = field(default=100, metadata={"help": "Stop when this many new tasks are kept."})
    max_prompts: int | None = field(
        default=None, metadata={"help": "Stop after this many prompts even if short (default: 10x num_instructions)."}
    )
    num_prompt_tasks: int = field(default=3, metadata={"help": "Tasks shown in each prompt (Self-Instruct: 8)."})
    machine_tasks_per_prompt: int = field(
        default=1, metadata={"help": "Of those, how many come from the kept machine tasks once there are some."}
    )
    samples_per_prompt: int = field(default=4, metadata={"help": "Continuations sampled per prompt."})
    max_new_tokens: int = field(default=160, metadata={"help": "Tokens per continuation."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature."})
    top_p: float = field(default=0.9, metadata={"help": "Nucleus sampling mass."})
    rouge_threshold: float = field(
        default=0.7, metadata={"help": "Drop an instruction whose ROUGE-L F1 to a known one exceeds this."}
    )
    min_instruction_words: int = field(default=3, metadata={"help": "Shorter instructions are malformed."})
    max_instruction_words: int = field(default=150, metadata={"help": "Longer instructions are malformed."})
    blocked_words: list[str] = field(
        default_factory=lambda: list(SELF_INSTRUCT_BLOCKED_WORDS),
        metadata={"help": "Drop instructions with these words (Self-Instruct's list: things a text model can't do)."},
    )
    seed: int = field(default=0, metadata={"help": "Seed of task sampling and generation."})
    device: str | None = field(default=None, metadata={"help": "cpu, cuda, ... (default: cuda if available)."})


def read_seed_tasks(path: str | Path) -> list[dict[str, str]]:
    """Alpaca records from a JSONL file, checked with `finetune`'s reader (errors name the line and field)."""
    from hfscratch.finetuning.data import read_instruction_file

    read_instruction_file(path)  # validation only: one error message format for every instruction file
    tasks = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            if "messages" in record:
                raise RecipeError(f"{path}: seed tasks must be Alpaca records (instruction, input, output)")
            tasks.append(
                {"instruction": record["instruction"], "input": record.get("input") or "", "output": record["output"]}
            )
    return tasks


def parse_task(continuation: str, finished: bool) -> tuple[dict[str, str] | None, str]:
    """A generated continuation (after "Task N\\nInstruction:") as a task, or None and the reason it is malformed.

    The task ends where the model starts the next one ("Task N+1") or at EOS (`finished`); a continuation cut
    off by the token limit is incomplete, as Self-Instruct drops it.
    """
    end = NEXT_TASK.search(continuation)
    if end:
        continuation = continuation[: end.start()]
    elif not finished:
        return None, "truncated"
    match = FIELDS.match(continuation)
    if not match:
        return None, "missing_fields"
    task = {
        key: " ".join(value.split()) if key == "instruction" else value.strip()
        for key, value in match.groupdict().items()
    }
    if task["input"].lower() in ("<noinput>", "<no input>", "none", ""):
        task["input"] = ""
    if not task["instruction"] or not task["output"]:
        return None, "empty_field"
    if "Instruction:" in task["output"] or "Output:" in task["output"]:
        return None, "missing_fields"
    return task, "parsed"


def check_instruction(instruction: str, args: SynthesizeArguments) -> str | None:
    """Self-Instruct's heuristic filters: the reason to drop `instruction`, or None to keep it."""
    words = instruction.split()
    if not args.min_instruction_words <= len(words) <= args.max_instruction_words:
        return "instruction_length"
    lowered = instruction.lower()
    if any(re.search(rf"\b{re.escape(word)}\b", lowered) for word in args.blocked_words):
        return "blocked_word"
    if not instruction[0].isascii() or not instruction[0].isalnum():  # starts with punctuation or a non-English letter
        return "bad_start"
    return None


class NearDuplicateFilter:
    """ROUGE-L F1 of an instruction against every known one (the seeds and the kept tasks), as Self-Instruct."""

    def __init__(self, threshold: float, known: Sequence[str]):
        from rouge_score import rouge_scorer

        self.scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
        self.threshold = threshold
        self.known = list(known)

    def max_similarity(self, instruction: str) -> float:
        return max((self.scorer.score(k, instruction)["rougeL"].fmeasure for k in self.known), default=0.0)

    def admit(self, instruction: str) -> tuple[bool, float]:
        score = self.max_similarity(instruction)
        if score > self.threshold:
            return False, score
        self.known.append(instruction)
        return True, score


def synthesize(args: SynthesizeArguments) -> dict[str, Any]:
    """Generate until `num_instructions` tasks are kept (or `max_prompts` prompts); write JSONL and stats."""
    import torch
    from tqdm.auto import tqdm

    from hfscratch.models.loading import load_model_and_tokenizer
    from hfscratch.prompting.generation import SamplingOptions
    from hfscratch.prompting.templates import alpaca_prompt, self_instruct_prompt

    seeds = read_seed_tasks(resolve_recipe(args.seed_tasks, "finetune"))
    if len(seeds) < args.num_prompt_tasks - args.machine_tasks_per_prompt:
        raise RecipeError(f"seed_tasks: {args.seed_tasks} has {len(seeds)} tasks; num_prompt_tasks needs more")
    model, tokenizer = load_model_and_tokenizer(args.model_name_or_path, device=args.device)
    options = SamplingOptions(
        max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p, top_k=0
    )
    config = options.generation_config(tokenizer, model.generation_config)
    config.num_return_sequences = args.samples_per_prompt
    rng = random.Random(args.seed)
    torch.manual_seed(args.seed)
    dedup = NearDuplicateFilter(args.rouge_threshold, [s["instruction"] for s in seeds])
    counts: Counter[str] = Counter()
    kept: list[dict[str, Any]] = []
    max_prompts = args.max_prompts or 10 * args.num_instructions
    progress = tqdm(total=args.num_instructions, desc="synthesize", unit="task")
    for _ in range(max_prompts):
        if len(kept) >= args.num_instructions:
            break
        machine = rng.sample(kept, min(len(kept), args.machine_tasks_per_prompt))
        shown = rng.sample(seeds, args.num_prompt_tasks - len(machine)) + machine
        rng.shuffle(shown)
        # documents follow an EOS in pretraining blocks; the prompt starts a fresh one
        prompt = tokenizer.eos_token + self_instruct_prompt(shown)
        inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(model.device)
        with torch.inference_mode():
            output = model.generate(**inputs, generation_config=config)
        counts["prompts"] += 1
        for ids in output[:, inputs["input_ids"].shape[1] :]:
            counts["samples"] += 1
            finished = bool((ids == tokenizer.eos_token_id).any())
            task, reason = parse_task(tokenizer.decode(ids, skip_special_tokens=True), finished)
            reason = (check_instruction(task["instruction"], args) or reason) if task else reason
            if reason != "parsed":
                counts[f"malformed_{reason}"] += 1
                continue
            counts["parsed"] += 1
            admitted, similarity = dedup.admit(task["instruction"])
            if not admitted:
                counts["near_duplicate"] += 1
                continue
            kept.append({**task, "rouge_l_max": round(similarity, 4)})
            progress.update(1)
            if len(kept) >= args.num_instructions:
                break
    progress.close()
    counts["kept"] = len(kept)
    stats = {"generator": str(Path(args.model_name_or_path).resolve()), "seed_tasks": len(seeds), **counts}
    write_tasks(Path(args.output), kept, stats, alpaca_prompt)
    return stats


def write_tasks(path: Path, tasks: list[dict[str, Any]], stats: dict[str, Any], render: Any) -> None:
    """JSONL for finetune (instruction/input/output) and curate (id, text), and `<output>.stats.json`; both
    written under temporary names and renamed, so a killed run leaves no file that looks complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".incomplete")
    with open(tmp, "w", encoding="utf-8") as f:
        for i, task in enumerate(tasks):
            record = {
                "id": f"synthesize-{i:06d}",
                "instruction": task["instruction"],
                "input": task["input"],
                "output": task["output"],
                "text": render(task["instruction"], task["input"], task["output"]),
                "metadata": {"generator": stats["generator"], "rouge_l_max": task["rouge_l_max"]},
            }
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    stats_path = path.with_name(path.stem + ".stats.json")
    stats_path.write_text(json.dumps(stats, indent=2) + "\n")
    tmp.rename(path)
