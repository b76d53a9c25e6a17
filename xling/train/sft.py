"""SFT through TRL's SFTTrainer: the RL-vs-SFT baseline, on the same problems and prompts as GRPO.

Each example is a string prompt (the chat template with the assistant turn open, plus the prefix
when the data uses prompt hacking) and a completion: the problem's reference solution
(`sft.target=solution`, or the pivot model's `reference`), with `\\boxed{answer}` appended where
the solution has no box. TRL trains on the completion only. RFT (`xling.train.rft`) calls
`fit_sft` with the sampled correct answers instead.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from xling.grading.boxes import last_boxed
from xling.common.console import console
from xling.common.errors import XlingError
from xling.train import backends, lifecycle
from xling.train.callbacks import callbacks as make_callbacks
from xling.train.grpo import common_args
from xling.train.prompts import prompt_template, render_prompts, token_lengths


def with_box(text: str, answer: Any) -> str:
    """The text, ending in `\\boxed{answer}` if it has no box yet."""
    text = str(text).rstrip()
    return text if last_boxed(text) is not None else f"{text}\n\n\\boxed{{{answer}}}"


def targets_from_data(records: Sequence[dict], target: str = "solution", add_box: bool = True
                      ) -> tuple[list[tuple[dict, str]], dict[str, int]]:
    """(record, completion) pairs from the training set's `target` column; rows without one are counted."""
    pairs, missing = [], Counter()
    for rec in records:
        text = rec.get(target)
        if not isinstance(text, str) or not text.strip():
            missing[rec.get("lang", "?")] += 1
            continue
        pairs.append((rec, with_box(text, rec.get("answer")) if add_box else text))
    return pairs, dict(sorted(missing.items()))


def sft_dataset(pairs: Sequence[tuple[dict, str]], tokenizer: Any, template: str, max_length: int
                ) -> tuple[list[dict], dict]:
    """Prompt-completion records (strings), those over `max_length` tokens dropped and counted."""
    prompts = render_prompts((rec["prompt"] for rec, _ in pairs), tokenizer, template)
    completions = []
    for prompt, (_, text) in zip(prompts, pairs):
        if prompt and not prompt[-1].isspace() and not text[:1].isspace():
            text = " " + text  # after a prefix ("... thinking in English.") the answer starts a new word
        completions.append(text)
    p_len, c_len = token_lengths(prompts, tokenizer), token_lengths(completions, tokenizer)
    out, dropped = [], Counter()
    for (rec, _), prompt, completion, lp, lc in zip(pairs, prompts, completions, p_len, c_len):
        if lp + lc + 1 > max_length:
            dropped[rec.get("lang", "?")] += 1
            continue
        out.append({"prompt": prompt, "completion": completion, "lang": rec.get("lang"), "id": rec.get("id")})
    report = {"kept": len(out), "dropped": sum(dropped.values()), "dropped_by_lang": dict(sorted(dropped.items())),
              "max_length": max_length}
    if not out:
        raise XlingError(f"every SFT example is longer than sft.max_length={max_length} tokens; raise it")
    return out, report


def sft_args(cfg: Any, plan: backends.Plan, output_dir: Path, run_dir: Path) -> dict:
    """SFTConfig keyword arguments: completion-only loss on prompt-completion strings, no packing."""
    args = common_args(cfg, plan, output_dir, run_dir)
    args.update(max_length=cfg.sft.max_length, packing=False, completion_only_loss=True)
    return args


def adapts_output_layer(loaded: backends.Loaded) -> bool:
    """Whether the LoRA adapter to train wraps the output layer (`lm_head` among its targets, or a saved adapter
    that has it): TRL's default chunked loss reads that layer's weight directly, which would skip the adapter."""
    if loaded.peft_config is not None:
        targets = loaded.peft_config.target_modules or []
        return "lm_head" in ([targets] if isinstance(targets, str) else list(targets))
    if isinstance(loaded.model, (str, Path)):  # full-parameter training: TRL loads the model itself
        return False
    from peft import PeftModel
    from peft.tuners.tuners_utils import BaseTunerLayer

    model = loaded.model
    return isinstance(model, PeftModel) and isinstance(model.get_base_model().get_output_embeddings(), BaseTunerLayer)


