"""Training recipes: bad configurations get one-line errors naming the key, before TRL sees them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from xling.runs import cli
from xling.common.config import build
from xling.common.errors import ConfigError, XlingError
from xling.tasks import train_grpo, train_rft, train_sft
from xling.train import backends
from xling.planning.batches import batch_plan
from helpers import with_overrides

ROOT = Path(__file__).resolve().parent.parent


def grpo_cfg(**over):
    data = {"task": "train-grpo", "model": {"name": "tiny"}, "data": {"source": "synth", "n": 4, "langs": ["en"]},
            "train": {"questions_per_step": 2, "batch_size": 4}, "grpo": {"num_generations": 4}}
    return with_overrides(train_grpo.Config, data, over)


def dry_run_error(capsys, monkeypatch, tmp_path, *args) -> str:
    monkeypatch.chdir(tmp_path)
    assert cli.main(["grpo-en", *args, "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err.strip()


def test_batch_not_divisible_by_the_rollouts(capsys, monkeypatch, tmp_path):
    err = dry_run_error(capsys, monkeypatch, tmp_path, "train.questions_per_step=3", "grpo.num_generations=4",
                        "train.batch_size=5")
    assert err == ("error: recipe key 'train.batch_size': a step holds train.questions_per_step × "
                   "grpo.num_generations = 3 × 4 = 12 completions, which micro-batches of train.batch_size × "
                   "processes = 5 × 1 = 5 do not divide; use a batch_size among 1, 2, 3, 4, 6, 12")
    err = dry_run_error(capsys, monkeypatch, tmp_path, "train.grad_accum=1", "train.batch_size=6",
                        "grpo.num_generations=4")
    assert err == ("error: recipe key 'train.grad_accum': train.batch_size × processes × train.grad_accum = "
                   "6 × 1 × 1 = 6 completions per step is not divisible by grpo.num_generations = 4: each "
                   "question needs all of its rollouts in one step; make it a multiple of 4")


def test_batch_plan_arithmetic(monkeypatch):
    cfg = grpo_cfg(**{"train.questions_per_step": 128, "train.batch_size": 8, "grpo.num_generations": 16})
    plan = batch_plan(cfg.train, 16)
    assert (plan.grad_accum, plan.questions_per_step, plan.completions_per_step) == (256, 128, 2048)
    monkeypatch.setenv("WORLD_SIZE", "8")  # under accelerate launch
    plan = batch_plan(cfg.train, 16)
    assert (plan.grad_accum, plan.processes, plan.completions_per_step) == (32, 8, 2048)
    sft = build(train_sft.Config, {"task": "train-sft", "train": {"questions_per_step": 64, "batch_size": 8}})
    monkeypatch.delenv("WORLD_SIZE")
    assert batch_plan(sft.train, 1).grad_accum == 8


def test_unknown_backend_names_the_nearest(capsys, monkeypatch, tmp_path):
    err = dry_run_error(capsys, monkeypatch, tmp_path, "train.backend=unslot")
    assert err == ("error: recipe key 'train.backend': 'unslot' is not allowed (did you mean 'unsloth'?); "
                   "choose one of: auto, unsloth, peft, full")


def test_unsloth_without_cuda(capsys, monkeypatch, tmp_path, tiny_model):
    with pytest.raises(XlingError, match=r"^train.backend=unsloth needs a CUDA GPU and none is visible here"):
        backends.resolve(grpo_cfg(**{"train.backend": "unsloth"}), "grpo", 4)
    monkeypatch.chdir(tmp_path)
    rc = cli.main(["grpo-en", "train.backend=unsloth", f"model.name={tiny_model}", "data.source=synth",
                   "out=run"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err == ("error: train.backend=unsloth needs a CUDA GPU and none is visible here "
                   "(torch.cuda.is_available() is False); use train.backend=peft to train on CPU\n")
    assert not (tmp_path / "run").exists()  # a refused run removes the folder it made


def test_gpu_only_options_on_cpu():
    with pytest.raises(XlingError, match=r"^lora.qlora=true needs a CUDA GPU"):
        backends.resolve(grpo_cfg(**{"train.backend": "peft", "lora.qlora": True}), "grpo", 4)
    with pytest.raises(XlingError, match=r"^vllm.enabled=true: TRL's vLLM rollouts need a CUDA GPU: with vLLM's CPU "
                                         r"build TRL's first weight sync fails"):
        backends.resolve(grpo_cfg(**{"vllm.enabled": True}), "grpo", 4)
    with pytest.raises(XlingError, match=r"^train.precision=fp16 needs a CUDA GPU"):
        backends.resolve(grpo_cfg(**{"train.precision": "fp16"}), "grpo", 4)
    plan = backends.resolve(grpo_cfg(), "grpo", 4)
    assert (plan.backend, plan.cuda, plan.use_vllm, plan.precision, plan.dtype) == ("peft", False, False, "fp32",
                                                                                    "float32")


@pytest.mark.parametrize("over, message", [
    ({"train.backend": "full", "lora.qlora": True}, "recipe key 'lora.qlora': QLoRA trains adapters"),
    ({"train.backend": "full", "model.adapter": "x"}, "recipe key 'model.adapter': train.backend=full trains"),
    ({"train.backend": "unsloth", "vllm.mode": "server"}, "recipe key 'vllm.mode': train.backend=unsloth runs"),
    ({"lora.r": 600}, "recipe key 'lora.r': ranks above 512 cannot be served by vLLM"),
    ({"vllm.max_lora_rank": 24}, "recipe key 'vllm.max_lora_rank': vLLM accepts only 1, 8, 16, 32"),
    ({"vllm.max_model_len": 1000}, "recipe key 'vllm.max_model_len': 1000 is below grpo.max_prompt_length"),
    ({"grpo.num_generations": 1}, "recipe key 'grpo.num_generations': GRPO needs at least 2 rollouts"),
    ({"train.report_to": ["mlflow"]}, "recipe key 'train.report_to': 'mlflow' is not supported"),
    ({"rewards.set": "papr"}, "recipe key 'rewards.set': unknown reward set 'papr'"),
    ({"rewards.weights": {"acuracy": 1.0}}, "recipe key 'rewards.weights': unknown reward 'acuracy'"),
    ({"train.max_steps": 0}, "recipe key 'train.max_steps': give a positive number"),
    ({"rewards.timeout": "nan"}, "recipe key 'rewards.timeout': must be a number of seconds above 0 and at most 3600, not nan"),
    ({"rewards.timeout": "inf"}, "recipe key 'rewards.timeout': must be a number of seconds above 0 and at most 3600, not inf"),
    ({"rewards.timeout": 1e9}, "recipe key 'rewards.timeout': must be a number of seconds above 0 and at most 3600"),
])
def test_invalid_values(over, message):
    with pytest.raises(ConfigError) as e:
        grpo_cfg(**over)
    assert str(e.value).startswith(message), str(e.value)


def test_lora_rank_rounding_and_vllm_rank_check():
    assert [backends.lora_rank_for_vllm(r) for r in (1, 2, 16, 24, 33, 300)] == [1, 8, 16, 32, 64, 320]
    assert backends.resolve(grpo_cfg(**{"lora.r": 24}), "grpo", 4).max_lora_rank == 32
    with pytest.raises(XlingError, match=r"vllm.max_lora_rank=16 is below lora.r=32"):
        backends.resolve(grpo_cfg(**{"lora.r": 32, "vllm.max_lora_rank": 16}), "grpo", 4)


def test_rft_and_sft_checks():
    with pytest.raises(ConfigError, match=r"recipe key 'rft.keep': keeps more answers \(3\) than are sampled \(2\)"):
        build(train_rft.Config, {"task": "train-rft", "rft": {"samples": 2, "keep": 3},
                                 "train": {"questions_per_step": 4, "batch_size": 2}})
    with pytest.raises(ConfigError, match=r"recipe key 'train.batch_size': a step holds train.questions_per_step = 5"):
        build(train_sft.Config, {"task": "train-sft", "train": {"questions_per_step": 5, "batch_size": 2}})


def test_report_to_needs_its_package(tmp_path):
    from xling.train.grpo import report_to

    cfg = grpo_cfg(**{"train.report_to": ["tensorboard"]})
    if backends.installed("tensorboard"):
        pytest.skip("tensorboard is installed here")
    with pytest.raises(XlingError, match=r"^train.report_to=tensorboard needs the tensorboard package"):
        report_to(cfg.train, tmp_path)
    assert report_to(grpo_cfg().train, tmp_path) == "none"


def test_nothing_heavy_is_imported_before_the_backend():
    """run.py and the training modules import no trl/transformers/peft before unsloth could go first."""
    code = (
        "import sys\n"
        "from xling.runs.cli import resolve\n"
        "from xling.train import backends, lifecycle, grpo, sft, rft, callbacks, prompts\n"
        "from xling.tasks import smoke, doctor, train_sft, train_rft\n"
        "cfg, _ = resolve('grpo-en', [])\n"
        "plan = backends.resolve(cfg, 'grpo', cfg.grpo.num_generations)\n"
        "backends.startup_check(plan, False)\n"
        "print(sorted(m for m in ('trl', 'transformers', 'peft', 'unsloth', 'vllm') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_cispo_caps_the_weight_not_the_ratio():
    from xling.train.grpo import epsilon_high

    assert epsilon_high(grpo_cfg(**{"grpo.loss_type": "cispo"}).grpo) == 5.0
    assert epsilon_high(grpo_cfg(**{"grpo.loss_type": "dapo"}).grpo) == 0.2
    assert epsilon_high(grpo_cfg(**{"grpo.loss_type": "dapo", "grpo.epsilon_high": 0.28}).grpo) == 0.28
    with pytest.raises(ConfigError, match="with loss_type=cispo it caps the importance weight itself"):
        grpo_cfg(**{"grpo.loss_type": "cispo", "grpo.epsilon_high": 0.5})


def test_too_few_prompts_for_one_step_is_an_error(capsys):
    from xling.train.grpo import check_steps

    with pytest.raises(XlingError, match="the training set has 10 prompt\\(s\\), fewer than one step's "
                                         "train.questions_per_step=16: nothing would be trained"):
        check_steps(10, 16)
    assert check_steps(1000, 128) == 104
    assert "each epoch trains on 896 of 1000 prompts (7 steps of 128)" in capsys.readouterr().out
    assert check_steps(256, 128) == 0


def test_the_kl_default_agrees_everywhere(capsys, monkeypatch, tmp_path):
    """grpo.beta=0.001 (the paper's KL term; 0.001 as verl): the config default, the GRPO recipes, --help, README."""
    import yaml

    from xling.train.config import GrpoConfig

    assert GrpoConfig().beta == 0.001
    for name in ("grpo-en", "grpo-parallel"):
        recipe = yaml.safe_load((ROOT / "recipes" / f"{name}.yaml").read_text())
        assert recipe["grpo"]["beta"] == 0.001, name
    monkeypatch.chdir(tmp_path)
    assert cli.main(["grpo-en", "--help"]) == 0
    help_line = next(line for line in capsys.readouterr().out.splitlines() if "grpo.beta" in line)
    assert "0.001" in help_line
    assert "`grpo.beta` (0.001)" in (ROOT / "README.md").read_text()
