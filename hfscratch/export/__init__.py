"""Export a trained model to files other runtimes read: GGUF for llama.cpp, Ollama and LM Studio.

`hfscratch export MODEL_DIR --format gguf --outfile model.gguf [--quantize f32|f16|q8_0]` goes through the Llama
export (`hfscratch.models.convert.to_llama`) and the `gguf` package's writer, and transformers reads the file
back with `AutoModelForCausalLM.from_pretrained(..., gguf_file=...)` (`--check` compares its logits with the
original's). The library code lives in `hfscratch.export.gguf` (model and file) and `hfscratch.export.vocab`
(the tokenizer as llama.cpp's metadata); nothing here imports torch until an export runs.
"""
