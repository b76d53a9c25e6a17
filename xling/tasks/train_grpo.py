"""Task `train-grpo`: GRPO on a training set with the paper's rewards (LoRA/QLoRA or full-parameter).

Sections: model, data (xling.data.trainset), train, lora, vllm, grpo, rewards; `resume`. The work is
in `xling.train.grpo`; this module only declares the keys and checks them across sections.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from xling.common.config import Invalid
from xling.train.config import RESUMABLE_CHANGES, GrpoConfig, RewardsConfig, TrainRecipe, VllmConfig
from xling.planning.batches import batch_plan

RESUMABLE = RESUMABLE_CHANGES  # run.py lets these keys change in a run folder: the run resumes


@dataclass(kw_only=True)
class Config(TrainRecipe):
    vllm: VllmConfig = field(default_factory=VllmConfig)  # vLLM for the rollouts
    grpo: GrpoConfig = field(default_factory=GrpoConfig)  # rollouts and the GRPO objective
    rewards: RewardsConfig = field(default_factory=RewardsConfig)  # the rewards and how answers are graded

    def check(self) -> None:
        super().check()
        batch_plan(self.train, self.grpo.num_generations)
        need = self.grpo.max_prompt_length + self.grpo.max_completion_length
        if self.vllm.max_model_len is not None and self.vllm.max_model_len < need:
            raise Invalid("vllm.max_model_len", f"{self.vllm.max_model_len} is below grpo.max_prompt_length + "
                          f"grpo.max_completion_length = {need}; raise it or leave it null")
        if self.train.backend == "unsloth" and self.vllm.mode == "server":
            raise Invalid("vllm.mode", "train.backend=unsloth runs its own vLLM engine; use vllm.mode=colocate")


def describe_plan(cfg: Config) -> list[str]:
    """The plan --dry-run prints: steps, rollouts, tokens, GPU-hours, peak VRAM (estimates)."""
    from xling.planning.plan import describe

    return describe(cfg)


def run(cfg: Config, run_dir: Path) -> dict:
    from xling.train import grpo

    return grpo.run(cfg, run_dir)
