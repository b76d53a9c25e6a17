"""A sweep's executors: the stages of a plan run, each an ordinary run (`python run.py STAGE.yaml`).

In: the stages still to run (`xling.studies.sweep.Stage`, in an order where a stage comes after those it
needs). Out: their run folders, filled by `run_local` (one after another, in child processes or in this
one), `run_gpus` (one member per visible GPU at once) or `run_slurm` (each stage a job through submitit);
a stage that fails stops the sweep with one line naming it (`StageFailed`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Mapping

from xling.common.config import ROOT
from xling.common.console import console
from xling.common.errors import InterruptReported, XlingError
from xling.studies.sweep import Stage

def _die_with_parent() -> None:
    """In the child: be killed when the sweep process dies (Linux), so a killed sweep leaves no stage running."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def stage_env(gpus: list[str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])])
    if gpus is not None:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
    return env


class StageFailed(XlingError):
    pass


def _failure(stage: Stage, rc: int, log: Path | None = None) -> StageFailed:
    what = {"train": "training", "eval": "evaluation", "base": "evaluation of the base model"}[stage.kind]
    where = f"; its output is in {log}" if log else "; its message is above"
    cause = f"exit {rc}" if rc >= 0 else f"killed by signal {-rc}"
    return StageFailed(f"{stage.member}: {what} stopped ({cause}){where}. Fix what it says and run the same command "
                       "again: finished stages are kept and the rest resumes")


