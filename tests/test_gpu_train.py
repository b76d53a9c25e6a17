"""Real GPU training runs, for a user with a CUDA GPU, the GPU lock set (requirements-gpu.txt) and hub
access: a few GRPO steps of Qwen2.5-0.5B-Instruct with Unsloth (+ vLLM) and with PEFT + TRL's vLLM
colocate mode, SFT with Unsloth, and full-parameter GRPO. Skipped where CUDA is not available.

    python -m pytest -q tests/test_gpu_train.py          # ~5-15 minutes on one GPU (downloads ~1 GB)
    XLING_GPU_MODEL=Qwen/Qwen2.5-1.5B-Instruct python -m pytest -q tests/test_gpu_train.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODEL = os.environ.get("XLING_GPU_MODEL", "Qwen/Qwen2.5-0.5B-Instruct")
SMALL = ["data.source=synth", "data.n=8", "data.langs=en,de", "train.max_steps=2", "train.questions_per_step=4",
         "train.batch_size=8", "train.save_steps=1", "grpo.num_generations=4", "grpo.max_completion_length=256",
         "grpo.max_prompt_length=512", "vllm.gpu_memory_utilization=0.35", f"model.name={MODEL}",
         "train.learning_rate=2e-5"]

pytestmark = [pytest.mark.gpu, pytest.mark.slow]


def run(tmp_path: Path, *args: str) -> dict:
    """Each run in a fresh process, as `python run.py` (Unsloth must be imported first in its process)."""
    out = subprocess.run([sys.executable, str(ROOT / "run.py"), *args, f"out={tmp_path / 'run'}"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=3600)
    assert out.returncode == 0, (out.stdout[-3000:], out.stderr[-3000:])
    return json.loads((tmp_path / "run" / "metrics.json").read_text())


def needs(module: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (pip install -r requirements-gpu.txt)")


def test_doctor_on_the_gpu_host(tmp_path):
    metrics = run(tmp_path, "doctor", "strict=true")
    assert metrics["cuda"]["available"] and metrics["backends"]["peft"]["ok"]


def test_grpo_unsloth_with_vllm(tmp_path):
    needs("unsloth")
    needs("vllm")
    metrics = run(tmp_path, "grpo-en", "train.backend=unsloth", *SMALL)
    assert metrics["backend"] == "unsloth" and metrics["use_vllm"] and metrics["steps"] == 2
    assert set(metrics["per_lang"]) == {"en", "de"}
    env = json.loads((tmp_path / "run" / "train_env.json").read_text())
    native = all(int(c.split(".")[0]) >= 8 for c in env["plan"]["gpu_capability"])
    assert env["plan"]["precision"] == ("bf16" if native else "fp16")  # by compute capability, as Unsloth decides
    assert env["ran"]["model_dtype"] == env["plan"]["dtype"] and env["ran"]["bf16"] is native  # what really ran
    final = tmp_path / "run" / "final"
    assert (final / "adapter_config.json").is_file() and (final / "tokenizer_config.json").is_file()
    from xling.generate import load_generator

    gen = load_generator("vllm", MODEL, adapter=str(final), gpu_memory_utilization=0.3)
    try:
        out = gen.chat([[{"role": "user", "content": "2+3?"}]], n=1, temperature=0.0, top_p=1.0, max_tokens=16,
                       seed=0)
        assert out[0][0].text
    finally:
        gen.close()


def test_grpo_unsloth_qlora(tmp_path):
    needs("unsloth")
    needs("bitsandbytes")
    metrics = run(tmp_path, "grpo-en", "train.backend=unsloth", "lora.qlora=true", *SMALL)
    assert metrics["steps"] == 2


def test_grpo_peft_with_trl_vllm_colocate(tmp_path):
    needs("vllm")
    metrics = run(tmp_path, "grpo-en", "train.backend=peft", "vllm.enabled=true", "train.batch_size=4", *SMALL)
    assert metrics["backend"] == "peft" and metrics["use_vllm"] and metrics["steps"] == 2


def test_grpo_vespo_and_luspo_with_vllm(tmp_path):
    """TRL refuses VESPO with its default sequence-level vLLM correction at start; xling sets a token-level one."""
    needs("vllm")
    for loss in ("vespo", "luspo"):
        (tmp_path / loss).mkdir()
        metrics = run(tmp_path / loss, "grpo-en", "train.backend=peft", "vllm.enabled=true", f"grpo.loss_type={loss}",
                      *[a for a in SMALL if not a.startswith("train.max_steps")], "train.max_steps=1")
        assert metrics["steps"] == 1 and metrics["ran"]["loss_type"] == loss


def test_grpo_killed_and_resumed_on_gpu(tmp_path):
    """A run killed after its first checkpoint continues from it (resume=auto) to the last step."""
    import signal
    import time

    needs("vllm")
    args = [sys.executable, str(ROOT / "run.py"), "grpo-en", "train.backend=peft", "vllm.enabled=true", *SMALL,
            "train.max_steps=3", f"out={tmp_path / 'run'}"]
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    first = tmp_path / "run" / "checkpoints" / "checkpoint-1" / "trainer_state.json"
    deadline = time.time() + 1800
    while not first.is_file() and proc.poll() is None and time.time() < deadline:
        time.sleep(2)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)  # the process group this test started
        proc.wait()
    assert first.is_file()
    if (tmp_path / "run" / "final").exists():
        pytest.skip("the run finished before it could be interrupted")
    out = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=3600)
    assert out.returncode == 0, out.stderr[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["resumed_from_step"] >= 1 and metrics["steps"] == 3


def test_sft_unsloth(tmp_path):
    needs("unsloth")
    metrics = run(tmp_path, "sft", "train.backend=unsloth", f"model.name={MODEL}", "data.source=synth", "data.n=8",
                  "train.max_steps=2", "train.questions_per_step=4", "train.batch_size=4")
    assert metrics["method"] == "sft" and metrics["steps"] == 2


def test_grpo_full_parameter_single_gpu(tmp_path):
    needs("vllm")
    metrics = run(tmp_path, "grpo-en", "train.backend=full", "train.learning_rate=1e-6", *SMALL)
    assert metrics["backend"] == "full" and (tmp_path / "run" / "final" / "config.json").is_file()
