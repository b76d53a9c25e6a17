"""How a training step is cut into micro-batches: gradient accumulation, questions and completions per step, processes."""

from __future__ import annotations

import os
from dataclasses import dataclass

from xling.common.config import Invalid


def world_size() -> int:
    """Processes of this run: WORLD_SIZE under `accelerate launch`, else 1."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


@dataclass(frozen=True)
class BatchPlan:
    grad_accum: int
    questions_per_step: int
    completions_per_step: int
    processes: int


def batch_plan(train, generations: int = 1, processes: int | None = None) -> BatchPlan:
    """Gradient accumulation and step sizes of a training section (`train.*`), or Invalid naming the key to change."""
    procs = processes or world_size()
    micro = train.batch_size * procs
    if train.grad_accum is None:
        total = train.questions_per_step * generations
        if total % micro:
            what = (f"train.questions_per_step × grpo.num_generations = {train.questions_per_step} × {generations} "
                    f"= {total} completions" if generations > 1 else f"train.questions_per_step = {total} examples")
            divisors = [d for d in range(1, min(total, 64) + 1) if total % (d * procs) == 0]
            raise Invalid("train.batch_size",
                          f"a step holds {what}, which micro-batches of train.batch_size × processes = "
                          f"{train.batch_size} × {procs} = {micro} do not divide; "
                          f"use a batch_size among {', '.join(map(str, divisors[-6:]))}")
        return BatchPlan(total // micro, train.questions_per_step, total, procs)
    total = micro * train.grad_accum
    if total % generations:
        raise Invalid("train.grad_accum",
                      f"train.batch_size × processes × train.grad_accum = {train.batch_size} × {procs} × "
                      f"{train.grad_accum} = {total} completions per step is not divisible by "
                      f"grpo.num_generations = {generations}: each question needs all of its rollouts in one step; "
                      f"make it a multiple of {generations}")
    return BatchPlan(train.grad_accum, total // generations, total, procs)
