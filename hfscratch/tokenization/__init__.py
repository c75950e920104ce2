"""Step 1b: tokenization. Train a tokenizer on the curated corpus, decontaminate it against benchmarks, and
pack it into fixed-length train/validation blocks with per-source mixture weights.

Modules: `arguments` (recipe keys and input checks), `corpus` (reading), `tokenizer` (training/loading),
`decontamination` (n-gram overlap with benchmarks), `mixture` (per-source weights), `packing` (split and
blocks), `stats` (per-source figures and plot), `pipeline` (the step end to end), `cli` (`main`).
"""
