"""torchrun entry of the checkpoint-barrier test: the pretrain CLI, with rank 1 saving its RNG state late.

A slow disk on one rank, made deterministic: rank 1 sleeps `DELAY_S` before `Trainer._save_rng_state`
writes its rng_state_1.pth, so a trainer_state.json written without waiting for it predates that file.
"""

from __future__ import annotations

import sys
import time

from transformers import Trainer

from hfscratch.training.cli import run_as_script

DELAY_S = 3.0
save_rng_state = Trainer._save_rng_state


def save_rng_state_late(self: Trainer, output_dir: str) -> None:
    if self.args.process_index == 1:
        time.sleep(DELAY_S)
    save_rng_state(self, output_dir)


Trainer._save_rng_state = save_rng_state_late

if __name__ == "__main__":
    run_as_script(sys.argv[1:])
