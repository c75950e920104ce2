"""Step 3: pretraining with `transformers.Trainer`, accelerate and DeepSpeed ZeRO.

`accelerate launch --config_file recipes/accelerate/<engine>.yaml -m hfscratch.training.pretrain RECIPE.yaml`
on a cluster, `hfscratch pretrain RECIPE.yaml` on one device.
"""
