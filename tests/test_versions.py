"""The lock set: pins read from the requirements files, installed vs locked, declared incompatibilities."""

from __future__ import annotations

from pathlib import Path

import pytest

from xling.common import versions
from xling.common.errors import XlingError

ROOT = Path(__file__).resolve().parent.parent
GPU_PINS = {"unsloth": "2026.10.7", "unsloth-zoo": "2026.10.7", "vllm": "0.30.0", "bitsandbytes": "0.50.2",
            "deepspeed": "0.19.8", "torchvision": "0.28.0", "torchaudio": "2.11.0"}


def fake_installed(overrides: dict):
    def installed(name):
        name = versions.canonical(name)
        if name in overrides:
            return overrides[name]
        return versions.installed_version(name)
    return installed


def test_gpu_lock_file_pins_the_tested_set():
    pins = versions.read_lock(ROOT / "requirements-gpu.txt")
    for name, version in GPU_PINS.items():
        assert pins[name].spec == f"=={version}", name
    cpu = versions.read_lock(ROOT / "requirements.txt")
    assert pins["torch"].spec == "==2.13.0"  # -r requirements.txt is followed
    assert set(cpu) < set(pins)
    assert "-r requirements.txt" in (ROOT / "requirements-gpu.txt").read_text()


def test_read_lock_follows_includes_and_skips_options(tmp_path):
    (tmp_path / "base.txt").write_text("torch==2.13.0  # cpu\nnumpy==2.3.5\n")
    (tmp_path / "gpu.txt").write_text("# comment\n-r base.txt\n--extra-index-url https://x\nvllm==0.30.0\n"
                                      "Unsloth_Zoo==2026.10.7\n")
    pins = versions.read_lock(tmp_path / "gpu.txt")
    assert {n: p.locked for n, p in pins.items()} == {"torch": "2.13.0", "numpy": "2.3.5", "vllm": "0.30.0",
                                                      "unsloth-zoo": "2026.10.7"}
    (tmp_path / "bad.txt").write_text("torch 2.13 !!\n")
    with pytest.raises(XlingError, match="line 1"):
        versions.read_lock(tmp_path / "bad.txt")


def test_compare_lock_statuses():
    rows = {r.name: r for r in versions.compare_lock(ROOT, fake_installed({"trl": "1.16.0", "vllm": None,
                                                                          "deepspeed": "0.19.8"}))}
    assert rows["trl"].status == "mismatch" and rows["trl"].problem
    assert rows["vllm"].status == "absent" and not rows["vllm"].problem  # GPU-only: fine on a CPU host
    assert rows["deepspeed"].status == "ok"
    assert rows["torch"].status == "ok"  # 2.13.0+cpu satisfies ==2.13.0
    rows = {r.name: r for r in versions.compare_lock(ROOT, fake_installed({"peft": None}))}
    assert rows["peft"].status == "missing"


UNSLOTH_REQUIRES = ["trl!=0.19.0,<=1.15.0,>=0.18.2", "transformers<=5.17.0,>=4.52.4", "torch<2.15.0,>=2.4.0",
                    "datasets<5.0.0,>=3.4.1", "xformers; sys_platform == 'linux'", "some-other-lib>=9"]


def fake_requires(name):
    if versions.canonical(name) == "unsloth":
        return UNSLOTH_REQUIRES
    return versions.declared_requires(name)


def test_declared_conflicts_find_known_incompatibilities():
    ok = versions.declared_conflicts(["unsloth"], installed=fake_installed({"unsloth": "2026.10.7"}),
                                     requires=fake_requires)
    assert ok == []
    bad = versions.declared_conflicts(["unsloth"], installed=fake_installed({"unsloth": "2026.10.7", "trl": "1.16.0"}),
                                      requires=fake_requires)
    assert bad == ["unsloth 2026.10.7 requires trl!=0.19.0,<=1.15.0,>=0.18.2 (installed: trl 1.16.0)"]
    # trl's own vllm extra pins vllm's range: checked only on the vLLM path
    newer = fake_installed({"vllm": "0.31.0"})
    assert versions.declared_conflicts(["trl"], installed=newer) == []
    assert versions.declared_conflicts(["trl"], ["vllm"], installed=newer) == [
        "trl 1.14.2 requires vllm<=0.30.0,>=0.20.0 (installed: vllm 0.31.0)"]


def test_check_stack_errors_and_warnings():
    report = versions.check_stack("peft")
    assert report.errors == [] and report.warnings == []  # this machine runs the CPU lock set
    report = versions.check_stack("unsloth", installed=fake_installed({"unsloth": None}))
    assert any("unsloth is not installed" in e and "requirements-gpu.txt" in e for e in report.errors)
    installed = fake_installed({"unsloth": "2026.10.7", "unsloth-zoo": "2026.10.7", "trl": "1.16.0"})
    report = versions.check_stack("unsloth", installed=installed, requires=fake_requires)
    assert any("requires trl" in e for e in report.errors)
    assert any(w.startswith("trl 1.16.0 differs from the lock set (trl==1.14.2") for w in report.warnings)
    report = versions.check_stack("peft", use_vllm=True, installed=fake_installed({"vllm": "0.29.0"}))
    assert report.errors == [] and any("vllm 0.29.0 differs" in w for w in report.warnings)


def test_backend_status_without_cuda():
    status = versions.backend_status(cuda=False)
    assert not status["unsloth"]["ok"] and "CUDA" in status["unsloth"]["why"]
    assert status["peft"]["ok"] and status["full"]["ok"]
    assert not status["vllm"]["ok"] and not status["qlora"]["ok"]
    with_gpu = versions.backend_status(cuda=True, installed=fake_installed({"unsloth": None, "vllm": "0.30.0"}))
    assert not with_gpu["unsloth"]["ok"] and "pip install -r requirements-gpu.txt" in with_gpu["unsloth"]["why"]
    assert with_gpu["vllm"]["ok"]


def test_cuda_info_and_versions_record():
    info = versions.cuda_info()
    assert info["available"] is False and info["devices"] == []
    record = versions.lock_versions()
    assert record["trl"] == "1.14.2" and record["vllm"] is None
