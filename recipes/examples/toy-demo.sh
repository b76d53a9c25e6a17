#!/usr/bin/env bash
# The classroom demo's steps as plain commands (recipes/demo.yaml will run the same as one sweep):
# pretrain the toy model (on first use of model.name=toy, then cached), GRPO on English only,
# English + 1 and English + 3 parallel languages, and evaluate the base and the three trained
# models in all 11 languages with the hf backend. CPU only, no network.
#   bash recipes/examples/toy-demo.sh [OUT]        (default OUT: runs/toy-demo)
set -euo pipefail
out=${1:-runs/toy-demo}
start=$(date +%s)

# GRPO, the same for every run: 20 steps of 8 synth problems x 8 rollouts (problems of the synth
# `train` split: held apart from the toy's pretraining and from the evaluation), every weight
# trained, the paper's rewards (0.8 accuracy + 0.1 format + 0.1 language), the prompt-hacking
# pre-fill as in evaluation. scale_rewards=none: in a group where every answer is wrong, dividing by
# the group's spread would turn the format and language rewards' noise into full-size advantages.
grpo=(model.name=toy data.source=synth data.n=160 data.prefix=true train.backend=full
      train.learning_rate=1e-4 train.max_steps=20 train.questions_per_step=8 train.batch_size=16
      train.gradient_checkpointing=false train.save_steps=1000 grpo.num_generations=8
      grpo.max_prompt_length=128 grpo.max_completion_length=64 grpo.scale_rewards=none rewards.workers=0)

python run.py grpo-en "${grpo[@]}" out="$out/en"
python run.py grpo-parallel "${grpo[@]}" data.k=1 out="$out/en+1"
python run.py grpo-parallel "${grpo[@]}" data.k=3 out="$out/en+3"

# 150 held-out problems per language (synth `test` split): 95% intervals of about +-7 points.
python run.py evaluate base=toy base_name=toy model="$out/en/final" name=en train_langs=en \
    "models=[{name: en+ru, model: $out/en+1/final, train_langs: [en, ru]}, {name: en+ru+fr+es, model: $out/en+3/final, train_langs: [en, ru, fr, es]}]" \
    benchmarks=synth langs=all limit=150 gen.backend=hf gen.max_tokens=64 gen.batch_size=64 out="$out/eval"

echo "demo wall time: $(( $(date +%s) - start ))s"
