"""Task `train-rft`: rejection fine-tuning — sample k answers per problem, keep the correct ones, SFT.

Sections: model, data (xling.data.trainset), train, lora, sft, rft; `resume`. The work is in
`xling.train.rft`; samples are graded by the one grader (`xling.grading.answers`).
"""

from __future__ import annotations

from pathlib import Path

from xling.train.config import RESUMABLE_CHANGES, RftRecipe

RESUMABLE = RESUMABLE_CHANGES  # run.py lets these keys change in a run folder: the run resumes


Config = RftRecipe


def describe_plan(cfg: Config) -> list[str]:
    """The plan --dry-run prints: steps, rollouts, tokens, GPU-hours, peak VRAM (estimates)."""
    from xling.planning.plan import describe

    return describe(cfg)


def run(cfg: Config, run_dir: Path) -> dict:
    from xling.train import rft

    return rft.run(cfg, run_dir)
