"""Task `train-sft`: supervised fine-tuning on the training set's reference solutions (the SFT baseline).

Sections: model, data (xling.trainset), train, lora, sft; `resume`. The work is in `xling.train.sft`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..train.config import SftConfig, TrainRecipe, batch_plan


@dataclass(kw_only=True)
class Config(TrainRecipe):
    sft: SftConfig = field(default_factory=SftConfig)

    def check(self) -> None:
        super().check()
        batch_plan(self.train, 1)


def run(cfg: Config, run_dir: Path) -> dict:
    from ..train import sft

    return sft.run(cfg, run_dir)
