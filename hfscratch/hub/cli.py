"""`hfscratch push MODEL_DIR --repo_id ORG/NAME [--private] [--revision R] [--dry_run] [--llama] [--card_only]`."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hfscratch.core.recipes import RecipeError, parse_recipe

USAGE = (
    "hfscratch push MODEL_DIR --repo_id ORG/NAME [--private] [--revision R] [--dry_run] [--llama] [--key value ...]\n"
    "       hfscratch push MODEL_DIR --card_only [--card_dir DIR] [--data_dir DIR] [--evaluation_dir DIR]\n"
    "       hfscratch push RECIPE.yaml [--key value ...]"
)
DESCRIPTION = (
    "Hand-off: render the model card (README.md: architecture, data lineage, training, evaluation, compute) into "
    "MODEL_DIR, check that the folder loads where hfscratch is not installed, and upload it to the Hugging Face Hub "
    "(create_repo + upload_folder). Options may also be spelled with dashes (--repo-id, --dry-run)."
)


@dataclass
class PushArguments:
    model_dir: str = field(metadata={"help": "The model folder (a `hfscratch pretrain` output). May come first."})
    repo_id: str | None = field(default=None, metadata={"help": "The Hub repository, ORG/NAME."})
    private: bool = field(default=False, metadata={"help": "Create the repository as private."})
    revision: str | None = field(default=None, metadata={"help": "Branch to commit to (created if needed)."})
    dry_run: bool = field(
        default=False,
        metadata={"help": "List what would be uploaded and check it loads in a fresh process; upload nothing."},
    )
    llama: bool = field(
        default=False, metadata={"help": "Push the LlamaForCausalLM export (no remote code) where the config allows."}
    )
    card_only: bool = field(default=False, metadata={"help": "Only render README.md (and its images); no upload."})
    card_dir: str | None = field(
        default=None, metadata={"help": "With --card_only: where to write (default MODEL_DIR)."}
    )
    data_dir: str | None = field(
        default=None,
        metadata={"help": "The `hfscratch tokenize` output the model was trained on (default: run_info.json's)."},
    )
    evaluation_dir: str | None = field(
        default=None, metadata={"help": "The `hfscratch evaluate` output to report (default: MODEL_DIR/evaluation)."}
    )
    license: str = field(default="apache-2.0", metadata={"help": "Licence id of the model (Hub licence identifiers)."})
    language: list[str] = field(default_factory=lambda: ["en"], metadata={"help": "ISO 639 codes of the data."})
    datasets: list[str] | None = field(default=None, metadata={"help": "Hub dataset ids the model was trained on."})
    tags: list[str] | None = field(default=None, metadata={"help": "Extra Hub tags."})
    model_name: str | None = field(default=None, metadata={"help": "Name in the card (default: the repo name)."})
    device_watts: float | None = field(
        default=None,
        metadata={"help": "Power of one training device in watts, for the energy estimate of non-GPU runs."},
    )
    template: str | None = field(default=None, metadata={"help": "A Jinja card template instead of the kit's."})
    commit_message: str | None = field(default=None, metadata={"help": "Commit message of the upload."})
    skip_load_check: bool = field(default=False, metadata={"help": "Do not run the fresh-process load check."})
    endpoint: str | None = field(default=None, metadata={"help": "Hub endpoint (default: HF_ENDPOINT or the Hub)."})


def parse_args(argv: Sequence[str]) -> PushArguments:
    """`MODEL_DIR` (a folder) may come first, as may a YAML recipe of the same keys."""
    (args,) = parse_recipe(
        [PushArguments], argv, prog="hfscratch push", description=DESCRIPTION, positional="model_dir", usage=USAGE
    )
    return args


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    card_options = {
        "license": args.license,
        "language": args.language,
        "datasets": args.datasets,
        "tags": args.tags,
        "model_name": args.model_name,
        "device_watts": args.device_watts,
        "template": args.template,
    }
    if args.card_only:
        from hfscratch.hub.card import write_card
        from hfscratch.hub.lineage import gather_lineage

        if not Path(args.model_dir).is_dir():
            raise RecipeError(f"MODEL_DIR {args.model_dir} is not a folder (expected a `hfscratch pretrain` output)")
        lineage = gather_lineage(args.model_dir, args.data_dir, args.evaluation_dir)
        for line in lineage.missing:
            print(f"note: {line}", file=sys.stderr)
        path = write_card(lineage, card_dir=args.card_dir, repo_id=args.repo_id, llama=args.llama, **card_options)
        print(f"model card: {path}")
        return 0
    if args.card_dir:
        raise RecipeError("--card_dir goes with --card_only (a push writes the card into the folder it uploads)")

    from hfscratch.hub.push import push

    push(
        args.model_dir,
        args.repo_id,
        private=args.private,
        revision=args.revision,
        dry_run=args.dry_run,
        llama=args.llama,
        data_dir=args.data_dir,
        evaluation_dir=args.evaluation_dir,
        endpoint=args.endpoint,
        commit_message=args.commit_message,
        load_check=not args.skip_load_check,
        **card_options,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
