"""Task `smoke`: the proof that the training path runs, on CPU in about a minute.

It builds the tiny random model (`xling.models.tiny`) into the run folder, runs a handful of GRPO steps
with the real reward functions (`paper` set: accuracy, format, language) on the built-in `synth`
problems in two languages through the same code as `train-grpo`, saves the adapter, then loads it
back with PEFT on the tiny model and generates once. It prints what it did and the per-language
metrics. Nothing is downloaded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from xling.common.config import Invalid, Recipe
from xling.common.console import console
from xling.data.languages import LANGUAGES, unknown_language_message


@dataclass(kw_only=True)
class Config(Recipe):
    langs: list[str] = field(default_factory=lambda: ["en", "de"])  # training languages: English and one more
    n: int = 8  # synth problems per language
    steps: int = 4  # GRPO optimizer steps
    backend: Literal["peft", "full"] = "peft"  # train a LoRA adapter (peft) or every weight (full)
    num_generations: int = 4  # rollouts per question
    max_completion_length: int = 24  # new tokens per rollout at most
    rewards: str = "paper"  # the reward set (xling.train.rewards.REWARD_SETS)

    def check(self) -> None:
        if len(self.langs) < 1:
            raise Invalid("langs", "give at least one language, e.g. langs=en,de")
        for code in self.langs:
            if code not in LANGUAGES:
                raise Invalid("langs", unknown_language_message(code))
        for key in ("n", "steps", "max_completion_length"):
            if getattr(self, key) < 1:
                raise Invalid(key, "must be at least 1")
        if self.num_generations < 2:
            raise Invalid("num_generations", "GRPO needs at least 2")
        from xling.train.config import RewardsConfig

        try:  # the reward set is checked here, before any data is built, as train-grpo checks rewards.set
            RewardsConfig(set=self.rewards).check()
        except Invalid as e:
            raise Invalid("rewards", e.message) from None


def grpo_config(cfg: Config):
    """The train-grpo recipe the smoke run trains with: tiny model, synth data, CPU-sized."""
    from xling.data.trainset import TrainData
    from xling.train.config import GrpoConfig, LoraConfig, ModelConfig, RewardsConfig, TrainConfig, VllmConfig
    from xling.tasks.train_grpo import Config as GrpoTask

    task = GrpoTask(
        task="train-grpo", description="smoke", out=cfg.out, seed=cfg.seed,
        model=ModelConfig(name="tiny"),
        data=TrainData(source="synth", n=cfg.n, langs=list(cfg.langs), seed=cfg.seed),
        train=TrainConfig(backend=cfg.backend, learning_rate=1e-3, max_steps=cfg.steps, questions_per_step=2,
                          batch_size=cfg.num_generations, precision="fp32", gradient_checkpointing=False,
                          save_steps=2, save_total_limit=1),
        lora=LoraConfig(r=8, alpha=16, targets=["q_proj", "k_proj", "v_proj", "o_proj"]),
        vllm=VllmConfig(enabled=False),
        grpo=GrpoConfig(num_generations=cfg.num_generations, max_completion_length=cfg.max_completion_length,
                        max_prompt_length=512),
        rewards=RewardsConfig(set=cfg.rewards, workers=0, min_chars=1),  # judge even short random text
    )
    task.check()
    return task


def reload_and_generate(run_dir: Path, backend: str, lang: str) -> dict:
    """Load final/ the way a user would (PEFT adapter on the base model, or the full model) and generate once."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from xling.data.prompts import build_messages, render

    final, base = run_dir / "final", run_dir / "tiny-model"
    tokenizer = AutoTokenizer.from_pretrained(final)
    if backend == "full":
        model = AutoModelForCausalLM.from_pretrained(final)
        before = AutoModelForCausalLM.from_pretrained(base).state_dict()
        after = model.state_dict()
        changed = max((after[k].float() - before[k].float()).abs().max().item() for k in after if k in before)
    else:
        from peft import PeftModel

        model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), final)
        changed = max(p.abs().max().item() for n, p in model.named_parameters() if "lora_B" in n)
    prompt = render(build_messages({"question": "What is 2 + 3?", "lang": lang}, prefix=True), tokenizer)
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    torch.manual_seed(0)
    with torch.inference_mode():
        out = model.generate(**ids, max_new_tokens=12, do_sample=True, pad_token_id=tokenizer.pad_token_id)
    text = tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
    return {"ok": True, "weights_changed_max_abs": changed, "generated": text}


def describe_plan(cfg: Config) -> list[str]:
    """The plan --dry-run prints: that of the train-grpo recipe the smoke run trains with (estimates)."""
    from xling.planning.plan import describe

    return describe(grpo_config(cfg))


def run(cfg: Config, run_dir: Path) -> dict:
    from xling.train import grpo

    t0 = time.time()
    task = grpo_config(cfg)
    console.print(f"smoke: GRPO ({cfg.backend}) on a tiny random Qwen2, {cfg.steps} steps, synth problems in "
                  f"{', '.join(cfg.langs)}, rewards '{cfg.rewards}'", markup=False)
    metrics = grpo.run(task, run_dir)
    reload = reload_and_generate(Path(run_dir), cfg.backend, cfg.langs[-1])
    wall = time.time() - t0
    console.print(f"smoke: built {run_dir}/tiny-model, trained {metrics.get('steps')} steps on "
                  f"{metrics.get('prompts', {}).get('kept')} prompts, saved {metrics.get('final')}", markup=False)
    console.print(f"smoke: reloaded final/ ({'PEFT adapter' if cfg.backend == 'peft' else 'full model'}; "
                  f"weights changed by up to {reload['weights_changed_max_abs']:.2e}) and generated: "
                  f"{reload['generated']!r}", markup=False)
    console.print(f"smoke: OK in {wall:.1f} s", markup=False)
    return {**metrics, "reload": reload, "smoke_wall_s": round(wall, 2)}
