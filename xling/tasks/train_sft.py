"""Task `train-sft`: supervised fine-tuning on the training set's reference solutions (the SFT baseline).

Sections: model, data (xling.data.trainset), train, lora, sft; `resume`. The work is in `xling.train.sft`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from xling.train.config import RESUMABLE_CHANGES, SftConfig, TrainRecipe
from xling.planning.batches import batch_plan

RESUMABLE = RESUMABLE_CHANGES  # run.py lets these keys change in a run folder: the run resumes


@dataclass(kw_only=True)
class Config(TrainRecipe):
    sft: SftConfig = field(default_factory=SftConfig)  # what SFT learns to write

    def check(self) -> None:
        super().check()
        batch_plan(self.train, 1)


def describe_plan(cfg: Config) -> list[str]:
    """The plan --dry-run prints: steps, rollouts, tokens, GPU-hours, peak VRAM (estimates)."""
    from xling.planning.plan import describe

    return describe(cfg)


def run(cfg: Config, run_dir: Path) -> dict:
    from xling.train import sft

    return sft.run(cfg, run_dir)
