"""Training: GRPO, SFT and RFT through TRL, on three backends, resumable, with per-language metrics.

    config.py     recipe sections (model, train, lora, vllm, grpo, rewards, sft, rft) and their checks
    backends.py   which backend runs (unsloth | peft | full), device and precision, model loading
    prompts.py    training prompts as strings (chat template + assistant prefix), length filter
    lifecycle.py  a training run's life, shared by the methods: training-set stage, trainer, checkpoints/resume, final save
    rewards.py    the reward functions (accuracy, format, language, consistency, pivot) and reward sets
    callbacks.py  rich progress bar, train_log.jsonl, per-language reward metrics
    grpo.py       GRPOConfig arguments and the GRPO run
    sft.py        SFT on reference solutions
    rft.py        rejection fine-tuning: sample, keep the correct answers (the one grader), SFT

Nothing here imports torch, transformers, trl, peft, unsloth or vllm at module level: the
training task imports unsloth first (before anything imports trl or transformers), then the rest.
"""
