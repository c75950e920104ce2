"""Step 1a: data curation with datatrove.

`hfscratch curate RECIPE.yaml` (cli.py) runs the pipeline (pipeline.py) over the recipe's sources (sources.py)
with our own blocks where datatrove needs a network or lacks a step (blocks.py, dedup.py), shows its progress
(progress.py) and writes stats.json and the report (report.py). `hfscratch curate train-classifier` trains the
quality classifier (classifier.py); planted.py builds the planted duplicate sets that measure de-duplication.
"""
