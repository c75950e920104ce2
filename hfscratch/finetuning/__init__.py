"""Hand-off: PEFT LoRA fine-tuning on instruction data (`hfscratch finetune`) and Self-Instruct data
synthesis with a local model (`hfscratch synthesize`)."""
