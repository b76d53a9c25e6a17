"""An estimate's record and how it reads: what a run will cost, in numbers and in lines for the terminal.

In: the numbers `xling.planning.plan` computes (steps, rollouts, tokens, hours, memory terms, assumptions).
Out: an `Estimate` (`as_dict` for metrics.json, `summary` in one line, `lines` for --dry-run, `total` of a
sweep's members) and the formats of its numbers (`duration`: 12.3 s, 4.5 min, 2.1 h).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Sequence

@dataclass
class Estimate:
    """What a run will cost (estimates). Memory in GiB; `gpu_hours` are CPU-hours on the CPU."""

    label: str  # what is planned, e.g. "GRPO Qwen/Qwen2.5-1.5B-Instruct, unsloth LoRA r=32, vLLM 0.5"
    method: str  # grpo | sft | rft | evaluate | total
    gpu: str  # the GPU table's name, or "cpu"
    device: str  # the device in words
    gpus: int = 1
    steps: int = 0  # optimizer steps
    rollouts: int = 0  # completions generated
    generated_tokens: int = 0
    trained_tokens: int = 0
    hours: float = 0.0  # wall-clock
    step_seconds: float | None = None
    peak_vram_gib: float = 0.0  # peak GPU memory per GPU (CPU: RAM)
    memory_gib: float = 0.0  # the device's memory
    fits: bool = True
    exact: bool = True  # False: the model's shape was guessed; memory is then never enforced
    memory: dict[str, float] = field(default_factory=dict)  # the terms of the peak, GiB
    details: list[str] = field(default_factory=list)  # how steps and tokens were counted
    assumptions: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # why it does not fit

    @property
    def on_cpu(self) -> bool:
        return self.gpu == "cpu"

    @property
    def gpu_hours(self) -> float:
        return self.hours * self.gpus

    def as_dict(self) -> dict:
        out = asdict(self)
        out["gpu_hours"] = self.gpu_hours
        return out

    def summary(self) -> str:
        """One line: steps, rollouts, tokens, hours, peak memory."""
        unit = "CPU-hours" if self.on_cpu else "GPU-hours"
        mem = "RAM" if self.on_cpu else "VRAM"
        fit = "fits" if self.fits else "DOES NOT FIT"
        return (f"{self.steps:,} steps, {self.rollouts:,} rollouts, ~{count_text(self.generated_tokens)} tokens "
                f"generated, ~{count_text(self.trained_tokens)} trained, ~{hours_text(self.gpu_hours)} {unit}, peak {mem} "
                f"~{gib_text(self.peak_vram_gib)} of {self.memory_gib:.1f} GiB ({fit})")

    def lines(self) -> list[str]:
        """The first line is the whole plan in one line (a sweep lists one per member); then how it was counted,
        the memory terms and the assumptions."""
        gpus = f" x {self.gpus}" if self.gpus > 1 else ""
        out = [f"plan of {self.label}, on {self.device}{gpus}: {self.summary()}",
               "  estimates, not measurements (the assumptions are listed below)"]
        out += [f"  {d}" for d in self.details]
        if self.step_seconds:
            out.append(f"  time per step ~{duration(self.step_seconds)}")
        if self.memory:
            terms = ", ".join(f"{k} {gib_text(v)}" for k, v in self.memory.items())
            out.append(f"  peak {'RAM' if self.on_cpu else 'VRAM'} (GiB): {terms}")
        out += [f"  does not fit: {p}" for p in self.problems]
        if self.assumptions:
            out.append("  assumptions:")
            out += [f"    - {a}" for a in self.assumptions]
        return out

    @staticmethod
    def total(estimates: Sequence["Estimate"]) -> "Estimate":
        """A sweep's totals: steps, rollouts, tokens and GPU-hours added (as `hours`, members run one after
        another); the largest peak; fits if every member fits; the assumptions of all, once each."""
        ests = list(estimates)
        gpus = {e.gpu for e in ests}
        devices = {e.device for e in ests}
        worst = max(ests, key=lambda e: e.peak_vram_gib, default=None)
        return Estimate(
            label=f"{len(ests)} run(s)", method="total",
            gpu=gpus.pop() if len(gpus) == 1 else "mixed", device=devices.pop() if len(devices) == 1 else "several",
            steps=sum(e.steps for e in ests), rollouts=sum(e.rollouts for e in ests),
            generated_tokens=sum(e.generated_tokens for e in ests), trained_tokens=sum(e.trained_tokens for e in ests),
            hours=sum(e.gpu_hours for e in ests), peak_vram_gib=worst.peak_vram_gib if worst else 0.0,
            memory_gib=worst.memory_gib if worst else 0.0, fits=all(e.fits for e in ests),
            exact=all(e.exact for e in ests), assumptions=list(dict.fromkeys(a for e in ests for a in e.assumptions)),
            problems=list(dict.fromkeys(p for e in ests for p in e.problems)),
        )


def flop_text(x: float) -> str:
    for unit, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6)):
        if x >= scale:
            return f"{x / scale:.3g} {unit}FLOP"
    return f"{x:.3g} FLOP"


def count_text(n: float) -> str:
    if n >= 1e9:
        return f"{n / 1e9:.2f}B"
    if n >= 1e6:
        return f"{n / 1e6:.1f}M"
    if n >= 1e3:
        return f"{n / 1e3:.1f}k"
    return f"{n:.0f}"


def gib_text(x: float) -> str:
    return f"{x:.1f}" if x >= 1 else f"{x:.2f}" if x >= 0.01 else f"{x:.3f}"


def hours_text(h: float) -> str:
    return f"{h:.0f}" if h >= 10 else f"{h:.2f}" if h >= 0.1 else f"{h:.2g}"


def duration(seconds: float) -> str:
    """12.3 s, 4.5 min, 2.1 h."""
    if seconds < 90:
        return f"{seconds:.1f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"

