"""In-training downstream evaluation: a small, fixed lm-eval subset every N steps (OLMo's in-loop evals).

The callback wraps the model being trained in an `HFLM` (no copy, no reload), runs the tasks with a fixed
item `limit` on rank 0, and hands the scores to the run's logs as `harness/<task>_<metric>`. The tasks are
resolved once (the task index, the offline overrides), so each evaluation costs only the forward passes.
`PretrainTrainer.log` picks the scores up with `pop_metrics()` so every logger (TensorBoard, W&B) gets them;
they are also appended to `OUTPUT_DIR/eval_harness.jsonl`.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

logger = logging.getLogger(__name__)


class EvalHarnessCallback(TrainerCallback):
    def __init__(
        self,
        tasks: list[str],
        every_n_steps: int,
        limit: float | None = 100,
        data_dir: str | None = None,
        num_fewshot: int = 0,
        batch_size: int = 16,
    ):
        if every_n_steps < 1:
            raise ValueError(f"eval_harness_steps must be at least 1, got {every_n_steps}")
        self.pairs = [(task, num_fewshot) for task in tasks]
        self.every_n_steps = every_n_steps
        self.limit = limit
        self.data_dir = Path(data_dir) if data_dir else None
        self.batch_size = batch_size
        self.pending: dict[str, float] = {}
        self.history: list[dict[str, Any]] = []

    def on_step_end(self, args, state, control, model=None, processing_class=None, **kwargs) -> None:
        if state.global_step % self.every_n_steps != 0 or not state.is_world_process_zero:
            return
        if any(hasattr(p, "ds_numel") for p in model.parameters()):
            if not self.history:
                logger.warning("eval_harness_tasks: skipped under ZeRO-3 (rank 0 holds only a shard of the weights)")
                self.history.append({"step": state.global_step, "skipped": "zero3"})
            return
        self.pending = self.evaluate(model, processing_class, Path(args.output_dir))
        record = {"step": state.global_step, **self.pending}
        self.history.append(record)
        with open(Path(args.output_dir) / "eval_harness.jsonl", "a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")
        control.should_log = True  # the scores go out with this step's log

    def evaluate(self, model: Any, tokenizer: Any, output_dir: Path) -> dict[str, float]:
        from hfscratch.evaluation.harness import make_lm, primary_metric, run_harness

        start = time.perf_counter()
        was_training = model.training
        lm = make_lm(model, self.batch_size, tokenizer=tokenizer)
        try:
            results, _ = run_harness(
                lm,
                self.pairs,
                limit=self.limit,
                data_dir=self.data_dir,
                overrides_dir=output_dir / "lm_eval_tasks",
                bootstrap_iters=0,
                log_samples=False,
            )
        finally:
            model.train(was_training)
        metrics = {}
        for task, _ in self.pairs:
            metric = primary_metric(task, results)
            metrics[f"harness/{task}_{metric}"] = float(results["results"][task][f"{metric},none"])
        metrics["harness/seconds"] = time.perf_counter() - start
        logger.info("lm-eval subset: %s", ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        return metrics

    def pop_metrics(self) -> dict[str, float]:
        """The scores not logged yet (for `Trainer.log`), then forgets them."""
        metrics, self.pending = self.pending, {}
        return metrics

    def on_log(self, args, state, control, logs=None, **kwargs) -> None:
        # A trainer that does not call pop_metrics: keep the scores in the log history (trainer_state.json).
        if self.pending and state.log_history:
            state.log_history[-1].update(self.pop_metrics())
