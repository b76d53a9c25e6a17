"""Task `train-rft`: rejection fine-tuning — sample k answers per problem, keep the correct ones, SFT.

Sections: model, data (xling.trainset), train, lora, sft, rft; `resume`. The work is in
`xling.train.rft`; samples are graded by the one grader (`xling.answers`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..config import Invalid
from ..train.config import RESUMABLE_CHANGES, RftConfig, SftConfig, TrainRecipe, batch_plan

RESUMABLE = RESUMABLE_CHANGES  # run.py lets these keys change in a run folder: the run resumes


@dataclass(kw_only=True)
class Config(TrainRecipe):
    sft: SftConfig = field(default_factory=SftConfig)
    rft: RftConfig = field(default_factory=RftConfig)

    def check(self) -> None:
        super().check()
        batch_plan(self.train, 1)
        if self.rft.keep > self.rft.samples:
            raise Invalid("rft.keep", f"keeps more answers ({self.rft.keep}) than are sampled ({self.rft.samples})")


def describe_plan(cfg: Config) -> list[str]:
    """The plan --dry-run prints: steps, rollouts, tokens, GPU-hours, peak VRAM (estimates)."""
    from ..plan import describe

    return describe(cfg)


def run(cfg: Config, run_dir: Path) -> dict:
    from ..train import rft

    return rft.run(cfg, run_dir)
