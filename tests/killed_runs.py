"""Run a datatrove-backed command and SIGKILL it mid-run: the resumability tests of curation and tokenization.

A module of its own (not conftest.py) so that tests in any folder import it by a name no other uses.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


def run_until_killed(command: list[str], completions: Path | None = None, kill_after: int = 0) -> int:
    """Run `command` in its own process group and return its exit code; with `completions` (a datatrove stage's
    completions folder), SIGKILL the whole group, workers included, once it holds `kill_after` entries."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    if completions is not None:
        deadline = time.time() + 120
        while time.time() < deadline and process.poll() is None:
            if completions.is_dir() and len(list(completions.iterdir())) >= kill_after:
                os.killpg(process.pid, signal.SIGKILL)
                break
            time.sleep(0.02)
    return process.wait(timeout=300)
