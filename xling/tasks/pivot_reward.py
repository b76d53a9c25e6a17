"""Task `pivot-reward`: PB-RLSVR, GRPO rewarded by semantic equivalence to a pivot model's English answer.

Stages: the reward models are loaded and checked against the training languages (an unloadable
embedding model stops the run before anything else), the pivot stage writes the English reference
answers of the training set (`xling.tasks.pivot`; cached per problem, so a re-run or a second
recipe on the same data writes nothing again), then GRPO trains exactly as `train-grpo` does with
`data.references` pointing at them. The reward must be a semantic one (`pivot`, `pivot-format`,
`pivot-translate`, or a `rewards.weights` mix with `pivot` / `pivot_translate`); a mix that gives
`accuracy` a weight other than 0 would use gold labels and is refused (weight 0: logged only).
With vLLM the pivot stage runs in its own process, so that its GPU memory is free for training.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from xling.common.config import Invalid
from xling.common.errors import XlingError
from xling.train.config import RESUMABLE_CHANGES
from xling.tasks.pivot import PivotConfig
from xling.tasks.train_grpo import Config as GrpoTaskConfig

RESUMABLE = RESUMABLE_CHANGES
SEMANTIC = ("pivot", "pivot_translate")


@dataclass(kw_only=True)
class Config(GrpoTaskConfig):
    pivot: PivotConfig = field(default_factory=PivotConfig)  # the pivot model writing the English references

    def check(self) -> None:
        super().check()
        from xling.train.rewards import REWARD_SETS

        mix = self.rewards.weights or REWARD_SETS.get(self.rewards.set, {})
        if not any(mix.get(name) for name in SEMANTIC):
            raise Invalid("rewards.set", "pivot-reward trains with a semantic reward: use rewards.set=pivot, "
                          "pivot-format or pivot-translate (or rewards.weights with pivot or pivot_translate)")
        if mix.get("accuracy"):
            raise Invalid("rewards.set", "the accuracy reward reads gold labels, which PB-RLSVR does without; "
                          "drop it (weight 0 only logs it), or train with gold labels in train-grpo")
        if self.data.references:
            raise Invalid("data.references", "is written by this recipe's pivot stage; leave it out (or train with "
                          "train-grpo and data.references=DIR)")


def check_reward_models(cfg: Config) -> None:
    from xling.train.rewards import load_models

    load_models(cfg.rewards.mix(), cfg.data.languages(), **cfg.rewards.options())


def pivot_in_subprocess(run_dir: Path) -> None:
    """The pivot stage in a fresh process (vLLM then frees all its GPU memory on exit)."""
    import os

    from xling.common.config import ROOT

    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    code = subprocess.run([sys.executable, "-m", "xling.tasks.pivot_reward", str(Path(run_dir).resolve())],
                          env=env).returncode
    if code != 0:
        raise XlingError(f"the pivot stage stopped (exit code {code}); see the messages above. Run the same command "
                         "again to continue: written references are kept")


def describe_plan(cfg: Config) -> list[str]:
    """The plan --dry-run prints: the GRPO run's (estimates); the pivot stage comes on top."""
    from xling.planning.plan import estimate_training

    est = estimate_training(cfg)
    est.assumptions.append("not counted either: the pivot stage (an English reference answer per problem) and the "
                           "reward's embedding or translation model")
    return est.lines()


def run(cfg: Config, run_dir: Path) -> dict:
    from xling.train import grpo, lifecycle
    from xling.tasks import pivot as stage

    run_dir = Path(run_dir)
    report: dict = {}
    # Always: the references are cached per problem (a finished run generates nothing), and the finished
    # model is recognised by its recipe, which includes where its references came from.
    check_reward_models(cfg)
    with lifecycle.main_first():
        if stage.backend_of(cfg.pivot) == "vllm":
            pivot_in_subprocess(run_dir)  # then everything is cached: nothing loads vLLM here
        folder, report = stage.stage(cfg.data, cfg.pivot, cfg.seed, run_dir if lifecycle.is_main() else None)
    cfg.data.references = str(folder)
    metrics = grpo.run(cfg, run_dir)
    return {**metrics, "pivot": report} if report else metrics


def main(argv: list[str] | None = None) -> int:
    """`python -m xling.tasks.pivot_reward RUN_DIR`: the pivot stage of the pivot-reward run in RUN_DIR."""
    from xling.common.console import module_main
    from xling.runs.folder import run_recipe
    from xling.tasks import pivot as stage

    run_dir = Path((sys.argv[1:] if argv is None else argv)[0])

    def work() -> None:
        cfg = run_recipe(run_dir, Config)
        stage.stage(cfg.data, cfg.pivot, cfg.seed, run_dir)

    return module_main(work)


if __name__ == "__main__":
    sys.exit(main())
