"""`python run.py smoke`: tiny model, GRPO with the real rewards, save, reload, generate — on CPU."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_smoke_recipe_runs_on_cpu(tmp_path):
    t0 = time.time()
    out = subprocess.run([sys.executable, str(ROOT / "run.py"), "smoke"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    wall = time.time() - t0
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout
    assert "smoke: GRPO (peft) on a tiny random Qwen2, 4 steps, synth problems in en, de" in text
    assert "reloaded final/ (PEFT adapter" in text and "smoke: OK" in text
    assert "per language" in text
    run = tmp_path / "runs" / "smoke"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["steps"] == 4 and metrics["reload"]["ok"] and metrics["reload"]["weights_changed_max_abs"] > 0
    assert set(metrics["per_lang"]) == {"en", "de"}
    assert metrics["reward_weights"] == {"accuracy_reward": 0.8, "format_reward": 0.1, "language_reward": 0.1}
    for name in ("tiny-model/config.json", "trainset.jsonl", "train_log.jsonl", "train_env.json",
                 "final/adapter_model.safetensors"):
        assert (run / name).is_file(), name
    print(f"smoke took {wall:.0f} s")  # measured, not asserted: machines differ


def test_an_unknown_reward_set_is_refused_before_anything_runs(tmp_path):
    done = subprocess.run([sys.executable, "run.py", "smoke", "rewards=nope", f"out={tmp_path / 's'}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip() == ("error: recipe key 'rewards': unknown reward set 'nope'; choose one of: paper, "
                                   "consistency, accuracy, accuracy-format, pivot, pivot-format, pivot-translate, "
                                   "pivot-language")
    assert not (tmp_path / "s").exists()  # nothing built