def fit_sft(cfg: Any, run_dir: Path, plan: backends.Plan, pairs: Sequence[tuple[dict, str]], info: dict,
            extra_callbacks: Sequence[Any] = ()) -> dict:
    """Load the model, build the SFT set from (record, completion) pairs, train, save final/."""
    model_path = lifecycle.model_path(cfg, run_dir)
    loaded = backends.load(cfg, plan, model_path, cfg.sft.max_length)
    template = prompt_template(loaded.tokenizer, cfg.model.template_from)
    records, report = sft_dataset(pairs, loaded.tokenizer, template, cfg.sft.max_length)
    if report["dropped"] and lifecycle.is_main():
        console.print(f"dropped {report['dropped']} example(s) longer than {cfg.sft.max_length} tokens "
                      f"({report['dropped_by_lang']})", markup=False)

    import datasets
    from transformers import set_seed
    from trl import SFTConfig, SFTTrainer  # after unsloth: its patched classes on that backend

    dataset = datasets.Dataset.from_list(records)
    output_dir = run_dir / lifecycle.CHECKPOINTS
    resume_from = lifecycle.resume_point(cfg, output_dir)
    kw = sft_args(cfg, plan, output_dir, run_dir)
    if adapts_output_layer(loaded):
        kw["loss_type"] = "nll"  # the same loss over the whole vocabulary, through the adapted layer
    args = SFTConfig(**kw)
    set_seed(cfg.seed)  # before the trainer: it initialises the LoRA weights
    trainer = SFTTrainer(model=loaded.model, args=args, train_dataset=dataset, processing_class=loaded.tokenizer,
                         callbacks=[*make_callbacks(run_dir / lifecycle.LOG), *extra_callbacks],
                         **loaded.trainer_kwargs())
    info = {**info, "backend": plan.backend, "model": cfg.model.name, "base_model": model_path, "lora": plan.lora,
            "seed": cfg.seed, "examples": report,
            "batch": {"examples_per_step": plan.batch.questions_per_step, "grad_accum": plan.batch.grad_accum,
                      "processes": plan.processes}}
    info["ran"] = backends.record_ran(run_dir, trainer)
    return lifecycle.fit(trainer, loaded.tokenizer, run_dir, resume_from, info, cfg)


def run(cfg: Any, run_dir: Path, *, extra_callbacks: Sequence[Any] = ()) -> dict:
    """SFT on the training set's reference solutions."""
    run_dir = Path(run_dir)
    plan, done = lifecycle.start(cfg, run_dir, "sft")
    if done is not None:
        return done
    records = lifecycle.trainset_stage(cfg, run_dir)
    pairs, missing = targets_from_data(records, cfg.sft.target, cfg.sft.add_box)
    if missing and lifecycle.is_main():
        console.print(f"{sum(missing.values())} problem(s) have no {cfg.sft.target} and are left out ({missing})",
                      markup=False)
    if not pairs and cfg.sft.target == "reference":
        from xling.data.trainset import pivot_hint

        raise XlingError(f"`reference`: no problem in the training set has one to learn from; write them with: "
                         f"{pivot_hint(cfg.data)}")
    if not pairs:
        raise XlingError(f"no problem in the training set has a '{cfg.sft.target}' to learn from (data.source="
                         f"{cfg.data.source}); use a source with solutions (math, gsm8k, synth) or sft.target=reference")
    info = fit_sft(cfg, run_dir, plan, pairs, {"method": "sft", "missing_target": missing}, extra_callbacks)
    return lifecycle.summary(run_dir, info)
