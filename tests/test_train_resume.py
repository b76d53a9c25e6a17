"""Checkpoints and resume: an interrupted GRPO run continues from its checkpoint and ends where an
uninterrupted one ends (bit-identical on CPU: set_seed before the trainer, steps_per_generation ==
gradient_accumulation_steps), with exactly max_steps steps whatever the kill point."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from xling.runs import folder
from xling.common.errors import XlingError
from xling.common.io import read_jsonl
from xling.tasks import train_grpo
from xling.train import checkpoints as CK
from xling.train import grpo
from helpers import with_overrides

pytestmark = pytest.mark.slow


class Crash(Exception):
    pass


def crash_after(step: int):
    from transformers import TrainerCallback

    class CrashAfterSave(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.global_step == step:
                raise Crash(f"crash after checkpoint-{step}")

    return CrashAfterSave()


def cfg(model, **over):
    data = {
        "task": "train-grpo", "seed": 3, "model": {"name": str(model)},
        "data": {"source": "synth", "n": 6, "langs": ["en", "fr"]},  # 6 steps an epoch: max_steps ends mid-epoch
        "train": {"backend": "peft", "learning_rate": 1e-2, "max_steps": 4, "questions_per_step": 2, "batch_size": 4,
                  "gradient_checkpointing": False, "save_steps": 2, "save_total_limit": None},
        "lora": {"r": 8, "alpha": 16, "targets": ["q_proj", "v_proj"]},
        "grpo": {"num_generations": 4, "max_completion_length": 16, "max_prompt_length": 512},
        "rewards": {"workers": 0, "min_chars": 1},
    }
    return with_overrides(train_grpo.Config, data, over)


REPO = Path(__file__).resolve().parent.parent
# Runs the GRPO run in a process that SIGKILLs itself right after checkpoint-STEP is on disk.
KILLED_AFTER_SAVE = """
import os, signal, sys
sys.path.insert(0, {tests!r})
from transformers import TrainerCallback
from test_train_resume import cfg
from xling.train import grpo

