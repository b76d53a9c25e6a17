"""GRPO through TRL's GRPOTrainer, with the real rewards (`xling.train.rewards`), on any backend.

`grpo_args()` maps a recipe onto GRPOConfig's fields — every hyperparameter explicitly, because
Unsloth's GRPOConfig silently changes TRL's defaults (learning rate, optimizer, seed, batch, loss
clipping) — and is tested on its own. `run()` does the stages: plan and version check, (Unsloth
imported first), training set, reward checks (the columns they read, the models they load: before
the policy loads), model, string prompts (chat template + prefix, over-long ones dropped), rewards,
trainer, checkpoints/resume, final adapter.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from xling.common.console import console
from xling.common.errors import XlingError
from xling.train import backends, lifecycle
from xling.train.callbacks import callbacks as make_callbacks, per_language_rewards
from xling.train.prompts import prompt_template, string_prompts


def report_to(train: Any, run_dir: Path) -> list[str] | str:
    targets = [r for r in train.report_to if r != "none"]
    if "tensorboard" in targets:
        if not backends.installed("tensorboard"):
            raise XlingError("train.report_to=tensorboard needs the tensorboard package: pip install tensorboard")
        os.environ.setdefault("TENSORBOARD_LOGGING_DIR", str(run_dir / "tensorboard"))
    if "wandb" in targets and not backends.installed("wandb"):
        raise XlingError("train.report_to=wandb needs the wandb package: pip install wandb (then wandb login)")
    return targets or "none"


def common_args(cfg: Any, plan: backends.Plan, output_dir: Path, run_dir: Path) -> dict:
    """TrainingArguments fields shared by GRPO and SFT, all explicit."""
    t = cfg.train
    args = dict(
        output_dir=str(output_dir), seed=cfg.seed, data_seed=cfg.seed,
        learning_rate=t.learning_rate, num_train_epochs=t.epochs, max_steps=t.max_steps,
        per_device_train_batch_size=t.batch_size, gradient_accumulation_steps=plan.batch.grad_accum,
        optim=t.optim, lr_scheduler_type=t.lr_scheduler, warmup_steps=t.warmup, weight_decay=t.weight_decay,
        max_grad_norm=t.max_grad_norm,
        bf16=plan.precision == "bf16", fp16=plan.precision == "fp16", use_cpu=not plan.cuda,
        gradient_checkpointing=t.gradient_checkpointing,
        logging_steps=t.logging_steps, save_strategy="steps", save_steps=t.save_steps,
        save_total_limit=t.save_total_limit, report_to=report_to(t, run_dir),
        disable_tqdm=True, dataloader_num_workers=0, dataloader_pin_memory=plan.cuda, eval_strategy="no", remove_unused_columns=False,
    )
    if plan.backend != "unsloth" and not (plan.backend == "peft" and cfg.model.adapter):
        args["model_init_kwargs"] = backends._init_kwargs(cfg, plan)
    return args


def check_steps(prompts: int, per_step: int) -> int:
    """How many prompts each epoch leaves out: TRL's sampler drops an incomplete last step.

    Fewer prompts than one step would train nothing at all: that is an error.
    """
    if prompts < per_step:
        raise XlingError(f"the training set has {prompts} prompt(s), fewer than one step's "
                         f"train.questions_per_step={per_step}: nothing would be trained; lower "
                         "train.questions_per_step or raise data.n")
    left = prompts % per_step
    if left and lifecycle.is_main():
        console.print(f"note: each epoch trains on {prompts - left} of {prompts} prompts ({prompts // per_step} steps "
                      f"of {per_step}); the other {left} are left out of it (TRL drops an incomplete step)", markup=False)
    return left


# CISPO clips the importance weight itself at epsilon_high (a cap well above 1), not the ratio at 1 ± epsilon.
CISPO_EPSILON_HIGH = 5.0


def epsilon_high(g: Any) -> float:
    """The upper clip: as set; else `epsilon` (PPO-style symmetric clipping), or 5.0 for CISPO."""
    if g.epsilon_high is not None:
        return g.epsilon_high
    return CISPO_EPSILON_HIGH if g.loss_type == "cispo" else g.epsilon


def importance_sampling_level(g: Any) -> str:
    """LUSPO is a sequence-level loss (TRL 1.14.2 warns unless `importance_sampling_level="sequence"`);
    every other loss, VESPO included (it weighs sequences internally and wants "token"), is token-level."""
    return "sequence" if g.loss_type == "luspo" else "token"


def importance_sampling_mode(g: Any) -> str:
    """vLLM's importance-sampling correction mode. TRL 1.14.2 refuses VESPO with the sequence-level
    modes at start (grpo_trainer.py: "VESPO loss requires `vllm_importance_sampling_mode` to be either
    'token_truncate' or 'token_mask'"), and its default is sequence_mask: auto picks token_truncate."""
    if g.importance_sampling_mode != "auto":
        return g.importance_sampling_mode
    return "token_truncate" if g.loss_type == "vespo" else "sequence_mask"


def grpo_args(cfg: Any, plan: backends.Plan, output_dir: Path, run_dir: Path, weights: Sequence[float]) -> dict:
    """GRPOConfig keyword arguments for this recipe and plan."""
    g, v = cfg.grpo, cfg.vllm
    args = common_args(cfg, plan, output_dir, run_dir)
    args.update(
        per_device_eval_batch_size=g.num_generations,
        num_generations=g.num_generations, temperature=g.temperature, top_p=g.top_p, top_k=0,
        repetition_penalty=1.0, max_completion_length=g.max_completion_length,
        loss_type=g.loss_type, beta=g.beta, scale_rewards=g.scale_rewards,
        importance_sampling_level=importance_sampling_level(g),
        epsilon=g.epsilon, epsilon_high=epsilon_high(g),
        num_iterations=g.num_iterations, mask_truncated_completions=g.mask_truncated_completions,
        reward_weights=list(weights), multi_objective_aggregation="sum_then_normalize",
        shuffle_dataset=True, log_completions=g.log_completions,
        num_completions_to_print=0,  # logged completions go to parquet files, not to the terminal
        use_vllm=plan.use_vllm,
    )
    if plan.use_vllm:
        args.update(
            vllm_mode=v.mode,
            vllm_importance_sampling_correction=g.importance_sampling_correction,
            vllm_importance_sampling_mode=importance_sampling_mode(g),
            ds3_gather_for_generation=True,
        )
        if v.mode == "colocate":
            args.update(
                vllm_gpu_memory_utilization=v.gpu_memory_utilization,
                vllm_max_model_length=v.max_model_len or (g.max_prompt_length + g.max_completion_length),
                vllm_tensor_parallel_size=v.tensor_parallel_size,
                # Unsloth's trainer sets this from its own engine (on with standby): say the same up front
                vllm_enable_sleep_mode=v.standby if plan.backend == "unsloth" else v.sleep_mode,
            )
        else:
            args.update(vllm_server_host=v.server_host, vllm_server_port=v.server_port,
                        vllm_server_timeout=v.server_timeout)
            if v.server_base_url:
                args["vllm_server_base_url"] = v.server_base_url
    return args


def build_rewards(cfg: Any):
    """(the reward functions as given to TRL, wrapped for per-language logging; weights; the raw functions)."""
    from xling.train.rewards import build_rewards as build

    funcs, weights = build(cfg.rewards.mix(), **cfg.rewards.options())
    return per_language_rewards(funcs, weights), weights, funcs


def check_rewards(cfg: Any, records: Sequence[dict]) -> None:
    """Every column the rewards read is in the training rows and every model they need loads (`xling.train.rewards.preflight`)."""
    from xling.train.rewards import preflight
    from xling.data.trainset import pivot_hint

    preflight(cfg.rewards.mix(), records, {"reference": f"write them with: {pivot_hint(cfg.data)}"},
              **cfg.rewards.options())


def close_rewards(funcs: Sequence[Any]) -> None:
    for f in funcs:
        grader = getattr(getattr(f, "options", None), "grader", None)
        if grader is not None:
            grader.close()
            return


def run(cfg: Any, run_dir: Path, *, extra_callbacks: Sequence[Any] = ()) -> dict:
    """Train with GRPO; returns the run's metrics (written to metrics.json by run.py)."""
    run_dir = Path(run_dir)
    plan, done = lifecycle.start(cfg, run_dir, "grpo", cfg.grpo.num_generations, standby=cfg.vllm.standby)
    if done is not None:
        return done

    model_path = lifecycle.model_path(cfg, run_dir)
    records = lifecycle.trainset_stage(cfg, run_dir)
    check_rewards(cfg, records)  # before the model loads: missing columns, unloadable reward models
    g = cfg.grpo
    loaded = backends.load(cfg, plan, model_path, g.max_prompt_length + g.max_completion_length)
    template = prompt_template(loaded.tokenizer, cfg.model.template_from)
    records, prompt_report = string_prompts(records, loaded.tokenizer, template, g.max_prompt_length)
    if prompt_report["dropped"] and lifecycle.is_main():
        console.print(f"dropped {prompt_report['dropped']} prompt(s) longer than {g.max_prompt_length} tokens "
                      f"({prompt_report['dropped_by_lang']}); {prompt_report['kept']} left", markup=False)
    prompt_report["unused_per_epoch"] = check_steps(len(records), plan.batch.questions_per_step)

    import datasets
    from transformers import set_seed
    from trl import GRPOConfig, GRPOTrainer  # after unsloth: its patched classes on that backend

    dataset = datasets.Dataset.from_list(records)
    rewards, weights, raw = build_rewards(cfg)
    output_dir = run_dir / lifecycle.CHECKPOINTS
    resume_from = lifecycle.resume_point(cfg, output_dir)
    try:
        args = GRPOConfig(**grpo_args(cfg, plan, output_dir, run_dir, weights))
        set_seed(cfg.seed)  # before the trainer: it initialises the LoRA weights
        trainer = GRPOTrainer(model=loaded.model, reward_funcs=rewards, args=args, train_dataset=dataset,
                              processing_class=loaded.tokenizer,
                              callbacks=[*make_callbacks(run_dir / lifecycle.LOG), *extra_callbacks],
                              **loaded.trainer_kwargs())
        info = {"method": "grpo", "backend": plan.backend, "model": cfg.model.name, "base_model": model_path,
                "lora": plan.lora, "use_vllm": plan.use_vllm, "seed": cfg.seed,
                "reward_weights": dict(zip([f.__name__ for f in rewards], weights)),
                "batch": {"questions_per_step": plan.batch.questions_per_step, "grad_accum": plan.batch.grad_accum,
                          "completions_per_step": plan.batch.completions_per_step, "processes": plan.processes},
                "prompts": prompt_report}
        info["ran"] = backends.record_ran(run_dir, trainer)
        info = lifecycle.fit(trainer, loaded.tokenizer, run_dir, resume_from, info, cfg)
    finally:
        close_rewards(raw)
    return lifecycle.summary(run_dir, info)
