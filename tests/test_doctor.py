"""The doctor recipe: installed vs locked versions, CUDA, and which backends can run here."""

from __future__ import annotations

import json

import pytest

from xling.runs import cli
from xling.common import versions


def test_doctor_reports_versions_cuda_and_backends(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    for text in ("trl", "1.14.2", "unsloth", "absent", "CUDA: not available", "what can run here",
                 "the installed versions match the lock set"):
        assert text in out
    metrics = json.loads((tmp_path / "runs/doctor/metrics.json").read_text())
    assert metrics["packages"]["vllm"] == {"locked": "0.30.0", "installed": None, "status": "absent"}
    assert metrics["backends"]["peft"]["ok"] and not metrics["backends"]["unsloth"]["ok"]
    assert metrics["mismatches"] == [] and metrics["cuda"]["available"] is False


def test_doctor_warns_on_mismatch_and_strict_fails(capsys, monkeypatch, tmp_path):
    real = versions.installed_version
    monkeypatch.setattr(versions, "installed_version",
                        lambda name: "1.16.0" if versions.canonical(name) == "trl" else real(name))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "warning: trl 1.16.0 differs from the lock set (trl==1.14.2)" in out
    assert cli.main(["doctor", "strict=true"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: doctor strict=true: 1 problem(s): trl 1.16.0 (locked 1.14.2)")


def fake_gpus(monkeypatch, *gpus):
    """Pretend torch sees these GPUs: (name, (major, minor)). torch.cuda.is_bf16_supported() says yes for
    every one of them, as it does on T4/V100 through emulation."""
    import types

    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: len(gpus))
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=0: gpus[i][1])
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: types.SimpleNamespace(
        name=gpus[i][0], major=gpus[i][1][0], minor=gpus[i][1][1], total_memory=16 * 2**30))
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda i=0: (15 * 2**30, 16 * 2**30))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)


@pytest.mark.parametrize("name,capability", [("Tesla T4", (7, 5)), ("Tesla V100-SXM2-16GB", (7, 0))])
def test_doctor_reports_no_bf16_on_a_pre_ampere_gpu(capsys, monkeypatch, tmp_path, name, capability):
    from xling.train import backends

    fake_gpus(monkeypatch, (name, capability))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    cc = f"{capability[0]}.{capability[1]}"
    assert f"GPU 0: {name} (compute {cc}), 16.0 GiB, 15.0 GiB free, bf16 no (emulated only before compute 8.0)" in out
    assert "train.precision=auto trains in fp16 (bf16 needs compute capability 8.0 on every visible GPU)" in out
    cuda = json.loads((tmp_path / "runs/doctor/metrics.json").read_text())["cuda"]
    assert cuda["devices"][0]["bf16"] is False and cuda["bf16"] is False and cuda["precision_auto"] == "fp16"
    assert backends.bf16_supported() is False  # not torch.cuda.is_bf16_supported(), which says yes here


def test_doctor_bf16_needs_every_gpu(capsys, monkeypatch, tmp_path):
    fake_gpus(monkeypatch, ("NVIDIA A100-SXM4-80GB", (8, 0)), ("Tesla T4", (7, 5)))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "NVIDIA A100-SXM4-80GB (compute 8.0), 16.0 GiB, 15.0 GiB free, bf16 yes" in out
    assert "train.precision=auto trains in fp16" in out  # one pre-Ampere card: fp16 for all, as Unsloth decides
    fake_gpus(monkeypatch, ("NVIDIA H100 80GB HBM3", (9, 0)))
    assert cli.main(["doctor"]) == 0
    assert "train.precision=auto trains in bf16" in capsys.readouterr().out


def test_gpu_check_needs_a_gpu(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["doctor", "gpu_check=true", "out=d"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == ("error: doctor gpu_check=true runs the GPU checks and needs a CUDA GPU (none is visible here); "
                           "run it on a CUDA host with the GPU lock set (pip install -r requirements-gpu.txt)")
    assert cli.main(["doctor", "check_timeout=0", "out=d"]) == 2
    assert "recipe key 'check_timeout': must be at least 1 second" in capsys.readouterr().err


def test_the_gpu_checks_are_valid_commands(capsys, monkeypatch, tmp_path):
    """Each xling command of the GPU check resolves (--dry-run); the test command names the two tiers."""
    from xling.tasks.doctor import gpu_checks

    monkeypatch.chdir(tmp_path)
    checks = gpu_checks(tmp_path / "d")
    assert [name for name, _ in checks] == ["tests marked gpu and vllm", "GRPO, 2 steps of the toy model",
                                            "evaluation of the toy and its adapter with vLLM"]
    assert checks[0][1][1:6] == ["-m", "pytest", "-q", "-m", "gpu or vllm"]
    (tmp_path / "d" / "check-grpo" / "final").mkdir(parents=True)  # what the GRPO check leaves
    (tmp_path / "d" / "check-grpo" / "final" / "adapter_config.json").write_text(
        json.dumps({"peft_type": "LORA", "r": 16, "lora_alpha": 32, "target_modules": ["q_proj"]}))
    for _, cmd in checks[1:]:
        args = [a for a in cmd[2:] if a != "--force"]
        assert cli.main([*args, "--dry-run"]) == 0, capsys.readouterr().err


def test_a_check_that_never_ends_is_reported_as_timed_out(monkeypatch, tmp_path):
    import sys

    from xling.tasks import doctor

    monkeypatch.setattr(doctor, "gpu_checks", lambda run_dir: [
        ("passes", [sys.executable, "-c", "print('fine')"]),
        ("fails", [sys.executable, "-c", "import sys; print('broken'); sys.exit(3)"]),
        ("never ends", [sys.executable, "-c", "import threading; threading.Event().wait()"])])
    results = doctor.run_checks(tmp_path, timeout=2)
    assert [(r["check"], r["exit_code"], r["tail"]) for r in results] == [
        ("passes", 0, ["fine"]), ("fails", 3, ["broken"]), ("never ends", None, [])]
