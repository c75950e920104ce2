"""The `hfscratch` command: `hfscratch <step> [RECIPE.yaml] [--key value ...]`.

This dispatcher lives outside the `hfscratch` package on purpose: importing `hfscratch` registers the model
with transformers' Auto classes, which imports torch (about 3 s). Here nothing heavy is imported until a
step runs, so `hfscratch --help` and a mistyped step name answer at once.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version


@dataclass(frozen=True)
class Step:
    summary: str
    module: str | None  # defines `main(argv) -> int`; None while the step is not built yet


STEPS: dict[str, Step] = {
    "plan": Step("Step 0: size a run: parameters, tokens, FLOPs, GPU-hours, rent/buy cost, energy", "hfscratch.plan"),
    "curate": Step(
        "Step 1a: curate text with datatrove: quality filters, de-duplication, PII redaction", "hfscratch.curation"
    ),
    "tokenize": Step(
        "Step 1b: train a BPE tokenizer and pack the curated text into training blocks", "hfscratch.tokenization.cli"
    ),
    "pretrain": Step("Step 3: pretrain with Trainer + accelerate + DeepSpeed ZeRO", "hfscratch.training.pretrain"),
    "evaluate": Step("Step 4: evaluate with lm-eval (ARC, HellaSwag, MMLU, TruthfulQA) and perplexity", None),
    "push": Step("Hand-off: render the model card and push the model folder to the Hub", None),
    "finetune": Step("Hand-off: parameter-efficient fine-tuning with PEFT (LoRA)", None),
    "generate": Step("Hand-off: prompt the model: sampling and few-shot templates", None),
    "quickstart": Step(
        "The main job: every step that exists, end to end, in minutes on a laptop", "hfscratch.quickstart"
    ),
}


def usage() -> str:
    width = max(map(len, STEPS))
    lines = [
        "usage: hfscratch <step> [RECIPE.yaml] [--key value ...]",
        "",
        "Train a language model from scratch on the Hugging Face stack, one step at a time.",
        "Each step reads a YAML recipe (see recipes/); any recipe key can be overridden as --key value.",
        "",
        "steps:",
    ]
    for name, step in STEPS.items():
        status = "" if step.module else "  [not built yet]"
        lines.append(f"  {name:<{width}}  {step.summary}{status}")
    lines += ["", "Run `hfscratch <step> --help` for the keys a step takes.", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage(), end="")
        return 0 if argv else 2
    if argv[0] == "--version":
        print(f"hfscratch {version('hfscratch')}")
        return 0
    name, rest = argv[0], argv[1:]
    step = STEPS.get(name)
    if step is None:
        print(f"hfscratch: error: unknown step {name!r}; choose one of: {', '.join(STEPS)}", file=sys.stderr)
        return 2
    if step.module is None:
        print(f"hfscratch {name}: not built yet ({step.summary})", file=sys.stderr)
        return 1

    from hfscratch.recipes import RecipeError  # imports the package: only now that a step runs

    try:
        return importlib.import_module(step.module).main(rest)
    except RecipeError as exc:
        print(f"hfscratch {name}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hfscratch {name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