def run_local(stages: list[Stage], accelerate_config: str | None, processes: int, isolate: bool = True) -> None:
    """One stage after another, whose output goes to the terminal: each in a child process (`isolate`: what
    a GPU wants, so that every stage starts with all of its memory), or in this process (a CPU run, where
    starting the libraries again for every stage would cost more than the stage). Full-parameter stages
    over several GPUs (accelerate launch) always get processes of their own."""
    for i, stage in enumerate(stages, 1):
        console.rule(f"[{i}/{len(stages)}] {stage.id}", style="dim")
        if isolate or (stage.accelerate and accelerate_config and processes > 1):
            proc = subprocess.Popen(stage.command(accelerate_config, processes), env=stage_env(),
                                    preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
            try:
                rc = proc.wait()
            except KeyboardInterrupt:  # the child got the Ctrl-C too, and says so
                proc.wait()
                raise InterruptReported from None
        else:
            rc = _run_here(stage)
        if rc == 130:  # the stage stopped on a Ctrl-C and said so
            raise InterruptReported
        if rc != 0:
            raise _failure(stage, rc)


def _run_here(stage: Stage) -> int:
    """`python run.py FILE` in this process: its exit code (an unexpected crash: 1, with its traceback)."""
    import gc
    import traceback

    from xling.runs.cli import main

    try:
        return main([str(stage.file), *stage.flags()])
    except Exception:  # a bug, not bad input: show it as a child process would, then stop the sweep
        traceback.print_exc()
        return 1
    finally:
        gc.collect()


def visible_gpus(given: list[str]) -> list[str]:
    if given:
        return [str(g) for g in given]
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None and env.strip():
        return [g.strip() for g in env.split(",") if g.strip()]
    from xling.common.versions import cuda_available

    if cuda_available():
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    return []


def run_gpus(stages: list[Stage], gpus: list[str], per_stage: int, accelerate_config: str | None,
             done: set[str], poll: float = 0.5) -> None:
    """Stages at once, each on its own `per_stage` GPUs (CUDA_VISIBLE_DEVICES), as soon as what they need is done.

    A stage's output goes to RUN/../NAME.log. A failed stage stops nothing else; the failures are
    reported when no more stage can start.
    """
    if len(gpus) < per_stage:
        raise XlingError(f"sweep.executor=gpus needs {per_stage} GPU(s) per member but sees {len(gpus)} "
                         f"({','.join(gpus) or 'none'}); set CUDA_VISIBLE_DEVICES or sweep.gpus, or use "
                         "sweep.executor=local")
    free = list(gpus)
    waiting = list(stages)
    running: dict[str, tuple[Stage, subprocess.Popen, list[str], Path, float, Any]] = {}
    failed: list[StageFailed] = []
    blocked: set[str] = set()
    while waiting or running:
        for stage in list(waiting):
            if any(n in blocked for n in stage.needs):
                waiting.remove(stage)
                blocked.add(stage.id)
                continue
            if len(free) < per_stage or not all(n in done for n in stage.needs):
                continue
            use, free = free[:per_stage], free[per_stage:]
            log = stage.run_dir.parent / f"{stage.run_dir.name}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            handle = open(log, "ab")
            proc = subprocess.Popen(stage.command(accelerate_config, per_stage), env=stage_env(use), stdout=handle,
                                    stderr=subprocess.STDOUT,
                                    preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
            running[stage.id] = (stage, proc, use, log, time.monotonic(), handle)
            waiting.remove(stage)
            console.print(f"{stage.id}: started on GPU {','.join(use)} (log: {log})", markup=False)
        for sid, (stage, proc, use, log, t0, handle) in list(running.items()):
            rc = proc.poll()
            if rc is None:
                continue
            handle.close()
            del running[sid]
            free += use
            minutes = (time.monotonic() - t0) / 60
            if rc == 0:
                done.add(sid)
                console.print(f"{sid}: finished in {minutes:.1f} min", markup=False)
            else:
                blocked.add(sid)
                failed.append(_failure(stage, rc, log))
                console.print(f"{sid}: failed (exit {rc}) after {minutes:.1f} min; see {log}", markup=False)
        if waiting and not running and not any(
                all(n in done for n in s.needs) and not any(n in blocked for n in s.needs) for s in waiting):
            break
        time.sleep(poll)
    if failed:
        raise XlingError(f"{len(failed)} stage(s) failed: " + "; ".join(str(f).split(".")[0] for f in failed)
                         + ". Fix them and run the same command again: finished stages are kept")


def run_slurm(stages: list[Stage], options: Mapping[str, Any], folder: Path, accelerate_config: str | None,
              processes: int, done: set[str]) -> None:
    """Each stage a job through submitit (Slurm, or `cluster: local` for local processes), in waves by `needs`."""
    try:
        import submitit
    except ImportError:
        raise XlingError("sweep.executor=slurm needs submitit (pip install -r requirements.txt)") from None
    options = dict(options)
    cluster = options.pop("cluster", None)
    try:
        executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
        executor.update_parameters(**options)
    except (ValueError, NameError, AssertionError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise XlingError(f"sweep.slurm: {first}") from None
    todo = list(stages)
    while todo:
        wave = [s for s in todo if all(n in done for n in s.needs)]
        if not wave:
            raise XlingError(f"stages {', '.join(s.id for s in todo)} wait for stages that did not finish")
        jobs = []
        for stage in wave:
            executor.update_parameters(name=f"xling-{stage.id.replace('/', '-').replace(':', '-')}")
            job = executor.submit(subprocess.run, stage.command(accelerate_config, processes), env=stage_env(),
                                  check=False)
            console.print(f"{stage.id}: submitted as job {job.job_id}", markup=False)
            jobs.append((stage, job))
        failed = []
        for stage, job in jobs:
            try:
                rc = job.result().returncode
            except Exception as e:  # the job itself failed (cancelled, node failure, timeout)
                failed.append(f"{stage.id}: job {job.job_id} failed ({type(e).__name__}); see {folder}")
                continue
            if rc == 0:
                done.add(stage.id)
                console.print(f"{stage.id}: finished (job {job.job_id})", markup=False)
            else:
                failed.append(f"{stage.id}: exit {rc} (job {job.job_id}, log in {folder})")
        if failed:
            raise XlingError("; ".join(failed) + ". Fix them and run the same command again: finished stages are kept")
        todo = [s for s in todo if s not in wave]