class KillAfterSave(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        if state.global_step == {step}:
            os.kill(os.getpid(), signal.SIGKILL)

grpo.run(cfg({model!r}), {run_dir!r}, extra_callbacks=[KillAfterSave()])
"""


def killed_after_save(model, run_dir, step: int) -> None:
    code = KILLED_AFTER_SAVE.format(tests=str(REPO / "tests"), model=str(model), run_dir=str(run_dir), step=step)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stdout[-2000:] + proc.stderr[-2000:]


def test_interrupted_run_resumes_to_the_same_weights(tiny_model, tmp_path):
    import torch
    from safetensors.torch import load_file

    whole = tmp_path / "whole"
    whole_metrics = grpo.run(cfg(tiny_model), whole)

    broken = tmp_path / "broken"
    with pytest.raises(Crash):
        grpo.run(cfg(tiny_model), broken, extra_callbacks=[crash_after(2)])
    assert (broken / "checkpoints" / "checkpoint-2" / "trainer_state.json").is_file()
    assert not (broken / "final").exists()
    assert [r["step"] for r in read_jsonl(broken / "train_log.jsonl") if "loss" in r] == [1, 2]

    # resumed, then SIGKILLed between its last checkpoint (4 = max_steps) and final/
    killed_after_save(tiny_model, broken, 4)
    assert (broken / "checkpoints" / "checkpoint-4" / "trainer_state.json").is_file()
    assert not (broken / "final").exists()

    metrics = grpo.run(cfg(tiny_model), broken)  # resume=auto: no step is left, none is trained again
    assert metrics["resumed_from_step"] == 4 and metrics["steps"] == 4
    a = load_file(whole / "final" / "adapter_model.safetensors")
    b = load_file(broken / "final" / "adapter_model.safetensors")
    start = load_file(whole / "checkpoints" / "checkpoint-2" / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), max((a[k] - b[k]).abs().max().item() for k in a)
    assert max((a[k] - start[k]).abs().max().item() for k in a) > 0  # steps 3-4 did train
    # the log holds each step once, with the same values as the uninterrupted run
    whole_log = [r for r in read_jsonl(whole / "train_log.jsonl") if "loss" in r]
    broken_log = [r for r in read_jsonl(broken / "train_log.jsonl") if "loss" in r]
    assert [r["step"] for r in broken_log] == [1, 2, 3, 4]
    assert [r["reward"] for r in broken_log] == [r["reward"] for r in whole_log]
    # the loss in metrics.json is the whole run's, as the trainer of the uninterrupted run reports it
    trainer_loss = next(r["train_loss"] for r in read_jsonl(whole / "train_log.jsonl") if "train_loss" in r)
    assert whole_metrics["train_loss"] == pytest.approx(trainer_loss, rel=1e-12, abs=0)
    assert metrics["train_loss"] == whole_metrics["train_loss"]


def test_resume_refuses_checkpoints_of_another_recipe_and_never_starts_over(tiny_model, tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(Crash):
        grpo.run(cfg(tiny_model, **{"train.max_steps": 2}), run_dir, extra_callbacks=[crash_after(2)])
    with pytest.raises(XlingError, match=r"were made by a different recipe \(differs in: lora.r\); add resume=never"):
        grpo.run(cfg(tiny_model, **{"train.max_steps": 2, "lora.r": 4}), run_dir)
    metrics = grpo.run(cfg(tiny_model, **{"train.max_steps": 2, "lora.r": 4, "resume": "never"}), run_dir)
    assert metrics["resumed_from_step"] is None and metrics["steps"] == 2
    assert json.loads((run_dir / "final" / "adapter_config.json").read_text())["r"] == 4
    with pytest.raises(XlingError, match=r"^resume=nowhere: not a checkpoint folder"):
        grpo.run(cfg(tiny_model, resume="nowhere"), tmp_path / "other")


def test_run_py_lets_a_run_continue_with_more_steps(tiny_model, tmp_path, monkeypatch, capsys):
    """Changing a resumable key (train.max_steps) reuses the folder through run.py; others are refused."""
    from xling.runs import cli

    monkeypatch.chdir(tmp_path)
    base = ["grpo-en", f"model.name={tiny_model}", "data.source=synth", "data.n=4", "data.langs=en",
            "train.backend=peft", "train.questions_per_step=2", "train.batch_size=4", "train.save_steps=1",
            "train.gradient_checkpointing=false", "grpo.num_generations=4", "grpo.max_completion_length=8",
            "rewards.workers=0", "out=r"]
    assert cli.main(base + ["train.max_steps=1"]) == 0, capsys.readouterr().err
    rc = cli.main(base + ["train.max_steps=2"])
    assert rc == 2 and "holds a finished run; train.max_steps only take(s) effect while a run is unfinished" \
        in capsys.readouterr().err
    # an interrupted run (checkpoint-1 kept, no final model yet) continues to the new step count
    import shutil

    shutil.rmtree(tmp_path / "r" / "final")
    (tmp_path / "r" / "metrics.json").unlink()
    assert (tmp_path / "r" / "checkpoints" / "checkpoint-1").is_dir()
    assert cli.main(base + ["train.max_steps=2"]) == 0, capsys.readouterr().err
    steps = [r["step"] for r in read_jsonl(tmp_path / "r" / "train_log.jsonl") if "loss" in r]
    assert steps == [1, 2]
    assert "resuming from" in capsys.readouterr().out
    rc = cli.main(base + ["train.max_steps=2", "lora.r=16"])
    assert rc == 2 and "holds work of a different recipe (differs in: lora.r)" in capsys.readouterr().err
    assert folder.default_out(cli.recipe_path("grpo-en"), ["train.max_steps=5"], train_grpo.RESUMABLE) == \
        folder.default_out(cli.recipe_path("grpo-en"), [], train_grpo.RESUMABLE)


def _damage(checkpoint: Path, how: str) -> None:
    if how == "truncated adapter":
        path = checkpoint / "adapter_model.safetensors"
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif how == "truncated optimizer":
        path = checkpoint / "optimizer.pt"
        path.write_bytes(path.read_bytes()[:-100])
    elif how == "garbage state":
        (checkpoint / "trainer_state.json").write_text("{garbage", encoding="utf-8")
    else:
        (checkpoint / how).unlink()


@pytest.mark.parametrize("how, problem", [
    ("optimizer.pt", "optimizer.pt is missing"), ("scheduler.pt", "scheduler.pt is missing"),
    ("rng_state.pth", "rng_state.pth is missing"), ("trainer_state.json", "trainer_state.json is missing"),
    ("adapter_model.safetensors", "adapter_model.safetensors is missing"),
    ("adapter_config.json", "adapter_config.json is missing"),
    ("truncated adapter", "adapter_model.safetensors is damaged"),
    ("truncated optimizer", "optimizer.pt is damaged"), ("garbage state", "trainer_state.json is damaged"),
])
def test_a_checkpoint_missing_or_damaging_a_file_is_not_complete(trained_checkpoints, tmp_path, how, problem):
    import shutil

    folder = tmp_path / "checkpoints"
    shutil.copytree(trained_checkpoints, folder)
    assert CK.checkpoint_problem(folder / "checkpoint-4") is None
    _damage(folder / "checkpoint-4", how)
    assert CK.checkpoint_problem(folder / "checkpoint-4").startswith(problem)
    assert [p.name for p in CK.checkpoints(folder)] == ["checkpoint-2"]
    assert [(p.name, why) for p, why in CK.damaged_checkpoints(folder)] == \
        [("checkpoint-4", CK.checkpoint_problem(folder / "checkpoint-4"))]


@pytest.fixture(scope="module")
def trained_checkpoints(tiny_model, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("trained")
    grpo.run(cfg(tiny_model), run_dir)
    return run_dir / "checkpoints"


def test_a_damaged_last_checkpoint_resumes_from_the_one_before_to_the_same_weights_and_loss(
        tiny_model, tmp_path, capsys):
    """optimizer.pt removed, adapter cut short: the run says so and continues from the checkpoint before,
    ending where an uninterrupted run ends, with the same loss in metrics.json (a loss logged every 3
    steps: the steps after the last log count too)."""
    import shutil

    import torch
    from safetensors.torch import load_file

    over = {"train.max_steps": 6, "train.logging_steps": 3}
    whole = tmp_path / "whole"
    whole_metrics = grpo.run(cfg(tiny_model, **over), whole)
    trainer_loss = next(r["train_loss"] for r in read_jsonl(whole / "train_log.jsonl") if "train_loss" in r)
    assert whole_metrics["train_loss"] == pytest.approx(trainer_loss, rel=1e-9)

    broken = tmp_path / "broken"
    with pytest.raises(Crash):
        grpo.run(cfg(tiny_model, **over), broken, extra_callbacks=[crash_after(4)])
    a = load_file(whole / "final" / "adapter_model.safetensors")
    for how, problem in (("optimizer.pt", "optimizer.pt is missing"),
                         ("truncated adapter", "adapter_model.safetensors is damaged")):
        run_dir = tmp_path / how.replace(" ", "-")
        shutil.copytree(broken, run_dir)
        _damage(run_dir / "checkpoints" / "checkpoint-4", how)
        with pytest.raises(XlingError, match=rf"^resume=.*checkpoint-4: {problem}.*; give resume=auto"):
            grpo.run(cfg(tiny_model, **over, resume=str(run_dir / "checkpoints" / "checkpoint-4")), run_dir)
        capsys.readouterr()
        metrics = grpo.run(cfg(tiny_model, **over), run_dir)
        err = capsys.readouterr().err
        assert f"warning: cannot resume from checkpoint-4: {problem}" in err and "; resuming from checkpoint-2" in err
        assert metrics["resumed_from_step"] == 2 and metrics["steps"] == 6
        b = load_file(run_dir / "final" / "adapter_model.safetensors")
        assert all(torch.equal(a[k], b[k]) for k in a), max((a[k] - b[k]).abs().max().item() for k in a)
        assert metrics["train_loss"] == whole_metrics["train_loss"]
        assert loop_checkpoints(run_dir) == ["checkpoint-2", "checkpoint-4", "checkpoint-6"]  # rewritten whole

    # resume=never starts over even where a complete checkpoint is left
    shutil.copytree(broken, tmp_path / "never")
    _damage(tmp_path / "never" / "checkpoints" / "checkpoint-4", "optimizer.pt")
    metrics = grpo.run(cfg(tiny_model, **over, resume="never"), tmp_path / "never")
    assert metrics["resumed_from_step"] is None and metrics["steps"] == 6
    assert "cannot resume" not in capsys.readouterr().err


def loop_checkpoints(run_dir: Path) -> list[str]:
    return [p.name for p in CK.checkpoints(run_dir / "checkpoints")]
