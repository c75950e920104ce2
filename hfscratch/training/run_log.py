"""Library messages a user cannot act on go to the run's log file instead of the console.

DeepSpeed announces at import that it "set the accelerator to CPU", transformers and torch warn about internals,
and `save_pretrained` draws a progress bar for writing one file: on the console they bury the lines that matter
(the step's own messages, the Trainer's loss logs, hfscratch's warnings, which stay there). They are kept in the
log file; errors still reach the console as well.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

# Loggers that print through handlers of their own (DeepSpeed's adds one at import): their records are filtered.
WITH_OWN_HANDLERS = ("DeepSpeed", "transformers", "datasets")
# Loggers whose records reach the console through the root logger: given the file (and the console for errors).
PROPAGATING = ("accelerate", "torch", "py.warnings")


class ToFile(logging.Filter):
    """Writes each record to `handler` and lets only errors go on to the console."""

    def __init__(self, handler: logging.Handler):
        super().__init__()
        self.handler = handler

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= self.handler.level:
            self.handler.handle(record)
        return record.levelno >= logging.ERROR


def library_messages_to(path: str | Path) -> Path:
    """Route library warnings (and lower) to `path` from now on, in this process, replacing an earlier route;
    returns `path`. The file is created on the first message."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.get_verbosity()  # sets up transformers' own handler, if nothing has yet
    transformers_logging.disable_progress_bar()  # "Writing model shards": one file, no progress to show
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8", delay=True)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    route = ToFile(handler)
    errors = logging.StreamHandler(sys.stderr)
    errors.setLevel(logging.ERROR)
    for name in WITH_OWN_HANDLERS:
        logger = logging.getLogger(name)
        # Filters on the logger see the records created on it; on its handlers, those of its children too.
        for filterer in (logger, *logger.handlers):
            for old in [f for f in filterer.filters if isinstance(f, ToFile)]:
                filterer.removeFilter(old)
            filterer.addFilter(route)
    for name in PROPAGATING:
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if getattr(h, "hfscratch_route", False)]:
            logger.removeHandler(old)
        for new in (handler, errors):
            new.hfscratch_route = True
            logger.addHandler(new)
        logger.propagate = False
    logging.captureWarnings(True)  # warnings.warn -> the "py.warnings" logger
    return path
