"""`resume_from_checkpoint: auto`: the newest complete checkpoint of the output folder, or a fresh start."""

from __future__ import annotations

import json
import re
from pathlib import Path

from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from hfscratch.core.recipes import RecipeError

CHECKPOINT = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")


def last_complete_checkpoint(output_dir: str | Path) -> Path | None:
    """The highest-step `checkpoint-N` whose `trainer_state.json` is readable.

    The Trainer writes `trainer_state.json` last, after weights, optimizer, scheduler and RNG states (every
    rank's: `PretrainTrainer` waits for them), so a run killed while saving leaves a folder without it (or with
    a truncated one). `get_last_checkpoint` would pick that folder by its number alone.
    """
    folder = Path(output_dir)
    steps = sorted(
        ((int(m[1]), p) for p in folder.glob(f"{PREFIX_CHECKPOINT_DIR}-*") if (m := CHECKPOINT.match(p.name))),
        reverse=True,
    )
    for _, path in steps:
        try:
            json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        return path
    return None


def resolve_resume(value: str | None, output_dir: str) -> str | None:
    """`auto` -> the last complete checkpoint (None: start fresh); a path must exist; None stays None."""
    if value is None:
        return None
    if value == "auto":
        found = last_complete_checkpoint(output_dir)
        if found:
            print(f"resuming from {found} (resume_from_checkpoint: auto)", flush=True)
        return str(found) if found else None
    if not Path(value, "trainer_state.json").is_file():
        raise RecipeError(f"key 'resume_from_checkpoint': {value} is not a checkpoint folder (no trainer_state.json)")
    return value
