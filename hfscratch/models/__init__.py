"""Step 2: the model. `hfscratch/` is the Hub-portable model code; `convert.py` moves weights to and from Llama;
`loading.py` loads a trained model folder, its tokenizer and a LoRA adapter for every later step, with the checks
(and one-line errors) they share."""
