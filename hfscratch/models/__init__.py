"""Step 2: the model. `hfscratch/` is the Hub-portable model code; `convert.py` moves weights to and from Llama."""
