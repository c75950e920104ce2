"""Step 4: evaluation. lm-eval benchmarks (ARC, HellaSwag, MMLU, TruthfulQA) offline or from the Hub,
perplexity and bits per byte on held-out data, a domain cloze benchmark, open-ended BLEU/ROUGE (and a judge
model), human rating sheets, and an lm-eval callback for training."""

from hfscratch.evaluation.arguments import EvaluateArguments
from hfscratch.evaluation.report import eval_results
from hfscratch.evaluation.runner import run_evaluation
from hfscratch.evaluation.scores import Scores

__all__ = ["EvaluateArguments", "Scores", "eval_results", "run_evaluation"]
