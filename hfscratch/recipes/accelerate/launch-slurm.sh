#!/bin/bash
# Multi-node pretraining under Slurm: one `accelerate launch` per node, each starting one process per GPU.
#   sbatch recipes/accelerate/launch-slurm.sh recipes/pretrain/1b.yaml [--key value ...]          # DeepSpeed ZeRO-3
#   ACCELERATE_CONFIG=recipes/accelerate/multinode-fsdp2.yaml sbatch recipes/accelerate/launch-slurm.sh RECIPE.yaml  # FSDP2
#SBATCH --job-name=hfscratch-pretrain
#SBATCH --nodes=4
#SBATCH --ntasks-per-node=1
#SBATCH --gres=gpu:8
#SBATCH --cpus-per-task=96
#SBATCH --exclusive
#SBATCH --output=runs/slurm/%x-%j.out
set -euo pipefail

GPUS_PER_NODE=8
CONFIG=${ACCELERATE_CONFIG:-recipes/accelerate/multinode-zero3.yaml}
MAIN_NODE=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
MAIN_PORT=${MAIN_PORT:-29500}
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}  # compute nodes rarely see the internet: data and tokenizer are local

# Each node's task computes its own rank; --resume_from_checkpoint auto makes a requeued job continue.
srun --kill-on-bad-exit=1 bash -c "accelerate launch \
  --config_file $CONFIG \
  --num_machines $SLURM_NNODES \
  --num_processes $((SLURM_NNODES * GPUS_PER_NODE)) \
  --machine_rank \$SLURM_NODEID \
  --main_process_ip $MAIN_NODE \
  --main_process_port $MAIN_PORT \
  -m hfscratch.training.pretrain $* --resume_from_checkpoint auto"
